"""``deepgrad.nn.utils``: gradient clipping (torch.nn.utils' home for it) and parameter vectors."""

from __future__ import annotations

from ..ops.inplace import write
from ..ops.shape import cat
from ..optim.clip_grad import clip_grad_norm_, clip_grad_value_  # noqa: F401
from ..tensor import Tensor
from . import rnn_utils as rnn  # noqa: F401  (torch's nn.utils.rnn path)


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
