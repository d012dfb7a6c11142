"""Convolution layers: Conv1d, Conv2d, ConvTranspose2d (weights and defaults as torch)."""

from __future__ import annotations

from ..creation import empty
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module, Parameter


def _tuple(value, n: int, name: str) -> tuple:
    out = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    if len(out) != n:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {value!r}")
    return tuple(int(v) for v in out)


class _ConvNd(Module):
    _dims = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                 padding_mode, output_padding=0, device=None, dtype=None):
        super().__init__()
        n, name = self._dims, type(self).__name__
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) must both be "
                f"divisible by groups ({groups})"
            )
        if padding_mode != "zeros":
            raise ValueError(f"{name}: padding_mode {padding_mode!r} is not supported (deepgrad pads with zeros)")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _tuple(kernel_size, n, f"{name} kernel_size")
        self.stride = _tuple(stride, n, f"{name} stride")
        self.dilation = _tuple(dilation, n, f"{name} dilation")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{name}: padding string must be 'same' or 'valid', got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = _tuple(padding, n, f"{name} padding")
        self.output_padding = _tuple(output_padding, n, f"{name} output_padding")
        self.padding_mode = padding_mode
        if self._transposed:
            shape = (in_channels, out_channels // groups) + self.kernel_size
        else:
            shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(empty(*shape, dtype=dtype, device=device))
        if bias:
            self.bias = Parameter(empty(out_channels, dtype=dtype, device=device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.default_init_(self.weight, self.bias)

    def _conv(self, fn, x: Tensor, *args) -> Tensor:
        """``fn(x, weight, bias, *args)``; a bad input is refused by the op (one check, torch's wording) and the
        message names this layer."""
        try:
            return fn(x, self.weight, self.bias, *args)
        except RuntimeError as e:
            raise RuntimeError(f"{self._describe()}: {e}") from None

    def _describe(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size})"

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self._dims:
            s += f", padding={self.padding!r}" if isinstance(self.padding, str) else f", padding={self.padding}"
        if self.dilation != (1,) * self._dims:
            s += f", dilation={self.dilation}"
        if self._transposed and self.output_padding != (0,) * self._dims:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv1d(_ConvNd):
    """1-D convolution over (N, C_in, L) inputs; weight (C_out, C_in/groups, k)."""

    _dims = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        return self._conv(F.conv1d, x, self.stride, self.padding, self.dilation, self.groups)


class Conv2d(_ConvNd):
    """2-D convolution over (N, C_in, H, W) inputs; weight (C_out, C_in/groups, kH, kW).

    Output size per spatial dim: floor((n + 2p - d(k - 1) - 1) / s) + 1.

    >>> Conv2d(1, 6, kernel_size=5)(deepgrad.randn(8, 1, 28, 28)).shape
    (8, 6, 24, 24)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        return self._conv(F.conv2d, x, self.stride, self.padding, self.dilation, self.groups)


class ConvTranspose2d(_ConvNd):
    """Transposed ("fractionally strided") 2-D convolution; weight (C_in, C_out/groups, kH, kW).

    Output size per spatial dim: (n - 1)s - 2p + d(k - 1) + output_padding + 1.
    """

    _transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None,
                 dtype=None):
        if isinstance(padding, str):
            raise ValueError("ConvTranspose2d: padding must be an int or a tuple (no 'same'/'valid')")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, output_padding, device=device, dtype=dtype)
        for op, s, d in zip(self.output_padding, self.stride, self.dilation):
            if op >= max(s, d):
                raise ValueError(
                    f"ConvTranspose2d: output_padding {self.output_padding} must be smaller than either "
                    f"stride {self.stride} or dilation {self.dilation}"
                )

    def forward(self, x: Tensor, output_size=None) -> Tensor:
        output_padding = self.output_padding
        if output_size is not None and x.ndim in (3, 4):  # other inputs: the op refuses them
            target = tuple(output_size)[-2:]
            output_padding = []
            for i in range(2):
                base = ((x.shape[-2 + i] - 1) * self.stride[i] - 2 * self.padding[i]
                        + self.dilation[i] * (self.kernel_size[i] - 1) + 1)
                extra = target[i] - base
                reach = max(self.stride[i], self.dilation[i])
                if not 0 <= extra < reach:
                    raise ValueError(
                        f"ConvTranspose2d: requested output size {target} is not reachable from input "
                        f"{tuple(x.shape)} (sizes between {base} and {base + reach - 1})"
                    )
                output_padding.append(extra)
            output_padding = tuple(output_padding)
        return self._conv(F.conv_transpose2d, x, self.stride, self.padding, output_padding, self.groups,
                          self.dilation)
