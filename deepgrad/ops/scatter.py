"""Writing by index: scatter, scatter_add, scatter_reduce, index_select/add/copy/fill, masked_select,
masked_scatter, take, take_along_dim, index_put, nonzero — and their in-place forms.

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

from .. import backend
from ..autograd import OUT, Function, track_saved
from ..backend import array_module
from ..tensor import Tensor
from .elementwise import unbroadcast
from .promotion import torch_name
from .reduce import normalize_dims

__all__ = [  # the public ops (deepgrad.functional exports them)
    "scatter", "scatter_add", "scatter_reduce", "index_select", "index_add", "index_copy", "index_fill",
    "masked_select", "masked_scatter", "take", "take_along_dim", "index_put", "nonzero", "argwhere", "count_nonzero",
]


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


class IndexSelect(Function):
    """``x`` restricted to positions ``index`` of ``dim``; backward adds the gradient back there."""

    saved = ((1,), ())

    def forward(self, x, index, dim):
        self.shape, self.index, self.dim = x.shape, index, dim
        return array_module(x).take(x, index, axis=dim)

    def backward(self, g):
        gx = array_module(g).zeros(self.shape, dtype=g.dtype)
        ufunc_at(np.add, gx, (slice(None),) * self.dim + (self.index,), g)
        return gx, None


class IndexAdd(Function):
    """``x`` with ``alpha * source`` added at positions ``index`` of ``dim`` (repeats accumulate); torch saves
    the index and the source (its gradient is expanded to the source's shape)."""

    saved = ((), (), (1, 2))

    def forward(self, x, index, source, dim, alpha):
        self.index, self.dim, self.alpha = index, dim, alpha
        out = x.copy()
        ufunc_at(np.add, out, (slice(None),) * dim + (index,), source * alpha if alpha != 1 else source)
        return out

    def backward(self, g):
        gs = None
        if self.next[2] is not None:
            gs = array_module(g).take(g, self.index, axis=self.dim)
            gs = gs * self.alpha if self.alpha != 1 else gs
        return g, None, gs


class IndexCopy(Function):
    """``x`` with positions ``index`` of ``dim`` replaced by ``source`` (or filled with a value)."""

    saved = staticmethod(lambda params: ((1,), (), (1, 2)) if params.get("value") is None else ((1,), ()))

    def forward(self, x, index, source=None, dim=0, value=None):
        self.index, self.dim, self.has_source = index, dim, source is not None
        out = x.copy()
        out[(slice(None),) * dim + (index,)] = source if source is not None else value
        return out

    def backward(self, g):
        place = (slice(None),) * self.dim + (self.index,)
        gx = None
        if self.next[0] is not None:
            gx = g.copy()
            gx[place] = 0
        if not self.has_source:
            return gx, None
        gs = array_module(g).take(g, self.index, axis=self.dim) if self.next[2] is not None else None
        return gx, None, gs


class MaskedSelect(Function):
    """The elements of ``x`` where ``mask`` (broadcast together) holds, as a 1-D tensor."""

    saved = ((0, 1), ())

    def forward(self, x, mask):
        xp = array_module(x)
        self.shape = x.shape
        self.full = shape = xp.broadcast_shapes(x.shape, mask.shape)
        self.mask = xp.broadcast_to(mask, shape)
        return xp.broadcast_to(x, shape)[self.mask]

    def backward(self, g):
        gx = array_module(g).zeros(self.full, dtype=g.dtype)
        gx[self.mask] = g
        return unbroadcast(gx, self.shape), None


class MaskedScatter(Function):
    """``x`` with the first elements of ``source`` written, in order, where ``mask`` holds."""

    saved = ((1,), (), (1,))

    def forward(self, x, mask, source):
        xp = array_module(x)
        self.mask = mask = xp.broadcast_to(mask, x.shape)
        self.source_shape, self.count = source.shape, int(mask.sum())
        out = x.copy()
        out[mask] = source.reshape(-1)[:self.count]
        return out

    def backward(self, g):
        xp = array_module(g)
        gx = gs = None
        if self.next[0] is not None:
            gx = xp.where(self.mask, 0, g).astype(g.dtype, copy=False)
        if self.next[2] is not None:
            flat = xp.zeros(int(np.prod(self.source_shape)), dtype=g.dtype)
            flat[:self.count] = g[self.mask]
            gs = flat.reshape(self.source_shape)
        return gx, None, gs


class Take(Function):
    """``x.flatten()[index]`` in index's shape; repeated positions accumulate their gradient."""

    saved = ((0, 1), ())

    def forward(self, x, index):
        self.shape, self.index = x.shape, index
        return x.reshape(-1)[index]

    def backward(self, g):
        gx = array_module(g).zeros(int(np.prod(self.shape)), dtype=g.dtype)
        ufunc_at(np.add, gx, self.index, g)
        return gx.reshape(self.shape), None


class IndexPutAccumulate(Function):
    """``x[indices] += values`` out of place, repeated positions accumulating (``accumulate=True``)."""

    saved = ()

    def forward(self, x, values, index):
        self.index, self.vshape = index, values.shape
        out = x.copy()
        target_shape = out[index].shape
        ufunc_at(np.add, out, index, array_module(x).broadcast_to(values, target_shape))
        return out

    def backward(self, g):
        gv = unbroadcast(g[self.index], self.vshape) if self.next[1] is not None else None
        return g, gv


# ----------------------------------------------------------------------------- checks
def _index_tensor(name: str, index) -> Tensor:
    if not isinstance(index, Tensor):
        raise TypeError(f"{name}(): argument 'index' must be Tensor, not {type(index).__name__}")
    if index.array.dtype not in (np.int64, np.int32):
        raise RuntimeError(f"{name}(): Expected dtype int32/int64 for index")
    return index


def _check_scatter(name: str, x: Tensor, dim, index, src) -> int:
    (axis,) = normalize_dims(dim, builtins.max(x.ndim, 1), name)
    _index_tensor(name, index)
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
    _in_range(index.array, xshape[axis], axis)
    return axis


def _in_range(index, size: int, axis: int) -> None:
    if index.size:
        lo, hi = int(index.min()), int(index.max())
        if lo < -size or hi >= size:
            raise RuntimeError(f"index {hi if hi >= size else lo} is out of bounds for dimension {axis} with size "
                               f"{size}")


def _as_nd(x: Tensor) -> Tensor:
    return x.reshape(1) if x.ndim == 0 else x


def _restore(out: Tensor, x: Tensor) -> Tensor:
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
    x, idx = _as_nd(input), _as_nd(index)
    idx_nd = Tensor._make(idx.array.astype(np.int64, copy=False), None)
    if reduce is not None:
        if reduce not in _REDUCE_ARG:
            raise RuntimeError(f"reduce argument must be either add or multiply. Got {reduce}")
        s = src.array if isinstance(src, Tensor) else array_module(x.array).full(idx.shape, src, dtype=x.dtype)
        out = NotDifferentiableScatter.apply(x, fn=lambda a: scatter_reduce_array(
            a, axis, idx_nd.array, s.reshape(idx.shape) if s.ndim == 0 else s, _REDUCE_ARG[reduce], True))
        return _restore(out, input)
    if isinstance(src, Tensor):
        out = Scatter.apply(x, idx_nd, _as_nd(src), dim=axis)
    else:
        out = Scatter.apply(x, idx_nd, dim=axis, value=src)
    return _restore(track_saved(out, index), input)  # torch saves the caller's index tensor


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
    idx = Tensor._make(_as_nd(index).array.astype(np.int64, copy=False), None)
    return _restore(track_saved(ScatterAdd.apply(_as_nd(input), idx, _as_nd(src), dim=axis), index), input)


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
    idx = Tensor._make(_as_nd(index).array.astype(np.int64, copy=False), None)
    out = ScatterReduce.apply(_as_nd(input), idx, _as_nd(src), dim=axis, reduce=reduce, include_self=include_self)
    return _restore(track_saved(out, index), input)


def _index_arg(name: str, x: Tensor, dim, index) -> tuple:
    (axis,) = normalize_dims(dim, builtins.max(x.ndim, 1), name)
    _index_tensor(name, index)
    if index.ndim > 1:
        raise IndexError(f"{name}(): Index is supposed to be a vector")
    _in_range(index.array, (x.shape or (1,))[axis], axis)
    return axis, index.array.reshape(-1).astype(np.int64, copy=False)


def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    """The slices of ``input`` at positions ``index`` (a 1-D integer tensor) along ``dim``."""
    axis, idx = _index_arg("index_select", input, dim, index)
    out = IndexSelect.apply(_as_nd(input), Tensor._make(idx, None), dim=axis)
    return track_saved(out, index)


def _source_check(name: str, x: Tensor, axis: int, idx, source: Tensor) -> None:
    xs, ss = tuple(x.shape) or (1,), tuple(source.shape) or (1,)
    if len(ss) != len(xs) or builtins.any(a != b for d, (a, b) in enumerate(zip(xs, ss)) if d != axis):
        raise RuntimeError(f"{name}(): source {list(source.shape)} and self {list(x.shape)} must have the same "
                           f"sizes apart from dimension {axis}")
    if ss[axis] != idx.size:
        raise RuntimeError(f"{name}(): Number of indices ({idx.size}) should be equal to source.size(dim): "
                           f"({ss[axis]}), for dim: {axis}")
    if source.array.dtype != x.array.dtype:
        raise RuntimeError(f"{name}(): self ({torch_name(x.dtype)}) and source ({torch_name(source.dtype)}) must "
                           f"have the same scalar type")


def index_add(input: Tensor, dim: int, index: Tensor, source: Tensor, *, alpha=1) -> Tensor:
    """A copy of ``input`` with ``alpha * source`` added to the slices ``index`` along ``dim``."""
    axis, idx = _index_arg("index_add", input, dim, index)
    _source_check("index_add_", input, axis, idx, source)
    out = IndexAdd.apply(_as_nd(input), Tensor._make(idx, None), _as_nd(source), dim=axis, alpha=alpha)
    return _restore(track_saved(out, index), input)


def index_copy(input: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:
    """A copy of ``input`` with the slices ``index`` along ``dim`` replaced by ``source``'s."""
    axis, idx = _index_arg("index_copy", input, dim, index)
    _source_check("index_copy_", input, axis, idx, source)
    out = IndexCopy.apply(_as_nd(input), Tensor._make(idx, None), _as_nd(source), dim=axis)
    return _restore(track_saved(out, index), input)


def index_fill(input: Tensor, dim: int, index: Tensor, value) -> Tensor:
    """A copy of ``input`` with the slices ``index`` along ``dim`` set to ``value`` (a number or 0-d tensor)."""
    from .elementwise import where

    axis, idx = _index_arg("index_fill", input, dim, index)
    x = _as_nd(input)
    if isinstance(value, Tensor):
        if value.ndim:
            raise RuntimeError(f"index_fill_ only supports a 0-dimensional value tensor, but got tensor with "
                               f"{value.ndim} dimension(s).")
        xp = array_module(x.array)
        mask = xp.zeros(x.shape[axis], dtype=bool)
        mask[idx] = True
        shape = [1] * x.ndim
        shape[axis] = x.shape[axis]
        return _restore(where(Tensor._make(mask.reshape(shape), None), value.to(x.dtype), x), input)
    out = IndexCopy.apply(x, Tensor._make(idx, None), dim=axis, value=value)
    return _restore(track_saved(out, index), input)


def _mask_arg(name: str, mask) -> Tensor:
    if not isinstance(mask, Tensor) or mask.array.dtype != bool:
        raise RuntimeError(f"{name}: expected BoolTensor for mask")
    return mask


def masked_select(input: Tensor, mask: Tensor) -> Tensor:
    """The elements of ``input`` where ``mask`` holds (broadcast together), as a 1-D tensor."""
    _mask_arg("masked_select", mask)
    try:
        return MaskedSelect.apply(input, mask)
    except ValueError:
        raise RuntimeError(f"masked_select: shapes {tuple(input.shape)} and {tuple(mask.shape)} cannot be "
                           f"broadcast together") from None


def masked_scatter(input: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    """A copy of ``input`` with ``source``'s leading elements written, in order, where ``mask`` holds."""
    _mask_arg("masked_scatter_", mask)
    if source.array.dtype != input.array.dtype:
        raise RuntimeError(f"masked_scatter_: expected self and source to have same dtypes but got "
                           f"{torch_name(input.dtype)} and {torch_name(source.dtype)}")
    try:
        count = int(array_module(mask.array).broadcast_to(mask.array, input.shape).sum())
    except ValueError:
        raise RuntimeError(f"masked_scatter_: mask {tuple(mask.shape)} does not broadcast to self "
                           f"{tuple(input.shape)}") from None
    if count > source.numel():
        raise RuntimeError("Number of elements of source < number of ones in mask")
    return MaskedScatter.apply(input, mask, source)


def take(input: Tensor, index: Tensor) -> Tensor:
    """The elements of flattened ``input`` at ``index`` (any shape), in index's shape."""
    _index_tensor("take", index)
    n = input.numel()
    if index.array.size and (int(index.array.max()) >= n or int(index.array.min()) < -n):
        raise IndexError(f"take(): index out of range for tensor of size {list(input.shape)}")
    return track_saved(Take.apply(input, Tensor._make(index.array.astype(np.int64, copy=False), None)), index)


def take_along_dim(input: Tensor, indices: Tensor, dim: int | None = None) -> Tensor:
    """``gather`` with broadcasting of the other dims (of the flattened tensors when ``dim`` is None)."""
    from .reduce import gather
    from .shape import expand

    if dim is None:
        return take(input.reshape(-1), indices.reshape(-1))
    if input.ndim != indices.ndim:
        raise RuntimeError(f"torch.take_along_dim(): input and indices should have the same number of dimensions, "
                           f"but got {input.ndim} dimensions for input, and {indices.ndim} dimensions for indices")
    (axis,) = normalize_dims(dim, input.ndim, "take_along_dim")
    shape = list(array_module(input.array).broadcast_shapes(
        tuple(n for d, n in enumerate(input.shape) if d != axis),
        tuple(n for d, n in enumerate(indices.shape) if d != axis)))
    x_shape, i_shape = list(shape), list(shape)
    x_shape.insert(axis, input.shape[axis])
    i_shape.insert(axis, indices.shape[axis])
    return gather(expand(input, *x_shape), axis, expand(indices, *i_shape))


def index_put(input: Tensor, indices, values, accumulate: bool = False) -> Tensor:
    """A copy of ``input`` with ``values`` put at ``input[indices]`` (summed there with ``accumulate``)."""
    from .elementwise import as_tensor_like
    from .inplace import IndexPut
    from .shape import torch_index

    indices = tuple(indices)
    xp = array_module(input.array)
    basic, adv = torch_index(indices, input.shape, xp)
    index = adv if basic is None else None
    if index is None:  # slices or ints among the indices: an ordinary assignment covers it
        index = tuple(i.array if isinstance(i, Tensor) else i for i in indices)
    values = as_tensor_like(values, input).to(input.dtype)
    if accumulate:
        out = IndexPutAccumulate.apply(input, values, index=index)
    else:
        out = IndexPut.apply(input, values, index=index)
    return track_saved(out, *[i for i in indices if isinstance(i, Tensor)])


def nonzero(input: Tensor, *, as_tuple: bool = False):
    """The indices of the non-zero elements: an (n, ndim) int64 tensor, or one 1-D tensor per dim."""
    xp = array_module(input.array)
    a = input.array
    if as_tuple:
        if a.ndim == 0:
            return (Tensor._make(xp.zeros(int(a != 0), dtype=np.int64), None),)
        return tuple(Tensor._make(i.astype(np.int64), None) for i in xp.nonzero(a))
    return Tensor._make(xp.argwhere(a).astype(np.int64).reshape(-1, a.ndim), None)


def argwhere(input: Tensor) -> Tensor:
    """``nonzero(input)``: an (n, ndim) tensor of the positions of the non-zero elements."""
    return nonzero(input)


def count_nonzero(input: Tensor, dim=None) -> Tensor:
    """How many elements are non-zero (over ``dim``: an int, a tuple, or all)."""
    axes = normalize_dims(dim, input.ndim, "count_nonzero")
    return Tensor._make(array_module(input.array).asarray((input.array != 0).sum(axis=axes), dtype=backend.int64),
                        None)
