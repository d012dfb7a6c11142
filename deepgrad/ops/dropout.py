"""Dropout with torch.nn.functional semantics: dropout, dropout1d/2d/3d, alpha_dropout, feature_alpha_dropout.

Inverted dropout: kept elements are scaled by 1 / (1 - p) during training so evaluation is the
identity. Masks come from deepgrad's global seeded generator (``cupy.random`` for CUDA tensors),
so ``deepgrad.manual_seed`` makes runs reproducible.
"""

from __future__ import annotations

import math
import warnings

from .. import creation
from ..autograd import Function
from ..backend import array_module, device_of
from ..tensor import Tensor
from .inplace import inplace as inplace_op

# SELU's alpha * scale: the value a dropped unit takes in alpha dropout (before the affine fix-up).
_SELU_ALPHA_SCALE = 1.7580993408473766


class Noise(Function):
    """``x * noise + shift`` with a pre-drawn noise array (the mask of dropout, scaled)."""

    saved = ()

    def forward(self, x, noise, shift):
        self.noise = noise
        out = x * noise
        if shift is not None:
            out += shift
        return out

    def backward(self, g):
        return g * self.noise

    def backward_graph(self, g):
        return g * Tensor._make(self.noise, None)


def _check_p(p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _apply(input: Tensor, p: float, training: bool, inplace: bool, name: str, feature: bool = False,
           alpha: bool = False, batched: bool = True) -> Tensor:
    """Draw the keep-mask (per element, or per channel when ``feature``) and apply it."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
    _check_p(p)
    if not training or p == 0:
        return input
    shape = tuple(input.shape)
    if feature:  # one draw per (sample, channel), broadcast over the spatial dims
        if input.ndim < 2 and batched:
            raise RuntimeError(f"{name}: feature dropout requires at least 2 dimensions in the input, got "
                               f"shape {shape}")
        lead = 2 if batched else 1
        shape = shape[:lead] + (1,) * (input.ndim - lead)
    dtype = input.array.dtype
    if p == 1:
        noise, shift = array_module(input.array).zeros(shape, dtype=dtype), None
    else:
        keep = creation.rand(shape, device=device_of(input.array)).array >= p  # P(keep) = 1 - p
        noise = keep.astype(dtype)
        if alpha:  # keep x -> a x + a alpha p; dropped -> a alpha (p - 1): mean 0 and variance 1 preserved
            a = 1.0 / math.sqrt((_SELU_ALPHA_SCALE**2 * p + 1) * (1 - p))
            shift = (noise - 1) * dtype.type(_SELU_ALPHA_SCALE * a) + dtype.type(_SELU_ALPHA_SCALE * a * p)
            noise *= dtype.type(a)
        else:
            shift = None
            noise *= dtype.type(1.0 / (1.0 - p))
    if not inplace:
        return Noise.apply(input, noise=noise, shift=shift)

    def fast(array):
        array *= noise
        if shift is not None:
            array += shift

    return inplace_op(input, lambda t: Noise.apply(t, noise=noise, shift=shift), f"{name}_", fast=fast)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    >>> y = dropout(deepgrad.ones(1000), 0.2)      # ~200 zeros, the rest 1.25; mean ~1
    >>> sorted(set(y.tolist()))
    [0.0, 1.25]
    """
    return _apply(input, p, training, inplace, "dropout")


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, L) or (C, L) input with probability ``p``."""
    if not isinstance(input, Tensor) or input.ndim not in (2, 3):
        raise RuntimeError(f"dropout1d: expected 2D or 3D input, but received input of shape "
                           f"{tuple(getattr(input, 'shape', ()))}")
    return _apply(input, p, training, inplace, "dropout1d", feature=True, batched=input.ndim == 3)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, H, W) input with probability ``p``.

    As torch 2.13 does, a 3D input is read as (N, C, L) (channel-wise 1D dropout) with a warning;
    use dropout1d for that, or unsqueeze(0) an unbatched (C, H, W) image.
    """
    _check_p(p)
    ndim = input.ndim
    if ndim not in (3, 4):
        warnings.warn(f"dropout2d: received a {ndim}-D input, which is deprecated in torch; dropout2d exists for "
                      f"channel-wise dropout of (N, C, H, W) inputs. Use dropout instead.", stacklevel=2)
    if ndim == 3:
        warnings.warn("dropout2d: received a 3D input and assuming that channel-wise 1D dropout behavior is "
                      "desired - input is interpreted as shape (N, C, L), where C is the channel dim (torch's "
                      "behaviour). To drop channels of an unbatched (C, H, W) image, unsqueeze(0) it first; for "
                      "1D channel dropout use dropout1d.", stacklevel=2)
    return _apply(input, p, training, inplace, "dropout2d", feature=True)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) input with probability ``p``."""
    _check_p(p)
    if input.ndim not in (4, 5):
        warnings.warn(f"dropout3d: received a {input.ndim}-D input, which is deprecated in torch; dropout3d "
                      f"exists for channel-wise dropout of (N, C, D, H, W) or (C, D, H, W) inputs.", stacklevel=2)
    return _apply(input, p, training, inplace, "dropout3d", feature=True, batched=input.ndim == 5)


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    """Dropout for SELU networks: dropped units take SELU's negative saturation and an affine map keeps
    mean 0 and variance 1. Note torch's default ``training=False``."""
    return _apply(input, p, training, inplace, "alpha_dropout", alpha=True)


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    """alpha_dropout of whole channels (dim 1) of (N, C, *) input."""
    return _apply(input, p, training, inplace, "feature_alpha_dropout", feature=True, alpha=True)
