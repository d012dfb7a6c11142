"""Converters for the layer ops: convolution, transposed convolution, pooling (max / average / sum /
adaptive), batch norm, layer norm and embedding."""

from __future__ import annotations

import numpy as np

from ..ops import conv as C
from ..ops import embedding as EM
from ..ops import norm as N
from ..ops import pool as P
from .graph import OpContext, converts, host


def _onnx_pads(pads: tuple, nd: int) -> list:
    """(top, bottom, left, right) -> ONNX's [begin..., end...] for ``nd`` spatial dims."""
    top, bottom, left, right = pads
    return [left, right] if nd == 1 else [top, left, bottom, right]


# ----------------------------------------------------------------------------- convolution
@converts(C.Conv, C.ConvTranspose)
def _conv(ctx: OpContext) -> None:
    geom = ctx.params["geom"]
    nd = len(ctx.shape(1)) - 2  # the weight's spatial dims: 1 for conv1d, 2 for conv2d
    stride = ctx.same(lambda p: p["geom"].stride, "stride")[-nd:]
    dilation = ctx.same(lambda p: p["geom"].dilation, "dilation")[-nd:]
    pads = ctx.same(lambda p: p["geom"].pads, "padding")
    inputs = [ctx.input(0), ctx.input(1)] + ([ctx.input(2)] if ctx.n_inputs > 2 else [])
    batched = len(ctx.shape(0)) == nd + 2
    if not batched:
        inputs[0] = ctx.axes_op("Unsqueeze", inputs[0], [0])
    out = ctx.out() if batched else None
    attrs = dict(kernel_shape=list(ctx.shape(1)[2:]), strides=list(stride), dilations=list(dilation),
                 pads=_onnx_pads(pads, nd), group=int(geom.groups))
    if ctx.rec.op is C.Conv:
        y = ctx.emit("Conv", inputs, out, **attrs)
    else:
        def extra(p):  # output_padding: what the output has beyond ONNX's (i - 1) s - pads + d (k - 1) + 1
            g = p["geom"]
            return [o - ((i - 1) * s - lo - hi + d * (k - 1) + 1) for i, o, s, (lo, hi), d, k in zip(
                g.x_shape[2:], g.out_shape[2:], g.stride, (g.pads[:2], g.pads[2:]), g.dilation, g.w_shape[2:])]

        y = ctx.emit("ConvTranspose", inputs, out, output_padding=ctx.same(extra, "output padding")[-nd:], **attrs)
    if not batched:
        ctx.axes_op("Squeeze", y, [0], ctx.out())


# ----------------------------------------------------------------------------- pooling
def _as_4d(ctx: OpContext, x: str, key: str = "geom") -> str:
    """Pool ops work on a 4-D (N, C, H, W) view (1-D pooling has H = 1); reshape when the caller's differs."""
    def view(p):
        return p[key].x_shape if key == "geom" else p["x_shape"]

    return ctx.reshape(x, ctx.shapes(0), (tuple(view(ctx.params)), tuple(view(ctx.params_b))))


def _from_4d(ctx: OpContext, y: str, out4: tuple) -> None:
    ctx.reshape(y, out4, ctx.out_shapes(), ctx.out())


def _pool_out4(ctx: OpContext, key: str) -> tuple:
    return (tuple(ctx.params[key].out_shape), tuple(ctx.params_b[key].out_shape)) if key == "geom" else (
        tuple(ctx.params["out_shape"]), tuple(ctx.params_b["out_shape"]))


def _pool_attrs(ctx: OpContext) -> dict:
    """The window of a 2-D pool; pads hold the ceil-mode overhang, so ceil_mode stays 0."""
    kernel, stride, pads = ctx.same(lambda p: (p["geom"].kernel, p["geom"].stride, p["geom"].pads), "window")
    return dict(kernel_shape=list(kernel), strides=list(stride), pads=_onnx_pads(pads, 2), ceil_mode=0)


@converts(P.MaxPool)
def _max_pool(ctx: OpContext) -> None:
    if ctx.params.get("sink") is not None:
        raise ctx.fail("return_indices=True: ONNX's MaxPool indices count across the batch, unlike torch's per-plane "
                       "indices; export the pooled values only")
    dilation = ctx.same(lambda p: p["geom"].dilation, "dilation")
    y = ctx.emit("MaxPool", [_as_4d(ctx, ctx.input(0))], dilations=list(dilation), **_pool_attrs(ctx))
    _from_4d(ctx, y, _pool_out4(ctx, "geom"))


@converts(P.AvgPool)
def _avg_pool(ctx: OpContext) -> None:
    # Average and sum pooling both start from the window sum: an AveragePool over the zero-padded input with
    # count_include_pad=1 divides every window by kh * kw, which is then undone (sum pooling) or replaced by
    # torch's divisor. Explicit pads include the ceil-mode overhang, so the window grid matches exactly.
    attrs = _pool_attrs(ctx)
    kh, kw = attrs["kernel_shape"]
    dt = ctx.dtype(0)
    divisor = ctx.same(lambda p: p["divisor"], "divisor")
    y = ctx.emit("AveragePool", [_as_4d(ctx, ctx.input(0))], count_include_pad=1, **attrs)
    if divisor is None:  # sum pooling
        y = ctx.emit("Mul", [y, ctx.scalar(kh * kw, dt)])
    elif not (np.ndim(divisor) == 0 and float(divisor) == kh * kw):
        total = ctx.emit("Mul", [y, ctx.scalar(kh * kw, dt)])
        div = ctx.scalar(divisor, dt) if np.ndim(divisor) == 0 else ctx.const(host(divisor).astype(dt), "divisor")
        y = ctx.emit("Div", [total, div])
    _from_4d(ctx, y, _pool_out4(ctx, "geom"))


def _spatial(ctx: OpContext) -> tuple:
    hw = ctx.same(lambda p: tuple(p["x_shape"][2:]), "input height and width")
    out = ctx.same(lambda p: tuple(p["out_shape"][2:]), "output size")
    return hw, out


@converts(P.AdaptiveAvgPool)
def _adaptive_avg(ctx: OpContext) -> None:
    (h, w), (ho, wo) = _spatial(ctx)
    x = _as_4d(ctx, ctx.input(0), "x_shape")
    dt = ctx.dtype(0)
    if (ho, wo) == (1, 1):
        y = ctx.emit("GlobalAveragePool", [x])
    elif h % ho == 0 and w % wo == 0:  # equal disjoint windows
        y = ctx.emit("AveragePool", [x], kernel_shape=[h // ho, w // wo], strides=[h // ho, w // wo])
    else:  # torch's overlapping windows: the separable averaging matrices, A_h @ x @ A_w^T
        ah, aw = P._averaging_matrix(h, ho, np.zeros(0, dt)), P._averaging_matrix(w, wo, np.zeros(0, dt))
        t = ctx.emit("MatMul", [x, ctx.const(np.ascontiguousarray(aw.T), "avg_w")])
        y = ctx.emit("MatMul", [ctx.const(ah, "avg_h"), t])
    _from_4d(ctx, y, _pool_out4(ctx, "out_shape"))


@converts(P.AdaptiveMaxPool)
def _adaptive_max(ctx: OpContext) -> None:
    if ctx.params.get("sink") is not None:
        raise ctx.fail("return_indices=True is not exportable")
    (h, w), (ho, wo) = _spatial(ctx)
    if (ho, wo) != (1, 1):
        raise ctx.fail(f"adaptive max pooling from {(h, w)} to {(ho, wo)} has unequal windows, which ONNX cannot "
                       f"express (sizes that divide evenly, and 1x1, are exportable)")
    y = ctx.emit("GlobalMaxPool", [_as_4d(ctx, ctx.input(0), "x_shape")])
    _from_4d(ctx, y, _pool_out4(ctx, "out_shape"))


@converts(P.MaxUnpool)
def _max_unpool(ctx: OpContext) -> None:
    raise ctx.fail("max unpooling is not exportable (ONNX's MaxUnpool expects batch-wide indices)")


# ----------------------------------------------------------------------------- normalisation
def _affine(ctx: OpContext, shape: tuple, dt) -> tuple[str, str]:
    """(scale, bias) names: the layer's weight and bias, or ones / zeros when it has none."""
    has_w, has_b = ctx.params["has_weight"], ctx.params["has_bias"]
    scale = ctx.input(1) if has_w else ctx.const(np.ones(shape, dt), "ones")
    bias = ctx.input(ctx.n_inputs - 1) if has_b else ""
    return scale, bias


@converts(N.BatchNorm)
def _batch_norm(ctx: OpContext) -> None:
    x, dt, eps = ctx.input(0), ctx.dtype(0), float(ctx.params["eps"])
    xs = ctx.shape(0)
    c = xs[1]
    scale, bias = _affine(ctx, (c,), dt)
    if not ctx.params["batch_stats"]:
        bias = bias or ctx.const(np.zeros(c, dt), "zeros")
        stats = []
        for key in ("running_mean", "running_var"):
            arr = ctx.params[key]
            name = ctx.resolve(arr, ctx.params_b[key], key)
            stats.append(ctx.cast(name, arr.dtype, dt))
        ctx.emit("BatchNormalization", [x, scale, bias] + stats, ctx.out(), epsilon=eps)
        return
    # Batch statistics (track_running_stats=False, or a model exported in training mode): the formula.
    axes = [0] + list(range(2, len(xs)))
    bshape = [1, c] + [1] * (len(xs) - 2)
    d = ctx.emit("Sub", [x, ctx.axes_op("ReduceMean", x, axes, keepdims=1)])
    var = ctx.axes_op("ReduceMean", ctx.emit("Mul", [d, d]), axes, keepdims=1)
    std = ctx.emit("Sqrt", [ctx.emit("Add", [var, ctx.scalar(eps, dt)])])
    has_w = ctx.params["has_weight"]
    y = ctx.emit("Div", [d, std], None if has_w or bias else ctx.out())
    if has_w:
        y = ctx.emit("Mul", [y, ctx.emit("Reshape", [scale, ctx.ints(bshape)])], None if bias else ctx.out())
    if bias:
        ctx.emit("Add", [y, ctx.emit("Reshape", [bias, ctx.ints(bshape)])], ctx.out())


@converts(N.LayerNorm)
def _layer_norm(ctx: OpContext) -> None:
    k = int(ctx.params["k"])
    sa, sb = ctx.shapes(0)
    if sa[len(sa) - k:] != sb[len(sb) - k:]:
        raise ctx.fail(f"it normalises over dims that vary with the input ({sa} vs {sb})")
    dt = ctx.dtype(0)
    scale, bias = _affine(ctx, sa[len(sa) - k:], dt)
    ctx.emit("LayerNormalization", [ctx.input(0), scale] + ([bias] if bias else []), ctx.out(), axis=-k,
             epsilon=float(ctx.params["eps"]))


# ----------------------------------------------------------------------------- embedding
@converts(EM.Embedding)
def _embedding(ctx: OpContext) -> None:
    ctx.emit("Gather", [ctx.input(0), ctx.input(1)], ctx.out(), axis=0)
