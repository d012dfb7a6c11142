"""The reductions beyond reduce.py's: prod (with torch's gradient where there are zeros), nansum, nanmean,
std_mean, var_mean and aminmax.

>>> import deepgrad as dg
>>> dg.prod(dg.tensor([1.0, 2.0, 3.0]))
tensor(6.)
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from .. import backend
from ..autograd import OUT, Function, track_saved
from ..backend import array_module
from ..tensor import Tensor
from .elementwise import cast, where
from .reduce import _dim_or_axis, _extreme, expand_reduced, normalize_dims
from .reduce import mean as _mean
from .reduce import std as _std
from .reduce import sum as _sum
from .reduce import var as _var

aminmax_result = namedtuple("aminmax", ["min", "max"])

__all__ = [  # the public ops (deepgrad.functional exports them)
    "prod", "nansum", "nanmean", "std_mean", "var_mean", "aminmax",
]


class Prod(Function):
    """The product over ``axes``; its gradient by torch's cases: no zero in a slice -> out / x; one zero ->
    the product of the others at the zero, 0 elsewhere; two or more zeros -> 0."""

    saved = ((0, OUT),)

    def forward(self, x, axes, keepdim):
        self.x, self.axes, self.keepdim = x, axes, keepdim
        self.out = out = x.prod(axis=axes, keepdims=keepdim)
        return out

    def backward(self, g):
        xp = array_module(g)
        x, axes, keepdim = self.x, self.axes, self.keepdim
        g = expand_reduced(g, x.shape, axes, keepdim)
        out = expand_reduced(self.out, x.shape, axes, keepdim)
        zero = x == 0
        zeros = zero.sum(axis=axes, keepdims=True)
        others = xp.where(zero, 1, x).prod(axis=axes, keepdims=True)  # the product without the zeros
        with np.errstate(divide="ignore", invalid="ignore"):
            d = xp.where(zeros == 0, out / x, xp.where((zeros == 1) & zero, others, 0))
        return (g * d).astype(g.dtype, copy=False)


def prod(input: Tensor, dim: int | None = None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """The product of the elements (over ``dim`` when given); integers and bools multiply in int64."""
    if dtype is not None:
        input = cast(input, dtype)
    elif input.array.dtype.kind in "biu":
        input = cast(input, backend.int64)
    if dim is not None and not isinstance(dim, (int, np.integer)):
        raise TypeError(f"prod(): argument 'dim' must be int, not {type(dim).__name__}")
    return Prod.apply(input, axes=normalize_dims(dim, input.ndim, "prod"), keepdim=keepdim if dim is not None else
                      False)


def _without_nan(input: Tensor) -> Tensor:
    """``input`` with NaN replaced by 0 through ``where`` (so the gradient there is 0)."""
    if input.array.dtype.kind != "f":
        return input
    xp = array_module(input.array)
    return where(Tensor._make(xp.isnan(input.array), None), 0.0, input)


def nansum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """The sum treating NaN as 0 (their gradient is 0)."""
    return track_saved(_sum(_without_nan(input), dim, keepdim, dtype), input)  # torch saves the input


def nanmean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """The mean of the non-NaN elements (NaN where there are none)."""
    if dtype is not None:
        input = cast(input, dtype)
    if input.array.dtype.kind != "f":
        from .promotion import torch_name

        raise RuntimeError(f"nanmean(): expected input to have floating point or complex dtype but got "
                           f"{torch_name(input.dtype)}")
    xp = array_module(input.array)
    count = (~xp.isnan(input.array)).sum(axis=normalize_dims(dim, input.ndim, "nanmean"), keepdims=keepdim)
    with np.errstate(divide="ignore", invalid="ignore"):
        return nansum(input, dim, keepdim) / Tensor._make(count.astype(input.array.dtype), None)


def std_mean(input: Tensor, dim=None, unbiased: bool | None = None, keepdim: bool = False, *, correction=None):
    """(std, mean) over ``dim``, with Bessel's correction by default."""
    return _std(input, dim, unbiased, keepdim, correction=correction), _mean(input, dim, keepdim)


def var_mean(input: Tensor, dim=None, unbiased: bool | None = None, keepdim: bool = False, *, correction=None):
    """(var, mean) over ``dim``, with Bessel's correction by default."""
    return _var(input, dim, unbiased, keepdim, correction=correction), _mean(input, dim, keepdim)


def aminmax(input: Tensor, *, dim: int | None = None, keepdim: bool = False, axis=None):
    """(min, max) over ``dim`` (all elements when None); ties share the gradient evenly, as amin/amax."""
    if axis is not None:
        dim = _dim_or_axis(dim, axis, "aminmax")
    if input.array.size == 0 or (dim is not None and input.ndim and input.shape[dim] == 0):
        raise RuntimeError("aminmax(): cannot compute aminmax over an empty dimension as the operation has no "
                           "identity.")
    axes = normalize_dims(dim, input.ndim, "aminmax")
    keep = keepdim if dim is not None else False
    return aminmax_result(_extreme(input, axes, keep, False, "aminmax"), _extreme(input, axes, keep, True, "aminmax"))
