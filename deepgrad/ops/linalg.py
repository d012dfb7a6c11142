"""Matrix products: matmul (batched, with torch's 1-D rules) and the fused affine map of Linear.

Big NumPy products go through :func:`deepgrad.kernels.parallel.matmul`, split across deepgrad's threads.
"""

from __future__ import annotations

import numpy as np

from ..autograd import OUT, Function, track_saved
from ..backend import array_module
from ..kernels.parallel import matmul as pmatmul
from ..tensor import Tensor
from .elementwise import cast, device_error, unbroadcast
from .promotion import torch_name
from .reduce import expand_reduced, normalize_dims


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
            else:  # 0 at a zero element (0 * inf for p < 2 otherwise), as torch
                d = xp.where(x == 0, 0, x * abs(x) ** (p - 2) / norm ** (p - 1))
            d = xp.where(norm == 0, 0, d)
        return (g * d).astype(x.dtype, copy=False)


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


# ----------------------------------------------------------------------------- the named products
def _same_dtype(name: str, a: Tensor, b: Tensor) -> None:
    if a.array.dtype != b.array.dtype:
        raise RuntimeError(f"{name}: expected m1 and m2 to have the same dtype, but got: {torch_name(a.dtype)} != "
                           f"{torch_name(b.dtype)}")


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    """The product of two matrices (no broadcasting; ``matmul`` for that)."""
    for what, t in (("self", input), ("mat2", mat2)):
        if t.ndim != 2:
            raise RuntimeError(f"{what} must be a matrix")
    if input.shape[1] != mat2.shape[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({input.shape[0]}x{input.shape[1]} and "
                           f"{mat2.shape[0]}x{mat2.shape[1]})")
    return matmul(input, mat2)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    """Batched matrix product of (b, n, m) and (b, m, p) tensors (no broadcasting)."""
    for what, t in (("batch1", input), ("batch2", mat2)):
        if t.ndim != 3:
            raise RuntimeError(f"{what} must be a 3D tensor")
    if mat2.shape[:2] != (input.shape[0], input.shape[2]):
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                           f"[{input.shape[0]}, {input.shape[2]}] but got: [{mat2.shape[0]}, {mat2.shape[1]}].")
    return matmul(input, mat2)


def mv(input: Tensor, vec: Tensor) -> Tensor:
    """Matrix times vector."""
    if input.ndim != 2 or vec.ndim != 1 or input.shape[1] != vec.shape[0]:
        raise RuntimeError(f"size mismatch, got input ({input.shape[0] if input.ndim else 0}), mat "
                           f"({'x'.join(map(str, input.shape))}), vec ({'x'.join(map(str, vec.shape))})")
    return matmul(input, vec)


def dot(input: Tensor, tensor: Tensor) -> Tensor:
    """The inner product of two 1-D tensors of one dtype."""
    if input.ndim != 1 or tensor.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input.ndim}D and {tensor.ndim}D tensors")
    if input.shape[0] != tensor.shape[0]:
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{input.shape[0]}] and src [{tensor.shape[0]}] "
                           f"to have the same number of elements, but got {input.shape[0]} and {tensor.shape[0]} "
                           f"elements respectively")
    if input.array.dtype != tensor.array.dtype:
        raise RuntimeError(f"dot : expected both vectors to have same dtype, but found {torch_name(input.dtype)} and "
                           f"{torch_name(tensor.dtype)}")
    return matmul(input, tensor)


vdot = dot  # the same for real tensors (deepgrad has no complex ones)


def outer(input: Tensor, vec2: Tensor) -> Tensor:
    """The outer product of two 1-D tensors: ``out[i, j] = input[i] * vec2[j]``."""
    from .arithmetic import mul

    for what, t in (("self", input), ("vec2", vec2)):
        if t.ndim != 1:
            raise RuntimeError(f"outer: Expected 1-D argument {what}, but got {t.ndim}-D")
    return mul(input.reshape(-1, 1), vec2.reshape(1, -1))


ger = outer


def _scaled_sum(name: str, input: Tensor, product: Tensor, beta, alpha) -> Tensor:
    """``beta * input + alpha * product``; with beta == 0 input is ignored (its NaNs too) and gets a zero
    gradient, as in torch."""
    from .arithmetic import add, mul

    try:
        np.broadcast_shapes(input.shape, product.shape)
        if np.broadcast_shapes(input.shape, product.shape) != product.shape:
            raise ValueError
    except ValueError:
        raise RuntimeError(f"{name}: the size of input {tuple(input.shape)} cannot be expanded to the result size "
                           f"{tuple(product.shape)}") from None
    scaled = mul(product, alpha) if alpha != 1 else product
    if beta == 0:
        xp = array_module(input.array)
        ignored = input.masked_fill(Tensor._make(xp.ones((), dtype=bool), None), 0)
        return add(scaled, ignored)
    return add(scaled, mul(input, beta) if beta != 1 else input)


def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * (mat1 @ mat2)`` (input broadcasts)."""
    return _scaled_sum("addmm", input, mm(mat1, mat2), beta, alpha)


def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * bmm(batch1, batch2)``."""
    return _scaled_sum("baddbmm", input, bmm(batch1, batch2), beta, alpha)


def addbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * sum_b batch1[b] @ batch2[b]``."""
    from .reduce import sum as reduce_sum

    return _scaled_sum("addbmm", input, reduce_sum(bmm(batch1, batch2), 0), beta, alpha)


def addmv(input: Tensor, mat: Tensor, vec: Tensor, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * (mat @ vec)``."""
    return _scaled_sum("addmv", input, mv(mat, vec), beta, alpha)


def addr(input: Tensor, vec1: Tensor, vec2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * outer(vec1, vec2)``."""
    return _scaled_sum("addr", input, outer(vec1, vec2), beta, alpha)


def inner(input: Tensor, other: Tensor) -> Tensor:
    """Sum of products over the last dims (a product for 0-d operands)."""
    from .arithmetic import mul
    from .einsum import tensordot

    if input.ndim == 0 or other.ndim == 0:
        return mul(input, other)
    if input.shape[-1] != other.shape[-1]:
        raise RuntimeError(f"inner() the last dimension must match on both input tensors but got shapes "
                           f"{list(input.shape)} and {list(other.shape)}")
    _same_dtype("inner", input, other)
    return tensordot(input, other, ([-1], [-1]))


def kron(input: Tensor, other: Tensor) -> Tensor:
    """The Kronecker product: every element of ``input`` times the whole of ``other``, tiled."""
    from .arithmetic import mul

    n = max(input.ndim, other.ndim)
    sa = (1,) * (n - input.ndim) + tuple(input.shape)
    sb = (1,) * (n - other.ndim) + tuple(other.shape)
    a = input.reshape(tuple(x for s in sa for x in (s, 1)))  # (a0, 1, a1, 1, ...)
    b = other.reshape(tuple(x for s in sb for x in (1, s)))  # (1, b0, 1, b1, ...)
    return mul(a, b).reshape(tuple(i * j for i, j in zip(sa, sb)))


def cdist(x1: Tensor, x2: Tensor, p: float = 2.0, compute_mode: str | None = None) -> Tensor:
    """The p-norm distance between each row of ``x1`` (..., P, M) and each row of ``x2`` (..., R, M).

    Computed directly from the differences (torch switches to a matrix-product formula for p = 2 with more
    than 25 rows, which is faster but less exact); the gradient at a zero distance is 0, as torch's.
    """
    from .arithmetic import sub

    if x1.ndim < 2 or x2.ndim < 2:
        raise RuntimeError(f"cdist only supports at least 2D tensors, X1 got: {x1.ndim}D" if x1.ndim < 2 else
                           f"cdist only supports at least 2D tensors, X2 got: {x2.ndim}D")
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"X1 and X2 must have the same number of columns. X1: {x1.shape[-1]} X2: {x2.shape[-1]}")
    if x1.array.dtype.kind != "f":
        raise RuntimeError(f"cdist only supports floating-point dtypes, X1 got: {torch_name(x1.dtype)}")
    if p < 0:
        raise RuntimeError(f"cdist only supports non-negative p values, got {p}")
    diff = sub(x1.unsqueeze(-2), x2.unsqueeze(-3))
    if p == 0:  # how many coordinates differ: piecewise constant, so a zero gradient (through sign's)
        from .reduce import sum as reduce_sum

        return track_saved(reduce_sum(diff.sign().abs(), -1), x1, x2)
    return track_saved(norm(diff, p, dim=-1), x1, x2)  # torch saves both inputs


def cross(input: Tensor, other: Tensor, dim: int | None = None) -> Tensor:
    """The cross product of 3-vectors along ``dim`` (the first dim of size 3 when None)."""
    from .arithmetic import mul, sub
    from .shape import stack

    if input.shape != other.shape:
        shape = np.broadcast_shapes(input.shape, other.shape)
        input, other = input.expand(*shape), other.expand(*shape)
    if dim is None:
        import warnings

        warnings.warn("Using torch.cross without specifying the dim arg is deprecated. Please either pass the dim "
                      "explicitly or simply use torch.linalg.cross.", UserWarning, stacklevel=2)
        dim = next((d for d, n in enumerate(input.shape) if n == 3), None)
        if dim is None:
            raise RuntimeError("no dimension of size 3 in input")
    (axis,) = normalize_dims(dim, input.ndim, "cross")
    if input.shape[axis] != 3:
        raise RuntimeError(f"linalg.cross: inputs dimension {dim} must have length 3. Got {input.shape[axis]} and "
                           f"{other.shape[axis]}")
    a = [input.select(axis, i) for i in range(3)]
    b = [other.select(axis, i) for i in range(3)]
    return stack([sub(mul(a[1], b[2]), mul(a[2], b[1])), sub(mul(a[2], b[0]), mul(a[0], b[2])),
                  sub(mul(a[0], b[1]), mul(a[1], b[0]))], axis)
