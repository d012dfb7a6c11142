"""Resizing (``F.interpolate``): nearest, nearest-exact, linear, bilinear, bicubic, trilinear and area,
with torch's source-index arithmetic (align_corners, scale_factor, recompute_scale_factor).

Every mode but area is separable: along each spatial dim an output position reads a few input positions
(1 for nearest, 2 for linear, 4 for cubic) with weights. ``_taps`` computes those index/weight tables the way
torch's kernels do (in the input's float dtype; nearest in float32, as torch); the forward sums the weighted
takes dim by dim, and the backward multiplies by each dim's interpolation matrix transposed (one matmul per
dim). Area mode is adaptive average pooling, as in torch.

>>> import deepgrad as dg
>>> dg.nn.functional.interpolate(dg.ones(1, 1, 2, 2), scale_factor=2, mode="bilinear").shape
(1, 1, 4, 4)
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd import Function
from ..backend import array_module
from ..tensor import Tensor
from .promotion import torch_name

_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area")
_CUBIC_A = -0.75


def _cubic_weights(t):
    """torch's cubic convolution coefficients (A = -0.75) for the 4 taps around a fractional offset t."""
    a = _CUBIC_A

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _taps(n_in: int, n_out: int, mode: str, align_corners: bool, scale, dtype) -> tuple:
    """(indices (K, n_out), weights (K, n_out) or None) reading input positions for each output position."""
    dst = np.arange(n_out)
    if mode in ("nearest", "nearest-exact"):
        if mode == "nearest" and n_out == n_in:
            return dst[None], None
        if mode == "nearest" and n_out == 2 * n_in:
            return (dst >> 1)[None], None
        s = np.float32(1.0 / scale if scale else np.float32(n_in) / np.float32(n_out))
        pos = dst.astype(np.float32) + np.float32(0.5) if mode == "nearest-exact" else dst.astype(np.float32)
        return np.minimum(np.floor(pos * s).astype(np.int64), n_in - 1)[None], None
    dtype = np.dtype(dtype)
    cubic = mode == "bicubic"
    if align_corners:
        s = dtype.type((n_in - 1) / (n_out - 1)) if n_out > 1 else dtype.type(0)
        src = s * dst.astype(dtype)
    else:
        s = dtype.type(1.0 / scale) if scale else dtype.type(n_in) / dtype.type(n_out)
        src = s * (dst.astype(dtype) + dtype.type(0.5)) - dtype.type(0.5)
        if not cubic:
            src = np.maximum(src, 0)
    if cubic:
        base = np.floor(src).astype(np.int64)
        t = (src - base).astype(dtype)
        idx = np.stack([np.clip(base - 1 + k, 0, n_in - 1) for k in range(4)])
        return idx, np.stack(_cubic_weights(t)).astype(dtype)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    lam = np.clip(src - i0, 0, 1).astype(dtype)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return np.stack([i0, i1]), np.stack([1 - lam, lam]).astype(dtype)


class Interpolate(Function):
    """Separable resize: along each axis, a weighted sum of taken input positions."""

    saved = ()

    def forward(self, x, tables, mode=None, align_corners=None, scales=None):
        # mode, align_corners and scales only describe the op to the ONNX exporter (deepgrad/onnx/ops_extra.py)
        xp = array_module(x)
        self.tables, self.shape = tables, x.shape
        for axis, idx, w in tables:
            shape = [1] * x.ndim
            shape[axis] = idx.shape[1]
            if w is None:
                x = xp.take(x, xp.asarray(idx[0]), axis=axis)
                continue
            out = None
            for k in range(idx.shape[0]):
                term = xp.take(x, xp.asarray(idx[k]), axis=axis) * xp.asarray(w[k]).reshape(shape)
                out = term if out is None else out + term
            x = out
        return x

    def backward(self, g):
        xp = array_module(g)
        for axis, idx, w in reversed(self.tables):
            n_in = self.shape[axis]
            m = np.zeros((idx.shape[1], n_in), dtype=g.dtype)  # the axis's interpolation matrix (out, in)
            rows = np.arange(idx.shape[1])
            for k in range(idx.shape[0]):
                np.add.at(m, (rows, idx[k]), 1 if w is None else w[k])
            g = xp.moveaxis(xp.moveaxis(g, axis, -1) @ xp.asarray(m), -1, axis)
        return g


def _per_dim(value, dims: int, what: str, input: Tensor):
    if isinstance(value, (list, tuple)):
        if len(value) != dims:
            raise ValueError(f"Input and {what} must have the same number of spatial dimensions, but got input with "
                             f"spatial dimensions of {list(input.shape[2:])} and {what} of {list(value)}. Please "
                             f"provide input tensor in (N, C, d1, d2, ...,dK) format and {what} in (o1, o2, ...,oK) "
                             f"format.")
        return list(value)
    return [value] * dims


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool | None = None,
                recompute_scale_factor: bool | None = None, antialias: bool = False) -> Tensor:
    """Resize the spatial dims of an (N, C, ...) tensor to ``size`` or by ``scale_factor`` (torch's modes and
    arithmetic; ``align_corners`` maps the corner pixels' centres onto each other).

    >>> interpolate(tensor([[[1.0, 2.0]]]), size=4, mode="linear")
    tensor([[[1.0000, 1.2500, 1.7500, 2.0000]]])
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"interpolate(): argument 'input' must be Tensor, not {type(input).__name__}")
    dims = input.ndim - 2
    if mode not in _MODES or dims not in (1, 2, 3):
        raise NotImplementedError(f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.ndim}D) for "
                                  f"the modes: nearest | linear | bilinear | bicubic | trilinear | area | "
                                  f"nearest-exact (got {mode})")
    if mode in ("nearest", "area", "nearest-exact") and align_corners is not None:
        raise ValueError("align_corners option can only be set with the interpolating modes: linear | bilinear | "
                         "bicubic | trilinear")
    needs = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}.get(mode)
    if needs is not None and needs != dims:
        raise NotImplementedError(f"Got {input.ndim}D input, but {mode} mode needs {needs + 2}D input")
    if antialias:
        raise NotImplementedError("interpolate(antialias=True) is not implemented in deepgrad")
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is None and scale_factor is None:
        raise ValueError("either size or scale_factor should be defined")
    if recompute_scale_factor and size is not None:
        raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
    in_sizes = list(input.shape[2:])
    if size is not None:
        out_sizes, scales = [int(s) for s in _per_dim(size, dims, "output size", input)], [None] * dims
    else:
        scales = [float(s) for s in _per_dim(scale_factor, dims, "scale_factor", input)]
        out_sizes = [math.floor(float(n) * s) for n, s in zip(in_sizes, scales)]
        if recompute_scale_factor or mode == "area":
            scales = [None] * dims
    if any(n <= 0 for n in out_sizes) or any(n <= 0 for n in in_sizes):
        shown_in, shown_out = ", ".join(map(str, in_sizes)), ", ".join(map(str, out_sizes))
        raise RuntimeError(f"Input and output sizes should be greater than 0, but got input ({shown_in}) and output "
                           f"({shown_out})")
    if mode == "area":
        from . import pool

        adaptive = {1: pool.adaptive_avg_pool1d, 2: pool.adaptive_avg_pool2d}.get(dims)
        if adaptive is None:
            raise NotImplementedError("interpolate(mode='area') on 5-D input needs adaptive_avg_pool3d, which "
                                      "deepgrad does not have")
        return adaptive(input, out_sizes[0] if dims == 1 else tuple(out_sizes))
    if mode not in ("nearest", "nearest-exact") and input.array.dtype.kind != "f":
        kernel = {"linear": "upsample_linear1d", "bilinear": "upsample_bilinear2d", "bicubic": "upsample_bicubic2d",
                  "trilinear": "upsample_trilinear3d"}[mode]
        raise NotImplementedError(f'"{kernel}_out_frame" not implemented for \'{torch_name(input.dtype)}\'')
    dtype = input.array.dtype if input.array.dtype.kind == "f" else np.float32
    tables = tuple((2 + d, *_taps(in_sizes[d], out_sizes[d], mode, bool(align_corners), scales[d], dtype))
                   for d in range(dims) if not (mode == "nearest" and in_sizes[d] == out_sizes[d]))
    if not tables:
        return input.clone()  # nothing to resize: a copy
    return Interpolate.apply(input, tables=tables, mode=mode, align_corners=bool(align_corners), scales=tuple(scales))


def upsample(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool | None = None):
    """The deprecated name of :func:`interpolate`."""
    _deprecated("upsample")
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """``interpolate(mode="nearest")`` (deprecated in torch)."""
    _deprecated("upsample_nearest")
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """``interpolate(mode="bilinear", align_corners=True)`` (deprecated in torch)."""
    _deprecated("upsample_bilinear")
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


def _deprecated(name: str) -> None:
    import warnings

    warnings.warn(f"`nn.functional.{name}` is deprecated. Use `nn.functional.interpolate` instead.", UserWarning,
                  stacklevel=3)
