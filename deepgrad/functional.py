"""The public functional surface (like ``torch`` / ``torch.nn.functional``): thin, checked
entry points over the ops in :mod:`deepgrad.ops`.

>>> import deepgrad.functional as F
>>> F.relu(tensor([-1.0, 2.0]))
tensor([0., 2.])
"""

from __future__ import annotations

import builtins

from . import backend
from .dtype_info import can_cast, finfo, iinfo  # noqa: F401
from .ops import activation as A
from .ops import elementwise as E
from .ops.arithmetic import add, binary, div, floor_divide, mul, pow, remainder, sub  # noqa: F401  (public)
from .ops.binary_math import *  # noqa: F403  (each family module lists its public ops in __all__)
from .ops.cumulative import *  # noqa: F403
from .ops.diagonal import *  # noqa: F403
from .ops.einsum import *  # noqa: F403
from .ops.elementwise import clamp, where  # noqa: F401  (public)
from .ops.index_ops import *  # noqa: F403
from .ops.linalg import (  # noqa: F401
    addbmm,
    addmm,
    addmv,
    addr,
    baddbmm,
    bmm,
    cdist,
    cross,
    dot,
    ger,
    inner,
    kron,
    linear,
    matmul,
    mm,
    mv,
    norm,
    outer,
    vdot,
)
from .ops.logical import (  # noqa: F401
    bitwise_and,
    bitwise_left_shift,
    bitwise_not,
    bitwise_or,
    bitwise_right_shift,
    bitwise_xor,
    eq,
    ge,
    gt,
    isfinite,
    isinf,
    isnan,
    le,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    lt,
    ne,
)
from .ops.math import *  # noqa: F403
from .ops.promotion import promote_types, result_type  # noqa: F401
from .ops.rearrange import *  # noqa: F403
from .ops.reduce import (  # noqa: F401
    all,
    amax,
    amin,
    any,
    argmax,
    argmin,
    gather,
    log_softmax,
    logsumexp,
    max,
    mean,
    min,
    softmax,
    std,
    sum,
    var,
)
from .ops.reduce_extra import *  # noqa: F403
from .ops.scatter import *  # noqa: F403
from .ops.shape import (  # noqa: F401
    cat,
    chunk,
    expand,
    flatten,
    pad,
    permute,
    repeat,
    reshape,
    split,
    squeeze,
    stack,
    transpose,
    unbind,
    unsqueeze,
    view,
)
from .ops.sorting import *  # noqa: F403
from .tensor import Tensor


def _unary(cls):
    def op(x: Tensor) -> Tensor:
        return cls.apply(_float(x))

    op.__name__ = cls.__name__.lower()
    op.__doc__ = f"Elementwise {op.__name__} (differentiable)."
    return op


def _float(x: Tensor) -> Tensor:
    """Integer inputs to transcendental functions compute in the default float dtype."""
    if not isinstance(x, Tensor):
        raise TypeError(f"expected a Tensor, got {type(x).__name__}")
    return x if x.array.dtype.kind == "f" else E.cast(x, backend.get_default_dtype())


exp = _unary(E.Exp)
log = _unary(E.Log)
log1p = _unary(E.Log1p)
sqrt = _unary(E.Sqrt)
sin = _unary(E.Sin)
cos = _unary(E.Cos)
tanh = _unary(E.Tanh)
sigmoid = _unary(A.Sigmoid)


def neg(x: Tensor) -> Tensor:
    """Elementwise -x (integer tensors stay integer, as in torch)."""
    if x.array.dtype == bool:
        raise RuntimeError("Negation, the `-` operator, on a bool tensor is not supported. If you are trying to "
                           "invert a mask, use the `~` or `logical_not()` operator instead.")
    return E.Neg.apply(x)


def abs(x: Tensor) -> Tensor:
    """Elementwise |x| (gradient 0 at 0, as torch)."""
    if x.array.dtype == bool:
        raise NotImplementedError('"abs_cpu" not implemented for \'Bool\'')
    return E.Abs.apply(x)


def relu(x: Tensor) -> Tensor:
    """max(x, 0); the gradient at 0 is 0."""
    return A.Relu.apply(x)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x for x > 0, else ``negative_slope * x``."""
    return A.LeakyRelu.apply(x, negative_slope=negative_slope)


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x for x > 0, else ``alpha * (exp(x) - 1)``."""
    return A.Elu.apply(x, alpha=alpha)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x) (exact, with erf) or its tanh approximation (``approximate="tanh"``)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return A.Gelu.apply(_float(x), approximate=approximate)


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta * x)) / beta, linear where ``beta * x > threshold``."""
    return A.Softplus.apply(_float(x), beta=beta, threshold=threshold)


def maximum(a: Tensor, b: Tensor) -> Tensor:
    """Elementwise maximum; ties split the gradient in half (as torch)."""
    return binary(E.Maximum, "maximum", a, _tensor_arg("maximum", b))


def minimum(a: Tensor, b: Tensor) -> Tensor:
    """Elementwise minimum; ties split the gradient in half (as torch)."""
    return binary(E.Minimum, "minimum", a, _tensor_arg("minimum", b))


def _tensor_arg(name: str, b) -> Tensor:
    if not isinstance(b, Tensor):
        raise TypeError(f"{name}(): argument 'other' (position 2) must be Tensor, not {type(b).__name__}")
    return b


def sign(x: Tensor) -> Tensor:
    """-1, 0 or 1 by the sign of each element (a zero gradient, as torch)."""
    return E.Sign.apply(x)


def square(x: Tensor) -> Tensor:
    """``x * x`` (``x ** 2``)."""
    return pow(x, 2)


def masked_fill(x: Tensor, mask: Tensor, value) -> Tensor:
    """``x`` with ``value`` where ``mask`` is True, in x's dtype (the gradient there goes to a tensor value)."""
    if not isinstance(mask, Tensor) or mask.array.dtype != bool:
        got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype {got}")
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(f"masked_fill_ only supports a 0-dimensional value tensor, but got tensor with "
                               f"{value.ndim} dimension(s).")
        value = E.cast(value, x.array.dtype)
    return where(mask, value if isinstance(value, Tensor) else
                 Tensor._make(backend.array_module(x.array).asarray(value, dtype=x.array.dtype), None), x)


def clip(x: Tensor, min=None, max=None) -> Tensor:  # noqa: F811  (torch's argument names)
    return clamp(x, min, max)


def is_nonzero(input: Tensor) -> bool:
    """The truth value of a one-element tensor (an error for any other size, as torch)."""
    if input.numel() != 1:
        raise RuntimeError("Boolean value of Tensor with no values is ambiguous" if input.numel() == 0 else
                           "Boolean value of Tensor with more than one value is ambiguous")
    return bool(input.array.reshape(()))


def clone(input: Tensor, *, memory_format=None) -> Tensor:
    """A copy of ``input`` that stays in the graph (``torch.clone``)."""
    return input.clone()


def t(input: Tensor) -> Tensor:
    """Transpose a matrix (tensors of fewer than 2 dims are returned as they are)."""
    return input.t()


def detach(input: Tensor) -> Tensor:
    """``input.detach()``."""
    return input.detach()


def is_floating_point(input: Tensor) -> bool:
    return input.is_floating_point()


def is_complex(input: Tensor) -> bool:
    return False  # deepgrad has no complex tensors


def rsub(input: Tensor, other, *, alpha=1) -> Tensor:
    """``other - alpha * input``."""
    return sub(other, input, alpha=alpha) if isinstance(other, Tensor) else add(neg(input) * alpha, other)


def cov(input: Tensor, *, correction: int = 1, fweights: Tensor | None = None, aweights: Tensor | None = None):
    """The covariance matrix of the variables in the rows of ``input`` (observations in columns), with
    torch's frequency and observation weights."""
    from .ops.elementwise import cast as _cast
    from .ops.linalg import mm as _mm

    if input.ndim > 2:
        raise ValueError(f"cov(): expected input to have two or fewer dimensions but got an input with {input.ndim} "
                         f"dimensions")
    x = input.reshape(1, -1) if input.ndim < 2 else input
    if x.array.dtype.kind != "f":
        x = _cast(x, backend.get_default_dtype())
    n = x.shape[1]
    w = None
    if fweights is not None:
        w = fweights
    if aweights is not None:
        w = aweights if w is None else w * aweights
    if w is None:
        mean_ = mean(x, 1, keepdim=True)
        total = n - correction
        centred = x - mean_
        out = _mm(centred, centred.t()) / builtins.max(total, 0)
    else:
        w = w.to(x.dtype)
        w_sum = sum(w)
        mean_ = sum(x * w, 1, keepdim=True) / w_sum
        norm_factor = w_sum - correction if aweights is None or correction == 0 else \
            w_sum - correction * sum(w * aweights.to(x.dtype)) / w_sum
        centred = x - mean_
        out = _mm(centred * w, centred.t()) / norm_factor
    return out.squeeze() if input.ndim < 2 else out


def corrcoef(input: Tensor) -> Tensor:
    """Pearson correlation coefficients of the variables in the rows of ``input``, clipped to [-1, 1]."""
    c = cov(input)
    if c.ndim == 0:
        return c / c
    d = c.diagonal()
    stddev = sqrt(d)
    c = c / stddev.reshape(-1, 1)
    c = c / stddev.reshape(1, -1)
    return clamp(c, -1, 1)


def inverse(input: Tensor) -> Tensor:
    """``linalg.inv``."""
    from .linalg import inv

    return inv(input)


def det(input: Tensor) -> Tensor:
    """``linalg.det``."""
    from .linalg import det as _det

    return _det(input)


def logdet(input: Tensor) -> Tensor:
    """log(det(input)) (NaN for a negative determinant)."""
    from .linalg import logdet as _logdet

    return _logdet(input)


def slogdet(input: Tensor):
    """``linalg.slogdet``: (sign, log|det|)."""
    from .linalg import slogdet as _slogdet

    return _slogdet(input)


def matrix_power(input: Tensor, n: int) -> Tensor:
    """``linalg.matrix_power``."""
    from .linalg import matrix_power as _matrix_power

    return _matrix_power(input, n)


def cholesky(input: Tensor, upper: bool = False) -> Tensor:
    """``linalg.cholesky`` (torch's older name)."""
    from .linalg import cholesky as _cholesky

    return _cholesky(input, upper=upper)


concat = concatenate = cat  # torch's aliases
divide = true_divide = div
sgn = sign
absolute, multiply, subtract, negative = abs, mul, sub, neg
greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne


# What ``from deepgrad.functional import *`` (and so ``deepgrad.*``) exports: every public op above.
__all__ = sorted(name for name, value in list(globals().items())
                 if not name.startswith("_") and callable(value) and getattr(value, "__module__", "").startswith(
                     "deepgrad.") and name not in ("Tensor", "binary"))
