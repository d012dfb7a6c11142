"""Converters for the shape ops: reshape / flatten / squeeze, permute, expand, repeat, indexing, cat, stack, pad."""

from __future__ import annotations

import numpy as np

from ..ops import shape as S
from .graph import OpContext, converts

_INT64_MAX, _INT64_MIN = np.iinfo(np.int64).max, np.iinfo(np.int64).min


@converts(S.Reshape)
def _reshape(ctx: OpContext) -> None:
    ctx.reshape(ctx.input(0), ctx.shapes(0), ctx.out_shapes(), ctx.out())


@converts(S.Permute)
def _permute(ctx: OpContext) -> None:
    ctx.emit("Transpose", [ctx.input(0)], ctx.out(), perm=[int(d) for d in ctx.params["dims"]])


@converts(S.Expand)
def _expand(ctx: OpContext) -> None:
    (ia, ib), (oa, ob) = ctx.shapes(0), ctx.out_shapes()
    lead = len(oa) - len(ia)
    target = []
    for i, (a, b) in enumerate(zip(oa, ob)):
        j = i - lead
        if j >= 0 and ia[j] == a and ib[j] == b:
            target.append(1)  # ONNX Expand broadcasts: 1 keeps the input's (possibly varying) size
        elif a == b:
            target.append(int(a))
        else:
            source = ctx.dim_of(a, b)
            if source is None:
                raise ctx.fail(f"it expands dim {i} to a size that varies with the input ({a} vs {b}) and matches "
                               f"no input dim; expand a tensor that already has the varying dim instead")
            target.append(source)
    ctx.emit("Expand", [ctx.input(0), ctx.shape_tensor(target)], ctx.out())


@converts(S.Repeat)
def _repeat(ctx: OpContext) -> None:
    reps = ctx.same(lambda p: tuple(p["reps"]), "repeat counts")
    x, (ia, ib) = ctx.input(0), ctx.shapes(0)
    extra = len(reps) - len(ia)
    if extra:
        x = ctx.reshape(x, (ia, ib), ((1,) * extra + ia, (1,) * extra + ib))
    ctx.emit("Tile", [x, ctx.ints(reps)], ctx.out())


@converts(S.Cat)
def _cat(ctx: OpContext) -> None:
    ctx.emit("Concat", [ctx.input(i) for i in range(ctx.n_inputs)], ctx.out(), axis=int(ctx.params["dim"]))


@converts(S.Stack)
def _stack(ctx: OpContext) -> None:
    dim = int(ctx.params["dim"])
    parts = [ctx.axes_op("Unsqueeze", ctx.input(i), [dim]) for i in range(ctx.n_inputs)]
    ctx.emit("Concat", parts, ctx.out(), axis=dim)


@converts(S.Pad)
def _pad(ctx: OpContext) -> None:
    pairs = ctx.same(lambda p: tuple(p["pairs"]), "padding")
    value = ctx.same(lambda p: p["value"], "fill value")
    x = ctx.input(0)
    crop = [(i, lo, hi) for i, (lo, hi) in enumerate(pairs) if lo < 0 or hi < 0]
    if crop:  # negative padding crops, as in torch
        axes = [i for i, _, _ in crop]
        starts = [-lo if lo < 0 else 0 for _, lo, _ in crop]
        ends = [hi if hi < 0 else _INT64_MAX for _, _, hi in crop]
        x = ctx.emit("Slice", [x, ctx.ints(starts), ctx.ints(ends), ctx.ints(axes)])
    begins = [max(lo, 0) for lo, _ in pairs]
    ends = [max(hi, 0) for _, hi in pairs]
    if not any(begins) and not any(ends):
        ctx.emit("Identity", [x], ctx.out())
        return
    fill = ctx.scalar(value, ctx.dtype(0))
    ctx.emit("Pad", [x, ctx.ints(begins + ends), fill], ctx.out(), mode="constant")


@converts(S.BasicIndex, S.SplitPiece)
def _getitem(ctx: OpContext) -> None:
    ctx.emit("Identity", [_basic_index(ctx, ctx.params["index"], ctx.params_b["index"])], ctx.out())


@converts(S.AdvancedIndex)
def _advanced(ctx: OpContext) -> None:
    basic, basic_b = ctx.params["basic"], ctx.params_b["basic"]
    x, ndim = ctx.input(0), len(ctx.shape(0))
    if basic is not None:  # ints and slices first (torch's order), then the index array
        x = _basic_index(ctx, basic, basic_b)
        ndim = ndim - sum(isinstance(it, int) for it in basic) + sum(it is None for it in basic)
    adv, adv_b = ctx.params["advanced"], ctx.params_b["advanced"]
    arrays = [k for k, it in enumerate(adv) if isinstance(it, np.ndarray) and it.ndim > 0]
    _advanced_index(ctx, x, ndim, adv, adv_b, arrays)


def _expand_ellipsis(items: tuple, ndim: int) -> list:
    used = sum(1 for it in items if it is not None and it is not Ellipsis)
    out = []
    for it in items:
        if it is Ellipsis:
            out += [slice(None)] * (ndim - used)
        else:
            out.append(it)
    if not any(it is Ellipsis for it in items):
        out += [slice(None)] * (ndim - used)
    return out


def _basic_index(ctx: OpContext, items: tuple, items_b: tuple):
    """The value ``input[items]`` (ints, slices, None, Ellipsis) as Slice/Squeeze/Unsqueeze nodes."""
    ndim = len(ctx.shape(0))
    full, full_b = _expand_ellipsis(items, ndim), _expand_ellipsis(items_b, ndim)
    if len(full) != len(full_b) or any(type(a) is not type(b) for a, b in zip(full, full_b)):
        raise ctx.fail(f"the index changes with the input ({items!r} vs {items_b!r})")
    axes, starts, ends, steps, squeeze, unsqueeze = [], [], [], [], [], []
    axis = 0  # input axis
    out_pos = 0  # position in the result
    for it, it_b in zip(full, full_b):
        if it is None:
            unsqueeze.append(out_pos)
            out_pos += 1
            continue
        if isinstance(it, slice):
            stop = _dynamic_stop(ctx, it, it_b)  # x[:n] with n an input's varying length (a table of positions)
            if stop is None and (it.start, it.stop, it.step) != (it_b.start, it_b.stop, it_b.step):
                raise ctx.fail(f"slice {it} on dim {axis} changes with the input (vs {it_b})")
            if it != slice(None) and it != slice(None, None, 1):
                step = 1 if it.step is None else int(it.step)
                start = it.start if it.start is not None else (0 if step > 0 else _INT64_MAX)
                if stop is None:
                    stop = int(it.stop) if it.stop is not None else (_INT64_MAX if step > 0 else _INT64_MIN)
                axes.append(axis), starts.append(int(start)), ends.append(stop), steps.append(step)
            axis += 1
            out_pos += 1
            continue
        value = int(it)
        if value != int(it_b):
            raise ctx.fail(f"integer index {value} on dim {axis} changes with the input (vs {int(it_b)})")
        axes.append(axis), starts.append(value), steps.append(1)
        ends.append(value + 1 if value != -1 else _INT64_MAX)
        squeeze.append(axis)
        axis += 1
    x = ctx.input(0)
    if axes:
        x = ctx.emit("Slice", [x, ctx.ints(starts), ctx.shape_tensor(ends), ctx.ints(axes), ctx.ints(steps)])
    if squeeze:
        x = ctx.axes_op("Squeeze", x, squeeze)
    if unsqueeze:
        x = ctx.axes_op("Unsqueeze", x, unsqueeze)
    return x


def _dynamic_stop(ctx: OpContext, it: slice, it_b) -> str | None:
    """For ``x[start:n]`` whose ``n`` differs between the two traces by exactly a graph input's varying size:
    that size, read at run time (a 1-element tensor name); else None."""
    if not isinstance(it_b, slice) or (it.start, it.step) != (it_b.start, it_b.step) or it.stop == it_b.stop:
        return None
    if not all(isinstance(s, (int, np.integer)) and s >= 0 for s in (it.stop, it_b.stop)):
        return None
    return ctx.dim_of(int(it.stop), int(it_b.stop))


def _advanced_index(ctx: OpContext, x, ndim: int, items: tuple, items_b: tuple, arrays: list) -> None:
    full = _expand_ellipsis(items, ndim)
    picks = [k for k, it in enumerate(full) if not (isinstance(it, slice) and it == slice(None))]
    if len(picks) == 1 and not isinstance(full[picks[0]], np.ndarray):
        picks = []
    if len(arrays) != 1 or len(picks) != 1 or full[picks[0]].dtype.kind not in "iu":
        raise ctx.fail(f"advanced indexing {items!r} is exportable only as one integer index array with full "
                       f"slices (x[:, idx]) elsewhere")
    axis = picks[0]
    k = arrays[0]
    idx = ctx.resolve(items[k], items_b[k] if k < len(items_b) else None, "index array")
    ctx.emit("Gather", [x, idx], ctx.out(), axis=axis)
