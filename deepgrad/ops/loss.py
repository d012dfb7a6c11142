"""Loss functions with torch.nn.functional semantics: regression and divergence here, classification
(cross-entropy, NLL, binary cross-entropy) in :mod:`.loss_classification`, on the helpers of this module.

Fused where it pays, each said at its class: cross-entropy / nll with class indices, binary
cross-entropy (with and without logits), KL divergence and the pointwise regression losses are one
node each. Weighted regression losses and probability-target cross-entropy compose ops, as torch does.
Every loss takes ``reduction`` in {"none", "mean", "sum"} (torch's deprecated ``size_average`` /
``reduce`` arguments are accepted in their places and mapped to it).
"""

from __future__ import annotations

import warnings

import numpy as np

from .. import autograd
from ..autograd import Function
from ..backend import array_module
from ..tensor import Tensor
from . import elementwise as E
from . import reduce as R
from .adjoint import zero_link
from .elementwise import unbroadcast
from .promotion import result_type

_REDUCTIONS = ("none", "mean", "sum")


# ----------------------------------------------------------------------------- helpers
def _reduction(name: str, reduction: str, size_average=None, reduce=None, allowed=_REDUCTIONS) -> str:
    """The reduction to use, honouring torch's deprecated ``size_average`` / ``reduce`` flags."""
    if size_average is not None or reduce is not None:
        warnings.warn("size_average and reduce args will be deprecated, please use reduction='...' instead.",
                      stacklevel=3)
        if not (True if reduce is None else reduce):
            return "none"
        return "mean" if (True if size_average is None else size_average) else "sum"
    if reduction not in allowed:
        raise ValueError(f"{name}: {reduction!r} is not a valid value for reduction (expected one of {allowed})")
    return reduction


def _reduce_array(loss, reduction: str):
    """Forward side of a reduction on a raw elementwise-loss array (mean of nothing is nan)."""
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return total
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / loss.dtype.type(loss.size)


def _upstream(g, reduction: str, n: int):
    """Backward side of a reduction: the per-element coefficient of the loss gradient."""
    if reduction == "mean":
        return g / g.dtype.type(n) if n else g * np.nan
    return g


def _upstream_graph(g: Tensor, reduction: str, n: int) -> Tensor:
    """:func:`_upstream` on Tensors (recorded)."""
    if reduction == "mean":
        return g / n if n else g * float("nan")
    return g


def _const(array) -> Tensor:
    return Tensor._make(array, None)


def _check_tensor(name: str, what: str, t) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}: {what} must be a Tensor, got {type(t).__name__}")
    return t


def _pair(name: str, input: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Check devices and promote dtypes of (input, target) as torch's binary ops do."""
    _check_tensor(name, "input", input)
    _check_tensor(name, "target", target)
    if type(input.array) is not type(target.array):
        raise E.device_error(name, input, target)
    if input.array.dtype.kind != "f":
        raise TypeError(f"{name}: input must be a floating tensor, got {input.dtype}")
    return _promote(input, target)


def _promote(input: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    if input.array.dtype == target.array.dtype:  # the common case: nothing to promote
        return input, target
    dtype = result_type(input, target)
    return (E.cast(input, dtype) if input.array.dtype != dtype else input,
            E.cast(target, dtype) if target.array.dtype != dtype else target)


def _no_weight_grad(name: str, **weights) -> None:
    """torch's fused losses are not differentiable in their class / element weights."""
    for arg, w in weights.items():
        if w is not None and w.requires_grad and autograd.is_grad_enabled():
            raise RuntimeError(f"{name}: the function is not differentiable with respect to argument '{arg}'. "
                               f"This input cannot have requires_grad True (detach it).")


def _constant(name: str, what: str, w, like: Tensor):
    """A weight tensor as a raw array on ``like``'s device and dtype (``None`` stays ``None``)."""
    if w is None:
        return None
    _check_tensor(name, what, w)
    if type(w.array) is not type(like.array):
        raise E._device_error(name, like, w)
    return w.array.astype(like.array.dtype, copy=False)


# ----------------------------------------------------------------------------- regression
class PointwiseLoss(Function):
    """mse / l1 / smooth_l1 / huber of ``d = input - target`` in one node (fused: one node and one
    saved array instead of three nodes), broadcasting input and target as torch does."""

    # torch's mse / smooth_l1 / huber save input and target; its l1_loss is composite (|input - target|
    # saves only the difference), so changing either afterwards is harmless there.
    saved = staticmethod(lambda params: () if params["param"] is None and params["kind"] == "l1" else ((0, 1), (0, 1)))

    def forward(self, x, t, kind, param, reduction):
        self.shapes, self.kind, self.param, self.reduction = (x.shape, t.shape), kind, param, reduction
        self.d = d = x - t
        if kind == "mse":
            loss = d * d
        else:
            ad = abs(d)
            if kind == "l1":
                loss = ad
            else:  # smooth_l1 (beta) / huber (delta): quadratic near 0, linear beyond param
                xp = array_module(d)
                quad = 0.5 * d * d
                if kind == "smooth_l1":
                    loss = xp.where(ad < param, quad / param, ad - 0.5 * param)
                else:
                    loss = xp.where(ad < param, quad, param * (ad - 0.5 * param))
                loss = loss.astype(d.dtype, copy=False)
        return _reduce_array(loss, reduction)

    def backward(self, g):
        d, kind, p = self.d, self.kind, self.param
        c = _upstream(g, self.reduction, d.size)
        if kind == "mse":
            deriv = d * 2
        elif kind == "l1":
            deriv = array_module(d).sign(d)
        else:  # clip(d / beta, -1, 1) for smooth_l1, clip(d, -delta, delta) for huber
            xp = array_module(d)
            deriv = xp.clip(d / p, -1, 1) if kind == "smooth_l1" else xp.clip(d, -p, p)
        gd = c * deriv
        gx = unbroadcast(gd, self.shapes[0]) if self.next[0] is not None else None
        gt = unbroadcast(-gd, self.shapes[1]) if self.next[1] is not None else None
        return gx, gt

    def backward_graph(self, g):
        from .arithmetic import sum_to

        kind, p, shapes = self.kind, self.param, self.shapes
        c = _upstream_graph(g, self.reduction, self.d.size)
        if kind == "l1":  # sign(d): a step function (torch's sgn links both inputs with a zero derivative)
            gd = c * _const(array_module(self.d).sign(self.d))
        else:
            d = self.saved_input(0) - self.saved_input(1)
            gd = c * (d * 2 if kind == "mse" else (d / p).clamp(-1.0, 1.0) if kind == "smooth_l1" else d.clamp(-p, p))
        gx = sum_to(gd, shapes[0]) if self.next[0] is not None else None
        gt = sum_to(-gd, shapes[1]) if self.next[1] is not None else None
        if kind == "l1":
            link = dict(enumerate(shapes))
            gx, gt = (None if t is None else zero_link(t, self, link) for t in (gx, gt))
        return gx, gt


def _pointwise(name, kind, param, input, target, reduction, weight=None, weighted_mean="sum_of_weights"):
    input, target = _pair(name, input, target)
    if target.shape != input.shape:
        warnings.warn(f"{name}: using a target size ({tuple(target.shape)}) that is different to the input size "
                      f"({tuple(input.shape)}). This will likely lead to incorrect results due to broadcasting. "
                      f"Please ensure they have the same size.", stacklevel=3)
        try:
            np.broadcast_shapes(input.shape, target.shape)
        except ValueError:
            raise ValueError(f"{name}: input shape {tuple(input.shape)} and target shape {tuple(target.shape)} "
                             f"cannot be broadcast together") from None
    if weight is None:
        return PointwiseLoss.apply(input, target, kind=kind, param=param, reduction=reduction)
    # Weighted: compose ops, exactly as torch does in Python (so the weight gets a gradient too).
    _check_tensor(name, "weight", weight)
    if weight.shape != input.shape:
        raise ValueError(f"{name}: weights and input must have the same size, got weight shape "
                         f"{tuple(weight.shape)} and input shape {tuple(input.shape)}")
    loss = PointwiseLoss.apply(input, target, kind=kind, param=param, reduction="none") * weight
    if reduction == "none":
        return loss
    if reduction == "sum" or weighted_mean == "elements":
        return R.sum(loss) if reduction == "sum" else R.mean(loss)
    return R.sum(loss) / R.sum(weight)  # torch's weighted mean for mse / l1: sum(w * l) / sum(w)


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
             weight: Tensor | None = None) -> Tensor:
    """Mean squared error ``(input - target)^2``; with ``weight`` the mean is sum(w*l)/sum(w).

    >>> mse_loss(deepgrad.tensor([1.0, 2.0]), deepgrad.tensor([0.0, 0.0]))     # (1 + 4) / 2
    tensor(2.5000)
    """
    reduction = _reduction("mse_loss", reduction, size_average, reduce)
    return _pointwise("mse_loss", "mse", None, input, target, reduction, weight)


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
            weight: Tensor | None = None) -> Tensor:
    """Mean absolute error ``|input - target|`` (gradient 0 where they are equal, as torch)."""
    reduction = _reduction("l1_loss", reduction, size_average, reduce)
    return _pointwise("l1_loss", "l1", None, input, target, reduction, weight)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """``0.5 d^2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (``beta=0`` is l1_loss)."""
    reduction = _reduction("smooth_l1_loss", reduction, size_average, reduce)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    kind = "l1" if beta == 0 else "smooth_l1"
    return _pointwise("smooth_l1_loss", kind, float(beta), input, target, reduction)


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    """``0.5 d^2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``; weighted mean = mean(w*l) (torch)."""
    reduction = _reduction("huber_loss", reduction)
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    return _pointwise("huber_loss", "huber", float(delta), input, target, reduction, weight, "elements")


# ----------------------------------------------------------------------------- divergence
class KLDiv(Function):
    """Pointwise ``t (log t - x)`` (or ``e^t (t - x)`` for log targets), fused: one node instead of
    xlogy + sub + mul, with 0 where ``t == 0`` (the limit of t log t)."""

    saved = ((1,), (0, 1))

    def forward(self, x, t, log_target, reduction):
        xp = array_module(x)
        self.shapes, self.x, self.t, self.log_target, self.reduction = (x.shape, t.shape), x, t, log_target, reduction
        if log_target:
            self.et = et = np.exp(t)
            loss = et * (t - x)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                loss = xp.where(t == 0, 0, t * (np.log(t) - x))
        return _reduce_array(loss.astype(x.dtype, copy=False), reduction)

    def backward(self, g):
        x, t = self.x, self.t
        xp = array_module(x)
        full = np.broadcast_shapes(*self.shapes)
        c = _upstream(g, self.reduction, int(np.prod(full)))
        gx = gt = None
        if self.next[0] is not None:
            gx = xp.broadcast_to(-c * (self.et if self.log_target else t), full)
            gx = unbroadcast(gx, self.shapes[0])
        if self.next[1] is not None:
            if self.log_target:
                gt = c * self.et * (t - x + 1)
            else:  # d/dt (t log t - t x) = log t + 1 - x; 0 where t == 0 (torch gives nan there)
                with np.errstate(divide="ignore", invalid="ignore"):
                    gt = xp.where(t > 0, c * (np.log(t) + 1 - x), 0)
            gt = unbroadcast(xp.broadcast_to(gt.astype(t.dtype, copy=False), full), self.shapes[1])
        return gx, gt

    def backward_graph(self, g):
        from .arithmetic import sum_to
        from .elementwise import where

        full = np.broadcast_shapes(*self.shapes)
        c = _upstream_graph(g, self.reduction, int(np.prod(full)))
        t = self.saved_input(1)
        et = t.exp() if self.log_target else None
        gx = gt = None
        if self.next[0] is not None:
            gx = sum_to((-c * (et if self.log_target else t)).expand(full), self.shapes[0])
        if self.next[1] is not None:
            x = self.saved_input(0)
            if self.log_target:
                gt = c * et * (t - x + 1)
            else:  # log t + 1 - x where t > 0, else 0 (through a safe log: no 0 * inf in the next derivative)
                positive = _const(self.t > 0)
                gt = where(positive, c * (where(positive, t, 1.0).log() + 1 - x), 0.0)
            gt = sum_to(gt.expand(full), self.shapes[1])
        return gx, gt


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """KL(target || exp(input)) pointwise for log-probabilities ``input``; use ``reduction="batchmean"``
    for the true KL divergence ("mean" also divides by the support size, as torch warns)."""
    name = "kl_div"
    reduction = _reduction(name, reduction, size_average, reduce, allowed=_REDUCTIONS + ("batchmean",))
    if reduction == "mean" and size_average is None and reduce is None:
        warnings.warn("kl_div: reduction 'mean' divides the total loss by both the batch size and the support "
                      "size. 'batchmean' divides only by the batch size, and aligns with the KL div math "
                      "definition.", stacklevel=2)
    input, target = _pair(name, input, target)
    try:
        np.broadcast_shapes(input.shape, target.shape)
    except ValueError:
        raise ValueError(f"{name}: input shape {tuple(input.shape)} and target shape {tuple(target.shape)} "
                         f"cannot be broadcast together") from None
    inner = "sum" if reduction == "batchmean" else reduction
    out = KLDiv.apply(input, target, log_target=bool(log_target), reduction=inner)
    if reduction == "batchmean" and input.ndim != 0:
        out = out / input.shape[0]
    return out
