"""Convolutions: conv1d, conv2d, conv_transpose1d, conv_transpose2d (torch.nn.functional semantics).

All four run on one 2-D engine (1-D inputs are viewed as height 1). A conv forward is
im2col (one strided copy) plus ONE batched GEMM; the weight gradient is one GEMM against the
saved columns; the input gradient is either a GEMM followed by col2im (any stride) or, for
stride 1 when it moves less memory, the "full" correlation of the gradient with the flipped
kernel (an im2col + GEMM, as torch does). A transposed convolution is exactly the input
gradient of a convolution, so it reuses the same three kernels with the roles swapped.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..autograd import Function, is_grad_enabled
from ..backend import array_module
from ..parallel import parallel_for
from ..tensor import Tensor
from .im2col import (
    check_nonnegative,
    check_positive,
    col2im,
    conv_out_size,
    im2col,
    ntuple,
    pad_or_crop,
    windows,
)


# ----------------------------------------------------------------------------- raw kernels
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
# images make per-image GEMMs far too thin), and the columns (about _CHUNK_BYTES) are written and
# read back while still in cache, then freed: they are never kept for backward, where the weight
# gradient rebuilds them, cache-hot, from the saved input. The chunks are also the unit of
# multi-core work (deepgrad.parallel). Chunks never depend on the thread count and their weight
# grads are summed in batch order, so threads change nothing that the BLAS itself does not (OpenBLAS
# may round one GEMM differently with more threads; each chunk's GEMM runs on one).
# Measured on one core, batch 64: VGG 3x3 conv 32->32 at 32x32 forward 21.2 -> 14.5 ms; on two
# cores about half again. CuPy (and a batch of one) take the whole-batch kernels above.
_CHUNK_BYTES = 2 << 20


def _chunked(x) -> bool:
    return array_module(x) is np and x.shape[0] > 1


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
        cols = chunk_columns(gs, (kh, kw), x_hw, (1, 1), dilation, gpads, groups)
        _gemm_into(wf.reshape(groups, cg, -1), cols, out)
        return
    g2 = chunk_major(gs, groups) if g2 is None else g2
    gcols = np.matmul(w.reshape(groups, o // groups, -1).swapaxes(-1, -2), g2)  # (g, C/g*kh*kw, b*L)
    gcols = gcols.reshape(cg * groups, kh, kw, b, ho, wo).transpose(3, 0, 1, 2, 4, 5)
    gpad = col2im(gcols, (h + top + bottom, wd + left + right), (kh, kw), stride, dilation)
    out[...] = gpad[:, :, top:top + h, left:left + wd]


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
    """Images per chunk: those whose columns (channels * kh * kw * Ho * Wo values each) fill about _CHUNK_BYTES."""
    per_image = channels * kernel[0] * kernel[1] * out_hw[0] * out_hw[1] * itemsize
    return max(1, _CHUNK_BYTES // max(per_image, 1))


def conv_forward_batched(x, w, stride, pads, dilation, groups, out_hw):
    """:func:`conv_forward`'s output, computed chunk by chunk over the batch (and across threads)."""
    out = np.empty((x.shape[0], w.shape[0]) + tuple(out_hw), dtype=x.dtype)
    w3 = w.reshape(groups, w.shape[0] // groups, -1)

    def chunk(s, e):
        _gemm_into(w3, chunk_columns(x[s:e], w.shape[2:], out_hw, stride, dilation, pads, groups), out[s:e])

    over_chunks(x.shape[0], _step(x.shape[1], w.shape[2:], out_hw, x.itemsize), chunk)
    return out


def conv_backward_batched(g, x, x_shape, w, stride, pads, dilation, groups, need_x: bool, need_w: bool):
    """(input grad, weight grad) of a conv from its output grad ``g``, chunk by chunk over the batch:
    each chunk's columns are rebuilt from the saved input ``x`` (needed only for the weight grad)."""
    ho, wo = g.shape[2:]
    gx = np.empty(x_shape, dtype=g.dtype) if need_x else None
    wf = flipped_weight(w, groups) if need_x else None

    def chunk(s, e):
        g2 = chunk_major(g[s:e], groups) if need_w else None
        if need_x:
            _input_grad_chunk(g[s:e], w, wf, x_shape[2:], stride, pads, dilation, groups, gx[s:e], g2)
        if need_w:
            cols = chunk_columns(x[s:e], w.shape[2:], (ho, wo), stride, dilation, pads, groups)
            return np.matmul(g2, cols.swapaxes(-1, -2))  # (g, O/g, C/g*kh*kw): the chunk's share
        return None

    gw = over_chunks(g.shape[0], _step(x_shape[1], w.shape[2:], (ho, wo), g.itemsize), chunk)
    return gx, (gw.reshape(w.shape) if need_w else None)


# ----------------------------------------------------------------------------- functions
class Geometry(NamedTuple):
    """Everything a conv node needs besides arrays; shapes are the 4-D views the engine works on."""

    stride: tuple
    pads: tuple  # (top, bottom, left, right)
    dilation: tuple
    groups: int
    x_shape: tuple  # input as (N, C, H, W)
    w_shape: tuple  # weight as (O, C/g, kh, kw) for conv, (C_in, C_out/g, kh, kw) transposed
    out_shape: tuple  # output as (N, O, Ho, Wo)
    public_out_shape: tuple  # output as the caller sees it (unbatched / 1-D)
    keep: bool  # save what only the weight gradient needs


class Conv(Function):
    """Fused conv (1-D or 2-D): forward and its weight/input/bias gradients side by side."""

    saved = ((0, 1),)

    def forward(self, x, w, b=None, *, geom: Geometry):
        self.geom, self.x_public, self.w_public = geom, x.shape, w.shape
        self.w = w.reshape(geom.w_shape)
        x = x.reshape(geom.x_shape)
        args = (geom.stride, geom.pads, geom.dilation, geom.groups)
        self.x = self.cols = None  # only the weight gradient reads the input (or its columns)
        if _chunked(x):
            out = conv_forward_batched(x, self.w, *args, geom.out_shape[2:])
            self.x = x if geom.keep else None
        else:
            out, cols = conv_forward(x, self.w, *args, geom.out_shape[2:])
            self.cols = cols if geom.keep else None
        if b is not None:
            out += b.reshape(1, -1, 1, 1)
        return out.reshape(geom.public_out_shape)

    def backward(self, g):
        geom = self.geom
        g = g.reshape(geom.out_shape)
        need_x, need_w = self.next[0] is not None, self.next[1] is not None
        args = (geom.stride, geom.pads, geom.dilation, geom.groups)
        gx = gw = gb = None
        if self.cols is None and (need_x or need_w):
            gx, gw = conv_backward_batched(g, self.x, geom.x_shape, self.w, *args, need_x, need_w)
        else:
            if need_x:
                gx = conv_input_grad(g, self.w, geom.x_shape[2:], *args)
            if need_w:
                gw = conv_weight_grad(g, self.cols, geom.w_shape, geom.groups)
        gx = None if gx is None else gx.reshape(self.x_public)
        gw = None if gw is None else gw.reshape(self.w_public)
        if len(self.next) > 2 and self.next[2] is not None:
            gb = g.sum(axis=(0, 2, 3))
        return gx, gw, gb


class ConvTranspose(Function):
    """Fused transposed conv (1-D or 2-D): a conv's input gradient as forward, with its own backward."""

    saved = ((0, 1),)

    def forward(self, x, w, b=None, *, geom: Geometry):
        self.geom, self.x_public, self.w_public = geom, x.shape, w.shape
        self.w = w.reshape(geom.w_shape)
        x = x.reshape(geom.x_shape)
        self.x = x if geom.keep else None  # only the weight gradient reads the input
        args = (geom.stride, geom.pads, geom.dilation, geom.groups)
        out_hw = geom.out_shape[2:]
        if _chunked(x):
            out = np.empty(geom.out_shape, dtype=x.dtype)
            wf = flipped_weight(self.w, geom.groups)

            def chunk(s, e):
                _input_grad_chunk(x[s:e], self.w, wf, out_hw, *args, out=out[s:e])

            over_chunks(x.shape[0], _step(geom.w_shape[1] * geom.groups, geom.w_shape[2:], x.shape[2:], x.itemsize),
                       chunk)
        else:
            out = conv_input_grad(x, self.w, out_hw, *args)
        if b is not None:
            out += b.reshape(1, -1, 1, 1)
        return out.reshape(geom.public_out_shape)

    def backward(self, g):
        geom = self.geom
        g = g.reshape(geom.out_shape)
        need_x, need_w = self.next[0] is not None, self.next[1] is not None
        args = (geom.stride, geom.pads, geom.dilation, geom.groups)
        x_hw = geom.x_shape[2:]
        gx = gw = gb = None
        if need_x or need_w:
            # The gradient is the plain conv of g: its columns serve both the input and the weight grads.
            if _chunked(g):
                gx = np.empty(geom.x_shape, dtype=g.dtype) if need_x else None
                w3 = self.w.reshape(geom.groups, geom.w_shape[0] // geom.groups, -1)

                def chunk(s, e):
                    cols = chunk_columns(g[s:e], geom.w_shape[2:], x_hw, geom.stride, geom.dilation, geom.pads,
                                         geom.groups)
                    if need_x:
                        _gemm_into(w3, cols, gx[s:e])
                    if need_w:
                        return np.matmul(chunk_major(self.x[s:e], geom.groups), cols.swapaxes(-1, -2))
                    return None

                gw = over_chunks(g.shape[0], _step(g.shape[1], geom.w_shape[2:], x_hw, g.itemsize), chunk)
            else:
                gx, cols = conv_forward(g, self.w, *args, x_hw)
                gw = conv_weight_grad(self.x, cols, geom.w_shape, geom.groups) if need_w else None
            gx = gx.reshape(self.x_public) if need_x else None
            gw = gw.reshape(self.w_public) if need_w else None
        if len(self.next) > 2 and self.next[2] is not None:
            gb = g.sum(axis=(0, 2, 3))
        return gx, gw, gb


# ----------------------------------------------------------------------------- argument checks
def _check_tensors(op: str, x, w, b, nd: int) -> None:
    for name, t in (("input", x), ("weight", w)) + ((("bias", b),) if b is not None else ()):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    if x.ndim not in (nd + 1, nd + 2):
        dims = "(N, C, L) or (C, L)" if nd == 1 else "(N, C, H, W) or (C, H, W)"
        raise RuntimeError(
            f"{op}: expected a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input {dims}, got shape {tuple(x.shape)}"
        )
    if w.ndim != nd + 2:
        raise RuntimeError(f"{op}: expected a {nd + 2}-D weight, got shape {tuple(w.shape)}")
    for name, t in (("weight", w),) + ((("bias", b),) if b is not None else ()):
        if type(t.array) is not type(x.array):
            raise RuntimeError(f"{op}: input is on {x.device} but {name} is on {t.device}; move them to one device")
        if t.dtype != x.dtype:
            raise RuntimeError(f"{op}: input dtype ({x.dtype}) and {name} dtype ({t.dtype}) should be the same")
    if x.dtype.kind != "f":
        raise RuntimeError(f"{op}: expected a floating-point input, got {x.dtype}")
    if b is not None and b.ndim != 1:
        raise RuntimeError(f"{op}: bias must be 1-D, got shape {tuple(b.shape)}")


def _conv_geometry(op, x, w, b, stride, padding, dilation, groups, nd: int, output_padding=None) -> Geometry:
    """Validate a conv / transposed conv call the way torch does and work out its 4-D geometry."""
    _check_tensors(op, x, w, b, nd)
    transposed = output_padding is not None
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive integer, got {groups!r}")
    stride, dilation = ntuple(stride, nd, "stride", op), ntuple(dilation, nd, "dilation", op)
    check_positive(stride, "stride", op)
    check_positive(dilation, "dilation", op)
    kernel = tuple(w.shape[2:])
    batched = x.ndim == nd + 2
    n = x.shape[0] if batched else 1
    c, size = x.shape[-nd - 1], tuple(x.shape[-nd:])
    if transposed:
        if c != w.shape[0]:
            raise RuntimeError(
                f"{op}: given transposed weight of size {tuple(w.shape)} (in_channels, out_channels/groups, *kernel), "
                f"expected input{tuple(x.shape)} to have {w.shape[0]} channels, but got {c} channels instead"
            )
        if c % groups:
            raise RuntimeError(f"{op}: in_channels ({c}) must be divisible by groups ({groups})")
        out_channels = w.shape[1] * groups
    else:
        if c != w.shape[1] * groups:
            raise RuntimeError(
                f"{op}: given groups={groups}, weight of size {tuple(w.shape)}, expected input{tuple(x.shape)} "
                f"to have {w.shape[1] * groups} channels, but got {c} channels instead"
            )
        if w.shape[0] % groups:
            raise RuntimeError(f"{op}: out_channels ({w.shape[0]}) must be divisible by groups ({groups})")
        out_channels = w.shape[0]
    if b is not None and b.shape[0] != out_channels:
        raise RuntimeError(f"{op}: bias of shape {tuple(b.shape)} does not match {out_channels} output channels")
    eff = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))

    if isinstance(padding, str):
        if transposed:
            raise ValueError(f"{op}: padding must be an int or a tuple of ints, got {padding!r}")
        if padding == "valid":
            pads = ((0, 0),) * nd
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions (stride={stride})")
            # torch: total d*(k-1), the odd extra element goes to the right/bottom.
            pads = tuple(((e - 1) // 2, (e - 1) - (e - 1) // 2) for e in eff)
        else:
            raise ValueError(f"{op}: invalid padding string {padding!r}, should be one of 'valid', 'same'")
    else:
        p = ntuple(padding, nd, "padding", op)
        check_nonnegative(p, "padding", op)
        pads = tuple((v, v) for v in p)

    if transposed:
        op_pad = ntuple(output_padding, nd, "output_padding", op)
        check_nonnegative(op_pad, "output_padding", op)
        for o, s, d in zip(op_pad, stride, dilation):
            if o >= max(s, d):
                raise ValueError(
                    f"{op}: output padding must be smaller than either stride or dilation, got "
                    f"output_padding={op_pad}, stride={stride}, dilation={dilation}"
                )
        out_size = tuple(
            (i - 1) * s - lo - hi + e - 1 + o + 1 for i, s, (lo, hi), e, o in zip(size, stride, pads, eff, op_pad)
        )
        if any(o <= 0 for o in out_size):
            raise RuntimeError(
                f"{op}: input of size {size} with kernel {kernel}, stride {stride}, padding "
                f"{tuple(lo for lo, _ in pads)}, dilation {dilation} gives output size {out_size}, which is too small"
            )
    else:
        padded = tuple(i + lo + hi for i, (lo, hi) in zip(size, pads))
        if any(pz < e for pz, e in zip(padded, eff)):
            raise RuntimeError(
                f"{op}: calculated padded input size per channel: {padded}; kernel size (dilated): {eff}. "
                f"Kernel size can't be greater than actual input size (input {tuple(x.shape)}, weight {tuple(w.shape)})"
            )
        out_size = tuple(
            conv_out_size(i, k, s, lo, hi, d) for i, k, s, (lo, hi), d in zip(size, kernel, stride, pads, dilation)
        )

    x4_size, o4_size = size, out_size
    public_out = ((n,) if batched else ()) + (out_channels,) + out_size
    if nd == 1:  # view as a 2-D problem of height 1
        stride, dilation, kernel = (1,) + stride, (1,) + dilation, (1,) + kernel
        pads, x4_size, o4_size = ((0, 0),) + pads, (1,) + x4_size, (1,) + o4_size
    return Geometry(
        stride=stride,
        pads=pads[0] + pads[1],
        dilation=dilation,
        groups=groups,
        x_shape=(n, c) + x4_size,
        w_shape=tuple(w.shape[:2]) + kernel,
        out_shape=(n, out_channels) + o4_size,
        public_out_shape=public_out,
        keep=is_grad_enabled() and w.requires_grad,
    )


def _apply(cls, x: Tensor, w: Tensor, b, geom: Geometry) -> Tensor:
    return cls.apply(x, w, geom=geom) if b is None else cls.apply(x, w, b, geom=geom)


# ----------------------------------------------------------------------------- public API
def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """1-D convolution (cross-correlation) of (N, C_in, L) or (C_in, L) with weight (C_out, C_in/groups, k).

    >>> conv1d(randn(2, 3, 10), randn(4, 3, 3), padding="same").shape
    (2, 4, 10)
    """
    geom = _conv_geometry("conv1d", input, weight, bias, stride, padding, dilation, groups, 1)
    return _apply(Conv, input, weight, bias, geom)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """2-D convolution of (N, C_in, H, W) or (C_in, H, W) with weight (C_out, C_in/groups, kH, kW).

    ``padding`` is an int, a pair, or "same" / "valid" (as torch).

    >>> conv2d(randn(8, 1, 28, 28), randn(6, 1, 5, 5)).shape
    (8, 6, 24, 24)
    """
    geom = _conv_geometry("conv2d", input, weight, bias, stride, padding, dilation, groups, 2)
    return _apply(Conv, input, weight, bias, geom)


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """1-D transposed convolution; weight is (C_in, C_out/groups, k) as in torch.

    >>> conv_transpose1d(randn(2, 4, 5), randn(4, 3, 3), stride=2).shape
    (2, 3, 11)
    """
    geom = _conv_geometry("conv_transpose1d", input, weight, bias, stride, padding, dilation, groups, 1,
                          output_padding=output_padding)
    return _apply(ConvTranspose, input, weight, bias, geom)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """2-D transposed convolution ("deconvolution"); weight is (C_in, C_out/groups, kH, kW) as in torch.

    >>> conv_transpose2d(randn(2, 8, 7, 7), randn(8, 4, 4, 4), stride=2, padding=1).shape
    (2, 4, 14, 14)
    """
    geom = _conv_geometry("conv_transpose2d", input, weight, bias, stride, padding, dilation, groups, 2,
                          output_padding=output_padding)
    return _apply(ConvTranspose, input, weight, bias, geom)
