"""A tqdm progress bar for :meth:`Trainer.fit`: one bar per epoch over its batches, with loss, metrics and ETA.

Each finished epoch leaves one line (``Epoch 3/10 100%|####| 45/45 [00:01<00:00, loss=0.31, val_loss=0.35]``).
"""

from __future__ import annotations

import sys
from typing import IO, Any

from .callbacks import Callback


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def progress_enabled(progress: bool | str, stream: IO | None = None) -> bool:
    """``True``/``False`` as given; ``"auto"`` shows the bar only when ``stream`` (stderr) is a terminal."""
    if progress == "auto":
        stream = sys.stderr if stream is None else stream
        return bool(getattr(stream, "isatty", lambda: False)())
    if not isinstance(progress, bool):
        raise ValueError(f"progress must be True, False or 'auto', got {progress!r}")
    return progress


class ProgressBar(Callback):
    """Epoch and batch progress with the running loss and metrics (tqdm). ``file`` defaults to stderr."""

    order = -10

    def __init__(self, file: IO | None = None, refresh_every: int = 1, leave: bool = True):
        self.file, self.refresh_every, self.leave = file, max(1, int(refresh_every)), leave
        self._bar = None
        self._epochs = 0

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        self._epochs = logs.get("epochs", 0)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        from tqdm import tqdm

        total = logs.get("batches")
        self._bar = tqdm(total=total, initial=logs.get("start_batch", 0), desc=f"Epoch {epoch + 1}/{self._epochs}",
                         file=self.file if self.file is not None else sys.stderr, leave=self.leave,
                         dynamic_ncols=True, unit="batch", disable=False)

    def on_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        if self._bar is None:
            return
        self._bar.update(1)
        if (batch + 1) % self.refresh_every == 0:
            running = self.trainer.running_logs()
            self._bar.set_postfix({k: _fmt(v) for k, v in running.items()}, refresh=False)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self._bar is None:
            return
        self._bar.set_postfix({k: _fmt(v) for k, v in logs.items() if isinstance(v, (int, float))}, refresh=False)
        self._bar.close()
        self._bar = None

    def close(self) -> None:
        """Close a bar left open by a run that stopped mid-epoch."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_train_end(self, logs: dict[str, Any]) -> None:
        self.close()
