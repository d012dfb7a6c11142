"""Where the data pipeline's random numbers come from.

Every random choice in ``deepgrad.data`` (shuffling, random splits, augmentation) draws from
:func:`current_generator` unless it was handed its own generator. Outside a loader that is
deepgrad's global generator (``deepgrad.manual_seed``). Inside a :class:`DataLoader` the loader
installs, per thread, a generator derived from the epoch's seed and the batch number, so a batch's
augmentation does not depend on which thread prepared it or on how many batches came before:
prefetching changes nothing, and a resumed run replays the same batches bit for bit.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np

from .. import creation

GeneratorLike = np.random.Generator | int | None

_local = threading.local()

# Spawn keys that separate the streams derived from one epoch seed.
SAMPLER_STREAM = 0
BATCH_STREAM = 1
WORKER_STREAM = 2  # an IterableDataset's worker stream k: (seed, WORKER_STREAM, k)


def current_generator() -> np.random.Generator:
    """The generator a random data op uses when it has none of its own.

    Inside a DataLoader batch: that batch's generator; elsewhere: ``deepgrad.default_generator()``.
    """
    rng = getattr(_local, "rng", None)
    return creation.default_generator() if rng is None else rng


@contextmanager
def using_generator(rng: np.random.Generator):
    """Make ``rng`` this thread's :func:`current_generator` inside the ``with`` block."""
    previous = getattr(_local, "rng", None)
    _local.rng = rng
    try:
        yield rng
    finally:
        _local.rng = previous


def as_generator(generator: GeneratorLike, owner: str) -> np.random.Generator | None:
    """Accept ``None``, an int seed or a generator: a :class:`deepgrad.Generator` (torch.Generator's
    interface) or any ``np.random.Generator`` (``owner`` names the caller in errors)."""
    if generator is None or isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    raise TypeError(f"{owner}: generator must be a deepgrad.Generator (or numpy.random.Generator), an int seed or "
                    f"None, got {type(generator).__name__}")


def resolve(generator: np.random.Generator | None) -> np.random.Generator:
    """``generator`` itself when given, else :func:`current_generator`."""
    return current_generator() if generator is None else generator


def derived_generator(seed: int, *key: int) -> np.random.Generator:
    """An independent stream for ``(seed, key...)``: same inputs, same numbers, on any thread."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def draw_seed(generator: np.random.Generator | None) -> int:
    """A fresh 63-bit seed from ``generator`` (or the global generator)."""
    g = creation.default_generator() if generator is None else generator
    return int(g.integers(0, 2**63 - 1))
