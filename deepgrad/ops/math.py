"""The rest of torch's elementwise maths of one tensor: rounding, reciprocals, logs and exponentials in
other bases, trigonometric and hyperbolic functions and their inverses, the error and gamma functions.

Each op is a small :class:`Unary` subclass: ``f`` is its forward, ``df`` its derivative, written as a
function of the input (``uses = "x"``) or of the output (``uses = "out"``) — whichever torch saves, so an
in-place change of the other one before the backward gives torch's gradient (or torch's error).
Integer and bool inputs compute in the default float dtype, as torch does; the rounding ops keep
integers as they are and are piecewise constant, so their gradient is zero (torch records it).

>>> import deepgrad as dg
>>> dg.log2(dg.tensor([1.0, 8.0]))
tensor([0., 3.])
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..autograd import OUT, Function
from ..backend import array_module
from ..tensor import Tensor
from .elementwise import cast
from .promotion import torch_name

__all__ = [  # the public ops (deepgrad.functional exports them)
    "rsqrt", "reciprocal", "log2", "log10", "exp2", "expm1", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh",
    "acosh", "atanh", "erf", "erfc", "erfinv", "lgamma", "digamma", "sinc", "arcsin", "arccos", "arctan", "arcsinh",
    "arccosh", "arctanh", "deg2rad", "rad2deg", "logit", "floor", "ceil", "trunc", "fix", "round", "frac",
    "nan_to_num", "signbit", "isposinf", "isneginf", "isreal", "positive",
]


def special(name: str, *args):
    """``scipy.special.NAME(*args)`` on the CPU, CuPy's on the GPU (erfc, erfinv, gammaln, digamma...)."""
    if array_module(args[-1]) is np:
        import scipy.special as sp
    else:
        import cupyx.scipy.special as sp
    return getattr(sp, name)(*args)


class Unary(Function):
    """``out = f(x)``, ``dx = g * df(x or out)``; ``uses`` names what ``df`` reads (torch saves that)."""

    saved = ((0,),)
    uses = "x"

    def forward(self, x):
        with np.errstate(all="ignore"):  # nan / inf outside the domain, as torch gives them
            out = self.f(x)
        self.kept = x if self.uses == "x" else out
        return out.astype(x.dtype, copy=False)

    def backward(self, g):
        with np.errstate(all="ignore"):
            return (g * self.df(self.kept)).astype(g.dtype, copy=False)


_LN2, _LN10 = math.log(2.0), math.log(10.0)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


class Rsqrt(Unary):
    saved, uses = ((OUT,),), "out"  # the derivative reads the output
    f = staticmethod(lambda x: 1 / np.sqrt(x))
    df = staticmethod(lambda out: -0.5 * out * out * out)


class Reciprocal(Unary):
    saved, uses = ((OUT,),), "out"  # the derivative reads the output
    f = staticmethod(lambda x: 1 / x)
    df = staticmethod(lambda out: -(out * out))


class Log2(Unary):
    f = staticmethod(np.log2)
    df = staticmethod(lambda x: 1 / (x * _LN2))


class Log10(Unary):
    f = staticmethod(np.log10)
    df = staticmethod(lambda x: 1 / (x * _LN10))


class Exp2(Unary):
    saved, uses = ((OUT,),), "out"  # the derivative reads the output
    f = staticmethod(np.exp2)
    df = staticmethod(lambda out: out * _LN2)


class Expm1(Unary):
    saved, uses = ((OUT,),), "out"  # the derivative reads the output
    f = staticmethod(np.expm1)
    df = staticmethod(lambda out: out + 1)


class Tan(Unary):
    saved, uses = ((OUT,),), "out"  # the derivative reads the output
    f = staticmethod(np.tan)
    df = staticmethod(lambda out: 1 + out * out)


class Asin(Unary):
    f = staticmethod(np.arcsin)
    df = staticmethod(lambda x: 1 / np.sqrt(1 - x * x))


class Acos(Unary):
    f = staticmethod(np.arccos)
    df = staticmethod(lambda x: -1 / np.sqrt(1 - x * x))


class Atan(Unary):
    f = staticmethod(np.arctan)
    df = staticmethod(lambda x: 1 / (1 + x * x))


class Sinh(Unary):
    f = staticmethod(np.sinh)
    df = staticmethod(np.cosh)


class Cosh(Unary):
    f = staticmethod(np.cosh)
    df = staticmethod(np.sinh)


class Asinh(Unary):
    f = staticmethod(np.arcsinh)
    df = staticmethod(lambda x: 1 / np.sqrt(x * x + 1))


class Acosh(Unary):
    f = staticmethod(np.arccosh)
    df = staticmethod(lambda x: 1 / np.sqrt(x * x - 1))


class Atanh(Unary):
    f = staticmethod(np.arctanh)
    df = staticmethod(lambda x: 1 / (1 - x * x))


class Erf(Unary):
    f = staticmethod(lambda x: special("erf", x))
    df = staticmethod(lambda x: _TWO_OVER_SQRT_PI * np.exp(-x * x))


class Erfc(Unary):
    f = staticmethod(lambda x: special("erfc", x))
    df = staticmethod(lambda x: -_TWO_OVER_SQRT_PI * np.exp(-x * x))


class Erfinv(Unary):
    """torch saves the input and recomputes erfinv from it in the backward."""

    f = staticmethod(lambda x: special("erfinv", x))
    df = staticmethod(lambda x: (0.5 * math.sqrt(math.pi)) * np.exp(special("erfinv", x) ** 2))


class Lgamma(Unary):
    f = staticmethod(lambda x: special("gammaln", x))  # log|Gamma(x)|, as torch's lgamma
    df = staticmethod(lambda x: special("digamma", x))


class Digamma(Unary):
    f = staticmethod(lambda x: special("digamma", x))
    df = staticmethod(lambda x: special("polygamma", 1, x))


class Sinc(Unary):
    """sin(pi x) / (pi x), 1 at 0 (derivative 0 there)."""

    f = staticmethod(np.sinc)
    df = staticmethod(lambda x: array_module(x).where(
        x == 0, 0, (np.cos(math.pi * x) * (math.pi * x) - np.sin(math.pi * x)) / (math.pi * x * x)))


class Logit(Function):
    """log(x / (1 - x)), x first clamped to [eps, 1 - eps] when eps is given (gradient 0 outside, as torch)."""

    saved = ((0,),)

    def forward(self, x, eps):
        self.x, self.eps = x, eps
        z = x if eps is None else np.clip(x, eps, 1 - eps)
        with np.errstate(all="ignore"):
            return np.log(z / (1 - z)).astype(x.dtype, copy=False)

    def backward(self, g):
        x, eps = self.x, self.eps
        with np.errstate(all="ignore"):
            d = g / (x * (1 - x))
        if eps is not None:
            d = array_module(x).where((x < eps) | (x > 1 - eps), 0, d)
        return d.astype(g.dtype, copy=False)


class Scale(Function):
    """``x * c`` for a constant ``c`` (deg2rad, rad2deg)."""

    saved = ()

    def forward(self, x, c):
        self.c = c
        return (x * c).astype(x.dtype, copy=False)

    def backward(self, g):
        return (g * self.c).astype(g.dtype, copy=False)


class Frac(Function):
    """x - trunc(x): the gradient passes unchanged."""

    saved = ()

    def forward(self, x):
        return x - np.trunc(x)

    def backward(self, g):
        return g


class Rounding(Function):
    """floor, ceil, trunc, round: piecewise constant, so a zero gradient (torch records it)."""

    saved = ()

    def forward(self, x, fn, decimals=0):
        if decimals == 0:
            return fn(x)
        # torch's rounding to decimals: scale, round half to even, scale back, in x's own dtype
        scale = x.dtype.type(10.0 ** abs(decimals))
        return np.rint(x * scale) / scale if decimals > 0 else np.rint(x / scale) * scale

    def backward(self, g):
        return array_module(g).zeros_like(g)


class NanToNum(Function):
    """NaN -> ``nan``, +inf -> ``posinf``, -inf -> ``neginf``; the gradient passes where x was finite."""

    saved = ((0,),)

    def forward(self, x, nan, posinf, neginf):
        self.x = x
        return array_module(x).nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)

    def backward(self, g):
        return array_module(g).where(np.isfinite(self.x), g, 0).astype(g.dtype, copy=False)


# ----------------------------------------------------------------------------- public API
def as_float(x: Tensor, name: str) -> Tensor:
    """``x`` itself if floating, else cast to the default float dtype (torch's integer -> float rule)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not {type(x).__name__}")
    return x if x.array.dtype.kind == "f" else cast(x, backend.get_default_dtype())


def _unary(cls, name: str, doc: str):
    def op(input: Tensor) -> Tensor:
        return cls.apply(as_float(input, name))

    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    return op


rsqrt = _unary(Rsqrt, "rsqrt", "1 / sqrt(x) elementwise.")
reciprocal = _unary(Reciprocal, "reciprocal", "1 / x elementwise (integers divide into floats).")
log2 = _unary(Log2, "log2", "Base-2 logarithm.")
log10 = _unary(Log10, "log10", "Base-10 logarithm.")
exp2 = _unary(Exp2, "exp2", "2 ** x elementwise.")
expm1 = _unary(Expm1, "expm1", "exp(x) - 1, accurate near 0.")
tan = _unary(Tan, "tan", "Tangent.")
asin = _unary(Asin, "asin", "Inverse sine (nan outside [-1, 1]).")
acos = _unary(Acos, "acos", "Inverse cosine (nan outside [-1, 1]).")
atan = _unary(Atan, "atan", "Inverse tangent.")
sinh = _unary(Sinh, "sinh", "Hyperbolic sine.")
cosh = _unary(Cosh, "cosh", "Hyperbolic cosine.")
asinh = _unary(Asinh, "asinh", "Inverse hyperbolic sine.")
acosh = _unary(Acosh, "acosh", "Inverse hyperbolic cosine (nan below 1).")
atanh = _unary(Atanh, "atanh", "Inverse hyperbolic tangent (nan outside [-1, 1]).")
erf = _unary(Erf, "erf", "The error function 2/sqrt(pi) * integral of exp(-t^2) from 0 to x.")
erfc = _unary(Erfc, "erfc", "1 - erf(x), accurate for large x.")
erfinv = _unary(Erfinv, "erfinv", "The inverse of erf on (-1, 1).")
lgamma = _unary(Lgamma, "lgamma", "log |Gamma(x)|.")
digamma = _unary(Digamma, "digamma", "d/dx log Gamma(x).")
sinc = _unary(Sinc, "sinc", "The normalised sinc, sin(pi x) / (pi x).")
arcsin, arccos, arctan, arcsinh, arccosh, arctanh = asin, acos, atan, asinh, acosh, atanh


def deg2rad(input: Tensor) -> Tensor:
    """Degrees to radians."""
    return Scale.apply(as_float(input, "deg2rad"), c=math.pi / 180)


def rad2deg(input: Tensor) -> Tensor:
    """Radians to degrees."""
    return Scale.apply(as_float(input, "rad2deg"), c=180 / math.pi)


def logit(input: Tensor, eps: float | None = None) -> Tensor:
    """log(p / (1 - p)), the inverse of sigmoid; ``eps`` clamps p to [eps, 1 - eps] first."""
    return Logit.apply(as_float(input, "logit"), eps=eps)


def _rounding(fn, name: str):
    def op(input: Tensor) -> Tensor:
        if input.array.dtype == bool:
            raise NotImplementedError(f'"{name}_vml_cpu" not implemented for \'Bool\'')
        if input.array.dtype.kind in "iu":
            return Tensor._make(input.array.copy(), None)  # integers are already whole
        return Rounding.apply(input, fn=fn)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"Elementwise {name} (integers unchanged; a zero gradient, as torch)."
    return op


floor = _rounding(np.floor, "floor")
ceil = _rounding(np.ceil, "ceil")
trunc = _rounding(np.trunc, "trunc")
fix = trunc


def round(input: Tensor, *, decimals: int = 0) -> Tensor:
    """Round half to even, to ``decimals`` places (negative: to tens, hundreds...); zero gradient.

    >>> round(tensor([0.5, 1.5, 2.675]), decimals=0)
    tensor([0., 2., 3.])
    """
    if decimals == 0:
        return _rounding(np.rint, "round")(input)
    if input.array.dtype.kind not in "f":
        raise NotImplementedError(f'"round_cpu" not implemented for \'{torch_name(input.dtype)}\'')
    return Rounding.apply(input, fn=np.rint, decimals=int(decimals))


def frac(input: Tensor) -> Tensor:
    """x - trunc(x), with the sign of x (floating inputs only, as torch)."""
    if input.array.dtype.kind != "f":
        raise NotImplementedError(f'"frac_cpu" not implemented for \'{torch_name(input.dtype)}\'')
    return Frac.apply(input)


def nan_to_num(input: Tensor, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None) -> Tensor:
    """NaN, +inf and -inf replaced by ``nan``, ``posinf`` (default: the dtype's largest) and ``neginf``."""
    if input.array.dtype.kind != "f":
        return Tensor._make(input.array.copy(), None)  # integers have no nan or inf
    return NanToNum.apply(input, nan=nan, posinf=posinf, neginf=neginf)


def signbit(input: Tensor) -> Tensor:
    """True where the sign bit is set (-0.0 and negative numbers)."""
    return Tensor._make(array_module(input.array).signbit(input.array), None)


def isposinf(input: Tensor) -> Tensor:
    """True where x is +inf."""
    return Tensor._make(array_module(input.array).isposinf(input.array), None)


def isneginf(input: Tensor) -> Tensor:
    """True where x is -inf."""
    return Tensor._make(array_module(input.array).isneginf(input.array), None)


def isreal(input: Tensor) -> Tensor:
    """True everywhere (deepgrad has no complex tensors)."""
    return Tensor._make(array_module(input.array).ones(input.shape, dtype=bool), None)


def positive(input: Tensor) -> Tensor:
    """``+x``: the tensor itself (refused for bool, as torch)."""
    if input.array.dtype == bool:
        raise RuntimeError("The `+` operator, on a bool tensor is not supported.")
    return input
