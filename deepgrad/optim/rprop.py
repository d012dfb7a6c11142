"""Rprop (Riedmiller & Braun, 1993) as in torch.optim.Rprop: a per-weight step size adapted from the sign
of successive gradients (full-batch training)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..backend import array_module
from ._arrays import check_torch_only_flags, param_array
from .optimizer import Optimizer, _grad_with_decay


class Rprop(Optimizer):
    """``torch.optim.Rprop``: each weight's step grows by ``etas[1]`` while its gradient keeps its sign and
    shrinks by ``etas[0]`` when it flips (that step is then skipped), within ``step_sizes``; the weight
    moves by its step against the gradient's sign.

    >>> w = deepgrad.nn.Parameter(deepgrad.tensor([1.0, -2.0]))
    >>> opt = Rprop([w], lr=1e-2)
    >>> opt.zero_grad(); (w ** 2).sum().backward(); opt.step()   # one step towards w = 0
    >>> w
    Parameter containing:
    tensor([ 0.9900, -1.9900], requires_grad=True)
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50), *, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False, differentiable: bool = False):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        check_torch_only_flags("Rprop", foreach, capturable, differentiable)
        super().__init__(params, dict(lr=lr, etas=(float(etas[0]), float(etas[1])),
                                      step_sizes=(float(step_sizes[0]), float(step_sizes[1])), maximize=maximize))

    def step(self, closure: Callable[[], Any] | None = None):
        """One Rprop update of every parameter that has a gradient; returns the closure's loss."""
        loss = self._evaluate(closure)
        for group in self.param_groups:
            etaminus, etaplus = group["etas"]
            step_min, step_max = group["step_sizes"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = param_array(p)
                state = self.state[p]
                if not state:
                    xp = array_module(d)
                    state["step"] = 0
                    state["prev"] = xp.zeros_like(d)
                    state["step_size"] = xp.full_like(d, group["lr"])
                state["step"] += 1
                xp = array_module(d)
                g, _ = _grad_with_decay(p, group["maximize"], 0)
                sign = np.sign(g * state["prev"])
                factor = xp.where(sign > 0, etaplus, xp.where(sign < 0, etaminus, 1.0)).astype(d.dtype)
                step_size = state["step_size"]
                step_size *= factor
                np.clip(step_size, step_min, step_max, out=step_size)
                g = xp.where(sign < 0, 0, g).astype(d.dtype)  # a sign flip skips this step
                d -= np.sign(g) * step_size
                state["prev"][...] = g
        return loss
