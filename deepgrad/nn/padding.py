"""Padding as modules (torch.nn's names): ZeroPad1d/2d/3d and ConstantPad1d/2d/3d, and the modes that copy
the input's own values: ReflectionPad1d/2d/3d, ReplicationPad1d/2d/3d and CircularPad1d/2d/3d.

``padding`` is an int (every side) or a tuple (left, right[, top, bottom[, front, back]]), as ``F.pad``
reads it.

>>> ZeroPad2d((1, 1, 2, 0))(deepgrad.ones(1, 1, 2, 2)).shape
(1, 1, 4, 4)
"""

from __future__ import annotations

from ..tensor import Tensor
from . import functional as F
from .module import Module


class _ConstantPadNd(Module):
    _sides = 2
    _mode = "constant"

    def __init__(self, padding, value: float = 0.0):
        super().__init__()
        if isinstance(padding, int):
            padding = (padding,) * self._sides
        padding = tuple(int(p) for p in padding)
        if len(padding) != self._sides:
            raise ValueError(f"{type(self).__name__}: padding must be an int or a tuple of {self._sides} ints, "
                             f"got {padding}")
        self.padding, self.value = padding, value

    def forward(self, x: Tensor) -> Tensor:
        if self._mode != "constant":
            return F.pad(x, self.padding, self._mode)
        return F.pad(x, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        if self._mode != "constant":
            return f"{self.padding}"
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


class ConstantPad3d(_ConstantPadNd):
    """Pad the last three dims with ``value``: (left, right, top, bottom, front, back)."""

    _sides = 6

    def __init__(self, padding, value: float):
        super().__init__(padding, value)


class ZeroPad3d(ConstantPad3d):
    """Pad the last three dims with zeros."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


def _copying(name: str, mode: str, sides: int, doc: str):
    cls = type(name, (_ConstantPadNd,), {"_sides": sides, "_mode": mode, "__doc__": doc,
                                         "__init__": lambda self, padding: _ConstantPadNd.__init__(self, padding)})
    cls.__module__ = __name__
    return cls


ReflectionPad1d = _copying("ReflectionPad1d", "reflect", 2, "Pad the last dim with its reflection: (left, right).")
ReflectionPad2d = _copying("ReflectionPad2d", "reflect", 4, "Pad the last two dims with their reflection.")
ReflectionPad3d = _copying("ReflectionPad3d", "reflect", 6, "Pad the last three dims with their reflection.")
ReplicationPad1d = _copying("ReplicationPad1d", "replicate", 2, "Pad the last dim by repeating its edge values.")
ReplicationPad2d = _copying("ReplicationPad2d", "replicate", 4, "Pad the last two dims by repeating their edges.")
ReplicationPad3d = _copying("ReplicationPad3d", "replicate", 6, "Pad the last three dims by repeating their edges.")
CircularPad1d = _copying("CircularPad1d", "circular", 2, "Pad the last dim by wrapping around.")
CircularPad2d = _copying("CircularPad2d", "circular", 4, "Pad the last two dims by wrapping around.")
CircularPad3d = _copying("CircularPad3d", "circular", 6, "Pad the last three dims by wrapping around.")
