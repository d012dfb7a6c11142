"""How good generated samples are, measured against the data: mode coverage of a known mixture (Metz et al.,
2017) and the sliced Wasserstein distance between point clouds.

>>> from deepgrad.data.datasets import make_ring, ring_centers
>>> data = make_ring(2000, std=0.05, seed=0)
>>> collapsed = make_ring(2000, modes=1, std=0.05, seed=1)   # samples of a generator stuck on one mode
>>> coverage = mode_coverage(collapsed, ring_centers(), std=0.05)
>>> coverage.covered, round(sliced_wasserstein(collapsed, data), 2)
(1, 1.58)
>>> mode_coverage(make_ring(2000, std=0.05, seed=1), ring_centers(), std=0.05).covered   # fresh real samples
8
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ModeCoverage:
    """How generated samples spread over a mixture's modes."""

    covered: int              # modes holding at least ``min_share`` of their fair share of samples
    modes: int
    counts: np.ndarray        # samples within ``threshold`` std of each mode
    high_quality: float       # fraction of samples within ``threshold`` std of some mode

    def __str__(self) -> str:
        return (f"{self.covered}/{self.modes} modes covered, {100 * self.high_quality:.1f}% of samples near a mode, "
                f"per-mode counts {self.counts.tolist()}")


def mode_coverage(samples: np.ndarray, centers: np.ndarray, std: float, threshold: float = 3.0,
                  min_share: float = 0.25) -> ModeCoverage:
    """Assign each sample to its nearest mode if it lies within ``threshold * std`` of it; a mode counts as
    covered when it receives at least ``min_share`` of the ``len(samples) / modes`` samples it would get
    from the true mixture (Metz et al., 2017, with a count floor so stray samples do not count)."""
    samples, centers = np.asarray(samples, dtype=np.float64), np.asarray(centers, dtype=np.float64)
    if samples.ndim != 2 or centers.ndim != 2 or samples.shape[1] != centers.shape[1]:
        raise ValueError(f"mode_coverage: samples {samples.shape} and centers {centers.shape} must be (n, d), (k, d)")
    d = np.linalg.norm(samples[:, None, :] - centers[None, :, :], axis=-1)
    nearest = d.argmin(1)
    near = d[np.arange(len(samples)), nearest] <= threshold * std
    counts = np.bincount(nearest[near], minlength=len(centers))
    floor = min_share * len(samples) / len(centers)
    return ModeCoverage(int((counts >= floor).sum()), len(centers), counts, float(near.mean()))


def sliced_wasserstein(x: np.ndarray, y: np.ndarray, projections: int = 256, seed: int = 0) -> float:
    """Sliced Wasserstein-1 distance between two point clouds: the mean over random unit directions of the
    1-D Wasserstein distance between the projections (quantile matching; sizes may differ)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"sliced_wasserstein: expected (n, d) and (m, d) arrays, got {x.shape} and {y.shape}")
    dirs = np.random.default_rng(seed).standard_normal((x.shape[1], projections))
    dirs /= np.linalg.norm(dirs, axis=0, keepdims=True)
    q = (np.arange(min(len(x), len(y))) + 0.5) / min(len(x), len(y))
    return float(np.abs(_quantiles(x @ dirs, q) - _quantiles(y @ dirs, q)).mean())


def _quantiles(values: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Column-wise linear-interpolation quantiles (np.quantile's default) from one sort per column."""
    s = np.sort(values, axis=0)
    pos = q * (len(s) - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, len(s) - 1)
    w = (pos - lo)[:, None]
    return s[lo] * (1.0 - w) + s[hi] * w
