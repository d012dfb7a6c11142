"""The raw arrays the optimizers update in place (one place to read them, so a rename of the Tensor's
storage attribute touches one line)."""

from __future__ import annotations

from ..tensor import Tensor


def param_array(p: Tensor):
    """The NumPy / CuPy array holding ``p``'s values (updated in place: no graph is recorded)."""
    return p.array


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
