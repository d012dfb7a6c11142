"""Metrics computed exactly with NumPy from the predictions accumulated over an epoch.

Each metric keeps the per-sample arrays it needs (predicted labels, targets, errors) and computes
its value once, at the end, from their concatenation: no running averages, so the value equals what
NumPy/scikit-learn compute on the whole set. The same arrays are its checkpoint state.

>>> m = Accuracy()
>>> m.update(np.array([[2.0, 1.0], [0.0, 3.0]]), np.array([0, 0]))
>>> m.compute()
0.5
"""

from __future__ import annotations

import numpy as np

from ..autograd import no_grad
from ..creation import tensor
from ..tensor import Tensor


def _host(x) -> np.ndarray:
    if isinstance(x, Tensor):
        x = x.array
    if hasattr(x, "get") and not isinstance(x, np.ndarray):  # a CuPy array
        x = x.get()
    return np.asarray(x)


def predicted_labels(output: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Class predictions: argmax over dim 1 of (N, C) scores; ``score > threshold`` for binary (N,) or (N, 1)."""
    output = _host(output)
    if output.ndim == 1 or (output.ndim == 2 and output.shape[1] == 1):
        return (output.reshape(-1) > threshold).astype(np.int64)
    return output.argmax(axis=1)


def _labels(target, owner: str) -> np.ndarray:
    target = _host(target)
    if target.ndim == 2 and target.shape[1] == 1:
        target = target.reshape(-1)
    if target.ndim != 1:
        raise ValueError(f"{owner}: expected class-index targets of shape (N,), got shape {target.shape}")
    return target.astype(np.int64)


def _check_count(owner: str, a: np.ndarray, b: np.ndarray) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{owner}: {a.shape[0]} predictions but {b.shape[0]} targets")


# ----------------------------------------------------------------------------- functional forms
def accuracy(output, target, threshold: float = 0.0) -> float:
    """Fraction of samples whose predicted class (argmax, or ``> threshold`` for binary) equals the target."""
    pred, target = predicted_labels(output, threshold), _labels(target, "accuracy")
    _check_count("accuracy", pred, target)
    return float((pred == target).mean()) if target.size else float("nan")


def model_accuracy(model, x: np.ndarray, y: np.ndarray, device=None, batch_size: int = 512) -> float:
    """:func:`accuracy` of ``model`` on the arrays ``x``, ``y``: forward passes of ``batch_size`` samples in
    eval mode without gradients (on ``device`` when given); the model's mode is restored after.

    >>> model = deepgrad.nn.Identity()   # a model whose outputs are its inputs: two logits per sample
    >>> x = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    >>> model_accuracy(model, x, np.array([0, 1, 0, 0]))
    0.75
    """
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            outputs = [_host(model(tensor(x[i:i + batch_size], device=device))) for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return accuracy(np.concatenate(outputs) if outputs else np.zeros((0, 1)), y)


def top_k_accuracy(output, target, k: int = 5) -> float:
    """Fraction of samples whose target is among the ``k`` highest scores (ties broken by index)."""
    scores, target = _host(output), _labels(target, "top_k_accuracy")
    if scores.ndim != 2 or k > scores.shape[1]:
        raise ValueError(f"top_k_accuracy: need (N, C) scores with C >= k={k}, got shape {scores.shape}")
    _check_count("top_k_accuracy", scores, target)
    return float(_in_top_k(scores, target, k).mean()) if target.size else float("nan")


def _in_top_k(scores: np.ndarray, target: np.ndarray, k: int) -> np.ndarray:
    # Rank of the target = number of classes scoring strictly higher (sklearn's tie rule is similar).
    own = scores[np.arange(len(target)), target]
    return (scores > own[:, None]).sum(axis=1) < k


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """``C[i, j]`` = number of samples of true class i predicted as j (scikit-learn's layout)."""
    y_true, y_pred = _labels(y_true, "confusion_matrix"), _labels(y_pred, "confusion_matrix")
    _check_count("confusion_matrix", y_pred, y_true)
    if num_classes is None:
        num_classes = int(max(y_true.max(initial=-1), y_pred.max(initial=-1))) + 1
    bad = (y_true < 0) | (y_true >= num_classes) | (y_pred < 0) | (y_pred >= num_classes)
    if bad.any():
        raise ValueError(f"confusion_matrix: labels must lie in [0, {num_classes}), got "
                         f"true in [{y_true.min()}, {y_true.max()}], predicted in [{y_pred.min()}, {y_pred.max()}]")
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def precision_recall_f1(y_true, y_pred, average: str = "macro", num_classes: int | None = None) -> dict[str, float]:
    """Precision, recall and F1 from a confusion matrix; ``average`` is "macro" or "micro".

    Macro averages the per-class values over the classes present in ``y_true`` or ``y_pred``
    (scikit-learn's label set); a 0/0 ratio counts as 0 (scikit-learn's ``zero_division=0``).
    """
    if average not in ("macro", "micro"):
        raise ValueError(f"precision_recall_f1: average must be 'macro' or 'micro', got {average!r}")
    cm = confusion_matrix(y_true, y_pred, num_classes).astype(np.float64)
    tp, predicted, actual = np.diag(cm), cm.sum(axis=0), cm.sum(axis=1)
    if average == "micro":
        tp, predicted, actual = tp.sum(keepdims=True), predicted.sum(keepdims=True), actual.sum(keepdims=True)
    else:
        present = (predicted + actual) > 0
        tp, predicted, actual = tp[present], predicted[present], actual[present]
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": float(precision.mean()), "recall": float(recall.mean()), "f1": float(f1.mean())}


# ----------------------------------------------------------------------------- accumulating metrics
class Metric:
    """Accumulates per-sample arrays over batches (``update``) and computes one value (``compute``).

    Subclasses define ``name``, ``_arrays(output, target) -> dict[str, np.ndarray]`` (per-sample
    rows) and ``_compute(**arrays)``.
    """

    name = "metric"

    def __init__(self):
        self._parts: dict[str, list[np.ndarray]] = {}

    def reset(self) -> None:
        self._parts = {}

    def update(self, output, target) -> None:
        """Add one batch: ``output`` is the model's output, ``target`` the labels/values."""
        for key, value in self._arrays(_host(output), _host(target)).items():
            self._parts.setdefault(key, []).append(value)

    def _joined(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v) if len(v) > 1 else v[0] for k, v in self._parts.items()}

    def compute(self):
        if not self._parts:
            return float("nan")
        return self._compute(**self._joined())

    def state_dict(self) -> dict[str, np.ndarray]:
        """The accumulated arrays (for a mid-epoch checkpoint)."""
        joined = self._joined()
        self._parts = {k: [v] for k, v in joined.items()}
        return dict(joined)

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self._parts = {k: [np.asarray(v)] for k, v in state.items()}

    def _arrays(self, output: np.ndarray, target: np.ndarray) -> dict[str, np.ndarray]:
        raise TypeError(f"{type(self).__name__} must define _arrays()")

    def _compute(self, **arrays):
        raise TypeError(f"{type(self).__name__} must define _compute()")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class _LabelMetric(Metric):
    """Keeps predicted labels and true labels."""

    def __init__(self, threshold: float = 0.0):
        super().__init__()
        self.threshold = threshold

    def _arrays(self, output, target):
        pred, target = predicted_labels(output, self.threshold), _labels(target, self.name)
        _check_count(self.name, pred, target)
        return {"pred": pred, "target": target}


class Accuracy(_LabelMetric):
    """Classification accuracy (argmax of (N, C) scores; ``> threshold`` for binary logits)."""

    name = "accuracy"

    def _compute(self, pred, target):
        return float((pred == target).mean())


class TopKAccuracy(Metric):
    """The target is among the ``k`` highest scores."""

    def __init__(self, k: int = 5):
        super().__init__()
        self.k = k
        self.name = f"top{k}_accuracy"

    def _arrays(self, output, target):
        target = _labels(target, self.name)
        if output.ndim != 2 or self.k > output.shape[1]:
            raise ValueError(f"{self.name}: need (N, C) scores with C >= {self.k}, got shape {output.shape}")
        _check_count(self.name, output, target)
        return {"hit": _in_top_k(output, target, self.k)}

    def _compute(self, hit):
        return float(hit.mean())


class _ErrorMetric(Metric):
    def _arrays(self, output, target):
        if output.size != target.size:
            raise ValueError(f"{self.name}: output has {output.size} values ({output.shape}) but target has "
                             f"{target.size} ({target.shape})")
        diff = output.astype(np.float64).reshape(-1) - target.astype(np.float64).reshape(-1)
        return {"diff": diff}


class MeanSquaredError(_ErrorMetric):
    """Mean of squared errors over all elements."""

    name = "mse"

    def _compute(self, diff):
        return float(np.mean(diff * diff))


class MeanAbsoluteError(_ErrorMetric):
    """Mean of absolute errors over all elements."""

    name = "mae"

    def _compute(self, diff):
        return float(np.mean(np.abs(diff)))


class ConfusionMatrix(_LabelMetric):
    """The (num_classes, num_classes) count matrix (an array: reported by ``evaluate``, not in the history)."""

    name = "confusion_matrix"

    def __init__(self, num_classes: int | None = None, threshold: float = 0.0):
        super().__init__(threshold)
        self.num_classes = num_classes

    def _compute(self, pred, target):
        return confusion_matrix(target, pred, self.num_classes)


class _PRF(_LabelMetric):
    key = "f1"

    def __init__(self, average: str = "macro", num_classes: int | None = None, threshold: float = 0.0):
        super().__init__(threshold)
        if average not in ("macro", "micro"):
            raise ValueError(f"{type(self).__name__}: average must be 'macro' or 'micro', got {average!r}")
        self.average, self.num_classes = average, num_classes
        self.name = self.key if average == "macro" else f"{self.key}_micro"

    def _compute(self, pred, target):
        return precision_recall_f1(target, pred, self.average, self.num_classes)[self.key]


class Precision(_PRF):
    """Precision, macro (mean over classes) or micro (pooled counts)."""

    key = "precision"


class Recall(_PRF):
    """Recall, macro or micro."""

    key = "recall"


class F1Score(_PRF):
    """F1 score, macro or micro."""

    key = "f1"


_BY_NAME = {
    "accuracy": Accuracy, "acc": Accuracy, "mse": MeanSquaredError, "mae": MeanAbsoluteError,
    "confusion_matrix": ConfusionMatrix, "precision": Precision, "recall": Recall, "f1": F1Score,
    "precision_micro": lambda: Precision("micro"), "recall_micro": lambda: Recall("micro"),
    "f1_micro": lambda: F1Score("micro"),
}


def get_metric(spec) -> Metric:
    """A Metric from an instance or a name: "accuracy", "top5_accuracy", "mse", "mae", "f1", "f1_micro", ..."""
    if isinstance(spec, Metric):
        return spec
    if isinstance(spec, str):
        if spec in _BY_NAME:
            return _BY_NAME[spec]()
        if spec.startswith("top") and spec.endswith("_accuracy") and spec[3:-9].isdigit():
            return TopKAccuracy(int(spec[3:-9]))
    raise ValueError(f"unknown metric {spec!r}: give a Metric or one of {sorted(_BY_NAME)} or 'top<k>_accuracy'")
