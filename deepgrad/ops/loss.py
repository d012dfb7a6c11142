"""Loss functions with torch.nn.functional semantics: regression, classification, divergence.

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
from ..autograd import Function, track_saved
from ..backend import array_module
from ..tensor import Tensor
from . import elementwise as E
from . import reduce as R
from .activation import stable_sigmoid
from .adjoint import value_node, zero_link
from .elementwise import unbroadcast
from .promotion import result_type
from .reduce import LogSoftmax

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


# ----------------------------------------------------------------------------- class indices
class ClassIndexLoss(Function):
    """Cross-entropy (``logits=True``) or nll (``logits=False``) with class indices, fused: a stable
    log-softmax forward and a backward of ``(softmax - smoothed onehot) * coefficient`` in one node.

    Arrays: ``x`` is (N, C, *d), ``target`` (N, *d) integers, ``weight`` (C,) or None.
    """

    saved = staticmethod(lambda params: ((1,), ()) if params['logits'] else ((0, 1), ()))

    def forward(self, x, target, weight, ignore_index, reduction, smoothing, logits):
        xp = array_module(x)
        valid = target != ignore_index
        safe = xp.where(valid, target, 0)
        # Index of x[n, target[n, *d], *d] for every position of the target (no repeats).
        nd = target.ndim
        idx = [xp.arange(n).reshape((1,) * i + (n,) + (1,) * (nd - i - 1)) for i, n in enumerate(target.shape)]
        idx.insert(1, safe)
        self.idx = idx = tuple(idx)
        if logits:
            logp = x - x.max(axis=1, keepdims=True)
            logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
        else:
            logp = x
        zero = x.dtype.type(0)
        w_y = valid.astype(x.dtype) if weight is None else xp.where(valid, weight[safe], zero)
        loss = xp.where(valid, -w_y * logp[idx], zero)
        n_cls = x.shape[1]
        if smoothing:
            wb = 1 if weight is None else weight.reshape((1, n_cls) + (1,) * (x.ndim - 2))
            smooth = xp.where(valid, -(logp * wb).sum(axis=1), zero)
            loss = (1 - smoothing) * loss + (smoothing / n_cls) * smooth
        # torch's weighted mean: divide by the summed weights of the non-ignored targets.
        self.denom = w_y.sum() if reduction == "mean" else None
        self.logp, self.valid, self.w_y, self.weight = logp, valid, w_y, weight
        self.reduction, self.smoothing, self.logits = reduction, smoothing, logits
        if reduction == "none":
            return loss.astype(x.dtype, copy=False)
        total = loss.sum()
        if reduction == "sum":
            return total
        with np.errstate(invalid="ignore", divide="ignore"):
            return (total / self.denom).astype(x.dtype)

    def backward(self, g):
        xp = array_module(g)
        logp, valid, w_y, eps = self.logp, self.valid, self.w_y, self.smoothing
        if self.reduction == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                g = g / self.denom
        coef = xp.where(valid, g, g.dtype.type(0))  # per-position upstream, 0 where ignored
        cw = coef * w_y
        if not self.logits:  # nll: d(-w_y * x[y]) / dx
            grad = xp.zeros_like(logp)
            grad[self.idx] = -cw
            return grad, None
        n_cls = logp.shape[1]
        # dL/dx = p * sum_j(q_j) - q, with q = (1 - eps) w_y onehot + (eps / C) w.
        total_w = n_cls if self.weight is None else self.weight.sum()
        scale = (1 - eps) * cw + (eps / n_cls) * total_w * coef
        grad = np.exp(logp) * xp.expand_dims(scale, 1)
        if eps:
            wb = 1 if self.weight is None else self.weight.reshape((1, n_cls) + (1,) * (logp.ndim - 2))
            grad -= (eps / n_cls) * wb * xp.expand_dims(coef, 1)
        grad[self.idx] -= (1 - eps) * cw
        return grad.astype(logp.dtype, copy=False), None

    def backward_graph(self, g):
        if self.next[0] is None:
            return None, None
        xp = array_module(self.logp)
        logp, eps, dtype, n_cls = self.logp, self.smoothing, self.logp.dtype, self.logp.shape[1]
        per_position = self.valid.astype(dtype)  # the upstream's coefficient at each target position
        if self.reduction == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                per_position = per_position / self.denom
        coef = g * _const(per_position.astype(dtype, copy=False))
        onehot = xp.zeros_like(logp)
        onehot[self.idx] = 1
        picked = _const(onehot) * (coef * _const(self.w_y * dtype.type(1 - eps))).unsqueeze(1)
        if not self.logits:  # nll: -w_y at the target; torch links the input with a zero derivative
            return zero_link(-picked, self, {0: logp.shape}), None
        # dL/dx = softmax * sum_j(q_j) - q, q = (1 - eps) w_y onehot + (eps / C) w: the softmax is the
        # log-probabilities this node computed, re-entered as the log_softmax of the logits torch differentiates
        total_w = n_cls if self.weight is None else self.weight.sum()
        scale = coef * _const(((1 - eps) * self.w_y + (eps / n_cls) * total_w).astype(dtype, copy=False))
        logp_t = value_node(LogSoftmax, logp, (self.next[0],), out=logp, dim=1)
        grad = logp_t.exp() * scale.unsqueeze(1) - picked
        if eps:
            wb = xp.ones((1, n_cls) + (1,) * (logp.ndim - 2), dtype=dtype) if self.weight is None else \
                self.weight.reshape((1, n_cls) + (1,) * (logp.ndim - 2))
            grad = grad - coef.unsqueeze(1) * _const((wb * (eps / n_cls)).astype(dtype, copy=False))
        return grad, None


def _class_index_loss(name, input, target, weight, ignore_index, reduction, smoothing, logits) -> Tensor:
    if target.array.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer class indices for target, got dtype {target.dtype} "
                        f"(target shape {tuple(target.shape)}, input shape {tuple(input.shape)})")
    if input.ndim == 0:
        raise ValueError(f"{name}: input must have a class dimension, got a 0-d input")
    unbatched = input.ndim == 1
    x, t = (input.array[None], target.array[None]) if unbatched else (input.array, target.array)
    expected = (x.shape[0],) + x.shape[2:]
    if t.shape != expected:
        raise ValueError(f"{name}: target shape {tuple(target.shape)} does not match input shape "
                         f"{tuple(input.shape)} (expected target shape {expected[1:] if unbatched else expected})")
    n_cls = x.shape[1]
    if weight is not None and tuple(weight.shape) != (n_cls,):
        raise ValueError(f"{name}: weight tensor should be defined either for all {n_cls} classes or no classes, "
                         f"but got weight shape {tuple(weight.shape)} (input shape {tuple(input.shape)})")
    _no_weight_grad(name, weight=weight)
    bad = (t != ignore_index) & ((t < 0) | (t >= n_cls))
    if bool(bad.any()):
        raise IndexError(f"{name}: target class {int(t[bad].ravel()[0])} out of range for input shape "
                         f"{tuple(input.shape)} with {n_cls} classes (target shape {tuple(target.shape)})")
    w = _constant(name, "weight", weight, input)
    x_t = input if not unbatched else input.reshape(x.shape)
    t_t = target if not unbatched else target.reshape(t.shape)  # the user's target: torch saves it
    out = track_saved(ClassIndexLoss.apply(x_t, t_t, weight=w, ignore_index=ignore_index, reduction=reduction,
                                           smoothing=float(smoothing), logits=logits), weight)
    return out.reshape(()) if unbatched and reduction == "none" else out


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                  ignore_index: int = -100, reduce=None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy of logits ``input`` (N, C, *d) against class indices (N, *d) or class
    probabilities (input's shape), with class ``weight``, ``ignore_index`` and ``label_smoothing``.

    >>> cross_entropy(deepgrad.tensor([[2.0, 0.0], [0.0, 2.0]]), deepgrad.tensor([0, 1]))
    tensor(0.1269)
    """
    name = "cross_entropy"
    reduction = _reduction(name, reduction, size_average, reduce)
    input, target = _check_tensor(name, "input", input), _check_tensor(name, "target", target)
    if input.array.dtype.kind != "f":
        raise TypeError(f"{name}: input must be floating logits, got {input.dtype}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{name}: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    if type(input.array) is not type(target.array):
        raise E.device_error(name, input, target)
    if target.shape != input.shape:
        return _class_index_loss(name, input, target, weight, ignore_index, reduction, label_smoothing, True)
    # Probability targets (same shape as input): compose the fused log_softmax with products, as torch.
    if target.array.dtype.kind != "f":
        raise TypeError(f"{name}: target has the input's shape {tuple(input.shape)}, so it is read as class "
                        f"probabilities and must be floating, got {target.dtype}")
    if ignore_index >= 0:
        raise ValueError(f"{name}: ignore_index is not supported for probability targets (got {ignore_index})")
    cdim = 0 if input.ndim == 1 else 1
    n_cls = input.shape[cdim]
    if weight is not None and tuple(weight.shape) != (n_cls,):
        raise ValueError(f"{name}: weight tensor should be defined either for all {n_cls} classes or no classes, "
                         f"but got weight shape {tuple(weight.shape)} (input shape {tuple(input.shape)})")
    input, target = _promote(input, target)
    prod = R.log_softmax(input, cdim)
    if label_smoothing:
        target = target * (1 - label_smoothing) + label_smoothing / n_cls
    prod = prod * target
    if weight is not None:
        prod = prod * weight.reshape((n_cls,) + (1,) * (input.ndim - cdim - 1))
    if reduction == "none":
        return -R.sum(prod, cdim)
    if reduction == "sum":
        return -R.sum(prod)
    n = input.array.size // n_cls if n_cls else 0
    return -R.sum(prod) / (n if n else float("nan"))  # mean over the N * d1 * ... samples


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood ``-weight[y] * input[n, y]`` of log-probabilities (N, C, *d)."""
    name = "nll_loss"
    reduction = _reduction(name, reduction, size_average, reduce)
    input, target = _check_tensor(name, "input", input), _check_tensor(name, "target", target)
    if input.array.dtype.kind != "f":
        raise TypeError(f"{name}: input must be floating log-probabilities, got {input.dtype}")
    if type(input.array) is not type(target.array):
        raise E.device_error(name, input, target)
    return _class_index_loss(name, input, target, weight, ignore_index, reduction, 0.0, False)


# ----------------------------------------------------------------------------- binary
def _elementwise_weight(name: str, what: str, w, input: Tensor):
    if w is None:
        return None
    _check_tensor(name, what, w)
    try:
        ok = np.broadcast_shapes(w.shape, input.shape) == tuple(input.shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{name}: {what} of shape {tuple(w.shape)} cannot be broadcast to the input shape "
                         f"{tuple(input.shape)}")
    return _constant(name, what, w, input)


class BinaryCrossEntropy(Function):
    """``-w (t log x + (1 - t) log(1 - x))`` with torch's clamp of the logs at -100 (fused: torch's
    exact backward ``w (x - t) / max(x (1 - x), 1e-12)``, finite where the clamped log is flat)."""

    saved = ((0, 1),)

    def forward(self, x, t, weight, reduction):
        with np.errstate(divide="ignore"):
            logx, log1mx = np.log(x), np.log1p(-x)
        loss = -(t * np.maximum(logx, -100) + (1 - t) * np.maximum(log1mx, -100))
        if weight is not None:
            loss = loss * weight
        self.x, self.t, self.weight, self.reduction = x, t, weight, reduction
        return _reduce_array(loss.astype(x.dtype, copy=False), reduction)

    def backward(self, g):
        x, t, w = self.x, self.t, self.weight
        c = _upstream(g, self.reduction, x.size)
        if w is not None:
            c = c * w
        gx = gt = None
        if self.next[0] is not None:
            gx = c * (x - t) / np.maximum(x * (1 - x), x.dtype.type(1e-12))
        if self.next[1] is not None:
            with np.errstate(divide="ignore"):
                gt = c * (np.log1p(-x) - np.log(x))  # -logit(x), unclamped as in torch
        return gx, gt

    def backward_graph(self, g):
        x, t = self.saved_input(0), self.saved_input(1)
        c = _upstream_graph(g, self.reduction, self.x.size)
        if self.weight is not None:
            c = c * _const(self.weight)
        gx = c * (x - t) / (x * (1 - x)).clamp(min=1e-12) if self.next[0] is not None else None
        gt = c * ((-x).log1p() - x.log()) if self.next[1] is not None else None
        return gx, gt


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                         reduce=None, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of probabilities ``input`` in [0, 1] (logs clamped at -100, as torch)."""
    name = "binary_cross_entropy"
    reduction = _reduction(name, reduction, size_average, reduce)
    input, target = _pair(name, input, target)
    if target.shape != input.shape:
        raise ValueError(f"{name}: target size {tuple(target.shape)} must be the same as input size "
                         f"{tuple(input.shape)}")
    _no_weight_grad(name, weight=weight)
    w = _elementwise_weight(name, "weight", weight, input)
    x = input.array
    if x.size and bool(((x < 0) | (x > 1)).any()):
        raise ValueError(f"{name}: all elements of input should be between 0 and 1 (input shape "
                         f"{tuple(input.shape)}); apply sigmoid first or use binary_cross_entropy_with_logits")
    return track_saved(BinaryCrossEntropy.apply(input, target, weight=w, reduction=reduction), weight)


class BCEWithLogits(Function):
    """``(1 - t) x + (1 + (pw - 1) t) softplus(-x)``, times ``w`` (fused: the stable log-sum-exp form,
    never exp of a positive number, and the closed-form backward ``(1 + (pw - 1) t) sigmoid(x) - pw t``)."""

    saved = ((0, 1),)

    def forward(self, x, t, weight, pos_weight, reduction):
        xp = array_module(x)
        self.sp = sp = xp.maximum(-x, 0) + np.log1p(np.exp(-abs(x)))  # softplus(-x) = -log sigmoid(x)
        lw = 1 if pos_weight is None else 1 + (pos_weight - 1) * t
        loss = (1 - t) * x + lw * sp
        if weight is not None:
            loss = loss * weight
        self.x, self.t, self.weight, self.pw, self.reduction = x, t, weight, pos_weight, reduction
        return _reduce_array(loss.astype(x.dtype, copy=False), reduction)

    def backward(self, g):
        x, t, w, pw = self.x, self.t, self.weight, self.pw
        c = _upstream(g, self.reduction, x.size)
        if w is not None:
            c = c * w
        gx = gt = None
        if self.next[0] is not None:
            sig = stable_sigmoid(x)
            gx = c * (sig - t) if pw is None else c * ((1 + (pw - 1) * t) * sig - pw * t)
        if self.next[1] is not None:
            gt = c * -x if pw is None else c * ((pw - 1) * self.sp - x)
        return gx, gt

    def backward_graph(self, g):
        from .activation import Sigmoid

        x, t, pw = self.saved_input(0), self.saved_input(1), self.pw
        c = _upstream_graph(g, self.reduction, self.x.size)
        if self.weight is not None:
            c = c * _const(self.weight)
        gx = gt = None
        if self.next[0] is not None:
            sig = Sigmoid.apply(x)
            gx = c * (sig - t) if pw is None else c * ((t * _const(pw - 1) + 1) * sig - t * _const(pw))
        if self.next[1] is not None:
            if pw is None:
                gt = c * -x
            else:  # softplus(-x) = max(-x, 0) + log1p(exp(-|x|)), in ops
                softplus = (-x).clamp(min=0.0) + (-x.abs()).exp().log1p()
                gt = c * (softplus * _const(pw - 1) - x)
        return gx, gt


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     size_average=None, reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """Sigmoid + binary cross-entropy of logits in one stable op; ``pos_weight`` scales the positives.

    >>> binary_cross_entropy_with_logits(deepgrad.tensor([0.0]), deepgrad.tensor([1.0]))   # log 2
    tensor(0.6931)
    """
    name = "binary_cross_entropy_with_logits"
    reduction = _reduction(name, reduction, size_average, reduce)
    input, target = _pair(name, input, target)
    if target.shape != input.shape:
        raise ValueError(f"{name}: target size {tuple(target.shape)} must be the same as input size "
                         f"{tuple(input.shape)}")
    _no_weight_grad(name, weight=weight, pos_weight=pos_weight)
    w = _elementwise_weight(name, "weight", weight, input)
    pw = _elementwise_weight(name, "pos_weight", pos_weight, input)
    return track_saved(BCEWithLogits.apply(input, target, weight=w, pos_weight=pw, reduction=reduction), weight,
                       pos_weight)


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
