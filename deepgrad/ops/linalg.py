"""Matrix products: matmul (batched, with torch's 1-D rules) and the fused affine map of Linear.

Big NumPy products go through :func:`deepgrad.parallel.matmul`, split across deepgrad's threads.
"""

from __future__ import annotations

from ..autograd import Function
from ..backend import array_module
from ..parallel import matmul as pmatmul
from ..tensor import Tensor
from .elementwise import promote, unbroadcast


class MatMul(Function):
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


class Linear(Function):
    """``x @ weight.T + bias`` as one node (fused: the affine map of every dense layer)."""

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
    if type(a.data) is not type(b.data):
        raise RuntimeError(f"matmul: expected all tensors on the same device, got {a.device} and {b.device}")
    if a.data.dtype != b.data.dtype:
        a, b = promote(a, b)
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
