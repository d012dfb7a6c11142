"""Embedding lookup: rows of a weight matrix picked by integer indices (torch's F.embedding).

>>> w = deepgrad.randn(10, 3, requires_grad=True)
>>> embedding(deepgrad.tensor([[1, 2], [4, 1]]), w).shape
(2, 2, 3)
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function
from ..backend import array_module
from ..tensor import Tensor


class Embedding(Function):
    """Fused gather with a scatter-add backward (repeated indices accumulate; the padding
    row gets no gradient)."""

    saved = ((1,), ())

    def forward(self, weight, indices, padding_idx, scale_grad_by_freq):
        self.shape, self.indices = weight.shape, indices
        self.padding_idx, self.scale_grad_by_freq = padding_idx, scale_grad_by_freq
        return weight[indices]

    def backward(self, g):
        xp = array_module(g)
        idx = self.indices.reshape(-1)
        g2 = g.reshape(idx.size, self.shape[1])
        if self.scale_grad_by_freq:  # divide by how often each index occurs in the batch
            counts = xp.bincount(idx, minlength=self.shape[0]).astype(g.dtype)
            g2 = g2 / counts[idx][:, None]
        gw = xp.zeros(self.shape, dtype=g.dtype)
        backend.scatter_add(gw, idx, g2)
        if self.padding_idx is not None:
            gw[self.padding_idx] = 0
        return gw

    def backward_graph(self, g):
        from .adjoint import index_scatter

        xp = array_module(g.array)
        idx = self.indices
        keep = None
        if self.scale_grad_by_freq:
            keep = 1 / xp.bincount(idx.reshape(-1), minlength=self.shape[0])[idx]
        if self.padding_idx is not None:
            pad = idx != self.padding_idx
            keep = pad if keep is None else keep * pad
        if keep is not None:  # a constant per looked-up row
            g = g * Tensor._make(keep[..., None].astype(g.array.dtype), None)
        return index_scatter(g, self.shape, None, (idx,), True)


def _renorm_(weight: Tensor, indices, max_norm: float, norm_type: float) -> None:
    """Rescale (in place, untracked) the referenced rows whose norm exceeds ``max_norm``."""
    xp = array_module(weight.array)
    rows = xp.unique(indices.reshape(-1))
    selected = weight.array[rows]
    if norm_type == float("inf"):
        norms = xp.abs(selected).max(axis=1)
    else:
        norms = (xp.abs(selected) ** norm_type).sum(axis=1) ** (1.0 / norm_type)
    scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(selected.dtype)
    weight.array[rows] = selected * scale[:, None]


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None, max_norm: float | None = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Look up rows of ``weight`` (num_embeddings, dim) for integer ``input`` of any shape.

    ``padding_idx``: that row receives no gradient. ``max_norm``: referenced rows with a larger
    ``norm_type``-norm are renormalised in place first, as torch does. ``sparse`` is accepted for
    torch compatibility; the gradient is always a dense array.

    >>> embedding(deepgrad.tensor([0, 2]), deepgrad.eye(3)).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    idx = input.array if isinstance(input, Tensor) else np.asarray(input)
    if weight.ndim != 2:
        raise RuntimeError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got {tuple(weight.shape)}")
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"embedding: expected an integer index tensor (int64 or int32), got {idx.dtype}")
    if type(idx) is not type(weight.array):
        idx = backend.move_to(idx, weight.device)
    num = weight.shape[0]
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= num):
        bad = int(idx.min()) if int(idx.min()) < 0 else int(idx.max())
        raise IndexError(f"embedding: index {bad} is out of range for a weight of shape {tuple(weight.shape)}")
    if padding_idx is not None:
        if not -num <= padding_idx < num:
            raise ValueError(f"embedding: padding_idx {padding_idx} must be within num_embeddings ({num})")
        padding_idx %= num
    if max_norm is not None:
        _renorm_(weight, idx, float(max_norm), float(norm_type))
    # The index tensor is an input of the node (torch saves it): an in-place change to it before the
    # backward is then caught by its version counter instead of silently moving the gradient.
    index = input if isinstance(input, Tensor) and input.array is idx else Tensor._make(idx, None)
    return Embedding.apply(weight, index, padding_idx=padding_idx, scale_grad_by_freq=scale_grad_by_freq)
