"""Deterministic image operations on NumPy arrays shaped ``(..., H, W)``: a sample ``(C, H, W)``,
a batch ``(N, C, H, W)`` or a plain ``(H, W)`` image. Floats are expected in [0, 1] where colour
ops clamp (as torchvision does for float images). The random transforms choose the parameters.

Geometry uses pixel-centre coordinates: pixel ``(i, j)`` sits at ``(x, y) = (j, i)`` and the image
centre is ``((W - 1) / 2, (H - 1) / 2)``, so a 90 degree rotation of a square image maps the pixel
grid onto itself exactly (it equals ``np.rot90``). Positive angles turn the picture counter-clockwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

_INTERPOLATIONS = ("nearest", "bilinear")


def _check_image(img: np.ndarray, op: str, min_ndim: int = 2) -> np.ndarray:
    if not isinstance(img, np.ndarray):
        raise TypeError(f"{op}: expected a NumPy array image, got {type(img).__name__}")
    if img.ndim < min_ndim:
        layout = "(..., H, W)" if min_ndim == 2 else "(..., C, H, W)"
        raise ValueError(f"{op}: expected an image of shape {layout}, got shape {tuple(img.shape)}")
    return img


def _finish(out: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Return in the input's dtype (integer images are rounded and clipped to their range)."""
    if like.dtype.kind in "iu":
        info = np.iinfo(like.dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(like.dtype)
    return out.astype(like.dtype, copy=False)


def _fill_array(fill, img: np.ndarray, op: str) -> np.ndarray:
    """``fill`` as an array broadcastable against ``img``: a scalar, or one value per channel (dim -3)."""
    f = np.asarray(fill, dtype=np.float64)
    if f.ndim == 0:
        return f
    if f.ndim != 1 or img.ndim < 3 or f.shape[0] not in (1, img.shape[-3]):
        raise ValueError(f"{op}: fill must be a number or one value per channel, got {list(f)} for an image of "
                         f"shape {tuple(img.shape)}")
    return f.reshape(-1, 1, 1)


# ----------------------------------------------------------------------------- conversion, normalisation
def to_array(pic: np.ndarray) -> np.ndarray:
    """An ``(H, W, C)`` or ``(H, W)`` picture as a ``(C, H, W)`` float32 array; uint8 is scaled to [0, 1]."""
    pic = np.asarray(pic)
    if pic.ndim == 2:
        pic = pic[:, :, None]
    if pic.ndim != 3:
        raise ValueError(f"to_array: expected a picture of shape (H, W) or (H, W, C), got {tuple(pic.shape)}")
    chw = np.ascontiguousarray(pic.transpose(2, 0, 1))
    if pic.dtype == np.uint8:
        return chw.astype(np.float32) / np.float32(255)
    return chw.astype(np.float32) if pic.dtype.kind in "iub" else chw


def normalize(img: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """``(img - mean[c]) / std[c]`` per channel (dim -3), in the image's float dtype."""
    _check_image(img, "normalize", 3)
    if img.dtype.kind != "f":
        raise TypeError(f"normalize: expected a float image, got dtype {img.dtype} (convert with ToArray first)")
    m = np.asarray(mean, dtype=img.dtype).reshape(-1)
    s = np.asarray(std, dtype=img.dtype).reshape(-1)
    c = img.shape[-3]
    for name, v in (("mean", m), ("std", s)):
        if v.shape[0] not in (1, c):
            raise ValueError(f"normalize: {name} has {v.shape[0]} values but the image has {c} channels "
                             f"(shape {tuple(img.shape)})")
    if np.any(s == 0):
        raise ValueError(f"normalize: std evaluated to zero after conversion to {img.dtype}, leading to division "
                         f"by zero (std={list(map(float, s))})")
    return (img - m.reshape(-1, 1, 1)) / s.reshape(-1, 1, 1)


# ----------------------------------------------------------------------------- flips, crops, padding
def hflip(img: np.ndarray) -> np.ndarray:
    """Mirror left-right (the last axis)."""
    return np.ascontiguousarray(np.flip(_check_image(img, "hflip"), -1))


def vflip(img: np.ndarray) -> np.ndarray:
    """Mirror top-bottom (axis -2)."""
    return np.ascontiguousarray(np.flip(_check_image(img, "vflip"), -2))


def _pad_amounts(padding) -> tuple[int, int, int, int]:
    """torchvision's convention: int, (left/right, top/bottom) or (left, top, right, bottom)."""
    if isinstance(padding, (int, np.integer)):
        p = int(padding)
        return p, p, p, p
    padding = [int(p) for p in padding]
    if len(padding) == 1:
        return padding[0], padding[0], padding[0], padding[0]
    if len(padding) == 2:
        return padding[0], padding[1], padding[0], padding[1]
    if len(padding) == 4:
        return tuple(padding)
    raise ValueError(f"pad: padding must be an int or a sequence of 1, 2 or 4 ints, got {padding}")


def pad(img: np.ndarray, padding, fill=0, padding_mode: str = "constant") -> np.ndarray:
    """Pad the last two axes; ``padding_mode`` is constant, edge, reflect or symmetric."""
    _check_image(img, "pad")
    left, top, right, bottom = _pad_amounts(padding)
    if min(left, top, right, bottom) < 0:
        raise ValueError(f"pad: padding must be non-negative, got {(left, top, right, bottom)}")
    widths = [(0, 0)] * (img.ndim - 2) + [(top, bottom), (left, right)]
    if padding_mode == "constant":
        f = _fill_array(fill, img, "pad")
        if f.ndim == 0:
            return np.pad(img, widths, mode="constant", constant_values=f.item())
        out = np.empty(img.shape[:-2] + (img.shape[-2] + top + bottom, img.shape[-1] + left + right), img.dtype)
        out[...] = _finish(f, img)
        out[..., top:top + img.shape[-2], left:left + img.shape[-1]] = img
        return out
    if padding_mode not in ("edge", "reflect", "symmetric"):
        raise ValueError(f"pad: padding_mode must be constant, edge, reflect or symmetric, got {padding_mode!r}")
    return np.pad(img, widths, mode=padding_mode)


def crop(img: np.ndarray, top: int, left: int, height: int, width: int) -> np.ndarray:
    """The ``height x width`` window whose top-left pixel is ``(top, left)`` (must lie inside the image)."""
    _check_image(img, "crop")
    h, w = img.shape[-2:]
    if top < 0 or left < 0 or height <= 0 or width <= 0 or top + height > h or left + width > w:
        raise ValueError(f"crop: window top={top}, left={left}, height={height}, width={width} does not fit an "
                         f"image of size {h}x{w}")
    return img[..., top:top + height, left:left + width].copy()


def shift(img: np.ndarray, dy: int, dx: int, fill: float = 0.0) -> np.ndarray:
    """Translate the last two axes by ``dy`` whole rows (down when positive) and ``dx`` columns (right); the
    pixels that come in take ``fill``.

    >>> shift(np.arange(1.0, 10.0).reshape(3, 3), 1, -1)
    array([[0., 0., 0.],
           [2., 3., 0.],
           [5., 6., 0.]])
    """
    _check_image(img, "shift")
    h, w = img.shape[-2:]
    dy, dx = max(-h, min(h, int(dy))), max(-w, min(w, int(dx)))  # past the edge: nothing of the image is left
    out = np.full_like(img, fill)
    out[..., max(0, dy):h + min(0, dy), max(0, dx):w + min(0, dx)] = \
        img[..., max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
    return out


def _size2(size, op: str) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    size = tuple(int(s) for s in size)
    if len(size) == 1:
        size = (size[0], size[0])
    if len(size) != 2 or min(size) <= 0:
        raise ValueError(f"{op}: size must be a positive int or (height, width), got {size}")
    return size


def center_crop(img: np.ndarray, size) -> np.ndarray:
    """The central ``size`` window (zero-padded first when the image is smaller, as torchvision)."""
    th, tw = _size2(size, "center_crop")
    h, w = _check_image(img, "center_crop").shape[-2:]
    if th > h or tw > w:
        pl, pt = max(tw - w, 0) // 2, max(th - h, 0) // 2
        img = pad(img, (pl, pt, max(tw - w, 0) - pl, max(th - h, 0) - pt))
        h, w = img.shape[-2:]
    return crop(img, int(round((h - th) / 2.0)), int(round((w - tw) / 2.0)), th, tw)


# ----------------------------------------------------------------------------- resampling
def _resize_axis(img: np.ndarray, out: int, axis: int, interpolation: str) -> np.ndarray:
    n = img.shape[axis]
    if out == n:
        return img
    scale = n / out
    dst = np.arange(out, dtype=np.float64)
    if interpolation == "nearest":  # torch's 'nearest': floor(dst * scale)
        return np.take(img, np.minimum(np.floor(dst * scale).astype(np.int64), n - 1), axis=axis)
    src = np.maximum((dst + 0.5) * scale - 0.5, 0.0)  # half-pixel centres (align_corners=False)
    i0 = np.minimum(np.floor(src).astype(np.int64), n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    w1 = src - i0
    shape = [1] * img.ndim
    shape[axis] = out
    w1 = w1.reshape(shape)
    return np.take(img, i0, axis=axis) * (1.0 - w1) + np.take(img, i1, axis=axis) * w1


def resize(img: np.ndarray, size, interpolation: str = "bilinear") -> np.ndarray:
    """Resize the last two axes to ``size`` = (h, w), or so the shorter edge is ``size`` when it is an int.

    Bilinear matches ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``.
    """
    _check_image(img, "resize")
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"resize: interpolation must be one of {_INTERPOLATIONS}, got {interpolation!r}")
    h, w = img.shape[-2:]
    if isinstance(size, (int, np.integer)):
        short, long = (h, w) if h <= w else (w, h)
        new_long = int(size * long / short)
        size = (int(size), new_long) if h <= w else (new_long, int(size))
    oh, ow = _size2(size, "resize")
    work = img.astype(np.float64) if img.dtype.kind in "iub" else img
    out = _resize_axis(_resize_axis(work, oh, -2, interpolation), ow, -1, interpolation)
    return _finish(out, img)


def affine_matrix(angle: float, translate: Sequence[float], scale: float, shear: Sequence[float],
                  center: Sequence[float]) -> np.ndarray:
    """The 2x3 forward map ``output = A @ (input - center) + center + translate`` in (x, y) pixel coordinates."""
    a = math.radians(angle)
    sx, sy = (math.radians(s) for s in shear)
    rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])  # y points down: CCW on screen
    shear_m = np.array([[1.0, math.tan(sx)], [math.tan(sy), 1.0]])
    lin = scale * rot @ shear_m
    c = np.asarray(center, dtype=np.float64)
    offset = c + np.asarray(translate, dtype=np.float64) - lin @ c
    return np.concatenate([lin, offset[:, None]], axis=1)


def _snap(v: np.ndarray) -> np.ndarray:
    # cos(90 deg) is 6e-17, not 0: snap coordinates that are integers up to rounding so exact maps stay exact.
    r = np.rint(v)
    return np.where(np.abs(v - r) < 1e-6, r, v)


def warp_affine(img: np.ndarray, matrix: np.ndarray, interpolation: str = "bilinear", fill=0) -> np.ndarray:
    """Apply the forward 2x3 ``matrix`` by inverse mapping: each output pixel samples the input where it came from.

    Pixels that come from outside the image take ``fill`` (a number or one value per channel).
    """
    _check_image(img, "warp_affine")
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"warp_affine: interpolation must be one of {_INTERPOLATIONS}, got {interpolation!r}")
    h, w = img.shape[-2:]
    m = np.vstack([np.asarray(matrix, dtype=np.float64).reshape(2, 3), [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(m)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    src_x = _snap(inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2])
    src_y = _snap(inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2])
    fill_v = _fill_array(fill, img, "warp_affine")
    work = img.astype(np.float64) if img.dtype.kind in "iub" else img

    def tap(yi, xi):
        inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        vals = work[..., np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]
        return np.where(inside, vals, fill_v)

    if interpolation == "nearest":
        out = tap(np.rint(src_y).astype(np.int64), np.rint(src_x).astype(np.int64))
    else:
        x0, y0 = np.floor(src_x), np.floor(src_y)
        wx, wy = src_x - x0, src_y - y0
        x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
        out = ((1 - wy) * ((1 - wx) * tap(y0, x0) + wx * tap(y0, x0 + 1))
               + wy * ((1 - wx) * tap(y0 + 1, x0) + wx * tap(y0 + 1, x0 + 1)))
    return _finish(out, img)


def affine(img: np.ndarray, angle: float = 0.0, translate: Sequence[float] = (0, 0), scale: float = 1.0,
           shear: Sequence[float] | float = (0.0, 0.0), interpolation: str = "bilinear", fill=0,
           center: Sequence[float] | None = None) -> np.ndarray:
    """Rotate by ``angle`` degrees (counter-clockwise), scale, shear (degrees, x then y) and translate (pixels)."""
    h, w = _check_image(img, "affine").shape[-2:]
    if scale <= 0:
        raise ValueError(f"affine: scale must be positive, got {scale}")
    if isinstance(shear, (int, float)):
        shear = (float(shear), 0.0)
    c = ((w - 1) / 2.0, (h - 1) / 2.0) if center is None else center
    return warp_affine(img, affine_matrix(angle, translate, scale, shear, c), interpolation, fill)


def rotate(img: np.ndarray, angle: float, interpolation: str = "bilinear", center=None, fill=0) -> np.ndarray:
    """Rotate counter-clockwise by ``angle`` degrees about the centre (or ``center`` = (x, y)); corners get ``fill``."""
    return affine(img, angle=angle, interpolation=interpolation, fill=fill, center=center)


# ----------------------------------------------------------------------------- colour (float images in [0, 1])
def _check_rgb(img: np.ndarray, op: str) -> None:
    _check_image(img, op, 3)
    if img.shape[-3] != 3:
        raise ValueError(f"{op}: expected a 3-channel (RGB) image of shape (..., 3, H, W), got {tuple(img.shape)}")


def rgb_to_grayscale(img: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma (0.2989 R + 0.587 G + 0.114 B), keeping a channel axis of size 1."""
    _check_rgb(img, "rgb_to_grayscale")
    r, g, b = img[..., 0, :, :], img[..., 1, :, :], img[..., 2, :, :]
    return (0.2989 * r + 0.587 * g + 0.114 * b)[..., None, :, :].astype(img.dtype)


def _blend(img: np.ndarray, other, factor: float) -> np.ndarray:
    return np.clip(factor * img + (1.0 - factor) * other, 0.0, 1.0).astype(img.dtype)


def adjust_brightness(img: np.ndarray, factor: float) -> np.ndarray:
    """Multiply by ``factor`` (0 gives black, 1 the original)."""
    return _blend(_check_image(img, "adjust_brightness"), 0.0, factor)


def adjust_contrast(img: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the image's mean grey level (0 gives flat grey, 1 the original)."""
    _check_image(img, "adjust_contrast", 3)
    grey = rgb_to_grayscale(img) if img.shape[-3] == 3 else img
    return _blend(img, grey.mean(axis=(-3, -2, -1), keepdims=True), factor)


def adjust_saturation(img: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the grey version (0 gives greyscale, 1 the original)."""
    return _blend(img, rgb_to_grayscale(img), factor)


def adjust_hue(img: np.ndarray, hue_factor: float) -> np.ndarray:
    """Rotate the hue by ``hue_factor`` turns (in [-0.5, 0.5]) in HSV space."""
    _check_rgb(img, "adjust_hue")
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f"adjust_hue: hue_factor ({hue_factor}) is not in [-0.5, 0.5]")
    x = img.astype(np.float64)
    r, g, b = x[..., 0, :, :], x[..., 1, :, :], x[..., 2, :, :]
    maxc, minc = x.max(axis=-3), x.min(axis=-3)
    delta = maxc - minc
    safe = np.where(delta == 0, 1.0, delta)
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = np.where(maxc == r, bc - gc, np.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = np.where(delta == 0, 0.0, (h / 6.0) % 1.0)
    s = np.where(maxc == 0, 0.0, delta / np.where(maxc == 0, 1.0, maxc))
    v = maxc
    h = (h + hue_factor) % 1.0
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.astype(np.int64) % 6
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = np.stack([np.choose(i, [c[k] for c in choices]) for k in range(3)], axis=-3)
    return _finish(out, img)


def erase(img: np.ndarray, top: int, left: int, height: int, width: int, value) -> np.ndarray:
    """A copy with the window set to ``value`` (a number, one per channel, or an array of the window's shape)."""
    _check_image(img, "erase")
    out = img.copy()
    out[..., top:top + height, left:left + width] = value
    return out
