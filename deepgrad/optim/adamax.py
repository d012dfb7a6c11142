"""Adamax (Kingma & Ba, 2014, section 7): Adam with the infinity norm, as in torch.optim.Adamax."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ._arrays import check_hyperparameters, check_torch_only_flags, init_state, param_array
from .optimizer import Optimizer, _grad_with_decay


class Adamax(Optimizer):
    """``torch.optim.Adamax``: ``m = b1*m + (1-b1)*g``, ``u = max(b2*u, |g| + eps)``,
    ``p -= lr / (1 - b1^t) * m / u``.

    >>> w = deepgrad.nn.Parameter(deepgrad.tensor([1.0, -2.0]))
    >>> opt = Adamax([w], lr=2e-3)
    >>> opt.zero_grad(); (w ** 2).sum().backward(); opt.step()   # one step towards w = 0
    >>> w
    Parameter containing:
    tensor([ 0.9980, -1.9980], requires_grad=True)
    """

    def __init__(self, params: Iterable, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, foreach: bool | None = None, *, maximize: bool = False,
                 differentiable: bool = False, capturable: bool = False):
        check_hyperparameters(lr=lr, eps=eps, betas=betas, weight_decay=weight_decay)
        check_torch_only_flags("Adamax", foreach, capturable, differentiable)
        super().__init__(params, dict(lr=lr, betas=(float(betas[0]), float(betas[1])), eps=eps,
                                      weight_decay=weight_decay, maximize=maximize))

    def step(self, closure: Callable[[], Any] | None = None):
        """One Adamax update of every parameter that has a gradient; returns the closure's loss."""
        loss = self._evaluate(closure)
        for group in self.param_groups:
            lr, eps = group["lr"], group["eps"]
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = param_array(p)
                state = self.state[p]
                if not state:
                    init_state(state, d, "exp_avg", "exp_inf")
                step = state["step"] = state["step"] + 1
                g, _ = _grad_with_decay(p, group["maximize"], group["weight_decay"])
                m, u = state["exp_avg"], state["exp_inf"]
                m += (g - m) * (1 - beta1)  # m.lerp_(g, 1 - beta1)
                u *= beta2
                np.maximum(u, np.abs(g) + eps, out=u)
                clr = lr / (1 - beta1**step)
                d += -clr * m / u
        return loss
