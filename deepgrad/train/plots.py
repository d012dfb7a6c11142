"""plot_history: training curves as a PNG (matplotlib's Agg canvas, no pyplot and no global backend change)."""

from __future__ import annotations

import io
import math
import os

from ..io import atomic_write_bytes
from .history import History


def _panels(history: History, keys: list[str] | None) -> list[str]:
    """Base names to plot (``loss``, ``accuracy`` ...), each shown with its ``val_`` twin."""
    if keys is not None:
        return list(keys)
    names = [k for k in history.keys() if not k.startswith("val_") and k != "lr"]
    names += [k[4:] for k in history.keys() if k.startswith("val_") and k[4:] not in history.keys()]
    return sorted(set(names), key=lambda k: (k != "loss", k))


def plot_history(history: History | dict, path: str | os.PathLike, keys: list[str] | None = None,
                 title: str | None = None, show_lr: bool = True) -> str:
    """Write loss and metric curves (train vs validation, one panel per quantity) to a PNG; returns the path.

    >>> plot_history(trainer.fit(train, val, epochs=10), "history.png")
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    if isinstance(history, dict):
        history = History.from_dict(history) if "epochs" in history else _from_columns(history)
    if len(history) == 0:
        raise ValueError("plot_history: the history is empty (no epoch finished)")
    names = _panels(history, keys)
    lr = history.history.get("lr") if show_lr else None
    n = len(names) + (lr is not None)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(4.6 * cols, 3.6 * rows), dpi=100)
    FigureCanvasAgg(fig)
    epochs = history.epochs
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        for key, label, style in ((name, "train", "-o"), (f"val_{name}", "validation", "-s")):
            if key in history.history:
                ax.plot(epochs, history.history[key], style, markersize=3, label=label)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
        if name == "loss" and all(v > 0 for k in (name, f"val_{name}") for v in history.history.get(k, [1.0])
                                  if not math.isnan(v)):
            ax.set_yscale("log")
    if lr is not None:
        ax = fig.add_subplot(rows, cols, n)
        ax.plot(epochs, lr, "-", color="tab:gray")
        ax.set_title("learning rate")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = os.fspath(path)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())  # a kill mid-write never leaves a truncated PNG
    return path


def _from_columns(columns: dict) -> History:
    """A Keras-style ``{"loss": [...], "val_loss": [...]}`` dict (optionally with an ``epoch`` column)."""
    h = History()
    length = max(len(v) for v in columns.values())
    epochs = columns.get("epoch", list(range(1, length + 1)))
    for i in range(length):
        h.append(epochs[i], {k: v[i] for k, v in columns.items() if k != "epoch" and i < len(v)})
    return h
