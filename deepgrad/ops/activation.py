"""Activation functions: sigmoid (stable), ReLU, leaky ReLU, ELU, GELU, softplus.

Each is one node with its backward beside it. They read and save only what backward needs
(the output, or a mask), never the whole input when the output suffices.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..autograd import OUT, Function
from ..backend import array_module
from ..parallel import over_batch
from .elementwise import masked


def stable_sigmoid(x):
    """1 / (1 + e^-x) without overflow: only e^-|x| is ever computed."""
    e = np.exp(-abs(x))
    return array_module(x).where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


class Sigmoid(Function):
    saved = ((OUT,),)

    def forward(self, x):
        self.out = out = stable_sigmoid(x)
        return out

    def backward(self, g):
        out = self.out
        return g * out * (1 - out)


class Relu(Function):
    """max(x, 0); backward passes the gradient where x > 0 (a saved bool mask, a quarter of the output's size)."""

    saved = ((OUT,),)

    def forward(self, x):
        if not _rows_fast(x):
            self.mask = x > 0
            return np.maximum(x, 0)
        # NumPy's SIMD maximum skips a scalar (stride-0) operand: against a row of zeros the same
        # maximum runs ~3x faster (2M floats: 0.60 -> 0.18 ms; with the mask, the op 0.61 -> 0.29 ms).
        x2 = x.reshape(x.shape[0], -1)
        zeros = np.zeros(x2.shape[1], dtype=x.dtype)
        out, mask = np.empty_like(x2), np.empty(x2.shape, dtype=bool)

        def body(lo, hi):
            np.maximum(x2[lo:hi], zeros, out=out[lo:hi])
            np.greater(x2[lo:hi], 0, out=mask[lo:hi])

        over_batch(x2, body)
        self.mask = mask.reshape(x.shape)
        return out.reshape(x.shape)

    def backward(self, g):
        mask = self.mask
        if not _rows_fast(mask) or g.shape != mask.shape:
            return masked(g, mask)
        gx = np.empty(g.shape, dtype=g.dtype)
        over_batch(gx, lambda lo, hi: np.multiply(g[lo:hi], mask[lo:hi], out=gx[lo:hi]))
        if np.isnan(gx).any():  # 0 * inf: torch's backward gives 0 where x <= 0, whatever g is
            gx = np.where(mask, g, np.zeros((), dtype=g.dtype))
        return gx


def _rows_fast(x) -> bool:
    """The row-wise ReLU path: a C-contiguous NumPy batch of 4K elements or more, at most 64K per sample
    (the row of zeros it allocates)."""
    return (array_module(x) is np and x.ndim >= 2 and x.flags.c_contiguous
            and 4096 <= x.size <= x.shape[0] << 16)


class LeakyRelu(Function):
    saved = ((0,),)

    def forward(self, x, negative_slope):
        xp = array_module(x)
        if xp is np and x.dtype.kind == "f":
            # The local slope (1 or negative_slope) looked up per element, then one multiply forward and
            # one backward: exact (x * 1 == x), and much faster than a where() on a random sign pattern
            # (measured 64x64x14x14 float32: forward 1.9 -> 0.6 ms, backward 1.9 -> 0.3 ms).
            table = np.array([negative_slope, 1], dtype=x.dtype)
            self.factor = table.take((x > 0).view(np.uint8))
            return x * self.factor
        self.pos, self.slope, self.factor = x > 0, negative_slope, None
        return xp.where(self.pos, x, x * negative_slope)

    def backward(self, g):
        if self.factor is not None:
            return g * self.factor
        return array_module(g).where(self.pos, g, g * self.slope)


class Elu(Function):
    saved = ((0,),)

    def forward(self, x, alpha):
        xp = array_module(x)
        self.x, self.alpha = x, alpha
        return xp.where(x > 0, x, alpha * np.expm1(xp.minimum(x, 0)))

    def backward(self, g):  # torch's elu_backward from the input: alpha * exp(x) where x <= 0
        x = self.x
        xp = array_module(g)
        return xp.where(x > 0, g, g * (self.alpha * np.exp(xp.minimum(x, 0))).astype(g.dtype, copy=False))


class Gelu(Function):
    saved = ((0,),)

    _SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)

    def forward(self, x, approximate):
        self.x, self.approximate = x, approximate
        if approximate == "tanh":
            self.t = t = np.tanh(self._SQRT_2_OVER_PI * (x + 0.044715 * x**3))
            return 0.5 * x * (1 + t)
        self.cdf = cdf = 0.5 * (1 + backend.erf(x * (1 / math.sqrt(2.0))))
        return x * cdf

    def backward(self, g):
        x = self.x
        if self.approximate == "tanh":
            t = self.t
            dinner = self._SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * dinner)
        pdf = np.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))
        return g * (self.cdf + x * pdf)


class Softplus(Function):
    saved = ((0,),)

    def forward(self, x, beta, threshold):
        xp = array_module(x)
        bx = x * beta
        self.linear = lin = bx > threshold
        self.sig = stable_sigmoid(bx)
        soft = np.log1p(np.exp(xp.minimum(bx, threshold))) / beta
        return xp.where(lin, x, soft).astype(x.dtype, copy=False)

    def backward(self, g):
        return array_module(g).where(self.linear, g, g * self.sig)
