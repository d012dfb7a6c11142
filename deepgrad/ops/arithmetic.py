"""Arithmetic with broadcasting and torch's type promotion: + - * / ** // %, and their scalar forms.

Every op's forward and backward stand side by side and work on raw arrays. Operands are first brought
to the dtype torch computes in (:mod:`.promotion`), by a differentiable cast, so a narrower input's
gradient comes back in its own dtype. NumPy ufuncs dispatch to CuPy for CuPy arrays, so one code path
serves both. Backward never writes into the incoming gradient: it may be shared with other inputs.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..autograd import OUT, Function
from ..backend import array_module
from ..tensor import Tensor
from .elementwise import Clone, cast, device_error, unbroadcast
from .promotion import result_type, scalar_in


class Add(Function):
    saved = ()

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, g):
        sa, sb = self.shapes
        return unbroadcast(g, sa), unbroadcast(g, sb)

    def backward_graph(self, g):
        sa, sb = self.shapes
        return (sum_to(g, sa) if self.next[0] is not None else None,
                sum_to(g, sb) if self.next[1] is not None else None)


class Sub(Function):
    saved = ()

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, g):
        sa, sb = self.shapes
        return unbroadcast(g, sa), (unbroadcast(-g, sb) if self.next[1] is not None else None)

    def backward_graph(self, g):
        sa, sb = self.shapes
        return (sum_to(g, sa) if self.next[0] is not None else None,
                sum_to(-g, sb) if self.next[1] is not None else None)


class Mul(Function):
    saved = ((1,), (0,))

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        a, b = self.a, self.b
        ga = unbroadcast(g * b, a.shape) if self.next[0] is not None else None
        gb = unbroadcast(g * a, b.shape) if self.next[1] is not None else None
        return ga, gb

    def backward_graph(self, g):
        ga = sum_to(g * self.saved_input(1), self.a.shape) if self.next[0] is not None else None
        gb = sum_to(g * self.saved_input(0), self.b.shape) if self.next[1] is not None else None
        return ga, gb


class Div(Function):
    saved = ((1,), (0, 1))

    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, g):
        a, b = self.a, self.b
        gb_ = g / b
        ga = unbroadcast(gb_, a.shape) if self.next[0] is not None else None
        gb = unbroadcast(-gb_ * a / b, b.shape) if self.next[1] is not None else None
        return ga, gb

    def backward_graph(self, g):
        b = self.saved_input(1)
        ga = sum_to(g / b, self.a.shape) if self.next[0] is not None else None
        gb = sum_to(-g * self.saved_input(0) / (b * b), self.b.shape) if self.next[1] is not None else None
        return ga, gb


class Pow(Function):
    saved = ((0, 1), (0, 1, OUT))

    def forward(self, a, b):
        self.a, self.b = a, b
        self.out = out = a**b
        return out

    def backward(self, g):
        a, b, out = self.a, self.b, self.out
        ga = gb = None
        xp = array_module(a)
        if self.next[0] is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                d = b * a ** (b - 1)
            # torch: d(a**b)/da is 0 where b == 0 (not 0 * inf at a == 0)
            d = xp.where(b == 0, 0, d).astype(out.dtype, copy=False)
            ga = unbroadcast(g * d, a.shape)
        if self.next[1] is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                d = out * xp.log(a)
            # torch: d(a**b)/db is 0 where a == 0 and b >= 0 (not 0 * -inf)
            d = xp.where((a == 0) & (b >= 0), 0, d).astype(out.dtype, copy=False)
            gb = unbroadcast(g * d, b.shape)
        return ga, gb

    def backward_graph(self, g):
        from .elementwise import where

        a, b = self.saved_input(0), self.saved_input(1)
        ga = gb = None
        if self.next[0] is not None:
            ga = sum_to(where(b == 0, 0.0, g * b * a ** (b - 1)), self.a.shape)
        if self.next[1] is not None:
            out = self.saved_output(self.out)
            gb = sum_to(where((a == 0) & (b >= 0), 0.0, g * out * a.log()), self.b.shape)
        return ga, gb


class AddScalar(Function):
    saved = ()

    def forward(self, a, c):
        return a + c

    def backward(self, g):
        return g

    def backward_graph(self, g):
        return g


class MulScalar(Function):
    saved = ()

    def forward(self, a, c):
        self.c = c
        return a * c

    def backward(self, g):
        return g * self.c

    def backward_graph(self, g):
        return g * self.c


class RSubScalar(Function):
    saved = ()

    def forward(self, a, c):
        return c - a

    def backward(self, g):
        return -g

    def backward_graph(self, g):
        return -g


class Reciprocal(Function):
    """``1 / a`` (torch computes ``c / a`` as ``reciprocal(a) * c``, and so does :func:`rdiv`)."""

    saved = ((OUT,),)

    def forward(self, a):
        with np.errstate(divide="ignore"):
            self.out = out = 1 / a
        return out

    def backward(self, g):
        out = self.out
        return -g * (out * out)

    def backward_graph(self, g):
        out = self.saved_output(self.out)
        return -g * (out * out)


class PowScalar(Function):
    saved = ((0,),)

    def forward(self, a, c):
        self.a, self.c = a, c
        if a.dtype.kind in "iu":
            with np.errstate(over="ignore"):  # integers wrap around, as in torch
                return a**c
        return a**c

    def backward(self, g):
        a, c = self.a, self.c
        if c == 0:
            return array_module(a).zeros_like(g)
        if c == 2:
            return g * 2 * a
        return g * c * a ** (c - 1)

    def backward_graph(self, g):
        c = self.c
        if c == 0:
            return g * 0.0
        return g * c * self.saved_input(0) ** (c - 1)


class RPowScalar(Function):
    saved = ((0, OUT),)

    def forward(self, a, c):
        if a.dtype.kind in "iu":
            with np.errstate(over="ignore"):  # integers wrap around, as in torch
                self.out = out = c**a
        else:
            self.out = out = c**a
        self.logc = math.log(c) if c > 0 else float("nan") if c < 0 else float("-inf")
        if c == 0:
            self.a = a
        return out

    def backward(self, g):
        if self.logc == float("-inf"):  # torch: d(0**a)/da is 0 where a >= 0 (not 0 * -inf)
            with np.errstate(invalid="ignore"):
                d = self.out * self.logc
            return g * array_module(g).where(self.a >= 0, 0, d).astype(g.dtype, copy=False)
        return g * self.out * self.logc

    def backward_graph(self, g):
        from .elementwise import where

        out = self.saved_output(self.out)
        if self.logc == float("-inf"):  # 0 ** a: torch's 0 where a >= 0
            return where(self.saved_input(0) >= 0, 0.0, g * out * self.logc)
        return g * out * self.logc


class DivScalar(Function):
    saved = ()

    def forward(self, a, c):
        self.c = c
        with np.errstate(divide="ignore", invalid="ignore"):
            return a / c

    def backward(self, g):
        with np.errstate(divide="ignore", invalid="ignore"):
            return g / self.c

    def backward_graph(self, g):
        return g / self.c


class RoundedQuotient(Function):
    """``a / b`` rounded toward -inf or 0: piecewise constant, so its gradient is zero (torch's)."""

    saved = ()

    def forward(self, a, b, mode):
        self.shapes = a.shape, b.shape
        xp = array_module(a)
        with np.errstate(divide="ignore", invalid="ignore"):
            q = a / b
        return (xp.floor(q) if mode == "floor" else xp.trunc(q)).astype(a.dtype, copy=False)

    def backward(self, g):
        xp = array_module(g)
        return tuple(xp.zeros(s, dtype=g.dtype) if n is not None else None for s, n in zip(self.shapes, self.next))

    def backward_graph(self, g):
        return tuple(sum_to(g * 0.0, s) if n is not None else None for s, n in zip(self.shapes, self.next))


def sum_to(g: Tensor, shape: tuple) -> Tensor:
    """:func:`unbroadcast` on Tensors (recorded): ``g`` summed back to ``shape``."""
    if tuple(g.shape) == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1)
    return (g.sum(axes) if axes else g).reshape(shape)


# ----------------------------------------------------------------------------- operands
def operands(name: str, a, b, dtype=None):
    """``a`` and ``b`` (a Tensor and a Tensor or number) in the dtype torch computes ``name`` in; a number
    stays a Python number (NumPy then computes in the tensor's dtype)."""
    if dtype is None:  # the common cases, decided without the general rule (a measured 5% of a small step)
        tb = type(b)
        if tb is float or tb is int:
            kind = a.array.dtype.kind
            if kind == "f" or (tb is int and kind == "i" and a.array.dtype.itemsize == 8):
                return a, b
        elif isinstance(b, Tensor) and a.array.dtype is b.array.dtype and type(a.array) is type(b.array):
            return a, b
    if not isinstance(a, Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(a).__name__}")
    if isinstance(b, Tensor):
        if type(a.array) is not type(b.array):
            raise device_error(name, a, b)
    elif not isinstance(b, (int, float, bool, complex, np.generic)):
        raise TypeError(f"unsupported operand type {type(b).__name__} for {name}")
    if dtype is None:
        dtype = result_type(a, b)
    if a.array.dtype != dtype:
        a = cast(a, dtype)
    if isinstance(b, Tensor):
        if b.array.dtype != dtype:
            b = cast(b, dtype)
    else:
        b = scalar_in(b, dtype)
    return a, b


def _broadcast(cls, name: str, a: Tensor, b: Tensor, **params) -> Tensor:
    try:
        return cls.apply(a, b, **params)
    except ValueError as e:
        if "broadcast" in str(e):  # RuntimeError, as torch raises for mismatched sizes
            raise RuntimeError(
                f"{name}: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be broadcast together"
            ) from None
        raise


def binary(cls, name: str, a: Tensor, b: Tensor) -> Tensor:
    """Apply a broadcasting binary op after device and dtype checks, naming it on error."""
    a, b = operands(name, a, b)
    return _broadcast(cls, name, a, b)


def _is_bool(x) -> bool:
    return isinstance(x, (bool, np.bool_)) or (isinstance(x, Tensor) and x.array.dtype == np.bool_)


def _no_bool_subtraction(a, b) -> None:
    if a.array.dtype.kind == "f" and (type(b) is float or type(b) is int or
                                      (isinstance(b, Tensor) and b.array.dtype.kind == "f")):
        return  # the common case, with no bool in it
    if _is_bool(a) and _is_bool(b):
        raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not supported. "
                           "Use the `^` or `logical_xor()` operator instead.")
    if _is_bool(a) or _is_bool(b):
        raise RuntimeError("Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying "
                           "to invert a mask, use the `~` or `logical_not()` operator instead.")


def _not_for_bool(op: str, dtype) -> None:
    if np.dtype(dtype) == np.bool_:
        raise NotImplementedError(f'"{op}" not implemented for \'Bool\'')


def _no_zero_divisor(b, dtype) -> None:
    """Integer division by zero is an error in torch (NumPy would warn and give 0)."""
    if np.dtype(dtype).kind in "iub":
        zero = (b == 0) if not isinstance(b, Tensor) else bool((b.array == 0).any())
        if zero:
            raise RuntimeError("ZeroDivisionError")


# ----------------------------------------------------------------------------- public API
def add(a: Tensor, b, alpha=1) -> Tensor:
    """``a + alpha * b`` with broadcasting."""
    if alpha != 1:
        b = mul(b, alpha) if isinstance(b, Tensor) else b * alpha
    if isinstance(b, Tensor):
        return binary(Add, "add", a, b)
    a, c = operands("add", a, b)
    return AddScalar.apply(a, c=c)


def sub(a: Tensor, b, alpha=1) -> Tensor:
    """``a - alpha * b`` with broadcasting (bool operands are refused, as in torch)."""
    _no_bool_subtraction(a, b)
    if alpha != 1:
        b = mul(b, alpha) if isinstance(b, Tensor) else b * alpha
    if isinstance(b, Tensor):
        return binary(Sub, "sub", a, b)
    a, c = operands("sub", a, b)
    with np.errstate(over="ignore"):  # a wrapped integer operand negates with wrap-around, as in torch
        c = scalar_in(-c, a.array.dtype) if not isinstance(c, np.generic) else -c
    return AddScalar.apply(a, c=c)


def rsub(a: Tensor, b) -> Tensor:
    """``b - a`` (``b`` a number or a Tensor)."""
    _no_bool_subtraction(a, b)
    if isinstance(b, Tensor):
        return binary(Sub, "sub", b, a)
    a, c = operands("rsub", a, b)
    return RSubScalar.apply(a, c=c)


def mul(a: Tensor, b) -> Tensor:
    """Elementwise product with broadcasting."""
    if isinstance(b, Tensor):
        return binary(Mul, "mul", a, b)
    a, c = operands("mul", a, b)
    return MulScalar.apply(a, c=c)


def _true_division_dtype(a, b):
    dtype = result_type(a, b)
    return dtype if dtype.kind in "fc" else np.dtype(backend.get_default_dtype())


def div(a: Tensor, b, rounding_mode: str | None = None) -> Tensor:
    """``a / b`` with broadcasting: true division (integers divide into the default float dtype), or
    rounded with ``rounding_mode="floor"`` / ``"trunc"`` (in the operands' dtype, zero gradient)."""
    if rounding_mode is not None:
        if rounding_mode not in ("floor", "trunc"):
            raise ValueError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found "
                             f"'{rounding_mode}'")
        dtype = result_type(a, b)
        _not_for_bool(f"div_{rounding_mode}_cpu", dtype)
        _no_zero_divisor(b, dtype)
        a, b = operands("div", a, b, dtype)
        b = b if isinstance(b, Tensor) else Tensor._make(array_module(a.array).asarray(b, dtype=dtype), None)
        return _broadcast(RoundedQuotient, "div", a, b, mode=rounding_mode)
    a, b = operands("div", a, b, _true_division_dtype(a, b))
    if isinstance(b, Tensor):
        return _broadcast(Div, "div", a, b)
    return DivScalar.apply(a, c=b)


def rdiv(a: Tensor, b) -> Tensor:
    """``b / a`` (``b`` a number): torch's ``reciprocal(a) * b``."""
    if isinstance(b, Tensor):
        return div(b, a)
    a, c = operands("div", a, b, _true_division_dtype(a, b))
    r = Reciprocal.apply(a)
    return r if c == 1 else MulScalar.apply(r, c=c)


def _wrap(value, like: Tensor) -> Tensor:
    """A number as a 0-d tensor of the dtype torch gives it (it then promotes like a Python number would not:
    only used where torch itself treats the number as the left operand)."""
    dtype = result_type(like, value)
    return Tensor._make(array_module(like.array).asarray(scalar_in(value, dtype), dtype=dtype), None)


def pow(a: Tensor, b) -> Tensor:
    """``a ** b`` elementwise; ``b`` a tensor or a number."""
    if (type(b) is int or type(b) is float) and a.array.dtype.kind == "f":  # the common case
        return Clone.apply(a) if b == 1 else PowScalar.apply(a, c=b)
    dtype = result_type(a, b)
    if dtype == np.bool_ and isinstance(b, (bool, np.bool_)):  # torch: x ** True is x, x ** False is True
        return Clone.apply(a) if b else Tensor._make(array_module(a.array).ones(a.shape, dtype=bool), None)
    _not_for_bool("pow", dtype)
    if dtype.kind in "iu":
        neg = bool((b.array < 0).any()) if isinstance(b, Tensor) else b < 0
        if neg:
            raise RuntimeError("Integers to negative integer powers are not allowed.")
    if isinstance(b, Tensor):
        return binary(Pow, "pow", a, b)
    if dtype.kind in "iu" and not isinstance(b, bool) and not np.iinfo(dtype).min <= b <= np.iinfo(dtype).max:
        raise RuntimeError(f"value cannot be converted to type {dtype.name}_t without overflow")
    a, c = operands("pow", a, b, dtype)
    if c == 1:
        return Clone.apply(a)
    return PowScalar.apply(a, c=c)


def rpow(a: Tensor, b) -> Tensor:
    """``b ** a`` for a number ``b``."""
    if isinstance(b, Tensor):
        return pow(b, a)
    dtype = result_type(a, b)
    _not_for_bool("pow", dtype)
    if dtype.kind in "iu" and bool((a.array < 0).any()):
        raise RuntimeError("Integers to negative integer powers are not allowed.")
    a, c = operands("pow", a, b, dtype)
    return RPowScalar.apply(a, c=c)
