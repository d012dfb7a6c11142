"""Tabular data: CSV and NumPy (.npy / .npz) files on disk, and scikit-learn's bundled tables."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from ..dataset import TensorDataset
from .digits import stratified_split


def _target_array(y: np.ndarray, task: str, where: str) -> np.ndarray:
    if task not in ("auto", "classification", "regression"):
        raise ValueError(f"{where}: task must be 'auto', 'classification' or 'regression', got {task!r}")
    integral = bool(np.all(np.isfinite(y))) and bool(np.all(y == np.round(y)))
    if task == "classification" or (task == "auto" and integral):
        if not integral:
            raise ValueError(f"{where}: classification targets must be whole numbers")
        return y.astype(np.int64)
    return y.astype(np.float32)


def _column(target, names: list[str] | None, ncols: int, where: str) -> int:
    if isinstance(target, str):
        if names is None:
            raise ValueError(f"{where}: target={target!r} names a column but the file has no header row")
        if target not in names:
            raise KeyError(f"{where}: no column named {target!r}; columns are {names}")
        return names.index(target)
    if not -ncols <= target < ncols:
        raise IndexError(f"{where}: target column {target} out of range for {ncols} columns")
    return target % ncols


def load_csv(path: str | os.PathLike, target: int | str | None = -1, delimiter: str = ",",
             header: bool | None = None, task: str = "auto") -> TensorDataset:
    """A numeric CSV as ``TensorDataset(features float32, target)``; ``target`` is a column index or name.

    ``header=None`` detects a header row (a first row that is not all numbers). Whole-number targets
    become int64 class labels (``task="auto"``), others float32. ``target=None``: features only.
    The dataset keeps ``.feature_names`` (and ``.target_name``) when there is a header.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_csv: no such file {path}")
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f, delimiter=delimiter) if r and any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"load_csv: {path} is empty")

    def numeric(cell: str) -> bool:
        try:
            float(cell)
            return True
        except ValueError:
            return False

    if header is None:
        header = not all(numeric(c) for c in rows[0])
    names = [c.strip() for c in rows[0]] if header else None
    body = rows[1:] if header else rows
    ncols = len(rows[0])
    values = np.empty((len(body), ncols), dtype=np.float64)
    for i, row in enumerate(body):
        line = i + 1 + bool(header)
        if len(row) != ncols:
            raise ValueError(f"load_csv: {path} line {line} has {len(row)} fields, expected {ncols}")
        for j, cell in enumerate(row):
            try:
                values[i, j] = float(cell)
            except ValueError:
                raise ValueError(f"load_csv: {path} line {line}, column {j + 1}: {cell!r} is not a number "
                                 f"(missing values must be filled in before loading)") from None
    if target is None:
        ds = TensorDataset(values.astype(np.float32))
        ds.feature_names = names
        return ds
    col = _column(target, names, ncols, "load_csv")
    features = np.delete(values, col, axis=1).astype(np.float32)
    ds = TensorDataset(features, _target_array(values[:, col], task, "load_csv"))
    ds.feature_names = None if names is None else [n for j, n in enumerate(names) if j != col]
    ds.target_name = None if names is None else names[col]
    return ds


def load_numpy(path: str | os.PathLike, target: int | None = None, x_key: str = "x", y_key: str | None = "y",
               task: str = "auto") -> TensorDataset:
    """Arrays from ``.npz`` (keys ``x_key``/``y_key``) or ``.npy`` (``target`` = column of a 2-D array, or none).

    Inputs keep their float dtype (other dtypes become float32); targets follow ``task`` as in :func:`load_csv`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_numpy: no such file {path}")

    def inputs(a: np.ndarray) -> np.ndarray:
        return a if a.dtype.kind == "f" else a.astype(np.float32)

    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            if x_key not in z:
                raise KeyError(f"load_numpy: {path} has no array {x_key!r}; it holds {sorted(z.keys())}")
            x = z[x_key]
            if y_key is None or y_key not in z:
                if y_key is not None and y_key != "y":
                    raise KeyError(f"load_numpy: {path} has no array {y_key!r}; it holds {sorted(z.keys())}")
                return TensorDataset(inputs(x))
            return TensorDataset(inputs(x), _target_array(z[y_key], task, "load_numpy"))
    if path.suffix != ".npy":
        raise ValueError(f"load_numpy: expected a .npy or .npz file, got {path}")
    a = np.load(path, allow_pickle=False)
    if target is None:
        return TensorDataset(inputs(a))
    if a.ndim != 2:
        raise ValueError(f"load_numpy: target={target} needs a 2-D array (rows = samples), got shape {a.shape}")
    col = _column(target, None, a.shape[1], "load_numpy")
    return TensorDataset(inputs(np.delete(a, col, axis=1)), _target_array(a[:, col].astype(np.float64), task,
                                                                           "load_numpy"))


_SKLEARN_TABLES = {"iris": "load_iris", "wine": "load_wine", "breast_cancer": "load_breast_cancer",
                   "diabetes": "load_diabetes"}


def load_tabular(name: str, test_size: float = 0.2, seed: int = 0,
                 standardize: bool = True) -> tuple[TensorDataset, TensorDataset]:
    """(train, test) for a table scikit-learn ships: iris, wine, breast_cancer (classification), diabetes (regression).

    Classification splits are stratified; ``standardize`` uses the training split's mean/std only.

    >>> train, test = load_tabular("iris")
    >>> len(train), len(test), train.tensors[1].dtype
    (120, 30, dtype('int64'))
    """
    if name not in _SKLEARN_TABLES:
        raise ValueError(f"load_tabular: unknown table {name!r}; choose from {sorted(_SKLEARN_TABLES)}")
    import sklearn.datasets

    raw = getattr(sklearn.datasets, _SKLEARN_TABLES[name])()
    x = raw.data.astype(np.float32)
    regression = name == "diabetes"
    y = raw.target.astype(np.float32)[:, None] if regression else raw.target.astype(np.int64)
    if regression:
        perm = np.random.default_rng(seed).permutation(len(x))
        k = int(round(test_size * len(x)))
        tr, te = np.sort(perm[k:]), np.sort(perm[:k])
    else:
        tr, te = stratified_split(y, test_size, seed)
    if standardize:
        mean, std = x[tr].mean(axis=0), x[tr].std(axis=0)
        x = (x - mean) / np.where(std == 0, 1.0, std).astype(np.float32)
    out = []
    for idx in (tr, te):
        ds = TensorDataset(np.ascontiguousarray(x[idx]), y[idx])
        ds.feature_names = list(raw.feature_names)
        ds.classes = None if regression else list(raw.target_names)
        out.append(ds)
    return out[0], out[1]
