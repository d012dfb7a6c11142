"""Adagrad as in torch.optim.Adagrad."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..backend import array_module
from ._arrays import check_hyperparameters
from .optimizer import Optimizer, _grad_with_decay


class Adagrad(Optimizer):
    """``torch.optim.Adagrad``: ``s += g^2``, ``p -= lr / (1 + (t-1)*lr_decay) * g / (sqrt(s) + eps)``.

    >>> w = deepgrad.nn.Parameter(deepgrad.tensor([1.0, -2.0]))
    >>> opt = Adagrad([w], lr=1e-2, initial_accumulator_value=0.1)
    >>> opt.zero_grad(); (w ** 2).sum().backward(); opt.step()   # one step towards w = 0
    >>> w
    Parameter containing:
    tensor([ 0.9901, -1.9900], requires_grad=True)
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ):
        check_hyperparameters(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                              initial_accumulator_value=initial_accumulator_value, eps=eps)
        defaults = dict(
            lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value, maximize=maximize,
        )
        super().__init__(params, defaults)
        # Like torch, the state exists from construction on, and the accumulator starts at the
        # optimizer-wide initial_accumulator_value (a per-group value is not used).
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p)

    def _init_state(self, p) -> dict:
        state = self.state[p]
        state["step"] = 0
        state["sum"] = array_module(p.array).full_like(p.array, self.defaults["initial_accumulator_value"])
        return state

    def step(self, closure: Callable[[], Any] | None = None):
        """One Adagrad update of every parameter that has a gradient; returns the closure's loss."""
        loss = self._evaluate(closure)
        for group in self.param_groups:
            lr, lr_decay, eps = group["lr"], group["lr_decay"], group["eps"]
            weight_decay, maximize = group["weight_decay"], group["maximize"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:  # a group added after construction
                    state = self._init_state(p)
                step = state["step"] = state["step"] + 1
                clr = lr / (1 + (step - 1) * lr_decay)
                g, _ = _grad_with_decay(p, maximize, weight_decay)
                state_sum = state["sum"]
                tmp = np.multiply(g, g)
                state_sum += tmp
                np.sqrt(state_sum, out=tmp)
                tmp += eps
                np.divide(g, tmp, out=tmp)
                tmp *= clr
                p.array -= tmp
        return loss
