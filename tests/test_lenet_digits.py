"""A LeNet-5 trained by deepgrad on scikit-learn's digits reaches >= 97% test accuracy."""

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import nn, optim

sklearn_datasets = pytest.importorskip("sklearn.datasets")


def digits_28x28(seed=0):
    """8x8 digits upsampled to 28x28 (nearest neighbour to 24x24, then zero-padded by 2)."""
    d = sklearn_datasets.load_digits()
    x = d.images.astype(np.float32) / 16.0
    x = np.kron(x, np.ones((3, 3), dtype=np.float32))  # 8x8 -> 24x24
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)))[:, None]  # -> 1x28x28
    x = (x - x.mean()) / x.std()
    y = d.target.astype(np.int64)
    idx = np.random.default_rng(seed).permutation(len(y))
    split = int(0.8 * len(y))
    return x[idx[:split]], y[idx[:split]], x[idx[split:]], y[idx[split:]]


def lenet5():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


def test_lenet5_learns_digits():
    dg.manual_seed(0)
    xtr, ytr, xte, yte = digits_28x28()
    model = lenet5()
    opt = optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    first_loss = last_loss = None
    for _epoch in range(8):
        model.train()
        order = rng.permutation(len(ytr))
        for start in range(0, len(order), 64):
            b = order[start : start + 64]
            loss = loss_fn(model(dg.tensor(xtr[b])), dg.tensor(ytr[b]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            first_loss = loss.item() if first_loss is None else first_loss
            last_loss = loss.item()
    model.eval()
    with dg.no_grad():
        pred = model(dg.tensor(xte)).argmax(dim=1).numpy()
    accuracy = float((pred == yte).mean())
    assert last_loss < first_loss / 5
    assert accuracy >= 0.97, f"test accuracy {accuracy:.3f}"
