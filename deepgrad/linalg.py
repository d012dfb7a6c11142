"""``deepgrad.linalg``: torch.linalg's everyday functions — norms, inverse, determinant, solve, Cholesky,
singular values, matrix_power, multi_dot, cross, vecdot — with gradients (see ops/linalg_matrix.py).

Left out (their gradients need the full eigen/singular-vector machinery): eig, eigh, eigvals, svd, qr, lu,
lstsq, pinv, matrix_rank, matrix_exp.

>>> import deepgrad as dg
>>> dg.linalg.solve(dg.tensor([[2.0, 0.0], [0.0, 4.0]]), dg.tensor([2.0, 2.0]))
tensor([1.0000, 0.5000])
"""

from __future__ import annotations

import builtins
import math
from collections import namedtuple

from .backend import array_module
from .ops import reduce as _R
from .ops.diagonal import diagonal as _diagonal
from .ops.elementwise import cast as _cast
from .ops.linalg import cross as _cross
from .ops.linalg import matmul  # noqa: F401  (torch.linalg.matmul)
from .ops.linalg import norm as _vector_norm_op
from .ops.linalg_matrix import (
    Cholesky,
    Det,
    Inverse,
    LinAlgError,  # noqa: F401  (torch.linalg.LinAlgError)
    SingularValues,
    SlogDet,
    Solve,
    square_check,
)
from .tensor import Tensor


def inv(A: Tensor) -> Tensor:
    """The inverse of each square matrix (LinAlgError, a RuntimeError, when one is singular)."""
    square_check("inv", A)
    return Inverse.apply(A)


def det(A: Tensor) -> Tensor:
    """The determinant of each square matrix; its gradient is the cofactor matrix (0 at an exactly singular
    matrix, as torch's)."""
    square_check("det", A)
    return Det.apply(A)


slogdet_result = namedtuple("slogdet", ["sign", "logabsdet"])


def slogdet(A: Tensor):
    """(sign, log|det|) of each square matrix, stable where det would under- or overflow."""
    square_check("slogdet", A)
    return slogdet_result(*SlogDet.apply(A))


def logdet(A: Tensor) -> Tensor:
    """log(det(A)): NaN where the determinant is negative, -inf where it is 0."""
    from .ops.elementwise import where

    sign, logabs = slogdet(A)
    return where(sign < 0, float("nan"), where(sign == 0, float("-inf"), logabs))


def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:
    """X with A X = B (batches broadcast; B of shape A.shape[:-1] is a batch of vectors)."""
    if not left:
        return solve(A.mT, B.mT).mT
    square_check("solve", A)
    if A.array.dtype != B.array.dtype:
        from .ops.promotion import torch_name

        raise RuntimeError(f"linalg.solve: Expected A and B to have the same dtype, but found A of type "
                           f"{torch_name(A.dtype)} and B of type {torch_name(B.dtype)} instead")
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))
    rows = B.shape[-1] if vector else B.shape[-2] if B.ndim >= 2 else None
    if rows != A.shape[-1]:
        raise RuntimeError(f"linalg.solve: Incompatible shapes of A and B for the equation AX = B "
                           f"({'x'.join(map(str, A.shape[-2:]))} and {'x'.join(map(str, B.shape))})")
    return Solve.apply(A, B, vector=vector)


def cholesky(A: Tensor, *, upper: bool = False) -> Tensor:
    """The Cholesky factor L (A = L L^T) of each symmetric positive-definite matrix (U = L^T with ``upper``)."""
    square_check("cholesky", A)
    return Cholesky.apply(A, upper=upper)


def svdvals(A: Tensor) -> Tensor:
    """The singular values of each matrix, largest first."""
    if A.ndim < 2:
        raise RuntimeError("linalg.svd: The input tensor A must have at least 2 dimensions.")
    return SingularValues.apply(A)


def _zeros_in_graph(x: Tensor) -> Tensor:
    """Zeros shaped like ``x`` that stay in its graph with a zero gradient (a piecewise-constant result)."""
    from .creation import as_tensor

    return x.masked_fill(as_tensor(array_module(x.array).ones((), dtype=bool)), 0)


def vector_norm(x: Tensor, ord=2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """The vector ``ord``-norm over ``dim`` (all elements when None): ord any positive number, inf, -inf or 0."""
    if dtype is not None:
        x = _cast(x, dtype)
    if ord == 0:  # how many are non-zero: piecewise constant, so a zero gradient (through masked_fill's)
        zeros = _zeros_in_graph(x)
        return _R.sum((x != 0).to(x.dtype) + zeros, dim, keepdim)
    if ord == -math.inf:
        return _R.amin(x.abs(), () if dim is None else dim, keepdim)
    if ord < 0:  # the same formula as for positive ord (0 where the norm is 0, as torch)
        import numpy as np

        from .ops.linalg import VectorNorm

        with np.errstate(divide="ignore"):
            return VectorNorm.apply(x, p=float(ord), axes=_R.normalize_dims(dim, x.ndim, "vector_norm"),
                                    keepdim=keepdim)
    return _vector_norm_op(x, ord, dim, keepdim)


def matrix_norm(A: Tensor, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None) -> Tensor:
    """The matrix norm over the two ``dim``: 'fro', 'nuc', 1, -1, 2, -2, inf, -inf (torch's definitions)."""
    if dtype is not None:
        A = _cast(A, dtype)
    if A.ndim < 2:
        raise RuntimeError("linalg.matrix_norm: The input tensor A must have at least 2 dimensions.")
    d0, d1 = (d % A.ndim for d in dim)
    if ord == "fro":
        return _vector_norm_op(A, 2, (d0, d1), keepdim)
    if ord in ("nuc", 2, -2):
        moved = A.movedim((d0, d1), (-2, -1))
        s = svdvals(moved)
        out = _R.sum(s, -1) if ord == "nuc" else (_R.amax(s, -1) if ord == 2 else _R.amin(s, -1))
        if keepdim:
            out = out.unsqueeze(-1).unsqueeze(-1).movedim((-2, -1), (d0, d1))
        return out
    if ord in (1, -1, math.inf, -math.inf):
        along, across = (d0, d1) if abs(ord) == 1 else (d1, d0)  # 1: max column sum; inf: max row sum
        sums = _R.sum(A.abs(), along, True)
        pick = _R.amax if ord > 0 else _R.amin
        out = pick(sums, across, True)
        return out if keepdim else out.squeeze((d0, d1))
    raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")


def norm(A: Tensor, ord=None, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """torch.linalg.norm: a matrix norm over two dims (given, or of a 2-D input with an ``ord``), else a vector
    norm (of all elements when ``dim`` and ``ord`` are None)."""
    if isinstance(dim, int):
        dim = (dim,)
    if (dim is not None and len(dim) == 2) or (dim is None and ord is not None and A.ndim == 2):
        return matrix_norm(A, "fro" if ord is None else ord, (-2, -1) if dim is None else dim, keepdim, dtype=dtype)
    if ord is not None and dim is None and A.ndim != 1:
        raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. Got "
                           f"{A.ndim}D.")
    return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)


def matrix_power(A: Tensor, n: int) -> Tensor:
    """A multiplied by itself ``n`` times (the identity for 0, powers of the inverse for n < 0)."""
    from .creation import eye

    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise RuntimeError("linalg.matrix_power: A must be batches of square matrices")
    if n == 0:  # the identity, still in the graph with a zero gradient (as torch's)
        zeros = _zeros_in_graph(A)
        return zeros + eye(A.shape[-1], dtype=A.dtype, device=A.device)
    base = inv(A) if n < 0 else A
    result, n = None, builtins.abs(n)
    while n:  # binary exponentiation: log2(n) products
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return result * 1 if result is A else result


def multi_dot(tensors) -> Tensor:
    """The product of a chain of matrices (the first and last may be vectors)."""
    tensors = list(tensors)
    if len(tensors) < 2:
        raise RuntimeError(f"multi_dot(): expected at least 2 tensors but got {len(tensors)}")
    out = tensors[0]
    for t in tensors[1:]:
        out = matmul(out, t)
    return out


def cross(input: Tensor, other: Tensor, *, dim: int = -1) -> Tensor:
    """The cross product of 3-vectors along ``dim`` (default: the last)."""
    return _cross(input, other, dim)


def vecdot(x: Tensor, y: Tensor, *, dim: int = -1) -> Tensor:
    """Sum of x * y along ``dim``."""
    return _R.sum(x * y, dim)


def diagonal(A: Tensor, *, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """The diagonals of the matrices in the last two dims (a view)."""
    return _diagonal(A, offset, dim1, dim2)
