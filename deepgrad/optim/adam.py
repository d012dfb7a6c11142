"""Adam (with optional AMSGrad and L2 or decoupled weight decay) and AdamW."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ._arrays import check_hyperparameters, init_state
from .fused_step import adam_group
from .optimizer import Optimizer, _grad_with_decay


class Adam(Optimizer):
    """``torch.optim.Adam``: ``m = b1*m + (1-b1)*g``, ``v = b2*v + (1-b2)*g^2``,
    ``p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)``; ``amsgrad`` uses the running max of ``v``.

    ``weight_decay`` is L2 (added to the gradient) unless ``decoupled_weight_decay=True`` (AdamW).

    >>> w = deepgrad.nn.Parameter(deepgrad.tensor([1.0, -2.0]))
    >>> opt = Adam([w], lr=1e-3, betas=(0.9, 0.999))
    >>> opt.zero_grad(); (w ** 2).sum().backward(); opt.step()   # one step towards w = 0
    >>> w
    Parameter containing:
    tensor([ 0.9990, -1.9990], requires_grad=True)
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ):
        check_hyperparameters(lr=lr, eps=eps, betas=betas, weight_decay=weight_decay)
        defaults = dict(
            lr=lr, betas=(float(betas[0]), float(betas[1])), eps=eps, weight_decay=weight_decay,
            amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], Any] | None = None):
        """One Adam update of every parameter that has a gradient; returns the closure's loss."""
        loss = self._evaluate(closure)
        for group in self.param_groups:
            if adam_group(self, group):  # one CUDA launch for the group (DEEPGRAD_CUDA_FUSED=1 only)
                continue
            lr, eps, amsgrad, maximize = group["lr"], group["eps"], group["amsgrad"], group["maximize"]
            beta1, beta2 = group["betas"]
            weight_decay = group["weight_decay"]
            decoupled = group["decoupled_weight_decay"]
            one_minus_b1, one_minus_b2 = 1 - beta1, 1 - beta2
            cached_step = None
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.array
                state = self.state[p]
                if not state:
                    init_state(state, d, "exp_avg", "exp_avg_sq", "max_exp_avg_sq" if amsgrad else None)
                step = state["step"] = state["step"] + 1
                if step != cached_step:  # bias corrections as Python floats, once per distinct step count
                    cached_step = step
                    step_size = lr / (1 - beta1**step)
                    bias2_sqrt = math.sqrt(1 - beta2**step)
                if decoupled:
                    if weight_decay != 0:
                        d *= 1 - lr * weight_decay
                    g, _ = _grad_with_decay(p, maximize, 0)
                else:
                    g, _ = _grad_with_decay(p, maximize, weight_decay)
                m, v = state["exp_avg"], state["exp_avg_sq"]
                tmp = np.multiply(g, g)  # the one temporary, reused for every intermediate below
                tmp *= one_minus_b2
                v *= beta2
                v += tmp
                np.subtract(g, m, out=tmp)  # m.lerp_(g, 1 - beta1) == m + (1 - beta1) * (g - m)
                tmp *= one_minus_b1
                m += tmp
                if amsgrad:
                    v = np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
                np.sqrt(v, out=tmp)
                tmp /= bias2_sqrt
                tmp += eps
                np.divide(m, tmp, out=tmp)
                tmp *= step_size
                d -= tmp
        return loss


class AdamW(Adam):
    """``torch.optim.AdamW``: Adam with decoupled weight decay, ``p *= 1 - lr * weight_decay`` each step.

    >>> w = deepgrad.nn.Parameter(deepgrad.tensor([1.0, -2.0]))
    >>> opt = AdamW([w], lr=1e-3, weight_decay=1e-2)
    >>> opt.zero_grad(); (w ** 2).sum().backward(); opt.step()   # one step towards w = 0
    >>> w
    Parameter containing:
    tensor([ 0.9990, -1.9990], requires_grad=True)
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ):
        super().__init__(
            params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize, decoupled_weight_decay=True
        )

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        for group in self.param_groups:  # AdamW always decouples, whatever the checkpoint says
            group["decoupled_weight_decay"] = True
