"""Elementwise ops: arithmetic with broadcasting, unary maths, activations, casts.

Every op's forward and backward stand side by side and work on raw arrays. NumPy ufuncs
dispatch to CuPy for CuPy arrays (``__array_ufunc__``), so one code path serves both.
Backward never writes into the incoming gradient: it may be shared with other inputs.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..autograd import Function
from ..backend import array_module
from ..tensor import Tensor


def unbroadcast(grad, shape: tuple):
    """Sum ``grad`` over the axes that broadcasting added or stretched, back to ``shape``."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and grad.shape[i + lead] != 1
    )
    if axes:
        grad = grad.sum(axis=axes)
    return grad.reshape(shape)


# ----------------------------------------------------------------------------- operands
def _device_error(name: str, a: Tensor, b: Tensor) -> RuntimeError:
    return RuntimeError(
        f"{name}: expected all tensors on the same device, got {a.device} and {b.device}; "
        f"move one with .to(device)"
    )


def promote(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """torch's type promotion where it differs from NumPy's.

    A float tensor wins over an integer/bool one (NumPy would go to float64), and a tensor
    with dimensions wins over a 0-d tensor of the same category (bool < integer < float).
    """
    da, db = a.data.dtype, b.data.dtype
    if da == db:
        return a, b
    fa, fb = da.kind == "f", db.kind == "f"
    if fa and not fb:
        return a, cast(b, da)
    if fb and not fa:
        return cast(a, db), b
    if (a.data.ndim == 0) != (b.data.ndim == 0) and fa == fb and (da.kind == "b") == (db.kind == "b"):
        return (cast(a, db), b) if a.data.ndim == 0 else (a, cast(b, da))
    if fa and fb:  # an explicit cast, so the narrower input's gradient comes back in its own dtype
        wide = np.promote_types(da, db)
        return cast(a, wide), cast(b, wide)
    return a, b


def binary(cls, name: str, a: Tensor, b: Tensor) -> Tensor:
    """Apply a broadcasting binary op after device and dtype checks, naming it on error."""
    if type(a.data) is not type(b.data):
        raise _device_error(name, a, b)
    if a.data.dtype is not b.data.dtype:
        a, b = promote(a, b)
    try:
        return cls.apply(a, b)
    except ValueError as e:
        if "broadcast" in str(e):  # RuntimeError, as torch raises for mismatched sizes
            raise RuntimeError(
                f"{name}: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be broadcast together"
            ) from None
        raise


def as_tensor_like(value, like: Tensor) -> Tensor:
    """Wrap a Python/NumPy scalar or array as a constant on ``like``'s device and dtype."""
    if isinstance(value, Tensor):
        return value
    xp = array_module(like.data)
    dtype = like.data.dtype
    if dtype.kind != "f" and isinstance(value, float):
        dtype = backend.get_default_dtype()
    return Tensor._make(xp.asarray(value, dtype=dtype), None)


def _scalar_operand(a: Tensor, c):
    """Prepare ``a op c`` for a Python scalar ``c``: NumPy scalars become Python numbers and
    an integer tensor meets a float scalar in the default float dtype (torch's rule)."""
    if isinstance(c, np.generic):
        c = c.item()
    elif not isinstance(c, (int, float, bool)):
        raise TypeError(f"unsupported operand type {type(c).__name__} for a Tensor op")
    if isinstance(c, float) and a.data.dtype.kind != "f":
        a = cast(a, backend.get_default_dtype())
    return a, c


# ----------------------------------------------------------------------------- arithmetic
class Add(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, g):
        sa, sb = self.shapes
        return unbroadcast(g, sa), unbroadcast(g, sb)


class Sub(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, g):
        sa, sb = self.shapes
        return unbroadcast(g, sa), (unbroadcast(-g, sb) if self.next[1] is not None else None)


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        a, b = self.a, self.b
        ga = unbroadcast(g * b, a.shape) if self.next[0] is not None else None
        gb = unbroadcast(g * a, b.shape) if self.next[1] is not None else None
        return ga, gb


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, g):
        a, b = self.a, self.b
        gb_ = g / b
        ga = unbroadcast(gb_, a.shape) if self.next[0] is not None else None
        gb = unbroadcast(-gb_ * a / b, b.shape) if self.next[1] is not None else None
        return ga, gb


class Pow(Function):
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


class AddScalar(Function):
    def forward(self, a, c):
        return a + c

    def backward(self, g):
        return g


class MulScalar(Function):
    def forward(self, a, c):
        self.c = c
        return a * c

    def backward(self, g):
        return g * self.c


class RSubScalar(Function):
    def forward(self, a, c):
        return c - a

    def backward(self, g):
        return -g


class RDivScalar(Function):
    def forward(self, a, c):
        self.a, self.c = a, c
        return c / a

    def backward(self, g):
        a = self.a
        return g * (-self.c) / (a * a)


class PowScalar(Function):
    def forward(self, a, c):
        self.a, self.c = a, c
        return a**c

    def backward(self, g):
        a, c = self.a, self.c
        if c == 0:
            return array_module(a).zeros_like(g)
        if c == 2:
            return g * 2 * a
        return g * c * a ** (c - 1)


class RPowScalar(Function):
    def forward(self, a, c):
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


def add(a: Tensor, b, alpha=1) -> Tensor:
    """``a + alpha * b`` with broadcasting."""
    if alpha != 1:
        b = mul(b, alpha) if isinstance(b, Tensor) else b * alpha
    if isinstance(b, Tensor):
        return binary(Add, "add", a, b)
    a, c = _scalar_operand(a, b)
    return AddScalar.apply(a, c=c)


def sub(a: Tensor, b, alpha=1) -> Tensor:
    """``a - alpha * b`` with broadcasting."""
    if alpha != 1:
        b = mul(b, alpha) if isinstance(b, Tensor) else b * alpha
    if isinstance(b, Tensor):
        return binary(Sub, "sub", a, b)
    a, c = _scalar_operand(a, b)
    return AddScalar.apply(a, c=-c)


def rsub(a: Tensor, b) -> Tensor:
    if isinstance(b, Tensor):
        return binary(Sub, "sub", b, a)
    a, c = _scalar_operand(a, b)
    return RSubScalar.apply(a, c=c)


def mul(a: Tensor, b) -> Tensor:
    """Elementwise product with broadcasting."""
    if isinstance(b, Tensor):
        return binary(Mul, "mul", a, b)
    a, c = _scalar_operand(a, b)
    return MulScalar.apply(a, c=c)


def div(a: Tensor, b, rounding_mode: str | None = None) -> Tensor:
    """True division with broadcasting (integers divide into the default float dtype)."""
    if rounding_mode is not None:  # a rounded quotient is piecewise constant: no gradient
        if rounding_mode not in ("floor", "trunc"):
            raise ValueError(f"div: rounding_mode must be None, 'floor' or 'trunc', got {rounding_mode!r}")
        other = b.data if isinstance(b, Tensor) else b
        xp = array_module(a.data)
        q = a.data / other
        q = xp.floor(q) if rounding_mode == "floor" else xp.trunc(q)
        dtype = np.result_type(a.data, other) if isinstance(b, Tensor) else a.data.dtype
        return Tensor._make(q.astype(dtype), None)
    if isinstance(b, Tensor):
        if a.data.dtype.kind != "f" and b.data.dtype.kind != "f":  # int / int is a float quotient
            a = cast(a, backend.get_default_dtype())
        return binary(Div, "div", a, b)
    if a.data.dtype.kind != "f":
        a = cast(a, backend.get_default_dtype())
    a, c = _scalar_operand(a, b)
    return MulScalar.apply(a, c=1.0 / c) if c not in (0, 0.0) else Div.apply(a, as_tensor_like(c, a))


def rdiv(a: Tensor, b) -> Tensor:
    if isinstance(b, Tensor):
        return div(b, a)
    if a.data.dtype.kind != "f":
        a = cast(a, backend.get_default_dtype())
    a, c = _scalar_operand(a, b)
    return RDivScalar.apply(a, c=c)


def pow(a: Tensor, b) -> Tensor:
    """``a ** b`` elementwise; ``b`` a tensor or a number."""
    if isinstance(b, Tensor):
        return binary(Pow, "pow", a, b)
    a, c = _scalar_operand(a, b)
    if c == 1:
        return Clone.apply(a)
    return PowScalar.apply(a, c=c)


def rpow(a: Tensor, b) -> Tensor:
    if isinstance(b, Tensor):
        return pow(b, a)
    a, c = _scalar_operand(a, b)
    return RPowScalar.apply(a, c=c)


# ----------------------------------------------------------------------------- unary maths
class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, g):
        return -g


class Abs(Function):
    def forward(self, x):
        self.x = x
        return abs(x)

    def backward(self, g):
        return g * array_module(self.x).sign(self.x)


class Exp(Function):
    def forward(self, x):
        self.out = out = np.exp(x)
        return out

    def backward(self, g):
        return g * self.out


class Log(Function):
    def forward(self, x):
        self.x = x
        return np.log(x)

    def backward(self, g):
        return g / self.x


class Log1p(Function):
    def forward(self, x):
        self.x = x
        return np.log1p(x)

    def backward(self, g):
        return g / (1 + self.x)


class Sqrt(Function):
    def forward(self, x):
        self.out = out = np.sqrt(x)
        return out

    def backward(self, g):
        return g / (2 * self.out)


class Sin(Function):
    def forward(self, x):
        self.x = x
        return np.sin(x)

    def backward(self, g):
        return g * np.cos(self.x)


class Cos(Function):
    def forward(self, x):
        self.x = x
        return np.cos(x)

    def backward(self, g):
        return -g * np.sin(self.x)


class Tanh(Function):
    def forward(self, x):
        self.out = out = np.tanh(x)
        return out

    def backward(self, g):
        out = self.out
        return g * (1 - out * out)


# ----------------------------------------------------------------------------- selection
class Maximum(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return np.maximum(a, b)

    def backward(self, g):
        return _select_grads(self, g, self.a > self.b)


class Minimum(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return np.minimum(a, b)

    def backward(self, g):
        return _select_grads(self, g, self.a < self.b)


def _select_grads(fn, g, a_wins):
    """Gradients of max/min of two tensors: the winner takes g, ties split it (as torch)."""
    a, b = fn.a, fn.b
    w = array_module(g).where(a == b, g.dtype.type(0.5), a_wins.astype(g.dtype))  # keep g's dtype
    ga = unbroadcast(g * w, a.shape) if fn.next[0] is not None else None
    gb = unbroadcast(g * (1 - w), b.shape) if fn.next[1] is not None else None
    return ga, gb


class Clamp(Function):
    def forward(self, x, lo, hi):
        xp = array_module(x)
        out = x
        keep = None
        if lo is not None:
            keep = x >= lo
            out = xp.maximum(out, xp.asarray(lo, dtype=x.dtype))
        if hi is not None:
            below = x <= hi
            keep = below if keep is None else keep & below
            out = xp.minimum(out, xp.asarray(hi, dtype=x.dtype))
        self.keep = keep
        return out if out is not x else x.copy()

    def backward(self, g):
        return g if self.keep is None else g * self.keep


class ClampTensor(Function):
    """clamp with tensor bounds; ``which`` names the bounds given after ``x`` ("lo", "hi", "lohi").

    torch's gradients: x gets g where lo <= x <= hi; a bound gets g where it binds (lo where
    x < lo < hi, hi where x > hi or hi < lo).
    """

    def forward(self, x, *bounds, which):
        xp = array_module(x)
        lo = bounds[0] if which.startswith("lo") else None
        hi = bounds[-1] if which.endswith("hi") else None
        self.shapes = [x.shape] + [b.shape for b in bounds]
        self.masks = masks = []  # where each bound receives the gradient, in input order
        out, keep = x, True
        if lo is not None:
            out, keep = xp.maximum(out, lo), x >= lo
            masks.append(x < lo if hi is None else (x < lo) & (lo < hi))
        if hi is not None:
            out, keep = xp.minimum(out, hi), keep & (x <= hi)
            masks.append(x > hi if lo is None else (x > hi) | (hi < lo))
        self.keep = keep
        return out

    def backward(self, g):
        xp = array_module(g)
        zero = xp.zeros((), dtype=g.dtype)
        grads = []
        for i, mask in enumerate([self.keep] + self.masks):
            grads.append(unbroadcast(xp.where(mask, g, zero), self.shapes[i]) if self.next[i] is not None else None)
        return tuple(grads)


class Where(Function):
    def forward(self, cond, a, b):
        self.cond, self.shapes = cond, (a.shape, b.shape)
        return array_module(a).where(cond, a, b)

    def backward(self, g):
        xp = array_module(g)
        cond, (sa, sb) = self.cond, self.shapes
        zero = xp.zeros((), dtype=g.dtype)
        ga = unbroadcast(xp.where(cond, g, zero), sa) if self.next[1] is not None else None
        gb = unbroadcast(xp.where(cond, zero, g), sb) if self.next[2] is not None else None
        return None, ga, gb


def clamp(x: Tensor, min=None, max=None) -> Tensor:
    """Limit values to [min, max]; the gradient passes where min <= x <= max."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        bounds = [as_tensor_like(v, x) for v in (min, max) if v is not None]
        which = ("lo" if min is not None else "") + ("hi" if max is not None else "")
        for b in bounds:
            if type(b.data) is not type(x.data):
                raise _device_error("clamp", x, b)
            if b.data.dtype != x.data.dtype:
                x, _ = promote(x, b)
        bounds = [cast(b, x.data.dtype) for b in bounds]
        try:
            return ClampTensor.apply(x, *bounds, which=which)
        except ValueError as e:
            shapes = ", ".join(str(tuple(t.shape)) for t in (x, *bounds))
            raise RuntimeError(f"clamp: shapes {shapes} cannot be broadcast together") from e
    if x.data.dtype.kind != "f" and (isinstance(min, float) or isinstance(max, float)):
        x = cast(x, backend.get_default_dtype())  # torch: an integer tensor clamped to a float bound is float
    return Clamp.apply(x, lo=min, hi=max)


def where(condition: Tensor, input, other) -> Tensor:
    """Pick ``input`` where ``condition`` holds, else ``other`` (broadcasting all three)."""
    like = input if isinstance(input, Tensor) else other
    if not isinstance(like, Tensor):
        raise TypeError("where: at least one of input and other must be a Tensor")
    a, b = as_tensor_like(input, like), as_tensor_like(other, like)
    if a.data.dtype != b.data.dtype:
        a, b = promote(a, b)
    cond = condition if isinstance(condition, Tensor) else as_tensor_like(condition, like)
    if cond.data.dtype != np.bool_:
        cond = Tensor._make(cond.data.astype(bool), None)
    try:
        return Where.apply(cond, a, b)
    except ValueError as e:
        raise ValueError(
            f"where: condition {tuple(cond.shape)}, input {tuple(a.shape)} and other "
            f"{tuple(b.shape)} cannot be broadcast together"
        ) from e


# ----------------------------------------------------------------------------- copies and casts
class Clone(Function):
    def forward(self, x):
        return x.copy()

    def backward(self, g):
        return g


class Cast(Function):
    def forward(self, x, dtype):
        self.src = x.dtype
        return x.astype(dtype)

    def backward(self, g):
        return g.astype(self.src, copy=False)


class ToDevice(Function):
    def forward(self, x, device):
        self.src = backend.device_of(x)
        return backend.move_to(x, device)

    def backward(self, g):
        return backend.move_to(g, self.src)


def cast(x: Tensor, dtype) -> Tensor:
    """``x`` converted to ``dtype`` (differentiable between float dtypes)."""
    dtype = np.dtype(dtype)
    if x.data.dtype == dtype:
        return x
    if x.requires_grad and dtype.kind != "f":
        return Tensor._make(x.data.astype(dtype), None)  # integer results carry no gradient
    return Cast.apply(x, dtype=dtype)
