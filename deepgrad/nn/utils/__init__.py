"""``deepgrad.nn.utils``: gradient clipping (torch.nn.utils' home for it), parameter vectors, the
packed-sequence helpers (``nn.utils.rnn``) and the hook-based weight reparametrisations
``weight_norm`` and ``spectral_norm``."""

from __future__ import annotations

from ...ops.shape import cat
from ...optim.clip_grad import clip_grad_norm_, clip_grad_value_  # noqa: F401
from ...tensor import Tensor
from . import rnn  # noqa: F401  (torch's nn.utils.rnn path)
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
        p.data[...] = vec.data[offset : offset + n].reshape(p.shape)
        offset += n
