"""A complete training run on scikit-learn's digits: progress bar, metrics, early stopping, checkpoints,
history CSV and the history plot. ``python -m deepgrad.train.examples [out_dir]`` runs it in a terminal.
"""

from __future__ import annotations

import os
import sys

import numpy as np


def train_digits_demo(out_dir: str = "runs/digits", epochs: int = 20, hidden: int = 64, lr: float = 3e-3,
                      seed: int = 0, progress: bool | str = "auto") -> dict:
    """Train a dropout MLP on digits (8x8, 10 classes) and write ``history.png``, ``history.csv`` and checkpoints.

    Returns ``{"history", "trainer", "test", "plot"}`` where ``test`` holds the held-out loss, accuracy,
    macro F1 and confusion matrix of the restored best weights.
    """
    from deepgrad import nn, optim
    from deepgrad.creation import manual_seed
    from deepgrad.data import DataLoader
    from deepgrad.data.datasets import load_digits

    from .callbacks import CSVLogger, EarlyStopping, ModelCheckpoint
    from .plots import plot_history
    from .trainer import Trainer

    manual_seed(seed)
    train_set, test_set = load_digits(test_size=0.25, seed=seed, flatten=True)
    train = DataLoader(train_set, batch_size=64, shuffle=True)
    test = DataLoader(test_set, batch_size=256)
    model = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Dropout(0.2), nn.Linear(hidden, hidden), nn.ReLU(),
                          nn.Dropout(0.2), nn.Linear(hidden, 10))
    opt = optim.Adam(model.parameters(), lr=lr)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    os.makedirs(out_dir, exist_ok=True)
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt, sched, metrics=["accuracy", "f1"], progress=progress,
                      callbacks=[EarlyStopping("val_loss", patience=5, restore_best_weights=True),
                                 ModelCheckpoint(out_dir, filename="best", monitor="val_loss", save_best_only=True),
                                 CSVLogger(os.path.join(out_dir, "history.csv"))])
    history = trainer.fit(train, test, epochs=epochs)
    plot = plot_history(history, os.path.join(out_dir, "history.png"),
                        title=f"digits MLP ({np.sum([p.numel() for p in model.parameters()])} parameters)")
    result = trainer.evaluate(test, metrics=["accuracy", "f1", "confusion_matrix"])
    return {"history": history, "trainer": trainer, "test": result, "plot": plot}


if __name__ == "__main__":
    out = train_digits_demo(sys.argv[1] if len(sys.argv) > 1 else "runs/digits", progress=True)
    print(f"test accuracy {out['test']['accuracy']:.4f}, macro F1 {out['test']['f1']:.4f}; plot: {out['plot']}")
    print(out["test"]["confusion_matrix"])
