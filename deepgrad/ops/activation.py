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
from ..kernels import activation as K
from ..tensor import Tensor
from .adjoint import zero_link


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

    def backward_graph(self, g):
        out = self.saved_output(self.out)
        return g * out * (1 - out)


class Relu(Function):
    """max(x, 0); backward passes the gradient where x > 0 (a saved bool mask, a quarter of the output's size)."""

    saved = ((OUT,),)

    def forward(self, x):
        out, self.mask = K.relu_forward(x)  # a threaded row-wise path on NumPy
        return out

    def backward(self, g):
        return K.relu_backward(g, self.mask)

    def backward_graph(self, g):  # torch's threshold_backward reads the output: a zero second derivative
        return zero_link(_where(self.mask, g, 0.0), self, {0: self.mask.shape})


class LeakyRelu(Function):
    """x where x > 0, else negative_slope * x; the gradient is g times the same local slope."""

    saved = ((0,),)

    def forward(self, x, negative_slope):
        out, self.factor = K.leaky_relu_forward(x, negative_slope)  # the slope per element, looked up on NumPy
        return out

    def backward(self, g):
        return K.leaky_relu_backward(g, self.factor)

    def backward_graph(self, g):
        factor = self.factor
        if isinstance(factor, tuple):  # the reference kernel's (positive mask, slope)
            out = _where(factor[0], g, g * factor[1])
            shape = factor[0].shape
        else:
            out, shape = g * Tensor._make(factor, None), factor.shape
        return zero_link(out, self, {0: shape})  # torch: a zero second derivative, not an unused input


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

    def backward_graph(self, g):
        x = self.saved_input(0)
        return _where(self.x > 0, g, g * (x.clamp(max=0.0).exp() * self.alpha))


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

    def backward_graph(self, g):
        x = self.saved_input(0)
        if self.approximate == "tanh":
            k = self._SQRT_2_OVER_PI
            t = ((x + x ** 3 * 0.044715) * k).tanh()
            return g * ((1 + t) * 0.5 + x * 0.5 * (1 - t * t) * ((x * x * (3 * 0.044715) + 1) * k))
        return g * (NormalCdf.apply(x) + x * _normal_pdf(x))


class Softplus(Function):
    saved = ((0,),)

    def forward(self, x, beta, threshold):
        xp = array_module(x)
        bx = x * beta
        self.beta = beta
        self.linear = lin = bx > threshold
        self.sig = stable_sigmoid(bx)
        soft = np.log1p(np.exp(xp.minimum(bx, threshold))) / beta
        return xp.where(lin, x, soft).astype(x.dtype, copy=False)

    def backward(self, g):
        return array_module(g).where(self.linear, g, g * self.sig)

    def backward_graph(self, g):
        return _where(self.linear, g, g * Sigmoid.apply(self.saved_input(0) * self.beta))


class NormalCdf(Function):
    """The standard normal CDF ``(1 + erf(x / sqrt 2)) / 2``: gelu's derivative, differentiable again (its
    derivative is the normal pdf, written in ops)."""

    saved = ((0,),)

    def forward(self, x):
        self.x = x
        return (0.5 * (1 + backend.erf(x * (1 / math.sqrt(2.0))))).astype(x.dtype, copy=False)

    def backward(self, g):
        return g * np.exp(-0.5 * self.x * self.x) * (1 / math.sqrt(2 * math.pi))

    def backward_graph(self, g):
        return g * _normal_pdf(self.saved_input(0))


def _normal_pdf(x: Tensor) -> Tensor:
    return (x * x * -0.5).exp() * (1 / math.sqrt(2 * math.pi))


def _where(mask, a, b) -> Tensor:
    """``where`` with a constant mask array (a step function's derivative is zero)."""
    from .elementwise import where

    return where(Tensor._make(mask, None), a, b)
