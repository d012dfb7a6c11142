"""One multi-tensor CUDA launch per parameter group for SGD and Adam (``DEEPGRAD_CUDA_FUSED=1`` only).

CuPy pays ~10-20 us of Python per kernel launch, and the array code of an Adam step launches ~8 kernels per
parameter: a VGG's 20 tensors cost ~160 launches per step. :mod:`deepgrad.kernels.cuda_fused` updates every
tensor of a group in one launch. Unverified until a GPU run, so off by default; each function returns False
(and changes nothing the optimizer's own loop would not do the same way) whenever the fused path does not apply:
CPU tensors, mixed dtypes, AMSGrad, parameters at different step counts.

>>> import deepgrad as dg
>>> p = dg.ones(3, requires_grad=True)
>>> p.grad = dg.ones(3)
>>> sgd_group(dg.optim.SGD([p], lr=0.1), dg.optim.SGD([p], lr=0.1).param_groups[0])  # CPU: not fused
False
"""

from __future__ import annotations

import math

from ..backend import array_module
from ..kernels import cuda_fused


def _with_grads(group) -> tuple:
    params = [p for p in group["params"] if p.grad is not None]
    return params, [p.array for p in params], [p.grad.array for p in params]


def adam_group(opt, group) -> bool:
    """One Adam/AdamW update of ``group`` in one launch; False when the plain loop must do it."""
    if not cuda_fused.enabled() or group["amsgrad"]:
        return False
    params, arrays, grads = _with_grads(group)
    if not params or not cuda_fused.applies(*arrays, *grads):
        return False
    states = [opt.state[p] for p in params]
    for state, a in zip(states, arrays):
        if not state:  # the same initial state the plain loop creates
            xp = array_module(a)
            state.update(step=0, exp_avg=xp.zeros_like(a), exp_avg_sq=xp.zeros_like(a))
    steps = {state["step"] for state in states}
    m, v = [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states]
    if len(steps) != 1 or not cuda_fused.applies(arrays[0], *m, *v):
        return False
    step = steps.pop() + 1
    beta1, beta2 = group["betas"]
    cuda_fused.adam_multi_tensor(arrays, grads, m, v, lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                                 weight_decay=group["weight_decay"], step_size=group["lr"] / (1 - beta1**step),
                                 bias2_sqrt=math.sqrt(1 - beta2**step),
                                 decoupled=group["decoupled_weight_decay"], maximize=group["maximize"])
    for state in states:
        state["step"] = step
    return True


def sgd_group(opt, group) -> bool:
    """One SGD update of ``group`` in one launch; False when the plain loop must do it."""
    if not cuda_fused.enabled():
        return False
    params, arrays, grads = _with_grads(group)
    if not params or not cuda_fused.applies(*arrays, *grads):
        return False
    momentum, bufs, first = group["momentum"], None, False
    if momentum:
        bufs = [opt.state[p].get("momentum_buffer") for p in params]
        if all(b is None for b in bufs):  # the first step: the kernel writes buf = g
            first = True
            bufs = [array_module(a).empty_like(a) for a in arrays]
        elif any(b is None for b in bufs) or not cuda_fused.applies(arrays[0], *bufs):
            return False
    cuda_fused.sgd_multi_tensor(arrays, grads, bufs, lr=group["lr"], momentum=momentum,
                                dampening=group["dampening"], weight_decay=group["weight_decay"],
                                nesterov=group["nesterov"], maximize=group["maximize"], first_step=first)
    if first:
        for p, b in zip(params, bufs):
            opt.state[p]["momentum_buffer"] = b
    return True
