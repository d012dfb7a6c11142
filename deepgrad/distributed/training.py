"""Trainer integration: :class:`DistributedCallback` makes a :class:`~deepgrad.train.Trainer` rank-aware.

>>> import deepgrad.distributed as dist
>>> from deepgrad import nn, optim
>>> from deepgrad.data import DataLoader
>>> from deepgrad.data.datasets import make_xor
>>> from deepgrad.train import Trainer
>>> dist.init_process_group("mpi")   # a world of one under plain python; K ranks under `deepgrad launch -n K`
>>> model = dist.DistributedDataParallel(nn.Linear(2, 2))
>>> train_set, val_loader = make_xor(16), DataLoader(make_xor(16, seed=1), batch_size=8)
>>> loader = DataLoader(train_set, batch_size=8, sampler=dist.DistributedSampler(train_set))
>>> loss_fn, optimizer = nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1)
>>> trainer = Trainer(model, loss_fn, optimizer, metrics=["accuracy"], log_dir="runs/a",
...                   callbacks=[DistributedCallback()])
>>> len(trainer.fit(loader, val_loader, epochs=5))   # epochs in the history, the same on every rank
5
>>> dist.destroy_process_group()

What it does on every rank: calls ``set_epoch`` on the loader's DistributedSampler at each epoch start;
completes the DDP gradient averaging after backward (parameters without gradient); reduces the epoch's
logs across ranks (the training loss and metrics exactly, from every rank's samples; other scalars,
e.g. ``val_*`` over a sharded validation loader, as the mean over ranks: exact for the equal shards of a
DistributedSampler). On ranks other than 0 it mutes the progress bar, checkpoint writers and history
loggers, so only rank 0 prints and writes files (plot on rank 0 too: ``if dist.is_main_process()``).

The reduction runs in ``on_epoch_logs`` when the trainer calls that hook (before the scheduler step and the
epoch-end callbacks), else in ``on_epoch_end`` ahead of the other callbacks, fixing the history's last row.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from ..train.callbacks import Callback, HistoryLogger, ModelCheckpoint
from ..train.progress import ProgressBar
from . import collectives
from .ddp import DistributedDataParallel
from .sampler import DistributedSampler

_RANK_ZERO_ONLY = (ProgressBar, ModelCheckpoint, HistoryLogger)


class _Muted(Callback):
    """Stands in for a rank-0-only callback on other ranks: no hooks, no state in checkpoints."""

    def __init__(self, inner: Callback):
        self.inner = inner
        self.order = getattr(inner, "order", 0)

    def set_trainer(self, trainer) -> None:
        self.trainer = trainer

    def close(self) -> None:
        pass


def all_reduce_logs(logs: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``logs`` whose float entries are averaged over the ranks (the same keys on every rank)."""
    out = dict(logs)
    if not collectives.is_initialized() or collectives.get_world_size() == 1:
        return out
    keys = sorted(k for k, v in logs.items() if isinstance(v, float))
    values = np.array([logs[k] for k in keys], dtype=np.float64)
    group = collectives._default_group()
    group.all_reduce(values, collectives.ReduceOp.AVG)
    out.update(zip(keys, values.tolist()))
    return out


def _sampler_of(loader):
    for s in (getattr(loader, "sampler", None), getattr(getattr(loader, "batch_sampler", None), "sampler", None)):
        if isinstance(s, DistributedSampler):
            return s
    return None


class DistributedCallback(Callback):
    """Make a Trainer work under data parallelism (see the module docstring). Put it in ``callbacks``."""

    order = -1000  # before everything that reads the logs

    def __init__(self):
        self._reduced = False

    def set_trainer(self, trainer) -> None:
        self.trainer = trainer
        if collectives.is_initialized() and collectives.get_rank() != 0:
            trainer.callbacks[:] = [_Muted(cb) if isinstance(cb, _RANK_ZERO_ONLY) else cb for cb in trainer.callbacks]

    def _ddp(self):
        model = self.trainer.model
        return model if isinstance(model, DistributedDataParallel) else None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        self._reduced = False
        sampler = _sampler_of(self.trainer._train_loader)
        if sampler is not None:
            sampler.set_epoch(epoch)

    def on_after_backward(self, batch: int, logs: dict[str, Any]) -> None:
        ddp = self._ddp()
        if ddp is not None:
            ddp.finish_gradient_synchronization()

    def _reduce(self, logs: dict[str, Any], state: dict | None) -> None:
        if not collectives.is_initialized() or collectives.get_world_size() == 1:
            return
        reduced = all_reduce_logs(logs)
        if state is not None:  # the sample-weighted training loss over all ranks
            sums = np.array([state["loss_sum"], state["count"]], dtype=np.float64)
            collectives._default_group().all_reduce(sums)
            if sums[1] > 0:
                reduced["loss"] = float(sums[0] / sums[1])
        for metric in self.trainer.metrics:  # exact: recompute from every rank's per-sample rows
            if metric.name not in logs:
                continue
            parts = collectives._default_group().all_gather_object(metric.state_dict())
            merged = copy.deepcopy(metric)
            keys = parts[0].keys()
            merged.load_state_dict({k: np.concatenate([p[k] for p in parts if k in p]) for k in keys})
            reduced[metric.name] = merged.compute()
        logs.update(reduced)
        self._reduced = True

    def on_epoch_logs(self, epoch: int, logs: dict[str, Any]) -> None:
        """Reduce in place, while the trainer's epoch sums are still there (the trainer's hook)."""
        self._reduce(logs, getattr(self.trainer, "_epoch_state", None))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self._reduced:
            self._reduced = False
            return
        self._reduce(logs, None)
        history = self.trainer.history.history
        for key, value in logs.items():
            if key in history and isinstance(value, (int, float)) and not isinstance(value, bool):
                history[key][-1] = float(value)
        self._reduced = False
