"""Matrix functions with their gradients: inverse, determinant (robust at singular matrices), slogdet,
solve, Cholesky and singular values — each batched over leading dims, forward by NumPy/CuPy's LAPACK,
backward by the closed forms torch uses.

>>> import deepgrad as dg
>>> dg.linalg.det(dg.tensor([[2.0, 1.0], [1.0, 3.0]]))
tensor(5.)
"""

from __future__ import annotations

import numpy as np

from ..autograd import OUT, Function
from ..backend import array_module
from ..tensor import Tensor
from .elementwise import unbroadcast


class LinAlgError(RuntimeError):
    """torch.linalg.LinAlgError: a matrix that the factorisation cannot handle (singular, not positive-definite)."""


def _mT(a):
    return a.swapaxes(-1, -2)


def _lapack(name: str, fn, *arrays):
    xp = array_module(arrays[0])
    try:
        return fn(*arrays)
    except xp.linalg.LinAlgError as e:
        raise LinAlgError(f"linalg.{name}: {e} (the input is singular or not positive-definite)") from None


class Inverse(Function):
    saved = ((OUT,),)

    def forward(self, a):
        self.out = out = _lapack("inv", array_module(a).linalg.inv, a)
        return out

    def backward(self, g):
        inv_t = _mT(self.out)
        return -(inv_t @ g @ inv_t)


def cofactor(a):
    """The cofactor matrix of ``a`` (= det(a) * inv(a)^T where invertible), from an SVD so that it stays exact
    at singular matrices: U diag(prod of the other singular values) V^T times det(U) det(V)."""
    xp = array_module(a)
    u, s, vt = xp.linalg.svd(a)
    n = s.shape[-1]
    left = xp.concatenate([xp.ones_like(s[..., :1]), xp.cumprod(s, axis=-1)[..., :-1]], axis=-1)
    right = xp.flip(xp.concatenate([xp.ones_like(s[..., :1]), xp.cumprod(xp.flip(s, -1), axis=-1)[..., :-1]],
                                   axis=-1), -1)
    others = left * right if n else s
    sign = xp.linalg.det(u) * xp.linalg.det(vt)
    return (u * others[..., None, :]) @ vt * sign[..., None, None]


class Det(Function):
    """det(A); its gradient is the cofactor matrix (det(A) inv(A)^T), computed from an SVD so that a nearly
    singular matrix gets it without an overflowing inverse — and 0 at an exactly singular one, as torch gives
    (the true derivative there is still the cofactor matrix; torch's parity wins)."""

    saved = ((0, OUT),)

    def forward(self, a):
        self.a = a
        self.out = out = array_module(a).linalg.det(a)
        return out

    def backward(self, g):
        scale = array_module(g).where(self.out == 0, 0, g)
        return (scale[..., None, None] * cofactor(self.a)).astype(g.dtype, copy=False)


class SlogDet(Function):
    """(sign, log|det|): only log|det| carries a gradient, inv(A)^T."""

    multi_output = True
    saved = ((0,),)

    def forward(self, a):
        self.a = a
        sign, logabs = array_module(a).linalg.slogdet(a)
        return sign.astype(a.dtype), logabs.astype(a.dtype)

    def backward(self, g_sign, g_logabs):
        if g_logabs is None:
            return array_module(self.a).zeros_like(self.a)
        inv_t = _mT(_lapack("slogdet", array_module(self.a).linalg.inv, self.a))
        return g_logabs[..., None, None] * inv_t


class Solve(Function):
    """X with A X = B (B a batch of matrices, or of vectors when ``vector``); gB = solve(A^T, g), gA = -gB X^T."""

    saved = ((0, OUT), (0,))

    def forward(self, a, b, vector):
        xp = array_module(a)
        self.a, self.vector, self.shapes = a, vector, (a.shape, b.shape)
        bb = b[..., None] if vector else b
        shape = np.broadcast_shapes(a.shape[:-2], bb.shape[:-2])
        a_full = xp.broadcast_to(a, shape + a.shape[-2:])
        b_full = xp.broadcast_to(bb, shape + bb.shape[-2:])
        x = _lapack("solve", xp.linalg.solve, a_full, b_full)
        self.x = x
        return x[..., 0] if vector else x

    def backward(self, g):
        xp = array_module(g)
        gg = g[..., None] if self.vector else g
        a = xp.broadcast_to(self.a, gg.shape[:-2] + self.a.shape[-2:])
        gb = xp.linalg.solve(_mT(a), gg)
        ga = gb_out = None
        if self.next[0] is not None:
            ga = unbroadcast(-(gb @ _mT(self.x)), self.shapes[0])
        if self.next[1] is not None:
            gb_out = unbroadcast(gb[..., 0] if self.vector else gb, self.shapes[1])
        return ga, gb_out


class Cholesky(Function):
    """L with A = L L^T (lower, or U = L^T with ``upper``); torch's backward (Murray 2016): with T = tril(L^T gL),
    gA = L^-T (T + tril(T, -1)^T) / 2 L^-1."""

    saved = ((OUT,),)

    def forward(self, a, upper):
        xp = array_module(a)
        self.upper = upper
        lower = _lapack("cholesky", xp.linalg.cholesky, a)
        self.lower = lower
        return _mT(lower).copy() if upper else lower

    def backward(self, g):
        xp = array_module(g)
        low = self.lower
        gl = _mT(g) if self.upper else g
        t = xp.tril(_mT(low) @ gl)
        m = 0.5 * (t + _mT(xp.tril(t, -1)))
        inv = xp.linalg.inv(low)
        return (_mT(inv) @ m @ inv).astype(g.dtype, copy=False)


class SingularValues(Function):
    """The singular values, largest first; the gradient is U diag(g) V^T."""

    saved = ((0,),)

    def forward(self, a):
        u, s, vt = array_module(a).linalg.svd(a, full_matrices=False)
        self.u, self.vt = u, vt
        return s

    def backward(self, g):
        return (self.u * g[..., None, :]) @ self.vt


def square_check(name: str, a: Tensor) -> None:
    if a.ndim < 2:
        raise RuntimeError(f"linalg.{name}: The input tensor A must have at least 2 dimensions.")
    if a.shape[-1] != a.shape[-2]:
        raise RuntimeError(f"linalg.{name}: A must be batches of square matrices, but they are {a.shape[-2]} by "
                           f"{a.shape[-1]} matrices")
    if a.array.dtype.kind != "f":
        from .promotion import torch_name

        raise RuntimeError(f"linalg.{name}: Expected a floating point or complex tensor as input. Got "
                           f"{torch_name(a.dtype)}")
