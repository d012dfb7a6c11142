"""Gradient clipping by global norm and by value (torch.nn.utils.clip_grad_norm_ / clip_grad_value_).

Everything works in place on the raw gradient arrays; the total norm stays an array on the
gradients' device, so clipping on the GPU needs no host round trip.
"""

from __future__ import annotations

import math
import types
import warnings
from collections.abc import Iterable

import numpy as np

from ...backend import array_module
from ...creation import as_tensor
from ...tensor import Tensor


def _as_list(tensors) -> list:
    if isinstance(tensors, Tensor):
        return [tensors]
    is_generator = isinstance(tensors, types.GeneratorType)
    tensors = list(tensors)
    if is_generator and not tensors:
        warnings.warn("`parameters` is an empty generator, no gradient clipping will occur.", stacklevel=3)
    return tensors


def _vector_norm(a, norm_type: float):
    """The ``norm_type``-norm of all elements of ``a`` (torch.linalg.vector_norm), as a 0-d array."""
    xp = array_module(a)
    a = a.reshape(-1)
    if a.size == 0:
        return xp.zeros((), dtype=a.dtype)
    if norm_type == 2.0:
        return xp.sqrt(xp.dot(a, a))
    if norm_type == 1.0:
        return xp.abs(a).sum()
    if norm_type == math.inf:
        return xp.abs(a).max()
    if norm_type == -math.inf:
        return xp.abs(a).min()
    if norm_type == 0.0:
        return xp.asarray(xp.count_nonzero(a), dtype=a.dtype)
    return (xp.abs(a) ** norm_type).sum() ** (1.0 / norm_type)


def get_total_norm(
    tensors: Tensor | Iterable[Tensor], norm_type: float = 2.0, error_if_nonfinite: bool = False
) -> Tensor:
    """The norm of the norms of ``tensors`` (as if all were concatenated into one vector).

    >>> get_total_norm([p.grad for p in model.parameters() if p.grad is not None])
    """
    tensors = [t.array if isinstance(t, Tensor) else t for t in _as_list(tensors)]
    norm_type = float(norm_type)
    if not tensors:
        return Tensor(0.0)
    xp = array_module(tensors[0])
    norms = [_vector_norm(t, norm_type) for t in tensors]
    total = _vector_norm(xp.stack(norms), norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it "
            "cannot be clipped. To disable this error and scale the gradients by the non-finite norm "
            "anyway, set `error_if_nonfinite=False`"
        )
    return as_tensor(xp.asarray(total))


def clip_grads_with_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, total_norm) -> None:
    """Scale the gradients of ``parameters`` by ``min(1, max_norm / (total_norm + 1e-6))``."""
    grads = [p.grad.array for p in _as_list(parameters) if p.grad is not None]
    if not grads:
        return
    total = total_norm.array if isinstance(total_norm, Tensor) else total_norm
    xp = array_module(grads[0])
    # Always multiply (even by 1): no data-dependent branch, so no device sync, and a NaN norm
    # poisons the gradients exactly as in torch.
    coef = xp.minimum(float(max_norm) / (total + 1e-6), 1.0)
    with np.errstate(invalid="ignore"):  # inf * 0 -> nan is the documented outcome, not a surprise
        for g in grads:
            g *= coef


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Rescale gradients in place so their global ``norm_type``-norm is at most ``max_norm``.

    Returns the total norm before clipping (a 0-d Tensor), like torch.

    >>> loss.backward()
    >>> total = clip_grad_norm_(model.parameters(), max_norm=1.0)
    """
    parameters = _as_list(parameters)
    grads = [p.grad for p in parameters if p.grad is not None]
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    clip_grads_with_norm_(parameters, max_norm, total)
    return total


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]`` in place.

    >>> clip_grad_value_(model.parameters(), clip_value=0.5)
    """
    clip_value = float(clip_value)
    for p in _as_list(parameters):
        if p.grad is not None:
            g = p.grad.array
            array_module(g).clip(g, -clip_value, clip_value, out=g)
