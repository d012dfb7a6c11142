"""Classification losses with torch.nn.functional semantics: cross-entropy and NLL with class indices
(weights, ``ignore_index``, label smoothing) or class probabilities, and binary cross-entropy with and
without logits (``pos_weight``). The shared argument handling (``reduction``, shapes, dtypes) is in
:mod:`.loss`.

>>> import deepgrad as dg
>>> logits = dg.tensor([[2.0, 0.0, -1.0]], requires_grad=True)
>>> loss = cross_entropy(logits, dg.tensor([0]))
>>> round(loss.item(), 4)
0.1698
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function, track_saved
from ..backend import array_module
from ..tensor import Tensor
from . import elementwise as E
from . import reduce as R
from .activation import stable_sigmoid
from .adjoint import value_node, zero_link
from .loss import (
    _check_tensor,
    _const,
    _constant,
    _no_weight_grad,
    _pair,
    _promote,
    _reduce_array,
    _reduction,
    _upstream,
    _upstream_graph,
)
from .reduce import LogSoftmax


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


def _same_shape_pair(name: str, input: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`_pair` for the binary cross-entropies, whose target must have the input's shape (torch's check)."""
    input, target = _pair(name, input, target)
    if target.shape != input.shape:
        raise ValueError(f"{name}: target size {tuple(target.shape)} must be the same as input size "
                         f"{tuple(input.shape)}")
    return input, target


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                         reduce=None, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of probabilities ``input`` in [0, 1] (logs clamped at -100, as torch)."""
    name = "binary_cross_entropy"
    reduction = _reduction(name, reduction, size_average, reduce)
    input, target = _same_shape_pair(name, input, target)
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
    input, target = _same_shape_pair(name, input, target)
    _no_weight_grad(name, weight=weight, pos_weight=pos_weight)
    w = _elementwise_weight(name, "weight", weight, input)
    pw = _elementwise_weight(name, "pos_weight", pos_weight, input)
    return track_saved(BCEWithLogits.apply(input, target, weight=w, pos_weight=pw, reduction=reduction), weight,
                       pos_weight)
