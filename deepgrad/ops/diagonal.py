"""Diagonals and triangles of matrices: diagonal (a writable view, as torch's), diag, diag_embed, diagflat,
trace, tril/triu and the index lists tril_indices/triu_indices.

>>> import deepgrad as dg
>>> dg.tril(dg.ones(3, 3)).sum()
tensor(6.)
"""

from __future__ import annotations

import builtins

import numpy as np

from .. import backend
from ..autograd import Function
from ..backend import array_module
from ..tensor import Tensor
from .reduce import normalize_dims

__all__ = [  # the public ops (deepgrad.functional exports them)
    "diagonal", "diag", "diag_embed", "diagflat", "trace", "tril", "triu", "tril_indices", "triu_indices",
]


def diagonal_view(a, offset: int, dim1: int, dim2: int):
    """The ``offset`` diagonal of ``a`` over (dim1, dim2) as the last dim of a writable view."""
    xp = array_module(a)
    n1, n2 = a.shape[dim1], a.shape[dim2]
    r0, c0 = (0, offset) if offset >= 0 else (-offset, 0)
    length = builtins.max(0, builtins.min(n1 - r0, n2 - c0))
    index = [slice(None)] * a.ndim
    index[dim1], index[dim2] = slice(r0, r0 + length) if length else slice(0, 0), \
        slice(c0, c0 + length) if length else slice(0, 0)
    sub = a[tuple(index)]
    others = [i for i in range(a.ndim) if i not in (dim1, dim2)]
    shape = [sub.shape[i] for i in others] + [length]
    strides = [sub.strides[i] for i in others] + [sub.strides[dim1] + sub.strides[dim2]]
    return xp.lib.stride_tricks.as_strided(sub, shape, strides)


class Diagonal(Function):
    """A diagonal as a view; backward writes the gradient onto the diagonal of zeros."""

    saved = ()
    view = True

    def forward(self, x, offset, dim1, dim2):
        self.shape, self.params = x.shape, (offset, dim1, dim2)
        return diagonal_view(x, offset, dim1, dim2)

    def backward(self, g):
        gx = array_module(g).zeros(self.shape, dtype=g.dtype)
        diagonal_view(gx, *self.params)[...] = g
        return gx


class DiagEmbed(Function):
    """The last dim of x placed on the ``offset`` diagonal of new (dim1, dim2) dims filled with zeros."""

    saved = ()

    def forward(self, x, offset, dim1, dim2):
        self.params = (offset, dim1, dim2)
        n = x.shape[-1] + abs(offset) if x.ndim else abs(offset) + 1
        shape = list(x.shape[:-1])
        for d in sorted((dim1, dim2)):
            shape.insert(d, n)
        out = array_module(x).zeros(shape, dtype=x.dtype)
        diagonal_view(out, offset, dim1, dim2)[...] = x
        return out

    def backward(self, g):
        return diagonal_view(g, *self.params).copy()


class Triangle(Function):
    """tril / triu of the last two dims: the gradient keeps the same triangle."""

    saved = ()

    def forward(self, x, k, lower):
        self.k, self.lower = k, lower
        xp = array_module(x)
        return xp.tril(x, k) if lower else xp.triu(x, k)

    def backward(self, g):
        xp = array_module(g)
        return xp.tril(g, self.k) if self.lower else xp.triu(g, self.k)


# ----------------------------------------------------------------------------- public API
def diagonal(input: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The ``offset`` diagonal over (dim1, dim2) as the last dim: a view (writes reach ``input``)."""
    d1, d2 = normalize_dims((dim1, dim2), input.ndim, "diagonal")
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    return Diagonal.apply(input, offset=int(offset), dim1=d1, dim2=d2)


def diag_embed(input: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """Each last-dim vector of ``input`` as the ``offset`` diagonal of a new matrix over (dim1, dim2)."""
    d1, d2 = normalize_dims((dim1, dim2), input.ndim + 1, "diag_embed")
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    return DiagEmbed.apply(input, offset=int(offset), dim1=d1, dim2=d2)


def diag(input: Tensor, diagonal: int = 0) -> Tensor:
    """A 1-D tensor as a diagonal matrix, or a matrix's ``diagonal`` as a new 1-D tensor."""
    if input.ndim == 1:
        return diag_embed(input, diagonal, 0, 1)
    if input.ndim == 2:
        return Diagonal.apply(input, offset=int(diagonal), dim1=0, dim2=1) * 1  # a copy, as torch.diag
    raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {input.ndim}D")


def diagflat(input: Tensor, offset: int = 0) -> Tensor:
    """The flattened input as the ``offset`` diagonal of a square matrix."""
    return diag_embed(input.reshape(-1), offset, 0, 1)


def trace(input: Tensor) -> Tensor:
    """The sum of a matrix's main diagonal (integers sum to int64)."""
    if input.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {input.ndim}")
    from .reduce import sum as reduce_sum

    return reduce_sum(diagonal(input))


def _triangle(input: Tensor, diagonal: int, lower: bool) -> Tensor:
    name = "tril" if lower else "triu"
    if input.ndim < 2:
        raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions")
    return Triangle.apply(input, k=int(diagonal), lower=lower)


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dims (on and below the ``diagonal``-th diagonal), zeros above."""
    return _triangle(input, diagonal, True)


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dims (on and above the ``diagonal``-th diagonal), zeros below."""
    return _triangle(input, diagonal, False)


def _indices(row: int, col: int, offset: int, dtype, device, lower: bool) -> Tensor:
    if row < 0 or col < 0:
        raise RuntimeError(f"row must be non-negative, got{row}" if row < 0 else f"col must be non-negative, got{col}")
    mask = np.tri(row, col, offset, dtype=bool) if lower else ~np.tri(row, col, offset - 1, dtype=bool)
    idx = np.stack(np.nonzero(mask)).astype(backend.int64 if dtype is None else np.dtype(dtype))
    return Tensor._make(idx if device is None else backend.move_to(idx, backend.Device(device)), None)


def tril_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None, layout=None) -> Tensor:
    """The (2, N) row/column indices of the lower triangle of a row x col matrix, row by row."""
    return _indices(row, col, offset, dtype, device, True)


def triu_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None, layout=None) -> Tensor:
    """The (2, N) row/column indices of the upper triangle of a row x col matrix, row by row."""
    return _indices(row, col, offset, dtype, device, False)
