"""A plain, seeded classification loop for the model zoo's recipes and experiments (shipped weights are
re-made by it bit for bit on one machine: a fixed shuffling stream, no threads, no callbacks)."""

from __future__ import annotations

import numpy as np

from .. import nn, optim
from ..autograd import no_grad
from ..creation import tensor


def fit_classifier(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, lr: float = 1e-3,
                   batch_size: int = 64, seed: int = 0, param_groups=None, weight_decay: float = 0.0,
                   steps: int | None = None, shift: int = 0, cosine: bool = False) -> list[float]:
    """Train ``model`` with Adam and cross-entropy on arrays ``x``, ``y``; returns per-epoch mean losses.

    ``param_groups`` (an optimizer ``params`` argument) defaults to every parameter that requires grad.
    ``steps`` caps the total number of optimizer steps (small few-shot sets: epochs of one batch).
    ``shift`` > 0 augments images (N, C, H, W) with random translations of up to ``shift`` pixels;
    ``cosine`` anneals the learning rate to 0 over the epochs.
    """
    params = param_groups if param_groups is not None else [p for p in model.parameters() if p.requires_grad]
    opt = optim.Adam(params, lr=lr, weight_decay=weight_decay)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs) if cosine else None
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    losses, done = [], 0
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(y))
        total = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            xb = _random_shift(x[idx], shift, rng) if shift else x[idx]
            loss = loss_fn(model(tensor(xb)), tensor(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.item()) * len(idx)
            done += 1
            if steps is not None and done >= steps:
                break
        losses.append(total / len(y))
        if sched is not None:
            sched.step()
        if steps is not None and done >= steps:
            break
    return losses


def _random_shift(x: np.ndarray, shift: int, rng: np.random.Generator) -> np.ndarray:
    """Each image translated by a random (dy, dx) in [-shift, shift]^2, filled with the batch's background
    (its minimum: standardised images have a negative background, so zeros would be bright pixels)."""
    n, _, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (shift, shift), (shift, shift)), constant_values=float(x.min()))
    dy, dx = rng.integers(0, 2 * shift + 1, size=(2, n))
    out = np.empty_like(x)
    for i in range(n):
        out[i] = padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
    return out


def predict_logits(model: nn.Module, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Logits for ``x`` in eval mode without gradients (the model's mode is restored)."""
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            return np.concatenate([model(tensor(x[i:i + batch_size])).numpy() for i in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of ``model`` on arrays ``x``, ``y``."""
    return float((predict_logits(model, x).argmax(1) == y).mean())
