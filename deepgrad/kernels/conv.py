"""Convolution kernels on raw (N, C, H, W) arrays: a conv, its input gradient and its weight gradient.

A conv forward is im2col (one strided copy) plus ONE batched GEMM; the weight gradient is one GEMM
against the columns; the input gradient is either a GEMM followed by col2im (any stride) or, for stride 1
when it moves less memory, the "full" correlation of the gradient with the flipped kernel (an im2col +
GEMM, as torch does). A transposed convolution is exactly the input gradient of a convolution, so its
kernels are these three with the roles swapped.

Two implementations of each: the whole-batch kernels (any backend: what CuPy and a batch of one run),
and on NumPy the batch-chunked, multi-threaded path (see the note above :data:`CHUNK_BYTES`). The
``*_reference`` functions at the end compute the same sums directly, one kernel offset at a time.
Every function takes the window as ``stride, pads, dilation, groups``: ``pads`` is (top, bottom, left,
right), weights are (O, C/g, kh, kw).
"""

from __future__ import annotations

import numpy as np

from ..backend import array_module
from . import is_numpy
from .im2col import col2im, im2col, pad_or_crop, window_slice, windows
from .parallel import parallel_for


# ----------------------------------------------------------------------------- dispatch
def conv2d_forward(x, w, stride, pads, dilation, groups, out_hw, keep_columns: bool):
    """Conv output (N, O, Ho, Wo) and, when ``keep_columns`` and the whole-batch kernel ran, its columns
    for the weight gradient (else None: the chunked path rebuilds them from the input in backward)."""
    if _chunked(x):
        return conv_forward_chunked(x, w, stride, pads, dilation, groups, out_hw), None
    out, cols = conv_forward(x, w, stride, pads, dilation, groups, out_hw)
    return out, (cols if keep_columns else None)


def conv2d_backward(g, x, cols, x_shape, w, stride, pads, dilation, groups, need_x: bool, need_w: bool):
    """(input grad, weight grad) of a conv from its output grad ``g``: from the saved columns ``cols`` when
    the forward kept them, else chunk by chunk from the saved input ``x`` (NumPy)."""
    if not (need_x or need_w):
        return None, None
    if cols is None and is_numpy(g):
        return conv_backward_chunked(g, x, x_shape, w, stride, pads, dilation, groups, need_x, need_w)
    gx = conv_input_grad(g, w, x_shape[2:], stride, pads, dilation, groups) if need_x else None
    gw = conv_weight_grad(g, cols, w.shape, groups) if need_w else None
    return gx, gw


def conv_transpose2d_forward(x, w, stride, pads, dilation, groups, out_shape):
    """Transposed conv of ``x`` (N, C_in, H, W) with ``w`` (C_in, C_out/g, kh, kw): a conv's input gradient."""
    if _chunked(x):
        return conv_backward_chunked(x, None, out_shape, w, stride, pads, dilation, groups, True, False)[0]
    return conv_input_grad(x, w, out_shape[2:], stride, pads, dilation, groups)


def conv_transpose2d_backward(g, x, x_shape, w, stride, pads, dilation, groups, need_x: bool, need_w: bool):
    """(input grad, weight grad) of a transposed conv: the plain conv of ``g``, whose columns serve both."""
    if not (need_x or need_w):
        return None, None
    x_hw = x_shape[2:]
    if _chunked(g):
        return conv_forward_chunked(g, w, stride, pads, dilation, groups, x_hw, need_out=need_x,
                                    weight_grad_of=x if need_w else None)
    gx, cols = conv_forward(g, w, stride, pads, dilation, groups, x_hw)
    gw = conv_weight_grad(x, cols, w.shape, groups) if need_w else None
    return (gx if need_x else None), gw


# ----------------------------------------------------------------------------- whole-batch kernels
def conv_forward(x, w, stride: tuple, pads: tuple, dilation: tuple, groups: int, out_hw: tuple):
    """(N, C, H, W) * (O, C/g, kh, kw) -> output (N, O, Ho, Wo) and the columns (N, g, C/g*kh*kw, Ho*Wo)."""
    xp = array_module(x)
    n = x.shape[0]
    o, cg, kh, kw = w.shape
    cols = im2col(pad_or_crop(x, pads), (kh, kw), out_hw, stride, dilation)
    cols = cols.reshape(n, groups, cg * kh * kw, out_hw[0] * out_hw[1])
    # (g, O/g, K) @ (N, g, K, L) -> (N, g, O/g, L), already in NCHW order: no transpose afterwards.
    out = xp.matmul(w.reshape(groups, o // groups, cg * kh * kw), cols)
    return out.reshape(n, o, out_hw[0], out_hw[1]), cols


def conv_weight_grad(g, cols, w_shape: tuple, groups: int):
    """Weight gradient of a conv from its output gradient (N, O, Ho, Wo) and saved columns."""
    n, o = g.shape[:2]
    g4 = g.reshape(n, groups, o // groups, -1)
    # One batched GEMM over the batch (the transposed operand is passed to BLAS without a copy).
    return array_module(g).matmul(g4, cols.swapaxes(-1, -2)).sum(axis=0).reshape(w_shape)


def _full_correlation_pays(o: int, c: int, kernel: tuple) -> bool:
    """For stride 1, the flipped-kernel conv writes (N, C, H, W) and copies (N, O, kh, kw, H, W);
    GEMM + col2im writes and re-reads (N, C, kh, kw, Ho, Wo) with a short (K = O) GEMM.
    Measured on 1 core: the former wins unless O is several times C (e.g. a 1-channel stem)."""
    return kernel == (1, 1) or o <= 2 * c


def flipped_weight(w, groups: int):
    """The weight of the input gradient as a conv: flipped in space, in/out channels swapped."""
    o, cg, kh, kw = w.shape
    wf = w.reshape(groups, o // groups, cg, kh, kw).transpose(0, 2, 1, 3, 4)[:, :, :, ::-1, ::-1]
    return array_module(w).ascontiguousarray(wf).reshape(cg * groups, o // groups, kh, kw)


def _full_correlation_pads(pads: tuple, dilation: tuple, kernel: tuple, x_hw: tuple, out_hw: tuple) -> tuple:
    """Pads of the output gradient for its stride-1 correlation with the flipped kernel (input grad)."""
    (top, _, left, _), (dh, dw), (kh, kw), (h, wd), (ho, wo) = pads, dilation, kernel, x_hw, out_hw
    return dh * (kh - 1) - top, h - ho + top, dw * (kw - 1) - left, wd - wo + left


def conv_input_grad(g, w, x_hw: tuple, stride: tuple, pads: tuple, dilation: tuple, groups: int):
    """Input gradient (N, C, H, W) of a conv from its output gradient g (N, O, Ho, Wo)."""
    xp = array_module(g)
    n, o, ho, wo = g.shape
    _, cg, kh, kw = w.shape
    og, c = o // groups, cg * groups
    top, bottom, left, right = pads
    h, wd = x_hw
    if stride == (1, 1) and _full_correlation_pays(o, c, (kh, kw)):
        # gx = g correlated with the kernel flipped in space and with in/out channels swapped.
        gpads = _full_correlation_pads(pads, dilation, (kh, kw), x_hw, (ho, wo))
        return conv_forward(g, flipped_weight(w, groups), (1, 1), gpads, dilation, groups, x_hw)[0]
    w3 = w.reshape(groups, og, cg * kh * kw)
    gcols = xp.matmul(w3.swapaxes(-1, -2), g.reshape(n, groups, og, ho * wo))  # (N, g, C/g*kh*kw, L)
    gcols = gcols.reshape(n, c, kh, kw, ho, wo)
    gpad = col2im(gcols, (h + top + bottom, wd + left + right), (kh, kw), stride, dilation)
    if top == bottom == left == right == 0:
        return gpad
    return xp.ascontiguousarray(gpad[:, :, top:top + h, left:left + wd])


# ----------------------------------------------------------------------------- batch chunking (CPU)
# On NumPy a conv runs over the batch a few images at a time. A chunk of b images has its columns
# laid out (C, kh, kw, b, Ho, Wo), so ONE GEMM with b*Ho*Wo columns serves the whole chunk (small
# images make per-image GEMMs far too thin), and the columns (about CHUNK_BYTES) are written and
# read back while still in cache, then freed: they are never kept for backward, where the weight
# gradient rebuilds them, cache-hot, from the saved input. The chunks are also the unit of
# multi-core work (kernels.parallel). Chunks never depend on the thread count and their weight
# grads are summed in batch order, so threads change nothing that the BLAS itself does not (OpenBLAS
# may round one GEMM differently with more threads; each chunk's GEMM runs on one).
# Measured on one core, batch 64: VGG 3x3 conv 32->32 at 32x32 forward 21.2 -> 14.5 ms; on two
# cores about half again. CuPy (and a batch of one) take the whole-batch kernels above.
CHUNK_BYTES = 2 << 20


def _chunked(x) -> bool:
    return is_numpy(x) and x.shape[0] > 1


def chunk_columns(xs, kernel: tuple, out_hw: tuple, stride: tuple, dilation: tuple, pads: tuple, groups: int):
    """Columns (g, C/g*kh*kw, b*Ho*Wo) of a chunk ``xs`` (b, C, H, W): one strided copy."""
    view = windows(pad_or_crop(xs, pads), kernel, out_hw, stride, dilation).transpose(1, 2, 3, 0, 4, 5)
    return np.ascontiguousarray(view).reshape(groups, -1, xs.shape[0] * out_hw[0] * out_hw[1])


def chunk_major(a, groups: int):
    """(b, O, Ho, Wo) -> (g, O/g, b*Ho*Wo): the layout of the chunk GEMMs (a copy unless b == 1)."""
    b, o = a.shape[:2]
    if b == 1:
        return a.reshape(groups, o // groups, -1)
    a = a.reshape(b, groups, o // groups, -1).transpose(1, 2, 0, 3)
    return np.ascontiguousarray(a).reshape(groups, o // groups, -1)


def _gemm_into(w3, cols, out):
    """out (b, O, Ho, Wo) = w3 (g, O/g, K) @ cols (g, K, b*L), back in image-major order."""
    b, o = out.shape[:2]
    groups = w3.shape[0]
    if b == 1:
        np.matmul(w3, cols, out=out.reshape(groups, o // groups, -1))
    else:
        y = np.matmul(w3, cols).reshape(groups, o // groups, b, -1)
        out.reshape(b, groups, o // groups, -1)[...] = y.transpose(2, 0, 1, 3)


def _input_grad_chunk(gs, w, wf, x_hw, stride, pads, dilation, groups, out, g2=None):
    """Input grad of a chunk (into ``out``) from its output grad ``gs`` (b, O, Ho, Wo); ``g2`` is
    ``chunk_major(gs)`` when the caller already has it."""
    b, o, ho, wo = gs.shape
    _, cg, kh, kw = w.shape
    top, bottom, left, right = pads
    h, wd = x_hw
    if stride == (1, 1) and _full_correlation_pays(o, cg * groups, (kh, kw)):  # see conv_input_grad
        gpads = _full_correlation_pads(pads, dilation, (kh, kw), x_hw, (ho, wo))
        cols, wp = row_columns(gs, (kh, kw), x_hw, dilation, gpads, groups)
        _gemm_rows_into(wf.reshape(groups, cg, -1), cols, out, wp)
        return
    g2 = chunk_major(gs, groups) if g2 is None else g2
    gcols = np.matmul(w.reshape(groups, o // groups, -1).swapaxes(-1, -2), g2)  # (g, C/g*kh*kw, b*L)
    gcols = gcols.reshape(cg * groups, kh, kw, b, ho, wo).transpose(3, 0, 1, 2, 4, 5)
    gpad = col2im(gcols, (h + top + bottom, wd + left + right), (kh, kw), stride, dilation)
    out[...] = gpad[:, :, top:top + h, left:left + wd]


# Stride 1: whole padded rows. With stride 1 the pixels that kernel offset (i, j) reads for a whole output
# image, taken row by row at the padded width Wp instead of Wo, are ONE contiguous run of the padded image
# (start i*dh*Wp + j*dw, length Ho*Wp). So the columns of a chunk are copied in runs of Ho*Wp values instead of
# Wo, and col2im adds them back the same way; each output row then carries Wp - Wo = dw*(kw-1) spare columns
# that the GEMMs compute and the output drops (the gradients put zeros there). Measured on one core, LeNet-5's
# 6->16 5x5 conv on 34 10x10 images: columns 0.33 -> 0.12 ms, col2im 1.24 -> 0.42 ms, for a GEMM 1.4x wider.
# A spare column multiplies a zero gradient with real input values: where those are not finite the product
# is NaN, so a non-finite weight-gradient share is recomputed on the plain columns, and the GEMM + col2im
# input grad takes rows only for a finite weight.
def row_columns(xs, kernel: tuple, out_hw: tuple, dilation: tuple, pads: tuple, groups: int):
    """``(columns (g, C/g*kh*kw, b*Ho*Wp), Wp)`` of a chunk ``xs`` (b, C, H, W) for a stride-1 conv."""
    (kh, kw), (dh, dw), (top, bottom, left, right) = kernel, dilation, pads
    wp = xs.shape[3] + left + right
    spare = -(-(kw - 1) * dw // wp)  # rows past the bottom, so the last run stays inside its image
    xpad = np.ascontiguousarray(pad_or_crop(xs, (top, bottom + spare, left, right)))
    b, c = xpad.shape[:2]
    s0, s1, s2, s3 = xpad.strides
    run = out_hw[0] * wp
    view = np.lib.stride_tricks.as_strided(xpad, (c, kh, kw, b, run), (s1, s2 * dh, s3 * dw, s0, s3))
    return np.ascontiguousarray(view).reshape(groups, -1, b * run), wp


def row_major(a, groups: int, wp: int):
    """(b, O, Ho, Wo) -> (g, O/g, b*Ho*Wp): :func:`chunk_major` at the padded width, zeros in the spare columns."""
    b, o, ho, wo = a.shape
    out = np.empty((groups, o // groups, b, ho, wp), dtype=a.dtype)
    out[..., wo:] = 0
    out[..., :wo] = a.reshape(b, groups, o // groups, ho, wo).transpose(1, 2, 0, 3, 4)
    return out.reshape(groups, o // groups, -1)


def _gemm_rows_into(w3, cols, out, wp: int):
    """out (b, O, Ho, Wo) = w3 (g, O/g, K) @ row columns (g, K, b*Ho*Wp), spare columns dropped."""
    b, o, ho, wo = out.shape
    groups = w3.shape[0]
    y = np.matmul(w3, cols).reshape(groups, o // groups, b, ho, wp)
    out.reshape(b, groups, o // groups, ho, wo)[...] = y[..., :wo].transpose(2, 0, 1, 3, 4)


def _input_grad_phases(gs, w, x_hw: tuple, pads: tuple, stride: tuple, dilation: tuple, groups: int, out, g2=None):
    """Input grad of a chunk (into ``out``, (b, C, H, W)) by GEMM + col2im on phase images; ``g2`` is
    ``row_major(gs, groups, Wq)`` when the caller already has it (at stride 1, Wq is the padded width Wp).

    With stride (sh, sw) the padded pixels split into sh*sw phases (row % sh, column % sw); kernel offset (i, j)
    only ever adds into phase ((i*dh) % sh, (j*dw) % sw), at a constant shift on that phase's grid, i.e. with
    stride 1 there. So each offset's columns are added to a contiguous phase image in ONE run of Ho*Wq values
    (the row layout of the note above :func:`row_columns`, Wq the phase width; the gradient's spare columns are
    zeros), instead of b*C*Ho runs of Wo values written every sw-th pixel, and the phases are then written into
    ``out`` once. Stride 1 is the one-phase case: the padded image itself, in rows.
    Measured on one core, interleaved against the plain col2im: the DCGAN benchmark step (4x4 stride-2 convs
    and transposed convs) 0.90-0.92 of its time. A weight with a non-finite value keeps the plain col2im.
    """
    b, o, ho, wo = gs.shape
    _, cg, kh, kw = w.shape
    (h, wd), (top, bottom, left, right), (sh, sw), (dh, dw) = x_hw, pads, stride, dilation
    c = cg * groups
    hq = -(-(h + top + bottom) // sh)
    wq = max(-(-(wd + left + right) // sw), wo + (kw - 1) * dw // sw)
    run = ho * wq
    g2 = row_major(gs, groups, wq) if g2 is None else g2
    gcols = np.matmul(w.reshape(groups, o // groups, -1).swapaxes(-1, -2), g2)
    gcols = gcols.reshape(c, kh, kw, b, run)
    phases = np.zeros((sh, sw, b, c, (hq + 1) * wq), dtype=out.dtype)  # one spare row: the last run's tail
    for i in range(kh):
        p, a = (i * dh) % sh, (i * dh) // sh
        for j in range(kw):
            q, a2 = (j * dw) % sw, (j * dw) // sw
            start = a * wq + a2
            phases[p, q, :, :, start:start + run] += gcols[:, i, j].transpose(1, 0, 2)
    grid = phases[..., :hq * wq].reshape(sh, sw, b, c, hq, wq)
    for p in range(sh):
        y0 = (p - top) % sh  # the first output row in padded-row phase p
        if y0 >= h:
            continue
        r0, ny = (top + y0) // sh, len(range(y0, h, sh))
        for q in range(sw):
            x0 = (q - left) % sw
            if x0 >= wd:
                continue
            c0, nx = (left + x0) // sw, len(range(x0, wd, sw))
            out[:, :, y0::sh, x0::sw] = grid[p, q, :, :, r0:r0 + ny, c0:c0 + nx]


def weight_share(g2, cols):
    """A chunk's share of the weight gradient, TRANSPOSED: (g, C/g*kh*kw, O/g) = columns (g, K, L) @ g2^T, with g2
    (g, O/g, L) the chunk's output gradient. That way round OpenBLAS runs it 1.6-1.8x faster than g2 @ columns^T,
    whose short M = O/g starves its kernels (measured on one core: VGG's 32->32 3x3 conv on one 32x32 image,
    K 288, L 1088: 71 vs 44 GFLOP/s; LeNet-5's 6->16 5x5 conv on 34 images: 66 vs 38)."""
    return np.matmul(cols, g2.swapaxes(-1, -2))


def weight_from_shares(total, w_shape: tuple):
    """The weight gradient (O, C/g, kh, kw) from the sum of :func:`weight_share` (g, C/g*kh*kw, O/g)."""
    return np.ascontiguousarray(total.swapaxes(-1, -2)).reshape(w_shape)


def over_chunks(n: int, step: int, chunk_fn):
    """Run ``chunk_fn(start, end)`` on the batch in chunks of ``step`` images, the chunks spread
    across threads; returns the sum, in batch order, of what the calls returned (or None)."""
    starts = range(0, n, step)

    def body(lo, hi):
        return [chunk_fn(s, min(s + step, n)) for s in starts[lo:hi]]

    total = None
    for parts in parallel_for(len(starts), body):
        for part in parts:
            if part is not None:
                total = part if total is None else np.add(total, part, out=total)
    return total


def _step(channels: int, kernel: tuple, out_hw: tuple, itemsize: int) -> int:
    """Images per chunk: those whose columns (channels * kh * kw * Ho * Wo values each) fill about CHUNK_BYTES."""
    per_image = channels * kernel[0] * kernel[1] * out_hw[0] * out_hw[1] * itemsize
    return max(1, CHUNK_BYTES // max(per_image, 1))


def conv_forward_chunked(x, w, stride, pads, dilation, groups, out_hw, need_out: bool = True, weight_grad_of=None):
    """:func:`conv_forward`'s output, chunk by chunk over the batch (and across threads). With
    ``weight_grad_of`` (an array (N, C', Ho', Wo') playing a conv's output gradient against ``x`` as its
    input: a transposed conv's backward) each chunk's columns also give the gradient of ``w``, returned
    beside the output as ``(out or None, weight grad)``."""
    out = np.empty((x.shape[0], w.shape[0]) + tuple(out_hw), dtype=x.dtype) if need_out else None
    w3 = w.reshape(groups, w.shape[0] // groups, -1)

    def chunk(s, e):
        if stride == (1, 1):  # whole padded rows: see the note above row_columns
            cols, wp = row_columns(x[s:e], w.shape[2:], out_hw, dilation, pads, groups)
            if need_out:
                _gemm_rows_into(w3, cols, out[s:e], wp)
            if weight_grad_of is None:
                return None
            with np.errstate(invalid="ignore"):  # as in conv_backward_chunked
                part = weight_share(row_major(weight_grad_of[s:e], groups, wp), cols)
            if np.isfinite(part).all():
                return part
            # A non-finite value met a spare column: this chunk's share again, on the plain columns.
            cols = chunk_columns(x[s:e], w.shape[2:], out_hw, stride, dilation, pads, groups)
            return weight_share(chunk_major(weight_grad_of[s:e], groups), cols)
        cols = chunk_columns(x[s:e], w.shape[2:], out_hw, stride, dilation, pads, groups)
        if need_out:
            _gemm_into(w3, cols, out[s:e])
        if weight_grad_of is not None:
            return weight_share(chunk_major(weight_grad_of[s:e], groups), cols)
        return None

    gw = over_chunks(x.shape[0], _step(x.shape[1], w.shape[2:], out_hw, x.itemsize), chunk)
    return out if weight_grad_of is None else (out, weight_from_shares(gw, w.shape))


def conv_backward_chunked(g, x, x_shape, w, stride, pads, dilation, groups, need_x: bool, need_w: bool):
    """(input grad, weight grad) of a conv from its output grad ``g``, chunk by chunk over the batch:
    each chunk's columns are rebuilt from the saved input ``x`` (needed only for the weight grad)."""
    ho, wo = g.shape[2:]
    gx = np.empty(x_shape, dtype=g.dtype) if need_x else None
    full = stride == (1, 1) and _full_correlation_pays(w.shape[0], x_shape[1], w.shape[2:])
    wf = flipped_weight(w, groups) if need_x and full else None
    rows = stride == (1, 1) and min(pads) >= 0  # whole padded rows: see the note above row_columns
    # The GEMM + col2im input grad on phase images (rows at stride 1), where its spare columns (0 * w) stay 0.
    phases_x = need_x and not full and min(pads) >= 0 and bool(np.isfinite(w).all())

    def chunk(s, e):
        part = g2 = None
        if rows and (need_w or phases_x):
            g2 = row_major(g[s:e], groups, x_shape[3] + pads[2] + pads[3])
        if phases_x:
            _input_grad_phases(g[s:e], w, x_shape[2:], pads, stride, dilation, groups, gx[s:e], g2)
        if need_w and rows:
            cols = row_columns(x[s:e], w.shape[2:], (ho, wo), dilation, pads, groups)[0]
            with np.errstate(invalid="ignore"):  # NaN from a spare column is caught below, not reported
                part = weight_share(g2, cols)
            if not np.isfinite(part).all():  # a non-finite input met a spare column: redo it plainly
                part = None
        redo_w = need_w and part is None
        if redo_w or (need_x and not phases_x):
            g2 = chunk_major(g[s:e], groups) if redo_w else None
            if need_x and not phases_x:
                _input_grad_chunk(g[s:e], w, wf, x_shape[2:], stride, pads, dilation, groups, gx[s:e], g2)
            if redo_w:
                cols = chunk_columns(x[s:e], w.shape[2:], (ho, wo), stride, dilation, pads, groups)
                part = weight_share(g2, cols)
        return part

    gw = over_chunks(g.shape[0], _step(x_shape[1], w.shape[2:], (ho, wo), g.itemsize), chunk)
    return gx, (weight_from_shares(gw, w.shape) if need_w else None)


# ----------------------------------------------------------------------------- references
def _offsets(x, w, stride, pads, dilation, groups, out_hw):
    """(padded x grouped as (N, g, C/g, Hp, Wp), w grouped as (g, O/g, C/g, kh, kw), the window slices)."""
    n, c = x.shape[:2]
    o, cg, kh, kw = w.shape
    xpad = pad_or_crop(x, pads)
    slices = [(i, j, window_slice(i, j, out_hw, stride, dilation)[2:]) for i in range(kh) for j in range(kw)]
    return xpad.reshape((n, groups, cg) + xpad.shape[2:]), w.reshape(groups, o // groups, cg, kh, kw), slices


def conv2d_forward_reference(x, w, stride, pads, dilation, groups, out_hw):
    """The conv as its definition: for each kernel offset (i, j), the input pixels it reads times w[..., i, j]."""
    xp = array_module(x)
    xg, wg, slices = _offsets(x, w, stride, pads, dilation, groups, out_hw)
    out = xp.zeros((x.shape[0], groups, w.shape[0] // groups) + tuple(out_hw), dtype=x.dtype)
    for i, j, (rows, cols) in slices:
        out += xp.einsum("ngchw,goc->ngohw", xg[:, :, :, rows, cols], wg[..., i, j])
    return out.reshape((x.shape[0], w.shape[0]) + tuple(out_hw))


def conv2d_input_grad_reference(g, w, x_shape, stride, pads, dilation, groups):
    """The adjoint of :func:`conv2d_forward_reference` in its input: each offset's share added back."""
    xp = array_module(g)
    n, o, ho, wo = g.shape
    top, bottom, left, right = pads
    h, wd = x_shape[2:]
    gpad = xp.zeros(tuple(x_shape[:2]) + (h + top + bottom, wd + left + right), dtype=g.dtype)
    gg, wg, slices = _offsets(gpad, w, stride, (0, 0, 0, 0), dilation, groups, (ho, wo))
    g5 = g.reshape(n, groups, o // groups, ho, wo)
    for i, j, (rows, cols) in slices:
        gg[:, :, :, rows, cols] += xp.einsum("ngohw,goc->ngchw", g5, wg[..., i, j])
    return gpad[:, :, top:top + h, left:left + wd]


def conv2d_weight_grad_reference(g, x, w_shape, stride, pads, dilation, groups):
    """The adjoint of :func:`conv2d_forward_reference` in its weight: one contraction per kernel offset."""
    xp = array_module(g)
    n, o, ho, wo = g.shape
    xg, _, slices = _offsets(x, xp.empty(w_shape, g.dtype), stride, pads, dilation, groups, (ho, wo))
    g5 = g.reshape(n, groups, o // groups, ho, wo)
    gw = xp.empty((groups, o // groups, w_shape[1]) + tuple(w_shape[2:]), dtype=g.dtype)
    for i, j, (rows, cols) in slices:
        gw[..., i, j] = xp.einsum("ngohw,ngchw->goc", g5, xg[:, :, :, rows, cols])
    return gw.reshape(w_shape)
