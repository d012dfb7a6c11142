"""Moving elements around: flip, roll, rot90, narrow, select, movedim, tile, broadcast_to, the stacks
(hstack, vstack...), tensor_split, repeat_interleave, meshgrid, unfold (sliding windows) and view(dtype).

Most are compositions of the shape ops (their gradients come free); flip, roll and unfold are one node
each, their backward undoing the move (unfold adds overlapping windows back).

>>> import deepgrad as dg
>>> dg.roll(dg.tensor([1, 2, 3]), 1)
tensor([3, 1, 2])
"""

from __future__ import annotations

import builtins
import math

import numpy as np

from ..autograd import Function, no_grad
from ..backend import array_module
from ..tensor import Tensor
from .promotion import torch_name
from .reduce import normalize_dims
from .shape import BasicIndex, cat, expand, permute, repeat, reshape, transpose

__all__ = [  # the public ops (deepgrad.functional exports them)
    "flip", "fliplr", "flipud", "roll", "rot90", "narrow", "select", "movedim", "moveaxis", "swapaxes", "swapdims",
    "tile", "broadcast_to", "broadcast_shapes", "broadcast_tensors", "atleast_1d", "atleast_2d", "atleast_3d",
    "hstack", "vstack", "row_stack", "dstack", "column_stack", "unflatten", "ravel", "tensor_split", "hsplit",
    "vsplit", "dsplit", "repeat_interleave", "meshgrid", "cartesian_prod",
]


class Flip(Function):
    saved = ()

    def forward(self, x, dims):
        self.dims = dims
        return array_module(x).flip(x, dims).copy()  # torch's flip is a copy

    def backward(self, g):
        return array_module(g).flip(g, self.dims)


class Roll(Function):
    saved = ()

    def forward(self, x, shifts, dims):
        self.shifts, self.dims = shifts, dims
        return array_module(x).roll(x, shifts, dims)

    def backward(self, g):
        return array_module(g).roll(g, tuple(-s for s in self.shifts), self.dims)


class Unfold(Function):
    """Windows of ``size`` every ``step`` along ``dim`` as a new last dim: a view; overlaps add in backward."""

    saved = ()
    view = True

    def forward(self, x, dim, size, step):
        self.shape, self.dim, self.size, self.step = x.shape, dim, size, step
        xp = array_module(x)
        n = (x.shape[dim] - size) // step + 1 if x.ndim else 1
        if x.ndim == 0:
            return xp.lib.stride_tricks.as_strided(x, (size,), (0,))
        shape = x.shape[:dim] + (n,) + x.shape[dim + 1:] + (size,)
        strides = x.strides[:dim] + (x.strides[dim] * step,) + x.strides[dim + 1:] + (x.strides[dim],)
        return xp.lib.stride_tricks.as_strided(x, shape, strides)

    def backward(self, g):
        xp = array_module(g)
        gx = xp.zeros(self.shape, dtype=g.dtype)
        if not self.shape:
            return g.sum().reshape(())
        n, dim, step = g.shape[self.dim], self.dim, self.step
        for k in range(self.size):  # window offset k lands on positions k, k + step, ...
            place = (slice(None),) * dim + (slice(k, k + step * (n - 1) + 1, step),)
            gx[place] += g[..., k]
        return gx


# ----------------------------------------------------------------------------- public API
def _dims_arg(dims) -> tuple:
    if isinstance(dims, (int, np.integer)):
        return (int(dims),)
    return tuple(int(d) for d in dims)


def flip(input: Tensor, dims) -> Tensor:
    """The elements in reverse order along each of ``dims`` (a copy)."""
    if isinstance(dims, (int, np.integer)):
        raise TypeError(f"flip(): argument 'dims' (position 2) must be tuple of ints, not {type(dims).__name__}")
    axes = normalize_dims(tuple(dims), input.ndim, "flip")
    if len(set(axes)) != len(axes):
        raise RuntimeError(f"dims has duplicates, original flip dims size={len(axes)}, but unique flip dims "
                           f"size={len(set(axes))}")
    return Flip.apply(input, dims=axes)


def fliplr(input: Tensor) -> Tensor:
    """Reverse the columns (dim 1) of a tensor of 2 or more dims."""
    if input.ndim < 2:
        raise RuntimeError("Input must be >= 2-d.")
    return flip(input, (1,))


def flipud(input: Tensor) -> Tensor:
    """Reverse the rows (dim 0) of a tensor of 1 or more dims."""
    if input.ndim < 1:
        raise RuntimeError("Input must be >= 1-d.")
    return flip(input, (0,))


def roll(input: Tensor, shifts, dims=None) -> Tensor:
    """Shift elements cyclically by ``shifts`` along ``dims`` (of the flattened tensor when None)."""
    shifts = _dims_arg(shifts)
    if dims is None:
        if len(shifts) != 1:
            raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:0")
        return reshape(Roll.apply(reshape(input, -1), shifts=shifts, dims=(0,)), input.shape)
    dims = _dims_arg(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:{len(dims)}")
    return Roll.apply(input, shifts=shifts, dims=normalize_dims(dims, input.ndim, "roll"))


def rot90(input: Tensor, k: int = 1, dims=(0, 1)) -> Tensor:
    """Rotate by 90 degrees ``k`` times in the plane of ``dims`` (from the first towards the second)."""
    dims = _dims_arg(dims)
    if len(dims) != 2:
        raise RuntimeError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
    if input.ndim < 2:
        raise RuntimeError(f"expected total dims >= 2, but got total dims = {input.ndim}")
    d0, d1 = normalize_dims(dims, input.ndim, "rot90")
    if d0 == d1:
        raise RuntimeError(f"expected rotation dims to be different, but got dim0 = {d0} and dim1 = {d1}")
    k %= 4
    if k == 1:
        return transpose(flip(input, (d1,)), d0, d1)
    if k == 2:
        return flip(input, (d0, d1))
    if k == 3:
        return transpose(flip(input, (d0,)), d0, d1)
    return input * 1 if input.array.dtype != bool else input.clone()


def narrow(input: Tensor, dim: int, start, length: int) -> Tensor:
    """The ``length`` elements from ``start`` along ``dim``: a view."""
    (axis,) = normalize_dims(dim, input.ndim, "narrow")
    size = input.shape[axis]
    start = int(start)
    if not -size <= start <= size:
        raise IndexError(f"start out of range (expected to be in range of [{-size}, {size}], but got {start})")
    if start < 0:
        start += size
    if length < 0 or start + length > size:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({size}).")
    return BasicIndex.apply(input, index=(slice(None),) * axis + (slice(start, start + length), Ellipsis))


def select(input: Tensor, dim: int, index: int) -> Tensor:
    """The slice at ``index`` along ``dim``, with that dim removed: a view."""
    (axis,) = normalize_dims(dim, input.ndim, "select")
    size = input.shape[axis]
    index = int(index)
    if not -size <= index < size:
        raise IndexError(f"select(): index {index} out of range for tensor of size {list(input.shape)} at dimension "
                         f"{axis}")
    return BasicIndex.apply(input, index=(slice(None),) * axis + (index, Ellipsis))


def movedim(input: Tensor, source, destination) -> Tensor:
    """Move dims ``source`` to positions ``destination`` (the others keep their order): a view."""
    src, dst = _dims_arg(source), _dims_arg(destination)
    if len(src) != len(dst):
        raise RuntimeError(f"movedim: Invalid source or destination dims: source ({list(src)} dims) should contain "
                           f"the same number of dims as destination ({list(dst)} dims)")
    src, dst = normalize_dims(src, input.ndim, "movedim"), normalize_dims(dst, input.ndim, "movedim")
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise RuntimeError("movedim: repeated dim in `source` or `destination`")
    order = [d for d in range(input.ndim) if d not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return permute(input, *order)


moveaxis = movedim


def swapaxes(input: Tensor, axis0: int, axis1: int) -> Tensor:
    """``transpose(input, axis0, axis1)``."""
    return transpose(input, axis0, axis1)


swapdims = swapaxes


def tile(input: Tensor, dims) -> Tensor:
    """Repeat the tensor ``dims[i]`` times along each dim (leading ones added to whichever is shorter)."""
    dims = _dims_arg(dims)
    if len(dims) < input.ndim:
        dims = (1,) * (input.ndim - len(dims)) + dims
    return repeat(input, *dims)


def broadcast_to(input: Tensor, size) -> Tensor:
    """``input.expand(size)``: a view."""
    return expand(input, *_dims_arg(size))


def broadcast_shapes(*shapes) -> tuple:
    """The shape that ``shapes`` broadcast to."""
    try:
        return tuple(np.broadcast_shapes(*[_dims_arg(s) for s in shapes]))
    except ValueError:
        raise RuntimeError(f"Shape mismatch: objects cannot be broadcast to a single shape: {list(shapes)}") from None


def broadcast_tensors(*tensors) -> tuple:
    """Every tensor expanded to their common broadcast shape (views)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    shape = broadcast_shapes(*[t.shape for t in tensors])
    return tuple(expand(t, *shape) for t in tensors)


def _atleast(n: int, tensors):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    out = []
    for t in tensors:
        if t.ndim >= n:
            out.append(t)
        elif n == 3 and t.ndim == 2:
            out.append(reshape(t, t.shape + (1,)))
        elif n == 3 and t.ndim == 1:
            out.append(reshape(t, (1,) + t.shape + (1,)))
        else:
            out.append(reshape(t, (1,) * (n - t.ndim) + t.shape))
    return out[0] if len(out) == 1 else tuple(out)


def atleast_1d(*tensors):
    """Each tensor with at least 1 dim (0-d tensors become 1-element vectors)."""
    return _atleast(1, tensors)


def atleast_2d(*tensors):
    """Each tensor with at least 2 dims (leading 1s added)."""
    return _atleast(2, tensors)


def atleast_3d(*tensors):
    """Each tensor with at least 3 dims: (n,) -> (1, n, 1), (m, n) -> (m, n, 1)."""
    return _atleast(3, tensors)


def _as_tuple(tensors, n: int, name: str) -> tuple:
    if not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{name}(): argument 'tensors' (position 1) must be tuple of Tensors, not "
                        f"{type(tensors).__name__}")
    out = _atleast(n, tuple(tensors))
    return out if isinstance(out, tuple) else (out,)


def hstack(tensors) -> Tensor:
    """Join along dim 1 (dim 0 for 1-D tensors)."""
    ts = _as_tuple(tensors, 1, "hstack")
    return cat(ts, 0 if ts[0].ndim == 1 else 1)


def vstack(tensors) -> Tensor:
    """Join along dim 0 after making each at least 2-D."""
    return cat(_as_tuple(tensors, 2, "vstack"), 0)


row_stack = vstack


def dstack(tensors) -> Tensor:
    """Join along dim 2 after making each at least 3-D."""
    return cat(_as_tuple(tensors, 3, "dstack"), 2)


def column_stack(tensors) -> Tensor:
    """Vectors as columns (and matrices as they are) joined along dim 1."""
    cols = [reshape(t, (t.numel(), 1)) if t.ndim <= 1 else t for t in tensors]
    return cat(cols, 1)


def unflatten(input: Tensor, dim: int, sizes) -> Tensor:
    """Split dim ``dim`` into ``sizes`` (one may be -1)."""
    (axis,) = normalize_dims(dim, input.ndim, "unflatten")
    sizes = _dims_arg(sizes)
    if not sizes:
        raise RuntimeError("unflatten: sizes must be non-empty")
    known = math.prod(s for s in sizes if s != -1)
    if (-1 not in sizes and known != input.shape[axis]) or (-1 in sizes and (known == 0 or input.shape[axis] % known)):
        raise RuntimeError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim {dim} "
                           f"({input.shape[axis]}) in the input tensor")
    sizes = tuple(input.shape[axis] // known if s == -1 else s for s in sizes)
    return reshape(input, input.shape[:axis] + sizes + input.shape[axis + 1:])


def ravel(input: Tensor) -> Tensor:
    """The elements as a 1-D tensor (a view when the memory allows)."""
    return reshape(input, -1)


def tensor_split(input: Tensor, indices_or_sections, dim: int = 0) -> tuple:
    """Split into ``sections`` nearly equal parts (the first ones one longer), or at the given indices: views."""
    (axis,) = normalize_dims(dim, input.ndim, "tensor_split")
    n = input.shape[axis]
    if isinstance(indices_or_sections, Tensor):
        indices_or_sections = indices_or_sections.tolist()
    if isinstance(indices_or_sections, int):
        sections = indices_or_sections
        if sections <= 0:
            raise RuntimeError(f"number of sections must be larger than 0, got {sections}")
        size, extra = divmod(n, sections)
        bounds = [i * size + builtins.min(i, extra) for i in range(1, sections)]
    else:
        bounds = [int(i) for i in indices_or_sections]
    edges = [0] + bounds + [n]
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        lo, hi = builtins.min(builtins.max(lo, 0), n), builtins.min(builtins.max(hi, 0), n)
        out.append(BasicIndex.apply(input, index=(slice(None),) * axis + (slice(lo, builtins.max(lo, hi)), Ellipsis)))
    return tuple(out)


def _split_even(name: str, input: Tensor, sections, dim: int) -> tuple:
    if isinstance(sections, int) and input.shape[dim] % sections:
        raise RuntimeError(f"torch.{name} attempted to split along dimension {dim}, but the size of the dimension "
                           f"{input.shape[dim]} is not divisible by the split_size {sections}!")
    return tensor_split(input, sections, dim)


def hsplit(input: Tensor, sections) -> tuple:
    """tensor_split along dim 1 (dim 0 for 1-D); an int must divide the size evenly."""
    if input.ndim < 1:
        raise RuntimeError("torch.hsplit requires a tensor with at least 1 dimension, but got a tensor with 0 "
                           "dimensions!")
    return _split_even("hsplit", input, sections, 0 if input.ndim == 1 else 1)


def vsplit(input: Tensor, sections) -> tuple:
    """tensor_split along dim 0; an int must divide the size evenly."""
    if input.ndim < 2:
        raise RuntimeError(f"torch.vsplit requires a tensor with at least 2 dimension, but got a tensor with "
                           f"{input.ndim} dimensions!")
    return _split_even("vsplit", input, sections, 0)


def dsplit(input: Tensor, sections) -> tuple:
    """tensor_split along dim 2; an int must divide the size evenly."""
    if input.ndim < 3:
        raise RuntimeError(f"torch.dsplit requires a tensor with at least 3 dimension, but got a tensor with "
                           f"{input.ndim} dimensions!")
    return _split_even("dsplit", input, sections, 2)


def repeat_interleave(input: Tensor, repeats=None, dim: int | None = None, *, output_size: int | None = None):
    """Repeat each element (each slice along ``dim``) ``repeats`` times in place: ``[a, b] -> [a, a, b, b]``.
    With only a tensor of counts, the indices 0, 1, ... each repeated that often."""
    from .index_ops import index_select

    if repeats is None:  # repeat_interleave(counts)
        counts = input.array
        xp = array_module(counts)
        return Tensor._make(xp.repeat(xp.arange(counts.shape[0], dtype=np.int64), counts), None)
    x = reshape(input, -1) if dim is None else input
    axis = 0 if dim is None else normalize_dims(dim, builtins.max(x.ndim, 1), "repeat_interleave")[0]
    if x.ndim == 0:
        x = reshape(x, 1)
    n = x.shape[axis]
    xp = array_module(x.array)
    counts = repeats.array if isinstance(repeats, Tensor) else xp.asarray(repeats)
    if counts.ndim > 1:
        raise RuntimeError("repeat_interleave only accept 1D vector as repeat")
    if counts.ndim == 1 and counts.shape[0] != n and counts.shape[0] != 1:
        raise RuntimeError(f"repeats must have the same size as input along dim, but got repeats.size(0) = "
                           f"{counts.shape[0]} and input.size(0) = {n}")
    if counts.size and int(counts.min()) < 0:
        raise RuntimeError("repeats can not be negative")
    per_slice = counts.reshape(-1) if counts.size != 1 else int(counts.reshape(-1)[0])
    index = xp.repeat(xp.arange(n, dtype=np.int64), per_slice)
    if output_size is not None and index.shape[0] != output_size:
        raise RuntimeError(f"repeat_interleave: output_size {output_size} does not match the repeated size "
                           f"{index.shape[0]}")
    return index_select(x, axis, Tensor._make(index, None))


def meshgrid(*tensors, indexing: str | None = None) -> tuple:
    """Coordinate grids: each 1-D tensor expanded along its own dim ('ij', the default) or with the first
    two swapped ('xy')."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    indexing = indexing or "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f"torch.meshgrid: indexing must be one of \"xy\" or \"ij\", but received: {indexing}")
    for t in tensors:
        if t.ndim > 1:
            raise RuntimeError(f"torch.meshgrid: Expected 0D or 1D tensor in the tensor list but got: {t.ndim}D")
    ts = [reshape(t, -1) for t in tensors]
    swap = indexing == "xy" and len(ts) >= 2
    if swap:
        ts[0], ts[1] = ts[1], ts[0]
    shape = tuple(t.shape[0] for t in ts)
    grids = [expand(reshape(t, (1,) * i + (-1,) + (1,) * (len(ts) - i - 1)), *shape) for i, t in enumerate(ts)]
    if swap:  # 'xy': the grids of (second, first, ...) in 'ij' order, handed back in the inputs' order
        grids[0], grids[1] = grids[1], grids[0]
    return tuple(grids)


def cartesian_prod(*tensors) -> Tensor:
    """Every combination of one element from each 1-D tensor, one per row."""
    from .shape import stack

    if len(tensors) == 1:
        return tensors[0]
    return stack([reshape(g, -1) for g in meshgrid(*tensors, indexing="ij")], 1)


def unfold(input: Tensor, dimension: int, size: int, step: int) -> Tensor:
    """Every window of ``size`` elements, ``step`` apart, along ``dimension`` as a new last dim (a view)."""
    (axis,) = normalize_dims(dimension, builtins.max(input.ndim, 1), "unfold")
    n = input.shape[axis] if input.ndim else 1
    if size > n:
        raise RuntimeError(f"maximum size for tensor at dimension {axis} is {n} but size is {size}")
    if step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")
    if size < 0:
        raise RuntimeError(f"size is {size} but must be >= 0")
    return Unfold.apply(input, dim=axis, size=size, step=step)


def view_dtype(input: Tensor, dtype) -> Tensor:
    """The same memory read as ``dtype`` (torch's ``view(dtype)``): with a different element size the last
    dim must be contiguous and its byte length divide evenly. Not differentiable."""
    dtype = np.dtype(dtype)
    a = input.array
    if dtype.itemsize != a.dtype.itemsize:
        what = f"to view {torch_name(a.dtype)} as {torch_name(dtype)} (different element sizes)"
        if a.ndim == 0:
            raise RuntimeError(f"self.dim() cannot be 0 {what}")
        if a.shape[-1] != 1 and a.strides[-1] != a.itemsize:
            raise RuntimeError(f"self.stride(-1) must be 1 {what}")
        if dtype.itemsize > a.itemsize and a.shape[-1] % (dtype.itemsize // a.itemsize):
            raise RuntimeError(f"self.size(-1) must be divisible by {dtype.itemsize // a.itemsize} {what}, but got "
                               f"{a.shape[-1]}")
    with no_grad():
        return ViewDtype.apply(input, dtype=dtype)


class ViewDtype(Function):
    """The reinterpreting view behind view(dtype) (applied without a graph: it has no derivative)."""

    saved = ()
    view = True

    def forward(self, x, dtype):
        if x.dtype.itemsize == dtype.itemsize or x.ndim == 0:
            return x.view(dtype)
        if x.strides[-1] != x.itemsize:  # a last dim of size 1 with another stride: make NumPy see it as 1
            x = array_module(x).lib.stride_tricks.as_strided(x, x.shape, x.strides[:-1] + (x.itemsize,))
        return x.view(dtype)

    def backward(self, g):  # pragma: no cover - never recorded
        raise RuntimeError("view(dtype) is not differentiable")
