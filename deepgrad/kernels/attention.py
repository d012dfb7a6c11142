"""Scaled dot-product attention kernels: ``softmax(q k^T * scale + mask) v`` and its backward, over slices of
the leading (batch) dim, which :func:`deepgrad.kernels.parallel.over_batch` hands to deepgrad's threads when the
weights are big enough to pay (one slice, the whole batch, otherwise). Every element is computed the same way
whatever the split, so threads change no bit. :func:`attention_forward_reference` and
:func:`attention_backward_reference` are the plain formulas on whole arrays.

The softmax and its backward are :mod:`.softmax`'s (compiled rows for float32 when numba is installed).
Rows whose keys are all masked out get zero weights (output 0, gradient 0), as torch 2.13's
``scaled_dot_product_attention`` gives them, instead of the NaN of a plain softmax over ``-inf``.
"""

from __future__ import annotations

import numpy as np

from ..backend import array_module
from .arrays import unbroadcast
from .parallel import over_batch
from .softmax import masked_softmax_, softmax_backward_


def causal_keep(length: int, source_length: int, xp=np):
    """The causal pattern as torch draws it: query ``i`` sees keys ``j <= i`` (top-left aligned)."""
    return xp.tril(xp.ones((length, source_length), dtype=bool))


def _rows(lo: int, hi: int, ndim: int):
    """Slicer of operands for batch rows ``lo:hi`` of an ``ndim``-dim result (ndim > 2): an operand that has the
    whole leading dim is sliced, one that broadcasts along it (leading size 1, or fewer dims) is used whole.
    With ``ndim`` <= 2 there is no batch dim and every operand is used whole."""
    def part(a):
        return a[lo:hi] if ndim > 2 and a.ndim == ndim and a.shape[0] != 1 else a

    return part


def _over_rows(probs, rows, split: bool) -> None:
    if split:
        over_batch(probs, rows)
    else:  # no batch dim to split (or an input broadcast along it)
        rows(0, probs.shape[0])


def attention_forward(q, k, v, mask=None, mask_kind=None, is_causal: bool = False, scale: float = 1.0,
                      dropout_draw=None, dropout_p: float = 0.0) -> tuple:
    """``(output, probabilities, keep mask or None)`` of attention over contiguous ``q (..., L, E)``,
    ``k (..., S, E)``, ``v (..., S, Ev)``. ``mask_kind``: None, ``"bool"`` (True takes part) or ``"float"``
    (added to the scores). With dropout, ``dropout_draw`` is a uniform draw of the probabilities' shape and a
    weight is kept where it is >= ``dropout_p`` (then scaled by 1 / (1 - p)); the probabilities returned are
    the undropped ones."""
    xp = array_module(q)
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    probs = xp.empty(batch + (q.shape[-2], k.shape[-2]), dtype=q.dtype)
    out = xp.empty(batch + (q.shape[-2], v.shape[-1]), dtype=q.dtype)
    keep = xp.empty(probs.shape, dtype=bool) if dropout_p > 0 else None
    inv_keep = _inv_keep(q.dtype, dropout_p)
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
        if keep is not None:
            kept = xp.greater_equal(part(dropout_draw), dropout_p, out=keep[lo:hi])  # P(keep) = 1 - p
            weights = weights * kept  # a copy: the probabilities stay saved for backward
            weights *= inv_keep
        xp.matmul(weights, part(v), out=out[lo:hi])

    _over_rows(probs, rows, probs.ndim > 2)
    return out, probs, keep


def _inv_keep(dtype, dropout_p: float):
    return dtype.type(1.0 / (1.0 - dropout_p) if dropout_p < 1 else 0.0)


def _t_times(weights, x):
    """``swapaxes(weights) @ x`` for (..., L, S) weights and a thin (..., L, E) ``x``, computed as ``swapaxes(x) @
    weights`` and returned transposed (a view): OpenBLAS runs (E, L) x (L, S) products, with their wide N, faster
    than (S, L) x (L, E) ones (64 slices of (256, 256) x (256, 16) float32 on one thread: 3.8 against 5.1 ms)."""
    xp = array_module(weights)
    return xp.swapaxes(xp.matmul(xp.swapaxes(x, -1, -2), weights), -1, -2)


def attention_backward(g, q, k, v, probs, keep, scale: float, dropout_p: float, need: tuple, mask_shape=None):
    """Gradients ``(gq, gk, gv, gmask)`` of :func:`attention_forward` from its output gradient ``g`` (contiguous),
    each only where ``need`` (four bools: q, k, v, float mask) asks (else None); ``mask_shape`` is the float
    mask's shape, which its gradient is summed back to."""
    xp = array_module(g)
    inv_keep = _inv_keep(q.dtype, dropout_p)
    grads = [xp.empty(t.shape, t.dtype) if need[i] else None for i, t in enumerate((q, k, v))]
    grad_s = xp.empty(probs.shape, probs.dtype) if need[3] else None
    scale = q.dtype.type(scale)
    # Slices only when every input has the whole batch dim: a broadcast input's gradient sums across slices.
    split = probs.ndim > 2 and all(t.ndim == probs.ndim and t.shape[0] == probs.shape[0] for t in (q, k, v))

    def rows(lo, hi):
        part = _rows(lo, hi, probs.ndim if split else 0)
        p, gp = part(probs), part(g)
        kept = None if keep is None else part(keep)
        if need[2]:
            weights = p if kept is None else p * kept * inv_keep
            part(grads[2])[...] = unbroadcast(_t_times(weights, gp), part(grads[2]).shape)
        if not (need[0] or need[1] or need[3]):
            return
        grad_w = xp.matmul(gp, xp.swapaxes(part(v), -1, -2))  # d loss / d weights, (..., L, S)
        if kept is not None:
            grad_w *= kept
            grad_w *= inv_keep
        softmax_backward_(grad_w, p)  # in place: ds = p * (dp - sum(dp * p))
        if need[0]:
            part(grads[0])[...] = unbroadcast(xp.matmul(grad_w, part(k)) * scale, part(grads[0]).shape)
        if need[1]:
            part(grads[1])[...] = unbroadcast(_t_times(grad_w, part(q)) * scale, part(grads[1]).shape)
        if need[3]:
            part(grad_s)[...] = grad_w

    _over_rows(probs, rows, split)
    return grads[0], grads[1], grads[2], (unbroadcast(grad_s, mask_shape) if need[3] else None)


# ----------------------------------------------------------------------------- references
def attention_forward_reference(q, k, v, mask=None, mask_kind=None, is_causal: bool = False, scale: float = 1.0,
                                dropout_draw=None, dropout_p: float = 0.0) -> tuple:
    """:func:`attention_forward` as the formula on whole arrays."""
    xp = array_module(q)
    scores = (q @ xp.swapaxes(k, -1, -2)) * q.dtype.type(scale)
    allowed = xp.ones(scores.shape, dtype=bool)
    if mask_kind == "float":
        scores = scores + mask
    elif mask_kind == "bool":
        allowed = allowed & mask
    if is_causal:
        allowed = allowed & causal_keep(q.shape[-2], k.shape[-2], xp)
    scores = xp.where(allowed, scores, -np.inf)
    live = (scores > -np.inf).any(axis=-1, keepdims=True)  # rows with a key left
    e = xp.exp(scores - xp.where(live, scores.max(axis=-1, keepdims=True), 0))
    probs = xp.where(live, e / xp.where(live, e.sum(axis=-1, keepdims=True), 1), 0).astype(q.dtype)
    keep = None if dropout_p == 0 else dropout_draw >= dropout_p
    weights = probs if keep is None else probs * keep * _inv_keep(q.dtype, dropout_p)
    return weights @ v, probs, keep


def attention_backward_reference(g, q, k, v, probs, keep, scale: float, dropout_p: float, mask_shape=None):
    """:func:`attention_backward`'s four gradients as the formulas on whole arrays."""
    xp = array_module(g)
    weights = probs if keep is None else probs * keep * _inv_keep(q.dtype, dropout_p)
    gv = xp.swapaxes(weights, -1, -2) @ g
    grad_w = g @ xp.swapaxes(v, -1, -2)
    if keep is not None:
        grad_w = grad_w * keep * _inv_keep(q.dtype, dropout_p)
    grad_s = probs * (grad_w - (grad_w * probs).sum(axis=-1, keepdims=True))
    gq = grad_s @ k * q.dtype.type(scale)
    gk = xp.swapaxes(grad_s, -1, -2) @ q * q.dtype.type(scale)
    grads = (unbroadcast(gq, q.shape), unbroadcast(gk, k.shape), unbroadcast(gv, v.shape))
    return grads + ((unbroadcast(grad_s, mask_shape) if mask_shape is not None else None),)
