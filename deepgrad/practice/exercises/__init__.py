"""The exercise bank: every exercise, by id, in the order of the guide's topics.

>>> from deepgrad.practice.exercises import get
>>> get("conv2d-forward").title
'Conv2d forward (cross-correlation, stride and padding)'
"""

from __future__ import annotations

import importlib

from ..exercise import Exercise

_FAMILIES = ("activations", "mlp", "training", "schedules", "conv", "pooling", "cnn_head", "norm", "random_layers",
             "recurrent", "workflows", "attention", "transformer")

# Every deepgrad module a reference or a statistical judge imports: the judge imports them all BEFORE the
# candidate runs, so nothing is read from disk after it ran (a test checks that this list is complete).
REFERENCE_MODULES = ("autograd", "tensor", "functional", "nn", "nn.functional", "nn.init", "ops.dropout",
                     "ops.embedding", "ops.recurrent", "optim", "optim.clip_grad", "optim.lr_scheduler",
                     "regularization", "train.callbacks", "data.transforms.functional", "models.transformer")

_BANK: dict[str, Exercise] | None = None


def all_exercises() -> dict[str, Exercise]:
    """Every exercise, id -> Exercise."""
    global _BANK
    if _BANK is None:
        bank: dict[str, Exercise] = {}
        for family in _FAMILIES:
            for ex in importlib.import_module(f"{__name__}.{family}").EXERCISES:
                if ex.id in bank:
                    raise RuntimeError(f"practice: duplicate exercise id {ex.id!r}")
                bank[ex.id] = ex
        _BANK = bank
    return _BANK


def preload() -> None:
    """Import the exercise bank and every module the grading needs (see REFERENCE_MODULES)."""
    all_exercises()
    for name in REFERENCE_MODULES:
        importlib.import_module(f"deepgrad.{name}")


def get(exercise_id: str) -> Exercise:
    """The exercise ``exercise_id``; a clear error names the close matches."""
    bank = all_exercises()
    if exercise_id not in bank:
        import difflib

        close = difflib.get_close_matches(exercise_id, list(bank), n=3)
        extra = f"; did you mean {', '.join(close)}?" if close else "; `deepgrad practice list` shows them all"
        raise KeyError(f"no exercise {exercise_id!r}{extra}")
    return bank[exercise_id]
