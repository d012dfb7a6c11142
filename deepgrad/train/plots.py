"""Figures of training runs, written as PNG files with matplotlib's Agg canvas (no pyplot, no global backend
change) and atomically (a kill mid-write never leaves a truncated PNG): ``plot_history`` (per-epoch curves),
``plot_losses`` (a GAN's two losses per step), ``save_image_grid`` (generated images) and ``save_scatter``
(2-D samples against the data).
"""

from __future__ import annotations

import io
import math
import os

import numpy as np

from ..io import atomic_write_bytes
from .history import History


def _figure(width: float, height: float):
    """A matplotlib Figure on its own Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save_png(fig, path: str | os.PathLike) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())
    return os.fspath(path)


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

    >>> history = {"loss": [0.9, 0.5, 0.4], "val_loss": [1.0, 0.7, 0.6]}   # or the History that Trainer.fit returns
    >>> plot_history(history, "history.png")
    'history.png'
    """
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
    fig = _figure(4.6 * cols, 3.6 * rows)
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
    return _save_png(fig, path)


def _from_columns(columns: dict) -> History:
    """A Keras-style ``{"loss": [...], "val_loss": [...]}`` dict (optionally with an ``epoch`` column)."""
    h = History()
    length = max(len(v) for v in columns.values())
    epochs = columns.get("epoch", list(range(1, length + 1)))
    for i in range(length):
        h.append(epochs[i], {k: v[i] for k, v in columns.items() if k != "epoch" and i < len(v)})
    return h


# ----------------------------------------------------------------------------- generated samples
def image_grid(images: np.ndarray, nrow: int | None = None, padding: int = 1,
               value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """Tile (N, C, H, W) images into one (H', W') or (H', W', 3) array in [0, 1], ``nrow`` per row."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"image_grid: expected images (N, 1 or 3, H, W), got shape {images.shape}")
    lo, hi = value_range
    images = np.clip((images - lo) / (hi - lo), 0.0, 1.0)
    n, c, h, w = images.shape
    nrow = nrow or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / nrow))
    grid = np.ones((c, rows * (h + padding) + padding, nrow * (w + padding) + padding), dtype=np.float32)
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, y:y + h, x:x + w] = images[i]
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


def save_image_grid(images: np.ndarray, path: str | os.PathLike, nrow: int | None = None,
                    value_range: tuple[float, float] = (-1.0, 1.0), min_size: int = 320) -> str:
    """Write ``images`` (N, C, H, W) as a PNG grid (pixels enlarged to at least ``min_size`` across)."""
    from matplotlib.image import imsave

    grid = image_grid(images, nrow, value_range=value_range)
    scale = max(1, int(math.ceil(min_size / grid.shape[1])))
    grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)  # crisp pixels, no interpolation
    buf = io.BytesIO()
    imsave(buf, grid, cmap="gray", vmin=0.0, vmax=1.0, format="png")
    atomic_write_bytes(path, buf.getvalue())
    return os.fspath(path)


def save_scatter(samples: np.ndarray, path: str | os.PathLike, real: np.ndarray | None = None,
                 centers: np.ndarray | None = None, title: str | None = None) -> str:
    """A PNG scatter plot of 2-D ``samples`` over the ``real`` data (and mixture ``centers``)."""
    fig = _figure(4.5, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=3, alpha=0.3, color="tab:blue", label="real")
    ax.scatter(samples[:, 0], samples[:, 1], s=3, alpha=0.5, color="tab:orange", label="generated")
    if centers is not None:
        ax.scatter(centers[:, 0], centers[:, 1], marker="x", color="black", label="modes")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return _save_png(fig, path)


def plot_losses(history: dict[str, list[float]], path: str | os.PathLike, smooth: int = 20) -> str:
    """A PNG of a GAN's discriminator and generator losses per step (moving average over ``smooth`` steps)."""
    fig = _figure(6, 3.5)
    ax = fig.add_subplot(1, 1, 1)
    for key in ("d_loss", "g_loss"):
        v = np.asarray(history[key], dtype=np.float64)
        k = max(1, min(smooth, len(v)))
        ax.plot(np.arange(k, len(v) + 1), np.convolve(v, np.ones(k) / k, mode="valid"), label=key)
    ax.set_xlabel("generator step")
    ax.set_title("GAN losses")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return _save_png(fig, path)
