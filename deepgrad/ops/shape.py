"""Shape ops: reshape, permute, expand, repeat, indexing, cat/stack/split, pad.

These move or select elements without arithmetic; their backward puts each gradient
element back where its input element came from (summing where one input fed many outputs).
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..autograd import Function
from ..backend import array_module
from ..tensor import Tensor
from .elementwise import unbroadcast
from .reduce import normalize_dims


class Reshape(Function):
    def forward(self, x, shape):
        self.shape = x.shape
        return x.reshape(shape)

    def backward(self, g):
        return g.reshape(self.shape)


class Permute(Function):
    def forward(self, x, dims):
        self.inverse = tuple(np.argsort(dims))
        return x.transpose(dims)

    def backward(self, g):
        return g.transpose(self.inverse)


class Expand(Function):
    def forward(self, x, shape):
        self.shape = x.shape
        return array_module(x).broadcast_to(x, shape)

    def backward(self, g):
        return unbroadcast(g, self.shape)


class Repeat(Function):
    def forward(self, x, reps):
        self.input_shape = x.shape
        x = x.reshape((1,) * (len(reps) - x.ndim) + x.shape)
        self.shape, self.reps = x.shape, reps
        return array_module(x).tile(x, reps)

    def backward(self, g):
        # out[r0*s0 + i0, ...] = x[i0, ...]: view g as (r0, s0, r1, s1, ...) and sum the r's.
        split = []
        for r, s in zip(self.reps, self.shape):
            split += [r, s]
        return g.reshape(split).sum(axis=tuple(range(0, len(split), 2))).reshape(self.input_shape)


class GetItem(Function):
    def forward(self, x, index, scatter):
        self.shape, self.index, self.scatter = x.shape, index, scatter
        return x[index]

    def backward(self, g):
        gx = array_module(g).zeros(self.shape, dtype=g.dtype)
        if self.scatter:  # integer-array indices may repeat: accumulate
            backend.scatter_add(gx, self.index, g)
        else:
            gx[self.index] = g
        return gx


class SetItem(Function):
    """Out-of-place ``x[index] = value`` (used when the assignment is part of the graph)."""

    def forward(self, x, value, index):
        out = x.copy()
        out[index] = value
        self.index, self.vshape = index, value.shape
        return out

    def backward(self, g):
        gx = gv = None
        if self.next[0] is not None:
            gx = g.copy()
            gx[self.index] = 0
        if self.next[1] is not None:
            gv = g[self.index]
            if gv.ndim < len(self.vshape):  # the value had extra leading 1s, which assignment drops
                gv = gv.reshape((1,) * (len(self.vshape) - gv.ndim) + gv.shape)
            gv = unbroadcast(gv, self.vshape)
        return gx, gv


class Cat(Function):
    def forward(self, *arrays, dim):
        self.dim = dim
        self.bounds = np.cumsum([a.shape[dim] for a in arrays])[:-1]
        return array_module(arrays[0]).concatenate(arrays, axis=dim)

    def backward(self, g):
        return tuple(array_module(g).split(g, self.bounds, axis=self.dim))


class Stack(Function):
    def forward(self, *arrays, dim):
        self.dim = dim
        return array_module(arrays[0]).stack(arrays, axis=dim)

    def backward(self, g):
        return tuple(array_module(g).moveaxis(g, self.dim, 0))


class Pad(Function):
    """Constant padding; negative amounts crop, as in torch."""

    def forward(self, x, pairs, value):
        self.shape, self.pairs = x.shape, pairs
        crop = tuple(slice(-lo if lo < 0 else 0, n + hi if hi < 0 else n) for (lo, hi), n in zip(pairs, x.shape))
        x = x[crop]
        widths = [(lo if lo > 0 else 0, hi if hi > 0 else 0) for lo, hi in pairs]
        return array_module(x).pad(x, widths, mode="constant", constant_values=value)

    def backward(self, g):
        inner = tuple(
            slice(lo if lo > 0 else 0, g.shape[i] - (hi if hi > 0 else 0)) for i, (lo, hi) in enumerate(self.pairs)
        )
        g = g[inner]
        widths = [(-lo if lo < 0 else 0, -hi if hi < 0 else 0) for lo, hi in self.pairs]
        return array_module(g).pad(g, widths) if any(w != (0, 0) for w in widths) else g


# ----------------------------------------------------------------------------- public API
def _result_dtype(tensors) -> np.dtype:
    """torch's promotion for joining tensors: the highest category (bool < int < float) wins,
    so float32 joined with int64 stays float32 (NumPy would give float64)."""
    dtypes = [t.data.dtype for t in tensors]
    rank = [{"b": 0, "i": 1, "u": 1, "f": 2}.get(d.kind, 3) for d in dtypes]
    top = max(rank)
    return np.result_type(*[d for d, r in zip(dtypes, rank) if r == top])


def _shape_arg(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(s) for s in shape)


def reshape(x: Tensor, *shape) -> Tensor:
    """The same elements in a new shape (one dim may be -1)."""
    shape = _shape_arg(shape)
    if shape == x.shape:
        return x
    n, known = x.data.size, [s for s in shape if s != -1]
    if shape.count(-1) > 1 or any(s < -1 for s in shape) or (
        math.prod(known) != n if -1 not in shape else (math.prod(known) == 0 or n % math.prod(known))
    ):
        raise RuntimeError(f"reshape: shape {list(shape)} is invalid for input of size {n} (shape {tuple(x.shape)})")
    return Reshape.apply(x, shape=shape)


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims ``start_dim..end_dim`` into one."""
    if x.ndim == 0:
        return reshape(x, 1)
    s, e = normalize_dims((start_dim, end_dim), x.ndim, "flatten")
    if s > e:
        raise RuntimeError(f"flatten: start_dim ({start_dim}) cannot come after end_dim ({end_dim})")
    return reshape(x, x.shape[:s] + (math.prod(x.shape[s : e + 1]),) + x.shape[e + 1 :])


def squeeze(x: Tensor, dim=None) -> Tensor:
    """Remove size-1 dims (only ``dim``'s, when given; other sizes are left alone)."""
    dims = normalize_dims(dim, x.ndim, "squeeze")
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if not (i in dims and n == 1)))


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    """Insert a size-1 dim at ``dim``."""
    if not -x.ndim - 1 <= dim <= x.ndim:
        raise IndexError(
            f"unsqueeze: dimension out of range (expected to be in range of [{-x.ndim - 1}, {x.ndim}], but got {dim})"
        )
    dim = dim % (x.ndim + 1)
    return reshape(x, x.shape[:dim] + (1,) + x.shape[dim:])


def permute(x: Tensor, *dims) -> Tensor:
    """Reorder the dims."""
    dims = normalize_dims(_shape_arg(dims), x.ndim, "permute")
    if sorted(dims) != list(range(x.ndim)):
        raise RuntimeError(f"permute: dims {dims} are not a permutation of the {x.ndim} dims of {tuple(x.shape)}")
    return Permute.apply(x, dims=dims)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dims."""
    if x.ndim < 2 and dim0 in (0, -1) and dim1 in (0, -1):
        return x
    d0, d1 = normalize_dims((dim0, dim1), x.ndim, "transpose")
    dims = list(range(x.ndim))
    dims[d0], dims[d1] = d1, d0
    return Permute.apply(x, dims=tuple(dims))


def expand(x: Tensor, *sizes) -> Tensor:
    """Broadcast to ``sizes`` without copying (-1 keeps a dim)."""
    sizes = _shape_arg(sizes)
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise RuntimeError(f"expand: the number of sizes ({len(sizes)}) must be at least the tensor's dims ({x.ndim})")
    shape = []
    for i, s in enumerate(sizes):
        old = x.shape[i - lead] if i >= lead else None
        if s == -1:
            if old is None:
                raise RuntimeError(f"expand: -1 is not allowed for the new leading dim {i}")
            s = old
        if old is not None and old != 1 and old != s:
            raise RuntimeError(
                f"expand: the size of dim {i} ({old}) must match the new size ({s}) or be 1; "
                f"tensor {tuple(x.shape)} cannot expand to {sizes}"
            )
        shape.append(s)
    return Expand.apply(x, shape=tuple(shape))


def repeat(x: Tensor, *reps) -> Tensor:
    """Tile the tensor ``reps[i]`` times along each dim (torch.Tensor.repeat)."""
    reps = _shape_arg(reps)
    if len(reps) < x.ndim:
        raise RuntimeError(
            f"repeat: number of repeat dims ({len(reps)}) cannot be smaller than the tensor's dims ({x.ndim})"
        )
    return Repeat.apply(x, reps=reps)


def _index_arrays(index, xp):
    """Replace Tensors (and lists) inside an index by arrays; say whether it needs scatter-add."""
    items = index if isinstance(index, tuple) else (index,)
    out, scatter = [], False
    for item in items:
        if isinstance(item, Tensor):
            item = item.data
        elif isinstance(item, list):
            item = xp.asarray(item)
        if hasattr(item, "dtype") and not isinstance(item, np.generic) and item.dtype.kind in "iu":
            scatter = True  # integer arrays may repeat an index
        out.append(item)
    return (tuple(out) if isinstance(index, tuple) else out[0]), scatter


def getitem(x: Tensor, index) -> Tensor:
    """Basic and advanced indexing; repeated integer indices accumulate gradient."""
    index, scatter = _index_arrays(index, array_module(x.data))
    try:
        return GetItem.apply(x, index=index, scatter=scatter)
    except IndexError as e:
        raise IndexError(f"index {index!r} is invalid for a tensor of shape {tuple(x.shape)}: {e}") from None


def setitem(x: Tensor, index, value) -> None:
    """``x[index] = value``: in place, or recorded out of place when it is part of the graph."""
    from .. import autograd
    from .elementwise import as_tensor_like

    index, _ = _index_arrays(index, array_module(x.data))
    value = as_tensor_like(value, x)
    try:
        if autograd.is_grad_enabled() and (x.requires_grad or value.requires_grad):
            if x.requires_grad and x.grad_fn is None:
                raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
            x._rebind(SetItem.apply(x, value.to(x.dtype), index=index))
        else:
            x.data[index] = value.data
    except ValueError as e:
        raise RuntimeError(
            f"setitem: a value of shape {tuple(value.shape)} cannot be assigned to a tensor of shape "
            f"{tuple(x.shape)} at index {index!r}: {e}"
        ) from None


def cat(tensors, dim: int = 0) -> Tensor:
    """Concatenate along an existing dim."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("cat: expected a non-empty sequence of tensors")
    (axis,) = normalize_dims(dim, tensors[0].ndim, "cat")
    ref = tensors[0]
    for t in tensors[1:]:
        if t.ndim != ref.ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, ref.shape)) if i != axis):
            raise RuntimeError(
                f"cat: sizes of tensors must match except in dimension {dim}: "
                f"got {tuple(ref.shape)} and {tuple(t.shape)}"
            )
        if type(t.data) is not type(ref.data):
            raise RuntimeError(f"cat: expected all tensors on the same device, got {ref.device} and {t.device}")
    dtype = _result_dtype(tensors)
    tensors = [t.to(dtype) for t in tensors]
    return Cat.apply(*tensors, dim=axis)


def stack(tensors, dim: int = 0) -> Tensor:
    """Join along a new dim."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack: expected a non-empty sequence of tensors")
    for t in tensors[1:]:
        if t.shape != tensors[0].shape:
            raise RuntimeError(
                f"stack: expects each tensor to be equal size, but got {tuple(tensors[0].shape)} and {tuple(t.shape)}"
            )
    ndim = tensors[0].ndim + 1
    if not -ndim <= dim < ndim:
        raise IndexError(
            f"stack: dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {dim})"
        )
    dtype = _result_dtype(tensors)
    return Stack.apply(*[t.to(dtype) for t in tensors], dim=dim % ndim)


def split(x: Tensor, split_size_or_sections, dim: int = 0) -> tuple:
    """Split into chunks of a given size, or of the given list of sizes."""
    (axis,) = normalize_dims(dim, x.ndim, "split")
    n = x.shape[axis]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise RuntimeError(f"split: split_size must be positive, got {step}")
        sizes = [min(step, n - i) for i in range(0, n, step)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise RuntimeError(f"split: sizes {sizes} do not sum to the size {n} of dim {dim} (shape {tuple(x.shape)})")
    out, start = [], 0
    for s in sizes:
        index = (slice(None),) * axis + (slice(start, start + s),)
        out.append(GetItem.apply(x, index=index, scatter=False))
        start += s
    return tuple(out)


def chunk(x: Tensor, chunks: int, dim: int = 0) -> tuple:
    """Split into ``chunks`` pieces of (nearly) equal size; the last may be smaller."""
    if chunks <= 0:
        raise RuntimeError(f"chunk: chunks must be positive, got {chunks}")
    (axis,) = normalize_dims(dim, x.ndim, "chunk")
    return split(x, max(1, -(-x.shape[axis] // chunks)), dim)


def unbind(x: Tensor, dim: int = 0) -> tuple:
    """The slices along ``dim``, with that dim removed."""
    (axis,) = normalize_dims(dim, x.ndim, "unbind")
    return tuple(GetItem.apply(x, index=(slice(None),) * axis + (i,), scatter=False) for i in range(x.shape[axis]))


def pad(x: Tensor, pad: tuple, mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad the last ``len(pad) // 2`` dims: ``pad = (left_last, right_last, left_prev, ...)``."""
    if mode != "constant":
        raise ValueError(f"pad: mode {mode!r} is not supported; deepgrad pads with mode='constant'")
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise RuntimeError(
            f"pad: padding length {len(pad)} must be even and at most 2 * {x.ndim} for shape {tuple(x.shape)}"
        )
    pairs = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        pairs[x.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    for (lo, hi), n in zip(pairs, x.shape):
        if n + lo + hi < 0:
            raise RuntimeError(f"pad: padding {tuple(pad)} would give a negative size for shape {tuple(x.shape)}")
    return Pad.apply(x, pairs=tuple(pairs), value=value)
