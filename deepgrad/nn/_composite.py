"""Functional forms built from differentiable ops (no backward of their own): the channel/space shuffles,
RMS norm, and the margin, ranking and likelihood losses. Public through :mod:`deepgrad.nn.functional`."""

from __future__ import annotations

import math

import numpy as np

from .. import functional as _F
from ..creation import ones_like, zeros_like
from ..ops.loss import _reduction
from ..tensor import Tensor


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


# ----------------------------------------------------------------------------- rearrangements and norms
def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(*, C * r^2, H, W) -> (*, C, H * r, W * r): channel blocks become r x r pixel blocks."""
    r = int(upscale_factor)
    if input.ndim < 3:
        raise RuntimeError(f"pixel_shuffle expects input to have at least 3 dimensions, but got input with "
                           f"{input.ndim} dimension(s)")
    if r <= 0:
        raise RuntimeError(f"pixel_shuffle expects a positive upscale_factor, but got {r}")
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise RuntimeError(f"pixel_shuffle expects its input's 'channel' dimension to be divisible by the square "
                           f"of upscale_factor, but input.size(-3)={c} is not divisible by {r * r}")
    n = len(lead)
    x = input.reshape(*lead, c // (r * r), r, r, h, w)
    x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return x.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """(*, C, H * r, W * r) -> (*, C * r^2, H, W): the inverse of :func:`pixel_shuffle`."""
    r = int(downscale_factor)
    if input.ndim < 3:
        raise RuntimeError(f"pixel_unshuffle expects input to have at least 3 dimensions, but got input with "
                           f"{input.ndim} dimension(s)")
    if r <= 0:
        raise RuntimeError(f"pixel_unshuffle expects a positive downscale_factor, but got {r}")
    *lead, c, h, w = input.shape
    if h % r or w % r:
        raise RuntimeError(f"pixel_unshuffle expects height and width ({h}, {w}) to be divisible by "
                           f"downscale_factor {r}")
    n = len(lead)
    x = input.reshape(*lead, c, h // r, r, w // r, r)
    x = x.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return x.reshape(*lead, c * r * r, h // r, w // r)


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """Interleave channel groups: (N, g * c, *) seen as (N, g, c, *) -> (N, c, g, *) -> (N, g * c, *)."""
    if input.ndim < 3:
        raise RuntimeError(f"channel_shuffle expects input to have at least 3 dimensions, but got input with "
                           f"{input.ndim} dimension(s)")
    if groups <= 0:
        raise RuntimeError(f"Number of groups to divide channels in must be positive. Value of groups:{groups}")
    n, c, *rest = input.shape
    if c % groups:
        raise RuntimeError(f"Number of channels must be divisible by groups. Got {c} channels and {groups} groups.")
    x = input.reshape(n, groups, c // groups, *rest).transpose(1, 2)
    return x.reshape(n, c, *rest)


def rms_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, eps: float | None = None) -> Tensor:
    """x / sqrt(mean(x^2 over the trailing ``normalized_shape`` dims) + eps), times ``weight`` (no mean
    subtraction, no bias: the LayerNorm of LLaMA-style models). ``eps`` None: the dtype's machine epsilon."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or tuple(input.shape[input.ndim - k:]) != shape:
        raise RuntimeError(f"rms_norm: given normalized_shape={list(shape)}, expected input with shape "
                           f"[*, {', '.join(map(str, shape))}], but got input of size {list(input.shape)}")
    if eps is None:
        eps = float(np.finfo(input.dtype).eps)
    dims = tuple(range(input.ndim - k, input.ndim))
    out = input * (_F.mean(input * input, dims, True) + eps) ** -0.5
    return out if weight is None else out * weight


# ----------------------------------------------------------------------------- losses
def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0, size_average=None,
                        reduce=None, reduction: str = "mean") -> Tensor:
    """max(0, -y * (x1 - x2) + margin): x1 should rank above x2 where y = 1, below where y = -1."""
    reduction = _reduction("margin_ranking_loss", reduction, size_average, reduce)
    if not (input1.ndim == input2.ndim == target.ndim):
        raise RuntimeError(f"margin_ranking_loss : All input tensors should have same dimension but got sizes: "
                           f"input1: {tuple(input1.shape)}, input2: {tuple(input2.shape)}, "
                           f"target: {tuple(target.shape)} ")
    return _reduce(_F.clamp(-target * (input1 - input2) + margin, min=0.0), reduction)


def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
    """x where y = 1, max(0, margin - x) where y = -1 (x is usually a distance)."""
    reduction = _reduction("hinge_embedding_loss", reduction, size_average, reduce)
    zero = zeros_like(input)
    margin_part = _F.where(target != 1, _F.clamp(margin - input, min=0.0), zero)
    self_part = _F.where(target != -1, input, zero)
    return _reduce(margin_part + self_part, reduction)


def soft_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """log(1 + exp(-y x)): the two-class logistic loss with targets -1 / 1."""
    reduction = _reduction("soft_margin_loss", reduction, size_average, reduce)
    return _reduce(_F.log1p(_F.exp(-input * target)), reduction)


def multilabel_soft_margin_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                                reduce=None, reduction: str = "mean") -> Tensor:
    """Per sample, the mean over classes of the binary logistic loss of each label (targets 0 / 1)."""
    reduction = _reduction("multilabel_soft_margin_loss", reduction, size_average, reduce)
    from .functional import logsigmoid

    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss.sum(input.ndim - 1) / input.shape[-1], reduction)


def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0, size_average=None,
                          reduce=None, reduction: str = "mean") -> Tensor:
    """1 - cos(x1, x2) where y = 1, max(0, cos(x1, x2) - margin) where y = -1 (cosine over the last dim)."""
    reduction = _reduction("cosine_embedding_loss", reduction, size_average, reduce)
    if input1.shape != input2.shape or input1.ndim not in (1, 2):
        raise RuntimeError(f"cosine_embedding_loss: expected 1-D or 2-D inputs of the same shape, got "
                           f"{tuple(input1.shape)} and {tuple(input2.shape)}")
    dim = input1.ndim - 1
    eps = 1e-12  # torch's constant, added to each squared magnitude
    product = _F.sum(input1 * input2, dim)
    magnitudes = (_F.sum(input1 * input1, dim) + eps) * (_F.sum(input2 * input2, dim) + eps)
    cos = product / _F.sqrt(magnitudes)
    zero = zeros_like(cos)
    positive = _F.where(target == 1, 1 - cos, zero)
    negative = _F.where(target == -1, _F.clamp(cos - margin, min=0.0), zero)
    return _reduce(positive + negative, reduction)


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0, p: float = 2,
                        eps: float = 1e-6, swap: bool = False, size_average=None, reduce=None,
                        reduction: str = "mean") -> Tensor:
    """max(0, d(a, p) - d(a, n) + margin) with d the p-norm distance (``swap``: d(a, n) := min(d(a, n), d(p, n)))."""
    reduction = _reduction("triplet_margin_loss", reduction, size_average, reduce)
    if not (anchor.ndim == positive.ndim == negative.ndim):
        raise RuntimeError(f"The anchor, positive, and negative tensors are expected to have the same number of "
                           f"dimensions, but got: anchor {anchor.ndim}D, positive {positive.ndim}D, and negative "
                           f"{negative.ndim}D inputs")
    from .functional import pairwise_distance

    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = _F.minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    return _reduce(_F.clamp(margin + d_pos - d_neg, min=0.0), reduction)


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True, full: bool = False, size_average=None,
                     eps: float = 1e-8, reduce=None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of counts ``target`` under Poisson(rate): exp(x) - y x for a log-rate input,
    else x - y log(x + eps); ``full`` adds Stirling's term y log y - y + log(2 pi y) / 2 where y > 1."""
    reduction = _reduction("poisson_nll_loss", reduction, size_average, reduce)
    loss = _F.exp(input) - target * input if log_input else input - target * _F.log(input + eps)
    if full:
        safe = _F.where(target > 1, target, ones_like(target))  # the log never sees y <= 1 (0 log 0)
        stirling = safe * _F.log(safe) - safe + 0.5 * _F.log(2 * math.pi * safe)
        loss = loss + _F.where(target > 1, stirling, zeros_like(stirling))
    return _reduce(loss, reduction)
