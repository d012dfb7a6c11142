"""NAdam (Dozat, 2016: Adam with Nesterov momentum) and RAdam (Liu et al., 2019: Adam with a rectified
warm-up), as torch.optim.NAdam and torch.optim.RAdam."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..backend import get_default_dtype
from ._arrays import check_hyperparameters, check_torch_only_flags, init_state, param_array
from .optimizer import Optimizer, _grad_with_decay


def _moments(state: dict, g, beta1: float, beta2: float) -> None:
    """Adam's two running moments, in place: ``m.lerp_(g, 1 - b1)``, ``v = b2*v + (1-b2)*g^2``."""
    m, v = state["exp_avg"], state["exp_avg_sq"]
    m += (g - m) * (1 - beta1)
    v *= beta2
    v += (1 - beta2) * g * g


def _decayed_grad(p, d, group: dict):
    """The gradient an update uses: decoupled decay shrinks the weights (AdamW-style) and leaves ``g``
    alone; otherwise the L2 term enters ``g``."""
    lr, wd, decoupled = group["lr"], group["weight_decay"], group["decoupled_weight_decay"]
    if wd and decoupled:
        d *= 1 - lr * wd
    return _grad_with_decay(p, group["maximize"], 0 if decoupled else wd)[0]


class NAdam(Optimizer):
    """``torch.optim.NAdam``: Adam whose first moment looks one step ahead, with the momentum schedule
    ``mu_t = b1 * (1 - 0.5 * 0.96^(t * momentum_decay))``.

    >>> w = deepgrad.nn.Parameter(deepgrad.tensor([1.0, -2.0]))
    >>> opt = NAdam([w], lr=2e-3)
    >>> opt.zero_grad(); (w ** 2).sum().backward(); opt.step()   # one step towards w = 0
    >>> w
    Parameter containing:
    tensor([ 0.9979, -1.9979], requires_grad=True)
    """

    def __init__(self, params: Iterable, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, foreach: bool | None = None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False):
        check_hyperparameters(lr=lr, eps=eps, betas=betas, weight_decay=weight_decay, momentum_decay=momentum_decay)
        check_torch_only_flags("NAdam", foreach, capturable, differentiable)
        super().__init__(params, dict(lr=lr, betas=(float(betas[0]), float(betas[1])), eps=eps,
                                      weight_decay=weight_decay, momentum_decay=momentum_decay,
                                      decoupled_weight_decay=decoupled_weight_decay, maximize=maximize))

    def step(self, closure: Callable[[], Any] | None = None):
        """One NAdam update of every parameter that has a gradient; returns the closure's loss."""
        loss = self._evaluate(closure)
        # torch keeps the momentum product in a scalar tensor of the default dtype; rounding it the same way
        # keeps long runs step-for-step equal
        scalar = np.dtype(get_default_dtype()).type
        for group in self.param_groups:
            lr, eps, psi = group["lr"], group["eps"], group["momentum_decay"]
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = param_array(p)
                state = self.state[p]
                if not state:
                    init_state(state, d, "exp_avg", "exp_avg_sq", mu_product=1.0)
                step = state["step"] = state["step"] + 1
                g = _decayed_grad(p, d, group)
                mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * psi)))
                mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * psi)))
                mu_product = float(scalar(state["mu_product"]) * scalar(mu))
                state["mu_product"] = mu_product
                _moments(state, g, beta1, beta2)
                denom = np.sqrt(state["exp_avg_sq"] / (1 - beta2**step))
                denom += eps
                d += (-lr * (1.0 - mu) / (1.0 - mu_product)) * g / denom
                d += ((-lr * mu_next) / (1.0 - mu_product * mu_next)) * state["exp_avg"] / denom
        return loss


class RAdam(Optimizer):
    """``torch.optim.RAdam``: Adam whose adaptive step is switched on only once the variance of the
    adaptive learning rate is tractable (``rho_t > 5``), scaled by the rectification term; before that it
    takes plain momentum steps. A built-in warm-up.

    >>> w = deepgrad.nn.Parameter(deepgrad.tensor([1.0, -2.0]))
    >>> opt = RAdam([w], lr=1e-3)
    >>> opt.zero_grad(); (w ** 2).sum().backward(); opt.step()   # one step towards w = 0
    >>> w
    Parameter containing:
    tensor([ 0.9980, -1.9960], requires_grad=True)
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, decoupled_weight_decay: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False):
        check_hyperparameters(lr=lr, eps=eps, betas=betas, weight_decay=weight_decay)
        check_torch_only_flags("RAdam", foreach, capturable, differentiable)
        super().__init__(params, dict(lr=lr, betas=(float(betas[0]), float(betas[1])), eps=eps,
                                      weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize))

    def step(self, closure: Callable[[], Any] | None = None):
        """One RAdam update of every parameter that has a gradient; returns the closure's loss."""
        loss = self._evaluate(closure)
        for group in self.param_groups:
            lr, eps = group["lr"], group["eps"]
            beta1, beta2 = group["betas"]
            rho_inf = 2 / (1 - beta2) - 1
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = param_array(p)
                state = self.state[p]
                if not state:
                    init_state(state, d, "exp_avg", "exp_avg_sq")
                step = state["step"] = state["step"] + 1
                g = _decayed_grad(p, d, group)
                _moments(state, g, beta1, beta2)
                bias_correction1 = 1 - beta1**step
                bias_correction2 = 1 - beta2**step
                corrected = state["exp_avg"] / bias_correction1
                rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
                if rho_t > 5.0:
                    rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
                    adaptive = (bias_correction2**0.5) / (np.sqrt(state["exp_avg_sq"]) + eps)
                    d -= corrected * lr * adaptive * rect
                else:
                    d -= corrected * lr
        return loss
