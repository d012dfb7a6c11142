"""Scaled dot-product attention as one fused node: ``softmax(q k^T * scale + mask) v``.

Fused because it pays: composed from matmul, add, softmax and dropout nodes, the graph would keep the
scores, the masked scores, the probabilities and the dropped probabilities, four (..., L, S) arrays per
call. This node keeps the probabilities (and a one-byte keep-mask when dropout is on) and nothing else of
that size; the backward recomputes what it needs from them.

Rows whose keys are all masked out get zero weights (output 0, gradient 0), as torch 2.13's
``scaled_dot_product_attention`` gives them, instead of the NaN of a plain softmax over ``-inf``.

>>> q = k = v = deepgrad.randn(2, 4, 10, 16)             # (batch, heads, length, head dim)
>>> scaled_dot_product_attention(q, k, v, is_causal=True).shape
(2, 4, 10, 16)
"""

from __future__ import annotations

import math

import numpy as np

from .. import creation
from ..autograd import Function
from ..backend import array_module
from ..parallel import over_batch
from ..tensor import Tensor
from .elementwise import unbroadcast


def causal_keep(length: int, source_length: int, xp=np):
    """The causal pattern as torch draws it: query ``i`` sees keys ``j <= i`` (top-left aligned)."""
    return xp.tril(xp.ones((length, source_length), dtype=bool))


def masked_softmax_(scores):
    """Softmax over the last axis, in place, with fully masked (all ``-inf``) rows set to 0 instead of NaN."""
    xp = array_module(scores)
    if scores.shape[-1] == 0:
        return scores
    top = scores.max(axis=-1, keepdims=True)
    top[~xp.isfinite(top)] = 0  # an all -inf row: exp(-inf - 0) = 0 below, not exp(nan)
    scores -= top
    np.exp(scores, out=scores)
    total = scores.sum(axis=-1, keepdims=True)
    total[total == 0] = 1  # the all-masked rows stay exactly 0
    scores /= total
    return scores


class ScaledDotProductAttention(Function):
    """Inputs: ``q (..., L, E)``, ``k (..., S, E)``, ``v (..., S, Ev)``, then an optional mask (bool: True takes
    part; float: added to the scores) and, with dropout, a uniform draw of the probabilities' shape.

    Both passes work on slices of the leading (batch) dim, which :func:`deepgrad.parallel.over_batch` hands to
    deepgrad's threads when the weights are big enough to pay (one slice, the whole batch, otherwise); every
    element is computed the same way whatever the split."""

    # What torch's math attention saves for each input's gradient: q needs k and v, k needs q and v, v only the
    # probabilities (its own), a float mask needs v.
    saved = ((1, 2), (0, 2), (), (2,))

    def forward(self, q, k, v, *extra, scale, is_causal, mask_kind, dropout_p):
        xp = array_module(q)
        # Heads split off a (N, L, H, E) projection arrive as strided views; NumPy's batched matmul runs such
        # operands through its slow non-BLAS loop (measured: q k^T for 16x2 heads of 257x16 took 45 ms as views,
        # 1.3 ms contiguous), so one copy of each input (size L x E, small beside the L x S weights) pays.
        q, k, v = xp.ascontiguousarray(q), xp.ascontiguousarray(k), xp.ascontiguousarray(v)
        mask = extra[0] if mask_kind is not None else None
        batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
        probs = xp.empty(batch + (q.shape[-2], k.shape[-2]), dtype=q.dtype)
        out = xp.empty(batch + (q.shape[-2], v.shape[-1]), dtype=q.dtype)
        self.keep = xp.empty(probs.shape, dtype=bool) if dropout_p > 0 else None
        self.inv_keep = q.dtype.type(1.0 / (1.0 - dropout_p) if dropout_p < 1 else 0.0)
        causal = causal_keep(q.shape[-2], k.shape[-2], xp) if is_causal else None
        qs = q * q.dtype.type(scale)

        def rows(lo, hi):
            part = _rows(lo, hi, probs.ndim)
            scores = xp.matmul(part(qs), xp.swapaxes(part(k), -1, -2), out=probs[lo:hi])
            if mask_kind == "float":
                scores += part(mask)
            elif mask_kind == "bool":
                xp.copyto(scores, -np.inf, where=~part(mask))
            if causal is not None:
                xp.copyto(scores, -np.inf, where=~causal)
            weights = masked_softmax_(scores)
            if self.keep is not None:
                keep = xp.greater_equal(part(extra[-1]), dropout_p, out=self.keep[lo:hi])  # P(keep) = 1 - p
                weights = weights * keep  # a copy: the probabilities stay saved for backward
                weights *= self.inv_keep
            xp.matmul(weights, part(v), out=out[lo:hi])

        if probs.ndim > 2:
            over_batch(probs, rows)
        else:  # (L, S): no batch dim to split
            rows(0, probs.shape[0])
        self.q, self.k, self.v, self.probs = q, k, v, probs
        self.scale, self.mask_kind = scale, mask_kind
        self.mask_shape = None if mask is None else mask.shape
        return out

    def backward(self, g):
        xp = array_module(g)
        g = xp.ascontiguousarray(g)  # the head merge's backward hands a strided view (see forward)
        q, k, v, probs = self.q, self.k, self.v, self.probs
        need = [n is not None for n in self.next]
        need_mask = self.mask_kind == "float" and need[3]
        grads = [xp.empty(t.shape, t.dtype) if need[i] else None for i, t in enumerate((q, k, v))]
        grad_s = xp.empty(probs.shape, probs.dtype) if need_mask else None
        scale = q.dtype.type(self.scale)

        # Slices only when every input has the whole batch dim: a broadcast input's gradient sums across slices.
        split = probs.ndim > 2 and all(t.ndim == probs.ndim and t.shape[0] == probs.shape[0] for t in (q, k, v))

        def rows(lo, hi):
            part = _rows(lo, hi, probs.ndim if split else 0)
            p, gp = part(probs), part(g)
            keep = None if self.keep is None else part(self.keep)
            if need[2]:
                weights = p if keep is None else p * keep * self.inv_keep
                part(grads[2])[...] = unbroadcast(xp.matmul(xp.swapaxes(weights, -1, -2), gp), part(grads[2]).shape)
            if not (need[0] or need[1] or need_mask):
                return
            grad_w = xp.matmul(gp, xp.swapaxes(part(v), -1, -2))  # d loss / d weights, (..., L, S)
            if keep is not None:
                grad_w *= keep
                grad_w *= self.inv_keep
            # softmax backward, in place: ds = p * (dp - sum(dp * p))
            grad_w -= xp.einsum("...ij,...ij->...i", grad_w, p)[..., None]
            grad_w *= p
            if need[0]:
                part(grads[0])[...] = unbroadcast(xp.matmul(grad_w, part(k)) * scale, part(grads[0]).shape)
            if need[1]:
                part(grads[1])[...] = unbroadcast(xp.matmul(xp.swapaxes(grad_w, -1, -2), part(q)) * scale,
                                                  part(grads[1]).shape)
            if need_mask:
                part(grad_s)[...] = grad_w

        if split:
            over_batch(probs, rows)
        else:
            rows(0, probs.shape[0])
        grads.append(unbroadcast(grad_s, self.mask_shape) if need_mask else None)
        return tuple(grads[:3] + grads[3:len(self.next)] + [None] * (len(self.next) - 4))


def _rows(lo: int, hi: int, ndim: int):
    """Slicer of operands for batch rows ``lo:hi`` of an ``ndim``-dim result (ndim > 2): an operand that has the
    whole leading dim is sliced, one that broadcasts along it (leading size 1, or fewer dims) is used whole.
    With ``ndim`` <= 2 there is no batch dim and every operand is used whole."""
    def part(a):
        return a[lo:hi] if ndim > 2 and a.ndim == ndim and a.shape[0] != 1 else a

    return part


def _broadcast(shapes: list, what: str) -> tuple:
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        raise RuntimeError(f"scaled_dot_product_attention: the batch dims of {what} "
                           f"({', '.join(str(tuple(s)) for s in shapes)}) do not broadcast") from None


def _check(query: Tensor, key: Tensor, value: Tensor, attn_mask, dropout_p: float, is_causal: bool) -> None:
    name = "scaled_dot_product_attention"
    for t, what in ((query, "query"), (key, "key"), (value, "value")):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: {what} must be a Tensor, got {type(t).__name__}")
    if min(query.ndim, key.ndim, value.ndim) < 2:
        raise RuntimeError(f"{name}: expected query, key, and value to all be at least 2 dimensional, but got "
                           f"query.dim: {query.ndim} key.dim: {key.ndim} and value.dim: {value.ndim} instead.")
    if not (query.dtype == key.dtype == value.dtype):
        raise RuntimeError(f"{name}: expected query, key, and value to have the same dtype, but got query.dtype: "
                           f"{query.dtype} key.dtype: {key.dtype} and value.dtype: {value.dtype} instead.")
    if query.dtype.kind != "f":
        raise RuntimeError(f"{name}: expected floating point query, key and value, got {query.dtype}")
    if not (query.device == key.device == value.device):
        raise RuntimeError(f"{name}: expected query, key and value on the same device, got {query.device}, "
                           f"{key.device} and {value.device}")
    if query.shape[-1] != key.shape[-1]:
        raise RuntimeError(f"{name}: query {tuple(query.shape)} and key {tuple(key.shape)} must have the same "
                           f"embedding size (last dim)")
    if key.shape[-2] != value.shape[-2]:
        raise RuntimeError(f"{name}: key {tuple(key.shape)} and value {tuple(value.shape)} must have the same "
                           f"sequence length (dim -2)")
    if not 0.0 <= dropout_p <= 1.0:
        raise RuntimeError(f"dropout probability has to be between 0 and 1, but got {dropout_p}")
    if attn_mask is None:
        return
    if is_causal:
        raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be set when is_causal=True")
    if not isinstance(attn_mask, Tensor):
        raise TypeError(f"{name}: attn_mask must be a Tensor or None, got {type(attn_mask).__name__}")
    if attn_mask.dtype != np.bool_ and attn_mask.dtype != query.dtype:
        raise RuntimeError(f"Expected attn_mask dtype to be bool or float or to match query dtype, but got "
                           f"attn_mask.dtype: {attn_mask.dtype} and  query.dtype: {query.dtype} instead.")
    if attn_mask.device != query.device:
        raise RuntimeError(f"{name}: attn_mask is on {attn_mask.device} but query is on {query.device}")


def _group_heads(query: Tensor, key: Tensor, value: Tensor, attn_mask):
    """Grouped-query attention without copies: query heads (..., Hq, L, E) become (..., Hk, Hq/Hk, L, E) and
    key/value heads get a singleton group axis, so query head h reads key/value head h // (Hq/Hk)."""
    hq, hk = query.shape[-3], key.shape[-3]
    if value.shape[-3] != hk or hq % hk:
        raise RuntimeError(f"scaled_dot_product_attention: number of heads in key and value must divide the number "
                           f"of heads in query (query {tuple(query.shape)}, key {tuple(key.shape)}, value "
                           f"{tuple(value.shape)})")
    group = hq // hk

    def single(t):
        return t.reshape(tuple(t.shape[:-2]) + (1,) + tuple(t.shape[-2:]))

    query = query.reshape(tuple(query.shape[:-3]) + (hk, group) + tuple(query.shape[-2:]))
    if attn_mask is not None and attn_mask.ndim >= 3:
        if attn_mask.shape[-3] == hq and hq != 1:
            attn_mask = attn_mask.reshape(tuple(attn_mask.shape[:-3]) + (hk, group) + tuple(attn_mask.shape[-2:]))
        else:
            attn_mask = single(attn_mask)
    return query, single(key), single(value), attn_mask


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None,
                                 dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """``softmax(query @ key^T * scale + mask) @ value`` over the last two dims (torch's semantics).

    ``attn_mask``: bool (True = may attend) or float (added to the scores; a float mask that requires grad
    gets a gradient), broadcast to (..., L, S). ``is_causal``: query i attends to keys j <= i.
    ``dropout_p`` drops attention weights whatever the mode (pass 0 in eval, as nn.MultiheadAttention does).
    ``scale`` defaults to 1 / sqrt(E). ``enable_gqa``: key/value may have fewer heads (dim -3) than query.

    >>> q, k, v = deepgrad.randn(3, 5, 8), deepgrad.randn(3, 7, 8), deepgrad.randn(3, 7, 4)
    >>> scaled_dot_product_attention(q, k, v).shape
    (3, 5, 4)
    """
    _check(query, key, value, attn_mask, dropout_p, is_causal)
    out_lead = None
    if enable_gqa and min(query.ndim, key.ndim, value.ndim) >= 3 and query.shape[-3] != key.shape[-3]:
        out_lead = tuple(query.shape[:-1])
        query, key, value, attn_mask = _group_heads(query, key, value, attn_mask)
    batch = _broadcast([query.shape[:-2], key.shape[:-2], value.shape[:-2]], "query, key and value")
    length, source = query.shape[-2], key.shape[-2]
    probs_shape = batch + (length, source)
    try:
        mask_fits = attn_mask is None or np.broadcast_shapes(attn_mask.shape, probs_shape) == probs_shape
    except ValueError:
        mask_fits = False
    if not mask_fits:
        raise RuntimeError(f"scaled_dot_product_attention: attn_mask of shape {tuple(attn_mask.shape)} does not "
                           f"broadcast to the attention weights' shape {probs_shape}")
    inputs = [query, key, value]
    mask_kind = None
    if attn_mask is not None:
        mask_kind = "bool" if attn_mask.dtype == np.bool_ else "float"
        inputs.append(attn_mask)
    if dropout_p > 0:
        inputs.append(creation.rand(probs_shape, dtype=query.dtype, device=query.device))
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    out = ScaledDotProductAttention.apply(*inputs, scale=scale, is_causal=bool(is_causal), mask_kind=mask_kind,
                                          dropout_p=float(dropout_p))
    return out if out_lead is None else out.reshape(out_lead + (value.shape[-1],))
