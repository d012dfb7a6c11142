"""A seeded classification run for the model zoo's recipes and experiments, on :class:`deepgrad.train.Trainer`.

The batches come from one seeded generator (a permutation per epoch, then each batch's random shifts), a
stream fixed by ``seed`` alone: the shipped weights are re-made from it bit for bit on one machine (no
threads, no callbacks).
"""

from __future__ import annotations

import math

import numpy as np

from .. import nn, optim
from ..data.transforms import RandomShift
from ..train import Trainer


class _SeededBatches:
    """``(x, y)`` batches of arrays, reshuffled every epoch by ``generator``; ``shift`` > 0 translates each
    image by a random whole-pixel offset drawn from the same generator. Epoch ``k`` yields
    ``batches_in_epoch[k]`` batches (the last epoch of a run capped by a step count is shorter)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, generator: np.random.Generator,
                 shift: int, batches_in_epoch: list[int]):
        self.x, self.y, self.batch_size, self.generator = x, y, batch_size, generator
        self.augment = RandomShift(shift, per_sample=True, generator=generator) if shift else None
        self.batches_in_epoch, self.epochs_started = batches_in_epoch, 0

    def __len__(self) -> int:
        return self.batches_in_epoch[min(self.epochs_started, len(self.batches_in_epoch) - 1)]

    def __iter__(self):
        batches = len(self)
        self.epochs_started += 1
        order = self.generator.permutation(len(self.y))
        for b in range(batches):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield (self.augment(self.x[idx]) if self.augment else self.x[idx]), self.y[idx]


def fit_classifier(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, lr: float = 1e-3,
                   batch_size: int = 64, seed: int = 0, param_groups=None, weight_decay: float = 0.0,
                   steps: int | None = None, shift: int = 0, cosine: bool = False) -> list[float]:
    """Train ``model`` with Adam and cross-entropy on arrays ``x``, ``y``; returns the per-epoch mean losses.

    ``param_groups`` (an optimizer ``params`` argument) defaults to every parameter that requires grad.
    ``steps`` caps the total number of optimizer steps (small few-shot sets: epochs of one batch; a last,
    partial epoch's loss is the mean over the samples it trained on).
    ``shift`` > 0 augments images (N, C, H, W) with random translations of up to ``shift`` pixels;
    ``cosine`` anneals the learning rate to 0 over the epochs.
    """
    if len(y) == 0 or (steps is not None and steps < 1):
        raise ValueError(f"fit_classifier: need at least one sample and one step, got {len(y)} samples, steps={steps}")
    params = param_groups if param_groups is not None else [p for p in model.parameters() if p.requires_grad]
    opt = optim.Adam(params, lr=lr, weight_decay=weight_decay)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs) if cosine else None
    per_epoch = math.ceil(len(y) / batch_size)
    total = epochs * per_epoch if steps is None else min(epochs * per_epoch, steps)
    batches = [min(per_epoch, total - k * per_epoch) for k in range(math.ceil(total / per_epoch))]
    loader = _SeededBatches(x, y, batch_size, np.random.default_rng(seed), shift, batches)
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt, sched, progress=False)
    return list(trainer.fit(loader, epochs=len(batches))["loss"])
