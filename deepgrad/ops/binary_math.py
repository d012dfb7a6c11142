"""Elementwise maths of two tensors beyond + - * / **: atan2, hypot, logaddexp, xlogy, copysign, fmod,
lerp, fmax/fmin, and the comparisons with a tolerance (isclose, allclose, equal).

Operands are broadcast and brought to torch's promoted dtype first (:mod:`.promotion`); the ops torch
only defines on floats compute integer operands in the default float dtype, as torch does. Each op's
backward sits beside its forward and sums each gradient back to its operand's shape.

>>> import deepgrad as dg
>>> dg.copysign(dg.tensor([1.0, 2.0]), -1.0)
tensor([-1., -2.])
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import OUT, Function
from ..backend import array_module
from ..tensor import Tensor
from .arithmetic import binary, operands
from .elementwise import cast, device_error, unbroadcast
from .promotion import result_type, torch_name

__all__ = [  # the public ops (deepgrad.functional exports them)
    "atan2", "arctan2", "hypot", "logaddexp", "logaddexp2", "xlogy", "copysign", "fmod", "fmax", "fmin", "lerp",
    "float_power", "ldexp", "gcd", "lcm", "isclose", "allclose", "equal", "clamp_min", "clamp_max", "addcmul",
    "addcdiv",
]


def _grads(fn, ga, gb):
    """The two input gradients, summed back over broadcast dims; None where an input needs none."""
    a_shape, b_shape = fn.shapes
    return (unbroadcast(ga(), a_shape).astype(fn.dtype, copy=False) if fn.next[0] is not None else None,
            unbroadcast(gb(), b_shape).astype(fn.dtype, copy=False) if fn.next[1] is not None else None)


class BinaryMath(Function):
    """Keeps both operands (torch saves them) and their shapes for the gradients."""

    saved = ((0, 1), (0, 1))

    def keep(self, a, b):
        self.a, self.b, self.shapes, self.dtype = a, b, (a.shape, b.shape), np.result_type(a, b)


class Atan2(BinaryMath):
    def forward(self, a, b):
        self.keep(a, b)
        return np.arctan2(a, b)

    def backward(self, g):
        a, b = self.a, self.b
        denom = a * a + b * b
        with np.errstate(all="ignore"):  # torch: 0 where the denominator is 0 (the origin), not inf * 0
            recip = array_module(g).where(denom == 0, 0, 1 / denom).astype(denom.dtype, copy=False)
        with np.errstate(all="ignore"):
            return _grads(self, lambda: g * b * recip, lambda: g * -a * recip)


class Hypot(BinaryMath):
    saved = ((0, OUT), (1, OUT))

    def forward(self, a, b):
        self.keep(a, b)
        self.out = out = np.hypot(a, b)
        return out

    def backward(self, g):
        with np.errstate(all="ignore"):
            d = g / self.out
            return _grads(self, lambda: d * self.a, lambda: d * self.b)


class LogAddExp(BinaryMath):
    """log(e^a + e^b) (base 2 with ``base2``); each side's gradient is its softmax weight."""

    def forward(self, a, b, base2=False):
        self.keep(a, b)
        self.base2 = base2
        return np.logaddexp2(a, b) if base2 else np.logaddexp(a, b)

    def backward(self, g):
        a, b = self.a, self.b
        power = np.exp2 if self.base2 else np.exp
        with np.errstate(all="ignore"):
            return _grads(self, lambda: g / (1 + power(b - a)), lambda: g / (1 + power(a - b)))


class Xlogy(BinaryMath):
    """x * log(y), 0 where x == 0 (unless y is nan). torch's gradients: x gets xlogy(g, y), masked to 0 where
    x == 0 and y <= 0; y gets g * x / y."""

    def forward(self, x, y):
        self.keep(x, y)
        xp = array_module(x)
        with np.errstate(all="ignore"):
            out = x * np.log(y)
        return xp.where((x == 0) & ~xp.isnan(y), 0, out).astype(self.dtype, copy=False)

    def backward(self, g):
        x, y = self.a, self.b
        xp = array_module(g)
        with np.errstate(all="ignore"):
            gx = lambda: xp.where(((g == 0) & ~xp.isnan(y)) | ((x == 0) & (y <= 0)), 0, g * np.log(y))  # noqa: E731
            return _grads(self, gx, lambda: g * x / y)


class Copysign(BinaryMath):
    """|a| with the sign of b; a's gradient is out / a (0 where a is 0), b's zero (torch)."""

    saved = ((0, OUT), ())

    def forward(self, a, b):
        self.keep(a, b)
        self.b = None  # b's values are never needed
        self.out = out = np.copysign(a, b)
        return out

    def backward(self, g):
        a, out, xp = self.a, self.out, array_module(g)
        with np.errstate(all="ignore"):
            return _grads(self, lambda: g * xp.where(a == 0, 0, out / a),
                          lambda: xp.zeros(xp.broadcast_shapes(*self.shapes), dtype=g.dtype))


class Fmod(BinaryMath):
    """C's fmod: the remainder with the sign of the dividend; gradients 1 and -trunc(a / b)."""

    saved = ((), (0, 1))

    def forward(self, a, b):
        self.keep(a, b)
        with np.errstate(all="ignore"):
            return np.fmod(a, b)

    def backward(self, g):
        with np.errstate(all="ignore"):
            return _grads(self, lambda: g, lambda: -g * np.trunc(self.a / self.b))


class FMaxMin(BinaryMath):
    """fmax / fmin: the larger (smaller) value, ignoring a NaN; ties give the whole gradient to ``a``."""

    def forward(self, a, b, largest):
        self.keep(a, b)
        self.largest = largest
        return np.fmax(a, b) if largest else np.fmin(a, b)

    def backward(self, g):
        a, b, xp = self.a, self.b, array_module(g)
        a_wins = ((a >= b) if self.largest else (a <= b)) | xp.isnan(b)
        zero = xp.zeros((), dtype=g.dtype)
        return _grads(self, lambda: xp.where(a_wins, g, zero), lambda: xp.where(a_wins, zero, g))


class Lerp(Function):
    """start + weight * (end - start), computed as torch does (from the nearer end for |weight| >= 0.5)."""

    saved = staticmethod(lambda params: ((2,), (2,), (0, 1)) if params["scalar"] is None else ((), ()))

    def forward(self, start, end, weight=None, scalar=None):
        w = scalar if weight is None else weight
        self.shapes = [start.shape, end.shape] + ([weight.shape] if weight is not None else [])
        self.w, self.diff_from = w, (start, end) if weight is not None else None
        diff = end - start
        xp = array_module(start)
        out = xp.where(abs(xp.asarray(w)) < 0.5, start + w * diff, end - diff * (1 - w))
        return out.astype(start.dtype, copy=False)

    def backward(self, g):
        w, shapes = self.w, self.shapes
        grads = [unbroadcast(g * (1 - w), shapes[0]) if self.next[0] is not None else None,
                 unbroadcast(g * w, shapes[1]) if self.next[1] is not None else None]
        if len(shapes) == 3:
            start, end = self.diff_from
            grads.append(unbroadcast(g * (end - start), shapes[2]) if self.next[2] is not None else None)
        return tuple(x if x is None else x.astype(g.dtype, copy=False) for x in grads)


# ----------------------------------------------------------------------------- public API
def _float_operands(name: str, a, b, integers: str = "float", other_tensor: bool = True):
    """``a``, ``b`` as tensors in torch's dtype for ``name``: ``integers="float"`` computes integer operands
    in the default float dtype, ``"refuse"`` raises torch's NotImplementedError, ``"keep"`` keeps them."""
    if not isinstance(a, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not {type(a).__name__}")
    if other_tensor and not isinstance(b, Tensor):
        raise TypeError(f"{name}(): argument 'other' (position 2) must be Tensor, not {type(b).__name__}")
    dtype = result_type(a, b)
    if dtype.kind in "biu":
        if integers == "refuse":
            raise NotImplementedError(f'"{name}_cpu" not implemented for \'{torch_name(dtype)}\'')
        if integers == "float":
            dtype = np.dtype(backend.get_default_dtype())
    a, b = operands(name, a, b, dtype)
    if not isinstance(b, Tensor):
        b = Tensor._make(array_module(a.array).asarray(b, dtype=dtype), None)
    return a, b


def atan2(input: Tensor, other: Tensor) -> Tensor:
    """The angle of the point (other, input) in (-pi, pi]: atan(input / other) with the quadrant."""
    return binary(Atan2, "atan2", *_float_operands("atan2", input, other))


arctan2 = atan2


def hypot(input: Tensor, other: Tensor) -> Tensor:
    """sqrt(input^2 + other^2) without overflow (floating tensors only, as torch)."""
    return binary(Hypot, "hypot", *_float_operands("hypot", input, other, "refuse"))


def logaddexp(input: Tensor, other: Tensor) -> Tensor:
    """log(exp(input) + exp(other)), computed stably."""
    a, b = _float_operands("logaddexp", input, other, "refuse")
    return _apply(LogAddExp, "logaddexp", a, b, base2=False)


def logaddexp2(input: Tensor, other: Tensor) -> Tensor:
    """log2(2^input + 2^other), computed stably."""
    a, b = _float_operands("logaddexp2", input, other, "refuse")
    return _apply(LogAddExp, "logaddexp2", a, b, base2=True)


def xlogy(input, other) -> Tensor:
    """input * log(other), 0 where input is 0 (either may be a number)."""
    if not isinstance(input, Tensor):
        if not isinstance(other, Tensor):
            raise TypeError("xlogy(): expected at least one Tensor")
        dtype = result_type(input, other)
        dtype = dtype if dtype.kind == "f" else np.dtype(backend.get_default_dtype())
        input = Tensor._make(array_module(other.array).asarray(input, dtype=dtype), None)
    return binary(Xlogy, "xlogy", *_float_operands("xlogy", input, other, other_tensor=False))


def copysign(input: Tensor, other) -> Tensor:
    """|input| with the sign of ``other`` (a tensor or a number; -0.0 counts as negative)."""
    return binary(Copysign, "copysign", *_float_operands("copysign", input, other, other_tensor=False))


def fmod(input: Tensor, other) -> Tensor:
    """The remainder of input / other with the sign of ``input`` (C's fmod; ``remainder`` takes the divisor's)."""
    if isinstance(input, Tensor) and result_type(input, other) == np.bool_:
        raise NotImplementedError('"fmod_cpu" not implemented for \'Bool\'')
    a, b = _float_operands("fmod", input, other, "keep", other_tensor=False)
    if a.array.dtype.kind in "iu" and bool((b.array == 0).any()):
        raise RuntimeError("ZeroDivisionError")
    return binary(Fmod, "fmod", a, b)


def fmax(input: Tensor, other: Tensor) -> Tensor:
    """Elementwise maximum that ignores a NaN (NaN only where both are)."""
    return _apply(FMaxMin, "fmax", *_float_operands("fmax", input, other, "keep"), largest=True)


def fmin(input: Tensor, other: Tensor) -> Tensor:
    """Elementwise minimum that ignores a NaN (NaN only where both are)."""
    return _apply(FMaxMin, "fmin", *_float_operands("fmin", input, other, "keep"), largest=False)


def _apply(cls, name, a, b, **params):
    try:
        return cls.apply(a, b, **params)
    except ValueError as e:
        raise RuntimeError(f"{name}: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be broadcast "
                           f"together") from e


def lerp(input: Tensor, end: Tensor, weight) -> Tensor:
    """``input + weight * (end - input)``; ``weight`` a number or a tensor (all of one float dtype)."""
    for what, t in (("end", end), ("weight", weight)):
        if isinstance(t, Tensor) and t.array.dtype != input.array.dtype:
            raise RuntimeError(f"expected dtype {input.dtype} for `{what}` but got dtype {t.dtype}")
        if isinstance(t, Tensor) and type(t.array) is not type(input.array):
            raise device_error("lerp", input, t)
    if input.array.dtype.kind != "f":
        raise NotImplementedError(f'"lerp_kernel_scalar" not implemented for \'{torch_name(input.dtype)}\'')
    try:
        if isinstance(weight, Tensor):
            return Lerp.apply(input, end, weight, scalar=None)
        return Lerp.apply(input, end, scalar=float(weight))
    except ValueError as e:
        raise RuntimeError(f"lerp: shapes {tuple(input.shape)} and {tuple(end.shape)} cannot be broadcast "
                           f"together") from e


def float_power(input, exponent) -> Tensor:
    """``input ** exponent`` computed in float64, as torch's float_power."""
    from .arithmetic import pow, rpow

    if not isinstance(input, Tensor):
        return rpow(cast(exponent, np.float64), input)
    return pow(cast(input, np.float64), cast(exponent, np.float64) if isinstance(exponent, Tensor) else exponent)


def ldexp(input: Tensor, other: Tensor) -> Tensor:
    """input * 2 ** other."""
    from .arithmetic import mul, rpow

    return mul(input, rpow(cast(other, backend.get_default_dtype()) if other.array.dtype.kind != "f" else other, 2))


def _integer_pair(name: str, fn):
    def op(input: Tensor, other: Tensor) -> Tensor:
        x, y = _float_operands(name, input, other, "keep")
        if x.array.dtype.kind not in "iu":
            raise NotImplementedError(f'"{name}_cpu" not implemented for \'{torch_name(x.dtype)}\'')
        return Tensor._make(fn(x.array, y.array), None)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"Elementwise {name} of integer tensors."
    return op


gcd = _integer_pair("gcd", np.gcd)
lcm = _integer_pair("lcm", np.lcm)


def _same_dtype(name: str, a: Tensor, b: Tensor) -> None:
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError(f"{name}(): arguments must be Tensors")
    if a.array.dtype != b.array.dtype:
        raise RuntimeError(f"{torch_name(a.dtype)} did not match {torch_name(b.dtype)}")
    if type(a.array) is not type(b.array):
        raise device_error(name, a, b)


def isclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> Tensor:
    """Where ``|input - other| <= atol + rtol * |other|`` (or equal, e.g. both inf); a bool tensor.

    >>> isclose(tensor([1.0, 2.0]), tensor([1.0 + 1e-9, 2.1]))
    tensor([ True, False])
    """
    _same_dtype("isclose", input, other)
    if rtol < 0 or atol < 0:
        raise RuntimeError(f"isclose: rtol and atol must be non-negative, got rtol={rtol} and atol={atol}")
    a, b = input.array, other.array
    xp = array_module(a)
    try:
        equal = a == b
    except ValueError:
        raise RuntimeError(f"isclose: shapes {tuple(input.shape)} and {tuple(other.shape)} cannot be broadcast "
                           f"together") from None
    if a.dtype.kind != "f":
        if a.dtype == bool:
            return Tensor._make(equal, None)
        a, b = a.astype(np.float64), b.astype(np.float64)  # |a - b| of integers must not wrap around
    with np.errstate(all="ignore"):
        close = equal | (xp.isfinite(a - b) & (abs(a - b) <= atol + rtol * abs(b)))
    if equal_nan:
        close |= xp.isnan(a) & xp.isnan(b)
    return Tensor._make(close, None)


def allclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    """True when every element is :func:`isclose` (a Python bool)."""
    return bool(isclose(input, other, rtol, atol, equal_nan).array.all())


def equal(input: Tensor, other: Tensor) -> bool:
    """True when both have the same shape and the same values (a Python bool)."""
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        raise TypeError("equal(): arguments must be Tensors")
    if input.shape != other.shape:
        return False
    dtype = result_type(input, other)
    return bool((input.array.astype(dtype, copy=False) == other.array.astype(dtype, copy=False)).all())


def _clamp_bound(name: str, which: str):
    from .elementwise import clamp

    def op(input: Tensor, bound) -> Tensor:
        return clamp(input, **{which: bound}) if which == "min" else clamp(input, max=bound)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"``clamp(input, {which}=bound)``."
    return op


clamp_min = _clamp_bound("clamp_min", "min")
clamp_max = _clamp_bound("clamp_max", "max")


def addcmul(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value=1) -> Tensor:
    """``input + value * tensor1 * tensor2`` (the optimizers' update form)."""
    from .arithmetic import add, mul

    return add(input, mul(tensor1, tensor2), alpha=value)


def addcdiv(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value=1) -> Tensor:
    """``input + value * tensor1 / tensor2``."""
    from .arithmetic import add, div

    if tensor1.array.dtype.kind in "biu" and tensor2.array.dtype.kind in "biu":
        raise RuntimeError("Integer division with addcdiv is no longer supported, and in a future release addcdiv "
                           "will perform a true division of tensor1 and tensor2.")
    return add(input, div(tensor1, tensor2), alpha=value)

