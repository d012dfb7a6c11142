"""scikit-learn's handwritten digits (1797 8x8 images, 10 classes): deepgrad's embedded default dataset.

It ships inside scikit-learn, so it works offline everywhere; the optional 28x28 view lets MNIST-sized
models (LeNet) run on it.
"""

from __future__ import annotations

import numpy as np

from ..dataset import TensorDataset
from ..transforms import functional as F


def stratified_split(labels: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices with each class split in the same proportion (sorted, seeded)."""
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"stratified_split: test_size must be in (0, 1), got {test_size}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(test_size * len(idx)))
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_digits(test_size: float = 0.2, seed: int = 0, size: int = 8, normalize: bool = True,
                flatten: bool = False) -> tuple[TensorDataset, TensorDataset]:
    """(train, test) datasets of digits: images ``(1, size, size)`` float32 (or flat), labels int64.

    ``size=28`` upsamples bilinearly to 24x24 and pads to 28x28 (digits centred like MNIST's).
    ``normalize`` standardises with the *training* pixels' mean and std (kept as ``.mean``/``.std``;
    without it pixels lie in [0, 1]). The split is stratified and fixed by ``seed``.

    >>> train, test = load_digits()
    >>> len(train), len(test), tuple(train[0][0].shape)
    (1438, 359, (1, 8, 8))
    """
    from sklearn.datasets import load_digits as _sk_digits

    if size not in (8, 28):
        raise ValueError(f"load_digits: size must be 8 (native) or 28 (upsampled MNIST-like view), got {size}")
    raw = _sk_digits()
    x = (raw.images.astype(np.float32) / np.float32(16.0))[:, None]  # pixel values are 0..16
    if size == 28:
        x = F.pad(F.resize(x, (24, 24)), 2)
    y = raw.target.astype(np.int64)
    tr, te = stratified_split(y, test_size, seed)
    mean, std = 0.0, 1.0
    if normalize:
        mean, std = float(x[tr].mean()), float(x[tr].std())
        x = ((x - np.float32(mean)) / np.float32(std)).astype(np.float32)
    if flatten:
        x = x.reshape(len(x), -1)
    out = []
    for idx in (tr, te):
        ds = TensorDataset(np.ascontiguousarray(x[idx]), y[idx])
        ds.classes = list(range(10))
        ds.mean, ds.std = mean, std
        out.append(ds)
    return out[0], out[1]


def digit_images(image_size: int = 16) -> np.ndarray:
    """All 1797 digits as (N, 1, image_size, image_size) float32 in [-1, 1] (the range of a tanh generator),
    bilinearly resized from 8x8: the real images of a GAN.

    >>> digit_images(8).shape
    (1797, 1, 8, 8)
    """
    from sklearn.datasets import load_digits as _sk_digits

    x = (_sk_digits().images.astype(np.float32) / np.float32(16.0))[:, None]
    if image_size != 8:
        x = F.resize(x, (image_size, image_size))
    return np.ascontiguousarray(np.clip(x, 0.0, 1.0) * 2.0 - 1.0, dtype=np.float32)
