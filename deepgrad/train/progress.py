"""Progress for :meth:`Trainer.fit`: a live tqdm bar per epoch on a terminal, and one summary line per epoch.

On a terminal each epoch shows a bar over its batches (running loss, ETA) that gives way, when the epoch
ends, to a summary with the epoch's training and validation numbers in lines of at most 80 columns::

    Epoch 3/10  loss 0.3124  acc 0.912  val_loss 0.35  val_acc 0.905  lr 0.001  1.2s
    Epoch 4/10  loss 0.2871  acc 0.9234  f1 0.9213  top2_acc 0.9911  lr 0.001  1.2s
                val_loss 0.3312  val_acc 0.9111  val_f1 0.9102  val_top2_acc 0.9889

Written to a file or a pipe (stderr redirected to a log, CI), there is no bar and no carriage return:
only the summary lines. When training stops early (early stopping, a non-finite loss with
``on_nonfinite="stop"``) the reason is printed as a last line.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from .callbacks import Callback

_SHORT_NAMES = {"accuracy": "acc", "top5_accuracy": "top5_acc", "top2_accuracy": "top2_acc"}


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _short(name: str) -> str:
    prefix = "val_" if name.startswith("val_") else ""
    base = name[len(prefix):]
    return prefix + _SHORT_NAMES.get(base, base)


def _fit(head: str, fields: list[tuple[int, int, str]], width: int) -> str:
    """``head`` and as many ``(priority, position, text)`` fields as fit ``width``, lowest priority first,
    shown in position order."""
    kept, used = [], len(head)
    for _, position, text in sorted(fields):
        if used + 2 + len(text) <= width:
            kept.append((position, text))
            used += 2 + len(text)
    return "  ".join([head, *(text for _, text in sorted(kept))])


def epoch_summary(epoch: int, epochs: int, logs: dict[str, Any], seconds: float | None = None,
                  width: int = 80, head: str | None = None) -> str:
    """An epoch's numbers in lines of at most ``width`` columns: one line when every validation number fits
    on it, else the training numbers on one line and the validation numbers on a second, aligned under them.
    What does not fit is dropped: time and lr first, then metrics, the losses last. ``head`` replaces the
    leading ``Epoch {epoch}/{epochs}``.

    >>> epoch_summary(3, 10, {"loss": 0.31, "accuracy": 0.912, "val_loss": 0.35, "val_accuracy": 0.905})
    'Epoch 3/10  loss 0.31  acc 0.912  val_loss 0.35  val_acc 0.905'
    """
    scalars = [(k, v) for k, v in logs.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    train, val = [], []  # (priority: lower is kept first, position in the line, text)
    for position, (name, value) in enumerate(scalars):
        priority = 0 if name in ("loss", "val_loss") else 2 if name == "lr" else 1
        (val if name.startswith("val_") else train).append((priority, position, f"{_short(name)} {_fmt(value)}"))
    if seconds is not None:
        train.append((3, len(scalars), f"{seconds:.1f}s"))
    head = f"Epoch {epoch}/{epochs}" if head is None else head
    one_line = _fit(head, train + val, width)
    if all(text in one_line.split("  ") for _, _, text in val):
        return one_line
    return _fit(head, train, width) + "\n" + _fit(" " * len(head), val, width)


def progress_enabled(progress: bool | str, stream: IO | None = None) -> bool:
    """``True``/``False`` as given; ``"auto"`` shows the bar only when ``stream`` (stderr) is a terminal."""
    if progress == "auto":
        stream = sys.stderr if stream is None else stream
        return _is_terminal(stream)
    if not isinstance(progress, bool):
        raise ValueError(f"progress must be True, False or 'auto', got {progress!r}")
    return progress


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class ProgressBar(Callback):
    """Epoch progress (see the module docstring). ``file`` defaults to stderr; ``live`` forces the tqdm bar on
    (True) or off (False), by default it is on only when ``file`` is a terminal; ``width`` bounds the summary
    line; ``leave=False`` prints no summary lines.

    >>> import sys
    >>> from deepgrad import nn, optim
    >>> from deepgrad.data import DataLoader
    >>> from deepgrad.data.datasets import make_xor
    >>> from deepgrad.train import Trainer
    >>> model = nn.Linear(2, 2)
    >>> trainer = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1),
    ...                   callbacks=[ProgressBar(file=sys.stdout, live=False)])   # plain lines, e.g. for a log file
    >>> _ = trainer.fit(DataLoader(make_xor(16), batch_size=8), epochs=2)
    Epoch 1/2  loss 0.7815  lr 0.1  ...s
    Epoch 2/2  loss 0.7665  lr 0.1  ...s
    """

    order = -10

    def __init__(self, file: IO | None = None, refresh_every: int = 1, leave: bool = True, width: int = 80,
                 live: bool | None = None):
        self.file, self.refresh_every, self.leave = file, max(1, int(refresh_every)), leave
        self.width, self.live = int(width), live
        self._bar = None
        self._epochs = 0
        self._started = 0.0

    @property
    def stream(self) -> IO:
        return self.file if self.file is not None else sys.stderr

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        self._epochs = logs.get("epochs", 0)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        self._started = time.perf_counter()
        if not (self.live if self.live is not None else _is_terminal(self.stream)):
            return
        from tqdm import tqdm

        # leave=False: the bar is erased when the epoch ends and the summary line takes its place
        self._bar = tqdm(total=logs.get("batches"), initial=logs.get("start_batch", 0),
                         desc=self._label(epoch), file=self.stream, leave=False, ncols=self.width,
                         unit=getattr(self.trainer, "progress_unit", "batch"), disable=False)

    def on_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        if self._bar is None:
            return
        self._bar.update(1)
        if (batch + 1) % self.refresh_every == 0:
            running = self.trainer.running_logs()
            self._bar.set_postfix({k: _fmt(v) for k, v in running.items()}, refresh=False)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self.close()
        if self.leave:
            self._write(epoch_summary(epoch + 1, self._epochs, logs, time.perf_counter() - self._started,
                                      self.width, self._label(epoch)))

    def _label(self, epoch: int) -> str:
        """The trainer's name for 0-based ``epoch`` (``Epoch 3/10``; a GAN run counts steps)."""
        label = getattr(self.trainer, "progress_label", None)
        return label(epoch + 1, self._epochs) if label is not None else f"Epoch {epoch + 1}/{self._epochs}"

    def close(self) -> None:
        """Close a bar left open by a run that stopped mid-epoch."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_train_end(self, logs: dict[str, Any]) -> None:
        self.close()
        reason = getattr(self.trainer, "stop_reason", None)
        if reason:
            self._write(reason)
