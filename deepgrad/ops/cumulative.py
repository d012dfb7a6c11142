"""Running reductions along a dim: cumsum, cumprod, cummax, cummin, logcumsumexp, and diff.

Each op works on the dim moved last (``_last``) and moves it back; backwards are closed forms: a reversed
cumulative sum for cumsum, torch's zero-aware formula for cumprod, the gradient routed to the running
winner's index for cummax/cummin, and a log-space reversed sum for logcumsumexp (no overflow).

>>> import deepgrad as dg
>>> dg.cumsum(dg.tensor([1.0, 2.0, 3.0]), dim=0)
tensor([1., 3., 6.])
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import OUT, Function
from ..backend import array_module
from ..tensor import Tensor, min_max_result
from .elementwise import cast
from .promotion import torch_name
from .reduce import SelectAlong, normalize_dims

__all__ = [  # the public ops (deepgrad.functional exports them)
    "cumsum", "cumprod", "logcumsumexp", "cummax", "cummin", "diff",
]


def reverse_cumsum(g, axis: int):
    """sum_{j >= i} g_j along ``axis``."""
    xp = array_module(g)
    return xp.flip(xp.cumsum(xp.flip(g, axis), axis=axis), axis)


class Cumsum(Function):
    saved = ()

    def forward(self, x, dim):
        self.dim = dim
        return array_module(x).cumsum(x, axis=dim)

    def backward(self, g):
        return reverse_cumsum(g, self.dim)


class Cumprod(Function):
    """torch's gradient, zeros included: where a slice has no zero, reversed-cumsum(g * out) / x; at the
    slice's first zero, sum_{j >= k} g_j * prod_{m <= j, m != k} x_m; after it, 0."""

    saved = ((0, OUT),)

    def forward(self, x, dim):
        self.x, self.dim = x, dim
        self.out = out = array_module(x).cumprod(x, axis=dim)
        return out

    def backward(self, g):
        xp = array_module(g)
        x, out = xp.moveaxis(self.x, self.dim, -1), xp.moveaxis(self.out, self.dim, -1)
        g = xp.moveaxis(g, self.dim, -1)
        n = x.shape[-1]
        zero = x == 0
        first = xp.where(zero.any(axis=-1, keepdims=True), zero.argmax(axis=-1)[..., None], n)
        pos = xp.arange(n)
        with np.errstate(divide="ignore", invalid="ignore"):
            before = reverse_cumsum(g * out, -1) / x
        skipped = xp.cumprod(xp.where(pos == first, 1, x), axis=-1)  # the products without the first zero
        at_zero = reverse_cumsum(g * skipped, -1)
        grad = xp.where(pos < first, before, xp.where(pos == first, at_zero, 0)).astype(g.dtype, copy=False)
        return xp.moveaxis(grad, -1, self.dim)


class CumExtremeValues(SelectAlong):
    """The values of cummax/cummin, picked by their indices; torch saves the input (and the indices)."""

    saved = ((0, 1), ())


class LogCumSumExp(Function):
    saved = ((0, OUT),)

    def forward(self, x, dim):
        self.x, self.dim = x, dim
        with np.errstate(invalid="ignore"):  # -inf - -inf inside logaddexp: the result is -inf, as torch
            self.out = out = np.logaddexp.accumulate(x, axis=dim) if x.size else x.copy()
        return out

    def backward(self, g):
        # grad_i = sum_{j >= i} g_j exp(x_i - out_j), summed in log space separately for g > 0 and g < 0 (torch)
        xp = array_module(g)
        x, out, dim = self.x, self.out, self.dim
        if g.size == 0:
            return g.copy()
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_abs = np.log(abs(g))
            neg_inf = g.dtype.type(-np.inf)

            def part(mask):
                terms = xp.where(mask, log_abs - out, neg_inf)
                return np.exp(xp.flip(np.logaddexp.accumulate(xp.flip(terms, dim), axis=dim), dim) + x)

            return (part(g > 0) - part(g < 0)).astype(g.dtype, copy=False)


# ----------------------------------------------------------------------------- public API
def _dim(x: Tensor, dim, name: str) -> int:
    if dim is None:
        raise TypeError(f"{name}() missing required argument 'dim' (position 2)")
    (axis,) = normalize_dims(dim, max(x.ndim, 1), name) if x.ndim == 0 else normalize_dims(dim, x.ndim, name)
    return axis


def _running(cls, x: Tensor, dim, dtype, name: str) -> Tensor:
    if dtype is not None:
        x = cast(x, dtype)
    elif x.array.dtype.kind in "biu":
        x = cast(x, backend.int64)  # torch: integer and bool running sums/products are int64
    axis = _dim(x, dim, name)
    if x.ndim == 0:
        return cls.apply(x.reshape(1), dim=0).reshape(())
    return cls.apply(x, dim=axis)


def cumsum(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    """Running sum along ``dim`` (integers and bools sum to int64)."""
    return _running(Cumsum, input, dim, dtype, "cumsum")


def cumprod(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    """Running product along ``dim``; the gradient is exact where the input has zeros (torch's formula)."""
    return _running(Cumprod, input, dim, dtype, "cumprod")


def logcumsumexp(input: Tensor, dim: int) -> Tensor:
    """log of the running sum of exp along ``dim``, computed stably (floating tensors only)."""
    if input.array.dtype.kind != "f":
        raise NotImplementedError(f'"logcumsumexp_out_cpu" not implemented for \'{torch_name(input.dtype)}\'')
    return _running(LogCumSumExp, input, dim, None, "logcumsumexp")


def _cum_extreme(x: Tensor, dim, largest: bool):
    name = "cummax" if largest else "cummin"
    axis = _dim(x, dim, name)
    if x.ndim == 0:
        values, indices = _cum_extreme(x.reshape(1), 0, largest)
        return min_max_result(values.reshape(()), indices.reshape(()))
    xp = array_module(x.array)
    a = x.array
    running = (np.maximum if largest else np.minimum).accumulate(a, axis=axis) if a.size else a.copy()
    # The winner's index: the last position so far whose value equals the running extreme there (torch's
    # ``>=``/``<=`` rule keeps the latest of tied values; a NaN wins from where it appears on).
    hit = a == running
    if a.dtype.kind == "f":
        hit |= xp.isnan(a)
    shape = [1] * a.ndim
    shape[axis] = a.shape[axis]
    positions = xp.where(hit, xp.arange(a.shape[axis]).reshape(shape), 0)
    indices = np.maximum.accumulate(positions, axis=axis) if a.size else positions
    indices = Tensor._make(indices.astype(backend.int64, copy=False), None)
    return min_max_result(CumExtremeValues.apply(x, indices, dim=axis), indices)


def cummax(input: Tensor, dim: int):
    """(values, indices) of the running maximum along ``dim``; ties take the latest index, as torch."""
    return _cum_extreme(input, dim, True)


def cummin(input: Tensor, dim: int):
    """(values, indices) of the running minimum along ``dim``; ties take the latest index, as torch."""
    return _cum_extreme(input, dim, False)


def diff(input: Tensor, n: int = 1, dim: int = -1, prepend: Tensor | None = None, append: Tensor | None = None):
    """The n-th forward difference along ``dim`` (``prepend``/``append`` joined first); bools give xor."""
    from .logical import logical_xor
    from .shape import cat

    if input.ndim == 0:
        raise RuntimeError("diff expects input to be at least one-dimensional")
    if n < 0:
        raise RuntimeError(f"order must be non-negative but got {n}")
    (axis,) = normalize_dims(dim, input.ndim, "diff")
    x = cat([t for t in (prepend, input, append) if t is not None], axis) if prepend is not None or \
        append is not None else input
    for _ in range(n):
        size = x.shape[axis]
        if size == 0:
            break
        hi = x[(slice(None),) * axis + (slice(1, size),)]
        lo = x[(slice(None),) * axis + (slice(0, size - 1),)]
        x = logical_xor(hi, lo) if x.array.dtype == bool else hi - lo
    return x
