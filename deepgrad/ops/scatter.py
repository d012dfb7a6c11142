"""Writing along a dim by an index tensor: scatter, scatter_add, scatter_reduce (the index ops that take
whole slices — index_select/add/copy/fill, masked_*, take, index_put — are in index_ops.py).

Along ``dim`` an index tensor names, for each of its elements, the position in ``dim`` where the matching
element of ``src`` goes (``out[i][index[i][j]] = src[i][j]`` for dim=1). The forward builds the full index
(``_along``) and lets a NumPy ufunc write or reduce there (repeated positions accumulate); each backward is
torch's formula, and each op declares the tensors torch saves (always the index).

>>> import deepgrad as dg
>>> dg.zeros(3).scatter_add(0, dg.tensor([0, 0, 2]), dg.tensor([1.0, 2.0, 3.0]))
tensor([3., 0., 3.])
"""

from __future__ import annotations

import builtins

import numpy as np

from ..autograd import OUT, Function, track_saved
from ..backend import array_module
from ..tensor import Tensor
from .reduce import normalize_dims

__all__ = ["scatter", "scatter_add", "scatter_reduce"]  # the public ops (deepgrad.functional exports them)


def _along(index, dim: int) -> tuple:
    """The full NumPy index that puts ``index`` along ``dim`` and every other dim in place."""
    idx = list(array_module(index).indices(index.shape, sparse=True))
    idx[dim] = index
    return tuple(idx)


def _block(a, shape):
    """The leading ``shape`` block of ``a`` (torch uses only as much of src as the index covers)."""
    return a if a.shape == tuple(shape) else a[tuple(slice(0, n) for n in shape)]


def _pad_to(g, shape):
    """``g`` (a block) placed in zeros of ``shape``."""
    if g.shape == tuple(shape):
        return g
    out = array_module(g).zeros(shape, dtype=g.dtype)
    out[tuple(slice(0, n) for n in g.shape)] = g
    return out


_UFUNCS = {"sum": np.add, "mean": np.add, "prod": np.multiply, "amax": np.maximum, "amin": np.minimum}


def ufunc_at(ufunc, target, index: tuple, values) -> None:
    """``target[index] = ufunc(target[index], values)`` with repeated positions reduced in turn."""
    if array_module(target) is np:
        ufunc.at(target, index, values)
        return
    import cupyx

    cupy_at = {np.add: cupyx.scatter_add, np.maximum: cupyx.scatter_max, np.minimum: cupyx.scatter_min}.get(ufunc)
    if cupy_at is None:
        raise NotImplementedError(f"scatter with {ufunc.__name__} is not available on the GPU")
    cupy_at(target, index, values)


def _identity(reduce: str, dtype):
    if reduce in ("sum", "mean"):
        return 0
    if reduce == "prod":
        return 1
    if dtype.kind == "f":
        return -np.inf if reduce == "amax" else np.inf
    if dtype.kind == "b":
        return reduce == "amin"
    info = np.iinfo(dtype)
    return info.min if reduce == "amax" else info.max


def scatter_reduce_array(x, dim: int, index, src, reduce: str, include_self: bool):
    """The forward of scatter_reduce on arrays (also serves scatter_add and scatter's ``reduce=``)."""
    xp = array_module(x)
    out = x.copy()
    at = _along(index, dim)
    src = _block(src, index.shape)
    if not include_self:
        out[at] = _identity(reduce, x.dtype)
    ufunc_at(_UFUNCS[reduce], out, at, src)
    if reduce == "mean":
        count = xp.full(x.shape, 1 if include_self else 0, dtype=np.int64)
        ufunc_at(np.add, count, at, xp.ones(index.shape, dtype=np.int64))
        count = xp.maximum(count, 1)
        out = out / count if x.dtype.kind == "f" else xp.floor_divide(out, count).astype(x.dtype)
    return out.astype(x.dtype, copy=False)


class Scatter(Function):
    """``out = x`` with ``src`` (or a number) written at the index: x's gradient is 0 there, src gathers."""

    saved = ((1,), (), (1,))

    def forward(self, x, index, src=None, dim=0, value=None):
        self.index, self.dim = index, dim
        self.src_shape = None if src is None else src.shape
        out = x.copy()
        out[_along(index, dim)] = value if src is None else _block(src, index.shape)
        return out

    def backward(self, g):
        at = _along(self.index, self.dim)
        gx = gs = None
        if self.next[0] is not None:
            gx = g.copy()
            gx[at] = 0
        if self.src_shape is not None and self.next[2] is not None:
            gs = _pad_to(g[at], self.src_shape)
        return (gx, None, gs) if self.src_shape is not None else (gx, None)


class ScatterAdd(Function):
    """``x`` with ``src`` added at the index: x's gradient passes, src gathers it (torch saves the index)."""

    saved = ((), (), (1,))

    def forward(self, x, index, src, dim):
        self.index, self.dim, self.src_shape = index, dim, src.shape
        return scatter_reduce_array(x, dim, index, src, "sum", True)

    def backward(self, g):
        gs = _pad_to(g[_along(self.index, self.dim)], self.src_shape) if self.next[2] is not None else None
        return g, None, gs


class ScatterReduce(Function):
    """scatter_reduce with torch's gradients for every mode; torch saves x, the index, src and the result."""

    saved = ((0, 1, 2, OUT), (), (0, 1, 2, OUT))

    def forward(self, x, index, src, dim, reduce, include_self):
        self.x, self.index, self.src, self.dim = x, index, src, dim
        self.reduce, self.include_self = reduce, include_self
        self.out = out = scatter_reduce_array(x, dim, index, src, reduce, include_self)
        return out

    def backward(self, g):
        xp = array_module(g)
        x, index, dim, reduce, out = self.x, self.index, self.dim, self.reduce, self.out
        src = _block(self.src, index.shape)
        at = _along(index, dim)
        with np.errstate(divide="ignore", invalid="ignore"):
            if reduce == "sum":
                gx, gs = g, g[at]
            elif reduce == "mean":
                count = xp.full(x.shape, 1 if self.include_self else 0, dtype=g.dtype)
                ufunc_at(np.add, count, at, xp.ones(index.shape, dtype=g.dtype))
                count = xp.where(count == 0, 1, count)
                gx = g / count
                gs = gx[at]
            elif reduce == "prod":
                gx, gs = self._prod_grads(g, x, src, at, out)
            else:  # amax / amin: shared evenly among the elements (of x and src) equal to the result
                x_hit = (x == out).astype(g.dtype)
                src_hit = (src == out[at]).astype(g.dtype)
                n = x_hit.copy()
                ufunc_at(np.add, n, at, src_hit)
                share = g / n
                gx, gs = x_hit * share, src_hit * share[at]
        if not self.include_self:
            gx = gx.copy()
            gx[at] = 0
        return gx.astype(g.dtype, copy=False), None, _pad_to(gs.astype(g.dtype, copy=False), self.src.shape)

    def _prod_grads(self, g, x, src, at, out):
        xp = array_module(g)
        dim, index, include_self = self.dim, self.index, self.include_self
        # x: the product of everything else reduced into its place (x's zeros replaced by 1 first)
        x1 = xp.where(x == 0, 1, x)
        gx = g * scatter_reduce_array(x1, dim, index, src, "prod", include_self) / x1
        # src: where src holds its place's only zero, the product of the others; elsewhere result / src
        zero = src == 0
        zeros_there = xp.zeros(x.shape, dtype=np.int64)
        ufunc_at(np.add, zeros_there, at, zero.astype(np.int64))
        single = zero & (zeros_there[at] == 1)
        others = scatter_reduce_array(x, dim, index, xp.where(single, 1, src), "prod", include_self)
        gs = xp.where(single, (g * others)[at], (g * out)[at] / xp.where(zero, 1, src))
        return gx, gs


# ----------------------------------------------------------------------------- checks
def index_tensor(name: str, index) -> Tensor:
    if not isinstance(index, Tensor):
        raise TypeError(f"{name}(): argument 'index' must be Tensor, not {type(index).__name__}")
    if index.array.dtype not in (np.int64, np.int32):
        raise RuntimeError(f"{name}(): Expected dtype int32/int64 for index")
    return index


def _check_scatter(name: str, x: Tensor, dim, index, src) -> int:
    (axis,) = normalize_dims(dim, builtins.max(x.ndim, 1), name)
    index_tensor(name, index)
    if index.ndim != x.ndim and not (index.ndim <= 1 and x.ndim <= 1):
        raise RuntimeError(f"{name}(): Index tensor must have the same number of dimensions as self tensor "
                           f"(index {tuple(index.shape)}, self {tuple(x.shape)})")
    if isinstance(src, Tensor):
        if src.ndim != index.ndim and not (index.ndim <= 1 and src.ndim <= 1):
            raise RuntimeError(f"{name}(): Index tensor must have the same number of dimensions as src tensor")
        if src.array.dtype != x.array.dtype:
            raise RuntimeError(f"{name}(): Expected self.dtype to be equal to src.dtype")
        if type(src.array) is not type(x.array):
            raise RuntimeError(f"{name}(): expected all tensors on the same device, got {x.device} and {src.device}")
    ishape, xshape = tuple(index.shape) or (1,), tuple(x.shape) or (1,)
    sshape = (tuple(src.shape) or (1,)) if isinstance(src, Tensor) else ishape
    if index.array.size and (builtins.any(ishape[d] > xshape[d] for d in range(len(ishape)) if d != axis)
                             or builtins.any(ishape[d] > sshape[d] for d in range(len(ishape)))):
        raise RuntimeError(f"{name}(): Expected index {list(index.shape)} to be smaller than self {list(x.shape)} "
                           f"apart from dimension {axis} and to be smaller size than src {list(sshape)}")
    in_range(index.array, xshape[axis], axis)
    return axis


def in_range(index, size: int, axis: int) -> None:
    if index.size:
        lo, hi = int(index.min()), int(index.max())
        if lo < -size or hi >= size:
            raise RuntimeError(f"index {hi if hi >= size else lo} is out of bounds for dimension {axis} with size "
                               f"{size}")


def as_nd(x: Tensor) -> Tensor:
    return x.reshape(1) if x.ndim == 0 else x


def restore_0d(out: Tensor, x: Tensor) -> Tensor:
    return out.reshape(()) if x.ndim == 0 else out


# ----------------------------------------------------------------------------- public API
_REDUCE_ARG = {"add": "sum", "multiply": "prod"}


def scatter(input: Tensor, dim: int, index: Tensor, src=None, *, value=None, reduce: str | None = None) -> Tensor:
    """A copy of ``input`` with ``src`` (a tensor, or a number) written at ``index`` along ``dim``.

    >>> scatter(zeros(2, 3), 1, tensor([[2], [0]]), 5.0)
    tensor([[0., 0., 5.],
            [5., 0., 0.]])
    """
    if src is None:
        src = value
    if src is None:
        raise TypeError("scatter() missing 1 required argument: 'src' or 'value'")
    axis = _check_scatter("scatter", input, dim, index, src)
    x, idx = as_nd(input), as_nd(index)
    idx_nd = Tensor._make(idx.array.astype(np.int64, copy=False), None)
    if reduce is not None:
        if reduce not in _REDUCE_ARG:
            raise RuntimeError(f"reduce argument must be either add or multiply. Got {reduce}")
        s = src.array if isinstance(src, Tensor) else array_module(x.array).full(idx.shape, src, dtype=x.dtype)
        out = NotDifferentiableScatter.apply(x, fn=lambda a: scatter_reduce_array(
            a, axis, idx_nd.array, s.reshape(idx.shape) if s.ndim == 0 else s, _REDUCE_ARG[reduce], True))
        return restore_0d(out, input)
    if isinstance(src, Tensor):
        out = Scatter.apply(x, idx_nd, as_nd(src), dim=axis)
    else:
        out = Scatter.apply(x, idx_nd, dim=axis, value=src)
    return restore_0d(track_saved(out, index), input)  # torch saves the caller's index tensor


class NotDifferentiableScatter(Function):
    """scatter with ``reduce=``: torch records it but has no derivative."""

    saved = ()

    def forward(self, x, fn):
        return fn(x)

    def backward(self, g):
        raise RuntimeError("derivative for aten::scatter is not implemented")


def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """A copy of ``input`` with ``src`` added at ``index`` along ``dim`` (repeated positions accumulate)."""
    if not isinstance(src, Tensor):
        raise TypeError(f"scatter_add(): argument 'src' must be Tensor, not {type(src).__name__}")
    axis = _check_scatter("scatter_add", input, dim, index, src)
    idx = Tensor._make(as_nd(index).array.astype(np.int64, copy=False), None)
    return restore_0d(track_saved(ScatterAdd.apply(as_nd(input), idx, as_nd(src), dim=axis), index), input)


def scatter_reduce(input: Tensor, dim: int, index: Tensor, src: Tensor, reduce: str, *,
                   include_self: bool = True) -> Tensor:
    """``input`` with ``src`` reduced into ``index`` along ``dim`` by ``reduce`` ("sum", "prod", "mean",
    "amax", "amin"), counting input's own value unless ``include_self=False``."""
    reduce = {"max": "amax", "min": "amin"}.get(reduce, reduce)  # torch accepts these two old names too
    if reduce not in _UFUNCS:
        raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}")
    if not isinstance(src, Tensor):
        raise TypeError(f"scatter_reduce(): argument 'src' must be Tensor, not {type(src).__name__}")
    axis = _check_scatter("scatter_reduce", input, dim, index, src)
    idx = Tensor._make(as_nd(index).array.astype(np.int64, copy=False), None)
    out = ScatterReduce.apply(as_nd(input), idx, as_nd(src), dim=axis, reduce=reduce, include_self=include_self)
    return restore_0d(track_saved(out, index), input)
