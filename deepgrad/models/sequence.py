"""Sequence models on the recurrent layers: a classifier, a forecaster and a character-level language
model with sampling. Inputs are batch-first, ``(N, T, features)`` or ``(N, T)`` token ids.

>>> clf = SequenceClassifier(num_classes=2, vocab_size=20, hidden_size=16)
>>> clf(deepgrad.randint(0, 20, (4, 7))).shape
(4, 2)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..creation import tensor as make_tensor
from ..data._random import GeneratorLike, as_generator, resolve
from ..functional import cat
from ..nn.embedding import Embedding
from ..nn.recurrent import GRU, LSTM, RNN
from ..tensor import Tensor

_CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def make_rnn(cell: str, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0,
             bidirectional: bool = False) -> nn.Module:
    """A batch-first ``RNN``/``LSTM``/``GRU`` by name."""
    if cell not in _CELLS:
        raise ValueError(f"unknown recurrent cell {cell!r}; choose one of {sorted(_CELLS)}")
    return _CELLS[cell](input_size, hidden_size, num_layers=num_layers, batch_first=True,
                        dropout=dropout if num_layers > 1 else 0.0, bidirectional=bidirectional)


def _last_hidden(rnn: nn.Module, state) -> Tensor:
    """The top layer's final hidden state (both directions concatenated): (N, H * directions)."""
    h_n = state[0] if isinstance(state, tuple) else state
    if rnn.bidirectional:
        return cat([h_n[-2], h_n[-1]], dim=-1)
    return h_n[-1]


class SequenceClassifier(nn.Module):
    """Classify a whole sequence from the recurrent network's final hidden state.

    Token inputs ``(N, T)`` go through an ``embedding`` when ``vocab_size`` is given; otherwise inputs are
    ``(N, T, input_size)`` features. Modules: ``embedding`` (optional), ``rnn``, ``dropout``, ``fc``.
    """

    def __init__(self, num_classes: int, input_size: int | None = None, hidden_size: int = 64, num_layers: int = 1,
                 cell: str = "lstm", bidirectional: bool = False, vocab_size: int | None = None,
                 embedding_dim: int = 32, dropout: float = 0.0, padding_idx: int | None = None):
        super().__init__()
        if (input_size is None) == (vocab_size is None):
            raise ValueError("SequenceClassifier: give exactly one of input_size (feature sequences) or "
                             "vocab_size (token sequences)")
        if vocab_size is not None:
            self.embedding = Embedding(vocab_size, embedding_dim, padding_idx=padding_idx)
            input_size = embedding_dim
        else:
            self.embedding = None
        self.rnn = make_rnn(cell, input_size, hidden_size, num_layers, dropout, bidirectional)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden_size * (2 if bidirectional else 1), num_classes)

    def forward(self, x: Tensor) -> Tensor:
        if self.embedding is not None:
            if x.ndim != 2:
                raise ValueError(f"SequenceClassifier: expected token ids (N, T), got shape {tuple(x.shape)}")
            x = self.embedding(x)
        _, state = self.rnn(x)
        return self.fc(self.dropout(_last_hidden(self.rnn, state)))


class Forecaster(nn.Module):
    """Predict the next ``horizon`` steps of a series from a window ``(N, window, input_size)``.

    Returns ``(N, horizon)`` when ``output_size`` is 1 (what :func:`deepgrad.data.datasets.sliding_windows`
    gives for a univariate series), else ``(N, horizon, output_size)``. Modules: ``rnn``, ``fc``.
    """

    def __init__(self, input_size: int = 1, hidden_size: int = 32, horizon: int = 1, output_size: int | None = None,
                 num_layers: int = 1, cell: str = "lstm", dropout: float = 0.0):
        super().__init__()
        self.horizon, self.output_size = horizon, input_size if output_size is None else output_size
        self.rnn = make_rnn(cell, input_size, hidden_size, num_layers, dropout)
        self.fc = nn.Linear(hidden_size, horizon * self.output_size)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 3:
            raise ValueError(f"Forecaster: expected windows (N, T, features), got shape {tuple(x.shape)}")
        _, state = self.rnn(x)
        out = self.fc(_last_hidden(self.rnn, state))
        return out if self.output_size == 1 else out.reshape(x.shape[0], self.horizon, self.output_size)


class CharVocab:
    """Characters <-> integer ids for a character-level model (ids in sorted character order).

    >>> v = CharVocab("hello"); v.decode(v.encode("hell"))
    'hell'
    """

    def __init__(self, text: str):
        self.chars = sorted(set(text))
        if not self.chars:
            raise ValueError("CharVocab: the text is empty")
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        unknown = sorted(set(text) - set(self.index))
        if unknown:
            raise ValueError(f"CharVocab: characters {unknown!r} are not in the vocabulary")
        return np.array([self.index[c] for c in text], dtype=np.int64)

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)


class CharLanguageModel(nn.Module):
    """Next-character model: ``embedding`` -> ``rnn`` -> ``fc`` logits over the vocabulary at every step.

    ``forward(tokens (N, T), state=None) -> (logits (N, T, vocab), state)``; train with cross-entropy on
    ``logits.reshape(-1, vocab)`` against the tokens shifted by one. :meth:`sample` generates text.
    """

    def __init__(self, vocab_size: int, embedding_dim: int = 32, hidden_size: int = 128, num_layers: int = 1,
                 cell: str = "lstm", dropout: float = 0.0):
        super().__init__()
        self.vocab_size = vocab_size
        self.embedding = Embedding(vocab_size, embedding_dim)
        self.rnn = make_rnn(cell, embedding_dim, hidden_size, num_layers, dropout)
        self.fc = nn.Linear(hidden_size, vocab_size)

    def forward(self, tokens: Tensor, state=None):
        if tokens.ndim != 2:
            raise ValueError(f"CharLanguageModel: expected token ids (N, T), got shape {tuple(tokens.shape)}")
        out, state = self.rnn(self.embedding(tokens), state)
        return self.fc(out), state

    def sample(self, prefix: Sequence[int], length: int, temperature: float = 1.0, top_k: int | None = None,
               generator: GeneratorLike = None) -> list[int]:
        """``length`` new token ids continuing ``prefix`` (at least one id), drawn from the softmax of
        logits / ``temperature`` (``temperature -> 0`` approaches greedy decoding), optionally restricted
        to the ``top_k`` most likely ids. Runs in eval mode without gradients."""
        if len(prefix) == 0:
            raise ValueError("CharLanguageModel.sample: the prefix needs at least one token id")
        if temperature <= 0:
            raise ValueError(f"CharLanguageModel.sample: temperature must be > 0, got {temperature}")
        rng = resolve(as_generator(generator, "CharLanguageModel.sample"))
        device = self.fc.weight.device
        was_training = self.training
        self.eval()
        out: list[int] = []
        try:
            with no_grad():
                tokens = make_tensor(np.asarray([list(prefix)], dtype=np.int64), device=device)
                state = None
                for _ in range(length):
                    logits, state = self(tokens, state)
                    row = logits.array[0, -1]
                    row = np.asarray(row if isinstance(row, np.ndarray) else row.get(), dtype=np.float64)
                    row = row / temperature
                    if top_k is not None and top_k < len(row):
                        row[row < np.sort(row)[-top_k]] = -np.inf
                    p = np.exp(row - row.max())
                    nxt = int(rng.choice(len(p), p=p / p.sum()))
                    out.append(nxt)
                    tokens = make_tensor(np.asarray([[nxt]], dtype=np.int64), device=device)
        finally:
            self.train(was_training)
        return out
