"""Ordering ops: sort, argsort, msort, topk, kthvalue, median, nanmedian, mode, quantile, unique, bincount,
histc, searchsorted, bucketize.

The indices come from a stable NumPy sort (NaN counts as the largest value, as in torch; a descending sort
keeps tied elements in their original order); the values are then *picked* by those indices with the
gather op that torch's backward mirrors (``value_selecting_reduction``: the gradient goes back to the picked
positions, and torch saves only the indices).

>>> import deepgrad as dg
>>> dg.sort(dg.tensor([3.0, 1.0, 2.0])).values
tensor([1., 2., 3.])
"""

from __future__ import annotations

import builtins

import numpy as np

from .. import backend
from ..autograd import OUT, Function
from ..backend import array_module
from ..tensor import Tensor, min_max_result
from .promotion import torch_name
from .reduce import Amax, SelectAlong, normalize_dims

__all__ = [  # the public ops (deepgrad.functional exports them)
    "sort", "argsort", "msort", "topk", "kthvalue", "median", "nanmedian", "mode", "quantile", "unique",
    "unique_consecutive", "bincount", "histc", "searchsorted", "bucketize",
]


class NoDerivative(Function):
    """A result torch records in the graph but cannot differentiate: the backward raises torch's error."""

    saved = ()

    def forward(self, x, value, error):
        self.error = error
        return value

    def backward(self, g):
        raise self.error


def _recorded(x: Tensor, value, error: Exception) -> Tensor:
    """``value`` (an array computed from ``x``) as torch hands it out: in the graph when ``x`` requires grad."""
    if x is not None and x.requires_grad and value.dtype.kind == "f":
        return NoDerivative.apply(x, value=value, error=error)
    return Tensor._make(value, None)


def _axis(x: Tensor, dim: int, name: str) -> int:
    (axis,) = normalize_dims(dim, builtins.max(x.ndim, 1), name)
    return axis


def stable_order(a, axis: int, descending: bool):
    """Indices that sort ``a`` along ``axis`` stably (NaN last ascending, first descending; ties in order)."""
    xp = array_module(a)
    if not descending:
        return xp.argsort(a, axis=axis, kind="stable")
    # Sorting the reversed array ascending and reversing the result keeps equal elements in their original
    # order and puts NaN first, without negating (which fails for unsigned and bool dtypes).
    n = a.shape[axis]
    rev = xp.argsort(xp.flip(a, axis), axis=axis, kind="stable")
    return xp.flip(n - 1 - rev, axis)


def _picked(x: Tensor, idx, axis: int):
    """(values, indices): the values of ``x`` at ``idx`` along ``axis``, differentiable to the picked spots."""
    indices = Tensor._make(idx.astype(backend.int64, copy=False), None)
    return min_max_result(SelectAlong.apply(x, indices, dim=axis), indices)


def sort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False):
    """(values, indices) sorted along ``dim``; stable always (``stable`` is accepted for torch's signature)."""
    if input.ndim == 0:
        _axis(input, dim, "sort")
        return min_max_result(input * 1, Tensor._make(array_module(input.array).zeros((), dtype=backend.int64),
                                                      None))
    axis = _axis(input, dim, "sort")
    return _picked(input, stable_order(input.array, axis, descending), axis)


def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """The indices that sort ``input`` along ``dim`` (stable)."""
    return sort(input, dim, descending, stable).indices


def msort(input: Tensor) -> Tensor:
    """``sort(input, dim=0).values``."""
    return sort(input, 0).values


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """(values, indices) of the ``k`` largest (or smallest) elements along ``dim``, largest first."""
    axis = _axis(input, dim, "topk")
    size = input.shape[axis] if input.ndim else 1
    if not 0 <= k <= size:
        raise RuntimeError(f"topk: selected index k out of range (k={k}, size {size} of dim {dim} of shape "
                           f"{tuple(input.shape)})")
    if input.ndim == 0:
        return sort(input)
    order = stable_order(input.array, axis, largest)
    return _picked(input, order[(slice(None),) * axis + (slice(0, k),)], axis)


def _kth(input: Tensor, k: int, dim: int, keepdim: bool, name: str):
    """The k-th smallest (0-based) along ``dim`` with its index."""
    axis = _axis(input, dim, name)
    if input.ndim == 0:
        return min_max_result(input * 1, Tensor._make(array_module(input.array).zeros((), dtype=backend.int64),
                                                      None))
    order = stable_order(input.array, axis, False)
    idx = order[(slice(None),) * axis + (slice(k, k + 1),)]
    values, indices = _picked(input, idx, axis)
    if not keepdim:
        values, indices = values.squeeze(axis), indices.squeeze(axis)
    return min_max_result(values, indices)


def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False):
    """(values, indices) of the ``k``-th smallest element (1-based) along ``dim``."""
    size = input.shape[_axis(input, dim, "kthvalue")] if input.ndim else 1
    if not 1 <= k <= size:
        raise IndexError(f"kthvalue(): selected number k out of range for dimension {dim} (k={k}, size {size})")
    return _kth(input, k - 1, dim, keepdim, "kthvalue")


def median(input: Tensor, dim: int | None = None, keepdim: bool = False):
    """The lower median: of all elements (a tensor; ties share the gradient evenly, as torch), or along
    ``dim`` as (values, indices). A NaN makes the median NaN."""
    if dim is None:
        return _median_all(input, ignore_nan=False)
    size = input.shape[_axis(input, dim, "median")] if input.ndim else 1
    if size == 0:
        raise IndexError(f"median(): Expected reduction dim {dim} to have non-zero size.")
    if input.array.dtype.kind == "f" and input.ndim:
        nan = array_module(input.array).isnan(input.array)
        if bool(nan.any()):  # torch: the median of a slice with NaN is NaN, at the first NaN's index
            return _median_with_nan(input, _axis(input, dim, "median"), keepdim, nan)
    return _kth(input, (size - 1) // 2, dim, keepdim, "median")


def _median_with_nan(input: Tensor, axis: int, keepdim: bool, nan):
    xp = array_module(input.array)
    count = (~nan).sum(axis=axis, keepdims=True)
    order = stable_order(input.array, axis, False)  # NaN sort last
    k = xp.where(nan.any(axis=axis, keepdims=True), count, (count - 1) // 2)
    idx = xp.take_along_axis(order, k, axis=axis)
    values, indices = _picked(input, idx, axis)
    if not keepdim:
        values, indices = values.squeeze(axis), indices.squeeze(axis)
    return min_max_result(values, indices)


def nanmedian(input: Tensor, dim: int | None = None, keepdim: bool = False):
    """:func:`median` ignoring NaN (NaN only where a slice is all NaN)."""
    if dim is None:
        return _median_all(input, ignore_nan=True)
    axis = _axis(input, dim, "nanmedian")
    if input.ndim == 0:
        return _kth(input, 0, dim, keepdim, "nanmedian")
    xp = array_module(input.array)
    nan = xp.isnan(input.array) if input.array.dtype.kind == "f" else xp.zeros(input.shape, dtype=bool)
    count = (~nan).sum(axis=axis, keepdims=True)
    order = stable_order(input.array, axis, False)
    k = xp.maximum(count - 1, 0) // 2
    values, indices = _picked(input, xp.take_along_axis(order, k, axis=axis), axis)
    if not keepdim:
        values, indices = values.squeeze(axis), indices.squeeze(axis)
    return min_max_result(values, indices)


def _median_all(input: Tensor, ignore_nan: bool) -> Tensor:
    a = input.array.reshape(-1)
    xp = array_module(a)
    if a.size == 0:
        return Tensor._make(xp.asarray(np.nan, dtype=a.dtype), None) if a.dtype.kind == "f" else \
            Tensor._make(xp.zeros((), dtype=a.dtype), None)
    finite = a[~xp.isnan(a)] if a.dtype.kind == "f" else a
    if not ignore_nan and finite.size < a.size or finite.size == 0:
        value = a.dtype.type(np.nan)
    else:
        value = xp.sort(finite)[(finite.size - 1) // 2]
    if not input.requires_grad:
        return Tensor._make(xp.asarray(value, dtype=a.dtype), None)
    # torch's gradient of a full median: shared evenly among the elements equal to it (NaN: the NaNs)
    return _EvenlyShared.apply(input, value=value)


class _EvenlyShared(Amax):
    """A selected value of the whole tensor whose gradient is shared evenly among the elements equal to it."""

    saved = ((0, OUT),)

    def forward(self, x, value):
        xp = array_module(x)
        self.mask = mask = (x == value) | (xp.isnan(x) & xp.isnan(value)) if x.dtype.kind == "f" else x == value
        self.count = mask.sum(keepdims=True).reshape((1,) * x.ndim)
        self.axes, self.keepdim = tuple(range(x.ndim)), False
        return xp.asarray(value, dtype=x.dtype)


def mode(input: Tensor, dim: int = -1, keepdim: bool = False):
    """(values, indices): the most frequent value along ``dim`` (the smallest of equally frequent ones) and
    the index of its last occurrence, as torch."""
    axis = _axis(input, dim, "mode")
    if input.ndim == 0:
        return min_max_result(input * 1, Tensor._make(np.zeros((), dtype=np.int64), None))
    a = backend.move_to(input.array, backend.Device("cpu"))
    moved = np.moveaxis(a, axis, -1)
    rows = moved.reshape(-1, moved.shape[-1])
    if rows.shape[1] == 0:
        raise IndexError(f"mode(): Expected reduction dim {dim} to have non-zero size.")
    best = np.empty(rows.shape[0], dtype=np.int64)
    for r, row in enumerate(rows):
        values, counts = np.unique(row, return_counts=True, equal_nan=False)
        top = values[np.argmax(counts)]  # np.unique sorts: argmax takes the smallest of the most frequent
        best[r] = row.size - 1 - np.flatnonzero(row[::-1] == top)[0] if top == top else np.flatnonzero(row != row)[-1]
    idx = best.reshape(moved.shape[:-1] + (1,))
    idx = backend.move_to(np.moveaxis(idx, -1, axis), input.device)
    values, indices = _picked(input, idx, axis)
    if not keepdim:
        values, indices = values.squeeze(axis), indices.squeeze(axis)
    return min_max_result(values, indices)


def quantile(input: Tensor, q, dim: int | None = None, keepdim: bool = False, *, interpolation: str = "linear"):
    """The ``q``-quantiles (a number or a 1-D tensor in [0, 1]) along ``dim`` (of all elements when None),
    interpolated between the two nearest ranks like torch; differentiable through the picked values."""
    from .binary_math import lerp
    from .shape import reshape, stack

    if interpolation not in ("linear", "lower", "higher", "midpoint", "nearest"):
        raise ValueError(f"quantile() interpolation must be one of linear, lower, higher, midpoint or nearest. "
                         f"Got {interpolation}")
    if input.array.dtype.kind != "f":
        raise RuntimeError(f"quantile() input tensor must be either float or double dtype, got {input.dtype}")
    qs = q.array.reshape(-1).tolist() if isinstance(q, Tensor) else [q]
    if isinstance(q, Tensor) and q.ndim > 1:
        raise RuntimeError("quantile() q must be a scalar or 1D tensor")
    if builtins.any(not 0 <= v <= 1 for v in qs):
        raise RuntimeError("quantile() q values must be in the range [0, 1]")
    x = reshape(input, -1) if dim is None else input
    axis = 0 if dim is None else _axis(input, dim, "quantile")
    n = x.shape[axis] if x.ndim else 1
    if n == 0:
        raise IndexError("quantile() input tensor must be non-empty")
    values = sort(x, axis).values
    nan = array_module(values.array).isnan(values.array).any(axis=axis, keepdims=True)
    outs = []
    for v in qs:
        rank = v * (n - 1)
        lo, hi = int(np.floor(rank)), int(np.ceil(rank))
        frac = {"linear": rank - lo, "lower": 0.0, "higher": 1.0, "midpoint": 0.5,
                "nearest": float(round(rank) - lo)}[interpolation]
        below, above = (values[(slice(None),) * axis + (slice(i, i + 1),)] for i in (lo, hi))
        out = lerp(below, above, frac) if frac not in (0.0, 1.0) else (above if frac else below) * 1
        if bool(nan.any()):  # a slice holding NaN has a NaN quantile
            out = out.masked_fill(Tensor._make(nan, None), float("nan"))
        outs.append(out if keepdim and dim is not None else out.squeeze(axis))
    if dim is None and keepdim:
        outs = [reshape(o, (1,) * input.ndim) for o in outs]
    return stack(outs, 0) if isinstance(q, Tensor) and q.ndim == 1 else outs[0]


def unique(input: Tensor, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False,
           dim: int | None = None):
    """The distinct values (sorted), optionally with each element's position in them and their counts;
    with ``dim``, the distinct slices along ``dim``."""
    a = input.array
    xp = array_module(a)
    axis = None if dim is None else _axis(input, dim, "unique")
    if axis is not None and a.ndim and a.shape[axis] == 0:
        values, inverse, counts = a, xp.zeros(0, dtype=np.int64), xp.zeros(0, dtype=np.int64)
    else:
        values, inverse, counts = xp.unique(a.reshape(-1) if axis is None else a, return_inverse=True,
                                            return_counts=True, axis=axis, equal_nan=False)
    inverse = inverse.reshape(a.shape if axis is None else (a.shape[axis] if a.ndim else 1,))
    out = [_recorded(input, values, NotImplementedError("the derivative for '_unique2' is not implemented."))]
    if return_inverse:
        out.append(Tensor._make(inverse.astype(np.int64, copy=False), None))
    if return_counts:
        out.append(Tensor._make(counts.astype(np.int64, copy=False), None))
    return out[0] if len(out) == 1 else tuple(out)


def unique_consecutive(input: Tensor, return_inverse: bool = False, return_counts: bool = False,
                       dim: int | None = None):
    """Collapse runs of equal consecutive values (or slices along ``dim``) into one."""
    a = input.array
    xp = array_module(a)
    axis = 0 if dim is None else _axis(input, dim, "unique_consecutive")
    flat = a.reshape(-1) if dim is None else xp.moveaxis(a, axis, 0)
    n = flat.shape[0] if flat.ndim else 1
    if n == 0:
        change = xp.zeros(0, dtype=bool)
    else:
        differs = (flat[1:] != flat[:-1]).reshape(n - 1, -1).any(axis=1)
        change = xp.concatenate([xp.ones(1, dtype=bool), differs])
    starts = xp.flatnonzero(change)
    values = flat[starts] if dim is None else xp.moveaxis(flat[starts], 0, axis)
    out = [_recorded(input, values, NotImplementedError("the derivative for 'unique_consecutive' is not "
                                                        "implemented."))]
    if return_inverse:
        inverse = xp.cumsum(change) - 1
        out.append(Tensor._make(inverse.reshape(a.shape if dim is None else (n,)).astype(np.int64), None))
    if return_counts:
        out.append(Tensor._make(xp.diff(xp.append(starts, n)).astype(np.int64), None))
    return out[0] if len(out) == 1 else tuple(out)


def bincount(input: Tensor, weights: Tensor | None = None, minlength: int = 0) -> Tensor:
    """How often each value 0..max occurs in a 1-D non-negative integer tensor (summing ``weights``)."""
    a = input.array
    if a.ndim != 1 or a.dtype.kind not in "biu" or (a.size and int(a.min()) < 0):
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    if minlength < 0:
        raise RuntimeError("minlength should be >= 0")
    if weights is not None and (weights.ndim != 1 or weights.shape[0] != a.shape[0]):
        raise RuntimeError("weights should be 1-d and have the same length as input")
    xp = array_module(a)
    w = None if weights is None else weights.array
    out = xp.bincount(a.astype(np.int64), weights=w, minlength=minlength)
    if w is None:
        return Tensor._make(out.astype(np.int64, copy=False), None)
    out = out.astype(w.dtype if w.dtype.kind == "f" else np.float64, copy=False)
    return _recorded(weights, out, RuntimeError("derivative for aten::bincount is not implemented"))


def histc(input: Tensor, bins: int = 100, min: float = 0, max: float = 0) -> Tensor:
    """A histogram of ``bins`` equal bins over [min, max] (the data's range when min == max); elements
    outside are ignored. Floating tensors only, as torch."""
    a = input.array
    if a.dtype.kind != "f":
        raise NotImplementedError(f'"histogram_cpu" not implemented for \'{torch_name(a.dtype)}\'')
    if bins <= 0:
        raise RuntimeError(f"torch.histc: bins must be > 0, but got {bins} for dimension 0")
    if min > max:
        raise RuntimeError(f"torch.histc: min ({min}) must be less than or equal to max ({max})")
    lo, hi = float(min), float(max)
    xp = array_module(a)
    if lo == hi and a.size:
        lo, hi = float(a.min()), float(a.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    counts, _ = xp.histogram(a.reshape(-1), bins=bins, range=(lo, hi))
    return Tensor._make(counts.astype(a.dtype), None)


def searchsorted(sorted_sequence: Tensor, input, *, out_int32: bool = False, right: bool = False,
                 side: str | None = None, sorter: Tensor | None = None) -> Tensor:
    """Where each value of ``input`` would go in the sorted innermost rows of ``sorted_sequence``."""
    if side is not None:
        if side not in ("left", "right"):
            raise RuntimeError(f"torch.searchsorted(): side can only be 'left' or 'right' but got {side}")
        if right and side == "left":
            raise RuntimeError("torch.searchsorted(): side and right can't be set to opposites, got side of left "
                               "while right was True")
        right = side == "right"
    seq = sorted_sequence.array
    xp = array_module(seq)
    if sorter is not None:
        seq = xp.take_along_axis(seq, sorter.array, axis=-1)
    scalar = not isinstance(input, Tensor)
    values = xp.asarray(input) if scalar else input.array
    how = "right" if right else "left"
    if seq.ndim <= 1:
        out = xp.searchsorted(seq, values, side=how)
    else:
        if values.ndim != seq.ndim or values.shape[:-1] != seq.shape[:-1]:
            raise RuntimeError(f"torch.searchsorted(): boundaries tensor should be 1 dimension or the first N-1 "
                               f"dimensions of boundaries tensor and input value tensor must match, but we got "
                               f"boundaries tensor {list(seq.shape)} and input value tensor {list(values.shape)}")
        rows, vals = seq.reshape(-1, seq.shape[-1]), values.reshape(-1, values.shape[-1])
        out = xp.stack([xp.searchsorted(r, v, side=how) for r, v in zip(rows, vals)]).reshape(values.shape)
    return Tensor._make(xp.asarray(out).astype(np.int32 if out_int32 else np.int64), None)


def bucketize(input, boundaries: Tensor, *, out_int32: bool = False, right: bool = False) -> Tensor:
    """The bucket of each value given sorted 1-D ``boundaries`` (``right``: boundaries[i-1] <= x < boundaries[i])."""
    if boundaries.ndim != 1:
        raise RuntimeError(f"boundaries tensor must be 1 dimension, but got dim({boundaries.ndim})")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)
