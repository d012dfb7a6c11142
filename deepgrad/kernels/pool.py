"""Pooling kernels on raw (N, C, H, W) arrays: window max (with the winning offset), window sum, and the
add-back that is the backward of both.

Windows are strided slices of the padded input, one per kernel offset, so a pool costs kh * kw
vectorised passes over the output; each backward adds the gradient back with the same loop of slices
(no scatter, no duplicate-index hazard). (Reducing a (N, C, Ho, kh, Wo, kw) reshape instead was measured
20x slower: NumPy reduces short inner axes poorly.)

On NumPy the loops avoid ``where``-style selects (NumPy branches per element on their masks) and split the
batch across threads: a 2x2 max pool over 64x32x32x32 float32 went from 5-7 ms to 1.4 ms forward and from
4.6 ms to 1.2 ms backward on one core. The ``*_reference`` functions are the plain xp loops (what CuPy
runs); the NumPy paths equal them bit for bit.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..backend import array_module
from . import is_numpy
from .im2col import pad_or_crop, window_slice
from .parallel import over_batch


class PoolGeometry(NamedTuple):
    kernel: tuple
    stride: tuple
    dilation: tuple
    pads: tuple  # (top, bottom, left, right); bottom/right include ceil-mode overhang
    x_shape: tuple  # input as (N, C, H, W)
    out_shape: tuple  # output as (N, C, Ho, Wo)
    public_out_shape: tuple
    padding: tuple  # the user's symmetric (ph, pw)


def _fast(a) -> bool:
    """NumPy arrays take the branch-free, batch-parallel loops (CuPy takes the references)."""
    return is_numpy(a)


def _slice(k: int, geom: PoolGeometry) -> tuple:
    """The (N, C, Ho, Wo) slice of the padded input that kernel offset ``k`` (row-major) reads."""
    kw = geom.kernel[1]
    return window_slice(k // kw, k % kw, geom.out_shape[2:], geom.stride, geom.dilation)


# ----------------------------------------------------------------------------- window max
def max_pool2d_forward(x4, geom: PoolGeometry) -> tuple:
    """(max over each window, winning kernel offset as a row-major index) of ``x4`` (N, C, H, W).

    torch's rules: strictly greater keeps the first maximum; a NaN always wins (the last NaN in the window).
    """
    if _fast(x4):
        return _max_pool2d_forward_cpu(x4, geom)
    return max_pool2d_forward_reference(x4, geom)


def _max_pool_buffers(x4, geom: PoolGeometry) -> tuple:
    xp = array_module(x4)
    kh, kw = geom.kernel
    xpad = pad_or_crop(x4, geom.pads, value=-math.inf)
    best = xp.empty(geom.out_shape, dtype=x4.dtype)
    return xpad, best, xp.empty(geom.out_shape, dtype=np.uint8 if kh * kw <= 2**8 else np.int32)


def _max_pool2d_forward_cpu(x4, geom: PoolGeometry) -> tuple:
    xpad, best, arg = _max_pool_buffers(x4, geom)

    def body(lo, hi):  # samples lo:hi
        _window_max_cpu(xpad[lo:hi], geom, best[lo:hi], arg[lo:hi], nan_rule=False)
        # A NaN still propagates into best: only then redo these windows with torch's NaN rule
        # (cheaper than scanning the whole input for NaN first).
        if hi > lo and bool(np.isnan(best[lo:hi].max())):
            _window_max_cpu(xpad[lo:hi], geom, best[lo:hi], arg[lo:hi], nan_rule=True)

    over_batch(xpad, body)
    return best, arg


def _window_max_cpu(xpad, geom: PoolGeometry, best, arg, nan_rule: bool) -> None:
    for k in range(geom.kernel[0] * geom.kernel[1]):
        v = xpad[_slice(k, geom)]
        if k == 0:
            best[...] = v
            arg[...] = 0
            continue
        take = v > best
        if nan_rule:
            take |= np.isnan(v)
            np.copyto(best, v, where=take)
        else:
            np.maximum(best, v, out=best)
        # Offsets only grow, so "arg = k where take" is max(arg, take * k): branch-free, where NumPy's
        # copyto(where=) branches per element and ran ~20x slower on these random masks.
        np.maximum(arg, np.multiply(take, k, dtype=arg.dtype), out=arg)


def max_pool2d_values(x4, geom: PoolGeometry):
    """The window maxima of :func:`max_pool2d_forward` without the winning offsets, for a forward nothing will
    differentiate (the replay of :mod:`deepgrad.jit`): one ``maximum`` per kernel offset instead of four calls.
    The same values bit for bit: ``maximum`` is what the forward uses, and it propagates a NaN as torch's rule
    (a NaN wins) does."""
    xpad = pad_or_crop(x4, geom.pads, value=-math.inf)
    best = array_module(x4).empty(geom.out_shape, dtype=x4.dtype)
    slices = [_slice(k, geom) for k in range(geom.kernel[0] * geom.kernel[1])]
    xp = array_module(x4)

    def body(lo, hi):
        part, out = xpad[lo:hi], best[lo:hi]
        out[...] = part[slices[0]]
        for s in slices[1:]:
            xp.maximum(out, part[s], out=out)

    over_batch(xpad, body)
    return best


def max_pool2d_forward_reference(x4, geom: PoolGeometry) -> tuple:
    """:func:`max_pool2d_forward` as plain selects over the window slices (any backend)."""
    xp = array_module(x4)
    xpad, best, arg = _max_pool_buffers(x4, geom)
    for nan_rule in (False, True):  # the NaN rule is needed only where a NaN reached the maximum
        for k in range(geom.kernel[0] * geom.kernel[1]):
            v = xpad[_slice(k, geom)]
            if k == 0:
                best[...] = v
                arg[...] = 0
                continue
            take = v > best
            if nan_rule:
                take |= xp.isnan(v)
                xp.copyto(best, v, where=take)
            else:
                xp.maximum(best, v, out=best)
            xp.copyto(arg, k, where=take)
        if best.size == 0 or not bool(xp.isnan(best.max())):
            break
    return best, arg


# ----------------------------------------------------------------------------- window sum
def window_sum_forward(x4, geom: PoolGeometry, divisor=None):
    """Sum of each zero-padded window of ``x4`` (N, C, H, W), divided by ``divisor`` when given (average
    pooling). In place into one buffer, the batch split across threads on NumPy: every sample is summed
    alike, so the split changes no bit."""
    xpad = pad_or_crop(x4, geom.pads, value=0.0)
    acc = array_module(x4).empty(geom.out_shape, dtype=x4.dtype)

    def body(lo, hi):  # samples lo:hi
        part, xpad_r = acc[lo:hi], xpad[lo:hi]
        for k in range(geom.kernel[0] * geom.kernel[1]):
            v = xpad_r[_slice(k, geom)]
            if k == 0:
                part[...] = v
            else:
                part += v
        if divisor is not None:
            part /= divisor

    over_batch(xpad, body)
    return acc


def window_sum_forward_reference(x4, geom: PoolGeometry, divisor=None):
    """:func:`window_sum_forward` as a plain sum of the window slices."""
    xpad = pad_or_crop(x4, geom.pads, value=0.0)
    acc = xpad[_slice(0, geom)].copy()
    for k in range(1, geom.kernel[0] * geom.kernel[1]):
        acc = acc + xpad[_slice(k, geom)]
    return acc if divisor is None else acc / divisor


# ----------------------------------------------------------------------------- add-back (backward)
def window_add_back(g, geom: PoolGeometry, argmax=None):
    """Adjoint of the window slicing: the input-sized gradient (N, C, H, W) that adds ``g`` (N, C, Ho, Wo)
    into every window position it came from, or with ``argmax`` (max pooling) only at the offset it names."""
    if _fast(g):
        return _window_add_back_cpu(g, geom, argmax)
    return window_add_back_reference(g, geom, argmax)


def _padded_hw(geom: PoolGeometry) -> tuple:
    t, b, lft, r = geom.pads
    return geom.x_shape[2] + t + b, geom.x_shape[3] + lft + r


def _crop(gpad, geom: PoolGeometry):
    """The input-sized part of a gradient computed on the padded input."""
    t, _, lft, _ = geom.pads
    h, w = geom.x_shape[2:]
    if gpad.shape[2:] == (h, w):
        return gpad
    return array_module(gpad).ascontiguousarray(gpad[:, :, t:t + h, lft:lft + w])


def _add_back_buffer(g, geom: PoolGeometry) -> tuple:
    """(gradient buffer on the padded input, whether windows are disjoint). Disjoint windows (stride >=
    dilated kernel) never write a position twice: they assign instead of add, and skip zero-filling when
    they also tile the whole buffer (the usual 2x2 / stride 2 pool)."""
    xp = array_module(g)
    kh, kw = geom.kernel
    (sh, sw), (dh, dw) = geom.stride, geom.dilation
    padded = _padded_hw(geom)
    disjoint = sh >= dh * (kh - 1) + 1 and sw >= dw * (kw - 1) + 1
    tiles = disjoint and (sh, sw) == (kh, kw) and (dh, dw) == (1, 1) and padded == tuple(
        o * k for o, k in zip(geom.out_shape[2:], geom.kernel))
    return (xp.empty if tiles else xp.zeros)(geom.x_shape[:2] + padded, dtype=g.dtype), disjoint


def _window_add_back_cpu(g, geom: PoolGeometry, argmax=None):
    gpad, disjoint = _add_back_buffer(g, geom)

    def body(lo, hi):  # samples lo:hi
        gr, gpad_r = g[lo:hi], gpad[lo:hi]
        tmp = np.empty_like(gr) if argmax is not None and not disjoint else None
        for k in range(geom.kernel[0] * geom.kernel[1]):
            window = gpad_r[_slice(k, geom)]
            if argmax is None:
                part = gr
            else:  # branch-free select, written straight into the window when windows are disjoint
                part = window if disjoint else tmp
                keep_where(argmax[lo:hi] == k, gr, out=part)
            if not disjoint:
                window += part
            elif part is not window:
                window[...] = part

    over_batch(gpad, body)  # sized by the input-sized buffer it fills
    return _crop(gpad, geom)


def keep_where(mask, g, out) -> None:
    """``out = g where mask else +0.0``, bit for bit, without a branch per element: NumPy's where /
    copyto(where=) branch on each mask value and ran ~25x slower on a random mask (2M floats: 7.4 vs
    0.3 ms) than this bitwise AND of the values' bits with a 0 / -1 integer mask."""
    bits = np.dtype(f"i{g.dtype.itemsize}")
    np.bitwise_and(g.view(bits), np.negative(mask.view(np.int8), dtype=bits), out=out.view(bits))


def window_add_back_reference(g, geom: PoolGeometry, argmax=None):
    """:func:`window_add_back` with plain ``where`` selects (any backend)."""
    xp = array_module(g)
    gpad, disjoint = _add_back_buffer(g, geom)
    for k in range(geom.kernel[0] * geom.kernel[1]):
        window = gpad[_slice(k, geom)]
        part = g if argmax is None else xp.where(argmax == k, g, 0)
        if disjoint:
            window[...] = part
        else:
            window += part
    return _crop(gpad, geom)
