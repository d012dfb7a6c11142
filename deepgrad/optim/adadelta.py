"""Adadelta (Zeiler, 2012) as in torch.optim.Adadelta."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ._arrays import check_hyperparameters, check_torch_only_flags, init_state, param_array
from .optimizer import Optimizer, _grad_with_decay


class Adadelta(Optimizer):
    """``torch.optim.Adadelta``: ``v = rho*v + (1-rho)*g^2``, ``dx = sqrt(u + eps) / sqrt(v + eps) * g``,
    ``u = rho*u + (1-rho)*dx^2``, ``p -= lr * dx``: a step size in the units of the parameters, without a
    hand-tuned learning rate (``lr=1.0``, the default, is the paper's method).

    >>> w = deepgrad.nn.Parameter(deepgrad.tensor([1.0, -2.0]))
    >>> opt = Adadelta([w], lr=1.0, rho=0.9)
    >>> opt.zero_grad(); (w ** 2).sum().backward(); opt.step()   # one step towards w = 0
    >>> w
    Parameter containing:
    tensor([ 0.9968, -1.9968], requires_grad=True)
    """

    def __init__(self, params: Iterable, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, foreach: bool | None = None, *, capturable: bool = False,
                 maximize: bool = False, differentiable: bool = False):
        check_hyperparameters(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay)
        check_torch_only_flags("Adadelta", foreach, capturable, differentiable)
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize))

    def step(self, closure: Callable[[], Any] | None = None):
        """One Adadelta update of every parameter that has a gradient; returns the closure's loss."""
        loss = self._evaluate(closure)
        for group in self.param_groups:
            lr, rho, eps = group["lr"], group["rho"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = param_array(p)
                state = self.state[p]
                if not state:
                    init_state(state, d, "square_avg", "acc_delta")
                state["step"] += 1
                g, _ = _grad_with_decay(p, group["maximize"], group["weight_decay"])
                square_avg, acc_delta = state["square_avg"], state["acc_delta"]
                square_avg *= rho
                square_avg += (1 - rho) * g * g
                std = np.sqrt(square_avg + eps)
                delta = np.sqrt(acc_delta + eps)
                delta /= std
                delta *= g
                acc_delta *= rho
                acc_delta += (1 - rho) * delta * delta
                delta *= -lr
                d += delta
        return loss
