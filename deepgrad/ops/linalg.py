"""Matrix products: matmul (batched, with torch's 1-D rules) and the fused affine map of Linear.

Big NumPy products go through :func:`deepgrad.kernels.parallel.matmul`, split across deepgrad's threads.
"""

from __future__ import annotations

import numpy as np

from ..autograd import OUT, Function
from ..backend import array_module
from ..kernels.parallel import matmul as pmatmul
from ..tensor import Tensor
from .elementwise import cast, device_error, unbroadcast
from .promotion import torch_name
from .reduce import expand_reduced, expand_reduced_graph, normalize_dims


class MatMul(Function):
    saved = ((1,), (0,))

    def forward(self, a, b):
        self.a, self.b = a, b
        return pmatmul(a, b)

    def backward(self, g):
        a, b = self.a, self.b
        if a.ndim == 1 and b.ndim == 1:  # dot product: g is a scalar
            return g * b if self.next[0] else None, g * a if self.next[1] else None
        # Lift 1-D operands to matrices as matmul does, then undo the lift on the gradients.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        if a.ndim == 1:
            g = g[..., None, :]
        if b.ndim == 1:
            g = g[..., None]
        xp = array_module(g)
        ga = gb = None
        if self.next[0] is not None:
            ga = unbroadcast(pmatmul(g, xp.swapaxes(b2, -1, -2)), a2.shape).reshape(a.shape)
        if self.next[1] is not None:
            gb = unbroadcast(pmatmul(xp.swapaxes(a2, -1, -2), g), b2.shape).reshape(b.shape)
        return ga, gb

    def backward_graph(self, g):
        from .arithmetic import sum_to

        sa, sb = self.a.shape, self.b.shape
        need_a, need_b = self.next[0] is not None, self.next[1] is not None
        a = self.saved_input(0) if need_b else None
        b = self.saved_input(1) if need_a else None
        if len(sa) == 1 and len(sb) == 1:  # dot product: g is a scalar
            return (g * b if need_a else None), (g * a if need_b else None)
        # Lift 1-D operands to matrices as matmul does, then undo the lift on the gradients.
        sa2 = (1,) + sa if len(sa) == 1 else sa
        sb2 = sb + (1,) if len(sb) == 1 else sb
        if len(sa) == 1:
            g = g.unsqueeze(-2)
        if len(sb) == 1:
            g = g.unsqueeze(-1)
        ga = gb = None
        if need_a:
            ga = sum_to(matmul(g, b.reshape(sb2).transpose(-1, -2)), sa2).reshape(sa)
        if need_b:
            gb = sum_to(matmul(a.reshape(sa2).transpose(-1, -2), g), sb2).reshape(sb)
        return ga, gb


class Linear(Function):
    """``x @ weight.T + bias`` as one node (fused: the affine map of every dense layer)."""

    saved = ((1,), (0,), ())

    def forward(self, x, weight, bias=None):
        self.x, self.weight = x, weight
        out = pmatmul(x, weight.T)
        if bias is not None:
            out += bias
        return out

    def backward(self, g):
        x, w = self.x, self.weight
        gx = pmatmul(g, w) if self.next[0] is not None else None
        gw = gb = None
        if self.next[1] is not None:
            gw = pmatmul(g.reshape(-1, g.shape[-1]).T, x.reshape(-1, x.shape[-1]))
        if len(self.next) > 2 and self.next[2] is not None:
            gb = g.reshape(-1, g.shape[-1]).sum(axis=0)
        return gx, gw, gb

    def backward_graph(self, g):
        gx = gw = gb = None
        if self.next[0] is not None:
            gx = matmul(g, self.saved_input(1))
        g2 = g.reshape(-1, g.shape[-1])
        if self.next[1] is not None:
            x = self.saved_input(0)
            gw = matmul(g2.transpose(0, 1), x.reshape(-1, x.shape[-1]))
        if len(self.next) > 2 and self.next[2] is not None:
            gb = g2.sum(0)
        return gx, gw, gb


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with broadcasting over batch dims; 1-D operands act as vectors."""
    if not isinstance(b, Tensor) or not isinstance(a, Tensor):
        raise TypeError("matmul: both operands must be Tensors")
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError(
            f"matmul: both arguments need at least 1 dimension, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise RuntimeError(
            f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied ({k_a} != {k_b})"
        )
    if type(a.array) is not type(b.array):
        raise device_error("matmul", a, b)
    if a.array.dtype != b.array.dtype:  # torch refuses mixed dtypes in matmul
        raise RuntimeError(f"matmul: expected m1 and m2 to have the same dtype, but got: {torch_name(a.dtype)} != "
                           f"{torch_name(b.dtype)}")
    try:
        return MatMul.apply(a, b)
    except ValueError as e:
        raise RuntimeError(
            f"matmul: batch dims of {tuple(a.shape)} and {tuple(b.shape)} do not broadcast: {e}"
        ) from None


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias`` for ``x`` of shape (..., in_features), weight (out, in)."""
    if x.ndim == 0 or weight.ndim != 2 or x.shape[-1] != weight.shape[1]:
        raise RuntimeError(
            f"linear: input of shape {tuple(x.shape)} does not fit a weight of shape "
            f"{tuple(weight.shape)} (expected input (..., {weight.shape[1] if weight.ndim == 2 else '?'}))"
        )
    if bias is None:
        return Linear.apply(x, weight)
    return Linear.apply(x, weight, bias)


class VectorNorm(Function):
    """``||x||_p`` over ``axes`` as one node, with torch's gradients at the kinks: 0 where the norm is 0
    (a naive sqrt(sum(x**2)) gives 0/0 = nan there), sign(x) for p = 1, and for p = inf the gradient
    shared evenly among the entries of largest magnitude."""

    saved = ((0, OUT),)

    def forward(self, x, p, axes, keepdim):
        xp = array_module(x)
        a = abs(x)
        if p == 2:
            out = np.sqrt((x * x).sum(axis=axes, keepdims=True))
        elif p == 1:
            out = a.sum(axis=axes, keepdims=True)
        elif p == float("inf"):
            out = a.max(axis=axes, keepdims=True) if a.size else xp.zeros([1] * a.ndim, dtype=x.dtype)
        else:
            out = (a ** p).sum(axis=axes, keepdims=True) ** (1.0 / p)
        self.x, self.p, self.axes, self.keepdim, self.norm = x, p, axes, keepdim, out
        return out if keepdim else out.reshape([n for i, n in enumerate(x.shape) if i not in axes])

    def backward(self, g):
        x, p, norm = self.x, self.p, self.norm
        xp = array_module(x)
        g = expand_reduced(g, x.shape, self.axes, self.keepdim)
        with np.errstate(divide="ignore", invalid="ignore"):
            if p == 1:
                d = xp.sign(x)
            elif p == float("inf"):
                top = abs(x) == norm
                d = xp.sign(x) * top / top.sum(axis=self.axes, keepdims=True)
            elif p == 2:
                d = x / norm
            else:
                d = x * abs(x) ** (p - 2) / norm ** (p - 1)
            d = xp.where(norm == 0, 0, d)
        return (g * d).astype(x.dtype, copy=False)

    def backward_graph(self, g):
        from .elementwise import where

        x_arr, p, norm_arr, axes, keepdim = self.x, self.p, self.norm, self.axes, self.keepdim
        x = self.saved_input(0)
        g = expand_reduced_graph(g, x_arr.shape, axes, keepdim)
        zero = Tensor._make(norm_arr == 0, None)
        if p == 1:
            return g * x.sign()
        if p == float("inf"):  # which entries tie for the largest magnitude is a step function: a constant
            top = abs(x_arr) == norm_arr
            share = Tensor._make((array_module(x_arr).sign(x_arr) * top / top.sum(axis=axes, keepdims=True))
                                 .astype(x_arr.dtype, copy=False), None)
            return g * where(zero, 0.0, share)
        out = self.saved_output(norm_arr if keepdim else norm_arr.reshape([n for i, n in enumerate(x_arr.shape)
                                                                           if i not in axes]))
        norm = expand_reduced_graph(out, x_arr.shape, axes, keepdim)
        safe = where(zero, 1.0, norm)  # 0 where the norm is 0, without a 0 * inf in the next derivative
        d = x / safe if p == 2 else x * x.abs() ** (p - 2) / safe ** (p - 1)
        return g * where(zero, 0.0, d)


def norm(x: Tensor, p=2, dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """The vector p-norm over ``dim`` (all elements when None): p = 1, 2, inf, 'fro' or any positive number.

    >>> norm(tensor([3.0, 4.0]))
    tensor(5.)
    """
    if dtype is not None:
        x = cast(x, dtype)
    if x.array.dtype.kind != "f":
        raise RuntimeError(f"linalg.vector_norm: Expected a floating point or complex tensor as input. Got "
                           f"{torch_name(x.dtype)}")
    if p == "fro":
        p = 2
    if not isinstance(p, (int, float)) or p <= 0:
        raise ValueError(f"norm: p must be a positive number, inf or 'fro', got {p!r}")
    return VectorNorm.apply(x, p=float(p), axes=normalize_dims(dim, x.ndim, "norm"), keepdim=keepdim)
