"""Helpers shared by workload builders: seeded data, identical on both libraries."""

from __future__ import annotations

import numpy as np


def rng(seed: int = 0) -> np.random.Generator:
    """A seeded generator: both workers draw the same arrays in the same order."""
    return np.random.default_rng(seed)


def randn(gen: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    """Standard-normal float32 data (times ``scale``)."""
    return (gen.standard_normal(shape) * scale).astype(np.float32)


def to_lib(lib, device: str, array: np.ndarray, requires_grad: bool = False):
    """``array`` copied into a ``lib`` tensor on ``device`` (same call on deepgrad and torch)."""
    return lib.tensor(array, device=device, requires_grad=requires_grad)


def zero_grads(params) -> None:
    """Drop gradients as ``optimizer.zero_grad()`` does by default (set_to_none)."""
    for p in params:
        p.grad = None


def sgd_update(lib, params, lr: float) -> None:
    """The manual SGD step ``p -= lr * p.grad`` under ``no_grad``, then zero the grads."""
    with lib.no_grad():
        for p in params:
            p -= lr * p.grad
    zero_grads(params)
