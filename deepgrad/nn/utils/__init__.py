"""``deepgrad.nn.utils``: gradient clipping (torch.nn.utils' home for it), parameter vectors, the
packed-sequence helpers (``nn.utils.rnn``) and the hook-based weight reparametrisations
``weight_norm`` and ``spectral_norm``."""

from __future__ import annotations

from ...ops.inplace import write
from ...ops.shape import cat
from ...tensor import Tensor
from .. import init
from ..module import Module
from . import rnn  # noqa: F401  (torch's nn.utils.rnn path)
from .clip_grad import clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm  # noqa: F401
from .spectral_norm import remove_spectral_norm, spectral_norm  # noqa: F401
from .weight_norm import remove_weight_norm, weight_norm  # noqa: F401


def parameters_to_vector(parameters) -> Tensor:
    """All parameters flattened and concatenated into one 1-D tensor."""
    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Copy consecutive slices of ``vec`` into the parameters (in place)."""
    parameters = list(parameters)
    needed = sum(p.numel() for p in parameters)
    if needed != vec.numel():
        raise ValueError(f"vector_to_parameters: vector has {vec.numel()} elements, parameters need {needed}")
    offset = 0
    for p in parameters:
        n = p.numel()
        write(p, vec.array[offset : offset + n].reshape(p.shape), "vector_to_parameters")
        offset += n


def skip_init(module_cls: type, *args, **kwargs) -> Module:
    """``module_cls(*args, **kwargs)`` built without initialising its parameters (torch.nn.utils.skip_init):
    no random draws, the weights hold whatever memory they got. For structure only (counting parameters,
    building a big model to load weights into) or to initialise yourself afterwards.

    >>> big = skip_init(nn.Linear, 25088, 4096)    # instant: no 100M random draws
    """
    if not isinstance(module_cls, type):  # torch fails in issubclass() here: a TypeError
        raise TypeError(f"skip_init: expected a Module class, got {module_cls!r}")
    if not issubclass(module_cls, Module):
        raise RuntimeError(f"skip_init: expected a Module class, got {module_cls!r}")
    with init.skipping_init():
        return module_cls(*args, **kwargs)
