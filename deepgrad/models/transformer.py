"""Transformer models for token sequences: positional encodings, a sequence classifier and a small causal
(GPT-style) language model, built on :class:`deepgrad.nn.TransformerEncoder`. Inputs are batch-first token ids
``(N, T)``.

>>> clf = TransformerClassifier(num_classes=8, vocab_size=17, d_model=32, nhead=2, num_layers=1)
>>> clf(deepgrad.randint(0, 17, (4, 33))).shape
(4, 8)
>>> lm = TransformerLanguageModel(vocab_size=40, d_model=32, nhead=2, num_layers=2, max_len=64)
>>> lm(deepgrad.randint(0, 40, (2, 16))).shape                # next-token logits at every position
(2, 16, 40)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..creation import full
from ..creation import tensor as make_tensor
from ..data._random import GeneratorLike, as_generator, resolve
from ..functional import where
from ..tensor import Tensor

POSITIONAL = ("sinusoidal", "learned", "none")


def sinusoidal_table(max_len: int, d_model: int) -> np.ndarray:
    """Vaswani et al.'s encodings, float32 (max_len, d_model): ``PE[t, 2i] = sin(t / 10000^(2i/d))`` and
    ``PE[t, 2i+1] = cos(t / 10000^(2i/d))``; every position gets a distinct, smoothly varying code."""
    position = np.arange(max_len, dtype=np.float64)[:, None]
    rate = np.exp(np.arange(0, d_model, 2, dtype=np.float64) * (-math.log(10000.0) / d_model))
    table = np.zeros((max_len, d_model))
    table[:, 0::2] = np.sin(position * rate)
    table[:, 1::2] = np.cos(position * rate[: d_model // 2])
    return table.astype(np.float32)


class _PositionalEncoding(nn.Module):
    """Adds ``codes(T)`` (T, d_model) to ``(N, T, d_model)`` embeddings (``(T, N, d_model)`` when not
    ``batch_first``), then dropout."""

    def __init__(self, d_model: int, max_len: int, dropout: float, batch_first: bool):
        super().__init__()
        self.d_model, self.max_len, self.batch_first = d_model, max_len, batch_first
        self.dropout = nn.Dropout(dropout)

    def table(self) -> Tensor:
        raise NotImplementedError

    def codes(self, length: int) -> Tensor:
        if length > self.max_len:
            raise ValueError(f"{type(self).__name__}: sequence of length {length} is longer than max_len "
                             f"{self.max_len}")
        return self.table()[:length]

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"{type(self).__name__}(d_model={self.d_model}): expected embeddings (N, T, "
                             f"{self.d_model}), got {tuple(x.shape)}")
        codes = self.codes(x.shape[1 if self.batch_first else 0])
        return self.dropout(x + (codes if self.batch_first else codes.unsqueeze(1)))

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}"


class SinusoidalPositionalEncoding(_PositionalEncoding):
    """Fixed sine/cosine position codes (:func:`sinusoidal_table`), added to the embeddings. The table is a
    non-persistent buffer: recomputed, never saved.

    >>> SinusoidalPositionalEncoding(16)(deepgrad.zeros(2, 5, 16)).shape
    (2, 5, 16)
    """

    def __init__(self, d_model: int, max_len: int = 5000, dropout: float = 0.0, batch_first: bool = True):
        super().__init__(d_model, max_len, dropout, batch_first)
        self.register_buffer("pe", Tensor(sinusoidal_table(max_len, d_model)), persistent=False)

    def table(self) -> Tensor:
        return self.pe


class LearnedPositionalEncoding(_PositionalEncoding):
    """A learned vector per position, the rows of an ``nn.Embedding(max_len, d_model)`` (as GPT-2), added to the
    embeddings: the codes of a length-T input are ``embedding(arange(T))``, taken as one slice of its weight."""

    def __init__(self, d_model: int, max_len: int = 512, dropout: float = 0.0, batch_first: bool = True):
        super().__init__(d_model, max_len, dropout, batch_first)
        self.embedding = nn.Embedding(max_len, d_model)
        nn.init.normal_(self.embedding.weight, std=0.02)

    def table(self) -> Tensor:
        return self.embedding.weight


def positional_encoding(kind: str, d_model: int, max_len: int, dropout: float = 0.0) -> nn.Module | None:
    """``"sinusoidal"``, ``"learned"`` or ``"none"`` (None: the model sees tokens as a set)."""
    if kind == "sinusoidal":
        return SinusoidalPositionalEncoding(d_model, max_len, dropout)
    if kind == "learned":
        return LearnedPositionalEncoding(d_model, max_len, dropout)
    if kind == "none":
        return None
    raise ValueError(f"unknown positional encoding {kind!r}; choose one of {', '.join(POSITIONAL)}")


def _encoder(d_model: int, nhead: int, num_layers: int, dim_feedforward: int | None, dropout: float,
             activation: str) -> nn.TransformerEncoder:
    """Pre-norm layers (norm_first: steadier training of small models without warm-up) and a final norm."""
    layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward or 4 * d_model, dropout, activation,
                                       batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, num_layers, nn.LayerNorm(d_model), enable_nested_tensor=False)


def _check_tokens(owner: str, tokens: Tensor, max_len: int | None) -> None:
    if tokens.ndim != 2 or tokens.dtype.kind not in "iu":
        raise ValueError(f"{owner}: expected integer token ids (N, T), got {tokens.dtype} of shape "
                         f"{tuple(tokens.shape)}")
    if max_len is not None and tokens.shape[1] > max_len:
        raise ValueError(f"{owner}: sequence length {tokens.shape[1]} exceeds max_len {max_len}")


class TransformerClassifier(nn.Module):
    """Classify a token sequence: ``embedding`` -> ``positional`` -> ``encoder`` -> pool -> ``head``.

    ``pool``: ``"mean"`` over the (unpadded) positions, or the ``"first"`` / ``"last"`` position's vector
    (a CLS-style token, or a query placed at the end). Tokens equal to ``padding_idx`` (or marked by an explicit
    ``padding_mask``) are masked out of attention and of the mean. ``positional``: ``"sinusoidal"``,
    ``"learned"`` or ``"none"``.
    """

    def __init__(self, num_classes: int, vocab_size: int, d_model: int = 64, nhead: int = 4, num_layers: int = 2,
                 dim_feedforward: int | None = None, dropout: float = 0.1, max_len: int = 512,
                 positional: str = "sinusoidal", pool: str = "mean", padding_idx: int | None = None,
                 activation: str = "gelu"):
        super().__init__()
        if pool not in ("mean", "first", "last"):
            raise ValueError(f"TransformerClassifier: pool must be 'mean', 'first' or 'last', got {pool!r}")
        self.pool, self.padding_idx, self.max_len = pool, padding_idx, max_len
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=padding_idx)
        self.positional = positional_encoding(positional, d_model, max_len, dropout)
        self.encoder = _encoder(d_model, nhead, num_layers, dim_feedforward, dropout, activation)
        self.head = nn.Linear(d_model, num_classes)

    def features(self, tokens: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """The pooled sequence vector (N, d_model) that the head classifies."""
        _check_tokens("TransformerClassifier", tokens, self.max_len)
        x = self.embedding(tokens)
        if self.positional is not None:
            x = self.positional(x)
        padding = padding_mask
        if padding is None and self.padding_idx is not None:
            padding = tokens == self.padding_idx
        x = self.encoder(x, src_key_padding_mask=padding)
        if self.pool == "first":
            return x[:, 0]
        if self.pool == "last":
            return x[:, -1]
        if padding is None:
            return x.mean(dim=1)
        one = full((), 1.0, dtype=x.dtype, device=x.device)
        keep = where(padding, 0.0, one).unsqueeze(-1)  # a traced op (not ~padding): exportable to ONNX
        return (x * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)

    def forward(self, tokens: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """Logits (N, num_classes). ``padding_mask`` (N, T), True at padding, overrides the one derived from
        ``padding_idx`` (pass it explicitly to export to ONNX: comparisons inside forward are not traced)."""
        return self.head(self.features(tokens, padding_mask))


class TransformerLanguageModel(nn.Module):
    """A causal (decoder-only, GPT-style) language model: ``embedding`` -> ``positional`` -> ``encoder`` with the
    causal mask -> ``head``. ``forward(tokens (N, T)) -> logits (N, T, vocab_size)``: position t predicts token
    t + 1 from tokens 0..t only. Train with cross-entropy on ``logits.reshape(-1, vocab)`` against the tokens
    shifted by one; :meth:`sample` generates.
    """

    def __init__(self, vocab_size: int, d_model: int = 64, nhead: int = 4, num_layers: int = 2,
                 dim_feedforward: int | None = None, dropout: float = 0.1, max_len: int = 256,
                 positional: str = "learned", activation: str = "gelu"):
        super().__init__()
        self.vocab_size, self.max_len = vocab_size, max_len
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.positional = positional_encoding(positional, d_model, max_len, dropout)
        self.encoder = _encoder(d_model, nhead, num_layers, dim_feedforward, dropout, activation)
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, tokens: Tensor) -> Tensor:
        _check_tokens("TransformerLanguageModel", tokens, self.max_len)
        x = self.embedding(tokens)
        if self.positional is not None:
            x = self.positional(x)
        mask = nn.Transformer.generate_square_subsequent_mask(tokens.shape[1], device=x.device, dtype=x.dtype)
        return self.head(self.encoder(x, mask=mask, is_causal=True))

    def sample(self, prefix: Sequence[int], length: int, temperature: float = 1.0, top_k: int | None = None,
               generator: GeneratorLike = None) -> list[int]:
        """``length`` new token ids continuing ``prefix`` (at least one id), each drawn from the softmax of the
        last position's logits / ``temperature``, optionally restricted to the ``top_k`` most likely ids; the
        context is cut to the last ``max_len`` tokens. Runs in eval mode without gradients."""
        if len(prefix) == 0:
            raise ValueError("TransformerLanguageModel.sample: the prefix needs at least one token id")
        if temperature <= 0:
            raise ValueError(f"TransformerLanguageModel.sample: temperature must be > 0, got {temperature}")
        rng = resolve(as_generator(generator, "TransformerLanguageModel.sample"))
        device = self.head.weight.device
        context, out = [int(t) for t in prefix], []
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                for _ in range(length):
                    window = np.asarray([context[-self.max_len:]], dtype=np.int64)
                    row = self(make_tensor(window, device=device))[0, -1].cpu().numpy().astype(np.float64)
                    row = row / temperature
                    if top_k is not None and top_k < len(row):
                        row[row < np.sort(row)[-top_k]] = -np.inf
                    p = np.exp(row - row.max())
                    token = int(rng.choice(len(p), p=p / p.sum()))
                    out.append(token)
                    context.append(token)
        finally:
            self.train(was_training)
        return out
