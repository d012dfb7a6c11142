"""History: the per-epoch logs of a training run (``history.history["val_loss"]``, as in Keras)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from typing import Any

from ..io import atomic_write_bytes


class History:
    """Per-epoch scalar logs: ``history.history[name]`` is a list with one value per epoch.

    >>> h = History(); h.append(1, {"loss": 0.5, "val_loss": 0.6})
    >>> h.history["val_loss"], h.epochs
    ([0.6], [1])
    """

    def __init__(self):
        self.epochs: list[int] = []
        self.history: dict[str, list[float]] = {}

    def append(self, epoch: int, logs: dict[str, Any]) -> None:
        """Record one epoch's scalar logs (non-scalars such as a confusion matrix are skipped)."""
        n = len(self.epochs)
        self.epochs.append(int(epoch))
        for key, value in logs.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                # a metric first seen late gets NaN for the earlier epochs, so columns stay aligned
                self.history.setdefault(key, [math.nan] * n).append(float(value))
        for column in self.history.values():
            if len(column) < n + 1:
                column.append(math.nan)

    def __len__(self) -> int:
        return len(self.epochs)

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def __contains__(self, key: str) -> bool:
        return key in self.history

    def keys(self):
        return self.history.keys()

    def last(self) -> dict[str, float]:
        """The last epoch's logs."""
        return {k: v[-1] for k, v in self.history.items()} if self.epochs else {}

    def best(self, monitor: str = "val_loss", mode: str = "min") -> tuple[int, float]:
        """(epoch, value) of the best ``monitor`` value."""
        values = self.history[monitor]
        pick = min if mode == "min" else max
        i = pick(range(len(values)), key=lambda j: values[j] if not math.isnan(values[j]) else
                 (math.inf if mode == "min" else -math.inf))
        return self.epochs[i], values[i]

    # ------------------------------------------------------------------ (de)serialising
    def state_dict(self) -> dict[str, Any]:
        return {"epochs": list(self.epochs), "history": {k: list(v) for k, v in self.history.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epochs = [int(e) for e in state["epochs"]]
        self.history = {k: [float(x) for x in v] for k, v in state["history"].items()}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> History:
        h = cls()
        h.load_state_dict(state)
        return h

    def to_json(self, path: str | os.PathLike) -> None:
        """Write ``{"epoch": [...], name: [...]}`` as JSON, atomically."""
        payload = {"epoch": self.epochs, **self.history}
        atomic_write_bytes(path, json.dumps(payload, indent=1).encode())

    def to_csv(self, path: str | os.PathLike) -> None:
        """One row per epoch, one column per log, atomically."""
        buf = io.StringIO()
        writer = csv.writer(buf)
        names = list(self.history)
        writer.writerow(["epoch", *names])
        for i, epoch in enumerate(self.epochs):
            writer.writerow([epoch, *(repr(self.history[k][i]) for k in names)])
        atomic_write_bytes(path, buf.getvalue().encode())

    def plot(self, path: str | os.PathLike, **kwargs) -> None:
        """Save the curves as a PNG (see :func:`plot_history`)."""
        from .plots import plot_history

        plot_history(self, path, **kwargs)

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epochs)}, keys={list(self.history)})"
