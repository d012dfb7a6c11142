"""Python's ``//`` and ``%`` on tensors: ``floor_divide`` and ``remainder`` (the sign of the divisor), in
the operands' promoted dtype, as torch computes them.

``remainder`` has torch's gradients (1 for ``a``, ``-floor(a / b)`` for ``b``); ``//`` on floats and a
number's ``% tensor`` are recorded but not differentiable, and their backward raises torch's error rather
than passing a silent zero.

>>> import deepgrad as dg
>>> dg.tensor([-7, 7]) // 2, dg.tensor([-7.0, 7.0]) % 3
(tensor([-4,  3]), tensor([2., 1.]))
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..backend import array_module
from ..tensor import Tensor
from .arithmetic import _broadcast, _no_zero_divisor, _not_for_bool, _wrap, operands, sum_to
from .elementwise import unbroadcast
from .promotion import result_type


class Remainder(Function):
    """``a - floor(a / b) * b`` (the sign of the divisor, Python's ``%``); torch's gradients: 1 for a,
    ``-floor(a / b)`` for b."""

    saved = ((), (0, 1))

    def forward(self, a, b):
        self.a, self.b = a, b
        return np.mod(a, b)

    def backward(self, g):
        a, b = self.a, self.b
        ga = unbroadcast(g, a.shape) if self.next[0] is not None else None
        gb = None
        if self.next[1] is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = unbroadcast(-g * np.floor_divide(a, b), b.shape)
        return ga, gb

    def backward_graph(self, g):
        a, b = self.a, self.b
        ga = sum_to(g, a.shape) if self.next[0] is not None else None
        gb = None
        if self.next[1] is not None:
            with np.errstate(divide="ignore", invalid="ignore"):  # floor(a / b) is piecewise constant: a constant
                q = Tensor._make(np.floor_divide(a, b), None)
            gb = sum_to(-g * q, b.shape)
        return ga, gb


class NotDifferentiable(Function):
    """An op torch records but cannot differentiate (``x // y`` on floats, ``2 % x``): the backward
    raises torch's error instead of passing a silent zero."""

    saved = ()

    def forward(self, *arrays, fn, aten):
        self.op_name = aten
        return fn(*arrays)

    def backward(self, g):
        raise RuntimeError(f"derivative for aten::{self.op_name} is not implemented")

    backward_graph = backward  # the same error under create_graph=True


def floor_divide(a: Tensor, b) -> Tensor:
    """``a // b``: floor of the quotient, in the operands' promoted dtype (not differentiable: torch
    raises in backward)."""
    dtype = result_type(a, b)
    _not_for_bool("div_floor_cpu", dtype)
    _no_zero_divisor(b, dtype)
    a, b = operands("floor_divide", a, b, dtype)
    b = b if isinstance(b, Tensor) else Tensor._make(array_module(a.array).asarray(b, dtype=dtype), None)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _broadcast(NotDifferentiable, "floor_divide", a, b, fn=np.floor_divide, aten="floor_divide")


def rfloordiv(a: Tensor, b) -> Tensor:
    return floor_divide(_wrap(b, a), a)


def remainder(a: Tensor, b) -> Tensor:
    """``a % b`` with the sign of the divisor (Python's and torch's ``remainder``)."""
    dtype = result_type(a, b)
    _not_for_bool("remainder_cpu", dtype)
    _no_zero_divisor(b, dtype)
    a, b = operands("remainder", a, b, dtype)
    b = b if isinstance(b, Tensor) else Tensor._make(array_module(a.array).asarray(b, dtype=dtype), None)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _broadcast(Remainder, "remainder", a, b)


def rremainder(a: Tensor, b) -> Tensor:
    """``b % a`` for a number ``b``: torch records it but has no derivative for it."""
    dtype = result_type(a, b)
    _not_for_bool("remainder_cpu", dtype)
    _no_zero_divisor(a, dtype)
    a, c = operands("remainder", a, b, dtype)
    c = Tensor._make(array_module(a.array).asarray(c, dtype=dtype), None)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _broadcast(NotDifferentiable, "remainder", c, a, fn=np.mod, aten="remainder")
