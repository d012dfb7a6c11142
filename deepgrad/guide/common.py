"""Small helpers the interview-guide topics share: the digits data as arrays, a one-call training run
with :class:`deepgrad.train.Trainer`, timing and image-grid figures; ``accuracy`` and ``shift`` are the
library's (:func:`deepgrad.train.metrics.model_accuracy`, :func:`deepgrad.data.transforms.functional.shift`).

Kept deliberately thin: a topic should still read as "build a model, train it, measure it".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from deepgrad import nn, optim
from deepgrad.data import DataLoader, TensorDataset
from deepgrad.data.datasets import load_digits
from deepgrad.data.transforms.functional import shift  # noqa: F401  (translate images by whole pixels)
from deepgrad.train import Trainer
from deepgrad.train.metrics import model_accuracy as accuracy  # noqa: F401  (fraction classified right)


@dataclass
class Split:
    """Train/test arrays: images float32 (N, 1, H, W) or flat (N, H*W), labels int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def digits(size: int = 8, seed: int = 0, flatten: bool = False, test_size: float = 0.25,
           standardize: bool = False) -> Split:
    """scikit-learn's digits as NumPy arrays, a stratified split fixed by ``seed``; ``size=28`` is the
    MNIST-sized view. Pixels lie in [0, 1] (background exactly 0, so a shifted image can be zero-filled),
    or, with ``standardize``, have the training set's mean 0 and std 1 (faster training)."""
    train, test = load_digits(test_size=test_size, seed=seed, size=size, normalize=standardize, flatten=flatten)
    (x_tr, y_tr), (x_te, y_te) = ([t.numpy() for t in ds.tensors] for ds in (train, test))
    return Split(x_tr, y_tr, x_te, y_te)


def fit(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, lr: float = 1e-2, batch_size: int = 64,
        device: str = "cpu", weight_decay: float = 0.0, anneal: bool = False):
    """Train ``model`` with Adam and cross-entropy on ``(x, y)``; returns the Trainer's History.

    ``anneal`` decays the learning rate to 0 along a cosine, so the final weights are not left at a random
    point of the last epochs' noise (steadier final accuracy)."""
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)
    opt = optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs) if anneal else None
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt, scheduler, device=device, progress=False)
    return trainer.fit(loader, epochs=epochs)


def n_params(model: nn.Module) -> int:
    """Number of scalar parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


def best_time(fn: Callable[[], object], repeat: int = 3) -> float:
    """The fastest of ``repeat`` timed calls of ``fn`` in seconds (the minimum is the least noisy estimate)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


# The widest a figure (or one panel of it) should be, in inches: at the report's 110 dpi it then shrinks to
# no less than ~0.6x on a phone, where 9-point text stays readable.
MAX_WIDTH_IN = 5.0


def image_grid(images, titles=None, ncols: int = 8, cmap: str = "gray", title: str | None = None,
               size: float = 1.3, symmetric: bool = False, vmin: float | None = None, vmax: float | None = None):
    """A matplotlib figure showing 2-D arrays in a grid (``symmetric`` centres the colour scale on 0,
    which suits filters whose sign matters; ``vmin``/``vmax`` fix one scale for every image, which suits
    images to compare, instead of stretching each one's own range). The grid wraps to fewer columns when
    ``ncols`` images of ``size`` inches would be wider than :data:`MAX_WIDTH_IN`, so it stays readable on a
    phone."""
    import matplotlib.pyplot as plt

    images = [np.asarray(im) for im in images]
    ncols = max(1, min(ncols, len(images), int(MAX_WIDTH_IN // size)))
    nrows = (len(images) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if title else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            im = images[i]
            if symmetric:
                lim = float(np.abs(im).max()) or 1.0
                ax.imshow(im, cmap=cmap, vmin=-lim, vmax=lim)
            else:
                ax.imshow(im, cmap=cmap, vmin=vmin, vmax=vmax)
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
