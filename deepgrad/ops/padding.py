"""``F.pad``: constant padding (negative amounts crop), and the modes that copy the tensor's own values —
reflect, replicate and circular, over the last 1, 2 or 3 dims.

Each padded dim gets an index map, output position -> input position, built in the input's coordinates
(negative amounts crop, as in torch); the forward takes along each map and the backward adds each gradient
element back to the position it was copied from.

>>> import deepgrad as dg
>>> dg.nn.functional.pad(dg.tensor([[[0.0, 1.0, 2.0]]]), (2, 1), mode="reflect")
tensor([[[2., 1., 0., 1., 2., 1.]]])
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..backend import array_module
from ..tensor import Tensor
from .scatter import ufunc_at


def index_map(n: int, lo: int, hi: int, mode: str):
    """For each output position of a dim of size ``n`` padded by (lo, hi), the input position it copies."""
    u = np.arange(-lo, n + hi)  # output positions in the input's coordinates
    if mode == "reflect":
        u = np.where(u < 0, -u, u)
        return np.where(u >= n, 2 * (n - 1) - u, u)
    if mode == "replicate":
        return np.clip(u, 0, n - 1)
    # circular: torch crops first, then wraps the cropped range
    start, stop = max(0, -lo), n - max(0, -hi)
    return start + (np.arange(n + lo + hi) - max(lo, 0)) % (stop - start)


class IndexPad(Function):
    """Pad by copying along index maps, one per padded dim; backward sums the copies back. torch's reflection
    and replication backwards take the input (saved); its circular padding is built from slices (nothing)."""

    saved = staticmethod(lambda params: ((),) if params["mode"] == "circular" else ((0,),))

    def forward(self, x, maps, mode, amounts=()):  # amounts: {(axis, lo, hi)}, for the ONNX exporter
        xp = array_module(x)
        self.maps, self.shape = maps, x.shape
        if not maps:
            return x.copy()
        for axis, idx in maps:
            x = xp.take(x, xp.asarray(idx), axis=axis)
        return x

    def backward(self, g):
        xp = array_module(g)
        shape = list(g.shape)
        for axis, idx in reversed(self.maps):
            shape[axis] = self.shape[axis]
            moved = xp.moveaxis(g, axis, 0)
            gx = xp.zeros((shape[axis],) + moved.shape[1:], dtype=g.dtype)
            ufunc_at(np.add, gx, xp.asarray(idx), moved)
            g = xp.moveaxis(gx, 0, axis)
        return g


def pad_copying(x: Tensor, pad: tuple, mode: str) -> Tensor:
    """``F.pad`` with mode reflect, replicate or circular (torch's checks and messages)."""
    n_dims = len(pad) // 2
    if n_dims not in (1, 2, 3) or x.ndim not in (n_dims + 1, n_dims + 2):
        raise NotImplementedError(f"Padding size {len(pad)} is not supported for {x.ndim}D input tensor.\n"
                                  f"Supported combinations for non-constant padding:\n"
                                  f"  - 2D or 3D input: padding size = 2 (pads last dimension)\n"
                                  f"  - 3D or 4D input: padding size = 4 (pads last 2 dimensions)\n"
                                  f"  - 4D or 5D input: padding size = 6 (pads last 3 dimensions)")
    core = x.shape[1:] if x.ndim == n_dims + 2 else x.shape  # the batch dim may be empty, no other
    if any(n == 0 for n in core):
        raise RuntimeError(f"Expected {n_dims + 1}D or {n_dims + 2}D (batch mode) tensor with possibly 0 batch size "
                           f"and other non-zero dimensions for input, but got: {list(x.shape)}")
    maps, amounts = [], []
    for i in range(n_dims):
        axis = x.ndim - 1 - i
        lo, hi = int(pad[2 * i]), int(pad[2 * i + 1])
        n = x.shape[axis]
        if mode == "reflect" and (lo >= n or hi >= n):
            raise RuntimeError(f"Argument #4: Padding size should be less than the corresponding input dimension, but "
                               f"got: padding ({lo}, {hi}) at dimension {axis} of input {list(x.shape)}")
        if mode == "circular" and (lo > n or hi > n):
            raise RuntimeError("Padding value causes wrapping around more than once.")
        if n + lo + hi <= 0 or (mode == "circular" and n - max(0, -lo) - max(0, -hi) <= 0):
            raise RuntimeError(f"pad: padding {tuple(pad)} gives an empty or negative size for dimension {axis} of "
                               f"input {list(x.shape)}")
        if (lo, hi) != (0, 0):
            maps.append((axis, index_map(n, lo, hi, mode)))
            amounts.append((axis, lo, hi))
    return IndexPad.apply(x, maps=tuple(maps), mode=mode, amounts=tuple(amounts))


class Pad(Function):
    """Constant padding; negative amounts crop, as in torch."""

    saved = ()

    def forward(self, x, pairs, value):
        self.shape, self.pairs = x.shape, pairs
        crop = tuple(slice(-lo if lo < 0 else 0, n + hi if hi < 0 else n) for (lo, hi), n in zip(pairs, x.shape))
        x = x[crop]
        widths = [(lo if lo > 0 else 0, hi if hi > 0 else 0) for lo, hi in pairs]
        return array_module(x).pad(x, widths, mode="constant", constant_values=value)

    def backward(self, g):
        inner = tuple(
            slice(lo if lo > 0 else 0, g.shape[i] - (hi if hi > 0 else 0)) for i, (lo, hi) in enumerate(self.pairs)
        )
        g = g[inner]
        widths = [(-lo if lo < 0 else 0, -hi if hi < 0 else 0) for lo, hi in self.pairs]
        return array_module(g).pad(g, widths) if any(w != (0, 0) for w in widths) else g


def pad(x: Tensor, pad: tuple, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad the last ``len(pad) // 2`` dims: ``pad = (left_last, right_last, left_prev, ...)``; mode "constant"
    (with ``value``), "reflect", "replicate" or "circular"."""
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise NotImplementedError(f"pad: Unrecognised padding mode {mode}")
    if len(pad) % 2:
        raise RuntimeError(f"pad: Padding length must be divisible by 2, got {len(pad)} for shape {tuple(x.shape)}")
    if mode != "constant":
        if value is not None and value != 0:  # torch accepts an explicit 0
            raise RuntimeError(f'Padding mode "{mode}" doesn\'t take in value argument')
        return pad_copying(x, tuple(pad), mode)
    if len(pad) // 2 > x.ndim:
        raise RuntimeError(
            f"pad: padding length {len(pad)} must be even and at most 2 * {x.ndim} for shape {tuple(x.shape)}"
        )
    pairs = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        pairs[x.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    for (lo, hi), n in zip(pairs, x.shape):
        if n + lo + hi < 0:
            raise RuntimeError(f"pad: padding {tuple(pad)} would give a negative size for shape {tuple(x.shape)}")
    return Pad.apply(x, pairs=tuple(pairs), value=0.0 if value is None else value)
