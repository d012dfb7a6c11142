"""Dropout family: statistics, scaling, gradients, seeded reproducibility, eval identity, channel masks."""

import numpy as np
import pytest

import deepgrad as dg
from deepgrad.ops import dropout as D

cuda = pytest.mark.skipif(not dg.cuda_is_available(), reason="no CUDA device")


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics_and_scaling(p):
    dg.manual_seed(0)
    x = dg.ones(200_000)
    y = D.dropout(x, p).array
    zero = y == 0
    # 200k Bernoulli draws: the zeroed fraction is within ~5 standard deviations (~0.0056) of p.
    assert abs(zero.mean() - p) < 0.006
    np.testing.assert_allclose(y[~zero], 1 / (1 - p), rtol=1e-6)  # inverted dropout: kept values scaled
    assert abs(y.mean() - 1.0) < 0.03  # the expectation is preserved


def test_dropout_gradient_is_the_scaled_mask():
    dg.manual_seed(1)
    x = dg.randn(50, 40, requires_grad=True)
    y = D.dropout(x, 0.3)
    g = np.random.default_rng(0).standard_normal(y.shape).astype(np.float32)
    y.backward(dg.tensor(g))
    mask = (y.array != 0) / 0.7
    np.testing.assert_allclose(x.grad.array, g * mask, rtol=1e-6)
    np.testing.assert_allclose(y.array, x.array * mask, rtol=1e-6)


def test_seeded_reproducibility():
    dg.manual_seed(123)
    a = D.dropout(dg.ones(1000), 0.5).array
    b = D.dropout(dg.ones(1000), 0.5).array
    dg.manual_seed(123)
    np.testing.assert_array_equal(D.dropout(dg.ones(1000), 0.5).array, a)
    np.testing.assert_array_equal(D.dropout(dg.ones(1000), 0.5).array, b)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("fn", [D.dropout, D.dropout2d, D.alpha_dropout, D.dropout1d, D.dropout3d])
def test_eval_and_p0_are_identity(fn):
    x = dg.randn(2, 3, 4, 5) if fn is not D.dropout1d else dg.randn(2, 3, 4)
    assert fn(x, 0.5, training=False) is x
    assert fn(x, 0.0, training=True) is x


def test_p1_gives_zeros_and_bad_p_raises():
    x = dg.randn(4, 5, requires_grad=True)
    y = D.dropout(x, 1.0)
    assert np.all(y.array == 0)
    y.sum().backward()
    assert np.all(x.grad.array == 0)
    assert np.all(D.dropout2d(dg.randn(2, 3, 4, 4), 1.0).array == 0)
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            D.dropout(x, p)


def test_dropout2d_zeroes_whole_channels():
    dg.manual_seed(2)
    x = dg.ones(64, 16, 5, 6)
    y = D.dropout2d(x, 0.4).array
    per_channel = y.reshape(64, 16, -1)
    zeroed = (per_channel == 0).all(axis=2)
    kept = np.isclose(per_channel, 1 / 0.6).all(axis=2)
    assert np.all(zeroed | kept)  # every (sample, channel) plane is all-zero or all-kept
    assert abs(zeroed.mean() - 0.4) < 0.08
    # Masks differ across samples and channels.
    assert zeroed.any(axis=0).all() and not zeroed.all(axis=0).any()


def test_dropout2d_3d_input_follows_torch_n_c_l_reading():
    dg.manual_seed(3)
    x = dg.ones(8, 6, 10)
    with pytest.warns(UserWarning, match="3D input"):
        y = D.dropout2d(x, 0.5).array
    rows = y.reshape(8, 6, 10)
    assert np.all((rows == 0).all(axis=2) | (rows != 0).all(axis=2))  # mask shape (8, 6, 1)


def test_dropout1d_and_dropout3d_unbatched():
    dg.manual_seed(4)
    y = D.dropout1d(dg.ones(32, 7), 0.5).array  # (C, L): whole rows
    assert np.all((y == 0).all(axis=1) | (y != 0).all(axis=1))
    y = D.dropout3d(dg.ones(32, 2, 3, 4), 0.5).array  # (C, D, H, W): whole volumes
    flat = y.reshape(32, -1)
    assert np.all((flat == 0).all(axis=1) | (flat != 0).all(axis=1))
    with pytest.raises(RuntimeError, match="dropout1d"):
        D.dropout1d(dg.ones(2, 3, 4, 5), 0.5)


def test_alpha_dropout_keeps_mean_and_variance():
    dg.manual_seed(5)
    x = dg.randn(400_000)
    y = D.alpha_dropout(x, 0.3, training=True).array
    assert abs(y.mean()) < 0.01 and abs(y.var() - 1.0) < 0.02
    alpha, p = 1.7580993408473766, 0.3  # torch's map: kept -> a x + a alpha p, dropped -> a alpha (p - 1)
    a = 1 / np.sqrt((alpha**2 * p + 1) * (1 - p))
    dropped = np.isclose(y, a * alpha * (p - 1), rtol=1e-6, atol=0)
    assert abs(dropped.mean() - p) < 0.005
    np.testing.assert_allclose(y[~dropped], a * x.array[~dropped] + a * alpha * p, rtol=1e-5, atol=1e-6)
    assert D.alpha_dropout(x, 0.3) is x  # torch's default training=False
    assert np.all(D.alpha_dropout(x, 1.0, training=True).array == 0)
    z = D.feature_alpha_dropout(dg.randn(64, 8, 9), 0.5, training=True).array
    p = 0.5
    a = 1 / np.sqrt((alpha**2 * p + 1) * (1 - p))
    dropped = np.isclose(z, a * alpha * (p - 1)).all(axis=2)  # a dropped channel is one constant
    assert 0.35 < dropped.mean() < 0.65


def test_inplace():
    dg.manual_seed(6)
    x = dg.ones(100)
    y = D.dropout(x, 0.5, inplace=True)
    assert y is x and np.all((x.array == 0) | (x.array == 2))
    leaf = dg.ones(10, requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        D.dropout(leaf, 0.5, inplace=True)
    h = leaf * 3
    out = D.dropout(h, 0.5, inplace=True)
    assert out is h
    out.sum().backward()
    np.testing.assert_allclose(leaf.grad.array, 3 * (h.array != 0) * 2)


@cuda
def test_dropout_cuda_matches_statistics():
    dg.manual_seed(0)
    x = dg.ones(100_000, device="cuda")
    y = D.dropout(x, 0.25).cpu().array
    assert abs((y == 0).mean() - 0.25) < 0.01
