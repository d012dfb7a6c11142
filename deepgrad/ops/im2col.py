"""Sliding-window machinery shared by convolution and pooling, on raw NumPy/CuPy arrays.

Everything works on 4-D (N, C, H, W) arrays; the 1-D ops view their input as H == 1.
``im2col`` is a strided *view* of the padded input copied once into GEMM layout; ``col2im``
adds the columns back by a loop over the kh * kw kernel offsets (each a strided slice add),
which is much faster than a scatter (``np.add.at``) and has no duplicate-index hazard.
"""

from __future__ import annotations

from ..backend import array_module
from ..tensor import Tensor


# ----------------------------------------------------------------------------- arguments
def ntuple(value, n: int, name: str, op: str) -> tuple:
    """``value`` (an int or a sequence of n ints) as an n-tuple of ints."""
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return (int(value),) * n
    try:
        out = tuple(int(v) for v in value)
    except TypeError:
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}") from None
    if len(out) == 1:
        return out * n
    if len(out) != n:
        raise ValueError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    return out


def check_positive(values: tuple, name: str, op: str) -> None:
    if any(v <= 0 for v in values):
        raise ValueError(f"{op}: {name} must be positive, got {values}")


def check_nonnegative(values: tuple, name: str, op: str) -> None:
    if any(v < 0 for v in values):
        raise ValueError(f"{op}: {name} must be non-negative, got {values}")


def as_batched(x: Tensor, spatial: int, op: str) -> tuple[Tensor, bool]:
    """Check that ``x`` is (N, C, *spatial) or unbatched (C, *spatial); return it batched."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    if x.ndim == spatial + 2:
        return x, False
    if x.ndim == spatial + 1:
        return x.unsqueeze(0), True
    dims = "(N, C, L) or (C, L)" if spatial == 1 else "(N, C, H, W) or (C, H, W)"
    raise RuntimeError(
        f"{op}: expected a {spatial + 1}-D (unbatched) or {spatial + 2}-D (batched) input {dims}, "
        f"got shape {tuple(x.shape)}"
    )


# ----------------------------------------------------------------------------- geometry
def conv_out_size(size: int, k: int, s: int, pad_lo: int, pad_hi: int, d: int) -> int:
    """Output length of a (floor-mode) sliding window over ``size`` padded by (pad_lo, pad_hi)."""
    return (size + pad_lo + pad_hi - d * (k - 1) - 1) // s + 1


def pool_out_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """torch's pooling output length: in ceil mode the last window must start inside input or left pad."""
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


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
