"""Normalization with torch.nn.functional semantics: batch_norm, layer_norm, group_norm, instance_norm.

batch_norm and layer_norm are fused: one node computes the statistics, the normalization and the
affine map, and its backward is the closed form
``dx = w * invstd * (g - mean(g) - xhat * mean(g * xhat))`` instead of a dozen autograd nodes (the
arithmetic, with batch norm's NumPy fast path, is in :mod:`deepgrad.kernels.norm`).
group_norm and instance_norm reshape and reuse them, as torch does.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function, track_saved
from ..backend import array_module
from ..kernels import norm as K
from ..tensor import Tensor

_Shape = int | list | tuple


def _check(name: str, what: str, t, shape: tuple, input: Tensor):
    """``t`` (a Tensor or None) must have ``shape`` and live on ``input``'s device."""
    if t is None:
        return
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}: {what} must be a Tensor or None, got {type(t).__name__}")
    if tuple(t.shape) != shape:
        raise ValueError(f"{name}: {what} should have shape {shape} for input of shape {tuple(input.shape)}, "
                         f"got {tuple(t.shape)}")
    if type(t.array) is not type(input.array):
        raise RuntimeError(f"{name}: {what} is on {t.device} but the input is on {input.device}")


def _affine_inputs(input: Tensor, weight, bias) -> tuple:
    return tuple(t for t in (input, weight, bias) if t is not None)


class BatchNorm(Function):
    """Batch norm over every axis but 1 (fused: statistics, normalization, affine and the running-stat
    update in one node, with the closed-form backward for input, weight and bias)."""

    saved = ((0, 1),)

    def forward(self, x, *affine, has_weight, has_bias, eps, batch_stats, running_mean, running_var, momentum):
        self.has_weight, self.has_bias = has_weight, has_bias
        weight, bias = (affine[0] if has_weight else None), (affine[-1] if has_bias else None)
        running = None if batch_stats else (running_mean, running_var)
        self.eps, self.running = eps, running  # (the running statistics are tracked as saved: see batch_norm)
        out, self.state, mean, var = K.batch_norm_forward(x, weight, bias, eps, running)
        if batch_stats:
            _update_running(running_mean, running_var, mean, var, x.size // x.shape[1], momentum)
        return out

    def backward(self, g):
        gx, gw, gb = K.batch_norm_backward(g, self.state, need_input=self.next[0] is not None)
        return _with_affine_grads(self, gx, gw, gb)

    def backward_graph(self, g):
        x = self.saved_input(0)
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        weight = self.saved_input(1).reshape(shape) if self.has_weight else None
        if self.running is None:  # batch statistics: functions of x, differentiated too
            return _normalized_grads(self, g, x, weight, axes, axes, self.eps)
        mean, var = (Tensor._make(s.reshape(shape).astype(x.array.dtype, copy=False), None) for s in self.running)
        invstd = (var + self.eps) ** -0.5
        gx = gw = gb = None
        if self.next[0] is not None:
            gx = g * invstd if weight is None else g * (weight * invstd)
        if self.has_weight and self.next[1] is not None:
            gw = (g * ((x - mean) * invstd)).sum(axes)
        if self.has_bias and self.next[-1] is not None:
            gb = g.sum(axes)
        return _with_affine_grads(self, gx, gw, gb)


def _normalized_grads(fn: Function, g: Tensor, x: Tensor, weight, stat_axes: tuple, sum_axes: tuple,
                      eps: float) -> tuple:
    """The closed-form backward of normalizing ``x`` over ``stat_axes`` by its own statistics, then the affine
    map (weight and bias summed over ``sum_axes``), written in ops so that it can be differentiated again:
    ``dx = invstd * (gh - mean(gh) - xhat * mean(gh * xhat))`` with ``gh = g * weight``."""
    mean = x.mean(stat_axes, keepdim=True)
    centred = x - mean
    invstd = ((centred * centred).mean(stat_axes, keepdim=True) + eps) ** -0.5
    xhat = centred * invstd
    gx = gw = gb = None
    if fn.next[0] is not None:
        gh = g if weight is None else g * weight
        gx = invstd * (gh - gh.mean(stat_axes, keepdim=True) - xhat * (gh * xhat).mean(stat_axes, keepdim=True))
    if fn.has_weight and fn.next[1] is not None:
        gw = (g * xhat).sum(sum_axes)
    if fn.has_bias and fn.next[-1] is not None:
        gb = g.sum(sum_axes)
    return _with_affine_grads(fn, gx, gw, gb)


def _with_affine_grads(fn: Function, gx, gw, gb) -> tuple:
    """(gx, [gw], [gb]): the weight and bias grads where the op has them and they are needed."""
    grads = [gx]
    if fn.has_weight:
        grads.append(gw if fn.next[1] is not None else None)
    if fn.has_bias:
        grads.append(gb if fn.next[-1] is not None else None)
    return tuple(grads)


def _update_running(running_mean, running_var, mean, var, n: int, momentum: float) -> None:
    """torch's running-stat update: in place, momentum-weighted, with the UNBIASED batch variance."""
    if running_mean is not None:
        running_mean *= 1 - momentum
        running_mean += momentum * mean.reshape(-1)
    if running_var is not None:
        running_var *= 1 - momentum
        running_var += (momentum * n / (n - 1)) * var.reshape(-1)


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize each channel (dim 1) of (N, C), (N, C, L) or (N, C, H, W) input.

    Training uses the batch statistics and updates ``running_mean`` / ``running_var`` in place
    (momentum, unbiased variance); evaluation uses the running statistics, which must then be given.

    >>> rm, rv = deepgrad.zeros(1), deepgrad.ones(1)
    >>> batch_norm(deepgrad.tensor([[1.0], [3.0]]), rm, rv, training=True)
    tensor([[-1.0000],
            [ 1.0000]])
    >>> rm, rv      # moved 10% toward the batch mean (2) and unbiased variance (2)
    (tensor([0.2000]), tensor([1.1000]))
    """
    name = "batch_norm"
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
    if input.ndim < 2:
        raise ValueError(f"{name}: expected input of shape (N, C, *), got {tuple(input.shape)}")
    if input.array.dtype.kind != "f":
        raise TypeError(f"{name}: input must be floating, got {input.dtype}")
    c = input.shape[1]
    for what, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        _check(name, what, t, (c,), input)
    if training:
        n = input.array.size // c if c else 0
        if n == 1:
            raise ValueError(f"{name}: expected more than 1 value per channel when training, got input size "
                             f"{list(input.shape)}")
        if eps <= 0:
            raise ValueError(f"{name}: eps must be positive during training, but got {eps}")
    else:
        if eps < 0:
            raise ValueError(f"{name}: eps must be non-negative, but got {eps}")
        for what, t in (("running_mean", running_mean), ("running_var", running_var)):
            if t is None:
                raise ValueError(f"{name}: {what} must be defined in evaluation mode (or pass training=True "
                                 f"to normalize with batch statistics)")
    out = BatchNorm.apply(
        *_affine_inputs(input, weight, bias), has_weight=weight is not None, has_bias=bias is not None,
        eps=eps, batch_stats=bool(training), momentum=momentum,
        running_mean=None if running_mean is None else running_mean.array,
        running_var=None if running_var is None else running_var.array,
    )
    return out if training else track_saved(out, running_mean, running_var)  # eval: torch saves the statistics


class LayerNorm(Function):
    """Normalize over the trailing ``k`` axes, then the elementwise affine (fused, closed-form backward)."""

    saved = ((0, 1, 2),)

    def forward(self, x, *affine, k, has_weight, has_bias, eps):
        self.shape, self.norm_shape = x.shape, x.shape[x.ndim - k:]
        self.has_weight, self.has_bias = has_weight, has_bias
        weight = affine[0].reshape(-1) if has_weight else None
        bias = affine[-1].reshape(-1) if has_bias else None
        self.eps = eps
        out, self.state = K.layer_norm_forward(x.reshape(-1, int(np.prod(self.norm_shape))), weight, bias, eps)
        return out.reshape(x.shape)

    def backward(self, g):
        need = (self.next[0] is not None, self.has_weight and self.next[1] is not None,
                self.has_bias and self.next[-1] is not None)
        gx, gw, gb = K.layer_norm_backward(g.reshape(self.state.xhat.shape), self.state, need)
        return _with_affine_grads(self, None if gx is None else gx.reshape(self.shape),
                                  None if gw is None else gw.reshape(self.norm_shape),
                                  None if gb is None else gb.reshape(self.norm_shape))

    def backward_graph(self, g):
        features = int(np.prod(self.norm_shape))
        x2, g2 = self.saved_input(0).reshape(-1, features), g.reshape(-1, features)
        weight = self.saved_input(1).reshape(features) if self.has_weight else None
        gx, *affine = _normalized_grads(self, g2, x2, weight, (1,), (0,), self.eps)
        grads = [None if gx is None else gx.reshape(self.shape)]
        return tuple(grads + [None if a is None else a.reshape(self.norm_shape) for a in affine])


def layer_norm(input: Tensor, normalized_shape: _Shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize over the trailing ``normalized_shape`` dims of each sample (biased variance).

    >>> y = layer_norm(deepgrad.randn(2, 5, 8), (8,))     # each of the 10 rows: mean 0, variance ~1
    >>> bool(y.mean(dim=-1).abs().max() < 1e-6)
    True
    """
    name = "layer_norm"
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    shape = tuple(int(s) for s in shape)
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
    k = len(shape)
    if k == 0 or input.ndim < k or tuple(input.shape[input.ndim - k:]) != shape:
        raise ValueError(f"{name}: given normalized_shape={list(shape)}, expected input with shape "
                         f"[*, {', '.join(map(str, shape))}], but got input of size {list(input.shape)}")
    _check(name, "weight", weight, shape, input)
    _check(name, "bias", bias, shape, input)
    return LayerNorm.apply(*_affine_inputs(input, weight, bias), k=k, has_weight=weight is not None,
                           has_bias=bias is not None, eps=eps)


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalize each group of ``C / num_groups`` channels of each sample, then a per-channel affine."""
    name = "group_norm"
    if input.ndim < 2:
        raise ValueError(f"{name}: expected at least 2 dimensions for input tensor but received {input.ndim}")
    n, c = input.shape[:2]
    if num_groups <= 0 or c % num_groups:
        raise ValueError(f"{name}: expected number of channels in input to be divisible by num_groups, but got "
                         f"input of shape {tuple(input.shape)} and num_groups={num_groups}")
    if (n * c // num_groups) * int(np.prod(input.shape[2:])) == 1:  # torch's exact check
        raise ValueError(f"{name}: expected more than 1 value per channel when training, got input size "
                         f"{[n * c // num_groups, num_groups] + list(input.shape[2:])}")
    _check(name, "weight", weight, (c,), input)
    _check(name, "bias", bias, (c,), input)
    # The normalization is layer_norm over each (sample, group) row; the affine is per channel.
    out = LayerNorm.apply(input.reshape(n, num_groups, -1), k=1, has_weight=False, has_bias=False, eps=eps)
    out = out.reshape(input.shape)
    bshape = (c,) + (1,) * (input.ndim - 2)
    if weight is not None:
        out = out * weight.reshape(bshape)
    if bias is not None:
        out = out + bias.reshape(bshape)
    return out


def instance_norm(input: Tensor, running_mean: Tensor | None = None, running_var: Tensor | None = None,
                  weight: Tensor | None = None, bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize each channel of each sample over its spatial dims (batch norm on (1, N*C, *spatial),
    as torch computes it; running statistics are averaged over the batch)."""
    name = "instance_norm"
    if input.ndim < 3:
        raise ValueError(f"{name}: expected input of shape (N, C, *spatial), got {tuple(input.shape)}")
    n, c = input.shape[:2]
    if use_input_stats and int(np.prod(input.shape[2:])) == 1:
        raise ValueError(f"{name}: expected more than 1 spatial element when training, got input size "
                         f"{list(input.shape)}")
    if not use_input_stats and (running_mean is None or running_var is None):
        raise ValueError(f"{name}: expected running_mean and running_var to be defined when use_input_stats is False")
    for what, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        _check(name, what, t, (c,), input)

    def tiled(t):
        return None if t is None else Tensor._make(array_module(t.array).tile(t.array, n), None)

    rm, rv = tiled(running_mean), tiled(running_var)
    out = batch_norm(input.reshape((1, n * c) + tuple(input.shape[2:])), rm, rv,
                     None if weight is None else weight.repeat(n), None if bias is None else bias.repeat(n),
                     use_input_stats, momentum, eps)
    for t, tt in ((running_mean, rm), (running_var, rv)):
        if t is not None:
            t.array[...] = tt.array.reshape(n, c).mean(axis=0)
    return out.reshape(input.shape)
