"""Pooling: max / average / sum pooling (1-D and 2-D), adaptive average / max pooling, max unpooling.

torch.nn.functional semantics (sum pooling is deepgrad's own: the plain window sum, i.e. torch's
``avg_pool2d(..., divisor_override=1)``). A pool is a reduction over the window slices of the padded
input and its backward adds the gradient back through the same slices; the loops (and their NumPy fast
paths and threads) are in :mod:`deepgrad.kernels.pool`.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function
from ..backend import array_module
from ..kernels import pool as K
from ..kernels.pool import PoolGeometry
from ..tensor import Tensor
from .adjoint import index_scatter, zero_link
from .window_args import as_batched, check_nonnegative, check_positive, ntuple, pool_out_size


def _stride_arg(stride, kernel: tuple, nd: int, op: str) -> tuple:
    """torch: stride None (or an empty list) means stride = kernel_size."""
    if stride is None or (not isinstance(stride, int) and len(stride) == 0):
        return kernel
    return ntuple(stride, nd, "stride", op)


def _pool_geometry(op: str, x: Tensor, kernel_size, stride, padding, dilation, ceil_mode: bool,
                   nd: int) -> PoolGeometry:
    xb, unbatched = as_batched(x, nd, op)
    if x.dtype.kind != "f":
        raise RuntimeError(f"{op}: expected a floating-point input, got {x.dtype}")
    kernel = ntuple(kernel_size, nd, "kernel_size", op)
    stride = _stride_arg(stride, kernel, nd, op)
    padding, dilation = ntuple(padding, nd, "padding", op), ntuple(dilation, nd, "dilation", op)
    for name, v in (("kernel_size", kernel), ("stride", stride), ("dilation", dilation)):
        check_positive(v, name, op)
    check_nonnegative(padding, "padding", op)
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        raise ValueError(
            f"{op}: pad should be at most half of kernel size, but got padding={padding} and kernel_size={kernel}"
        )
    size = tuple(xb.shape[2:])
    out = tuple(
        pool_out_size(i, k, s, p, d, ceil_mode) for i, k, s, p, d in zip(size, kernel, stride, padding, dilation)
    )
    if any(o < 1 for o in out):
        raise RuntimeError(
            f"{op}: given input size {tuple(x.shape)}, kernel_size={kernel}, stride={stride}, padding={padding}, "
            f"dilation={dilation}: calculated output size {out} is too small"
        )
    # The padded extent must hold every window, including a ceil-mode window that overhangs the right pad.
    hi = tuple(max(p, (o - 1) * s + d * (k - 1) + 1 - i - p)
               for i, k, s, p, d, o in zip(size, kernel, stride, padding, dilation, out))
    public = tuple(xb.shape[:2]) + out
    if unbatched:
        public = public[1:]
    if nd == 1:
        kernel, stride, dilation, padding = (1,) + kernel, (1,) + stride, (1,) + dilation, (0,) + padding
        size, out, hi = (1,) + size, (1,) + out, (0,) + hi
    n, c = xb.shape[:2]
    return PoolGeometry(kernel, stride, dilation, (padding[0], hi[0], padding[1], hi[1]), (n, c) + size,
                        (n, c) + out, public, padding)


# ----------------------------------------------------------------------------- max pooling
class MaxPool(Function):
    """Fused max pooling: forward keeps the winning kernel offset, backward routes the gradient there."""

    saved = ((0,),)

    def forward(self, x, *, geom: PoolGeometry, sink: list | None = None):
        self.geom, self.x_public = geom, x.shape
        best, self.arg = K.max_pool2d_forward(x.reshape(geom.x_shape), geom)
        if sink is not None:
            sink.append(_flat_indices(self.arg, geom))
        return best.reshape(geom.public_out_shape)

    def backward(self, g):
        return K.window_add_back(g.reshape(self.geom.out_shape), self.geom, argmax=self.arg).reshape(self.x_public)

    def backward_graph(self, g):  # g scattered to the argmax positions; torch links x with a zero derivative
        return zero_link(_scatter_to_planes(g, _flat_indices(self.arg, self.geom), self.geom.x_shape, self.x_public),
                         self, {0: self.x_public})


def _plane_index(idx, x_shape: tuple) -> tuple:
    """(rows, positions) indexing an (N * C, H * W) view at the flat per-plane positions ``idx`` (N, C, ...)."""
    nc = x_shape[0] * x_shape[1]
    return array_module(idx).arange(nc)[:, None], idx.reshape(nc, -1)


def _scatter_to_planes(g: Tensor, idx, x_shape: tuple, public_shape: tuple) -> Tensor:
    """``g`` (one value per pooled position) added at the flat plane positions ``idx``: an input-sized tensor,
    recorded as an :class:`~.adjoint.IndexScatter` (whose adjoint gathers at those positions)."""
    nc = x_shape[0] * x_shape[1]
    flat = index_scatter(g.reshape(nc, -1), (nc, x_shape[2] * x_shape[3]), None, _plane_index(idx, x_shape), True)
    return flat.reshape(public_shape)


def _flat_indices(arg, geom: PoolGeometry):
    """torch's indices: the flat position of each maximum in its (H * W) input plane, as int64."""
    xp = array_module(arg)
    kh, kw = geom.kernel
    (sh, sw), (dh, dw), (ph, pw) = geom.stride, geom.dilation, geom.padding
    ho, wo = geom.out_shape[2:]
    rows = xp.arange(ho, dtype=np.int64)[:, None] * sh - ph + (arg // kw).astype(np.int64) * dh
    cols = xp.arange(wo, dtype=np.int64)[None, :] * sw - pw + (arg % kw).astype(np.int64) * dw
    return rows * geom.x_shape[3] + cols


# ----------------------------------------------------------------------------- average / sum pooling
class AvgPool(Function):
    """Fused window-sum pooling (divided for average pooling): forward and add-back backward side by side."""

    saved = ((0,),)

    def forward(self, x, *, geom: PoolGeometry, divisor=None):
        self.geom, self.x_public, self.divisor = geom, x.shape, divisor
        return K.window_sum_forward(x.reshape(geom.x_shape), geom, divisor).reshape(geom.public_out_shape)

    def backward(self, g):
        g = g.reshape(self.geom.out_shape)
        if self.divisor is not None:
            g = g / self.divisor
        return K.window_add_back(g, self.geom).reshape(self.x_public)

    def backward_graph(self, g):  # linear in g; torch links x with a zero derivative
        gx = WindowAddBack.apply(g.reshape(self.geom.out_shape), geom=self.geom, divisor=self.divisor)
        return zero_link(gx.reshape(self.x_public), self, {0: self.x_public})


class WindowAddBack(Function):
    """Average pooling's backward as an op (4-D): ``g / divisor`` added back into every window position; its
    adjoint is the average pooling itself."""

    saved = ()

    def forward(self, g, *, geom: PoolGeometry, divisor=None):
        self.geom, self.divisor = geom, divisor
        return K.window_add_back(g if divisor is None else g / divisor, geom)

    def backward(self, gx):
        return K.window_sum_forward(gx, self.geom, self.divisor)

    def backward_graph(self, gx):
        return AvgPool.apply(gx, geom=self.geom._replace(public_out_shape=self.geom.out_shape), divisor=self.divisor)


def _avg_divisor(geom: PoolGeometry, count_include_pad: bool, divisor_override, like):
    """torch's divisor per output position: the window clipped to the padded input (ceil-mode
    overhang excluded), or to the real input when ``count_include_pad`` is False."""
    if divisor_override is not None:
        if divisor_override == 0:
            raise ValueError("avg_pool2d: divisor_override must be non-zero")
        return float(divisor_override)
    counts = []
    for size, k, s, p, o in zip(geom.x_shape[2:], geom.kernel, geom.stride, geom.padding, geom.out_shape[2:]):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, size + p)
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, size)
        counts.append(end - start)
    div = np.outer(counts[0], counts[1])
    if (div == div.flat[0]).all():
        return float(div.flat[0])  # the common case: a scalar, no broadcast array
    return array_module(like).asarray(div, dtype=like.dtype)


# ----------------------------------------------------------------------------- adaptive pooling
def _adaptive_windows(size: int, out: int) -> tuple:
    """torch's adaptive windows: start = floor(i * size / out), end = ceil((i + 1) * size / out)."""
    i = np.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)
    return start, end


def _adaptive_size(op: str, x: Tensor, output_size, nd: int) -> tuple:
    if output_size is None or isinstance(output_size, int):
        output_size = (output_size,) * nd
    output_size = tuple(output_size)
    if len(output_size) != nd:
        raise ValueError(f"{op}: output_size must be an int or a tuple of {nd} ints (or None), got {output_size!r}")
    out = tuple(x.shape[-nd + i] if o is None else int(o) for i, o in enumerate(output_size))
    if any(o < 1 for o in out):
        raise ValueError(f"{op}: output_size must be positive, got {output_size!r}")
    return out


def _averaging_matrix(size: int, out: int, like):
    """(out, size) matrix whose row i averages adaptive window i: pooling is A_h @ x @ A_w.T."""
    start, end = _adaptive_windows(size, out)
    idx = np.arange(size)
    a = ((idx >= start[:, None]) & (idx < end[:, None])) / (end - start)[:, None]
    return array_module(like).asarray(a, dtype=like.dtype)


class AdaptiveAvgPool(Function):
    """Fused adaptive average pooling as two small GEMMs (the windows are separable): A_h @ x @ A_w.T."""

    saved = ((0,),)

    def forward(self, x, *, x_shape: tuple, out_shape: tuple, public_out_shape: tuple):
        self.x_public, self.x_shape, self.out_shape = x.shape, x_shape, out_shape
        n, c, h, w = x_shape
        ho, wo = out_shape[2:]
        x4 = x.reshape(x_shape)
        if (ho, wo) == (1, 1):  # global average pooling
            self.mats = None
            return x4.mean(axis=(2, 3)).reshape(public_out_shape)
        ah, aw = _averaging_matrix(h, ho, x), _averaging_matrix(w, wo, x)
        self.mats = (ah, aw)
        t = (x4.reshape(-1, w) @ aw.T).reshape(n * c, h, wo)  # contract W: one GEMM
        return (ah @ t).reshape(public_out_shape)  # contract H: (Ho, H) @ (NC, H, Wo)

    def backward(self, g):
        xp = array_module(g)
        n, c, h, w = self.x_shape
        ho, wo = self.out_shape[2:]
        g3 = g.reshape(n * c, ho, wo)
        if self.mats is None:
            return xp.broadcast_to(g3 / (h * w), (n * c, h, w)).reshape(self.x_public)
        ah, aw = self.mats
        t = ah.T @ g3  # (NC, H, Wo)
        return (t.reshape(-1, wo) @ aw).reshape(self.x_public)

    def backward_graph(self, g):  # linear in g: the same two products, recorded
        from .linalg import matmul

        n, c, h, w = self.x_shape
        ho, wo = self.out_shape[2:]
        g3 = g.reshape(n * c, ho, wo)
        if self.mats is None:
            gx = (g3 / (h * w)).expand(n * c, h, w)
        else:
            ah, aw = (Tensor._make(m, None) for m in self.mats)
            gx = matmul(matmul(ah.transpose(0, 1), g3).reshape(-1, wo), aw)
        return zero_link(gx.reshape(self.x_public), self, {0: self.x_public})


class AdaptiveMaxPool(Function):
    """Fused adaptive max pooling over torch's variable windows; backward scatters to the argmax."""

    saved = ((0,),)

    def forward(self, x, *, x_shape: tuple, out_shape: tuple, public_out_shape: tuple, sink: list | None = None):
        xp = array_module(x)
        self.x_public, self.x_shape = x.shape, x_shape
        n, c, h, w = x_shape
        ho, wo = out_shape[2:]
        x4 = x.reshape(x_shape)
        (sh, eh), (sw, ew) = _adaptive_windows(h, ho), _adaptive_windows(w, wo)
        lh, lw = eh - sh, ew - sw
        best = idx = None
        # Offset i of every window at once; short windows repeat their last element (harmless for a max).
        for i in range(int(lh.max())):
            rows = xp.asarray(sh + np.minimum(i, lh - 1))
            xr = x4[:, :, rows, :]
            for j in range(int(lw.max())):
                cols = xp.asarray(sw + np.minimum(j, lw - 1))
                v = xr[:, :, :, cols]
                flat = rows[:, None] * w + cols[None, :]
                if best is None:
                    best, idx = v, xp.broadcast_to(flat, v.shape).astype(np.int64)
                    continue
                take = v > best  # first maximum wins, NaN propagates (torch's rule)
                take |= xp.isnan(v)
                xp.copyto(best, v, where=take)
                xp.copyto(idx, flat, where=take)
        self.idx = idx
        if sink is not None:
            sink.append(idx)
        return best.reshape(public_out_shape)

    def backward(self, g):
        xp = array_module(g)
        n, c, h, w = self.x_shape
        gx = xp.zeros((n * c, h * w), dtype=g.dtype)
        # Overlapping adaptive windows can share a maximum: accumulate, do not assign.
        backend.scatter_add(gx, (xp.arange(n * c)[:, None], self.idx.reshape(n * c, -1)), g.reshape(n * c, -1))
        return gx.reshape(self.x_public)

    def backward_graph(self, g):
        return zero_link(_scatter_to_planes(g, self.idx, self.x_shape, self.x_public), self, {0: self.x_public})


class MaxUnpool(Function):
    """Place each value at its recorded max position (the partial inverse of max pooling)."""

    saved = ()

    def forward(self, x, *, idx, out_shape: tuple, public_out_shape: tuple):
        xp = array_module(x)
        n, c = out_shape[:2]
        self.x_public = x.shape
        self.rows, self.idx = xp.arange(n * c)[:, None], idx.reshape(n * c, -1)
        out = xp.zeros((n * c, out_shape[2] * out_shape[3]), dtype=x.dtype)
        out[self.rows, self.idx] = x.reshape(n * c, -1)
        return out.reshape(public_out_shape)

    def backward(self, g):
        return g.reshape(self.rows.shape[0], -1)[self.rows, self.idx].reshape(self.x_public)

    def backward_graph(self, g):  # a gather at the recorded positions; its adjoint scatters back
        from .shape import AdvancedIndex

        picked = AdvancedIndex.apply(g.reshape(self.rows.shape[0], -1), basic=None, advanced=(self.rows, self.idx),
                                     scatter=True)
        return picked.reshape(self.x_public)


# ----------------------------------------------------------------------------- public API
def _max_pool(op, nd, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    geom = _pool_geometry(op, input, kernel_size, stride, padding, dilation, ceil_mode, nd)
    sink = [] if return_indices else None
    out = MaxPool.apply(input, geom=geom, sink=sink)
    if return_indices:
        return out, Tensor._make(sink[0].reshape(geom.public_out_shape), None)
    return out


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """1-D max pooling over (N, C, L) or (C, L); with ``return_indices`` also the argmax positions in L.

    >>> max_pool1d(deepgrad.randn(2, 3, 8), 2).shape
    (2, 3, 4)
    """
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """2-D max pooling over (N, C, H, W) or (C, H, W); indices are flat positions in each H*W plane.

    >>> max_pool2d(deepgrad.randn(2, 3, 8, 8), 2).shape
    (2, 3, 4, 4)
    """
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _avg_pool(op, nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, total):
    geom = _pool_geometry(op, input, kernel_size, stride, padding, 1, ceil_mode, nd)
    divisor = None if total else _avg_divisor(geom, count_include_pad, divisor_override, input.array)
    return AvgPool.apply(input, geom=geom, divisor=divisor)


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """1-D average pooling over (N, C, L) or (C, L) (torch's divisor rules).

    >>> avg_pool1d(deepgrad.randn(2, 3, 8), 2).shape
    (2, 3, 4)
    """
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None, False)


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """2-D average pooling over (N, C, H, W) or (C, H, W) (torch's divisor rules).

    >>> avg_pool2d(deepgrad.randn(2, 3, 8, 8), 2).shape
    (2, 3, 4, 4)
    """
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, False)


def sum_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False) -> Tensor:
    """1-D sum pooling: the plain window sum (zero padding), i.e. avg_pool1d times the window size.

    >>> sum_pool1d(deepgrad.ones(1, 1, 4), 2)
    tensor([[[2., 2.]]])
    """
    return _avg_pool("sum_pool1d", 1, input, kernel_size, stride, padding, ceil_mode, True, None, True)


def sum_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False) -> Tensor:
    """2-D sum pooling: the plain window sum (zero padding), torch's ``avg_pool2d(..., divisor_override=1)``.

    >>> sum_pool2d(deepgrad.ones(1, 1, 4, 4), 2)
    tensor([[[[4., 4.],
              [4., 4.]]]])
    """
    return _avg_pool("sum_pool2d", 2, input, kernel_size, stride, padding, ceil_mode, True, None, True)


def _adaptive_shapes(op: str, input: Tensor, output_size, nd: int) -> tuple:
    x, unbatched = as_batched(input, nd, op)
    if input.dtype.kind != "f":
        raise RuntimeError(f"{op}: expected a floating-point input, got {input.dtype}")
    if any(s == 0 for s in x.shape[2:]):
        raise RuntimeError(f"{op}: input of shape {tuple(input.shape)} has an empty spatial dimension")
    out = _adaptive_size(op, input, output_size, nd)
    n, c = x.shape[:2]
    size = tuple(x.shape[2:])
    public = ((c,) if unbatched else (n, c)) + out
    if nd == 1:
        size, out = (1,) + size, (1,) + out
    return (n, c) + size, (n, c) + out, public


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    """1-D adaptive average pooling to ``output_size`` (torch's floor/ceil windows)."""
    x_shape, out_shape, public = _adaptive_shapes("adaptive_avg_pool1d", input, output_size, 1)
    return AdaptiveAvgPool.apply(input, x_shape=x_shape, out_shape=out_shape, public_out_shape=public)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """2-D adaptive average pooling to ``output_size`` (an int, or a pair that may hold None = keep).

    >>> adaptive_avg_pool2d(deepgrad.randn(2, 3, 7, 9), (2, None)).shape
    (2, 3, 2, 9)
    """
    x_shape, out_shape, public = _adaptive_shapes("adaptive_avg_pool2d", input, output_size, 2)
    return AdaptiveAvgPool.apply(input, x_shape=x_shape, out_shape=out_shape, public_out_shape=public)


def _adaptive_max(op: str, nd: int, input: Tensor, output_size, return_indices: bool):
    x_shape, out_shape, public = _adaptive_shapes(op, input, output_size, nd)
    (h, w), (ho, wo) = x_shape[2:], out_shape[2:]
    if h % ho == 0 and w % wo == 0:  # equal, disjoint windows: plain max pooling (faster path)
        k = (h // ho, w // wo)
        geom = PoolGeometry(k, k, (1, 1), (0, 0, 0, 0), x_shape, out_shape, public, (0, 0))
        sink = [] if return_indices else None
        out = MaxPool.apply(input, geom=geom, sink=sink)
    else:
        sink = [] if return_indices else None
        out = AdaptiveMaxPool.apply(input, x_shape=x_shape, out_shape=out_shape, public_out_shape=public, sink=sink)
    if return_indices:
        return out, Tensor._make(sink[0].reshape(public), None)
    return out


def adaptive_max_pool1d(input: Tensor, output_size, return_indices: bool = False):
    """1-D adaptive max pooling to ``output_size``; optionally also the argmax positions."""
    return _adaptive_max("adaptive_max_pool1d", 1, input, output_size, return_indices)


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    """2-D adaptive max pooling to ``output_size`` (pair entries may be None = keep that size).

    >>> adaptive_max_pool2d(deepgrad.randn(2, 3, 7, 9), 3).shape
    (2, 3, 3, 3)
    """
    return _adaptive_max("adaptive_max_pool2d", 2, input, output_size, return_indices)


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """Scatter pooled values back to the positions ``indices`` (from max_pool2d) into a zero map.

    >>> y, i = max_pool2d(deepgrad.randn(1, 1, 4, 4), 2, return_indices=True)
    >>> max_unpool2d(y, i, 2).shape
    (1, 1, 4, 4)
    """
    op = "max_unpool2d"
    x, unbatched = as_batched(input, 2, op)
    if not isinstance(indices, Tensor) or tuple(indices.shape) != tuple(input.shape):
        got = tuple(indices.shape) if isinstance(indices, Tensor) else type(indices).__name__
        raise RuntimeError(f"{op}: expected indices of shape {tuple(input.shape)} (the input's), got {got}")
    kernel = ntuple(kernel_size, 2, "kernel_size", op)
    stride = _stride_arg(stride, kernel, 2, op)
    padding = ntuple(padding, 2, "padding", op)
    default = tuple((i - 1) * s - 2 * p + k for i, s, p, k in zip(x.shape[2:], stride, padding, kernel))
    if output_size is None:
        out = default
    else:
        out = tuple(int(v) for v in tuple(output_size)[-2:])
        if len(out) != 2 or any(not d - s < o < d + s for o, d, s in zip(out, default, stride)):
            raise ValueError(f"{op}: invalid output_size {tuple(output_size)} (default {default}, stride {stride})")
    if any(o < 1 for o in out):
        raise RuntimeError(f"{op}: calculated output size {out} is too small for input {tuple(input.shape)}")
    idx = indices.array
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= out[0] * out[1]):
        raise RuntimeError(f"{op}: found an invalid max index (outside the {out[0]}x{out[1]} output planes)")
    n, c = x.shape[:2]
    public = ((c,) if unbatched else (n, c)) + out
    return MaxUnpool.apply(input, idx=idx, out_shape=(n, c) + out, public_out_shape=public)
