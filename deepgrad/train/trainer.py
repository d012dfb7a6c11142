"""Trainer: supervised training on the shared loop (:mod:`deepgrad.train.loop`): a model, a loss and an
optimizer over train/validation loaders, with metrics, callbacks, clipping, scheduling, checkpoints and exact
resume.

>>> from deepgrad import nn, optim
>>> from deepgrad.data import DataLoader
>>> from deepgrad.data.datasets import make_xor
>>> from deepgrad.train import ModelCheckpoint
>>> train_loader = DataLoader(make_xor(16, seed=0), batch_size=8, shuffle=True)
>>> val_loader = DataLoader(make_xor(16, seed=1), batch_size=8)
>>> model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
>>> trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), 1e-3), metrics=["accuracy"],
...                   callbacks=[ModelCheckpoint("runs/a", monitor="val_loss")], progress=False)
>>> history = trainer.fit(train_loader, val_loader, epochs=1)
>>> history.history["val_accuracy"][-1]
0.375

Exact resume: a checkpoint (see :meth:`save_checkpoint`) holds the model, optimizer, scheduler, the
trainer's counters and partial-epoch sums, every callback's state, the history, deepgrad's global
generator, NumPy's and Python's legacy global generators and the training loader's position.
``fit(..., resume_from=path)`` restores all of it, so the resumed run computes the same floating-point
operations in the same order as an uninterrupted one and ends with bit-identical weights.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..autograd import no_grad
from ..backend import Device, array_module
from ..creation import from_numpy
from ..nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_
from ..tensor import Tensor
from .callbacks import Callback
from .checkpoint import CheckpointError, check_training_state, load_checkpoint
from .history import History
from .loop import NonFiniteLossError, TrainingLoop
from .metrics import Metric, get_metric

__all__ = ["Trainer", "NonFiniteLossError"]


def _as_tensor(x, device: Device | None):
    if isinstance(x, np.ndarray):
        x = from_numpy(x)
    if device is not None and isinstance(x, Tensor) and x.device != device:
        x = x.to(device)
    return x


def _count(x) -> int | None:
    shape = getattr(x, "shape", None)
    return int(shape[0]) if shape else None


class Trainer(TrainingLoop):
    """Fit ``model`` with ``loss_fn`` and ``optimizer`` over loaders that yield ``(inputs, targets)`` batches.

    ``metrics``: names (``"accuracy"``, ``"top5_accuracy"``, ``"mse"``, ``"mae"``, ``"f1"``, ...) or
    :class:`Metric` objects, computed on the training batches and on validation (``val_`` prefix).
    ``scheduler`` steps at the cadence it declares (its ``interval``: once per epoch, or per batch for
    OneCycleLR/CyclicLR; ``scheduler_interval`` overrides); one that ``needs_metric`` (ReduceLROnPlateau)
    receives ``scheduler_monitor`` (``val_loss``, else ``loss``).
    ``grad_clip_norm`` / ``grad_clip_value`` clip gradients before each optimizer step.
    ``progress``: True (a live bar on a terminal, plain per-epoch lines elsewhere), False, or "auto" (the
    default: progress only when stderr is a terminal).
    ``on_nonfinite``: a NaN/infinite loss, or a finite loss whose gradients are not finite (checked after
    ``backward()`` and the ``on_after_backward`` callbacks, before clipping and the optimizer step), stops
    training before the optimizer step: "raise" (default) with :class:`NonFiniteLossError` or
    :class:`~deepgrad.train.guards.NonFiniteGradientError` naming the step and the first parameter at fault;
    "stop" with a warning, returning the history of the finished epochs. Either way the weights are those of
    the last good step and no checkpoint is written after the last good one.
    """

    def __init__(self, model, loss_fn: Callable | None, optimizer, scheduler=None,
                 metrics: Iterable[str | Metric] = (), callbacks: Iterable[Callback] = (), device=None,
                 grad_clip_norm: float | None = None, grad_clip_value: float | None = None,
                 progress: bool | str = "auto", log_dir: str | None = None,
                 scheduler_interval: str = "auto", scheduler_monitor: str | None = None,
                 on_nonfinite: str = "raise"):
        if scheduler_interval not in ("auto", "epoch", "step"):
            raise ValueError(f"Trainer: scheduler_interval must be 'auto', 'epoch' or 'step', "
                             f"got {scheduler_interval!r}")
        self.model, self.loss_fn, self.optimizer, self.scheduler = model, loss_fn, optimizer, scheduler
        self.metric_specs = list(metrics)
        self.metrics = [get_metric(m) for m in self.metric_specs]
        self.device = Device(device) if device is not None else None
        if self.device is not None:
            model.to(self.device)
        self.grad_clip_norm, self.grad_clip_value = grad_clip_norm, grad_clip_value
        if scheduler_interval == "auto":
            scheduler_interval = getattr(scheduler, "interval", "epoch")
            if scheduler_interval not in ("epoch", "step"):
                raise ValueError(f"Trainer: the scheduler's interval must be 'epoch' or 'step', got "
                                 f"{scheduler_interval!r} ({type(scheduler).__name__})")
        self.scheduler_interval, self.scheduler_monitor = scheduler_interval, scheduler_monitor
        self._named_trained: list[tuple[str, Any]] | None = None
        super().__init__(callbacks, progress, log_dir, on_nonfinite)

    @property
    def history(self) -> History:
        """The per-epoch logs (:class:`History`): ``loss``, metrics, ``val_*``, ``lr``."""
        return self.epoch_history

    @history.setter
    def history(self, value: History) -> None:
        self.epoch_history = value

    # ------------------------------------------------------------------ helpers
    def _split_batch(self, batch, where: str, has_targets: bool = True):
        """(inputs tuple, targets or None) from a batch, checked for matching sample counts."""
        if isinstance(batch, dict):
            raise TypeError(f"Trainer: {where} is a dict; loaders must yield (inputs, targets) tuples")
        if isinstance(batch, (tuple, list)):
            if len(batch) == 0:
                raise ValueError(f"Trainer: {where} is empty")
            if has_targets and len(batch) > 1:
                inputs, target = tuple(batch[:-1]), batch[-1]
            else:
                inputs, target = tuple(batch), None
        else:
            inputs, target = (batch,), None
        inputs = tuple(_as_tensor(x, self.device) for x in inputs)
        target = _as_tensor(target, self.device)
        counts = [_count(x) for x in (*inputs, target) if x is not None]
        if len(set(c for c in counts if c is not None)) > 1:
            what = ", ".join(f"{c}" for c in counts)
            raise ValueError(f"Trainer: {where} has mismatched sample counts (first dimension of inputs/targets: "
                             f"{what}); the dataset or collate function yields inputs and labels that do not "
                             f"pair up")
        return inputs, target

    def _current_lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _metric_logs(self, metrics: list[Metric], prefix: str = "", scalars_only: bool = True) -> dict[str, Any]:
        logs = {}
        for m in metrics:
            value = m.compute()
            if scalars_only and not isinstance(value, float):
                continue
            logs[prefix + m.name] = value
        return logs

    # ------------------------------------------------------------------ the supervised step
    def _train_mode(self) -> None:
        self.model.train()

    def _begin_fit(self) -> None:
        self._named_trained = None  # the optimizer's parameters may have changed since the last fit

    def _begin_epoch(self) -> None:
        for m in self.metrics:
            m.reset()

    def training_step(self, batch, batch_idx: int, epochs: int) -> dict[str, Any] | None:
        """Forward, loss, backward, guards, clipping, optimizer (and step-interval scheduler) step."""
        where = f"training batch {batch_idx} of epoch {self.epoch + 1}"
        inputs, target = self._split_batch(batch, where)
        if target is None:
            raise ValueError(f"Trainer: {where} has no targets; training loaders must yield (inputs, targets)")
        self._call("on_batch_begin", batch_idx, {"size": _count(target)})
        output = self.model(*inputs)
        loss = self.loss_fn(output, target)
        loss_value = float(loss.item())
        if not self._loss_finite(loss_value, batch_idx, epochs):
            return None
        self.optimizer.zero_grad()
        loss.backward()
        batch_logs = {"loss": loss_value, "size": _count(target)}
        self._call("on_after_backward", batch_idx, batch_logs)
        if not self._gradients_finite(self._named_trained_parameters(), loss_value,
                                      f"Trainer (epoch {self.epoch + 1}/{epochs}, batch {batch_idx})"):
            return None
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        if self.grad_clip_value is not None:
            clip_grad_value_(params, self.grad_clip_value)
        if self.grad_clip_norm is not None:
            batch_logs["grad_norm"] = float(clip_grad_norm_(params, self.grad_clip_norm).item())
        self._call("on_before_optimizer_step", batch_idx, batch_logs)
        self.optimizer.step()
        if self.scheduler is not None and self.scheduler_interval == "step":
            self.scheduler.step()
        self._accumulate_loss(loss_value, _count(target) or 1)
        for m in self.metrics:
            m.update(output.array, target.array)
        return batch_logs

    def _epoch_logs(self) -> dict[str, Any]:
        return {**super()._epoch_logs(), **self._metric_logs(self.metrics)}

    def _validate(self, val_loader) -> dict[str, Any]:
        return self.evaluate(val_loader)

    def _end_epoch(self, logs: dict[str, Any]) -> None:
        logs["lr"] = self._current_lr()  # the lr this epoch trained with (before the epoch's scheduler step)
        if self.scheduler is None or self.scheduler_interval != "epoch":
            return
        if getattr(self.scheduler, "needs_metric", False):
            monitor = self.scheduler_monitor or ("val_loss" if "val_loss" in logs else "loss")
            if monitor not in logs:
                raise KeyError(f"Trainer: {type(self.scheduler).__name__} monitors {monitor!r}, not in the epoch "
                               f"logs {sorted(logs)}")
            self.scheduler.step(logs[monitor])
        else:
            self.scheduler.step()

    def _named_trained_parameters(self) -> list[tuple[str, Any]]:
        """(name, parameter) for every parameter the optimizer steps, named as in ``model.named_parameters()``."""
        if self._named_trained is None:
            names = {id(p): name for name, p in self.model.named_parameters()}
            self._named_trained = [(names.get(id(p), f"param_groups[{g}][{i}]"), p)
                                   for g, group in enumerate(self.optimizer.param_groups)
                                   for i, p in enumerate(group["params"])]
        return self._named_trained

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, loader, metrics: Iterable[str | Metric] | None = None) -> dict[str, Any]:
        """Loss and metrics over ``loader`` in eval mode without gradients (non-scalar metrics such as a
        confusion matrix are returned too)."""
        metrics = [get_metric(m) for m in self.metric_specs] if metrics is None else [get_metric(m) for m in metrics]
        for m in metrics:
            m.reset()
        was_training = self.model.training
        self.model.eval()
        loss_sum, count = 0.0, 0
        try:
            with no_grad():
                for batch_idx, batch in enumerate(loader):
                    inputs, target = self._split_batch(batch, f"evaluation batch {batch_idx}")
                    output = self.model(*inputs)
                    if target is None:
                        raise ValueError(f"Trainer.evaluate: batch {batch_idx} has no targets")
                    if self.loss_fn is not None:
                        n = _count(target) or 1
                        loss_sum += float(self.loss_fn(output, target).item()) * n
                        count += n
                    for m in metrics:
                        m.update(output.array, target.array)
        finally:
            self.model.train(was_training)
        logs: dict[str, Any] = {"loss": loss_sum / count} if count else {}
        logs.update(self._metric_logs(metrics, scalars_only=False))
        return logs

    def predict(self, loader, has_targets: bool = True) -> np.ndarray:
        """The model's outputs over ``loader`` (eval mode, no gradients), concatenated on the host.

        With ``has_targets`` (default) the last element of a tuple batch of two or more is the target and is
        ignored; pass ``has_targets=False`` for a loader of multi-input batches without targets.
        """
        was_training = self.model.training
        self.model.eval()
        outs = []
        try:
            with no_grad():
                for batch_idx, batch in enumerate(loader):
                    if has_targets and isinstance(batch, (tuple, list)) and len(batch) > 1:
                        batch = batch[:-1]  # drop the targets
                    inputs, _ = self._split_batch(batch, f"prediction batch {batch_idx}", has_targets=False)
                    data = self.model(*inputs).array
                    outs.append(data if array_module(data) is np else data.get())
        finally:
            self.model.train(was_training)
        if not outs:
            raise ValueError("Trainer.predict: the loader yielded no batches")
        return np.concatenate(outs)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything a checkpoint holds (arrays and plain values)."""
        return {
            "model_class": type(self.model).__name__,
            "model": {k: v.array for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "trainer": {"epoch": self.epoch, "global_step": self.global_step, "epoch_state": dict(self._epoch_state),
                        "metrics": [m.state_dict() for m in self.metrics]},
            **self._loop_state(),
        }

    def load_checkpoint(self, path: str, train_loader=None) -> dict[str, Any]:
        """Restore a checkpoint written by :meth:`save_checkpoint`; the next ``fit`` continues from it.

        A file that is not such a checkpoint, or whose state does not fit this trainer, raises
        :class:`CheckpointError` naming the file and what is wrong; stale temporaries that a killed save
        left beside it are removed.
        """
        state = load_checkpoint(path)
        check_training_state(state, path)
        try:
            self.model.load_state_dict(state["model"])
        except (RuntimeError, KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"Trainer: checkpoint {path!r} (saved from a {state.get('model_class')}) does not "
                                  f"fit this {type(self.model).__name__}: {e}") from e
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError, TypeError, IndexError) as e:
            raise CheckpointError(f"Trainer: the optimizer state in {path!r} does not fit this optimizer: {e}") from e
        if self.scheduler is not None and state["scheduler"] is None:
            raise CheckpointError(f"Trainer: {path!r} holds no scheduler state but this trainer has a scheduler")
        t = state["trainer"]
        if len(t["metrics"]) != len(self.metrics):
            raise CheckpointError(f"Trainer: {path!r} was saved with {len(t['metrics'])} metric(s), this trainer "
                                  f"has {len(self.metrics)}")
        try:
            if self.scheduler is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            for m, s in zip(self.metrics, t["metrics"]):
                m.load_state_dict(s)
            self._load_loop_state(state)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            raise CheckpointError(f"Trainer: {path!r} has the wrong structure for a training checkpoint "
                                  f"({type(e).__name__}: {e}); use a file written by Trainer.save_checkpoint "
                                  f"(e.g. last.ckpt of a run)") from e
        if train_loader is not None:
            self._train_loader = train_loader
        return state

    resume = load_checkpoint
