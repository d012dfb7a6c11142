"""Guards a training loop calls between ``backward()`` and ``optimizer.step()``: a finite loss can still
give non-finite gradients (``sqrt``/``log`` at 0, an overflow in backward), and one optimizer step with
them turns every weight it touches into NaN. Every loop (Trainer, GANTrainer, ...) calls the same check.

>>> model = deepgrad.nn.Linear(2, 1)
>>> optimizer = deepgrad.optim.SGD(model.parameters(), lr=0.1)
>>> loss = (model(deepgrad.ones(1, 2)) * 0).sqrt().sum()   # finite (0.0), but sqrt's slope at 0 is infinite
>>> loss.backward()
>>> try:
...     check_finite_gradients(model.named_parameters(), step=12)   # raises NonFiniteGradientError
...     optimizer.step()   # not reached: the weights stay those of the last good step
... except NonFiniteGradientError as error:
...     print(error)
training: the gradient of 'weight' is not finite at step 12: 2 NaN and 0 infinite of 2 values; stopped before the
optimizer step, so the weights are those after step 11. ...
"""

from __future__ import annotations

import math
from collections.abc import Iterable


class NonFiniteGradientError(FloatingPointError):
    """A gradient holds NaN or infinity; raised before the optimizer step, so the weights are still good."""


def first_nonfinite_gradient(named_parameters: Iterable[tuple[str, object]]) -> tuple[str, str] | None:
    """``(name, description)`` of the first parameter whose gradient holds NaN or +-inf, else ``None``.

    >>> model = deepgrad.nn.Sequential()
    >>> model.fc = deepgrad.nn.Linear(10, 4)
    >>> model.fc.weight.grad = deepgrad.zeros(4, 10)
    >>> model.fc.weight.grad[0, :2] = float("nan"); model.fc.weight.grad[1, 0] = float("inf")
    >>> first_nonfinite_gradient(model.named_parameters())
    ('fc.weight', '2 NaN and 1 infinite of 40 values')
    """
    grads = [(name, p.grad) for name, p in named_parameters if getattr(p, "grad", None) is not None]
    all_finite = None
    for _, grad in grads:  # combined on the device first: one host sync per step, not one per parameter
        finite = grad.isfinite().all()
        all_finite = finite if all_finite is None else all_finite & finite
    if all_finite is None or all_finite.item():
        return None
    for name, grad in grads:
        if not grad.isfinite().all().item():
            nans, infs = int(grad.isnan().sum().item()), int(grad.isinf().sum().item())
            return name, f"{nans} NaN and {infs} infinite of {grad.numel()} values"
    return None


def check_finite_gradients(named_parameters: Iterable[tuple[str, object]], step: int, where: str = "training",
                           loss: float | None = None) -> None:
    """Raise :class:`NonFiniteGradientError` naming ``step`` and the first parameter with a NaN/inf gradient.

    Call it after ``backward()`` and before ``optimizer.step()``: stopping there leaves the weights (and any
    checkpoint written so far) as they were after the last good step.

    >>> model = deepgrad.nn.Linear(2, 1)
    >>> model(deepgrad.ones(1, 2)).sum().backward()
    >>> check_finite_gradients(model.named_parameters(), step=5, where="Trainer")   # all finite: returns None
    >>> model.bias.grad[0] = float("nan")
    >>> check_finite_gradients(model.named_parameters(), step=6, where="Trainer", loss=0.25)
    Traceback (most recent call last):
    deepgrad.train.guards.NonFiniteGradientError: Trainer: the gradient of 'bias' is not finite at step 6 while the
    loss is finite (0.25): 1 NaN and 0 infinite of 1 values; stopped before the optimizer step, ...
    """
    found = first_nonfinite_gradient(named_parameters)
    if found is None:
        return
    name, detail = found
    if loss is None:
        loss_text = ""
    else:
        loss = float(loss)
        loss_text = f" while the loss is finite ({loss:.6g})" if math.isfinite(loss) else f" (the loss is {loss})"
    raise NonFiniteGradientError(
        f"{where}: the gradient of {name!r} is not finite at step {step}{loss_text}: {detail}; stopped before "
        f"the optimizer step, so the weights are those after step {step - 1}. Look for an op whose gradient is "
        f"infinite at these values (sqrt or log at 0, pow with a negative exponent, division by ~0, an overflow "
        f"in float32) or lower the learning rate.")
