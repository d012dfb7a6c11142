"""batch_norm / layer_norm / group_norm / instance_norm vs torch: outputs, input/weight/bias grads,
running statistics over several steps, eval mode, float64 gradchecks (random upstream), errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from conftest import devices
from core_parity import assert_close

import deepgrad as dg
from deepgrad.autograd import gradcheck
from deepgrad.ops import norm as N

RNG = np.random.default_rng(7)


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _pair(a, grad=True):
    return dg.tensor(a, requires_grad=grad), torch.tensor(a, requires_grad=grad)


def _compare_grads(pairs, rtol=1e-4, atol=1e-5):
    for i, (d, t) in enumerate(pairs):
        assert_close(d.grad, t.grad, rtol, atol, f"grad #{i}", scaled=True)


SHAPES = [(8, 3), (4, 3, 5), (3, 2, 4, 5)]


# ----------------------------------------------------------------------------- batch norm
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", SHAPES, ids=["2d", "3d", "4d"])
def test_batch_norm_training_parity_with_running_stats(shape, affine):
    c = shape[1]
    rm_d, rv_d = dg.zeros(c), dg.ones(c)
    rm_t, rv_t = torch.zeros(c), torch.ones(c)
    w = (_pair(f32(c) + 1.0), _pair(f32(c))) if affine else ((None, None), (None, None))
    (wd, wt), (bd, bt) = w
    rm_array = rm_d.array
    for _ in range(3):  # several steps: the running statistics must track torch's exactly
        xd, xt = _pair(f32(*shape) * 2 + 0.5)
        yd = N.batch_norm(xd, rm_d, rv_d, wd, bd, training=True, momentum=0.2, eps=1e-4)
        yt = TF.batch_norm(xt, rm_t, rv_t, wt, bt, training=True, momentum=0.2, eps=1e-4)
        np.testing.assert_allclose(yd.array, yt.detach().numpy(), rtol=1e-5, atol=1e-5)
        up = f32(*shape)
        yd.backward(dg.tensor(up))
        yt.backward(torch.tensor(up))
        _compare_grads([(xd, xt)] + ([(wd, wt), (bd, bt)] if affine else []))
        if affine:
            wd.grad = bd.grad = wt.grad = bt.grad = None
        np.testing.assert_allclose(rm_d.array, rm_t.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(rv_d.array, rv_t.numpy(), rtol=1e-5, atol=1e-6)
    assert rm_d.array is rm_array  # updated in place: a module's buffer keeps its identity

    # Eval mode with the accumulated statistics.
    xd, xt = _pair(f32(*shape))
    yd = N.batch_norm(xd, rm_d, rv_d, wd, bd, training=False, eps=1e-4)
    yt = TF.batch_norm(xt, rm_t, rv_t, wt, bt, training=False, eps=1e-4)
    np.testing.assert_allclose(yd.array, yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    up = f32(*shape)
    yd.backward(dg.tensor(up))
    yt.backward(torch.tensor(up))
    _compare_grads([(xd, xt)] + ([(wd, wt), (bd, bt)] if affine else []))
    before = rm_d.array.copy()
    N.batch_norm(xd, rm_d, rv_d, training=False)
    np.testing.assert_array_equal(rm_d.array, before)  # eval never touches the statistics


def test_batch_norm_without_running_stats_uses_batch_stats():
    xd, xt = _pair(f32(6, 4, 3))
    wd, wt = _pair(f32(4))
    yd = N.batch_norm(xd, None, None, wd, None, training=True)
    yt = TF.batch_norm(xt, None, None, wt, None, training=True)
    np.testing.assert_allclose(yd.array, yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    up = f32(6, 4, 3)
    yd.backward(dg.tensor(up))
    yt.backward(torch.tensor(up))
    _compare_grads([(xd, xt), (wd, wt)])
    with pytest.raises(ValueError, match="running_mean must be defined in evaluation mode"):
        N.batch_norm(xd, None, None, training=False)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 2, 3)], ids=["2d", "4d"])
def test_batch_norm_gradcheck(shape, training):
    c = shape[1]
    x = dg.tensor(RNG.standard_normal(shape) * 2 + 1, requires_grad=True)
    w = dg.tensor(RNG.standard_normal(c) + 1, requires_grad=True)
    b = dg.tensor(RNG.standard_normal(c), requires_grad=True)
    rm, rv = dg.tensor(RNG.standard_normal(c)), dg.tensor(RNG.random(c) + 0.5)
    # Running stats are only read in eval mode; in training pass None so gradcheck's repeated calls
    # do not drift them (the update itself is checked against torch above).
    stats = (None, None) if training else (rm, rv)
    assert gradcheck(lambda a, g, h: N.batch_norm(a, *stats, g, h, training=training), [x, w, b])
    assert gradcheck(lambda a: N.batch_norm(a, *stats, training=training), [x])
    assert gradcheck(lambda a, h: N.batch_norm(a, *stats, None, h, training=training), [x, b])
    assert gradcheck(lambda a, g: N.batch_norm(a, *stats, g, None, training=training), [x, w])


def test_batch_norm_errors():
    with pytest.raises(ValueError, match=r"more than 1 value per channel.*\[1, 3\]"):
        N.batch_norm(dg.randn(1, 3), dg.zeros(3), dg.ones(3), training=True)
    with pytest.raises(ValueError, match=r"running_mean should have shape \(3,\).*\(4, 3\), got \(4,\)"):
        N.batch_norm(dg.randn(4, 3), dg.zeros(4), dg.ones(3), training=True)
    with pytest.raises(ValueError, match=r"weight should have shape \(3,\)"):
        N.batch_norm(dg.randn(4, 3), None, None, weight=dg.ones(2), training=True)
    with pytest.raises(ValueError, match=r"\(N, C, \*\)"):
        N.batch_norm(dg.randn(4), None, None, training=True)


# ----------------------------------------------------------------------------- layer norm
@pytest.mark.parametrize("affine", [True, False, "bias"])
@pytest.mark.parametrize("shape,normalized", [((4, 6), 6), ((2, 3, 4, 5), (4, 5)), ((3, 5, 7), [5, 7])])
def test_layer_norm_parity(shape, normalized, affine):
    ns = (normalized,) if isinstance(normalized, int) else tuple(normalized)
    xd, xt = _pair(f32(*shape) * 3 + 1)
    (wd, wt), (bd, bt) = (_pair(f32(*ns) + 1), _pair(f32(*ns))) if affine else ((None, None), (None, None))
    if affine == "bias":
        wd = wt = None
    yd = N.layer_norm(xd, normalized, wd, bd, eps=1e-5)
    yt = TF.layer_norm(xt, ns, wt, bt, eps=1e-5)
    np.testing.assert_allclose(yd.array, yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    up = f32(*shape)
    yd.backward(dg.tensor(up))
    yt.backward(torch.tensor(up))
    _compare_grads([(xd, xt)] + ([(bd, bt)] if affine else []) + ([(wd, wt)] if affine is True else []))


def test_layer_norm_gradcheck_and_errors():
    x = dg.tensor(RNG.standard_normal((3, 2, 4)), requires_grad=True)
    w = dg.tensor(RNG.standard_normal((2, 4)), requires_grad=True)
    b = dg.tensor(RNG.standard_normal((2, 4)), requires_grad=True)
    assert gradcheck(lambda a, g, h: N.layer_norm(a, (2, 4), g, h), [x, w, b])
    assert gradcheck(lambda a: N.layer_norm(a, 4), [x])
    with pytest.raises(ValueError, match=r"normalized_shape=\[5\].*\[\*, 5\].*\[3, 2, 4\]"):
        N.layer_norm(x, 5)
    with pytest.raises(ValueError, match=r"weight should have shape \(4,\)"):
        N.layer_norm(x, 4, weight=dg.ones(3))


# ----------------------------------------------------------------------------- group / instance norm
@pytest.mark.parametrize("groups", [1, 2, 6])
def test_group_norm_parity_and_gradcheck(groups):
    xd, xt = _pair(f32(3, 6, 4, 2))
    wd, wt = _pair(f32(6) + 1)
    bd, bt = _pair(f32(6))
    yd, yt = N.group_norm(xd, groups, wd, bd), TF.group_norm(xt, groups, wt, bt)
    np.testing.assert_allclose(yd.array, yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    up = f32(3, 6, 4, 2)
    yd.backward(dg.tensor(up))
    yt.backward(torch.tensor(up))
    _compare_grads([(xd, xt), (wd, wt), (bd, bt)])
    x = dg.tensor(RNG.standard_normal((2, 6, 3)), requires_grad=True)
    w = dg.tensor(RNG.standard_normal(6), requires_grad=True)
    assert gradcheck(lambda a, g: N.group_norm(a, groups, g), [x, w])
    with pytest.raises(ValueError, match="divisible by num_groups"):
        N.group_norm(xd, 4)


@pytest.mark.parametrize("use_input_stats", [True, False])
def test_instance_norm_parity(use_input_stats):
    c = 3
    rm_d, rv_d, rm_t, rv_t = dg.zeros(c), dg.ones(c) * 2, torch.zeros(c), torch.ones(c) * 2
    wd, wt = _pair(f32(c) + 1)
    bd, bt = _pair(f32(c))
    xd, xt = _pair(f32(2, c, 4, 5))
    yd = N.instance_norm(xd, rm_d, rv_d, wd, bd, use_input_stats=use_input_stats, momentum=0.3)
    yt = TF.instance_norm(xt, rm_t, rv_t, wt, bt, use_input_stats=use_input_stats, momentum=0.3)
    np.testing.assert_allclose(yd.array, yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rm_d.array, rm_t.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rv_d.array, rv_t.numpy(), rtol=1e-5, atol=1e-6)
    up = f32(2, c, 4, 5)
    yd.backward(dg.tensor(up))
    yt.backward(torch.tensor(up))
    _compare_grads([(xd, xt), (wd, wt), (bd, bt)])


def test_instance_norm_gradcheck():
    x = dg.tensor(RNG.standard_normal((2, 3, 4)), requires_grad=True)
    w = dg.tensor(RNG.standard_normal(3), requires_grad=True)
    assert gradcheck(lambda a, g: N.instance_norm(a, weight=g), [x, w])


@pytest.mark.parametrize("device", devices)
def test_norms_on_device_match_numpy(device):
    x, up = f32(4, 6, 3, 2), f32(4, 6, 3, 2)
    w, b = f32(6) + 1, f32(6)
    results = []
    for dev in ("cpu", device):
        xd = dg.tensor(x, device=dev, requires_grad=True)
        wd, bd = dg.tensor(w, device=dev, requires_grad=True), dg.tensor(b, device=dev, requires_grad=True)
        rm, rv = dg.zeros(6, device=dev), dg.ones(6, device=dev)
        y = N.batch_norm(xd, rm, rv, wd, bd, training=True) + N.layer_norm(xd, (3, 2)) + N.group_norm(xd, 3, wd)
        y.backward(dg.tensor(up, device=dev))
        results.append([t.cpu().array for t in (y, xd.grad, wd.grad, bd.grad, rm, rv)])
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
