"""Pooling layers: max, average and sum pooling (1-D and 2-D), adaptive average / max.

Sum pooling is first-class here (torch has none): each output is the sum of its window,
i.e. average pooling without the division.
"""

from __future__ import annotations

from ..tensor import Tensor
from . import functional as F
from .module import Module


class _Pool(Module):
    _dims = 2

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None or stride == [] else stride
        self.padding = padding
        self.ceil_mode = ceil_mode

    def _check_input(self, x: Tensor) -> None:
        n = self._dims
        if x.ndim not in (n + 1, n + 2):
            spatial = "L" if n == 1 else "H, W"
            raise RuntimeError(
                f"{type(self).__name__}(kernel_size={self.kernel_size}): expected a {n + 2}-D input "
                f"(N, C, {spatial}) or an unbatched {n + 1}-D input (C, {spatial}), got shape {tuple(x.shape)}"
            )

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"ceil_mode={self.ceil_mode}")


class _MaxPool(_Pool):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.dilation, self.return_indices = dilation, return_indices

    def forward(self, x: Tensor):
        self._check_input(x)
        pool = F.max_pool1d if self._dims == 1 else F.max_pool2d
        return pool(x, self.kernel_size, self.stride, self.padding, self.dilation,
                    ceil_mode=self.ceil_mode, return_indices=self.return_indices)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", dilation={self.dilation}"


class MaxPool2d(_MaxPool):
    """Max over each window; ``return_indices`` also gives flat indices into each H*W plane."""


class AvgPool2d(_Pool):
    """Mean over each window (``count_include_pad`` counts zero padding in the divisor)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class SumPool2d(_Pool):
    """Sum over each window (zero padding adds nothing)."""

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return F.sum_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode)


class MaxPool1d(_MaxPool):
    """Max over each window of (N, C, L) inputs."""

    _dims = 1


class AvgPool1d(_Pool):
    """Mean over each window of (N, C, L) inputs."""

    _dims = 1

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = count_include_pad

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return F.avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)


class SumPool1d(_Pool):
    """Sum over each window of (N, C, L) inputs."""

    _dims = 1

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return F.sum_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode)


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size, whatever the input size."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(Module):
    """Max pooling to a fixed output size, whatever the input size."""

    def __init__(self, output_size, return_indices: bool = False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, x: Tensor):
        return F.adaptive_max_pool2d(x, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(Module):
    """Average pooling of (N, C, L) inputs to a fixed output length."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool1d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool1d(Module):
    """Max pooling of (N, C, L) inputs to a fixed output length."""

    def __init__(self, output_size, return_indices: bool = False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, x: Tensor):
        return F.adaptive_max_pool1d(x, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class MaxUnpool2d(Module):
    """The partial inverse of MaxPool2d: each pooled value back at the position its indices record, zeros
    elsewhere (decoder halves of segmentation nets)."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(kernel_size if stride is None else stride)
        self.padding = _pair(padding)

    def forward(self, x: Tensor, indices: Tensor, output_size=None) -> Tensor:
        return F.max_unpool2d(x, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


def _pair(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)
