"""Stochastic gradient descent with (Nesterov) momentum, dampening and L2 weight decay."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .fused_step import sgd_group
from .optimizer import Optimizer, _grad_with_decay


class SGD(Optimizer):
    """``torch.optim.SGD``: ``b = momentum * b + (1 - dampening) * g`` (``b = g`` on the first step),
    ``p -= lr * (g + momentum * b if nesterov else b)``, with ``g = grad + weight_decay * p``.

    >>> w = deepgrad.nn.Parameter(deepgrad.tensor([1.0, -2.0]))
    >>> opt = SGD([w], lr=0.1, momentum=0.9, nesterov=True)
    >>> loss = (w ** 2).sum()   # minimum at w = 0
    >>> opt.zero_grad(); loss.backward(); opt.step()
    >>> w
    Parameter containing:
    tensor([ 0.6200, -1.2400], requires_grad=True)
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                f"Nesterov momentum requires a momentum and zero dampening (got momentum={momentum}, "
                f"dampening={dampening})"
            )
        defaults = dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
            nesterov=nesterov, maximize=maximize,
        )
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], Any] | None = None):
        """One SGD update of every parameter that has a gradient; returns the closure's loss."""
        loss = self._evaluate(closure)
        for group in self.param_groups:
            if sgd_group(self, group):  # one CUDA launch for the group (DEEPGRAD_CUDA_FUSED=1 only)
                continue
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            weight_decay, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g, owned = _grad_with_decay(p, maximize, weight_decay)
                if momentum != 0:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = g.copy()
                    else:
                        buf *= momentum
                        if dampening == 0:
                            buf += g
                        else:
                            buf += (1 - dampening) * g
                    if nesterov:
                        g, owned = g + momentum * buf, True
                    else:
                        g, owned = buf, False
                if owned:  # scale the temporary in place instead of allocating lr * g
                    g *= lr
                    p.array -= g
                else:
                    p.array -= lr * g
        return loss
