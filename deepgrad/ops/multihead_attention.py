"""Multi-head attention as torch computes it (``F.multi_head_attention_forward``), built from differentiable
ops: the input projections, the head split, scaled dot-product attention, the head merge and the output
projection. Its backward comes from those ops; the attention in the middle is the fused node of
:mod:`deepgrad.ops.attention` unless the weights are asked for (``need_weights=True``), where torch
computes a plain softmax that it returns (NaN on a query whose keys are all masked, as torch).

Masks follow torch's conventions: in ``attn_mask`` and ``key_padding_mask`` a bool True means "may NOT
attend" (the opposite of ``scaled_dot_product_attention``'s bool mask), and float masks are added.
Internally the layout is batch-first, (N, L, E) -> heads (N, H, L, E / H), views wherever NumPy allows.

>>> x = deepgrad.randn(5, 2, 8)                                  # (L, N, E), time-major as torch
>>> mha = deepgrad.nn.MultiheadAttention(8, 2)
>>> out, weights = mha(x, x, x)                                   # (5, 2, 8), (2, 5, 5)
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..creation import full
from ..tensor import Tensor
from .attention import scaled_dot_product_attention
from .dropout import dropout
from .elementwise import where
from .linalg import linear, matmul
from .reduce import softmax
from .shape import cat, pad


def canonical_mask(mask: Tensor | None, mask_name: str, other_type, other_name: str, target_type,
                   check_other: bool = True) -> Tensor | None:
    """A bool mask as a float one (``-inf`` where True, 0 elsewhere); float masks pass unchanged."""
    if mask is None:
        return None
    if mask.dtype != np.bool_ and mask.dtype.kind != "f":
        raise AssertionError(f"only bool and floating types of {mask_name} are supported (got {mask.dtype})")
    if check_other and other_type is not None and mask.dtype != other_type:
        warnings.warn(f"Support for mismatched {mask_name} and {other_name} is deprecated. Use same type for both "
                      f"instead.", stacklevel=3)
    if mask.dtype != np.bool_:
        return mask
    # 0-d constants (not a zeros() of the mask's shape), so an ONNX trace sees no data-sized constant
    return where(mask, full((), float("-inf"), dtype=target_type, device=mask.device),
                 full((), 0.0, dtype=target_type, device=mask.device))


def _dtype_or_none(t: Tensor | None):
    return None if t is None else t.dtype


def _shape_check(query, key, value, key_padding_mask, attn_mask, num_heads: int) -> bool:
    """torch's ``_mha_shape_check``: whether the input is batched (3-D) or not (2-D)."""
    dims = f"{key.ndim}-D and {value.ndim}-D tensors respectively"
    if query.ndim == 3:
        if key.ndim != 3 or value.ndim != 3:
            raise AssertionError(f"For batched (3-D) `query`, expected `key` and `value` to be 3-D but found {dims}")
        if key_padding_mask is not None and key_padding_mask.ndim != 2:
            raise AssertionError(f"For batched (3-D) `query`, expected `key_padding_mask` to be `None` or 2-D but "
                                 f"found {key_padding_mask.ndim}-D tensor instead")
        if attn_mask is not None and attn_mask.ndim not in (2, 3):
            raise AssertionError(f"For batched (3-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D but "
                                 f"found {attn_mask.ndim}-D tensor instead")
        return True
    if query.ndim == 2:
        if key.ndim != 2 or value.ndim != 2:
            raise AssertionError(f"For unbatched (2-D) `query`, expected `key` and `value` to be 2-D but found {dims}")
        if key_padding_mask is not None and key_padding_mask.ndim != 1:
            raise AssertionError(f"For unbatched (2-D) `query`, expected `key_padding_mask` to be `None` or 1-D but "
                                 f"found {key_padding_mask.ndim}-D tensor instead")
        if attn_mask is not None:
            if attn_mask.ndim not in (2, 3):
                raise AssertionError(f"For unbatched (2-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D "
                                     f"but found {attn_mask.ndim}-D tensor instead")
            expected = (num_heads, query.shape[0], key.shape[0])
            if attn_mask.ndim == 3 and tuple(attn_mask.shape) != expected:
                raise AssertionError(f"Expected `attn_mask` shape to be {expected} but got {tuple(attn_mask.shape)}")
        return False
    raise AssertionError(f"query should be unbatched 2D or batched 3D tensor but received {query.ndim}-D query tensor")


def _heads(x: Tensor, num_heads: int) -> Tensor:
    """(N, L, E) -> (N, H, L, E / H), a view."""
    n, length, e = x.shape
    return x.reshape(n, length, num_heads, e // num_heads).permute(0, 2, 1, 3)


def multi_head_attention(query: Tensor, key: Tensor, value: Tensor, num_heads: int, in_proj_weight, in_proj_bias,
                         bias_k, bias_v, add_zero_attn: bool, dropout_p: float, out_proj_weight, out_proj_bias,
                         training: bool = True, key_padding_mask=None, need_weights: bool = True, attn_mask=None,
                         q_proj_weight=None, k_proj_weight=None, v_proj_weight=None, static_k=None, static_v=None,
                         average_attn_weights: bool = True, is_causal: bool = False, batch_first: bool = False,
                         embed_dim_to_check: int | None = None) -> tuple:
    """The body of :func:`multi_head_attention_forward`, for time-major or (``batch_first``) batch-major input."""
    is_batched = _shape_check(query, key, value, key_padding_mask, attn_mask, num_heads)
    if not is_batched:
        query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    elif not batch_first:
        query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
    bsz, tgt_len, embed_dim = query.shape
    src_len = key.shape[1]
    key_padding_mask = canonical_mask(key_padding_mask, "key_padding_mask", _dtype_or_none(attn_mask), "attn_mask",
                                      query.dtype)
    if is_causal and attn_mask is None:
        raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the Transformer module "
                           "method `generate_square_subsequent_mask` to create this mask.")
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None  # the hint: the fused op draws the causal pattern itself
    else:
        attn_mask = canonical_mask(attn_mask, "attn_mask", None, "", query.dtype, check_other=False)
        if key_padding_mask is not None:
            is_causal = False
    if embed_dim_to_check is not None and embed_dim != embed_dim_to_check:
        raise AssertionError(f"was expecting embedding dimension of {embed_dim_to_check}, but got {embed_dim}")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise AssertionError(f"embed_dim {embed_dim} not divisible by num_heads {num_heads}")
    separate = in_proj_weight is None
    if separate and key.shape[:2] != value.shape[:2]:
        raise AssertionError(f"key's sequence and batch dims {tuple(key.shape[:2])} do not match value's "
                             f"{tuple(value.shape[:2])}")
    if not separate and key.shape != value.shape:
        raise AssertionError(f"key shape {tuple(key.shape)} does not match value shape {tuple(value.shape)}")

    # Input projections: one weight slice per role (torch packs them in one (3E, E) matrix, q then k then v).
    if separate:
        w_q, w_k, w_v = q_proj_weight, k_proj_weight, v_proj_weight
    else:
        w_q, w_k, w_v = (in_proj_weight[i * embed_dim:(i + 1) * embed_dim] for i in range(3))
    b_q = b_k = b_v = None
    if in_proj_bias is not None:
        b_q, b_k, b_v = (in_proj_bias[i * embed_dim:(i + 1) * embed_dim] for i in range(3))
    q = linear(query, w_q, b_q)
    k = linear(key, w_k, b_k) if static_k is None else None
    v = linear(value, w_v, b_v) if static_v is None else None

    if attn_mask is not None:
        if attn_mask.ndim == 2:
            if tuple(attn_mask.shape) != (tgt_len, src_len):
                raise RuntimeError(f"The shape of the 2D attn_mask is {tuple(attn_mask.shape)}, but should be "
                                   f"{(tgt_len, src_len)}.")
            attn_mask = attn_mask.reshape(1, 1, tgt_len, src_len)
        elif attn_mask.ndim == 3:
            if tuple(attn_mask.shape) != (bsz * num_heads, tgt_len, src_len):
                raise RuntimeError(f"The shape of the 3D attn_mask is {tuple(attn_mask.shape)}, but should be "
                                   f"{(bsz * num_heads, tgt_len, src_len)}.")
            attn_mask = attn_mask.reshape(bsz, num_heads, tgt_len, src_len)
        else:
            raise RuntimeError(f"attn_mask's dimension {attn_mask.ndim} is not supported")

    if bias_k is not None and bias_v is not None:
        if static_k is not None or static_v is not None:
            raise AssertionError("bias cannot be added to static key or value.")
        k = cat([k, bias_k.reshape(1, 1, embed_dim).expand(bsz, 1, embed_dim)], dim=1)
        v = cat([v, bias_v.reshape(1, 1, embed_dim).expand(bsz, 1, embed_dim)], dim=1)
        attn_mask = None if attn_mask is None else pad(attn_mask, (0, 1))
        key_padding_mask = None if key_padding_mask is None else pad(key_padding_mask, (0, 1))
    elif bias_k is not None or bias_v is not None:
        raise AssertionError("bias_k and bias_v must be given together")

    q = _heads(q, num_heads)
    k = _heads(k, num_heads) if static_k is None else _static(static_k, "static_k", bsz, num_heads, head_dim)
    v = _heads(v, num_heads) if static_v is None else _static(static_v, "static_v", bsz, num_heads, head_dim)
    if add_zero_attn:  # one more key and value, all zeros (a pad keeps the ONNX trace free of batch-sized constants)
        k, v = pad(k, (0, 0, 0, 1)), pad(v, (0, 0, 0, 1))
        attn_mask = None if attn_mask is None else pad(attn_mask, (0, 1))
        key_padding_mask = None if key_padding_mask is None else pad(key_padding_mask, (0, 1))
    src_len = k.shape[2]
    if key_padding_mask is not None:
        if tuple(key_padding_mask.shape) != (bsz, src_len):
            which, want, got = (0, bsz, key_padding_mask.shape[0]) if key_padding_mask.shape[0] != bsz else (
                1, src_len, key_padding_mask.shape[1])
            raise AssertionError(f"Expected key_padded_mask.shape[{which}] to be {want}, but got {got}")
        padding = key_padding_mask.reshape(bsz, 1, 1, src_len)
        attn_mask = padding if attn_mask is None else attn_mask + padding
    if not training:
        dropout_p = 0.0

    weights = None
    if need_weights:
        scores = matmul(q * math.sqrt(1.0 / head_dim), k.transpose(-2, -1))
        if attn_mask is not None:
            scores = attn_mask + scores
        weights = softmax(scores, -1)
        if dropout_p > 0.0:
            weights = dropout(weights, p=dropout_p)
        out = matmul(weights, v)
        if average_attn_weights:
            weights = weights.mean(dim=1)
        if not is_batched:
            weights = weights.squeeze(0)
    else:
        out = scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal)
    out = linear(out.permute(0, 2, 1, 3).reshape(bsz, tgt_len, embed_dim), out_proj_weight, out_proj_bias)
    if not is_batched:
        out = out.squeeze(0)
    elif not batch_first:
        out = out.transpose(0, 1)
    return out, weights


def _static(t: Tensor, name: str, bsz: int, num_heads: int, head_dim: int) -> Tensor:
    if t.ndim != 3 or t.shape[0] != bsz * num_heads or t.shape[2] != head_dim:
        raise AssertionError(f"expecting {name} of shape ({bsz * num_heads}, S, {head_dim}), got {tuple(t.shape)}")
    return t.reshape(bsz, num_heads, t.shape[1], head_dim)


def multi_head_attention_forward(query: Tensor, key: Tensor, value: Tensor, embed_dim_to_check: int, num_heads: int,
                                 in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn: bool, dropout_p: float,
                                 out_proj_weight, out_proj_bias, training: bool = True, key_padding_mask=None,
                                 need_weights: bool = True, attn_mask=None, use_separate_proj_weight: bool = False,
                                 q_proj_weight=None, k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights: bool = True, is_causal: bool = False) -> tuple:
    """torch's functional multi-head attention on time-major (L, N, E) or unbatched (L, E) input.

    Returns ``(attn_output, attn_weights)``; the weights are None unless ``need_weights``, averaged over the
    heads when ``average_attn_weights``.

    >>> E, H = 8, 2
    >>> x = deepgrad.randn(5, 3, E)
    >>> w_in, w_out = deepgrad.randn(3 * E, E), deepgrad.randn(E, E)
    >>> out, _ = multi_head_attention_forward(x, x, x, E, H, w_in, None, None, None, False, 0.0, w_out, None)
    """
    if use_separate_proj_weight:
        for name, w in (("q_proj_weight", q_proj_weight), ("k_proj_weight", k_proj_weight),
                        ("v_proj_weight", v_proj_weight)):
            if w is None:
                raise AssertionError(f"use_separate_proj_weight is True but {name} is None")
        in_proj_weight = None
    elif in_proj_weight is None:
        raise AssertionError("use_separate_proj_weight is False but in_proj_weight is None")
    return multi_head_attention(query, key, value, num_heads, in_proj_weight, in_proj_bias, bias_k, bias_v,
                                add_zero_attn, dropout_p, out_proj_weight, out_proj_bias, training, key_padding_mask,
                                need_weights, attn_mask, q_proj_weight, k_proj_weight, v_proj_weight, static_k,
                                static_v, average_attn_weights, is_causal, batch_first=False,
                                embed_dim_to_check=embed_dim_to_check)
