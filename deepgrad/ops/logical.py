"""Comparisons, bitwise and logical ops, shifts and the float tests (isnan...): results without gradient.

Operands meet in torch's promoted dtype (:mod:`.promotion`) before NumPy sees them, so ``uint8 < -1``
compares what torch compares, and the refusals are torch's (bitwise ops on floats, ``~`` on a float).

>>> import deepgrad as dg
>>> eq(dg.tensor([1, 2]), 2)
tensor([False,  True])
"""

from __future__ import annotations

import numpy as np

from ..backend import array_module
from ..tensor import Tensor
from .elementwise import device_error
from .promotion import result_type, scalar_in, torch_name


def comparable(other) -> bool:
    """What ``tensor == other`` compares elementwise; anything else (None, a string) gets Python's
    fallback (``==`` False, ``!=`` True), as in torch."""
    return isinstance(other, (Tensor, int, float, bool, np.generic))


def _operands(name: str, a, b):
    """Both operands (one may be a number) as arrays / numbers in the dtype torch computes in."""
    for x, y in ((a, b), (b, a)):
        if isinstance(x, Tensor):
            if isinstance(y, Tensor) and type(x.array) is not type(y.array):
                raise device_error(name, x, y)
        elif not isinstance(x, (int, float, bool, np.generic)):
            raise TypeError(f"{name}: unsupported operand type {type(x).__name__}")
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{name}: expected at least one Tensor")
    dtype = result_type(a, b)

    def conv(v):
        if isinstance(v, Tensor):
            return v.array if v.array.dtype == dtype else v.array.astype(dtype)
        return scalar_in(v, dtype)

    return conv(a), conv(b), dtype


def _apply(name: str, ufunc, a, b):
    x, y, _ = _operands(name, a, b)
    try:
        return Tensor._make(ufunc(x, y), None)
    except ValueError as e:
        shapes = (tuple(a.shape), tuple(b.shape) if isinstance(b, Tensor) else ())
        raise RuntimeError(f"{name}: shapes {shapes[0]} and {shapes[1]} cannot be broadcast together") from e


def _comparison(name: str, ufunc):
    def op(a: Tensor, b) -> Tensor:
        return _apply(name, ufunc, a, b)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"Elementwise ``{name}`` in the promoted dtype; a bool tensor."
    return op


eq = _comparison("eq", np.equal)
ne = _comparison("ne", np.not_equal)
lt = _comparison("lt", np.less)
le = _comparison("le", np.less_equal)
gt = _comparison("gt", np.greater)
ge = _comparison("ge", np.greater_equal)


def _integral(name: str, ufunc, kernel: str):
    def op(a: Tensor, b) -> Tensor:
        x, y, dtype = _operands(name, a, b)
        if dtype.kind not in "biu":
            raise NotImplementedError(f'"{kernel}" not implemented for \'{torch_name(dtype)}\'')
        return Tensor._make(ufunc(x, y), None)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"Elementwise ``{name}`` of integer or bool tensors (torch refuses floats)."
    return op


bitwise_and = _integral("bitwise_and", np.bitwise_and, "bitwise_and_cpu")
bitwise_or = _integral("bitwise_or", np.bitwise_or, "bitwise_or_cpu")
bitwise_xor = _integral("bitwise_xor", np.bitwise_xor, "bitwise_xor_cpu")


def _shift(name: str, ufunc, kernel: str):
    def op(a: Tensor, b) -> Tensor:
        x, y, dtype = _operands(name, a, b)
        if not hasattr(x, "dtype"):
            x = array_module(y).asarray(x, dtype=dtype)
        if dtype.kind not in "iu":
            raise NotImplementedError(f'"{kernel}" not implemented for \'{torch_name(dtype)}\'')
        xp = array_module(x) if hasattr(x, "dtype") else np
        bits = 8 * dtype.itemsize
        y = xp.asarray(y)
        # torch gives 0 (or -1 for a negative number shifted right) for shifts of the width or more, and
        # NumPy's result there is undefined; a negative shift amount shifts to 0 as well.
        big = (y >= bits) | (y < 0)
        out = ufunc(x, xp.where(big, 0, y).astype(dtype, copy=False))
        if bool(xp.any(big)):
            fill = xp.where(xp.asarray(x) < 0, -1, 0) if ufunc is np.right_shift and dtype.kind == "i" else 0
            out = xp.where(big, fill, out).astype(dtype, copy=False)
        return Tensor._make(xp.asarray(out), None)

    op.__name__ = op.__qualname__ = name
    return op


bitwise_left_shift = _shift("bitwise_left_shift", np.left_shift, "lshift_cpu")
bitwise_right_shift = _shift("bitwise_right_shift", np.right_shift, "rshift_cpu")


def bitwise_not(x: Tensor) -> Tensor:
    """``~x`` for integer and bool tensors (logical not for bools)."""
    if x.array.dtype.kind not in "biu":
        raise TypeError("~ (operator.invert) is only implemented on integer and Boolean-type tensors")
    return Tensor._make(~x.array, None)


def _logical(ufunc):
    def op(a: Tensor, b) -> Tensor:
        x, y, _ = _operands(ufunc.__name__, a, b)
        return Tensor._make(ufunc(x, y), None)

    op.__name__ = op.__qualname__ = ufunc.__name__
    op.__doc__ = f"Elementwise ``{ufunc.__name__}`` of the truth values (any dtype); a bool tensor."
    return op


logical_and = _logical(np.logical_and)
logical_or = _logical(np.logical_or)
logical_xor = _logical(np.logical_xor)


def logical_not(x: Tensor) -> Tensor:
    """``not x`` elementwise; a bool tensor."""
    return Tensor._make(np.logical_not(x.array), None)


def isnan(x: Tensor) -> Tensor:
    """Where x is NaN."""
    return Tensor._make(np.isnan(x.array), None)


def isinf(x: Tensor) -> Tensor:
    """Where x is +inf or -inf."""
    return Tensor._make(np.isinf(x.array), None)


def isfinite(x: Tensor) -> Tensor:
    """Where x is neither inf nor NaN."""
    return Tensor._make(np.isfinite(x.array), None)
