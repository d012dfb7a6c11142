"""Reading and writing whole slices or masked elements: index_select, index_add, index_copy, index_fill,
masked_select, masked_scatter, take, take_along_dim, index_put, nonzero/argwhere, count_nonzero.

Each backward is torch's formula and each op declares the tensors torch saves (always the index).

>>> import deepgrad as dg
>>> dg.zeros(3, 2).index_add(0, dg.tensor([0, 0]), dg.ones(2, 2))
tensor([[2., 2.],
        [0., 0.],
        [0., 0.]])
"""

from __future__ import annotations

import builtins

import numpy as np

from .. import backend
from ..autograd import Function, track_saved
from ..backend import array_module
from ..tensor import Tensor
from .elementwise import unbroadcast
from .promotion import torch_name
from .reduce import normalize_dims
from .scatter import as_nd, in_range, index_tensor, restore_0d, ufunc_at

__all__ = [  # the public ops (deepgrad.functional exports them)
    "index_select", "index_add", "index_copy", "index_fill", "masked_select", "masked_scatter", "take",
    "take_along_dim", "index_put", "nonzero", "argwhere", "count_nonzero",
]


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



# ----------------------------------------------------------------------------- public API
def _index_arg(name: str, x: Tensor, dim, index) -> tuple:
    (axis,) = normalize_dims(dim, builtins.max(x.ndim, 1), name)
    index_tensor(name, index)
    if index.ndim > 1:
        raise IndexError(f"{name}(): Index is supposed to be a vector")
    in_range(index.array, (x.shape or (1,))[axis], axis)
    return axis, index.array.reshape(-1).astype(np.int64, copy=False)


def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    """The slices of ``input`` at positions ``index`` (a 1-D integer tensor) along ``dim``."""
    axis, idx = _index_arg("index_select", input, dim, index)
    out = IndexSelect.apply(as_nd(input), Tensor._make(idx, None), dim=axis)
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
    out = IndexAdd.apply(as_nd(input), Tensor._make(idx, None), as_nd(source), dim=axis, alpha=alpha)
    return restore_0d(track_saved(out, index), input)


def index_copy(input: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:
    """A copy of ``input`` with the slices ``index`` along ``dim`` replaced by ``source``'s."""
    axis, idx = _index_arg("index_copy", input, dim, index)
    _source_check("index_copy_", input, axis, idx, source)
    out = IndexCopy.apply(as_nd(input), Tensor._make(idx, None), as_nd(source), dim=axis)
    return restore_0d(track_saved(out, index), input)


def index_fill(input: Tensor, dim: int, index: Tensor, value) -> Tensor:
    """A copy of ``input`` with the slices ``index`` along ``dim`` set to ``value`` (a number or 0-d tensor)."""
    from .elementwise import where

    axis, idx = _index_arg("index_fill", input, dim, index)
    x = as_nd(input)
    if isinstance(value, Tensor):
        if value.ndim:
            raise RuntimeError(f"index_fill_ only supports a 0-dimensional value tensor, but got tensor with "
                               f"{value.ndim} dimension(s).")
        xp = array_module(x.array)
        mask = xp.zeros(x.shape[axis], dtype=bool)
        mask[idx] = True
        shape = [1] * x.ndim
        shape[axis] = x.shape[axis]
        return restore_0d(where(Tensor._make(mask.reshape(shape), None), value.to(x.dtype), x), input)
    out = IndexCopy.apply(x, Tensor._make(idx, None), dim=axis, value=value)
    return restore_0d(track_saved(out, index), input)


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
    index_tensor("take", index)
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
