"""Explicit weight penalties to add to a loss: L1 (sparsity) and L2 (weight decay).

How they relate to an optimizer's ``weight_decay``:

* ``l2_penalty(params, lam / 2)`` = ``lam / 2 * sum ||w||^2`` has gradient ``lam * w``, exactly the
  term SGD's ``weight_decay=lam`` adds to each gradient, so for plain SGD (and SGD with momentum)
  the two are the same update.
* For adaptive optimizers they differ: Adam divides the gradient, penalty included, by the running
  RMS of the gradient, so weights with large gradients are decayed *less*. AdamW "decouples" the
  decay (``w -= lr * lam * w`` outside the adaptive step), which restores uniform shrinkage; that
  is why AdamW exists and why ``Adam(weight_decay=lam)`` is not AdamW.
* ``l1_penalty`` (gradient ``lam * sign(w)``, 0 at 0) pushes small weights to exactly zero under
  proximal methods and towards zero under SGD; no built-in optimizer option matches it.

>>> model, x, y = deepgrad.nn.Linear(4, 3), deepgrad.randn(8, 4), deepgrad.tensor([0, 1, 2, 0, 1, 2, 0, 1])
>>> loss = deepgrad.nn.functional.cross_entropy(model(x), y) + l2_penalty(model.parameters(), 5e-4 / 2)
>>> w = deepgrad.tensor([1.0, -2.0], requires_grad=True)
>>> l2_penalty([w], 5e-4 / 2).backward()
>>> w.grad                                   # lam * w: the term SGD's weight_decay=lam adds
tensor([ 0.0005, -0.0010])
"""

from __future__ import annotations

from collections.abc import Iterable

from .functional import abs as _abs
from .ops.reduce import sum as _sum
from .tensor import Tensor


def _params(parameters: Tensor | Iterable[Tensor], name: str) -> list[Tensor]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"{name}: parameters must be Tensors, got {type(p).__name__}")
    if not params:
        raise ValueError(f"{name}: got an empty parameter list")
    return params


def _total(terms: list[Tensor]) -> Tensor:
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total


def l1_penalty(parameters: Tensor | Iterable[Tensor], weight: float) -> Tensor:
    """``weight * sum(|w|)`` over every element of every parameter (a differentiable scalar).

    >>> l1_penalty([deepgrad.tensor([1.0, -2.0])], 0.1)
    tensor(0.3000)
    """
    params = _params(parameters, "l1_penalty")
    return _total([_sum(_abs(p)) for p in params]) * weight


def l2_penalty(parameters: Tensor | Iterable[Tensor], weight: float) -> Tensor:
    """``weight * sum(w^2)`` over every element of every parameter (a differentiable scalar).

    Its gradient is ``2 * weight * w``: pass ``weight = lam / 2`` to match ``weight_decay=lam`` of SGD.

    >>> l2_penalty([deepgrad.tensor([1.0, -2.0])], 0.5)
    tensor(2.5000)
    """
    params = _params(parameters, "l2_penalty")
    return _total([_sum(p * p) for p in params]) * weight
