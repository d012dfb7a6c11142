"""Convolutions (deepgrad.ops.conv) against torch.nn.functional, float64 gradcheck, and error cases."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from conftest import devices
from core_parity import assert_close, check

import deepgrad as dg
from deepgrad.autograd import gradcheck
from deepgrad.ops.conv import conv1d, conv2d, conv_transpose1d, conv_transpose2d

# torch warns that it copies for even kernels with padding="same"; that is its business, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")

FWD_TOL, GRAD_TOL = 1e-5, 1e-4  # relative to the largest magnitude of the reference (float32)


def _parity(ours_fn, torch_fn, x_shape, w_shape, bias_size, seed=0, device="cpu", **kw):
    """Forward and input/weight/bias gradients of one call, deepgrad vs torch, random upstream."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in (x_shape, w_shape)]
    if bias_size is not None:
        arrays.append(rng.standard_normal(bias_size).astype(np.float32))
    check(lambda *t: ours_fn(*t, **kw), lambda *t: torch_fn(*t, **kw), *arrays, device=device, rtol=FWD_TOL,
          atol=FWD_TOL, grad_rtol=GRAD_TOL, grad_atol=GRAD_TOL, seed=seed, scaled=True)


CONV2D_CASES = [
    dict(),
    dict(stride=2),
    dict(stride=(2, 3), padding=(1, 2)),
    dict(padding=1, dilation=2),
    dict(padding="same"),
    dict(padding="same", dilation=(2, 1)),
    dict(padding="valid", stride=1),
    dict(stride=2, padding=2, dilation=2),
]


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("kw", CONV2D_CASES, ids=str)
def test_conv2d_parity(kw, device):
    _parity(conv2d, TF.conv2d, (2, 3, 9, 8), (4, 3, 3, 3), 4, device=device, **kw)


@pytest.mark.parametrize(
    "x_shape,w_shape,kw",
    [
        ((2, 3, 7, 9), (5, 3, 4, 2), dict(padding="same")),  # even kernel: extra pad right/bottom
        ((2, 3, 7, 9), (6, 3, 1, 1), dict()),  # 1x1 kernel
        ((2, 3, 7, 9), (6, 3, 1, 1), dict(stride=2, padding=1)),
        ((2, 4, 8, 8), (6, 2, 3, 3), dict(groups=2, padding=1)),
        ((2, 4, 8, 8), (4, 1, 3, 3), dict(groups=4, padding=1, stride=2)),  # depthwise
        ((2, 4, 8, 8), (8, 1, 3, 3), dict(groups=4, padding="same")),  # depthwise multiplier 2
        ((2, 1, 12, 12), (6, 1, 5, 5), dict()),  # a LeNet stem: out channels >> in channels
        ((2, 8, 6, 6), (2, 8, 3, 3), dict(padding=1)),  # out channels << in channels
        ((2, 3, 5, 6), (4, 3, 5, 6), dict()),  # kernel == input: 1x1 output
        ((3, 7, 6), (4, 3, 3, 3), dict(padding=1)),  # unbatched
    ],
    ids=str,
)
def test_conv2d_parity_shapes(x_shape, w_shape, kw):
    _parity(conv2d, TF.conv2d, x_shape, w_shape, w_shape[0], **kw)


def test_conv2d_without_bias_and_frozen_weight():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 3, 6, 6)).astype(np.float32), rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    X, W = dg.Tensor(x, requires_grad=True), dg.Tensor(w)  # weight needs no grad: columns are not kept
    y = conv2d(X, W, padding=1)
    tx = torch.tensor(x, requires_grad=True)
    ty = TF.conv2d(tx, torch.tensor(w), padding=1)
    assert_close(y, ty, FWD_TOL, FWD_TOL, "forward", scaled=True)
    y.sum().backward()
    ty.sum().backward()
    assert_close(X.grad, tx.grad, GRAD_TOL, GRAD_TOL, "grad of input", scaled=True)
    assert W.grad is None


@pytest.mark.parametrize(
    "x_shape,w_shape,kw",
    [
        ((2, 3, 11), (5, 3, 3), dict()),
        ((2, 3, 11), (5, 3, 4), dict(padding="same", dilation=2)),
        ((2, 4, 11), (6, 2, 3), dict(stride=2, padding=1, groups=2)),
        ((3, 11), (5, 3, 3), dict(stride=3)),  # unbatched
    ],
    ids=str,
)
def test_conv1d_parity(x_shape, w_shape, kw):
    _parity(conv1d, TF.conv1d, x_shape, w_shape, w_shape[0], **kw)


@pytest.mark.parametrize(
    "x_shape,w_shape,kw",
    [
        ((2, 4, 5, 6), (4, 3, 3, 3), dict()),
        ((2, 4, 5, 6), (4, 3, 3, 3), dict(stride=2, padding=1, output_padding=1)),
        ((2, 4, 5, 6), (4, 3, 4, 4), dict(stride=2, padding=1)),  # DCGAN upsampling block
        ((2, 4, 5, 6), (4, 2, 3, 2), dict(stride=(2, 1), padding=(1, 0), groups=2, dilation=2, output_padding=(1, 0))),
        ((2, 4, 5, 6), (4, 3, 3, 3), dict(padding=1, dilation=2, output_padding=1)),
        ((2, 2, 3, 3), (2, 6, 1, 1), dict(stride=3)),
        ((4, 5, 6), (4, 3, 3, 3), dict(stride=2)),  # unbatched
    ],
    ids=str,
)
def test_conv_transpose2d_parity(x_shape, w_shape, kw):
    groups = kw.get("groups", 1)
    _parity(conv_transpose2d, TF.conv_transpose2d, x_shape, w_shape, w_shape[1] * groups, **kw)


def test_conv_transpose1d_parity():
    _parity(conv_transpose1d, TF.conv_transpose1d, (2, 4, 7), (4, 3, 3), 3, stride=3, padding=2, output_padding=1)


def test_conv_transpose_is_the_adjoint_of_conv():
    """<conv(x), y> == <x, conv_transpose(y)> for the same weight: the defining identity."""
    rng = np.random.default_rng(3)
    x = dg.Tensor(rng.standard_normal((2, 3, 9, 9)))
    w = dg.Tensor(rng.standard_normal((5, 3, 3, 3)))
    y = dg.Tensor(rng.standard_normal((2, 5, 4, 4)))
    lhs = float((conv2d(x, w, stride=2) * y).sum().item())
    rhs = float((x * conv_transpose2d(y, w, stride=2)).sum().item())
    assert abs(lhs - rhs) <= 1e-9 * max(1.0, abs(lhs))


# ----------------------------------------------------------------------------- gradcheck (float64)
def _leaves(rng, *shapes):
    return [dg.Tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]


@pytest.mark.parametrize(
    "kw", [dict(), dict(stride=2, padding=1), dict(padding="same", dilation=2), dict(groups=2, padding=1)], ids=str
)
def test_conv2d_gradcheck(kw):
    rng = np.random.default_rng(0)
    x, w, b = _leaves(rng, (2, 4, 5, 5), (2, 4 // kw.get("groups", 1), 3, 3), (2,))
    assert gradcheck(lambda x, w, b: conv2d(x, w, b, **kw), [x, w, b])


def test_conv2d_gradcheck_col2im_path():
    """Out channels > 2x in channels takes the GEMM + col2im input gradient (stride 1)."""
    rng = np.random.default_rng(1)
    x, w = _leaves(rng, (1, 1, 5, 5), (3, 1, 2, 3))
    assert gradcheck(lambda x, w: conv2d(x, w, padding=1), [x, w])


def test_conv1d_gradcheck():
    rng = np.random.default_rng(2)
    x, w, b = _leaves(rng, (2, 2, 7), (3, 2, 3), (3,))
    assert gradcheck(lambda x, w, b: conv1d(x, w, b, stride=2, padding=1), [x, w, b])


@pytest.mark.parametrize("kw", [dict(stride=2, padding=1, output_padding=1), dict(dilation=2), dict(groups=2)], ids=str)
def test_conv_transpose2d_gradcheck(kw):
    rng = np.random.default_rng(3)
    x, w, b = _leaves(rng, (2, 2, 3, 3), (2, 2, 3, 3), (2 * kw.get("groups", 1),))
    assert gradcheck(lambda x, w, b: conv_transpose2d(x, w, b, **kw), [x, w, b])


def test_conv_transpose1d_gradcheck():
    rng = np.random.default_rng(4)
    x, w = _leaves(rng, (1, 2, 4), (2, 3, 3))
    assert gradcheck(lambda x, w: conv_transpose1d(x, w, stride=2), [x, w])


# ----------------------------------------------------------------------------- errors
def _t(*shape, dtype=np.float32):
    return dg.Tensor(np.zeros(shape, dtype=dtype))


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: conv2d(_t(1, 2, 5, 5), _t(4, 3, 3, 3)), r"conv2d.*3 channels, but got 2"),
        (lambda: conv2d(_t(1, 4, 5, 5), _t(4, 3, 3, 3), groups=2), r"conv2d.*groups=2.*6 channels"),
        (lambda: conv2d(_t(1, 4, 5, 5), _t(3, 2, 3, 3), groups=2), r"out_channels \(3\).*divisible by groups"),
        (lambda: conv2d(_t(1, 3, 2, 2), _t(4, 3, 3, 3)), r"conv2d.*Kernel size can't be greater"),
        (lambda: conv2d(_t(1, 3, 4, 4), _t(4, 3, 3, 3), dilation=2), r"conv2d.*\(5, 5\)"),
        (lambda: conv2d(_t(5, 5), _t(4, 3, 3, 3)), r"conv2d.*4-D \(batched\).*\(5, 5\)"),
        (lambda: conv2d(_t(1, 1, 3, 5, 5), _t(4, 3, 3, 3)), r"conv2d.*got shape \(1, 1, 3, 5, 5\)"),
        (lambda: conv2d(_t(1, 3, 5, 5), _t(4, 3, 3)), r"conv2d.*4-D weight"),
        (lambda: conv1d(_t(1, 3, 5, 5), _t(4, 3, 3)), r"conv1d.*\(N, C, L\)"),
        (lambda: conv2d(_t(1, 3, 5, 5), _t(4, 3, 3, 3), _t(3)), r"conv2d: bias.*4 output channels"),
        (lambda: conv2d(_t(1, 3, 5, 5), _t(4, 3, 3, 3, dtype=np.float64)), r"conv2d.*dtype"),
        (lambda: conv2d(_t(1, 3, 5, 5), _t(4, 3, 3, 3), stride=2, padding="same"), r"strided convolutions"),
        (lambda: conv2d(_t(1, 3, 5, 5), _t(4, 3, 3, 3), padding="full"), r"invalid padding string"),
        (lambda: conv2d(_t(1, 3, 5, 5), _t(4, 3, 3, 3), stride=0), r"stride must be positive"),
        (lambda: conv2d(_t(1, 3, 5, 5), _t(4, 3, 3, 3), groups=0), r"groups must be a positive"),
        (lambda: conv2d(_t(1, 3, 5, 5), _t(4, 3, 3, 3), padding=-1), r"padding must be non-negative"),
        (lambda: conv_transpose2d(_t(1, 3, 4, 4), _t(4, 2, 3, 3)), r"conv_transpose2d.*4 channels, but got 3"),
        (lambda: conv_transpose2d(_t(1, 4, 4, 4), _t(4, 2, 3, 3), output_padding=1), r"output padding must be"),
        (lambda: conv_transpose2d(_t(1, 4, 1, 1), _t(4, 2, 3, 3), padding=2), r"conv_transpose2d.*too small"),
        (lambda: conv_transpose2d(_t(1, 3, 4, 4), _t(3, 2, 3, 3), groups=2), r"divisible by groups"),
    ],
)
def test_conv_errors(call, match):
    with pytest.raises((RuntimeError, ValueError), match=match):
        call()
