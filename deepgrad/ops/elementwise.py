"""Elementwise ops: unary maths, max/min/clamp/where, copies and casts (arithmetic is in arithmetic.py).

Every op's forward and backward stand side by side and work on raw arrays. NumPy ufuncs
dispatch to CuPy for CuPy arrays (``__array_ufunc__``), so one code path serves both.
Backward never writes into the incoming gradient: it may be shared with other inputs.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import OUT, Function
from ..backend import array_module
from ..kernels.arrays import masked, unbroadcast  # noqa: F401  (unbroadcast: the ops import it from here)
from ..tensor import Tensor
from .promotion import result_type, scalar_in


# ----------------------------------------------------------------------------- operands
def device_error(name: str, a: Tensor, b: Tensor) -> RuntimeError:
    return RuntimeError(
        f"{name}: expected all tensors on the same device, got {a.device} and {b.device}; "
        f"move one with .to(device)"
    )


def as_tensor_like(value, like: Tensor) -> Tensor:
    """Wrap a Python/NumPy scalar or array as a constant on ``like``'s device and dtype."""
    if isinstance(value, Tensor):
        return value
    xp = array_module(like.array)
    dtype = like.array.dtype
    if dtype.kind != "f" and isinstance(value, float):
        dtype = backend.get_default_dtype()
    return Tensor._make(xp.asarray(value, dtype=dtype), None)


# ----------------------------------------------------------------------------- unary maths
class Neg(Function):
    saved = ()

    def forward(self, x):
        return -x

    def backward(self, g):
        return -g

    def backward_graph(self, g):
        return -g


class Abs(Function):
    saved = ((0,),)

    def forward(self, x):
        self.x = x
        return abs(x)

    def backward(self, g):
        return g * array_module(self.x).sign(self.x)

    def backward_graph(self, g):
        return g * self.saved_input(0).sign()


class Exp(Function):
    saved = ((OUT,),)

    def forward(self, x):
        self.out = out = np.exp(x)
        return out

    def backward(self, g):
        return g * self.out

    def backward_graph(self, g):
        return g * self.saved_output(self.out)


class Log(Function):
    saved = ((0,),)

    def forward(self, x):
        self.x = x
        return np.log(x)

    def backward(self, g):
        return g / self.x

    def backward_graph(self, g):
        return g / self.saved_input(0)


class Log1p(Function):
    saved = ((0,),)

    def forward(self, x):
        self.x = x
        return np.log1p(x)

    def backward(self, g):
        return g / (1 + self.x)

    def backward_graph(self, g):
        return g / (self.saved_input(0) + 1)


class Sqrt(Function):
    saved = ((OUT,),)

    def forward(self, x):
        self.out = out = np.sqrt(x)
        return out

    def backward(self, g):
        return g / (2 * self.out)

    def backward_graph(self, g):
        return g / (self.saved_output(self.out) * 2)


class Sin(Function):
    saved = ((0,),)

    def forward(self, x):
        self.x = x
        return np.sin(x)

    def backward(self, g):
        return g * np.cos(self.x)

    def backward_graph(self, g):
        return g * self.saved_input(0).cos()


class Cos(Function):
    saved = ((0,),)

    def forward(self, x):
        self.x = x
        return np.cos(x)

    def backward(self, g):
        return -g * np.sin(self.x)

    def backward_graph(self, g):
        return -g * self.saved_input(0).sin()


class Tanh(Function):
    saved = ((OUT,),)

    def forward(self, x):
        self.out = out = np.tanh(x)
        return out

    def backward(self, g):
        out = self.out
        return g * (1 - out * out)

    def backward_graph(self, g):
        out = self.saved_output(self.out)
        return g * (1 - out * out)


# ----------------------------------------------------------------------------- selection
class Maximum(Function):
    saved = ((0, 1), (0, 1))

    def forward(self, a, b):
        self.a, self.b = a, b
        return np.maximum(a, b)

    def backward(self, g):
        return _select_grads(self, g, self.a > self.b)

    def backward_graph(self, g):
        return _select_grads_graph(self, g, self.a > self.b)


class Minimum(Function):
    saved = ((0, 1), (0, 1))

    def forward(self, a, b):
        self.a, self.b = a, b
        return np.minimum(a, b)

    def backward(self, g):
        return _select_grads(self, g, self.a < self.b)

    def backward_graph(self, g):
        return _select_grads_graph(self, g, self.a < self.b)


def _select_grads(fn, g, a_wins):
    """Gradients of max/min of two tensors: the winner takes g, ties split it (as torch)."""
    a, b = fn.a, fn.b
    w = array_module(g).where(a == b, g.dtype.type(0.5), a_wins.astype(g.dtype))  # keep g's dtype
    ga = unbroadcast(masked(g, w != 0, w), a.shape) if fn.next[0] is not None else None
    gb = unbroadcast(masked(g, w != 1, 1 - w), b.shape) if fn.next[1] is not None else None
    return ga, gb


def _select_grads_graph(fn, g, a_wins):
    """:func:`_select_grads` on Tensors: who wins is a step function of the inputs, so its weights are constants."""
    from .arithmetic import sum_to

    a, b = fn.a, fn.b
    dtype = g.array.dtype
    w = array_module(a).where(a == b, dtype.type(0.5), a_wins.astype(dtype))
    ga = sum_to(g * Tensor._make(w, None), a.shape) if fn.next[0] is not None else None
    gb = sum_to(g * Tensor._make(1 - w, None), b.shape) if fn.next[1] is not None else None
    return ga, gb


class Clamp(Function):
    saved = ((0,),)

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
        return g if self.keep is None else masked(g, self.keep)

    def backward_graph(self, g):
        return g if self.keep is None else where(Tensor._make(self.keep, None), g, 0.0)


class Sign(Function):
    """sign(x): piecewise constant, so a zero gradient (torch records it)."""

    saved = ()

    def forward(self, x):
        return x.copy() if x.dtype == bool else array_module(x).sign(x)  # NumPy has no sign for bools

    def backward(self, g):
        return array_module(g).zeros_like(g)

    def backward_graph(self, g):
        return g * 0.0


class ClampTensor(Function):
    """clamp with tensor bounds; ``which`` names the bounds given after ``x`` ("lo", "hi", "lohi").

    torch's gradients: x gets g where lo <= x <= hi; a bound gets g where it binds (lo where
    x < lo < hi, hi where x > hi or hi < lo).
    """

    saved = staticmethod(lambda params: ((0, 1, 2) if params["which"] == "lohi" else (0, 1),))

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

    def backward_graph(self, g):
        from .arithmetic import sum_to

        return tuple(sum_to(where(Tensor._make(mask, None), g, 0.0), self.shapes[i]) if self.next[i] is not None
                     else None for i, mask in enumerate([self.keep] + self.masks))


class Where(Function):
    saved = ((), (0,), (0,))

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

    def backward_graph(self, g):
        cond, (sa, sb) = Tensor._make(self.cond, None), self.shapes
        from .arithmetic import sum_to

        ga = sum_to(where(cond, g, 0.0), sa) if self.next[1] is not None else None
        gb = sum_to(where(cond, 0.0, g), sb) if self.next[2] is not None else None
        return None, ga, gb


def clamp(x: Tensor, min=None, max=None) -> Tensor:
    """Limit values to [min, max]; the gradient passes where min <= x <= max."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if x.array.dtype.kind == "f" and type(min) in (int, float, type(None)) and type(max) in (int, float, type(None)):
        return Clamp.apply(x, lo=min, hi=max)  # the common case: a float tensor between numbers
    dtype = result_type(x, min, max)
    if x.array.dtype != dtype:
        x = cast(x, dtype)  # torch: an integer tensor clamped to a float bound is float
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        bounds = [as_tensor_like(v, x) for v in (min, max) if v is not None]
        which = ("lo" if min is not None else "") + ("hi" if max is not None else "")
        for b in bounds:
            if type(b.array) is not type(x.array):
                raise device_error("clamp", x, b)
        bounds = [cast(b, dtype) for b in bounds]
        try:
            return ClampTensor.apply(x, *bounds, which=which)
        except ValueError as e:
            shapes = ", ".join(str(tuple(t.shape)) for t in (x, *bounds))
            raise RuntimeError(f"clamp: shapes {shapes} cannot be broadcast together") from e
    return Clamp.apply(x, lo=scalar_in(min, dtype) if min is not None else None,
                       hi=scalar_in(max, dtype) if max is not None else None)


def where(condition: Tensor, input, other) -> Tensor:
    """Pick ``input`` where ``condition`` holds, else ``other`` (broadcasting all three)."""
    if not isinstance(condition, Tensor):
        raise TypeError(f"where(): argument 'condition' must be Tensor, not {type(condition).__name__}")
    dtype = result_type(input, other)
    xp = array_module(condition.array)
    a, b = (cast(v, dtype) if isinstance(v, Tensor) else Tensor._make(xp.asarray(v, dtype=dtype), None)
            for v in (input, other))
    for v in (a, b):
        if type(v.array) is not type(condition.array):
            raise device_error("where", condition, v)
    cond = condition
    if cond.array.dtype != np.bool_:
        cond = Tensor._make(cond.array.astype(bool), None)
    try:
        return Where.apply(cond, a, b)
    except ValueError as e:
        raise ValueError(
            f"where: condition {tuple(cond.shape)}, input {tuple(a.shape)} and other "
            f"{tuple(b.shape)} cannot be broadcast together"
        ) from e


# ----------------------------------------------------------------------------- copies and casts
class Clone(Function):
    saved = ()

    def forward(self, x):
        return x.copy()

    def backward(self, g):
        return g

    def backward_graph(self, g):
        return g


class Contiguous(Function):
    saved = ()

    def forward(self, x):
        return array_module(x).ascontiguousarray(x)

    def backward(self, g):
        return g

    def backward_graph(self, g):
        return g


class Cast(Function):
    saved = ()

    def forward(self, x, dtype):
        self.src = x.dtype
        return x.astype(dtype)

    def backward(self, g):
        return g.astype(self.src, copy=False)

    def backward_graph(self, g):
        return cast(g, self.src)


class ToDevice(Function):
    saved = ()

    def forward(self, x, device):
        self.src = backend.device_of(x)
        return backend.move_to(x, device)

    def backward(self, g):
        return backend.move_to(g, self.src)

    def backward_graph(self, g):
        return g.to(self.src)


def cast(x: Tensor, dtype) -> Tensor:
    """``x`` converted to ``dtype`` (differentiable between float dtypes)."""
    dtype = np.dtype(dtype)
    if x.array.dtype == dtype:
        return x
    if x.requires_grad and dtype.kind != "f":
        return Tensor._make(x.array.astype(dtype), None)  # integer results carry no gradient
    return Cast.apply(x, dtype=dtype)
