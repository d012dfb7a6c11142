"""RMSprop (optionally centered, with momentum) as in torch.optim.RMSprop."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ._arrays import check_hyperparameters, init_state
from .optimizer import Optimizer, _grad_with_decay


class RMSprop(Optimizer):
    """``torch.optim.RMSprop``: ``v = alpha*v + (1-alpha)*g^2``, ``p -= lr * g / (sqrt(v) + eps)``.

    ``centered`` divides by the estimated standard deviation ``sqrt(v - mean(g)^2)``;
    ``momentum`` accumulates ``b = momentum*b + g/(sqrt(v)+eps)`` and steps by ``lr * b``.

    >>> w = deepgrad.nn.Parameter(deepgrad.tensor([1.0, -2.0]))
    >>> opt = RMSprop([w], lr=1e-2, alpha=0.99)
    >>> opt.zero_grad(); (w ** 2).sum().backward(); opt.step()   # one step towards w = 0
    >>> w
    Parameter containing:
    tensor([ 0.9000, -1.9000], requires_grad=True)
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ):
        check_hyperparameters(lr=lr, eps=eps, momentum=momentum, weight_decay=weight_decay, alpha=alpha)
        defaults = dict(
            lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
            weight_decay=weight_decay, maximize=maximize,
        )
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], Any] | None = None):
        """One RMSprop update of every parameter that has a gradient; returns the closure's loss."""
        loss = self._evaluate(closure)
        for group in self.param_groups:
            lr, alpha, eps, momentum = group["lr"], group["alpha"], group["eps"], group["momentum"]
            centered, maximize, weight_decay = group["centered"], group["maximize"], group["weight_decay"]
            one_minus_alpha = 1 - alpha
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.array
                state = self.state[p]
                if not state:
                    init_state(state, d, "square_avg", "momentum_buffer" if momentum > 0 else None,
                               "grad_avg" if centered else None)
                state["step"] += 1
                g, _ = _grad_with_decay(p, maximize, weight_decay)
                square_avg = state["square_avg"]
                tmp = np.multiply(g, g)  # the one temporary, reused for every intermediate below
                tmp *= one_minus_alpha
                square_avg *= alpha
                square_avg += tmp
                if centered:
                    grad_avg = state["grad_avg"]
                    np.subtract(g, grad_avg, out=tmp)  # grad_avg.lerp_(g, 1 - alpha)
                    tmp *= one_minus_alpha
                    grad_avg += tmp
                    np.multiply(grad_avg, grad_avg, out=tmp)
                    np.subtract(square_avg, tmp, out=tmp)
                    np.sqrt(tmp, out=tmp)
                else:
                    np.sqrt(square_avg, out=tmp)
                tmp += eps
                np.divide(g, tmp, out=tmp)
                if momentum > 0:
                    buf = state["momentum_buffer"]
                    buf *= momentum
                    buf += tmp
                    np.multiply(buf, lr, out=tmp)
                else:
                    tmp *= lr
                d -= tmp
        return loss
