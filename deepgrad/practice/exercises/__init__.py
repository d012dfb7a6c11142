"""The exercise bank: every exercise, by id, in the order of the guide's topics.

>>> from deepgrad.practice.exercises import get
>>> get("conv2d-forward").title
'Conv2d forward (cross-correlation, stride and padding)'
"""

from __future__ import annotations

import importlib

from ..exercise import Exercise

_FAMILIES = ("activations", "mlp", "training", "conv", "pooling", "norm", "random_layers", "recurrent", "workflows")

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


def get(exercise_id: str) -> Exercise:
    """The exercise ``exercise_id``; a clear error names the close matches."""
    bank = all_exercises()
    if exercise_id not in bank:
        import difflib

        close = difflib.get_close_matches(exercise_id, list(bank), n=3)
        extra = f"; did you mean {', '.join(close)}?" if close else "; `deepgrad practice list` shows them all"
        raise KeyError(f"no exercise {exercise_id!r}{extra}")
    return bank[exercise_id]
