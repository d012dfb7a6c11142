"""Dense layers and shape layers: Linear, Flatten, Unflatten."""

from __future__ import annotations

from .. import functional as F
from ..creation import empty
from ..tensor import Tensor
from . import init
from .module import Module, Parameter


class Linear(Module):
    """``y = x @ W.T + b`` with W of shape (out_features, in_features), as torch.

    >>> Linear(20, 30)(deepgrad.randn(128, 20)).shape
    (128, 30)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        if in_features < 0 or out_features < 0:
            raise ValueError(f"Linear: features must be non-negative, got ({in_features}, {out_features})")
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(empty(out_features, in_features, dtype=dtype, device=device))
        if bias:
            self.bias = Parameter(empty(out_features, dtype=dtype, device=device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.default_init_(self.weight, self.bias, self.in_features)

    def forward(self, x: Tensor) -> Tensor:
        try:  # the op checks the input (one check); its message gets this layer's name
            return F.linear(x, self.weight, self.bias)
        except RuntimeError as e:
            raise RuntimeError(f"Linear(in_features={self.in_features}, out_features={self.out_features}): {e}"
                               ) from None

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Flatten(Module):
    """Flatten dims ``start_dim..end_dim`` (by default everything but the batch dim)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Expand dim ``dim`` into ``unflattened_size``: Unflatten(1, (C, H, W))."""

    def __init__(self, dim: int, unflattened_size: tuple):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x: Tensor) -> Tensor:
        d = self.dim % x.ndim
        return x.reshape(x.shape[:d] + self.unflattened_size + x.shape[d + 1 :])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
