"""Attention: scaled dot-product attention forward and backward (causal and boolean masks), and the split of an
embedding into heads and back, as nn.MultiheadAttention does it."""

from __future__ import annotations

import numpy as np

from ..exercise import Case, Exercise, Mistake, Mutant
from ._util import T, arr, autograd_reference, grad_case, normal, pick, src


# ----------------------------------------------------------------------------- shared: shapes, masks, NumPy variants
def _qkv(rng, lead: tuple, length: int, source: int, e: int, ev: int, dtype, scale: float = 1.0) -> dict:
    return {"q": normal(rng, lead + (length, e), dtype, scale), "k": normal(rng, lead + (source, e), dtype, scale),
            "v": normal(rng, lead + (source, ev), dtype)}


def _lead(rng, ndim: int) -> tuple:
    """Leading (batch, head) dims: none, (B,) or (B, H), sizes 1-4."""
    return tuple(int(d) for d in rng.integers(1, 5, size=ndim))


def _sizes(rng) -> tuple[int, int, int, int]:
    """L, S, E, Ev in 1-7 (non-powers of two included); E >= 2 so that the 1/sqrt(E) scale shows."""
    return int(rng.integers(1, 6)), int(rng.integers(1, 6)), int(rng.integers(2, 8)), int(rng.integers(1, 6))


def _bool_mask(rng, shape: tuple, blocked_row: bool) -> np.ndarray:
    """A random True/False mask; with ``blocked_row``, one query row (the last) sees no key at all."""
    mask = rng.random(shape) < 0.6
    if blocked_row:
        mask[..., -1, :] = False
    return mask


def _attn_np(q, k, v, attn_mask=None, is_causal=False, scale=True, after=False, axis=-1, bottom_right=False):
    """Attention in float64 NumPy, with a switch per classic mistake (for the recognisers)."""
    q, k, v = (np.asarray(t, np.float64) for t in (q, k, v))
    length, source = q.shape[-2], k.shape[-2]
    scores = q @ np.swapaxes(k, -1, -2) / (np.sqrt(q.shape[-1]) if scale else 1.0)
    if is_causal:
        attn_mask = np.tril(np.ones((length, source), bool), k=source - length if bottom_right else 0)
    if attn_mask is not None and not after:
        scores = np.where(attn_mask, scores, -np.inf)
    top = scores.max(axis=axis, keepdims=True)
    e = np.exp(scores - np.where(np.isfinite(top), top, 0))
    total = e.sum(axis=axis, keepdims=True)
    weights = e / np.where(total == 0, 1, total)
    if attn_mask is not None and after:
        weights = weights * attn_mask
    return weights @ v


def _sdpa(q, k, v, attn_mask=None, is_causal=False, **_):
    """deepgrad's F.scaled_dot_product_attention on Tensors (the mask arrives as a NumPy bool array)."""
    from ...nn import functional as F

    mask = None if attn_mask is None else T(attn_mask)
    return (F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal),)


def _attention_args(rng, i: int, dtype) -> tuple[dict, str]:
    """The i-th kind of hidden call: every draw has each kind, so every classic mistake meets a case that shows it."""
    length, source, e, ev = _sizes(rng)
    lead = _lead(rng, int(rng.integers(1, 3)))
    if i == 0:   # unbatched, tiny
        return {**_qkv(rng, (), length, source, e, ev, dtype), "attn_mask": None, "is_causal": False}, ""
    if i == 1:   # causal with L != S: the pattern is top-left aligned (query i sees keys j <= i)
        length, source = pick(rng, [(2, 5), (3, 4), (4, 2), (5, 3)])
        return {**_qkv(rng, lead, length, source, e, ev, dtype), "attn_mask": None, "is_causal": True}, "causal, L != S"
    if i == 2:   # causal, square
        length = source = int(rng.integers(2, 7))
        return {**_qkv(rng, lead, length, source, e, ev, dtype), "attn_mask": None, "is_causal": True}, "causal"
    if i == 3:   # a bool (L, S) mask broadcast over the batch, one query with every key masked out
        length = max(length, 2)
        source = max(source, 2)
        return ({**_qkv(rng, lead, length, source, e, ev, dtype),
                 "attn_mask": _bool_mask(rng, (length, source), True), "is_causal": False},
                "bool mask, a fully masked row")
    if i == 4:   # a full-shape bool mask (..., L, S), some fully masked rows
        lead, length, source = _lead(rng, 2), max(length, 2), max(source, 3)
        return ({**_qkv(rng, lead, length, source, e, ev, dtype),
                 "attn_mask": _bool_mask(rng, lead + (length, source), True), "is_causal": False},
                "per-batch bool mask, fully masked rows")
    # scores in the thousands: the first query is 30 in every coordinate and the first key equals it, so its score
    # is 900 * sqrt(E) > 710, where exp overflows float64
    args = _qkv(rng, lead, max(length, 2), max(source, 2), e, ev, dtype, 30.0)
    args["q"][..., 0, :] = 30.0
    args["k"][..., 0, :] = args["q"][..., 0, :]
    return {**args, "attn_mask": None, "is_causal": bool(rng.random() < 0.5)}, "scores in the thousands"


# ----------------------------------------------------------------------------- forward
def _forward_cases(rng):
    cases = []
    for i in range(6):
        dtype = np.float64 if i in (1, 3, 5) else np.float32  # the extreme case in float64 (float32's error at 1e3)
        args, note = _attention_args(rng, i, dtype)
        cases.append(Case("attention", args, note=note))
    return cases


def _forward_ref(c):
    a = c.args
    return arr(_sdpa(T(a["q"]), T(a["k"]), T(a["v"]), a["attn_mask"], a["is_causal"])[0])


def _fwd_alt(**switches):
    return lambda c: _attn_np(**c.args, **switches)


def _masked(c) -> bool:
    return c.args["attn_mask"] is not None or c.args["is_causal"]


attention_forward = Exercise(
    id="attention-forward", title="Scaled dot-product attention forward (causal, bool masks)",
    topic="transformers", difficulty=2, question="How does self-attention compute its output, and why the 1/sqrt(d)?",
    statement=src("""
    Implement attention(q, k, v, attn_mask, is_causal) -> out with NumPy, as torch's
    F.scaled_dot_product_attention (no dropout, the default scale):

        out = softmax(q @ k^T / sqrt(E), over the keys) @ v

    q (..., L, E), k (..., S, E), v (..., S, Ev): no, one or two leading (batch, head) dims, the same in all three.
    attn_mask: None, or a bool array (L, S) or (..., L, S): True = this query may attend to this key; a False
               entry takes no part (its score is -inf before the softmax).
    is_causal: True = query i attends to keys j <= i only (top-left aligned, also when L != S); never given
               together with attn_mask.
    A query whose keys are ALL masked out gets a row of zeros (as torch 2.13 gives it), not NaN.
    Keep q's dtype (float32 or float64). Some hidden scores are in the thousands: no overflow, no NaN.
    """),
    starter=src("""
    import numpy as np


    def attention(q, k, v, attn_mask=None, is_causal=False):
        ...  # your code here
    """),
    hints=["scores = q @ np.swapaxes(k, -1, -2): k.T would reverse ALL the axes of a batched array. Divide by "
           "sqrt(E) with a Python float (math.sqrt): a NumPy float64 scalar turns float32 arrays into float64.",
           "Mask BEFORE the softmax: np.where(mask, scores, -np.inf), so masked keys get exactly 0 weight and the "
           "others still sum to 1. The causal mask is np.tril(np.ones((L, S), dtype=bool)).",
           "Stable softmax over axis -1: subtract the row max. A fully masked row has max -inf: use 0 in its place "
           "(exp(-inf) = 0), and divide by 1 where the row sum is 0."],
    solution=src("""
    import math

    import numpy as np


    def attention(q, k, v, attn_mask=None, is_causal=False):
        length, source = q.shape[-2], k.shape[-2]
        scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
        if is_causal:
            attn_mask = np.tril(np.ones((length, source), dtype=bool))
        if attn_mask is not None:
            scores = np.where(attn_mask, scores, -np.inf)
        top = scores.max(axis=-1, keepdims=True)
        top = np.where(np.isfinite(top), top, 0)  # a fully masked row: exp(-inf - 0) = 0, not exp(nan)
        e = np.exp(scores - top)
        total = e.sum(axis=-1, keepdims=True)
        weights = e / np.where(total == 0, 1, total)
        return weights @ v
    """),
    outputs={"attention": ("out",)}, cases=_forward_cases, reference=_forward_ref,
    mistakes=[
        Mistake("the scores are divided by sqrt(E) (E = q.shape[-1]): you left the scale out", _fwd_alt(scale=False)),
        Mistake("you masked the weights AFTER the softmax: set masked scores to -inf before it, so that the weights "
                "left still sum to 1", _fwd_alt(after=True), _masked),
        Mistake("the softmax runs over the keys (the last axis), not over the queries", _fwd_alt(axis=-2)),
        Mistake("the causal pattern is top-left aligned (query i sees keys j <= i, np.tril(..., k=0)), also when "
                "L != S", _fwd_alt(bottom_right=True), lambda c: c.args["is_causal"]),
    ],
    mutants=[
        Mutant("the 1/sqrt(E) scale missing", (" / math.sqrt(q.shape[-1])", ""), mentions="left the scale out"),
        Mutant("the mask applied after the softmax",
               ("        scores = np.where(attn_mask, scores, -np.inf)\n", "        pass\n",
                "    return weights @ v", "    if attn_mask is not None:\n        weights = weights * attn_mask\n"
                                         "    return weights @ v"),
               mentions="AFTER the softmax"),
        Mutant("softmax over the queries",
               ("scores.max(axis=-1, keepdims=True)", "scores.max(axis=-2, keepdims=True)",
                "e.sum(axis=-1, keepdims=True)", "e.sum(axis=-2, keepdims=True)"),
               mentions="over the keys"),
        Mutant("k.T on a batched array", ("np.swapaxes(k, -1, -2)", "k.T")),
        Mutant("fully masked rows give NaN",
               ("    top = np.where(np.isfinite(top), top, 0)  # a fully masked row: exp(-inf - 0) = 0, not exp(nan)\n",
                "", "e / np.where(total == 0, 1, total)", "e / total"),
               mentions="NaN"),
        Mutant("the causal mask aligned bottom-right",
               ("np.tril(np.ones((length, source), dtype=bool))",
                "np.tril(np.ones((length, source), dtype=bool), k=source - length)"),
               mentions="top-left aligned"),
        Mutant("softmax without the max shift", ("np.exp(scores - top)", "np.exp(scores)"), mentions="NaN or inf"),
    ],
)


# ----------------------------------------------------------------------------- backward
def _backward_cases(rng):
    cases = []
    for i in range(6):
        args, note = _attention_args(rng, i, np.float64)
        lead_shape = args["q"].shape[:-1]
        args["grad_out"] = normal(rng, lead_shape + (args["v"].shape[-1],))
        args = {name: args[name] for name in ("q", "k", "v", "grad_out", "attn_mask", "is_causal")}
        cases.append(grad_case("attention_backward", args, _sdpa, ("q", "k", "v"), ("grad_out",), note=note))
    return cases


def _bwd_no_dot(c):
    """The gradients with the softmax backward missing its subtracted dot product."""
    a = c.args
    q, k, v, g = a["q"], a["k"], a["v"], a["grad_out"]
    scale = 1 / np.sqrt(q.shape[-1])
    weights = _probs_np(c)
    grad_s = weights * (g @ np.swapaxes(v, -1, -2))
    return grad_s @ k * scale, np.swapaxes(grad_s, -1, -2) @ q * scale, np.swapaxes(weights, -1, -2) @ g


def _probs_np(c) -> np.ndarray:
    """The attention weights of a case, through the identity weights = attention(q, k, I) (v = identity)."""
    a = c.args
    eye = np.broadcast_to(np.eye(a["k"].shape[-2]), a["k"].shape[:-1] + (a["k"].shape[-2],))
    return _attn_np(a["q"], a["k"], eye, a["attn_mask"], a["is_causal"])


def _bwd_unscaled(c):
    dq, dk, dv = autograd_reference(c)
    root = np.sqrt(c.args["q"].shape[-1])
    return dq * root, dk * root, dv


attention_backward = Exercise(
    id="attention-backward", title="Scaled dot-product attention backward (dq, dk, dv)",
    topic="transformers", difficulty=3, question="Derive the backward pass of scaled dot-product attention.",
    statement=src("""
    For out = attention(q, k, v, attn_mask, is_causal) as in attention-forward (softmax(q k^T / sqrt(E) with
    masked scores at -inf) @ v; a fully masked query row gives 0), implement
    attention_backward(q, k, v, grad_out, attn_mask, is_causal) -> (dq, dk, dv) with NumPy: the gradients of
    sum(grad_out * out) with respect to q, k and v.

    float64; q (..., L, E), k (..., S, E), v (..., S, Ev), grad_out (..., L, Ev); attn_mask None or bool
    (L, S) / (..., L, S) (True = may attend), is_causal: query i attends to keys j <= i (top-left aligned).
    Checked against deepgrad's autograd and float64 finite differences, under a random upstream gradient.
    """),
    starter=src("""
    import numpy as np


    def attention_backward(q, k, v, grad_out, attn_mask=None, is_causal=False):
        ...  # your code here
    """),
    hints=["Recompute the weights P = softmax(S) of the forward (S = the scaled, masked scores); then "
           "dv = P^T @ grad_out and dP = grad_out @ v^T.",
           "Softmax backward, row by row: dS = P * (dP - sum(dP * P, axis=-1, keepdims=True)). Masked entries have "
           "P = 0, so nothing flows to them; a fully masked row gets no gradient at all.",
           "S = q k^T * scale: dq = dS @ k * scale and dk = dS^T @ q * scale (transpose the last two axes with "
           "np.swapaxes)."],
    solution=src("""
    import math

    import numpy as np


    def attention_backward(q, k, v, grad_out, attn_mask=None, is_causal=False):
        scale = 1 / math.sqrt(q.shape[-1])
        scores = q @ np.swapaxes(k, -1, -2) * scale
        if is_causal:
            attn_mask = np.tril(np.ones((q.shape[-2], k.shape[-2]), dtype=bool))
        if attn_mask is not None:
            scores = np.where(attn_mask, scores, -np.inf)
        top = scores.max(axis=-1, keepdims=True)
        e = np.exp(scores - np.where(np.isfinite(top), top, 0))
        total = e.sum(axis=-1, keepdims=True)
        p = e / np.where(total == 0, 1, total)

        dv = np.swapaxes(p, -1, -2) @ grad_out
        dp = grad_out @ np.swapaxes(v, -1, -2)
        ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
        dq = ds @ k * scale
        dk = np.swapaxes(ds, -1, -2) @ q * scale
        return dq, dk, dv
    """),
    outputs={"attention_backward": ("dq", "dk", "dv")}, cases=_backward_cases, reference=autograd_reference,
    mistakes=[
        Mistake("the softmax backward misses its second term: dS = P * (dP - sum(dP * P, axis=-1)), not P * dP",
                _bwd_no_dot),
        Mistake("dq and dk carry the forward's scale 1/sqrt(E): the scores are q k^T * scale", _bwd_unscaled),
    ],
    mutants=[
        Mutant("softmax backward without the subtracted dot product",
               ("p * (dp - (dp * p).sum(axis=-1, keepdims=True))", "p * dp"), mentions="misses its second term"),
        Mutant("the scale missing from dq and dk", ("dq = ds @ k * scale", "dq = ds @ k",
                                                    "dk = np.swapaxes(ds, -1, -2) @ q * scale",
                                                    "dk = np.swapaxes(ds, -1, -2) @ q"),
               mentions="carry the forward's scale"),
        Mutant("dv from P, not its transpose", ("dv = np.swapaxes(p, -1, -2) @ grad_out", "dv = p @ grad_out")),
        Mutant("dk without transposing dS", ("dk = np.swapaxes(ds, -1, -2) @ q", "dk = ds @ q")),
        Mutant("the mask forgotten in backward", ("        scores = np.where(attn_mask, scores, -np.inf)\n",
                                                  "        pass\n")),
    ],
)


# ----------------------------------------------------------------------------- multi-head split and merge
def _heads_cases(rng):
    cases = []
    for i in range(8):
        dtype = np.float32 if i % 2 else np.float64
        b, t, h, d = (int(v) for v in rng.integers(1, 6, size=4))
        h = min(h, 4)
        if i < 4:  # heads, length and head size all > 1: only there does every wrong axis order show
            t, h, d = int(rng.integers(2, 6)), int(rng.integers(2, 5)), int(rng.integers(2, 6))
        if i % 4 < 2:
            cases.append(Case("split_heads", {"x": normal(rng, (b, t, h * d), dtype), "num_heads": h}))
        else:
            cases.append(Case("merge_heads", {"x": normal(rng, (b, h, t, d), dtype)}))
    return cases


def _heads_ref(c):
    x = T(c.args["x"])
    if c.func == "split_heads":
        b, t, e = x.shape
        h = c.args["num_heads"]
        return arr(x.reshape(b, t, h, e // h).permute(0, 2, 1, 3))
    b, h, t, d = x.shape
    return arr(x.permute(0, 2, 1, 3).reshape(b, t, h * d))


def _split_no_transpose(c):
    b, t, e = c.args["x"].shape
    return c.args["x"].reshape(b, c.args["num_heads"], t, e // c.args["num_heads"])


multi_head_split = Exercise(
    id="multi-head-split", title="Multi-head split and merge: (B, T, E) <-> (B, H, T, E/H)",
    topic="transformers", difficulty=1, question="What does multi-head attention do with its heads?",
    statement=src("""
    Implement with NumPy, as nn.MultiheadAttention (batch_first) splits its projections into heads and joins them:

        split_heads(x, num_heads) -> (B, H, T, E // H)     x (B, T, E), E divisible by H
        merge_heads(x)            -> (B, T, H * D)          x (B, H, T, D); the inverse of split_heads

    Head h takes the features h * D ... (h + 1) * D - 1 of every position (D = E // H): a contiguous block of
    the embedding, not every H-th feature. merge_heads(split_heads(x, H)) == x. Keep the dtype.
    """),
    starter=src("""
    import numpy as np


    def split_heads(x, num_heads):
        ...  # your code here


    def merge_heads(x):
        ...  # your code here
    """),
    hints=["A reshape alone cannot move the time axis past the head axis: reshape to (B, T, H, D) first, then "
           "swap axes 1 and 2.",
           "Merging undoes it in the reverse order: transpose (B, H, T, D) to (B, T, H, D), then reshape."],
    solution=src("""
    import numpy as np


    def split_heads(x, num_heads):
        b, t, e = x.shape
        return x.reshape(b, t, num_heads, e // num_heads).transpose(0, 2, 1, 3)


    def merge_heads(x):
        b, h, t, d = x.shape
        return x.transpose(0, 2, 1, 3).reshape(b, t, h * d)
    """),
    outputs={"split_heads": ("heads",), "merge_heads": ("merged",)}, cases=_heads_cases, reference=_heads_ref,
    mistakes=[
        Mistake("a reshape straight to (B, H, T, D) mixes positions into the heads: reshape to (B, T, H, D), then "
                "transpose(0, 2, 1, 3)", _split_no_transpose, lambda c: c.func == "split_heads"),
        Mistake("merging needs the transpose back to (B, T, H, D) before the reshape",
                lambda c: c.args["x"].reshape(c.args["x"].shape[0], c.args["x"].shape[2], -1),
                lambda c: c.func == "merge_heads"),
    ],
    mutants=[
        Mutant("split by a reshape alone", ("x.reshape(b, t, num_heads, e // num_heads).transpose(0, 2, 1, 3)",
                                            "x.reshape(b, num_heads, t, e // num_heads)"),
               mentions="mixes positions into the heads"),
        Mutant("every H-th feature to a head", ("x.reshape(b, t, num_heads, e // num_heads).transpose(0, 2, 1, 3)",
                                                "x.reshape(b, t, e // num_heads, num_heads).transpose(0, 3, 1, 2)")),
        Mutant("merge without the transpose back", ("x.transpose(0, 2, 1, 3).reshape(b, t, h * d)",
                                                    "x.reshape(b, t, h * d)"),
               mentions="transpose back"),
        Mutant("merge with the wrong transpose", ("x.transpose(0, 2, 1, 3).reshape(b, t, h * d)",
                                                  "x.transpose(0, 2, 3, 1).reshape(b, t, h * d)")),
    ],
)

EXERCISES = [multi_head_split, attention_forward, attention_backward]
