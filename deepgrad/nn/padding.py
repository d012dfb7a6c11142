"""Constant padding as modules: ZeroPad1d/2d and ConstantPad1d/2d (torch.nn's names).

``padding`` is an int (every side) or a tuple (left, right[, top, bottom]), as ``F.pad`` reads it.

>>> ZeroPad2d((1, 1, 2, 0))(deepgrad.ones(1, 1, 2, 2)).shape
(1, 1, 4, 4)
"""

from __future__ import annotations

from ..tensor import Tensor
from . import functional as F
from .module import Module


class _ConstantPadNd(Module):
    _sides = 2

    def __init__(self, padding, value: float):
        super().__init__()
        if isinstance(padding, int):
            padding = (padding,) * self._sides
        padding = tuple(int(p) for p in padding)
        if len(padding) != self._sides:
            raise ValueError(f"{type(self).__name__}: padding must be an int or a tuple of {self._sides} ints, "
                             f"got {padding}")
        self.padding, self.value = padding, value

    def forward(self, x: Tensor) -> Tensor:
        return F.pad(x, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pad the last dim with ``value``: (left, right)."""

    def __init__(self, padding, value: float):
        super().__init__(padding, value)


class ConstantPad2d(_ConstantPadNd):
    """Pad the last two dims with ``value``: (left, right, top, bottom)."""

    _sides = 4

    def __init__(self, padding, value: float):
        super().__init__(padding, value)


class ZeroPad1d(ConstantPad1d):
    """Pad the last dim with zeros."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    """Pad the last two dims with zeros."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"
