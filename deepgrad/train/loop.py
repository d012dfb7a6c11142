"""The one training loop in deepgrad: epochs of batches, callbacks at fixed points, progress, the per-epoch
:class:`History`, the guards against a non-finite loss or gradient, stop requests and the loader position
that exact resume needs.

Two kinds of step run on it: :class:`~deepgrad.train.Trainer` (a model, a loss, an optimizer: the
supervised step) and :class:`deepgrad.gan.GANTrainer` (a discriminator and a generator step). The model
zoo's ``fit_classifier`` and the guide's ``fit`` are Trainer runs. A new kind of training writes one
method, :meth:`TrainingLoop.training_step`, and gets the rest:

>>> class MyTrainer(TrainingLoop):
...     def training_step(self, batch, batch_idx, epochs):
...         loss = ...                       # forward
...         if not self._loss_finite(loss.item(), batch_idx, epochs):
...             return None                  # on_nonfinite="stop": training ends here, before any update
...         ...                              # backward, self._gradients_finite(...), optimizer step
...         return {"loss": loss.item()}
"""

from __future__ import annotations

import contextlib
import math
import random
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np

from .. import creation
from .callbacks import Callback, HistoryLogger, ModelCheckpoint
from .checkpoint import save_checkpoint
from .guards import NonFiniteGradientError, check_finite_gradients
from .history import History
from .progress import ProgressBar, progress_enabled


class NonFiniteLossError(RuntimeError, FloatingPointError):
    """The training loss became NaN or infinite (a ``FloatingPointError`` too, like the gradient guard's)."""


def _sorted_callbacks(callbacks: Iterable[Callback]) -> list[Callback]:
    # stable sort: checkpoint writers (order 100) run after the callbacks whose state they save
    return sorted(callbacks, key=lambda c: getattr(c, "order", 0))


class TrainingLoop:
    """The loop shared by every trainer (see the module docstring).

    ``callbacks`` run at the hooks of :mod:`deepgrad.train.callbacks`. ``progress``: True (a live bar on a
    terminal, plain per-epoch lines elsewhere), False, or "auto" (progress only when stderr is a terminal).
    ``log_dir`` adds a history CSV and a ``last.ckpt`` checkpoint there after every epoch.
    ``on_nonfinite``: what a NaN/infinite loss, or a finite loss with non-finite gradients, does: "raise"
    (:class:`NonFiniteLossError` / :class:`~deepgrad.train.guards.NonFiniteGradientError`) or "stop" (a
    warning, and ``fit`` returns the history of the finished epochs); either way before the optimizer step,
    so the weights are those of the last good step.
    """

    progress_unit = "batch"
    nonfinite_hint = "Lower the learning rate, clip gradients (grad_clip_norm) or check the data."

    def __init__(self, callbacks: Iterable[Callback] = (), progress: bool | str = "auto", log_dir: str | None = None,
                 on_nonfinite: str = "raise"):
        if on_nonfinite not in ("raise", "stop"):
            raise ValueError(f"{type(self).__name__}: on_nonfinite must be 'raise' or 'stop', got {on_nonfinite!r}")
        self.on_nonfinite = on_nonfinite
        self.epoch_history = History()
        self.epoch = 0            # epochs completed
        self.global_step = 0      # training steps taken
        self.stop_training = False
        self.stop_reason: str | None = None
        self._train_loader = None
        self._epoch_state = self._fresh_epoch_state()
        self._pending_loader_state = None
        self._loader_generator_at_epoch_start = None
        callbacks = list(callbacks)
        if progress_enabled(progress) and not any(isinstance(c, ProgressBar) for c in callbacks):
            callbacks.append(ProgressBar())
        if log_dir is not None:
            callbacks += [HistoryLogger(f"{log_dir}/history.csv"), ModelCheckpoint(log_dir, filename=None)]
        self.callbacks = _sorted_callbacks(callbacks)
        for cb in self.callbacks:
            if hasattr(cb, "set_trainer"):
                cb.set_trainer(self)

    # ------------------------------------------------------------------ what a subclass provides
    def training_step(self, batch, batch_idx: int, epochs: int) -> dict[str, Any] | None:
        """One training step on ``batch``; returns its logs, or ``None`` when a guard stopped training."""
        raise NotImplementedError(f"{type(self).__name__} must define training_step(batch, batch_idx, epochs)")

    def _train_mode(self) -> None:
        """Put the trained modules in training mode."""

    def _begin_fit(self) -> None:
        """Called at the start of every ``fit``, before a checkpoint is restored."""

    def _begin_epoch(self) -> None:
        """Called when an epoch starts from its first batch (not when a resumed run continues one)."""

    def _epoch_logs(self) -> dict[str, Any]:
        """The finished epoch's training logs (default: the sample-weighted mean loss)."""
        s = self._epoch_state
        return {"loss": s["loss_sum"] / s["count"]}

    def _validate(self, val_loader) -> dict[str, Any]:
        """``val_*`` logs for the epoch (default: none)."""
        return {}

    def _end_epoch(self, logs: dict[str, Any]) -> None:
        """The epoch's numbers are final and reduced: add to them, step epoch schedulers (default: nothing)."""

    def running_logs(self) -> dict[str, float]:
        """The loss so far in the current epoch (what the progress bar shows)."""
        s = self._epoch_state
        return {"loss": s["loss_sum"] / s["count"]} if s.get("count") else {}

    def progress_label(self, epoch: int, epochs: int) -> str:
        """What the progress bar and the epoch summary call epoch ``epoch`` (1-based) of ``epochs``."""
        return f"Epoch {epoch}/{epochs}"

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _fresh_epoch_state() -> dict[str, Any]:
        return {"batches_done": 0, "loss_sum": 0.0, "count": 0}

    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(*args)

    @contextlib.contextmanager
    def _extra_callbacks(self, extra: list[Callback]):
        """Run with ``extra`` callbacks added (a fit's own: its progress bar, a per-step function)."""
        if not extra:
            yield
            return
        kept = self.callbacks
        for cb in extra:
            cb.set_trainer(self)
        self.callbacks = _sorted_callbacks(kept + extra)
        try:
            yield
        finally:
            self.callbacks = kept

    def _accumulate_loss(self, loss_value: float, n: int) -> None:
        """Add a batch to the epoch's sample-weighted mean loss (exact even with a short last batch)."""
        self._epoch_state["loss_sum"] += loss_value * n
        self._epoch_state["count"] += n

    # ------------------------------------------------------------------ the loop
    def fit(self, train_loader, val_loader=None, epochs: int = 1, resume_from: str | None = None) -> History:
        """Train until ``epochs`` epochs have completed in total (a resumed run takes the same ``epochs``).

        Returns the :class:`History` (one entry per epoch).
        """
        self._train_loader = train_loader
        self._begin_fit()
        if resume_from is not None:
            self.load_checkpoint(resume_from, train_loader)
        if self._pending_loader_state is None:
            # Not resuming: an epoch that an exception interrupted earlier is restarted (its finished steps stay
            # applied). Exact continuation is what checkpoints are for.
            self._epoch_state = self._fresh_epoch_state()
        self.stop_training, self.stop_reason = False, None
        self._train_mode()
        self._call("on_train_begin", {"epochs": epochs, "start_epoch": self.epoch})
        try:
            while self.epoch < epochs and not self.stop_training:
                logs = self._train_epoch(train_loader, epochs)
                if logs is None:  # stopped on a non-finite loss or gradient
                    break
                if val_loader is not None:
                    logs.update({f"val_{k}": v for k, v in self._validate(val_loader).items()
                                 if isinstance(v, float)})
                # The epoch's numbers are final here; a callback may still combine them (e.g. across
                # distributed ranks) before the scheduler and the other callbacks read them.
                self._call("on_epoch_logs", self.epoch, logs)
                self._end_epoch(logs)
                self.epoch += 1
                self._epoch_state = self._fresh_epoch_state()
                self.epoch_history.append(self.epoch, logs)
                self._call("on_epoch_end", self.epoch - 1, logs)
        finally:
            self._train_mode()
            for cb in self.callbacks:  # an exception must not leave a half-drawn bar behind
                if isinstance(cb, ProgressBar):
                    cb.close()
        self._call("on_train_end", {"epochs_completed": self.epoch, "stop_reason": self.stop_reason})
        return self.epoch_history

    def _train_epoch(self, loader, epochs: int) -> dict[str, Any] | None:
        state = self._epoch_state
        start = state["batches_done"]
        if start == 0:
            self._begin_epoch()
        try:
            batches = len(loader)
        except TypeError:
            batches = None
        self._train_mode()
        self._call("on_epoch_begin", self.epoch, {"batches": batches, "start_batch": start})
        for batch_idx, batch in enumerate(self._resumed_iterator(loader, start), start):
            logs = self.training_step(batch, batch_idx, epochs)
            if logs is None:
                return None
            state["batches_done"] = batch_idx + 1
            self.global_step += 1
            self._call("on_batch_end", batch_idx, logs)
        if state["batches_done"] == 0:
            raise ValueError(f"{type(self).__name__}: the training loader yielded no batches in epoch {self.epoch + 1}")
        return self._epoch_logs()

    # ------------------------------------------------------------------ guards
    def _stop(self, error: type[Exception], msg: str) -> None:
        self.stop_training, self.stop_reason = True, msg
        if self.on_nonfinite == "raise":
            raise error(msg) from None
        warnings.warn(msg, RuntimeWarning, stacklevel=4)

    def _loss_finite(self, value: float, batch_idx: int, epochs: int, who: str | None = None) -> bool:
        """False (after raising or warning, per ``on_nonfinite``) when the loss ``value`` is NaN or infinite.

        Call it before ``backward()``: stopping there leaves the weights of the last good step."""
        if math.isfinite(value):
            return True
        who = who or type(self).__name__
        self._stop(NonFiniteLossError, (
            f"{who}: the training loss is {value} {self._position(batch_idx, epochs)}; stopped before the "
            f"optimizer step, so the weights are those after step {self.global_step} and no checkpoint was "
            f"written after the last good one. {self.nonfinite_hint}"))
        return False

    def _guarded_step(self, loss, optimizer, named_parameters, batch_idx: int, epochs: int, who: str) -> float | None:
        """``loss.backward()`` and ``optimizer.step()`` between the two guards; the loss value, or ``None`` when a
        guard stopped training (the optimizer did not step)."""
        value = float(loss.item())
        if not self._loss_finite(value, batch_idx, epochs, who):
            return None
        optimizer.zero_grad()
        loss.backward()
        if not self._gradients_finite(named_parameters, value, who):
            return None
        optimizer.step()
        return value

    def _position(self, batch_idx: int, epochs: int) -> str:
        """Where in the run the current step is, for messages."""
        return f"at epoch {self.epoch + 1}/{epochs}, batch {batch_idx} (global step {self.global_step + 1})"

    def _gradients_finite(self, named_parameters, loss_value: float, where: str) -> bool:
        """False (after raising or warning) when a gradient of ``named_parameters`` is NaN or infinite.

        Call it after ``backward()`` and before the optimizer step."""
        try:
            check_finite_gradients(named_parameters, self.global_step + 1, where, loss_value)
        except NonFiniteGradientError as e:
            self._stop(NonFiniteGradientError, f"{e} No checkpoint was written after the last good one.")
            return False
        return True

    # ------------------------------------------------------------------ the loader's position (exact resume)
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

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything a checkpoint holds; a trainer that writes checkpoints defines it (Trainer does)."""
        raise NotImplementedError(f"{type(self).__name__} does not write checkpoints")

    def save_checkpoint(self, path: str) -> None:
        """Write the full training state to ``path`` atomically (safetensors + JSON metadata, no pickle)."""
        save_checkpoint(path, self.state_dict())

    def load_checkpoint(self, path: str, train_loader=None) -> dict[str, Any]:
        """Restore a checkpoint written by :meth:`save_checkpoint` (Trainer defines it)."""
        raise NotImplementedError(f"{type(self).__name__} does not resume from checkpoints")

    # ------------------------------------------------------------------ the loop's part of a checkpoint
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

    def _loop_state(self) -> dict[str, Any]:
        """History, callbacks, the global random generators and the loader's position."""
        return {
            "history": self.epoch_history.state_dict(),
            "callbacks": {key: cb.state_dict() for key, cb in self._keyed_callbacks() if hasattr(cb, "state_dict")},
            "rng": {"deepgrad": creation.get_rng_state(), "numpy": np.random.get_state(),
                    "python": random.getstate()},
            "data": self._loader_state(),
        }

    def _load_loop_state(self, state: dict[str, Any]) -> None:
        """The inverse of :meth:`_loop_state` (plus the counters in ``state["trainer"]``)."""
        t = state["trainer"]
        self.epoch, self.global_step = int(t["epoch"]), int(t["global_step"])
        self._epoch_state = dict(t["epoch_state"])
        self.epoch_history.load_state_dict(state["history"])
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
        self._pending_loader_state = state["data"]
