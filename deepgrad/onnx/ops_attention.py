"""The fused scaled dot-product attention node as ONNX ops (opsets 17-21 have no Attention op).

``softmax(q k^T * scale + mask) v`` with the same guard as deepgrad and torch: a query whose keys are all
masked gets zero weights (a plain ONNX Softmax would give NaN). The causal pattern is built at run time from
the scores' shape (a Trilu over a ``-inf`` matrix), so the sequence lengths may be dynamic axes. Everything
around the node (projections, head split, masks of MultiheadAttention and the transformer layers) is ordinary
traced ops with their own converters.
"""

from __future__ import annotations

import numpy as np

from ..ops import attention as AT
from .graph import OpContext, converts, onnx_dtype


def _additive_causal_mask(ctx: OpContext, scores: str, dt) -> str:
    """0 where query i may see key j (j <= i), ``-inf`` above the diagonal, shaped like the scores' last two
    dims, read from the scores at run time."""
    from onnx import helper  # optional dependency, imported when a model is exported

    size = ctx.emit("Shape", [scores], start=-2)
    value = helper.make_tensor("value", onnx_dtype(dt), [1], [float("-inf")])
    blocked = ctx.emit("ConstantOfShape", [size], value=value)
    return ctx.emit("Trilu", [blocked, ctx.ints([1])], upper=1)


def _guarded_softmax(ctx: OpContext, scores: str, dt) -> str:
    """Softmax over the last axis where an all ``-inf`` row gives 0 instead of NaN."""
    top = ctx.axes_op("ReduceMax", scores, [-1], keepdims=1)
    zero, one = ctx.scalar(0, dt), ctx.scalar(1, dt)
    top = ctx.emit("Where", [ctx.emit("IsInf", [top]), zero, top])
    e = ctx.emit("Exp", [ctx.emit("Sub", [scores, top])])
    total = ctx.axes_op("ReduceSum", e, [-1], keepdims=1)
    total = ctx.emit("Where", [ctx.emit("Equal", [total, zero]), one, total])
    return ctx.emit("Div", [e, total])


@converts(AT.ScaledDotProductAttention)
def _scaled_dot_product_attention(ctx: OpContext) -> None:
    if ctx.params["dropout_p"] > 0:
        raise ctx.fail("dropout_p > 0 draws random attention weights at every call; export in eval mode "
                       "(MultiheadAttention then passes 0) or call scaled_dot_product_attention with dropout_p=0")
    dt = ctx.dtype(0)
    scale = ctx.same(lambda p: p["scale"], "scale")
    q, k, v = ctx.input(0), ctx.input(1), ctx.input(2)
    nd = len(ctx.shape(1))
    key_t = ctx.emit("Transpose", [k], perm=list(range(nd - 2)) + [nd - 1, nd - 2])
    scores = ctx.emit("MatMul", [ctx.emit("Mul", [q, ctx.scalar(scale, dt)]), key_t])
    kind = ctx.params["mask_kind"]
    if kind == "float":
        scores = ctx.emit("Add", [scores, ctx.input(3)])
    elif kind == "bool":
        scores = ctx.emit("Where", [ctx.input(3), scores, ctx.scalar(-np.inf, dt)])
    if ctx.params["is_causal"]:
        scores = ctx.emit("Add", [scores, _additive_causal_mask(ctx, scores, dt)])
    if kind is None and not ctx.params["is_causal"]:
        weights = ctx.emit("Softmax", [scores], axis=-1)  # nothing masked: no row can be all -inf
    else:
        weights = _guarded_softmax(ctx, scores, dt)
    ctx.emit("MatMul", [weights, v], ctx.out())
