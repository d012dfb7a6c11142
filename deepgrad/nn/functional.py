"""``deepgrad.nn.functional``: the functional form of every layer, loss and activation
(torch.nn.functional's names and signatures).

>>> import deepgrad.nn.functional as F
>>> F.conv2d(deepgrad.randn(1, 3, 8, 8), deepgrad.randn(4, 3, 3, 3), padding=1).shape
(1, 4, 8, 8)
"""

import numpy as np

from .. import functional as _F
from ..functional import (  # noqa: F401
    elu,
    gelu,
    leaky_relu,
    linear,
    log_softmax,
    pad,
    relu,
    sigmoid,
    softmax,
    softplus,
    tanh,
)
from ..functional import flatten as _flatten
from ..ops import pool as _pool
from ..ops.attention import scaled_dot_product_attention  # noqa: F401
from ..ops.conv import conv1d, conv2d, conv_transpose1d, conv_transpose2d  # noqa: F401
from ..ops.dropout import (  # noqa: F401
    alpha_dropout,
    dropout,
    dropout1d,
    dropout2d,
    dropout3d,
    feature_alpha_dropout,
)
from ..ops.embedding import embedding  # noqa: F401
from ..ops.interpolate import interpolate, upsample, upsample_bilinear, upsample_nearest  # noqa: F401
from ..ops.loss import (  # noqa: F401
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    huber_loss,
    kl_div,
    l1_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
)
from ..ops.multihead_attention import multi_head_attention_forward  # noqa: F401
from ..ops.norm import batch_norm, group_norm, instance_norm, layer_norm  # noqa: F401
from ..ops.pool import (  # noqa: F401
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    avg_pool1d,
    avg_pool2d,
    max_unpool2d,
    sum_pool1d,
    sum_pool2d,
)
from ..tensor import Tensor
from ._composite import (  # noqa: F401
    channel_shuffle,
    cosine_embedding_loss,
    hinge_embedding_loss,
    margin_ranking_loss,
    multilabel_soft_margin_loss,
    pixel_shuffle,
    pixel_unshuffle,
    poisson_nll_loss,
    rms_norm,
    soft_margin_loss,
    triplet_margin_loss,
)

flatten = _flatten


def _integer_max_pool(pool, name: str):
    """torch pools integer tensors with max (no gradient); the pooling kernels are float, so an integer input
    is pooled in float64, which holds every int32 exactly (int64 up to 2**53, checked)."""

    def op(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
           return_indices: bool = False):
        if not isinstance(input, Tensor) or input.array.dtype.kind not in "iub":
            return pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
        if input.array.dtype.kind == "b" or name == "max_pool1d":  # torch has no integer max_pool1d kernel
            from ..ops.promotion import torch_name

            kernel = "max_pool1d_impl" if name == "max_pool1d" else name
            raise NotImplementedError(f'"{kernel}" not implemented for \'{torch_name(input.dtype)}\'')
        if input.array.dtype.itemsize == 8 and input.numel() and int(abs(input.array).max()) > 2 ** 53:
            raise RuntimeError(f"{name}: int64 values beyond 2**53 cannot be pooled exactly by deepgrad")
        out = pool(input.to(np.float64), kernel_size, stride, padding, dilation, ceil_mode, return_indices)
        if return_indices:
            return out[0].to(input.dtype), out[1]
        return out.to(input.dtype)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = pool.__doc__
    return op


max_pool1d = _integer_max_pool(_pool.max_pool1d, "max_pool1d")
max_pool2d = _integer_max_pool(_pool.max_pool2d, "max_pool2d")


def one_hot(tensor, num_classes: int = -1):
    """Integer class indices -> int64 one-hot vectors along a new last dim."""
    from ..backend import array_module, int64
    from ..creation import as_tensor

    idx = tensor.array
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"one_hot: expected an integer tensor of class indices, got {tensor.dtype}")
    if num_classes < 0:
        num_classes = int(idx.max()) + 1 if idx.size else 0
    if idx.size and (idx.min() < 0 or idx.max() >= num_classes):
        raise RuntimeError(f"one_hot: class values must be in [0, {num_classes}), got [{idx.min()}, {idx.max()}]")
    xp = array_module(idx)
    return as_tensor((idx[..., None] == xp.arange(num_classes)).astype(int64))


# ----------------------------------------------------------------------------- activations built from ops
# Each is a composition of differentiable ops, arranged so that the gradient at the kinks is torch's
# (e.g. hardtanh passes no gradient *at* its bounds, clamp does), which a plain formula would not give.
def _constant(value, like: Tensor) -> Tensor:
    from ..ops.elementwise import as_tensor_like

    return as_tensor_like(value, like)


def _check_tensor(name: str, x) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: input must be a Tensor, got {type(x).__name__}")


def _check_float(name: str, x) -> None:
    """torch has no integer kernel for these: NotImplementedError (a RuntimeError), as torch raises."""
    _check_tensor(name, x)
    if not x.is_floating_point():
        raise NotImplementedError(f"{name}: not implemented for {x.dtype} input; expected a floating-point tensor")


def _bound(value, like: Tensor) -> Tensor:
    """A clipping bound as a constant in ``like``'s dtype (integer tensors stay integer, as in torch)."""
    return _constant(value if like.is_floating_point() else int(value), like)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x) (the swish of Ramachandran et al.).

    >>> F.silu(deepgrad.tensor([0.0, 1.0]))
    tensor([0.    , 0.7311])
    """
    _check_float("silu", input)
    return input * _F.sigmoid(input)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x)) (Misra, 2019)."""
    _check_float("mish", input)
    return input * _F.tanh(_F.softplus(input))


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """x clipped to [min_val, max_val]; the gradient is 1 strictly inside the interval, 0 elsewhere (torch)."""
    _check_tensor("hardtanh", input)
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
    inner = _F.where(input < max_val, input, _bound(max_val, input))
    return _F.where(input > min_val, inner, _bound(min_val, input))


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6): hardtanh(x, 0, 6)."""
    return hardtanh(input, 0.0, 6.0)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6, the piecewise-linear sigmoid of MobileNetV3."""
    _check_float("hardsigmoid", input)
    return hardtanh(input + 3.0, 0.0, 6.0) / 6.0


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * relu6(x + 3) / 6 (MobileNetV3); derivative x/3 + 1/2 strictly inside (-3, 3), as torch."""
    _check_float("hardswish", input)
    return input * hardtanh(input + 3.0, 0.0, 6.0) / 6.0


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale * elu(x, alpha) with the self-normalising constants of Klambauer et al. (2017)."""
    _check_float("selu", input)
    return _F.elu(input, _SELU_ALPHA) * _SELU_SCALE


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1)); the exponential only sees x <= 0 (no overflow)."""
    _check_float("celu", input)
    if alpha == 0:
        raise RuntimeError("celu: ZeroDivisionError, alpha cannot be 0")
    negative = _F.clamp(input, max=0.0)
    return _F.relu(input) + (_F.exp(negative / alpha) - 1.0) * alpha


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)) computed stably as min(x, 0) - log1p(exp(-|x|))."""
    _check_float("logsigmoid", input)
    return _F.minimum(input, _constant(0.0, input)) - _F.log1p(_F.exp(-_F.abs(input)))


def softsign(input: Tensor) -> Tensor:
    """x / (1 + |x|)."""
    _check_tensor("softsign", input)
    return input / (_F.abs(input) + 1.0)


def tanhshrink(input: Tensor) -> Tensor:
    """x - tanh(x)."""
    _check_tensor("tanhshrink", input)
    return input - _F.tanh(input)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, else ``value``."""
    _check_tensor("threshold", input)
    return _F.where(input > threshold, input, _bound(value, input))


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x where |x| > lambd, else 0."""
    _check_float("hardshrink", input)
    return _F.where(_F.abs(input) > lambd, input, _constant(0.0, input))


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x - lambd above lambd, x + lambd below -lambd, else 0."""
    _check_float("softshrink", input)
    if lambd < 0:
        raise RuntimeError(f"softshrink: lambda must be greater or equal to 0, but found to be {lambd}.")
    zero = _constant(0.0, input)
    return _F.where(input > lambd, input - lambd, _F.where(input < -lambd, input + lambd, zero))


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x where x > 0, else weight * x; ``weight`` has 1 or C (channel dim 1) entries."""
    _check_float("prelu", input)
    n = weight.numel()
    if n != 1:
        channels = input.shape[1] if input.ndim >= 2 else 1  # torch: no channel dim below 2-D
        if n != channels:
            raise RuntimeError(f"prelu: mismatch of parameter numbers and input channel size. Found parameter "
                               f"numbers = {n} and channel size = {channels}.")
        weight = weight.reshape((n,) + (1,) * (input.ndim - 2)) if input.ndim >= 2 else weight
    return _F.where(input > 0, input, weight * input)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """The gated linear unit: a * sigmoid(b) for the two halves a, b of ``dim``."""
    _check_float("glu", input)
    if input.ndim == 0:
        raise RuntimeError("glu: does not support scalars because halving size must be even")
    size = input.shape[dim]
    if size % 2:
        raise RuntimeError(f"glu: Halving dimension must be even, but dimension {dim % input.ndim} is size {size}")
    a, b = _F.split(input, size // 2, dim)
    return a * _F.sigmoid(b)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """softmax(-x) along ``dim``."""
    from .activation import _legacy_dim

    x = input if dtype is None else input.to(dtype)
    return _F.softmax(-x, _legacy_dim(dim, x))


# ----------------------------------------------------------------------------- norms and distances
def _vector_norm(x: Tensor, p: float, dim, keepdim: bool) -> Tensor:
    """The p-norm with torch's zero gradient at an all-zero vector (sqrt'(0) would give NaN)."""
    if p == float("inf"):
        return _F.amax(_F.abs(x), dim, keepdim)
    if p <= 0:
        raise ValueError(f"norm: p must be positive (or inf), got {p}")
    powered = x * x if p == 2 else _F.abs(x) ** p
    total = _F.sum(powered, dim, keepdim)
    nonzero = total > 0
    safe = _F.where(nonzero, total, _constant(1.0, total))
    root = _F.sqrt(safe) if p == 2 else safe ** (1.0 / p)
    return _F.where(nonzero, root, _constant(0.0, total))


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out=None) -> Tensor:
    """``input / max(||input||_p, eps)`` along ``dim``: unit vectors (zero vectors stay zero).

    >>> F.normalize(deepgrad.tensor([[3.0, 4.0]]), dim=1)
    tensor([[0.6000, 0.8000]])
    """
    _check_float("normalize", input)
    if out is not None:
        raise TypeError("normalize: out= is not supported in deepgrad (results are new tensors)")
    denom = _F.clamp(_vector_norm(input, p, dim, True), min=eps)
    return input / denom


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Cosine of the angle between ``x1`` and ``x2`` along ``dim``, each norm clamped to ``eps`` (torch)."""
    _check_float("cosine_similarity", x1)
    _check_float("cosine_similarity", x2)
    n1 = _F.clamp(_vector_norm(x1, 2, dim, True), min=eps)
    n2 = _F.clamp(_vector_norm(x2, 2, dim, True), min=eps)
    return _F.sum((x1 / n1) * (x2 / n2), dim)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    """||x1 - x2 + eps||_p along the last dim (torch adds ``eps`` to the difference)."""
    _check_float("pairwise_distance", x1)
    diff = x1 - x2 + eps
    return _vector_norm(diff, p, -1 if diff.ndim else None, keepdim)


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Tensor:
    """AlexNet's local response normalisation across channels:
    ``x_c / (k + alpha / size * sum of x_c'^2 over the size channels around c) ** beta`` (zero padded,
    ``size // 2`` before and ``(size - 1) // 2`` after, as torch).

    >>> F.local_response_norm(deepgrad.ones(1, 4, 2, 2), size=3).shape
    (1, 4, 2, 2)
    """
    _check_float("local_response_norm", input)
    if input.ndim < 3:
        raise ValueError(f"local_response_norm: Expected 3D or higher dimensionality input (got {input.ndim} "
                         f"dimensions)")
    if int(size) < 1:
        raise ValueError(f"local_response_norm: size must be a positive integer, got {size}")
    if input.numel() == 0:
        return input
    from ..creation import zeros

    channels = input.shape[1]
    squares = input * input

    def padding(n: int) -> list:
        shape = (input.shape[0], n) + tuple(input.shape[2:])
        return [zeros(*shape, dtype=input.dtype, device=input.device)] if n else []

    padded = _F.cat(padding(size // 2) + [squares] + padding((size - 1) // 2), 1)
    window = padded[:, 0:channels]
    for i in range(1, size):
        window = window + padded[:, i:i + channels]
    return input / ((window / size) * alpha + k) ** beta
