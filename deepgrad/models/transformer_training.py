"""What ``deepgrad train`` needs to train the transformer zoo models on data that ships offline: the arrays,
the architecture and its config, the loss and the metric.

    deepgrad train transformer --data recall              # classifier on the generated long-range recall task
    deepgrad train transformer_lm --data zen --epochs 50  # character language model on the Zen of Python
    deepgrad train transformer_lm --data pydoc            # ... on Python's help topics (about 465,000 characters)

>>> task = sequence_task("transformer", "recall", seed=0)
>>> task.x_train.shape, task.arch
((4000, 33), 'transformer_classifier')
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import nn
from ..data.datasets.sequence_tasks import TEXTS, load_text, make_recall_task, next_token_windows
from ..ops.loss_classification import cross_entropy
from ..tensor import Tensor
from ..train.metrics import Metric

SEQUENCE_MODELS = ("transformer", "transformer_lm")
SEQUENCE_DATA = ("recall",) + TEXTS
RECALL_LENGTH, RECALL_SYMBOLS, LM_WINDOW = 32, 8, 64


class NextTokenLoss(nn.Module):
    """Mean cross-entropy over every position of ``(N, T, vocab)`` logits against ``(N, T)`` next tokens."""

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        return cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


class TokenAccuracy(Metric):
    """Fraction of positions whose most likely next token is the true one (named ``accuracy``)."""

    name = "accuracy"

    def _arrays(self, output: np.ndarray, target: np.ndarray) -> dict:
        if output.shape[:-1] != target.shape:
            raise ValueError(f"TokenAccuracy: logits {output.shape} do not match targets {target.shape}")
        return {"correct": (output.argmax(axis=-1) == target).reshape(-1)}

    def _compute(self, correct: np.ndarray) -> float:
        return float(correct.mean())


@dataclass
class SequenceTask:
    """Train/test arrays, the model to build (``build_model(arch, **config)``), its loss and metric."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    arch: str
    config: dict
    loss: nn.Module
    metric: str | Metric


def char_vocabulary(text: str) -> list[str]:
    """The sorted characters of ``text``: id i is ``chars[i]`` (fixed by the text, so a model trained on a
    shipped text can always be decoded again)."""
    return sorted(set(text))


def sequence_task(model: str, data: str, seed: int = 0) -> SequenceTask:
    """The training set-up of ``deepgrad train MODEL --data DATA`` for the transformer zoo models."""
    if model == "transformer":
        if data != "recall":
            raise ValueError(f"model 'transformer' (a sequence classifier) trains on --data recall, not {data!r}")
        train = make_recall_task(4000, RECALL_LENGTH, RECALL_SYMBOLS, seed=seed)
        test = make_recall_task(1000, RECALL_LENGTH, RECALL_SYMBOLS, seed=seed + 10_000)
        config = {"num_classes": RECALL_SYMBOLS, "vocab_size": 2 * RECALL_SYMBOLS + 1, "d_model": 32, "nhead": 2,
                  "num_layers": 1, "dim_feedforward": 64, "dropout": 0.0, "max_len": RECALL_LENGTH + 1,
                  "positional": "none", "pool": "last"}
        (xtr, ytr), (xte, yte) = ([t.numpy() for t in ds.tensors] for ds in (train, test))
        return SequenceTask(xtr, ytr, xte, yte, "transformer_classifier", config, nn.CrossEntropyLoss(), "accuracy")
    if model == "transformer_lm":
        if data not in TEXTS:
            raise ValueError(f"model 'transformer_lm' (a character language model) trains on a text: --data "
                             f"{' or '.join(TEXTS)}, not {data!r}")
        text = load_text(data)
        index = {c: i for i, c in enumerate(char_vocabulary(text))}
        ids = np.array([index[c] for c in text], dtype=np.int64)
        cut = int(len(ids) * 0.85)  # the last 15% of the text is held out
        window = min(LM_WINDOW, (len(ids) - cut) // 2)
        stride = max(1, window // 8) if cut < 50_000 else window  # a short text: overlapping windows, more of them
        train = next_token_windows(ids[:cut], window, stride=stride)
        test = next_token_windows(ids[cut:], window)
        config = {"vocab_size": len(index), "d_model": 64, "nhead": 4, "num_layers": 2, "dropout": 0.1,
                  "max_len": window}
        (xtr, ytr), (xte, yte) = ([t.numpy() for t in ds.tensors] for ds in (train, test))
        return SequenceTask(xtr, ytr, xte, yte, "transformer_lm", config, NextTokenLoss(), TokenAccuracy())
    raise ValueError(f"--data {data} holds token sequences, which model {model!r} does not read; train one of "
                     f"{', '.join(SEQUENCE_MODELS)}")
