"""Synthetic tasks with seeds: small problems that probe one ability each.

Each returns a :class:`TensorDataset` (float32 inputs; int64 labels or float32 targets). ``seed=None``
draws from deepgrad's global generator instead of a fixed seed.
"""

from __future__ import annotations

import numpy as np

from .._random import as_generator, resolve
from ..dataset import TensorDataset


def _rng(seed: int | None, where: str) -> np.random.Generator:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"{where}: seed must be an int or None, got {seed!r}")
    return resolve(as_generator(seed, where))


def _positive(where: str, **values) -> None:
    for name, v in values.items():
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{where}: {name} must be a positive integer, got {v!r}")


def _balanced_labels(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """n labels over k classes, as equal as possible, in random order."""
    return rng.permutation(np.arange(n) % k).astype(np.int64)


def make_xor(n: int = 400, noise: float = 0.2, seed: int | None = 0) -> TensorDataset:
    """XOR: points around the four corners (+-1, +-1); label 1 where the coordinates' signs differ."""
    _positive("make_xor", n=n)
    rng = _rng(seed, "make_xor")
    corner = rng.permutation(np.arange(n) % 4)
    signs = np.array([[1, 1], [-1, -1], [1, -1], [-1, 1]], dtype=np.float64)[corner]
    x = signs + noise * rng.standard_normal((n, 2))
    y = (corner >= 2).astype(np.int64)
    return TensorDataset(x.astype(np.float32), y)


def make_spirals(n: int = 400, noise: float = 0.02, turns: float = 1.5, seed: int | None = 0) -> TensorDataset:
    """Two interleaved spirals (class 0 and its half-turn rotation class 1), radius up to 1."""
    _positive("make_spirals", n=n)
    rng = _rng(seed, "make_spirals")
    y = _balanced_labels(n, 2, rng)
    t = rng.uniform(0.05, 1.0, size=n)
    angle = 2 * np.pi * turns * t + np.pi * y
    x = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1) + noise * rng.standard_normal((n, 2))
    return TensorDataset(x.astype(np.float32), y)


def make_gaussian_mixture(n: int = 600, centers: int | np.ndarray = 3, dim: int = 2, std: float = 1.0,
                          spread: float = 5.0, seed: int | None = 0) -> TensorDataset:
    """Points from k Gaussian blobs (label = blob).

    ``centers``: k (random means uniform in +-``spread``) or a (k, dim) array of means.
    """
    _positive("make_gaussian_mixture", n=n, dim=dim)
    rng = _rng(seed, "make_gaussian_mixture")
    if isinstance(centers, (int, np.integer)):
        _positive("make_gaussian_mixture", centers=centers)
        means = rng.uniform(-spread, spread, size=(int(centers), dim))
    else:
        means = np.asarray(centers, dtype=np.float64)
        if means.ndim != 2:
            raise ValueError(f"make_gaussian_mixture: centers must be an int or a (k, dim) array, got shape "
                             f"{means.shape}")
        dim = means.shape[1]
    y = _balanced_labels(n, len(means), rng)
    x = means[y] + std * rng.standard_normal((n, dim))
    ds = TensorDataset(x.astype(np.float32), y)
    ds.centers = means
    return ds


def ring_centers(modes: int = 8, radius: float = 2.0) -> np.ndarray:
    """``modes`` points evenly spaced on a circle of ``radius``: (modes, 2)."""
    angles = 2 * np.pi * np.arange(modes) / modes
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def make_ring(n: int = 2000, modes: int = 8, radius: float = 2.0, std: float = 0.05,
              seed: int | None = 0) -> np.ndarray:
    """``n`` points (float32 array (n, 2)) from equal-weight Gaussians (``std``) centred on a ring: the standard
    mode-collapse testbed for GANs.

    >>> make_ring(1000).shape
    (1000, 2)
    """
    return make_gaussian_mixture(n, centers=ring_centers(modes, radius), std=std, seed=seed).tensors[0].numpy()


def make_adding_problem(n: int = 1000, seq_len: int = 50, seed: int | None = 0) -> TensorDataset:
    """The adding problem (Hochreiter & Schmidhuber): inputs ``(n, T, 2)``, target ``(n, 1)``.

    Channel 0 holds values uniform in [0, 1); channel 1 marks two positions (one in each half of the
    sequence) with 1. The target is the sum of the two marked values: a long-range memory test.
    """
    _positive("make_adding_problem", n=n)
    if not isinstance(seq_len, (int, np.integer)) or seq_len < 2:
        raise ValueError(f"make_adding_problem: seq_len must be an integer >= 2, got {seq_len!r}")
    rng = _rng(seed, "make_adding_problem")
    values = rng.uniform(0.0, 1.0, size=(n, seq_len))
    half = seq_len // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, seq_len, size=n)
    markers = np.zeros((n, seq_len))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1)
    y = (values[rows, first] + values[rows, second])[:, None]
    return TensorDataset(x.astype(np.float32), y.astype(np.float32))


def make_copy_task(n: int = 1000, seq_len: int = 10, delay: int = 20, n_symbols: int = 8, one_hot: bool = False,
                   seed: int | None = 0) -> TensorDataset:
    """The copy task: remember ``seq_len`` symbols over ``delay`` blank steps, then reproduce them.

    Tokens: 0 blank, 1..n_symbols data, n_symbols + 1 the "recall now" marker. The input is the
    symbols, ``delay - 1`` blanks, the marker, then ``seq_len`` blanks; the target is blanks for the
    first ``seq_len + delay`` steps and then the symbols. Both are int64 ``(n, 2 * seq_len + delay)``;
    ``one_hot=True`` gives float32 inputs ``(n, L, n_symbols + 2)`` instead.
    """
    _positive("make_copy_task", n=n, seq_len=seq_len, delay=delay, n_symbols=n_symbols)
    rng = _rng(seed, "make_copy_task")
    length = 2 * seq_len + delay
    symbols = rng.integers(1, n_symbols + 1, size=(n, seq_len))
    x = np.zeros((n, length), dtype=np.int64)
    y = np.zeros((n, length), dtype=np.int64)
    x[:, :seq_len] = symbols
    x[:, seq_len + delay - 1] = n_symbols + 1
    y[:, seq_len + delay:] = symbols
    if one_hot:
        x = np.eye(n_symbols + 2, dtype=np.float32)[x]
    return TensorDataset(x, y)


def make_sine_waves(n: int = 500, seq_len: int = 50, noise: float = 0.1, freq_range: tuple[float, float] = (0.02, 0.1),
                    seed: int | None = 0) -> TensorDataset:
    """Noisy sine waves for next-step prediction: inputs ``(n, T, 1)`` noisy, targets ``(n, T, 1)`` clean.

    Each wave has a random amplitude in [0.5, 1.5], frequency in ``freq_range`` (cycles per step) and
    phase; the target at step t is the clean wave at step t + 1.
    """
    _positive("make_sine_waves", n=n, seq_len=seq_len)
    rng = _rng(seed, "make_sine_waves")
    amp = rng.uniform(0.5, 1.5, size=(n, 1))
    freq = rng.uniform(*freq_range, size=(n, 1))
    phase = rng.uniform(0.0, 2 * np.pi, size=(n, 1))
    t = np.arange(seq_len + 1)[None, :]
    clean = amp * np.sin(2 * np.pi * freq * t + phase)
    noisy = clean[:, :-1] + noise * rng.standard_normal((n, seq_len))
    return TensorDataset(noisy[..., None].astype(np.float32), clean[:, 1:, None].astype(np.float32))
