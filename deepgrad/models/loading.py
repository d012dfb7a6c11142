"""Loading weights into a model: from a safetensors file (or a ``{name: array}`` dict) where key and shape
match, with a readable report of what did and did not fit (:class:`LoadReport`). No pickle, no code from the
file ever runs. Public as :func:`deepgrad.transfer.load_pretrained` too.

>>> def mlp(classes):
...     return deepgrad.nn.Sequential(deepgrad.nn.Linear(4, 8), deepgrad.nn.ReLU(), deepgrad.nn.Linear(8, classes))
>>> deepgrad.save(mlp(10).state_dict(), "mlp_digits.safetensors")
>>> report = load_pretrained(mlp(10), "mlp_digits.safetensors")      # -> LoadReport (missing/unexpected/...)
>>> report.ok
True
>>> load_pretrained(mlp(3), "mlp_digits.safetensors")   # a new 3-class head: loads the body, reports the head
load_pretrained: mlp_digits.safetensors -> Sequential: loaded 2 of 4 model tensors
  shape mismatch, not loaded (file vs model) (2):
    2.weight: (10, 8) vs (3, 8)
    2.bias: (10,) vs (3,)
"""

from __future__ import annotations

import os
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .. import io, nn
from ..tensor import Tensor

_LIST_LIMIT = 12  # report lines shown per category before "... and N more"


class PretrainedLoadError(ValueError):
    """Weights that cannot be loaded: not a safetensors file, unreadable, or (with ``strict``) a key/shape
    mismatch. The message is the full report."""


@dataclass
class LoadReport:
    """What :func:`load_pretrained` matched: tensors loaded, keys the model has but the file lacks
    (``missing``), keys the file has but the model lacks (``unexpected``) and ``(key, file shape, model
    shape)`` for tensors whose shapes differ (``mismatched``, not loaded)."""

    source: str
    model: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every model tensor was loaded and the file held nothing else."""
        return not (self.missing or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        total = len(self.loaded) + len(self.missing) + len(self.mismatched)
        lines = [f"load_pretrained: {self.source} -> {self.model}: loaded {len(self.loaded)} of {total} "
                 f"model tensors" + (" (all keys and shapes match)" if self.ok else "")]

        def section(title: str, items: list[str]) -> None:
            if items:
                lines.append(f"  {title} ({len(items)}):")
                lines.extend(f"    {s}" for s in items[:_LIST_LIMIT])
                if len(items) > _LIST_LIMIT:
                    lines.append(f"    ... and {len(items) - _LIST_LIMIT} more")

        section("shape mismatch, not loaded (file vs model)",
                [f"{k}: {tuple(a)} vs {tuple(b)}" for k, a, b in self.mismatched])
        section("missing from the file (left as initialised)", self.missing)
        section("unexpected in the file (ignored)", self.unexpected)
        return "\n".join(lines)

    __repr__ = __str__


def read_safetensors(path: str | os.PathLike) -> OrderedDict:
    """``{name: numpy array}`` from a safetensors file (:func:`deepgrad.io.load_arrays`); a missing file or
    anything that is not safetensors raises :class:`PretrainedLoadError` with the reason."""
    try:
        return io.load_arrays(path)
    except (FileNotFoundError, ValueError) as e:
        raise PretrainedLoadError(f"load_pretrained: {e}") from None


def safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``__metadata__`` strings of a safetensors file (empty when it has none)."""
    try:
        return io.metadata(path)
    except (FileNotFoundError, ValueError) as e:
        raise PretrainedLoadError(f"load_pretrained: {e}") from None


def load_pretrained(model: nn.Module, source: str | os.PathLike | Mapping, strict: bool = False,
                    strip_prefix: str | None = None, verbose: bool = False) -> LoadReport:
    """Copy weights from a safetensors file (or a ``{name: array}`` dict) into ``model`` where key and
    shape match; returns a :class:`LoadReport`.

    ``strict=True`` loads nothing and raises :class:`PretrainedLoadError` (whose message is the report)
    unless every key and shape matches. ``strict=False`` loads what fits and reports the rest (a new head
    of a different size shows up as ``mismatched``) and warns when nothing at all matched.
    ``strip_prefix`` removes a prefix such as ``"module."`` (DataParallel) from the file's keys.
    """
    if isinstance(source, Mapping):
        label, state = "<state dict>", OrderedDict(source)
    else:
        label, state = os.fspath(source), read_safetensors(source)
    if strip_prefix:
        state = OrderedDict((k[len(strip_prefix):] if k.startswith(strip_prefix) else k, v) for k, v in state.items())
    own = model.state_dict(keep_vars=True)
    report = LoadReport(source=label, model=type(model).__name__)
    values = {}
    for key, target in own.items():
        if key not in state:
            report.missing.append(key)
            continue
        value = state[key]
        value = value.array if isinstance(value, Tensor) else np.asarray(value)
        if tuple(value.shape) != tuple(target.shape):
            report.mismatched.append((key, tuple(value.shape), tuple(target.shape)))
            continue
        values[key] = value
        report.loaded.append(key)
    report.unexpected = [k for k in state if k not in own]
    if strict and not report.ok:
        raise PretrainedLoadError(str(report))
    if not report.loaded:
        warnings.warn(f"load_pretrained: nothing loaded, the weights do not fit this model\n{report}", stacklevel=2)
    else:
        model.load_state_dict(values, strict=False)
    if verbose:
        print(report)
    return report
