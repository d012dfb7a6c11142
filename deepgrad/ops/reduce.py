"""Reductions (sum, mean, var, max/min, logsumexp), softmax / log-softmax, gather.

softmax, log_softmax and logsumexp are fused: one stable forward (the max is subtracted
before exp) and a closed-form backward, instead of a chain of autograd nodes.
"""

from __future__ import annotations

import builtins
import math

import numpy as np

from .. import backend
from ..autograd import OUT, Function
from ..backend import array_module
from ..kernels import softmax as K
from ..tensor import Tensor, min_max_result


def normalize_dims(dim, ndim: int, name: str) -> tuple:
    """``dim`` (None, int or sequence) as a tuple of non-negative axes, checked against ``ndim``."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    lo, hi = -builtins.max(ndim, 1), builtins.max(ndim, 1) - 1
    out = []
    for d in dims:
        if not lo <= d <= hi:
            raise IndexError(
                f"{name}: dimension out of range (expected to be in range of [{lo}, {hi}], but got {d})"
            )
        out.append(d % builtins.max(ndim, 1) if ndim else 0)
    if ndim == 0:
        return ()
    return tuple(out)


def expand_reduced(g, shape: tuple, axes: tuple, keepdim: bool):
    """Broadcast a reduced gradient back to the input's ``shape``."""
    xp = array_module(g)
    if g.size == 1 and len(shape) == len(axes) and xp is np and math.prod(shape) <= 65536:
        out = np.empty(shape, dtype=g.dtype)  # a full reduction of a small tensor: fill beats broadcast_to's
        out.fill(g.reshape(()))               # Python-level set-up (measured 2.9 -> 0.5 us)
        return out
    if not keepdim and axes:
        g = g.reshape([1 if i in axes else n for i, n in enumerate(shape)])
    return xp.broadcast_to(g, shape)


def expand_reduced_graph(g: Tensor, shape: tuple, axes: tuple, keepdim: bool) -> Tensor:
    """:func:`expand_reduced` on Tensors (recorded, for a differentiable backward)."""
    if not keepdim and axes:
        g = g.reshape([1 if i in axes else n for i, n in enumerate(shape)])
    return g.expand(shape)


def _count(shape: tuple, axes: tuple) -> int:
    n = 1
    for a in axes:
        n *= shape[a]
    return n


class Sum(Function):
    saved = ()

    def forward(self, x, axes, keepdim, dtype=None):
        self.shape, self.axes, self.keepdim = x.shape, axes, keepdim
        return x.sum(axis=axes, keepdims=keepdim, dtype=dtype)

    def backward(self, g):
        return expand_reduced(g, self.shape, self.axes, self.keepdim)

    def backward_graph(self, g):
        return expand_reduced_graph(g, self.shape, self.axes, self.keepdim)


class Mean(Function):
    saved = ()

    def forward(self, x, axes, keepdim):
        self.shape, self.axes, self.keepdim = x.shape, axes, keepdim
        self.n = n = _count(x.shape, axes)
        if n == 0 or x.dtype.kind != "f":
            return x.mean(axis=axes, keepdims=keepdim)  # NumPy's nan (and warning) for an empty mean
        # NumPy's mean is this sum and division (float16 summed in float32), without its Python-level
        # wrapper: 4.4 -> 1.5 us on a small tensor
        acc = np.float32 if x.dtype == np.float16 else None
        out = x.sum(axis=axes, keepdims=keepdim, dtype=acc) / (acc or x.dtype.type)(n)
        return out.astype(x.dtype, copy=False) if acc is not None else out

    def backward(self, g):
        return expand_reduced(g / self.n, self.shape, self.axes, self.keepdim)

    def backward_graph(self, g):
        return expand_reduced_graph(g / self.n, self.shape, self.axes, self.keepdim)


class Var(Function):
    saved = ((0,),)

    def forward(self, x, axes, correction, keepdim):
        self.axes, self.keepdim = axes, keepdim
        self.d = d = x - x.mean(axis=axes, keepdims=True)
        self.denom = builtins.max(_count(x.shape, axes) - correction, 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (d * d).sum(axis=axes, keepdims=keepdim) / x.dtype.type(self.denom)

    def backward(self, g):
        d = self.d
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = d * (2 / d.dtype.type(self.denom))
        return expand_reduced(g, d.shape, self.axes, self.keepdim) * scale

    def backward_graph(self, g):
        return self._var_grad(expand_reduced_graph(g, self.d.shape, self.axes, self.keepdim))

    def _var_grad(self, g: Tensor) -> Tensor:
        x = self.saved_input(0)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = 2 / self.d.dtype.type(self.denom)
        return g * (x - x.mean(self.axes, keepdim=True)) * scale


class Std(Var):
    """sqrt(var) as one node (fused: torch's gradient is 0, not nan, where the deviation is 0)."""

    saved = ((0, OUT),)

    def forward(self, x, axes, correction, keepdim):
        self.out = out = np.sqrt(super().forward(x, axes, correction, keepdim))
        return out

    def backward(self, g):
        out = self.out
        with np.errstate(divide="ignore", invalid="ignore"):
            g = g / (2 * out)
        return super().backward(array_module(g).where(out == 0, 0, g).astype(g.dtype, copy=False))

    def backward_graph(self, g):
        from .elementwise import where

        out = self.saved_output(self.out)
        zero = Tensor._make(self.out == 0, None)
        # torch's 0 where the deviation is 0, through a safe denominator (0 * (1 / 0) would poison the next
        # derivative with nan)
        g = where(zero, 0.0, g / (where(zero, 1.0, out) * 2))
        return self._var_grad(expand_reduced_graph(g, self.d.shape, self.axes, self.keepdim))


class Amax(Function):
    """max/min over dims; the gradient is shared evenly among tied maxima (torch's amax)."""

    saved = ((0, OUT),)

    def forward(self, x, axes, keepdim, largest):
        out = x.max(axis=axes, keepdims=True) if largest else x.min(axis=axes, keepdims=True)
        self.mask = mask = x == out
        self.count = mask.sum(axis=axes, keepdims=True)
        self.axes, self.keepdim = axes, keepdim
        return out if keepdim else out.reshape([n for i, n in enumerate(x.shape) if i not in axes])

    def backward(self, g):
        mask = self.mask
        g = expand_reduced(g, mask.shape, self.axes, self.keepdim)
        return g * mask / self.count.astype(g.dtype)

    def backward_graph(self, g):  # the tie weights are a step function of x: a constant
        mask = self.mask
        share = Tensor._make((mask / self.count).astype(g.array.dtype, copy=False), None)
        return expand_reduced_graph(g, mask.shape, self.axes, self.keepdim) * share


class Gather(Function):
    """``out[i][j][k] = x[i][index[i][j][k]][k]`` along ``dim``; backward scatter-adds."""

    saved = ((0, 1), ())

    def forward(self, x, index, dim):
        self.shape, self.index, self.dim = x.shape, index, dim
        if index.shape != x.shape:  # torch lets index be smaller than x in the other dims
            x = x[tuple(slice(None) if i == dim else slice(0, n) for i, n in enumerate(index.shape))]
        return array_module(x).take_along_axis(x, index, axis=dim)

    def backward(self, g):
        xp = array_module(g)
        gx = xp.zeros(self.shape, dtype=g.dtype)
        idx = list(xp.indices(self.index.shape, sparse=True))
        idx[self.dim] = self.index
        backend.scatter_add(gx, tuple(idx), g)
        return gx, None

    def backward_graph(self, g):
        from .adjoint import index_scatter

        xp = array_module(self.index)
        idx = list(xp.indices(self.index.shape, sparse=True))
        idx[self.dim] = self.index
        return index_scatter(g, self.shape, None, tuple(idx), True), None


class SelectAlong(Gather):
    """The values of max/min along a dim, picked by their indices: torch saves only the indices."""

    saved = ((1,), ())


class LogSumExp(Function):
    saved = ((0, OUT),)

    def forward(self, x, axes, keepdim):
        xp = array_module(x)
        if x.size == 0:  # max() has no identity; the sum of no exponentials is 0, its log -inf
            m = xp.zeros([1 if i in axes else n for i, n in enumerate(x.shape)], dtype=x.dtype)
        else:
            m = x.max(axis=axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)
        with np.errstate(divide="ignore"):  # log(0) = -inf when every input is -inf, as in torch
            out = np.log(np.exp(x - m).sum(axis=axes, keepdims=True)) + m
        self.x, self.out, self.axes, self.keepdim = x, out, axes, keepdim
        return out if keepdim else out.reshape([n for i, n in enumerate(x.shape) if i not in axes])

    def backward(self, g):
        x = self.x
        return expand_reduced(g, x.shape, self.axes, self.keepdim) * np.exp(x - self.out)

    def backward_graph(self, g):
        shape, axes, keepdim = self.x.shape, self.axes, self.keepdim
        out = self.saved_output(self.out if keepdim else self.out.reshape([n for i, n in enumerate(shape)
                                                                            if i not in axes]))
        softmax = (self.saved_input(0) - expand_reduced_graph(out, shape, axes, keepdim)).exp()
        return expand_reduced_graph(g, shape, axes, keepdim) * softmax


class Softmax(Function):
    saved = ((OUT,),)

    def forward(self, x, dim):
        if x.size == 0:  # nothing to normalise (and max() of an empty axis has no identity)
            self.out, self.dim = x, dim
            return x.copy()
        self.out = out = K.softmax_forward(x, dim)
        self.dim = dim
        return out

    def backward(self, g):
        return K.softmax_backward(g, self.out, self.dim)

    def backward_graph(self, g):
        s = self.saved_output(self.out)
        return s * (g - (g * s).sum(self.dim, keepdim=True))


class LogSoftmax(Function):
    saved = ((OUT,),)

    def forward(self, x, dim):
        if x.size == 0:
            self.out, self.dim = x, dim
            return x.copy()
        self.out = out = K.log_softmax_forward(x, dim)
        self.dim = dim
        return out

    def backward(self, g):
        return K.log_softmax_backward(g, self.out, self.dim)

    def backward_graph(self, g):
        return g - self.saved_output(self.out).exp() * g.sum(self.dim, keepdim=True)


# ----------------------------------------------------------------------------- public API
def _dim_or_axis(dim, axis, name: str):
    """NumPy's ``axis=`` is accepted for ``dim=``, as torch does (``x.sum(axis=0)``)."""
    if dim is not None and dim != ():
        raise TypeError(f"{name}(): got values for both 'dim' and its alias 'axis'")
    return axis


def sum(x: Tensor, dim=None, keepdim: bool = False, dtype=None, *, axis=None) -> Tensor:
    """Sum over ``dim`` (all dims when None). Booleans and integers sum to int64."""
    if axis is not None:
        dim = _dim_or_axis(dim, axis, "sum")
    axes = normalize_dims(dim, x.ndim, "sum")
    if dtype is not None and x.array.dtype.kind == "f":
        x, dtype = x.to(dtype), None  # cast first, so the gradient returns in x's own dtype
    elif dtype is None and x.array.dtype.kind in "biu":
        dtype = backend.int64
    return Sum.apply(x, axes=axes, keepdim=keepdim, dtype=dtype)


def mean(x: Tensor, dim=None, keepdim: bool = False, dtype=None, *, axis=None) -> Tensor:
    """Arithmetic mean over ``dim`` (floating inputs, as in torch)."""
    if axis is not None:
        dim = _dim_or_axis(dim, axis, "mean")
    if dtype is not None:
        x = x.to(dtype)
    if x.array.dtype.kind != "f":
        raise RuntimeError(
            f"mean(): could not infer output dtype. Input dtype must be floating point, got {x.dtype}"
        )
    return Mean.apply(x, axes=normalize_dims(dim, x.ndim, "mean"), keepdim=keepdim)


def var(x: Tensor, dim=None, unbiased: bool | None = None, keepdim: bool = False, *, axis=None,
        correction=None) -> Tensor:
    """Variance over ``dim`` with Bessel's correction by default (``correction=1``)."""
    if axis is not None:
        dim = _dim_or_axis(dim, axis, "var")
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    return Var.apply(x, axes=normalize_dims(dim, x.ndim, "var"), correction=correction, keepdim=keepdim)


def std(x: Tensor, dim=None, unbiased: bool | None = None, keepdim: bool = False, *, axis=None,
        correction=None) -> Tensor:
    """Standard deviation: the square root of :func:`var`."""
    if axis is not None:
        dim = _dim_or_axis(dim, axis, "std")
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    return Std.apply(x, axes=normalize_dims(dim, x.ndim, "std"), correction=correction, keepdim=keepdim)


def amax(x: Tensor, dim=(), keepdim: bool = False, *, axis=None) -> Tensor:
    """Maximum over ``dim`` (all dims for ``()``/None); ties share the gradient evenly."""
    if axis is not None:
        dim = _dim_or_axis(dim, axis, "amax")
    axes = normalize_dims(None if dim == () else dim, x.ndim, "amax")
    return _extreme(x, axes, keepdim, True, "amax")


def amin(x: Tensor, dim=(), keepdim: bool = False, *, axis=None) -> Tensor:
    """Minimum over ``dim`` (all dims for ``()``/None); ties share the gradient evenly."""
    if axis is not None:
        dim = _dim_or_axis(dim, axis, "amin")
    axes = normalize_dims(None if dim == () else dim, x.ndim, "amin")
    return _extreme(x, axes, keepdim, False, "amin")


def _extreme(x: Tensor, axes, keepdim, largest: bool, name: str) -> Tensor:
    if x.array.size == 0 or builtins.any(x.shape[a] == 0 for a in axes):
        raise IndexError(f"{name}(): expected a non-empty reduction, got input of shape {x.shape}")
    return Amax.apply(x, axes=axes, keepdim=keepdim, largest=largest)


def _max_or_min(x: Tensor, dim, keepdim: bool, other, largest: bool):
    name = "max" if largest else "min"
    if isinstance(dim, Tensor):  # max(a, b): the elementwise maximum
        dim, other = None, dim
    if other is not None:
        from .arithmetic import binary
        from .elementwise import Maximum, Minimum

        return binary(Maximum if largest else Minimum, name, x, other)
    if dim is None:
        return _extreme(x, normalize_dims(None, x.ndim, name), False, largest, name)
    if x.ndim == 0:  # torch accepts dim 0 / -1 for a 0-d tensor
        normalize_dims(dim, 1, name)
        values, indices = _max_or_min(x.reshape(1), 0, False, None, largest)
        return min_max_result(values.reshape(()), indices.reshape(()))
    (axis,) = normalize_dims(dim, x.ndim, name)
    if x.shape[axis] == 0:
        raise IndexError(f"{name}(): cannot reduce over an empty dimension {dim} of shape {x.shape}")
    xp = array_module(x.array)
    pick = xp.argmax if largest else xp.argmin
    idx = pick(x.array, axis=axis, keepdims=True)
    values = SelectAlong.apply(x, Tensor._make(idx, None), dim=axis)
    if not keepdim:
        values = values.squeeze(axis)
        idx = idx.squeeze(axis)
    return min_max_result(values, Tensor._make(idx.astype(backend.int64, copy=False), None))


def max(x: Tensor, dim=None, keepdim: bool = False, *, axis=None, other=None):
    """``max(x)`` -> scalar; ``max(x, dim)`` -> (values, indices); ``max(x, y)`` -> elementwise."""
    if axis is not None:
        dim = _dim_or_axis(dim, axis, "max")
    return _max_or_min(x, dim, keepdim, other, True)


def min(x: Tensor, dim=None, keepdim: bool = False, *, axis=None, other=None):
    """``min(x)`` -> scalar; ``min(x, dim)`` -> (values, indices); ``min(x, y)`` -> elementwise."""
    if axis is not None:
        dim = _dim_or_axis(dim, axis, "min")
    return _max_or_min(x, dim, keepdim, other, False)


def argmax(x: Tensor, dim=None, keepdim: bool = False, *, axis=None) -> Tensor:
    """Index of the maximum (of the flattened tensor when ``dim`` is None)."""
    if axis is not None:
        dim = _dim_or_axis(dim, axis, "argmax")
    return _arg(x, dim, keepdim, True)


def argmin(x: Tensor, dim=None, keepdim: bool = False, *, axis=None) -> Tensor:
    """Index of the minimum (of the flattened tensor when ``dim`` is None)."""
    if axis is not None:
        dim = _dim_or_axis(dim, axis, "argmin")
    return _arg(x, dim, keepdim, False)


def _arg(x: Tensor, dim, keepdim, largest):
    xp = array_module(x.array)
    pick = xp.argmax if largest else xp.argmin
    if dim is None:
        out = pick(x.array.reshape(-1))
        if keepdim:
            out = xp.asarray(out).reshape((1,) * x.ndim)
    elif x.ndim == 0:
        normalize_dims(dim, 1, "argmax" if largest else "argmin")
        out = xp.zeros((), dtype=backend.int64)
    else:
        (axis,) = normalize_dims(dim, x.ndim, "argmax" if largest else "argmin")
        out = pick(x.array, axis=axis, keepdims=keepdim)
    return Tensor._make(xp.asarray(out).astype(backend.int64, copy=False), None)


def logsumexp(x: Tensor, dim=None, keepdim: bool = False, *, axis=None) -> Tensor:
    """log(sum(exp(x))) over ``dim``, computed stably."""
    if axis is not None:
        dim = _dim_or_axis(dim, axis, "logsumexp")
    elif dim is None:
        raise TypeError('logsumexp() missing 1 required positional arguments: "dim"')
    return LogSumExp.apply(x, axes=normalize_dims(dim, x.ndim, "logsumexp"), keepdim=keepdim)


def softmax(x: Tensor, dim: int, dtype=None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim``, stable for large inputs."""
    if dtype is not None:
        x = x.to(dtype)
    if x.ndim == 0:  # torch accepts dim 0 / -1 for a 0-d tensor
        normalize_dims(dim, 1, "softmax")
        return softmax(x.reshape(1), 0).reshape(())
    (axis,) = normalize_dims(dim, x.ndim, "softmax")
    return Softmax.apply(x, dim=axis)


def log_softmax(x: Tensor, dim: int, dtype=None) -> Tensor:
    """x - logsumexp(x) along ``dim``, stable for large inputs."""
    if dtype is not None:
        x = x.to(dtype)
    if x.ndim == 0:
        normalize_dims(dim, 1, "log_softmax")
        return log_softmax(x.reshape(1), 0).reshape(())
    (axis,) = normalize_dims(dim, x.ndim, "log_softmax")
    return LogSoftmax.apply(x, dim=axis)


def gather(x: Tensor, dim: int, index: Tensor, *, sparse_grad: bool = False) -> Tensor:
    """Values of ``x`` at ``index`` along ``dim`` (torch.gather). ``sparse_grad`` is accepted: deepgrad's
    gradient is always dense (torch's sparse one holds the same values)."""
    (axis,) = normalize_dims(dim, x.ndim, "gather")
    if index.ndim != x.ndim:
        raise RuntimeError(
            f"gather: index must have as many dims as input ({x.ndim}), got shape {index.shape}"
        )
    if index.array.dtype.kind not in "iu":
        raise RuntimeError(f"gather: index must be an integer tensor, got {index.dtype}")
    if builtins.any(i != axis and n > x.shape[i] for i, n in enumerate(index.shape)):
        raise RuntimeError(
            f"gather: index of shape {tuple(index.shape)} must not be larger than input of shape "
            f"{tuple(x.shape)} apart from dimension {dim}"
        )
    return Gather.apply(x, index, dim=axis)


def all(x: Tensor, dim=None, keepdim: bool = False, *, axis=None) -> Tensor:
    if axis is not None:
        dim = _dim_or_axis(dim, axis, "all")
    return Tensor._make(x.array.all(axis=normalize_dims(dim, x.ndim, "all"), keepdims=keepdim), None)


def any(x: Tensor, dim=None, keepdim: bool = False, *, axis=None) -> Tensor:
    if axis is not None:
        dim = _dim_or_axis(dim, axis, "any")
    return Tensor._make(x.array.any(axis=normalize_dims(dim, x.ndim, "any"), keepdims=keepdim), None)
