"""Sliding-window kernels shared by convolution and pooling, on raw NumPy/CuPy arrays.

Everything works on 4-D (N, C, H, W) arrays; the 1-D ops view their input as H == 1.
``im2col`` is a strided *view* of the padded input copied once into GEMM layout; ``col2im``
adds the columns back by a loop over the kh * kw kernel offsets (each a strided slice add),
which is much faster than a scatter (``np.add.at``) and has no duplicate-index hazard.
"""

from __future__ import annotations

import numpy as np

from ..backend import array_module, scatter_add


# ----------------------------------------------------------------------------- padding and window slices
def pad_or_crop(x, pads: tuple, value=0.0):
    """``x`` (N, C, H, W) with (top, bottom, left, right) rows/cols added (positive) or cut (negative).

    Returns ``x`` itself when every pad is zero (no copy).
    """
    top, bottom, left, right = pads
    if top == bottom == left == right == 0:
        return x
    # Cut first (a view), then pad what remains positive.
    h, w = x.shape[2], x.shape[3]
    x = x[:, :, max(-top, 0):h - max(-bottom, 0), max(-left, 0):w - max(-right, 0)]
    top, bottom, left, right = max(top, 0), max(bottom, 0), max(left, 0), max(right, 0)
    if top == bottom == left == right == 0:
        return x
    xp = array_module(x)
    n, c, h, w = x.shape
    out = xp.empty((n, c, h + top + bottom, w + left + right), dtype=x.dtype)
    # Fill only the border strips, not the whole buffer: the interior is overwritten anyway.
    out[:, :, :top] = value
    out[:, :, top + h:] = value
    out[:, :, top:top + h, :left] = value
    out[:, :, top:top + h, left + w:] = value
    out[:, :, top:top + h, left:left + w] = x
    return out


def window_slice(i: int, j: int, out_hw: tuple, stride: tuple, dilation: tuple) -> tuple:
    """Index of the strided (N, C, Ho, Wo) slice that kernel offset (i, j) reads from a padded input."""
    (ho, wo), (sh, sw), (dh, dw) = out_hw, stride, dilation
    return (
        slice(None),
        slice(None),
        slice(i * dh, i * dh + sh * (ho - 1) + 1, sh),
        slice(j * dw, j * dw + sw * (wo - 1) + 1, sw),
    )


# ----------------------------------------------------------------------------- im2col / col2im
def windows(xpad, kernel: tuple, out_hw: tuple, stride: tuple, dilation: tuple):
    """The (N, C, kh, kw, Ho, Wo) strided *view* of an already padded (N, C, Hp, Wp) array: entry
    (n, c, i, j, y, x) is the input pixel that kernel offset (i, j) reads for output (y, x). No copy."""
    (kh, kw), (ho, wo), (sh, sw), (dh, dw) = kernel, out_hw, stride, dilation
    s0, s1, s2, s3 = xpad.strides
    return array_module(xpad).lib.stride_tricks.as_strided(
        xpad, xpad.shape[:2] + (kh, kw, ho, wo), (s0, s1, s2 * dh, s3 * dw, s2 * sh, s3 * sw)
    )


def im2col(xpad, kernel: tuple, out_hw: tuple, stride: tuple, dilation: tuple):
    """Columns (N, C, kh, kw, Ho, Wo), C-contiguous, of an already padded (N, C, Hp, Wp) array.

    One copy through a strided view; reshaped by the caller to (N, C*kh*kw, Ho*Wo) for the GEMM.
    """
    xp = array_module(xpad)
    if tuple(kernel) == (1, 1) and tuple(stride) == (1, 1) and xpad.shape[2:] == tuple(out_hw):
        n, c = xpad.shape[:2]
        return xp.ascontiguousarray(xpad).reshape((n, c, 1, 1) + tuple(out_hw))  # 1x1: no copy when contiguous
    return xp.ascontiguousarray(windows(xpad, kernel, out_hw, stride, dilation))


def col2im(cols, padded_hw: tuple, kernel: tuple, stride: tuple, dilation: tuple):
    """Sum columns (N, C, kh, kw, Ho, Wo) back into a zero (N, C, Hp, Wp) array: the adjoint of im2col."""
    xp = array_module(cols)
    n, c, kh, kw, ho, wo = cols.shape
    out = xp.zeros((n, c) + tuple(padded_hw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            out[window_slice(i, j, (ho, wo), stride, dilation)] += cols[:, :, i, j]
    return out


# ----------------------------------------------------------------------------- references
def window_indices(kernel: tuple, out_hw: tuple, stride: tuple, dilation: tuple) -> tuple:
    """(rows, cols) index arrays of shape (kh, kw, Ho, Wo): the padded-input pixel each window entry reads."""
    (kh, kw), (ho, wo), (sh, sw), (dh, dw) = kernel, out_hw, stride, dilation
    i, j, y, x = np.meshgrid(np.arange(kh), np.arange(kw), np.arange(ho), np.arange(wo), indexing="ij")
    return i * dh + y * sh, j * dw + x * sw


def im2col_reference(xpad, kernel: tuple, out_hw: tuple, stride: tuple, dilation: tuple):
    """:func:`im2col` as one fancy-index gather (no strided views): the plain definition it must equal."""
    rows, cols = window_indices(kernel, out_hw, stride, dilation)
    xp = array_module(xpad)
    return xpad[:, :, xp.asarray(rows), xp.asarray(cols)]


def col2im_reference(cols, padded_hw: tuple, kernel: tuple, stride: tuple, dilation: tuple):
    """:func:`col2im` as one scatter-add over the gathered indices (the adjoint of :func:`im2col_reference`)."""
    xp = array_module(cols)
    n, c, kh, kw, ho, wo = cols.shape
    rows, cc = window_indices(kernel, (ho, wo), stride, dilation)
    flat = xp.asarray((rows * padded_hw[1] + cc).reshape(1, -1))
    out = xp.zeros((n * c, padded_hw[0] * padded_hw[1]), dtype=cols.dtype)
    # Unbuffered: a pixel read by several windows gets every contribution, in (i, j, y, x) order.
    scatter_add(out, (xp.arange(n * c)[:, None], flat), cols.reshape(n * c, -1))
    return out.reshape((n, c) + tuple(padded_hw))
