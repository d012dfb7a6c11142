"""Metrics against scikit-learn on random predictions, accumulated over uneven batches."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from deepgrad.train import (
    Accuracy,
    ConfusionMatrix,
    F1Score,
    MeanAbsoluteError,
    MeanSquaredError,
    Precision,
    Recall,
    TopKAccuracy,
    accuracy,
    confusion_matrix,
    get_metric,
    precision_recall_f1,
    top_k_accuracy,
)


def _batched(metric, scores, target, sizes=(7, 1, 30, 12)):
    metric.reset()
    start = 0
    for n in sizes:
        metric.update(scores[start:start + n], target[start:start + n])
        start += n
    assert start == len(target)
    return metric.compute()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    n, c = 50, 6
    scores = rng.normal(size=(n, c)).astype(np.float32)
    target = rng.integers(0, c - 1, n)  # class c-1 never occurs as a target: macro averaging must still match
    pred = scores.argmax(1)
    assert _batched(Accuracy(), scores, target) == skm.accuracy_score(target, pred)
    assert accuracy(scores, target) == skm.accuracy_score(target, pred)
    for k in (1, 3):
        expected = skm.top_k_accuracy_score(target, scores, k=k, labels=np.arange(c))
        assert _batched(TopKAccuracy(k), scores, target) == pytest.approx(expected, abs=1e-12)
        assert top_k_accuracy(scores, target, k) == pytest.approx(expected, abs=1e-12)
    np.testing.assert_array_equal(_batched(ConfusionMatrix(c), scores, target),
                                  skm.confusion_matrix(target, pred, labels=np.arange(c)))
    for average in ("macro", "micro"):
        p, r, f, _ = skm.precision_recall_fscore_support(target, pred, average=average, zero_division=0)
        assert _batched(Precision(average), scores, target) == pytest.approx(p, abs=1e-12)
        assert _batched(Recall(average), scores, target) == pytest.approx(r, abs=1e-12)
        assert _batched(F1Score(average), scores, target) == pytest.approx(f, abs=1e-12)
        prf = precision_recall_f1(target, pred, average)
        assert (prf["precision"], prf["recall"], prf["f1"]) == pytest.approx((p, r, f), abs=1e-12)


def test_binary_logits_and_regression_metrics():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(40, 1)).astype(np.float32)
    target = rng.integers(0, 2, 40)
    assert _batched(Accuracy(), logits, target, (20, 20)) == skm.accuracy_score(target, logits[:, 0] > 0)
    out, y = rng.normal(size=(40, 3)), rng.normal(size=(40, 3))
    assert _batched(MeanSquaredError(), out, y, (13, 27)) == pytest.approx(skm.mean_squared_error(y, out), 1e-12)
    assert _batched(MeanAbsoluteError(), out, y, (13, 27)) == pytest.approx(skm.mean_absolute_error(y, out), 1e-12)


def test_metric_state_round_trip_and_names():
    rng = np.random.default_rng(4)
    scores, target = rng.normal(size=(20, 4)), rng.integers(0, 4, 20)
    a = F1Score()
    a.update(scores[:10], target[:10])
    b = F1Score()
    b.load_state_dict(a.state_dict())
    for m in (a, b):
        m.update(scores[10:], target[10:])
    assert a.compute() == b.compute()
    assert [get_metric(s).name for s in ("accuracy", "top3_accuracy", "mse", "mae", "f1", "f1_micro", "recall")] == [
        "accuracy", "top3_accuracy", "mse", "mae", "f1", "f1_micro", "recall"]


def test_bad_metric_input():
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        get_metric("auc")
    with pytest.raises(ValueError, match="accuracy: 3 predictions but 2 targets"):
        Accuracy().update(np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="labels must lie in"):
        confusion_matrix([0, 5], [0, 1], num_classes=3)
    with pytest.raises(ValueError, match="C >= k=5"):
        top_k_accuracy(np.zeros((2, 3)), np.zeros(2, np.int64), k=5)
