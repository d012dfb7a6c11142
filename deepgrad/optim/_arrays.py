"""What every optimizer shares below its update rule: the raw arrays it updates in place (one place to read
them), torch's checks of its hyperparameters, and torch's implementation switches."""

from __future__ import annotations

from ..backend import array_module
from ..tensor import Tensor


def param_array(p: Tensor):
    """The NumPy / CuPy array holding ``p``'s values (updated in place: no graph is recorded)."""
    return p.array


def init_state(state: dict, like, *buffers: str | None, **values) -> None:
    """A parameter's state before its first update, in torch's key order: ``step`` = 0, then ``values``, then a
    zero array shaped like ``like`` for each named buffer (None entries skipped: optional buffers)."""
    xp = array_module(like)
    state["step"] = 0
    state.update(values)
    for name in buffers:
        if name is not None:
            state[name] = xp.zeros_like(like)


def check_torch_only_flags(name: str, foreach=None, capturable: bool = False, differentiable: bool = False) -> None:
    """torch's implementation switches: ``foreach`` is accepted and ignored (deepgrad has one code path per
    optimizer); ``capturable`` (CUDA graphs) and ``differentiable`` (autograd through the update) do not exist."""
    if foreach not in (None, False, True):
        raise TypeError(f"{name}: foreach must be None or a bool, got {foreach!r}")
    if capturable:
        raise ValueError(f"{name}: capturable=True (CUDA graph capture) is not supported by deepgrad")
    if differentiable:
        raise ValueError(f"{name}: differentiable=True (autograd through the optimizer step) is not supported by "
                         f"deepgrad")


_LABELS = {"lr": "learning rate", "eps": "epsilon value"}


def check_hyperparameters(**values) -> None:
    """torch's range checks, in the order given, with torch's messages: ``betas`` each in [0, 1), ``rho`` in
    [0, 1], every other value >= 0 (NaN fails them all).

    >>> check_hyperparameters(lr=1e-3, betas=(0.9, 1.0))
    Traceback (most recent call last):
    ValueError: Invalid beta parameter at index 1: 1.0
    """
    for name, value in values.items():
        if name == "betas":
            for i, beta in enumerate(value):
                if not 0.0 <= beta < 1.0:
                    raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
        elif not (0.0 <= value <= 1.0 if name == "rho" else 0.0 <= value):
            raise ValueError(f"Invalid {_LABELS.get(name, name + ' value')}: {value}")
