"""Shape ops: reshape, permute, expand, repeat, indexing, cat/stack/split (padding: padding.py).

These move or select elements without arithmetic; their backward puts each gradient
element back where its input element came from (summing where one input fed many outputs).
"""

from __future__ import annotations

import builtins
import math

import numpy as np

from .. import backend
from ..autograd import Function, track_saved
from ..backend import array_module
from ..tensor import Tensor
from .elementwise import unbroadcast
from .padding import Pad, pad  # noqa: F401  (re-exported: padding lives in padding.py)
from .reduce import normalize_dims


class Reshape(Function):
    saved = ()
    view = "maybe"  # NumPy copies when the strides do not allow a view (torch's reshape does too)

    def forward(self, x, shape):
        self.shape = x.shape
        return x.reshape(shape)

    def backward(self, g):
        return g.reshape(self.shape)

    def backward_graph(self, g):
        return g.reshape(self.shape)


class Permute(Function):
    saved = ()
    view = True

    def forward(self, x, dims):
        self.inverse = tuple(np.argsort(dims))
        return x.transpose(dims)

    def backward(self, g):
        return g.transpose(self.inverse)

    def backward_graph(self, g):
        return g.permute(self.inverse)


class Expand(Function):
    saved = ()
    view = True

    def forward(self, x, shape):
        self.shape = x.shape
        return array_module(x).broadcast_to(x, shape)

    def backward(self, g):
        return unbroadcast(g, self.shape)

    def backward_graph(self, g):
        from .arithmetic import sum_to

        return sum_to(g, self.shape)


class Repeat(Function):
    saved = ()

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


class BasicIndex(Function):
    """``x[index]`` with ints, slices, None and Ellipsis: a view of x."""

    saved = ()
    view = True

    def forward(self, x, index):
        self.shape, self.index = x.shape, index
        return x[index]

    def backward(self, g):
        gx = array_module(g).zeros(self.shape, dtype=g.dtype)
        gx[self.index] = g
        return gx


class SplitPiece(BasicIndex):
    """One output of split/chunk/unbind: a view that may not be modified in place (torch's rule)."""

    view_kind = "multi"


class AdvancedIndex(Function):
    """``x[basic][advanced]``: torch's indexing (ints and slices first, then the index tensors); a copy."""

    saved = ()

    def forward(self, x, basic, advanced, scatter):
        self.shape, self.basic, self.advanced, self.scatter = x.shape, basic, advanced, scatter
        return x[basic][advanced] if basic is not None else x[advanced]

    def backward(self, g):
        gx = array_module(g).zeros(self.shape, dtype=g.dtype)
        target = gx[self.basic] if self.basic is not None else gx  # a view: writes land in gx
        if self.scatter:  # integer index arrays may repeat an index: accumulate
            backend.scatter_add(target, self.advanced, g)
        else:
            target[self.advanced] = g
        return gx


class Cat(Function):
    saved = ()

    def forward(self, *arrays, dim):
        self.dim = dim
        self.bounds = np.cumsum([a.shape[dim] for a in arrays])[:-1]
        return array_module(arrays[0]).concatenate(arrays, axis=dim)

    def backward(self, g):
        return tuple(array_module(g).split(g, self.bounds, axis=self.dim))


class Stack(Function):
    saved = ()

    def forward(self, *arrays, dim):
        self.dim = dim
        return array_module(arrays[0]).stack(arrays, axis=dim)

    def backward(self, g):
        return tuple(array_module(g).moveaxis(g, self.dim, 0))


# ----------------------------------------------------------------------------- public API
def _result_dtype(tensors) -> np.dtype:
    """torch's promotion for joining tensors: the highest category (bool < int < float) wins,
    so float32 joined with int64 stays float32 (NumPy would give float64)."""
    dtypes = [t.array.dtype for t in tensors]
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
    n, known = x.array.size, [s for s in shape if s != -1]
    if shape.count(-1) > 1 or any(s < -1 for s in shape) or (
        math.prod(known) != n if -1 not in shape else (math.prod(known) == 0 or n % math.prod(known))
    ):
        raise RuntimeError(f"reshape: shape {list(shape)} is invalid for input of size {n} (shape {tuple(x.shape)})")
    return Reshape.apply(x, shape=shape)


def view(x: Tensor, *shape) -> Tensor:
    """``reshape`` that never copies: torch's error when the strides cannot give the new shape."""
    if len(shape) == 1 and not isinstance(shape[0], (tuple, list, int, np.integer)):
        from .rearrange import view_dtype  # view(dtype): the same memory read as another dtype

        return view_dtype(x, shape[0])
    out = reshape(x, *shape)
    if out is not x and out.array.size and not out._is_view():
        raise RuntimeError("view size is not compatible with input tensor's size and stride (at least one dimension "
                           "spans across two contiguous subspaces). Use .reshape(...) instead.")
    return out


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


def _index_item(item, xp):
    """One item of an index as torch reads it: Tensors and lists become arrays; a 0-d integer tensor
    counts as an int (torch selects with it, as with an int)."""
    if isinstance(item, Tensor):
        item = item.array
        if item.ndim == 0 and item.dtype.kind in "iu":
            return int(item)
    elif isinstance(item, (list, np.ndarray)) or (hasattr(item, "__cuda_array_interface__")):
        item = xp.asarray(item)
        if item.dtype == object:
            raise IndexError(f"index {item!r}: a list used as an index must hold only integers or booleans")
        if item.size == 0 and item.dtype.kind == "f":
            item = item.astype(np.int64)  # [] indexes nothing (NumPy reads it as float)
    elif isinstance(item, np.integer):
        return int(item)
    elif isinstance(item, np.bool_):
        return bool(item)
    elif not (item is None or item is Ellipsis or isinstance(item, (int, slice))):
        raise IndexError(f"only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are valid "
                         f"indices (got {type(item).__name__})")
    if hasattr(item, "dtype") and item.dtype.kind not in "iub":
        raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
    return item


def torch_index(index, shape: tuple, xp):
    """Split an index the way torch applies it: ``(basic, advanced)`` where ``basic`` (ints, slices,
    None, Ellipsis) gives a view and ``advanced`` (index arrays, or None) is applied to that view.

    torch selects with ints *before* it indexes with tensors, so ``x[1, :, idx]`` on a (2, 3, 4) tensor
    is (3, len(idx)); NumPy would treat the int as an index array and put the broadcast dims first.
    """
    items = [_index_item(i, xp) for i in (index if isinstance(index, tuple) else (index,))]
    consumed = 0
    for it in items:
        if it is None or it is Ellipsis or isinstance(it, bool):
            continue
        consumed += it.ndim if hasattr(it, "ndim") and it.dtype.kind == "b" else 1
    if consumed > len(shape):
        raise IndexError(f"too many indices for tensor of dimension {len(shape)} (got {consumed})")
    basic, adv, dim, has_adv = [], [], 0, False
    for it in items:
        if it is Ellipsis:
            n = len(shape) - consumed
            basic += [slice(None)] * n
            adv += [slice(None)] * n
            dim += n
            consumed = len(shape)  # a second Ellipsis is an error below
            continue
        if it is None:
            basic.append(None)
            adv.append(slice(None))
        elif isinstance(it, bool):  # True adds a dim of size 1, False one of size 0
            basic.append(None)
            adv.append(slice(None) if it else slice(0, 0))
            has_adv = has_adv or not it
        elif isinstance(it, int):
            size = shape[dim]
            if not -size <= it < size:
                raise IndexError(f"index {it} is out of bounds for dimension {dim} with size {size}")
            basic.append(it)
            dim += 1
        elif isinstance(it, slice):
            if it.step is not None and it.step <= 0:
                raise ValueError("step must be greater than zero")
            basic.append(it)
            adv.append(slice(None))
            dim += 1
        else:
            k = it.ndim if it.dtype.kind == "b" else 1
            if it.dtype.kind == "b" and tuple(it.shape) != tuple(shape[dim:dim + k]):
                raise IndexError(f"The shape of the mask {tuple(it.shape)} at index {dim} does not match the shape "
                                 f"of the indexed tensor {tuple(shape)}")
            if it.dtype.kind in "iu" and it.size and (int(it.max()) >= shape[dim] or int(it.min()) < -shape[dim]):
                bad = int(it.max()) if int(it.max()) >= shape[dim] else int(it.min())
                raise IndexError(f"index {bad} is out of bounds for dimension {dim} with size {shape[dim]}")
            basic += [slice(None)] * k
            adv.append(it)
            has_adv = True
            dim += k
    if [it for it in items if it is Ellipsis][1:]:
        raise IndexError("an index can only have a single ellipsis ('...')")
    basic.append(Ellipsis)  # keeps an all-int index a 0-d view instead of a NumPy scalar
    if not has_adv:
        return tuple(basic), None
    while adv and isinstance(adv[-1], slice) and adv[-1] == slice(None):
        adv.pop()
    trivial = all(isinstance(b, slice) and b == slice(None) for b in basic[:-1])
    return (None if trivial else tuple(basic)), tuple(adv)


def getitem(x: Tensor, index) -> Tensor:
    """torch's indexing: ints, slices, None and Ellipsis give a view; index tensors (integer or bool)
    a copy, with repeated indices accumulating their gradient."""
    t = type(index)
    if t is slice and index.step is None or (t is int and x.array.ndim and -x.shape[0] <= index < x.shape[0]):
        return BasicIndex.apply(x, index=(index, Ellipsis))  # x[i], x[a:b]: the common cases, no parsing
    xp = array_module(x.array)
    try:
        basic, adv = torch_index(index, x.shape, xp)
    except IndexError as e:
        raise IndexError(f"{e} (indexing a tensor of shape {tuple(x.shape)} with {index!r})") from None
    if adv is None:
        return BasicIndex.apply(x, index=basic)
    scatter = builtins.any(hasattr(a, "dtype") and a.dtype.kind in "iu" for a in adv)
    try:
        out = AdvancedIndex.apply(x, basic=basic, advanced=adv, scatter=scatter)
        if out.grad_fn is not None:  # torch saves the index tensors: an in-place change to one is refused
            items = index if isinstance(index, tuple) else (index,)
            track_saved(out, *[i for i in items if isinstance(i, Tensor) and i.array.ndim])
        return out
    except IndexError as e:
        raise IndexError(f"index {index!r} is invalid for a tensor of shape {tuple(x.shape)}: {e}") from None


def setitem(x: Tensor, index, value) -> None:
    """``x[index] = value``: writes x's memory (torch's copy_ into the indexed view, or index_put_)."""
    from .. import autograd
    from .elementwise import as_tensor_like
    from .inplace import IndexPut, inplace, observers

    xp = array_module(x.array)
    try:
        basic, adv = torch_index(index, x.shape, xp)
    except IndexError as e:
        raise IndexError(f"{e} (assigning into a tensor of shape {tuple(x.shape)} at {index!r})") from None
    value = as_tensor_like(value, x)
    if type(value.array) is not type(x.array):
        value = value.to(x.device)
    while value.ndim and value.shape[0] == 1 and value.ndim > _result_ndim(x, basic, adv):
        value = value.reshape(value.shape[1:])  # torch drops a value's extra leading 1s
    if not (autograd.is_grad_enabled() and (x.requires_grad or value.requires_grad or
                                            (x._view is not None and x._view.base.requires_grad))):
        try:
            target = x.array[basic] if basic is not None else x.array
            if adv is None:
                target[...] = value.array
            else:
                target[adv] = value.array
        except ValueError as e:
            if "read-only" in str(e):
                raise RuntimeError("setitem: unsupported operation: more than one element of the written-to tensor "
                                   "refers to a single memory location. Please clone() the tensor before performing "
                                   "the operation.") from None
            raise RuntimeError(
                f"setitem: a value of shape {tuple(value.shape)} cannot be assigned to a tensor of shape "
                f"{tuple(x.shape)} at index {index!r}: {e}"
            ) from None
        autograd.version_counter(x).bump()
        for observe in observers:
            observe(x, None)
        return
    target = BasicIndex.apply(x, index=basic) if basic is not None else x
    if adv is None:
        target.copy_(value)
        return
    n = target.array[adv].shape
    try:
        np.broadcast_shapes(value.shape, n)
    except ValueError:
        raise RuntimeError(f"setitem: shape mismatch: value tensor of shape {tuple(value.shape)} cannot be broadcast "
                           f"to indexing result of shape {tuple(n)}") from None
    inplace(target, lambda t, v: IndexPut.apply(t, v.to(t.dtype), index=adv), "index_put_", value)


def _result_ndim(x: Tensor, basic, adv) -> int:
    target = x.array[basic] if basic is not None else x.array
    return target.ndim if adv is None else target[adv].ndim


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
        if type(t.array) is not type(ref.array):
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
        index = (slice(None),) * axis + (slice(start, start + s), Ellipsis)
        out.append(SplitPiece.apply(x, index=index))
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
    return tuple(SplitPiece.apply(x, index=(slice(None),) * axis + (i, Ellipsis)) for i in range(x.shape[axis]))
