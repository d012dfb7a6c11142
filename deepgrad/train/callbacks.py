"""Callbacks: code that runs at fixed points of :meth:`Trainer.fit` (Keras-style hooks with ``logs`` dicts).

Hook order per batch: ``on_batch_begin`` -> forward, loss -> backward -> ``on_after_backward`` ->
clipping -> ``on_before_optimizer_step`` -> ``optimizer.step()`` -> ``on_batch_end``. Per epoch:
``on_epoch_begin`` ... ``on_epoch_end`` (after validation; ``logs`` hold ``loss``, metrics, ``val_*``,
``lr``). ``epoch`` and ``batch`` arguments are 0-based indices, as in Keras.

A callback that keeps state across epochs returns it from ``state_dict()`` so that checkpoints carry
it and a resumed run continues exactly (EarlyStopping's patience counter, ModelCheckpoint's best score).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

_HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_logs", "on_epoch_end", "on_batch_begin",
          "on_batch_end", "on_after_backward", "on_before_optimizer_step")


class Callback:
    """Base class: override the hooks you need. ``self.trainer`` is set when training starts.

    ``order`` sorts callbacks (lower runs first); checkpoint writers run last so that they save the
    state every other callback reached for the epoch.
    """

    order = 0
    trainer = None

    def set_trainer(self, trainer) -> None:
        self.trainer = trainer

    def on_train_begin(self, logs: dict[str, Any]) -> None: ...
    def on_train_end(self, logs: dict[str, Any]) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None: ...
    def on_epoch_logs(self, epoch: int, logs: dict[str, Any]) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None: ...
    def on_batch_begin(self, batch: int, logs: dict[str, Any]) -> None: ...
    def on_batch_end(self, batch: int, logs: dict[str, Any]) -> None: ...
    def on_after_backward(self, batch: int, logs: dict[str, Any]) -> None: ...
    def on_before_optimizer_step(self, batch: int, logs: dict[str, Any]) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        """State to carry in checkpoints (plain values and arrays)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: print(logs))``."""

    def __init__(self, **hooks: Callable):
        unknown = set(hooks) - set(_HOOKS)
        if unknown:
            raise TypeError(f"LambdaCallback: unknown hook(s) {sorted(unknown)}; known: {list(_HOOKS)}")
        for name, fn in hooks.items():
            setattr(self, name, fn)


def _resolve_mode(mode: str, monitor: str, owner: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    higher_is_better = ("acc", "f1", "precision", "recall", "auc")
    return "max" if any(word in monitor for word in higher_is_better) else "min"


def _monitored(logs: dict[str, Any], monitor: str, owner: str) -> float:
    if monitor not in logs:
        raise KeyError(f"{owner}: monitored value {monitor!r} is not in the epoch logs {sorted(logs)} "
                       f"(val_* values need a val_loader)")
    return float(logs[monitor])


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    With ``restore_best_weights`` the model ends training with the weights of its best epoch.

    >>> from deepgrad import nn, optim
    >>> from deepgrad.data import DataLoader
    >>> from deepgrad.data.datasets import make_xor
    >>> from deepgrad.train import Trainer
    >>> model, loader = nn.Linear(2, 2), DataLoader(make_xor(16), batch_size=8)
    >>> opt = optim.SGD(model.parameters(), lr=0.0)   # lr=0: the loss never improves after epoch 1
    >>> trainer = Trainer(model, nn.CrossEntropyLoss(), opt, progress=False,
    ...                   callbacks=[EarlyStopping("val_loss", patience=3, restore_best_weights=True)])
    >>> len(trainer.fit(loader, loader, epochs=20))   # epochs run: the best one, then 3 without improvement
    4
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0, mode: str = "auto",
                 restore_best_weights: bool = False, verbose: bool = False):
        self.monitor, self.patience, self.verbose = monitor, int(patience), verbose
        self.min_delta = abs(float(min_delta))
        self.mode = _resolve_mode(mode, monitor, "EarlyStopping")
        self.restore_best_weights = restore_best_weights
        self._reset()

    def _reset(self) -> None:
        self.wait = 0
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self.best_weights: dict[str, np.ndarray] | None = None

    def on_train_begin(self, logs):
        if self.trainer.epoch == 0:  # a fresh run; a resumed one keeps the loaded counters
            self._reset()

    def _improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, epoch, logs):
        value = _monitored(logs, self.monitor, "EarlyStopping")
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = {k: v.array.copy() for k, v in self.trainer.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.trainer.stop_training = True
            best_at = "-" if self.best_epoch is None else self.best_epoch + 1
            restored = (f"; the weights of epoch {best_at} are restored" if self.restore_best_weights
                        and self.best_weights is not None else "")
            self.trainer.stop_reason = (f"EarlyStopping: stopped after epoch {epoch + 1}: {self.monitor} did not "
                                        f"improve for {self.wait} epoch(s) (patience {self.patience}, min_delta "
                                        f"{self.min_delta:g}; best {self.best:.6g} at epoch {best_at}){restored}")
            if self.verbose:
                print(self.trainer.stop_reason)

    def on_train_end(self, logs):
        last = self.trainer.epoch - 1
        if self.restore_best_weights and self.best_weights is not None and self.best_epoch != last:
            self.trainer.model.load_state_dict(self.best_weights)
            if self.verbose:
                print(f"EarlyStopping: restored the weights of epoch {self.best_epoch + 1}")

    def state_dict(self):
        return {"wait": self.wait, "best": self.best, "best_epoch": self.best_epoch,
                "stopped_epoch": self.stopped_epoch, "best_weights": self.best_weights}


class ModelCheckpoint(Callback):
    """Save full training checkpoints (model, optimizer, scheduler, RNG, history) into ``dirpath``.

    Every ``every_n_epochs`` epochs it writes ``filename`` (formatted with ``epoch`` (1-based), ``step``
    and the epoch logs, e.g. ``"epoch{epoch:03d}-{val_loss:.3f}"``) plus ``.ckpt`` — or, with
    ``save_best_only``, only when ``monitor`` improved — and, with ``save_last``, ``last.ckpt``.
    ``filename=None`` writes only ``last.ckpt``.
    ``every_n_steps`` also refreshes ``last.ckpt`` mid-epoch. Every write is atomic.
    """

    order = 100

    def __init__(self, dirpath: str | os.PathLike, filename: str | None = "epoch{epoch:03d}",
                 monitor: str | None = None, mode: str = "auto", save_best_only: bool = False, save_last: bool = True,
                 every_n_epochs: int = 1, every_n_steps: int | None = None, verbose: bool = False):
        if save_best_only and monitor is None:
            raise ValueError("ModelCheckpoint: save_best_only=True needs a monitor (e.g. monitor='val_loss')")
        self.dirpath, self.filename, self.monitor = os.fspath(dirpath), filename, monitor
        self.mode = _resolve_mode(mode, monitor or "", "ModelCheckpoint")
        self.save_best_only, self.save_last, self.verbose = save_best_only, save_last, verbose
        self.every_n_epochs, self.every_n_steps = int(every_n_epochs), every_n_steps
        self.best_score = math.inf if self.mode == "min" else -math.inf
        self.best_model_path: str | None = None
        self.last_model_path: str | None = None

    def _save(self, path: str) -> None:
        self.trainer.save_checkpoint(path)
        if self.verbose:
            print(f"ModelCheckpoint: saved {path}")

    def on_batch_end(self, batch, logs):
        if self.every_n_steps and self.save_last and self.trainer.global_step % self.every_n_steps == 0:
            self.last_model_path = os.path.join(self.dirpath, "last.ckpt")
            self._save(self.last_model_path)

    def on_epoch_end(self, epoch, logs):
        if (epoch + 1) % self.every_n_epochs:
            return
        improved = False
        if self.monitor is not None:
            value = _monitored(logs, self.monitor, "ModelCheckpoint")
            improved = value < self.best_score if self.mode == "min" else value > self.best_score
            if improved:
                self.best_score = value
        if self.filename is not None and (improved or not self.save_best_only):
            name = self.filename.format(epoch=epoch + 1, step=self.trainer.global_step, **logs)
            path = os.path.join(self.dirpath, name + ".ckpt")
            if improved:
                self.best_model_path = path
            self._save(path)
        if self.save_last:
            self.last_model_path = os.path.join(self.dirpath, "last.ckpt")
            self._save(self.last_model_path)

    def state_dict(self):
        return {"best_score": self.best_score, "best_model_path": self.best_model_path,
                "last_model_path": self.last_model_path}


class HistoryLogger(Callback):
    """Rewrite the whole history to ``path`` after every epoch (CSV or JSON by extension), atomically.

    The history is part of each checkpoint, so after a resume the file again holds every epoch.
    """

    def __init__(self, path: str | os.PathLike, format: str = "auto"):  # noqa: A002 - mirrors file formats
        self.path = os.fspath(path)
        if format == "auto":
            format = "json" if self.path.endswith(".json") else "csv"
        if format not in ("csv", "json"):
            raise ValueError(f"HistoryLogger: format must be 'csv', 'json' or 'auto', got {format!r}")
        self.format = format

    def on_epoch_end(self, epoch, logs):
        history = self.trainer.epoch_history
        history.to_csv(self.path) if self.format == "csv" else history.to_json(self.path)


def CSVLogger(path: str | os.PathLike) -> HistoryLogger:  # noqa: N802 - a class-like factory (Keras name)
    """A :class:`HistoryLogger` writing CSV."""
    return HistoryLogger(path, "csv")


def JSONLogger(path: str | os.PathLike) -> HistoryLogger:  # noqa: N802
    """A :class:`HistoryLogger` writing JSON."""
    return HistoryLogger(path, "json")
