"""deepgrad.optim.clip_grad_norm_ / clip_grad_value_ against torch.nn.utils: returned norm, clipped
gradients, parameters without gradients, and inf/nan handling."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import deepgrad as dg
from deepgrad.optim import clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm

SHAPES = [(3, 4), (5,), (2, 2, 3), (1,)]


def _pairs(seed=0, scale=1.0, dtype=np.float32, with_none=True):
    """The same parameters with the same gradients in both libraries (one parameter has no grad)."""
    rng = np.random.default_rng(seed)
    ours, theirs = [], []
    for i, shape in enumerate(SHAPES):
        p = rng.standard_normal(shape).astype(dtype)
        a, b = dg.tensor(p, requires_grad=True), torch.tensor(p, requires_grad=True)
        if not (with_none and i == 2):
            g = (rng.standard_normal(shape) * scale).astype(dtype)
            a.grad, b.grad = dg.tensor(g.copy()), torch.tensor(g.copy())
        ours.append(a)
        theirs.append(b)
    return ours, theirs


def _assert_grads_equal(ours, theirs, rtol=1e-5, atol=1e-7):
    for a, b in zip(ours, theirs):
        assert (a.grad is None) == (b.grad is None)
        if a.grad is not None:
            np.testing.assert_allclose(a.grad.array, b.grad.numpy(), rtol=rtol, atol=atol, equal_nan=True)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, 0.5, math.inf, -math.inf, 0.0, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    ours, theirs = _pairs(seed=1)
    total = clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total, dg.Tensor) and total.shape == () and total.dtype == np.float32
    np.testing.assert_allclose(total.array, expected.numpy(), rtol=1e-5)
    _assert_grads_equal(ours, theirs)


def test_clipped_norm_is_max_norm_and_small_grads_untouched():
    ours, _ = _pairs(seed=2, scale=10.0)
    clip_grad_norm_(ours, 1.0)
    after = math.sqrt(sum(float((p.grad.array.astype(np.float64) ** 2).sum()) for p in ours if p.grad is not None))
    assert after == pytest.approx(1.0, rel=1e-5)
    small, _ = _pairs(seed=3, scale=1e-3)
    before = [p.grad.array.copy() for p in small if p.grad is not None]
    clip_grad_norm_(small, 1.0)
    for b, p in zip(before, [p for p in small if p.grad is not None]):
        np.testing.assert_array_equal(p.grad.array, b)  # coefficient clamped to exactly 1.0


def test_single_tensor_generator_float64_and_empty():
    ours, theirs = _pairs(seed=4, dtype=np.float64)
    total = clip_grad_norm_(ours[0], 0.1)
    expected = torch.nn.utils.clip_grad_norm_(theirs[0], 0.1)
    assert total.dtype == np.float64
    np.testing.assert_allclose(total.array, expected.numpy(), rtol=1e-12)
    _assert_grads_equal(ours[:1], theirs[:1], rtol=1e-12)
    ours, theirs = _pairs(seed=5)
    total = clip_grad_norm_((p for p in ours), 0.3)
    expected = torch.nn.utils.clip_grad_norm_((p for p in theirs), 0.3)
    np.testing.assert_allclose(total.array, expected.numpy(), rtol=1e-5)
    empty = clip_grad_norm_([dg.zeros(2, requires_grad=True)], 1.0)
    assert float(empty) == 0.0 and empty.dtype == np.float32
    with pytest.warns(UserWarning, match="empty generator"):
        clip_grad_norm_((p for p in []), 1.0)


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize("norm_type", [2.0, math.inf])
def test_nonfinite_gradients(bad, norm_type):
    ours, theirs = _pairs(seed=6)
    ours[0].grad.array[1, 2] = bad
    theirs[0].grad[1, 2] = bad
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(ours, 1.0, norm_type=norm_type, error_if_nonfinite=True)
    with pytest.raises(RuntimeError, match="non-finite"):
        torch.nn.utils.clip_grad_norm_(theirs, 1.0, norm_type=norm_type, error_if_nonfinite=True)
    _assert_grads_equal(ours, theirs)  # raising leaves the gradients untouched
    total = clip_grad_norm_(ours, 1.0, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0, norm_type=norm_type)
    np.testing.assert_array_equal(total.array, expected.numpy())
    _assert_grads_equal(ours, theirs)  # scaled by the non-finite norm anyway: zeros and NaNs like torch


def test_total_norm_and_clip_with_norm_helpers_match_torch():
    ours, theirs = _pairs(seed=7)
    grads = [p.grad for p in ours if p.grad is not None]
    total = get_total_norm(grads, norm_type=3.0)
    expected = torch.nn.utils.get_total_norm([p.grad for p in theirs if p.grad is not None], norm_type=3.0)
    np.testing.assert_allclose(total.array, expected.numpy(), rtol=1e-5)
    clip_grads_with_norm_(ours, 0.25, total)
    torch.nn.utils.clip_grads_with_norm_(theirs, 0.25, expected)
    _assert_grads_equal(ours, theirs)


@pytest.mark.parametrize("clip_value", [0.1, 0.8, 5.0])
def test_clip_grad_value_matches_torch(clip_value):
    ours, theirs = _pairs(seed=8)
    ours[1].grad.array[0] = math.nan
    theirs[1].grad[0] = math.nan
    ids = [id(p.grad.array) for p in ours if p.grad is not None]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert clip_grad_value_(ours, clip_value) is None
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    _assert_grads_equal(ours, theirs, rtol=0, atol=0)
    assert ids == [id(p.grad.array) for p in ours if p.grad is not None]  # in place
    single, single_t = _pairs(seed=9)
    clip_grad_value_(single[0], 0.2)
    torch.nn.utils.clip_grad_value_(single_t[0], 0.2)
    _assert_grads_equal(single[:1], single_t[:1], rtol=0, atol=0)


def test_clipping_inside_a_training_step():
    w = dg.tensor(np.array([[3.0, -4.0]], dtype=np.float32), requires_grad=True)
    loss = (w * w).sum()  # grad 2w = [6, -8], norm 10
    loss.backward()
    total = clip_grad_norm_([w], max_norm=5.0)
    assert float(total) == pytest.approx(10.0)
    np.testing.assert_allclose(w.grad.array, [[3.0, -4.0]], rtol=1e-5)
