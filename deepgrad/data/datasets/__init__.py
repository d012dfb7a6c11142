"""Datasets: scikit-learn's digits (the embedded default), MNIST/Fashion-MNIST from IDX files on disk,
CSV/NumPy tables, real time series with forecasting windows, seeded synthetic tasks, and token sequences (a
long-range recall task, texts that ship with Python).

Nothing here ever touches the network: missing files give an error that says where to put them.
"""

from .digits import digit_images, load_digits, stratified_split
from .mnist import MNIST, FashionMNIST, read_idx, write_idx
from .sequence_tasks import load_text, make_recall_task, next_token_windows
from .synthetic import (
    make_adding_problem,
    make_copy_task,
    make_gaussian_mixture,
    make_ring,
    make_sine_waves,
    make_spirals,
    make_xor,
    ring_centers,
)
from .tabular import load_csv, load_numpy, load_tabular
from .timeseries import SERIES, ForecastSplits, forecasting_splits, load_forecasting, load_series, sliding_windows

__all__ = [
    "MNIST", "SERIES", "FashionMNIST", "ForecastSplits", "forecasting_splits", "load_csv", "load_digits",
    "load_forecasting", "load_numpy", "load_series", "load_tabular", "make_adding_problem", "make_copy_task",
    "make_gaussian_mixture", "make_sine_waves", "make_spirals", "make_xor", "read_idx", "sliding_windows",
    "stratified_split", "write_idx", "load_text", "make_recall_task", "next_token_windows", "digit_images",
    "make_ring", "ring_centers",
]
