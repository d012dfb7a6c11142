"""Converters for the issue-19 ops that models use and ONNX has a direct form of: flip, roll, cumsum,
tril/triu (Trilu), pad reflect/replicate/circular, interpolate (Resize) and the elementwise maths with an
ONNX op of the same meaning (floor, ceil, round, erf, tan, asin..., reciprocal)."""

from __future__ import annotations

import numpy as np

from ..ops import cumulative as C
from ..ops import diagonal as D
from ..ops import interpolate as I
from ..ops import math as M
from ..ops import padding as P
from ..ops import rearrange as R
from .graph import OpContext, converts

_INT64_MIN, _INT64_MAX = np.iinfo(np.int64).min, np.iinfo(np.int64).max

_UNARY = {M.Tan: "Tan", M.Asin: "Asin", M.Acos: "Acos", M.Atan: "Atan", M.Sinh: "Sinh", M.Cosh: "Cosh",
          M.Asinh: "Asinh", M.Acosh: "Acosh", M.Atanh: "Atanh", M.Erf: "Erf", M.Reciprocal: "Reciprocal"}
_ROUNDING = {np.floor: "Floor", np.ceil: "Ceil", np.rint: "Round"}  # ONNX Round: half to even, as torch


@converts(*_UNARY)
def _unary(ctx: OpContext) -> None:
    ctx.emit(_UNARY[ctx.rec.op], [ctx.input(0)], ctx.out())


@converts(M.Rounding)
def _rounding(ctx: OpContext) -> None:
    fn = ctx.params["fn"]
    if ctx.params.get("decimals", 0) or fn not in _ROUNDING:
        raise ctx.fail("only floor, ceil and round (without decimals) have an ONNX form")
    ctx.emit(_ROUNDING[fn], [ctx.input(0)], ctx.out())


def _fixed_dims(ctx: OpContext, axes) -> None:
    (a, b) = ctx.shapes(0)
    for axis in axes:
        if a[axis] != b[axis]:
            raise ctx.fail(f"it works along dim {axis}, whose size changes with the input; keep that dim fixed")


@converts(R.Flip)
def _flip(ctx: OpContext) -> None:
    axes = [int(d) for d in ctx.params["dims"]]
    n = len(axes)
    ctx.emit("Slice", [ctx.input(0), ctx.ints([-1] * n), ctx.ints([_INT64_MIN] * n), ctx.ints(axes),
                       ctx.ints([-1] * n)], ctx.out())


@converts(R.Roll)
def _roll(ctx: OpContext) -> None:
    shifts, dims = ctx.same(lambda p: tuple(p["shifts"]), "shifts"), tuple(ctx.params["dims"])
    _fixed_dims(ctx, dims)
    x = ctx.input(0)
    for k, (shift, axis) in enumerate(zip(shifts, dims)):
        n = ctx.shape(0)[axis]
        s = shift % n if n else 0
        out = ctx.out() if k == len(dims) - 1 else None
        if s == 0:
            x = ctx.emit("Identity", [x], out)
            continue
        tail = ctx.emit("Slice", [x, ctx.ints([n - s]), ctx.ints([n]), ctx.ints([axis])])
        head = ctx.emit("Slice", [x, ctx.ints([0]), ctx.ints([n - s]), ctx.ints([axis])])
        x = ctx.emit("Concat", [tail, head], out, axis=int(axis))


@converts(C.Cumsum)
def _cumsum(ctx: OpContext) -> None:
    ctx.emit("CumSum", [ctx.input(0), ctx.const(np.asarray(int(ctx.params["dim"]), np.int64), "axis")], ctx.out())


@converts(D.Triangle)
def _triangle(ctx: OpContext) -> None:
    k = ctx.const(np.asarray(int(ctx.params["k"]), np.int64), "k")
    ctx.emit("Trilu", [ctx.input(0), k], ctx.out(), upper=0 if ctx.params["lower"] else 1)


@converts(P.IndexPad)
def _pad(ctx: OpContext) -> None:
    mode = ctx.params["mode"]
    amounts = {int(axis): (int(lo), int(hi)) for axis, lo, hi in ctx.same(lambda p: p["amounts"], "padding")}
    if any(lo < 0 or hi < 0 for lo, hi in amounts.values()):
        raise ctx.fail("negative (cropping) amounts of a copying pad have no ONNX form here; crop with slicing")
    _fixed_dims(ctx, amounts)
    x = ctx.input(0)
    if mode == "circular":  # wrap: the last lo elements before, the first hi after (ONNX's "wrap" needs opset 19)
        items = list(amounts.items())
        for k, (axis, (lo, hi)) in enumerate(items):
            n = ctx.shape(0)[axis]
            parts = [x]
            if lo:
                parts.insert(0, ctx.emit("Slice", [x, ctx.ints([n - lo]), ctx.ints([n]), ctx.ints([axis])]))
            if hi:
                parts.append(ctx.emit("Slice", [x, ctx.ints([0]), ctx.ints([hi]), ctx.ints([axis])]))
            x = ctx.emit("Concat", parts, ctx.out() if k == len(items) - 1 else None, axis=axis)
        if not items:
            ctx.emit("Identity", [x], ctx.out())
        return
    ndim = len(ctx.shape(0))
    begins = [amounts.get(a, (0, 0))[0] for a in range(ndim)]
    ends = [amounts.get(a, (0, 0))[1] for a in range(ndim)]
    ctx.emit("Pad", [x, ctx.ints(begins + ends)], ctx.out(), mode="reflect" if mode == "reflect" else "edge")


@converts(I.Interpolate)
def _interpolate(ctx: OpContext) -> None:
    mode, align = ctx.params["mode"], ctx.params["align_corners"]
    x = ctx.input(0)
    (oa, ob), (ia, ib) = ctx.out_shapes(), ctx.shapes(0)
    if oa[2:] != ob[2:] or ia[2:] != ib[2:]:
        raise ctx.fail("its spatial sizes change with the input; export with fixed image sizes")
    attrs = {"nearest": dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
             "nearest-exact": dict(mode="nearest", coordinate_transformation_mode="half_pixel",
                                   nearest_mode="round_prefer_ceil"),
             "bicubic": dict(mode="cubic", cubic_coeff_a=-0.75)}.get(mode, dict(mode="linear"))
    if mode not in ("nearest", "nearest-exact"):
        attrs["coordinate_transformation_mode"] = "align_corners" if align else "half_pixel"
    scales = ctx.params["scales"]
    if any(s is not None for s in scales) and not align:
        # torch's source index used 1 / scale_factor: hand ONNX the same scales (sizes would imply out / in)
        values = [1.0, 1.0] + [float(s) if s is not None else oa[2 + i] / ia[2 + i] for i, s in enumerate(scales)]
        ctx.emit("Resize", [x, "", ctx.const(np.asarray(values, np.float32), "scales")], ctx.out(), **attrs)
        return
    batch_channels = ctx.emit("Shape", [x], start=0, end=2)
    sizes = ctx.emit("Concat", [batch_channels, ctx.ints(oa[2:])], axis=0)
    ctx.emit("Resize", [x, "", "", sizes], ctx.out(), **attrs)
