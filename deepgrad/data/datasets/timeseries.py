"""Real time series that installed packages ship, and windowing for forecasting.

Series (``load_series``), all read from files already on disk:

- ``"sp500"``: S&P 500 monthly close, 1990-01 to 2022-06 (391 points), from matplotlib's sample data.
- ``"goog"``: Google's daily adjusted close, 2004-08-19 to 2008-10-14 (1047 trading days), matplotlib.
- ``"sunspots"``: yearly mean sunspot numbers 1700-2008 (309 points), read from statsmodels' data
  files when statsmodels is installed (it is not a deepgrad dependency).

>>> splits = load_forecasting("sp500", window=12, horizon=1)
>>> tuple(splits.train[0][0].shape), tuple(splits.train[0][1].shape)
((12, 1), (1,))
"""

from __future__ import annotations

import csv
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..dataset import TensorDataset

SERIES = {
    "sp500": "S&P 500 monthly close 1990-2022 (matplotlib sample data)",
    "goog": "Google daily adjusted close 2004-2008 (matplotlib sample data)",
    "sunspots": "yearly sunspot numbers 1700-2008 (statsmodels data, needs statsmodels installed)",
}


def _matplotlib_sample(name: str) -> Path:
    from matplotlib import cbook

    return Path(cbook.get_sample_data(name, asfileobj=False))


def _statsmodels_file(relative: str) -> Path:
    # find_spec locates the package without importing it (importing statsmodels would pull in pandas).
    spec = importlib.util.find_spec("statsmodels")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("load_series('sunspots'): the sunspots series is read from statsmodels' data "
                                  "files; install statsmodels (`pip install statsmodels`) or choose one of "
                                  "'sp500', 'goog'")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise FileNotFoundError(f"load_series('sunspots'): statsmodels is installed but {path} is missing")
    return path


def _read_sunspots(path: Path) -> np.ndarray:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return np.array([float(r[1]) for r in rows[1:] if len(r) >= 2], dtype=np.float64)


def load_series(name: str = "sp500") -> np.ndarray:
    """A real univariate series as a float64 array, oldest first (see :data:`SERIES`)."""
    if name == "sp500":
        with open(_matplotlib_sample("Stocks.csv"), newline="") as f:
            rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
        col = rows[0].index("^GSPC")
        return np.array([float(r[col]) for r in rows[1:] if r[col]], dtype=np.float64)
    if name == "goog":
        with np.load(_matplotlib_sample("goog.npz")) as z:
            prices = z["price_data"]
        return prices["adj_close"][np.argsort(prices["date"], kind="stable")].astype(np.float64)
    if name == "sunspots":
        return _read_sunspots(_statsmodels_file("datasets/sunspots/sunspots.csv"))
    raise ValueError(f"load_series: unknown series {name!r}; choose from {sorted(SERIES)}")


def _as_2d(series, where: str) -> np.ndarray:
    s = np.asarray(series, dtype=np.float64)
    if s.ndim not in (1, 2):
        raise ValueError(f"{where}: series must be 1-D (time,) or 2-D (time, features), got shape {s.shape}")
    return s[:, None] if s.ndim == 1 else s


def sliding_windows(series: np.ndarray, window: int, horizon: int = 1,
                    stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``(n, window, F)`` and the following ``horizon`` values ``(n, horizon)`` (``(n, horizon, F)`` if 2-D).

    Window k covers ``series[k*stride : k*stride + window]``; its target the next ``horizon`` steps.

    >>> x, y = sliding_windows(np.arange(6.0), window=3, horizon=1)
    >>> x[:, :, 0].tolist(), y.tolist()
    ([[0.0, 1.0, 2.0], [1.0, 2.0, 3.0], [2.0, 3.0, 4.0]], [[3.0], [4.0], [5.0]])
    """
    for name, v in (("window", window), ("horizon", horizon), ("stride", stride)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"sliding_windows: {name} must be a positive integer, got {v!r}")
    univariate = np.asarray(series).ndim == 1
    s = _as_2d(series, "sliding_windows")
    n = (len(s) - window - horizon) // stride + 1
    if n < 1:
        raise ValueError(f"sliding_windows: a series of length {len(s)} is too short for window={window} + "
                         f"horizon={horizon}")
    starts = np.arange(n) * stride
    x = s[starts[:, None] + np.arange(window)]
    y = s[starts[:, None] + window + np.arange(horizon)]
    return x, (y[..., 0] if univariate else y)


@dataclass
class ForecastSplits:
    """Train/validation/test window datasets plus the (train-only) normalisation to undo predictions."""

    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    mean: np.ndarray
    std: np.ndarray

    def denormalize(self, values):
        """Map normalised values (inputs or predictions, last axis = features or horizon) back to series units."""
        v = np.asarray(values.array if hasattr(values, "grad_fn") else values, dtype=np.float64)
        if self.mean.size == 1:
            return v * float(self.std[0]) + float(self.mean[0])
        return v * self.std + self.mean


def forecasting_splits(series, window: int, horizon: int = 1, stride: int = 1,
                       split: tuple[float, float, float] = (0.7, 0.15, 0.15), normalize: bool = True) -> ForecastSplits:
    """Cut ``series`` in time order into train/val/test, normalise with train statistics, window each part.

    No window crosses a split boundary, so nothing from the future leaks into training. Datasets hold
    float32 ``(window, F)`` inputs and ``(horizon,)`` targets (``(horizon, F)`` for a multivariate series).
    """
    if len(split) != 3 or min(split) < 0 or not np.isclose(sum(split), 1.0):
        raise ValueError(f"forecasting_splits: split must be three non-negative fractions summing to 1, got {split}")
    univariate = np.asarray(series).ndim == 1
    s = _as_2d(series, "forecasting_splits")
    n_train = int(round(split[0] * len(s)))
    n_val = int(round(split[1] * len(s)))
    parts = (s[:n_train], s[n_train:n_train + n_val], s[n_train + n_val:])
    mean = parts[0].mean(axis=0) if normalize else np.zeros(s.shape[1])
    std = parts[0].std(axis=0) if normalize else np.ones(s.shape[1])
    std = np.where(std == 0, 1.0, std)
    datasets = []
    for name, part in zip(("train", "val", "test"), parts):
        if len(part) < window + horizon:
            raise ValueError(f"forecasting_splits: the {name} part has {len(part)} steps, fewer than window + "
                             f"horizon = {window + horizon}; use a longer series, a smaller window or another split")
        p = (part - mean) / std
        x, y = sliding_windows(p[:, 0] if univariate else p, window, horizon, stride)
        datasets.append(TensorDataset(x.astype(np.float32), y.astype(np.float32)))
    return ForecastSplits(*datasets, mean=mean, std=std)


def load_forecasting(name: str = "sp500", window: int = 24, horizon: int = 1, stride: int = 1,
                     split: tuple[float, float, float] = (0.7, 0.15, 0.15), normalize: bool = True) -> ForecastSplits:
    """:func:`forecasting_splits` on a bundled series (:func:`load_series`)."""
    return forecasting_splits(load_series(name), window, horizon, stride, split, normalize)
