"""Trainer: the epoch loop over train/validation loaders, with metrics, callbacks, clipping, scheduling,
checkpoints and exact resume.

>>> trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), 1e-3), metrics=["accuracy"],
...                   callbacks=[ModelCheckpoint("runs/a", monitor="val_loss")])
>>> history = trainer.fit(train_loader, val_loader, epochs=10)
>>> history.history["val_accuracy"][-1]

Exact resume: a checkpoint (see :meth:`save_checkpoint`) holds the model, optimizer, scheduler, the
trainer's counters and partial-epoch sums, every callback's state, the history, deepgrad's global
generator, NumPy's and Python's legacy global generators and the training loader's position.
``fit(..., resume_from=path)`` restores all of it, so the resumed run computes the same floating-point
operations in the same order as an uninterrupted one and ends with bit-identical weights.
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .. import creation
from ..autograd import no_grad
from ..backend import Device, array_module
from ..optim import clip_grad_norm_, clip_grad_value_
from ..tensor import Tensor
from .callbacks import Callback
from .checkpoint import CheckpointError, check_training_state, load_checkpoint, save_checkpoint
from .guards import NonFiniteGradientError, check_finite_gradients
from .history import History
from .metrics import Metric, get_metric
from .progress import ProgressBar, progress_enabled

_PER_BATCH_SCHEDULERS = ("OneCycleLR", "CyclicLR")


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


def _as_tensor(x, device: Device | None):
    if isinstance(x, np.ndarray):
        x = Tensor._make(x, None)
    if device is not None and isinstance(x, Tensor) and x.device != device:
        x = x.to(device)
    return x


def _count(x) -> int | None:
    shape = getattr(x, "shape", None)
    return int(shape[0]) if shape else None


class Trainer:
    """Fit ``model`` with ``loss_fn`` and ``optimizer`` over loaders that yield ``(inputs, targets)`` batches.

    ``metrics``: names (``"accuracy"``, ``"top5_accuracy"``, ``"mse"``, ``"mae"``, ``"f1"``, ...) or
    :class:`Metric` objects, computed on the training batches and on validation (``val_`` prefix).
    ``scheduler`` steps once per epoch, or per batch for OneCycleLR/CyclicLR (``scheduler_interval``
    overrides); ReduceLROnPlateau receives ``scheduler_monitor`` (``val_loss``, else ``loss``).
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
        if on_nonfinite not in ("raise", "stop"):
            raise ValueError(f"Trainer: on_nonfinite must be 'raise' or 'stop', got {on_nonfinite!r}")
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
            scheduler_interval = "step" if type(scheduler).__name__ in _PER_BATCH_SCHEDULERS else "epoch"
        self.scheduler_interval, self.scheduler_monitor = scheduler_interval, scheduler_monitor
        self.on_nonfinite = on_nonfinite
        callbacks = list(callbacks)
        if progress_enabled(progress) and not any(isinstance(c, ProgressBar) for c in callbacks):
            callbacks.append(ProgressBar())
        if log_dir is not None:
            from .callbacks import HistoryLogger, ModelCheckpoint

            callbacks += [HistoryLogger(f"{log_dir}/history.csv"), ModelCheckpoint(log_dir, filename=None)]
        # stable sort: checkpoint writers (order 100) run after the callbacks whose state they save
        self.callbacks = sorted(callbacks, key=lambda c: getattr(c, "order", 0))
        for cb in self.callbacks:
            if hasattr(cb, "set_trainer"):
                cb.set_trainer(self)
        self.history = History()
        self.epoch = 0            # epochs completed
        self.global_step = 0      # optimizer steps taken
        self.stop_training = False
        self.stop_reason: str | None = None
        self._train_loader = None
        self._epoch_state = self._fresh_epoch_state()
        self._pending_loader_state = None
        self._loader_generator_at_epoch_start = None
        self._named_trained: list[tuple[str, Any]] | None = None

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _fresh_epoch_state() -> dict[str, Any]:
        return {"batches_done": 0, "loss_sum": 0.0, "count": 0}

    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(*args)

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

    def running_logs(self) -> dict[str, float]:
        """The loss so far in the current epoch (what the progress bar shows)."""
        s = self._epoch_state
        return {"loss": s["loss_sum"] / s["count"]} if s["count"] else {}

    def _metric_logs(self, metrics: list[Metric], prefix: str = "", scalars_only: bool = True) -> dict[str, Any]:
        logs = {}
        for m in metrics:
            value = m.compute()
            if scalars_only and not isinstance(value, float):
                continue
            logs[prefix + m.name] = value
        return logs

    # ------------------------------------------------------------------ the loop
    def fit(self, train_loader, val_loader=None, epochs: int = 1, resume_from: str | None = None) -> History:
        """Train until ``epochs`` epochs have completed in total (a resumed run takes the same ``epochs``).

        Returns the :class:`History` (one entry per epoch: ``loss``, metrics, ``val_*``, ``lr``).
        """
        self._train_loader = train_loader
        self._named_trained = None  # the optimizer's parameters may have changed since the last fit
        if resume_from is not None:
            self.load_checkpoint(resume_from, train_loader)
        if self._pending_loader_state is None:
            # Not resuming: an epoch that an exception interrupted earlier is restarted (its finished steps stay
            # applied). Exact continuation is what checkpoints are for.
            self._epoch_state = self._fresh_epoch_state()
        self.stop_training, self.stop_reason = False, None
        self.model.train()
        self._call("on_train_begin", {"epochs": epochs, "start_epoch": self.epoch})
        try:
            while self.epoch < epochs and not self.stop_training:
                logs = self._train_epoch(train_loader, epochs)
                if logs is None:  # stopped on a non-finite loss
                    break
                if val_loader is not None:
                    logs.update({f"val_{k}": v for k, v in self.evaluate(val_loader).items()
                                 if isinstance(v, float)})
                # The epoch's numbers are final here; a callback may still combine them (e.g. across
                # distributed ranks) before the scheduler and the other callbacks read them.
                self._call("on_epoch_logs", self.epoch, logs)
                logs["lr"] = self._current_lr()  # the lr this epoch trained with (before the epoch's scheduler step)
                self._step_scheduler_epoch(logs)
                self.epoch += 1
                self._epoch_state = self._fresh_epoch_state()
                self.history.append(self.epoch, logs)
                self._call("on_epoch_end", self.epoch - 1, logs)
        finally:
            self.model.train()
            for cb in self.callbacks:  # an exception must not leave a half-drawn bar behind
                if isinstance(cb, ProgressBar):
                    cb.close()
        self._call("on_train_end", {"epochs_completed": self.epoch, "stop_reason": self.stop_reason})
        return self.history

    def _train_epoch(self, loader, epochs: int) -> dict[str, Any] | None:
        state = self._epoch_state
        start = state["batches_done"]
        if start == 0:
            for m in self.metrics:
                m.reset()
        try:
            batches = len(loader)
        except TypeError:
            batches = None
        self.model.train()
        self._call("on_epoch_begin", self.epoch, {"batches": batches, "start_batch": start})
        iterator = self._resumed_iterator(loader, start)
        for batch_idx, batch in enumerate(iterator, start):
            where = f"training batch {batch_idx} of epoch {self.epoch + 1}"
            inputs, target = self._split_batch(batch, where)
            if target is None:
                raise ValueError(f"Trainer: {where} has no targets; training loaders must yield (inputs, targets)")
            self._call("on_batch_begin", batch_idx, {"size": _count(target)})
            output = self.model(*inputs)
            loss = self.loss_fn(output, target)
            loss_value = float(loss.item())
            if not math.isfinite(loss_value):
                return self._non_finite(loss_value, batch_idx, epochs)
            self.optimizer.zero_grad()
            loss.backward()
            batch_logs = {"loss": loss_value, "size": _count(target)}
            self._call("on_after_backward", batch_idx, batch_logs)
            if not self._gradients_finite(loss_value, batch_idx, epochs):
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
            n = _count(target) or 1
            state["loss_sum"] += loss_value * n  # a sample-weighted mean: exact even with a short last batch
            state["count"] += n
            for m in self.metrics:
                m.update(output.array, target.array)
            state["batches_done"] = batch_idx + 1
            self.global_step += 1
            self._call("on_batch_end", batch_idx, batch_logs)
        if state["count"] == 0:
            raise ValueError(f"Trainer: the training loader yielded no batches in epoch {self.epoch + 1}")
        return {"loss": state["loss_sum"] / state["count"], **self._metric_logs(self.metrics)}

    def _non_finite(self, value: float, batch_idx: int, epochs: int) -> None:
        msg = (f"Trainer: the training loss is {value} at epoch {self.epoch + 1}/{epochs}, batch {batch_idx} "
               f"(global step {self.global_step + 1}); stopped before the optimizer step, so the weights are "
               f"those after step {self.global_step} and no checkpoint was written after the last good one. "
               f"Lower the learning rate, clip gradients (grad_clip_norm) or check the data.")
        self.stop_training, self.stop_reason = True, msg
        if self.on_nonfinite == "raise":
            raise NonFiniteLossError(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
        return None

    def _named_trained_parameters(self) -> list[tuple[str, Any]]:
        """(name, parameter) for every parameter the optimizer steps, named as in ``model.named_parameters()``."""
        if self._named_trained is None:
            names = {id(p): name for name, p in self.model.named_parameters()}
            self._named_trained = [(names.get(id(p), f"param_groups[{g}][{i}]"), p)
                                   for g, group in enumerate(self.optimizer.param_groups)
                                   for i, p in enumerate(group["params"])]
        return self._named_trained

    def _gradients_finite(self, loss_value: float, batch_idx: int, epochs: int) -> bool:
        where = f"Trainer (epoch {self.epoch + 1}/{epochs}, batch {batch_idx})"
        try:
            check_finite_gradients(self._named_trained_parameters(), self.global_step + 1, where, loss_value)
        except NonFiniteGradientError as e:
            msg = f"{e} No checkpoint was written after the last good one."
            self.stop_training, self.stop_reason = True, msg
            if self.on_nonfinite == "raise":
                raise NonFiniteGradientError(msg) from None
            warnings.warn(msg, RuntimeWarning, stacklevel=3)
            return False
        return True

    def _resumed_iterator(self, loader, start: int):
        pending, self._pending_loader_state = self._pending_loader_state, None
        if pending and "loader" in pending and hasattr(loader, "load_state_dict"):
            loader.load_state_dict(pending["loader"])  # the next iter() continues the saved epoch
            return iter(loader)
        generator = getattr(loader, "generator", None)
        if isinstance(generator, np.random.Generator):
            if pending and pending.get("generator") is not None:
                generator.bit_generator.state = pending["generator"]
            self._loader_generator_at_epoch_start = generator.bit_generator.state
        it = iter(loader)
        for _ in range(start):  # a loader without load_state_dict(): replay the epoch up to where it stopped
            next(it)
        return it

    def _loader_state(self) -> dict[str, Any]:
        loader = self._train_loader
        if loader is None:
            return {}
        if hasattr(loader, "state_dict"):
            return {"loader": loader.state_dict()}
        generator = getattr(loader, "generator", None)
        if not isinstance(generator, np.random.Generator):
            return {}
        if self._epoch_state["batches_done"] == 0:
            return {"generator": generator.bit_generator.state}
        return {"generator": self._loader_generator_at_epoch_start}

    def _step_scheduler_epoch(self, logs: dict[str, Any]) -> None:
        if self.scheduler is None or self.scheduler_interval != "epoch":
            return
        if type(self.scheduler).__name__ == "ReduceLROnPlateau":
            monitor = self.scheduler_monitor or ("val_loss" if "val_loss" in logs else "loss")
            if monitor not in logs:
                raise KeyError(f"Trainer: ReduceLROnPlateau monitors {monitor!r}, not in the epoch logs {sorted(logs)}")
            self.scheduler.step(logs[monitor])
        else:
            self.scheduler.step()

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
            "history": self.history.state_dict(),
            "callbacks": {key: cb.state_dict() for key, cb in self._keyed_callbacks() if hasattr(cb, "state_dict")},
            "rng": {"deepgrad": creation.get_rng_state(), "numpy": np.random.get_state(),
                    "python": random.getstate()},
            "data": self._loader_state(),
        }

    def _keyed_callbacks(self) -> list[tuple[str, Callback]]:
        """("EarlyStopping:0", callback) ...: keyed by class and rank among its class, so that a resumed run
        with or without a progress bar (or another stateless callback) restores each callback's own state."""
        seen: dict[str, int] = {}
        keyed = []
        for cb in self.callbacks:
            name = type(cb).__name__
            keyed.append((f"{name}:{seen.get(name, 0)}", cb))
            seen[name] = seen.get(name, 0) + 1
        return keyed

    def save_checkpoint(self, path: str) -> None:
        """Write the full training state to ``path`` atomically (safetensors + JSON metadata, no pickle)."""
        save_checkpoint(path, self.state_dict())

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
            self.epoch, self.global_step = int(t["epoch"]), int(t["global_step"])
            self._epoch_state = dict(t["epoch_state"])
            for m, s in zip(self.metrics, t["metrics"]):
                m.load_state_dict(s)
            self.history.load_state_dict(state["history"])
            saved = state["callbacks"]
            for i, (key, cb) in enumerate(self._keyed_callbacks()):
                old_key = f"{i}:{type(cb).__name__}"  # checkpoints written before callbacks were keyed by class
                own = saved.get(key, saved.get(old_key))
                if own is not None and hasattr(cb, "load_state_dict"):
                    cb.load_state_dict(own)
            rng = state["rng"]
            creation.set_rng_state(rng["deepgrad"])
            np.random.set_state(rng["numpy"])
            random.setstate(rng["python"])
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            raise CheckpointError(f"Trainer: {path!r} has the wrong structure for a training checkpoint "
                                  f"({type(e).__name__}: {e}); use a file written by Trainer.save_checkpoint "
                                  f"(e.g. last.ckpt of a run)") from e
        self._pending_loader_state = state["data"]
        if train_loader is not None:
            self._train_loader = train_loader
        return state

    resume = load_checkpoint
