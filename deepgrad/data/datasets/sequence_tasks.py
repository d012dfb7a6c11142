"""Token-sequence data that needs no download: a generated long-range recall task, and text that ships with
Python itself, cut into next-character windows for a language model.

>>> ds = make_recall_task(100, seq_len=32)          # tokens (100, 33), labels (100,)
>>> text = load_text("zen")                          # the Zen of Python (module ``this``)
"""

from __future__ import annotations

import codecs
import contextlib
import io

import numpy as np

from ..dataset import TensorDataset
from .synthetic import _positive, _rng

TEXTS = ("zen", "pydoc")


def make_recall_task(n: int = 1000, seq_len: int = 32, n_symbols: int = 8, seed: int | None = 0) -> TensorDataset:
    """Recall a marked symbol from anywhere in a sequence: the label depends on one token far back.

    Each sequence holds ``seq_len`` tokens and then a query token. The tokens are random distractors
    ``0 .. n_symbols - 1`` except one, at a uniformly random position, which is a *marked* symbol
    ``n_symbols + v``; the query token is ``2 * n_symbols``. The label is ``v``, so chance accuracy is
    ``1 / n_symbols``; the vocabulary has ``2 * n_symbols + 1`` tokens. Returns int64 tokens
    ``(n, seq_len + 1)`` and int64 labels ``(n,)``.
    """
    _positive("make_recall_task", n=n, seq_len=seq_len, n_symbols=n_symbols)
    rng = _rng(seed, "make_recall_task")
    tokens = rng.integers(0, n_symbols, size=(n, seq_len + 1))
    rows = np.arange(n)
    where = rng.integers(0, seq_len, size=n)
    labels = rng.integers(0, n_symbols, size=n)
    tokens[rows, where] = n_symbols + labels
    tokens[:, -1] = 2 * n_symbols
    return TensorDataset(tokens.astype(np.int64), labels.astype(np.int64))


def load_text(name: str = "zen") -> str:
    """A text that ships with Python: ``"zen"`` (the Zen of Python, 856 characters, from the module ``this``)
    or ``"pydoc"`` (the help topics of ``pydoc_data``, about 465,000 characters of Python's documentation)."""
    if name == "zen":
        with contextlib.redirect_stdout(io.StringIO()):  # importing `this` prints the poem the first time
            import this
        return codecs.decode(this.s, "rot_13")
    if name == "pydoc":
        try:
            from pydoc_data.topics import topics
        except ImportError as e:  # some distributions split the stdlib's documentation off
            raise FileNotFoundError("load_text: this Python has no pydoc_data module (its help topics); use "
                                    "load_text('zen')") from e
        return "\n".join(topics[key] for key in sorted(topics))
    raise ValueError(f"load_text: unknown text {name!r}; choose one of {', '.join(TEXTS)}")


def next_token_windows(ids, window: int, stride: int | None = None) -> TensorDataset:
    """Windows of a token-id sequence for next-token prediction: inputs ``ids[i : i + window]`` and targets
    ``ids[i + 1 : i + window + 1]``, one window every ``stride`` tokens (default: ``window``, no overlap)."""
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    stride = window if stride is None else stride
    _positive("next_token_windows", window=window, stride=stride)
    if len(ids) < window + 1:
        raise ValueError(f"next_token_windows: {len(ids)} tokens are too few for one window of {window} plus its "
                         f"shifted target")
    starts = np.arange(0, len(ids) - window, stride)
    x = np.stack([ids[s:s + window] for s in starts])
    y = np.stack([ids[s + 1:s + window + 1] for s in starts])
    return TensorDataset(x, y)
