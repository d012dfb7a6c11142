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
from ..kernels import attention as K
from ..tensor import Tensor
from .adjoint import value_node


class ScaledDotProductAttention(Function):
    """Inputs: ``q (..., L, E)``, ``k (..., S, E)``, ``v (..., S, Ev)``, then an optional mask (bool: True takes
    part; float: added to the scores) and, with dropout, a uniform draw of the probabilities' shape.

    Fused: the node keeps the probabilities ``p = softmax(q k^T * scale + mask)`` (and the dropout keep-mask);
    backward is ``dv = p^T g``, ``ds = p * (g v^T - rowsum(g v^T * p))``, ``dq = ds k * scale``,
    ``dk = ds^T q * scale``, ``dmask = ds``. The threaded batch slicing is in :mod:`deepgrad.kernels.attention`."""

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
        draw = extra[-1] if dropout_p > 0 else None
        out, self.probs, self.keep = K.attention_forward(q, k, v, mask, mask_kind, is_causal, scale, draw, dropout_p)
        self.q, self.k, self.v = q, k, v
        self.scale, self.mask_kind, self.dropout_p = scale, mask_kind, dropout_p
        self.mask_shape = None if mask is None else mask.shape
        return out

    def backward(self, g):
        g = array_module(g).ascontiguousarray(g)  # the head merge's backward hands a strided view (see forward)
        need = [n is not None for n in self.next[:3]] + [self.mask_kind == "float" and self.next[3] is not None]
        grads = K.attention_backward(g, self.q, self.k, self.v, self.probs, self.keep, self.scale, self.dropout_p,
                                     need, self.mask_shape)
        return (grads + (None,))[:len(self.next)]  # no gradient for the dropout draw

    def backward_graph(self, g):
        """The same formulas in ops. The probabilities re-enter the graph as the softmax of ``delta``, a tensor of
        zeros whose derivative is that of the scores (``q k^T * scale + mask`` minus its own value): the fused
        forward's probabilities, differentiable in q, k and a float mask, with no recomputed softmax."""
        from .arithmetic import sum_to
        from .linalg import matmul
        from .reduce import Softmax

        probs, keep, scale = self.probs, self.keep, self.scale
        dtype = probs.dtype
        need_mask = self.mask_kind == "float" and self.next[3] is not None
        q, k, v = (self._operand(i, a) for i, a in enumerate((self.q, self.k, self.v)))
        delta = None
        if q.requires_grad or k.requires_grad:
            scores = matmul(q * scale, k.transpose(-1, -2))
            delta = scores - Tensor._make(scores.array, None)
        if need_mask:  # only the mask's derivative (the identity) is needed, not its value
            mask = Tensor._make(array_module(probs).zeros(self.mask_shape, dtype=dtype), self.next[3])
            delta = mask.expand(probs.shape) if delta is None else delta + mask
        p = Tensor._make(probs, None) if delta is None else \
            value_node(Softmax, probs, (delta.grad_fn,), out=probs, dim=probs.ndim - 1)
        kept = None if keep is None else Tensor._make((keep * K._inv_keep(dtype, self.dropout_p)).astype(dtype), None)
        weights = p if kept is None else p * kept
        gq = gk = gv = gmask = None
        if self.next[2] is not None:
            gv = sum_to(matmul(weights.transpose(-1, -2), g), v.shape)
        if self.next[0] is not None or self.next[1] is not None or need_mask:
            grad_w = matmul(g, v.transpose(-1, -2))  # d loss / d weights
            if kept is not None:
                grad_w = grad_w * kept
            ds = p * (grad_w - (grad_w * p).sum(-1, keepdim=True))  # d loss / d scores
            if self.next[0] is not None:
                gq = sum_to(matmul(ds, k) * scale, q.shape)
            if self.next[1] is not None:
                gk = sum_to(matmul(ds.transpose(-1, -2), q) * scale, k.shape)
            if need_mask:
                gmask = sum_to(ds, self.mask_shape)
        return (gq, gk, gv, gmask, None)[:len(self.next)]

    def _operand(self, i: int, array) -> Tensor:
        """Input ``i`` for the differentiable backward: the saved tensor; a constant when it needs no gradient; or,
        when torch does not save it (its own gradient does not read it), this node's contiguous copy of it routed
        to its edge — read only where its value cancels or is not needed (see the saved spec above)."""
        if self.next[i] is None:
            return Tensor._make(array, None)
        try:
            return self.saved_input(i)
        except RuntimeError:
            return Tensor._make(array, self.next[i])


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
