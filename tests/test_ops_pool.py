"""Pooling (deepgrad.ops.pool) against torch.nn.functional, float64 gradcheck, and error cases."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from conftest import devices
from core_parity import assert_close, check

import deepgrad as dg
from deepgrad.autograd import gradcheck
from deepgrad.ops.pool import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    avg_pool1d,
    avg_pool2d,
    max_pool1d,
    max_pool2d,
    max_unpool2d,
    sum_pool1d,
    sum_pool2d,
)

FWD_TOL, GRAD_TOL = 1e-5, 1e-4  # relative to the largest magnitude of the reference (float32)


def _distinct(shape, seed=0, dtype=np.float32):
    """Values with no ties (a permutation), so the argmax of every window is unique."""
    rng = np.random.default_rng(seed)
    return (rng.permutation(int(np.prod(shape))).reshape(shape) / 7.0 - 3.0).astype(dtype)


def _parity(ours_fn, torch_fn, x, device="cpu", **kw):
    """Outputs (and indices, exactly) forward, input gradient under a random upstream, deepgrad vs torch."""
    check(lambda t: ours_fn(t, **kw), lambda t: torch_fn(t, **kw), x, device=device, rtol=FWD_TOL, atol=FWD_TOL,
          grad_rtol=GRAD_TOL, grad_atol=GRAD_TOL, scaled=True)


MAX2D = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0)),
    dict(kernel_size=3, stride=2, ceil_mode=True),
    dict(kernel_size=2, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=3, stride=1, dilation=2),
    dict(kernel_size=2, stride=3, dilation=(2, 1), padding=1, ceil_mode=True),
    dict(kernel_size=3, stride=2, return_indices=True),
    dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True, return_indices=True),
]


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("kw", MAX2D, ids=str)
def test_max_pool2d_parity(kw, device):
    _parity(max_pool2d, TF.max_pool2d, _distinct((2, 3, 9, 8)), device=device, **kw)


def test_max_pool2d_unbatched_and_ties():
    _parity(max_pool2d, TF.max_pool2d, _distinct((3, 7, 6)), kernel_size=2, return_indices=True)
    # Ties: torch routes the gradient to the first maximum in the window (row-major).
    x = np.round(np.random.default_rng(0).standard_normal((2, 2, 6, 6))).astype(np.float32)
    _parity(max_pool2d, TF.max_pool2d, x, kernel_size=3, stride=1, padding=1, return_indices=True)


def test_max_pool2d_propagates_nan():
    x = _distinct((1, 1, 4, 4))
    x[0, 0, 1, 2] = np.nan
    y = max_pool2d(dg.Tensor(x), 2)
    ty = TF.max_pool2d(torch.tensor(x), 2)
    np.testing.assert_array_equal(np.isnan(y.array), np.isnan(ty.numpy()))


@pytest.mark.parametrize(
    "kw",
    [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, return_indices=True),
     dict(kernel_size=2, dilation=3, stride=1)],
    ids=str,
)
def test_max_pool1d_parity(kw):
    _parity(max_pool1d, TF.max_pool1d, _distinct((2, 3, 11)), **kw)
    _parity(max_pool1d, TF.max_pool1d, _distinct((3, 11)), **kw)


AVG2D = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
    dict(kernel_size=3, stride=2, ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 0), divisor_override=5),
]


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("kw", AVG2D, ids=str)
def test_avg_pool2d_parity(kw, device):
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 8)).astype(np.float32)
    _parity(avg_pool2d, TF.avg_pool2d, x, device=device, **kw)


@pytest.mark.parametrize(
    "kw",
    [dict(kernel_size=3), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)],
    ids=str,
)
def test_avg_pool1d_parity(kw):
    x = np.random.default_rng(0).standard_normal((2, 3, 10)).astype(np.float32)
    _parity(avg_pool1d, TF.avg_pool1d, x, **kw)
    _parity(avg_pool1d, TF.avg_pool1d, x[0], **kw)


SUM2D = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(2, 3), stride=(2, 1), padding=(1, 0), ceil_mode=True),
    dict(kernel_size=3, stride=2, ceil_mode=True),
]


@pytest.mark.parametrize("kw", SUM2D, ids=str)
def test_sum_pool2d_is_the_window_sum(kw):
    """sum_pool2d == torch avg_pool2d with divisor_override=1 (the window sum, zero padding)."""
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 8)).astype(np.float32)
    _parity(sum_pool2d, lambda t, **k: TF.avg_pool2d(t, divisor_override=1, **k), x, **kw)


def test_sum_pool2d_is_avg_times_window_size():
    """Away from ceil-mode overhang, sum pooling is avg_pool2d(count_include_pad=True) * kh * kw."""
    x = np.random.default_rng(1).standard_normal((2, 2, 7, 7)).astype(np.float32)
    _parity(sum_pool2d, lambda t, **k: TF.avg_pool2d(t, **k) * 6, x, kernel_size=(3, 2), stride=2, padding=1)


def test_sum_pool1d_parity():
    x = np.random.default_rng(2).standard_normal((2, 3, 10)).astype(np.float32)
    _parity(sum_pool1d, lambda t, **k: TF.avg_pool1d(t, **k) * 3, x, kernel_size=3, stride=2, padding=1)


@pytest.mark.parametrize("size", [1, 3, (2, 4), (None, 3), (4, None), (7, 9), (5, 2)], ids=str)
def test_adaptive_avg_pool2d_parity(size):
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 9)).astype(np.float32)
    _parity(adaptive_avg_pool2d, TF.adaptive_avg_pool2d, x, output_size=size)


@pytest.mark.parametrize("size", [1, 3, (2, 4), (None, 3), (7, 9), (5, 2)], ids=str)
@pytest.mark.parametrize("return_indices", [False, True])
def test_adaptive_max_pool2d_parity(size, return_indices):
    _parity(adaptive_max_pool2d, TF.adaptive_max_pool2d, _distinct((2, 3, 7, 9)), output_size=size,
            return_indices=return_indices)


def test_adaptive_pools_divisible_and_unbatched():
    _parity(adaptive_max_pool2d, TF.adaptive_max_pool2d, _distinct((3, 8, 6)), output_size=(4, 3),
            return_indices=True)
    _parity(adaptive_avg_pool2d, TF.adaptive_avg_pool2d, _distinct((3, 8, 6)), output_size=(4, 3))


def test_adaptive_pools_1d_parity():
    x = _distinct((2, 3, 10))
    _parity(adaptive_avg_pool1d, TF.adaptive_avg_pool1d, x, output_size=4)
    _parity(adaptive_max_pool1d, TF.adaptive_max_pool1d, x, output_size=4, return_indices=True)


def test_max_unpool2d_parity():
    x = _distinct((2, 3, 8, 7))
    y, idx = TF.max_pool2d(torch.tensor(x), 2, return_indices=True)
    Y = dg.Tensor(y.numpy()).requires_grad_()
    ours = max_unpool2d(Y, dg.Tensor(idx.numpy()), 2, output_size=(8, 7))
    ty = y.clone().requires_grad_()
    ref = TF.max_unpool2d(ty, idx, 2, output_size=(8, 7))
    assert_close(ours, ref, FWD_TOL, FWD_TOL, "forward", scaled=True)
    up = np.random.default_rng(1).standard_normal(tuple(ref.shape)).astype(np.float32)
    ours.backward(dg.Tensor(up))
    ref.backward(torch.tensor(up))
    assert_close(Y.grad, ty.grad, GRAD_TOL, GRAD_TOL, "grad of input", scaled=True)
    with pytest.raises(RuntimeError, match="invalid max index"):  # indices into 7-wide planes, default is 8x6
        max_unpool2d(Y, dg.Tensor(idx.numpy()), 2)


# ----------------------------------------------------------------------------- gradcheck (float64)
@pytest.mark.parametrize(
    "fn",
    [
        lambda x: max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True),
        lambda x: max_pool2d(x, 2, dilation=2),
        lambda x: max_pool1d(x.flatten(2), 3, stride=2),
        lambda x: avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False, ceil_mode=True),
        lambda x: avg_pool1d(x.flatten(2), 3, stride=2, padding=1),
        lambda x: sum_pool2d(x, 2, stride=1, padding=1),
        lambda x: sum_pool1d(x.flatten(2), 4, stride=3, ceil_mode=True),
        lambda x: adaptive_avg_pool2d(x, (2, 3)),
        lambda x: adaptive_avg_pool2d(x, 1),
        lambda x: adaptive_max_pool2d(x, (2, 3)),
        lambda x: adaptive_max_pool2d(x, (5, 2)),
        lambda x: max_unpool2d(*max_pool2d(x, 2, return_indices=True), 2, output_size=(5, 5)),
    ],
)
def test_pool_gradcheck(fn):
    x = dg.Tensor(_distinct((2, 2, 5, 5), dtype=np.float64), requires_grad=True)
    assert gradcheck(fn, [x])


# ----------------------------------------------------------------------------- errors
def _t(*shape, dtype=np.float32):
    return dg.Tensor(np.zeros(shape, dtype=dtype))


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: max_pool2d(_t(1, 1, 5, 5), 2, padding=2), r"max_pool2d: pad should be at most half"),
        (lambda: avg_pool2d(_t(1, 1, 5, 5), 3, padding=2), r"avg_pool2d: pad should be at most half"),
        (lambda: max_pool2d(_t(1, 1, 2, 2), 3), r"max_pool2d.*output size.*too small"),
        (lambda: avg_pool1d(_t(1, 1, 2), 4), r"avg_pool1d.*too small"),
        (lambda: max_pool2d(_t(5, 5), 2), r"max_pool2d.*3-D \(unbatched\) or 4-D"),
        (lambda: max_pool1d(_t(1, 1, 5, 5), 2), r"max_pool1d.*got shape \(1, 1, 5, 5\)"),
        (lambda: max_pool2d(_t(1, 1, 5, 5), 0), r"kernel_size must be positive"),
        (lambda: max_pool2d(_t(1, 1, 5, 5), 2, stride=0), r"stride must be positive"),
        (lambda: max_pool2d(_t(1, 1, 5, 5), (2, 2, 2)), r"kernel_size must be an int or a tuple of 2"),
        (lambda: max_pool2d(_t(1, 1, 5, 5, dtype=np.int64), 2), r"floating-point"),
        (lambda: adaptive_avg_pool2d(_t(1, 1, 5, 5), (0, 2)), r"output_size must be positive"),
        (lambda: adaptive_max_pool2d(_t(1, 5, 5, 5, 5), 2), r"adaptive_max_pool2d.*got shape"),
        (lambda: max_unpool2d(_t(1, 1, 2, 2), _t(1, 1, 2, 3, dtype=np.int64), 2), r"max_unpool2d.*indices"),
        (lambda: max_unpool2d(_t(1, 1, 2, 2), dg.Tensor(np.full((1, 1, 2, 2), 16)), 2), r"invalid max index"),
    ],
)
def test_pool_errors(call, match):
    with pytest.raises((RuntimeError, ValueError), match=match):
        call()
