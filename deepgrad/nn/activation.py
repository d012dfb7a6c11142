"""Activations as modules (torch.nn's names): ReLU, LeakyReLU, Sigmoid, Tanh, GELU, ELU, Softmax,
LogSoftmax, Softplus, and the compositions SiLU, Mish, Hardtanh, ReLU6, Hardsigmoid, Hardswish, SELU, CELU,
LogSigmoid, Softsign, Tanhshrink, Threshold, Hardshrink, Softshrink, PReLU, GLU, Softmin, Softmax2d.

``inplace=True`` is accepted for torch compatibility; deepgrad computes activations out of
place (the graph keeps the input for backward), so the flag only changes memory use in torch.
"""

from __future__ import annotations

from .. import functional as F
from ..creation import full
from ..tensor import Tensor
from . import functional as NF
from .module import Module, Parameter


class ReLU(Module):
    """max(x, 0)."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    """x for x > 0, else negative_slope * x."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(Module):
    """x for x > 0, else alpha * (exp(x) - 1)."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class GELU(Module):
    """x * Phi(x); ``approximate="tanh"`` for the tanh form."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softplus(Module):
    """log(1 + exp(beta x)) / beta, linear above ``threshold``."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x: Tensor) -> Tensor:
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Sigmoid(Module):
    """1 / (1 + exp(-x)), computed stably."""

    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class Tanh(Module):
    """tanh(x)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class Softmax(Module):
    """Softmax along ``dim``."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, _legacy_dim(self.dim, x))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """Log-softmax along ``dim``."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(x, _legacy_dim(self.dim, x))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


def _legacy_dim(dim, x: Tensor) -> int:
    """torch's rule when no dim is given: dim 0 for 0-, 1- and 3-D inputs, else dim 1."""
    if dim is not None:
        return dim
    return 0 if x.ndim in (0, 1, 3) else 1


class _Elementwise(Module):
    """An activation with no settings: ``forward`` applies ``_fn``."""

    _fn = None

    def forward(self, x: Tensor) -> Tensor:
        return type(self)._fn(x)


class _InplaceFlag(Module):
    """An activation whose only setting is torch's ``inplace`` (accepted; deepgrad works out of place)."""

    _fn = None

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return type(self)._fn(x)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class SiLU(_InplaceFlag):
    """x * sigmoid(x) (swish)."""

    _fn = staticmethod(NF.silu)


class Mish(_InplaceFlag):
    """x * tanh(softplus(x))."""

    _fn = staticmethod(NF.mish)


class Hardsigmoid(_InplaceFlag):
    """relu6(x + 3) / 6."""

    _fn = staticmethod(NF.hardsigmoid)


class Hardswish(_InplaceFlag):
    """x * relu6(x + 3) / 6."""

    _fn = staticmethod(NF.hardswish)


class SELU(_InplaceFlag):
    """Self-normalising ELU: scale * elu(x, alpha) with fixed constants."""

    _fn = staticmethod(NF.selu)


class LogSigmoid(_Elementwise):
    """log(sigmoid(x)), computed stably."""

    _fn = staticmethod(NF.logsigmoid)


class Softsign(_Elementwise):
    """x / (1 + |x|)."""

    _fn = staticmethod(NF.softsign)


class Tanhshrink(_Elementwise):
    """x - tanh(x)."""

    _fn = staticmethod(NF.tanhshrink)


class Hardtanh(Module):
    """x clipped to [min_val, max_val] (gradient 1 strictly inside)."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
        super().__init__()
        if min_val > max_val:
            raise ValueError(f"Hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, x: Tensor) -> Tensor:
        return NF.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}" + (", inplace=True" if self.inplace else "")


class ReLU6(Hardtanh):
    """min(max(x, 0), 6)."""

    def __init__(self, inplace: bool = False):
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class CELU(Module):
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, x: Tensor) -> Tensor:
        return NF.celu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class Threshold(Module):
    """x where x > threshold, else value."""

    def __init__(self, threshold: float, value: float, inplace: bool = False):
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, x: Tensor) -> Tensor:
        return NF.threshold(x, self.threshold, self.value)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, value={self.value}" + (", inplace=True" if self.inplace else "")


class Hardshrink(Module):
    """x where |x| > lambd, else 0."""

    def __init__(self, lambd: float = 0.5):
        super().__init__()
        self.lambd = lambd

    def forward(self, x: Tensor) -> Tensor:
        return NF.hardshrink(x, self.lambd)

    def extra_repr(self) -> str:
        return f"{self.lambd}"


class Softshrink(Hardshrink):
    """Shrink towards 0 by lambd (0 inside [-lambd, lambd])."""

    def forward(self, x: Tensor) -> Tensor:
        return NF.softshrink(x, self.lambd)


class PReLU(Module):
    """x for x > 0, else a * x with a learned slope ``a`` (one, or one per channel), initialised to ``init``.

    >>> PReLU(num_parameters=3)(deepgrad.randn(2, 3, 4)).shape
    (2, 3, 4)
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters, self.init = num_parameters, init
        self.weight = Parameter(full((num_parameters,), init, dtype=dtype, device=device))

    def reset_parameters(self) -> None:
        from . import init as nn_init

        nn_init.constant_(self.weight, self.init)

    def forward(self, x: Tensor) -> Tensor:
        return NF.prelu(x, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class GLU(Module):
    """Gated linear unit: first half of ``dim`` times the sigmoid of the second half."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return NF.glu(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmin(Module):
    """softmax(-x) along ``dim``."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return NF.softmin(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax2d(Module):
    """Softmax over the channels of each location: dim -3 of (N, C, H, W) or (C, H, W) inputs."""

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (3, 4):
            raise ValueError(f"Softmax2d: expected input of 3 or 4 dimensions (C, H, W) / (N, C, H, W), got "
                             f"{x.ndim}-D input of shape {tuple(x.shape)}")
        return F.softmax(x, -3)
