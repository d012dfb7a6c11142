"""Losses vs torch (forward and gradients, every reduction and option), float64 gradchecks, errors,
and the L1/L2 penalty helpers."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from conftest import devices

import deepgrad as dg
from deepgrad.autograd import gradcheck
from deepgrad.ops import loss as L
from deepgrad.ops import loss_classification as LC
from deepgrad.regularization import l1_penalty, l2_penalty

REDUCTIONS = ["none", "mean", "sum"]
RNG = np.random.default_rng(1234)


def _dg(a, grad=False):
    return dg.tensor(a, requires_grad=grad) if grad else dg.tensor(a)


def _th(a, grad=False):
    return torch.tensor(a, requires_grad=grad)


def check(dg_fn, th_fn, arrays, grads, fwd_rtol=1e-5, grad_rtol=1e-4, atol=1e-6, **kw):
    """Run both, backprop a random upstream gradient, compare outputs and grads of inputs in ``grads``."""
    d_in = [None if a is None else _dg(a, i in grads) for i, a in enumerate(arrays)]
    t_in = [None if a is None else _th(a, i in grads) for i, a in enumerate(arrays)]
    out_d, out_t = dg_fn(*d_in, **kw), th_fn(*t_in, **kw)
    assert out_d.shape == tuple(out_t.shape)
    np.testing.assert_allclose(out_d.array, out_t.detach().numpy(), rtol=fwd_rtol, atol=atol)
    up = RNG.standard_normal(out_t.shape).astype(out_t.detach().numpy().dtype)
    out_d.backward(_dg(up))
    out_t.backward(torch.tensor(up))
    for i in grads:
        scale = max(1.0, float(np.abs(t_in[i].grad.numpy()).max()))
        np.testing.assert_allclose(d_in[i].grad.array, t_in[i].grad.numpy(), rtol=grad_rtol, atol=atol * scale,
                                   err_msg=f"gradient of input #{i}")
    return out_d


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def f64(*shape):
    return RNG.standard_normal(shape)


# ----------------------------------------------------------------------------- regression
POINTWISE = [
    ("mse", L.mse_loss, TF.mse_loss, {}),
    ("l1", L.l1_loss, TF.l1_loss, {}),
    ("smooth_l1", L.smooth_l1_loss, TF.smooth_l1_loss, {"beta": 0.7}),
    ("smooth_l1_b0", L.smooth_l1_loss, TF.smooth_l1_loss, {"beta": 0.0}),
    ("huber", L.huber_loss, TF.huber_loss, {"delta": 0.6}),
    ("huber_big", L.huber_loss, TF.huber_loss, {"delta": 2.5}),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name,fn,tfn,kw", POINTWISE, ids=[p[0] for p in POINTWISE])
def test_pointwise_parity(name, fn, tfn, kw, reduction):
    x, t = f32(4, 5), f32(4, 5)
    t[0, :2] = x[0, :2]  # exact ties: the l1 subgradient 0 must match too
    check(fn, tfn, [x, t], grads=(0, 1), reduction=reduction, **kw)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name,fn,tfn", [("mse", L.mse_loss, TF.mse_loss), ("l1", L.l1_loss, TF.l1_loss),
                                         ("huber", L.huber_loss, TF.huber_loss)])
def test_weighted_pointwise_parity(name, fn, tfn, reduction):
    x, t, w = f32(3, 4), f32(3, 4), np.abs(f32(3, 4)) + 0.1
    check(lambda a, b, c, **k: fn(a, b, weight=c, **k), lambda a, b, c, **k: tfn(a, b, weight=c, **k),
          [x, t, w], grads=(0, 1, 2), reduction=reduction)


def test_pointwise_broadcast_warns_like_torch():
    x, t = f32(4, 3), f32(4, 1)
    with pytest.warns(UserWarning, match="target size"):
        check(L.mse_loss, TF.mse_loss, [x, t], grads=(0, 1))
    with pytest.raises(ValueError, match=r"l1_loss.*\(3,\).*\(4,\)"), pytest.warns(UserWarning):
        L.l1_loss(_dg(f32(3)), _dg(f32(4)))


@pytest.mark.parametrize("name,fn,kw", [("mse", L.mse_loss, {}), ("l1", L.l1_loss, {}),
                                        ("smooth_l1", L.smooth_l1_loss, {"beta": 0.5}),
                                        ("huber", L.huber_loss, {"delta": 0.8})])
def test_pointwise_gradcheck(name, fn, kw):
    x, t = _dg(f64(3, 4), True), _dg(f64(3, 4) * 0.3, True)
    assert gradcheck(lambda a, b: fn(a, b, reduction="none", **kw), [x, t])
    assert gradcheck(lambda a, b: fn(a, b, **kw), [x, t])


# ----------------------------------------------------------------------------- cross-entropy
def _targets(shape, n_cls, ignore=None):
    t = RNG.integers(0, n_cls, shape)
    if ignore is not None:
        t.reshape(-1)[::3] = ignore
    return t


CE_SHAPES = [((6, 5), (6,)), ((3, 4, 2, 3), (3, 2, 3)), ((4,), ())]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.15])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [-100, 1])
@pytest.mark.parametrize("shapes", CE_SHAPES, ids=["2d", "4d", "unbatched"])
def test_cross_entropy_class_indices(shapes, ignore_index, weighted, smoothing, reduction):
    xs, ts = shapes
    n_cls = xs[0] if len(xs) == 1 else xs[1]
    x = f32(*xs) * 2
    t = _targets(ts, n_cls, ignore=ignore_index if ts else None)
    w = (np.abs(f32(n_cls)) + 0.2) if weighted else None

    def run(fn):
        def call(a, b, c):
            return fn(a, b, weight=c, ignore_index=ignore_index, reduction=reduction, label_smoothing=smoothing)
        return call

    d_in = [_dg(x, True), _dg(t), None if w is None else _dg(w)]
    t_in = [_th(x, True), _th(t), None if w is None else _th(w)]
    out_d, out_t = run(LC.cross_entropy)(*d_in), run(TF.cross_entropy)(*t_in)
    np.testing.assert_allclose(out_d.array, out_t.detach().numpy(), rtol=1e-5, atol=1e-6)
    up = RNG.standard_normal(out_t.shape).astype(np.float32)
    out_d.backward(_dg(up))
    out_t.backward(torch.tensor(up))
    np.testing.assert_allclose(d_in[0].grad.array, t_in[0].grad.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("xs", [(5, 4), (2, 3, 4), (4,)], ids=["2d", "3d", "unbatched"])
def test_cross_entropy_probability_targets(xs, weighted, smoothing, reduction):
    n_cls = xs[0] if len(xs) == 1 else xs[1]
    x = f32(*xs)
    p = np.exp(f32(*xs))
    p /= p.sum(axis=0 if len(xs) == 1 else 1, keepdims=True)
    w = (np.abs(f32(n_cls)) + 0.2) if weighted else None
    # Gradients w.r.t. the logits, the soft targets and (composed, as torch) the class weights.
    check(lambda a, b, c, **k: LC.cross_entropy(a, b, weight=c, **k),
          lambda a, b, c, **k: TF.cross_entropy(a, b, weight=c, **k),
          [x, p.astype(np.float32), w], grads=(0, 1) + ((2,) if weighted else ()),
          reduction=reduction, label_smoothing=smoothing)


def test_cross_entropy_extremes_are_stable():
    x = np.array([[1000.0, 0.0, -1000.0], [-1e4, 1e4, 0.0]], dtype=np.float32)
    out = check(LC.cross_entropy, TF.cross_entropy, [x, np.array([2, 0])], grads=(0,))
    assert np.isfinite(out.array)


def test_cross_entropy_all_ignored_is_nan_like_torch():
    x = f32(3, 4)
    t = np.full(3, -100)
    d = LC.cross_entropy(_dg(x, True), _dg(t))
    assert np.isnan(d.array) and np.isnan(TF.cross_entropy(_th(x), _th(t)).item())
    assert float(LC.cross_entropy(_dg(x), _dg(t), reduction="sum").array) == 0.0


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_cross_entropy_gradcheck(smoothing):
    x = _dg(f64(4, 3, 2), True)
    t = _dg(np.array([[0, 2], [1, -100], [2, 2], [0, 1]]))
    w = _dg(np.abs(f64(3)) + 0.1)
    for red in REDUCTIONS:
        assert gradcheck(lambda a, r=red: LC.cross_entropy(a, t, weight=w, reduction=r, label_smoothing=smoothing), [x])
    soft = _dg(np.abs(f64(4, 3, 2)), True)
    assert gradcheck(lambda a, b: LC.cross_entropy(a, b, weight=w, label_smoothing=smoothing), [x, soft])


# ----------------------------------------------------------------------------- nll
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shapes", CE_SHAPES, ids=["2d", "4d", "unbatched"])
def test_nll_loss_parity(shapes, weighted, reduction):
    xs, ts = shapes
    n_cls = xs[0] if len(xs) == 1 else xs[1]
    x = f32(*xs)
    t = _targets(ts, n_cls, ignore=-100 if ts else None)
    w = (np.abs(f32(n_cls)) + 0.2) if weighted else None
    check(lambda a, b, c, **k: LC.nll_loss(a, b, weight=c, **k),
          lambda a, b, c, **k: TF.nll_loss(a, b, weight=c, **k), [x, t, w], grads=(0,), reduction=reduction)


def test_nll_after_log_softmax_equals_cross_entropy_and_gradcheck():
    x, t = f64(5, 4), RNG.integers(0, 4, 5)
    a = LC.nll_loss(dg.log_softmax(_dg(x), 1), _dg(t), ignore_index=2)
    b = LC.cross_entropy(_dg(x), _dg(t), ignore_index=2)
    np.testing.assert_allclose(a.array, b.array, rtol=1e-12)
    xg = _dg(x, True)
    assert gradcheck(lambda v: LC.nll_loss(v, _dg(t), weight=_dg(np.arange(1.0, 5.0)), ignore_index=2), [xg])


# ----------------------------------------------------------------------------- binary
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("wshape", [None, (4,), (3, 4)])
def test_binary_cross_entropy_parity(wshape, reduction):
    x = (1 / (1 + np.exp(-f32(3, 4)))).astype(np.float32)
    t = RNG.random((3, 4)).astype(np.float32)
    w = None if wshape is None else np.abs(f32(*wshape)) + 0.1
    check(lambda a, b, c, **k: LC.binary_cross_entropy(a, b, weight=c, **k),
          lambda a, b, c, **k: TF.binary_cross_entropy(a, b, weight=c, **k),
          [x, t, w], grads=(0, 1), reduction=reduction)


def test_binary_cross_entropy_clamps_log_like_torch():
    x = np.array([0.0, 1.0, 0.5, 1e-30], dtype=np.float32)
    t = np.array([1.0, 0.0, 0.5, 1.0], dtype=np.float32)
    d = LC.binary_cross_entropy(_dg(x, True), _dg(t), reduction="none")
    tt = TF.binary_cross_entropy(_th(x, True), _th(t), reduction="none")
    np.testing.assert_allclose(d.array, tt.detach().numpy(), rtol=1e-6)
    assert d.array[0] == 100.0
    xd, xt = _dg(x, True), _th(x, True)
    LC.binary_cross_entropy(xd, _dg(t), reduction="sum").backward()
    TF.binary_cross_entropy(xt, _th(t), reduction="sum").backward()
    np.testing.assert_allclose(xd.grad.array, xt.grad.numpy(), rtol=1e-5)  # includes -1e12 and +1e12


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("pos", [False, True])
def test_bce_with_logits_parity(pos, weighted, reduction):
    x = f32(5, 3) * 3
    x[0] = [80.0, -80.0, 0.0]  # far in the tails: the log-sum-exp form must stay finite
    t = RNG.random((5, 3)).astype(np.float32)
    w = np.abs(f32(5, 3)) + 0.1 if weighted else None
    pw = np.abs(f32(3)) * 2 + 0.1 if pos else None
    out = check(lambda a, b, c, d, **k: LC.binary_cross_entropy_with_logits(a, b, weight=c, pos_weight=d, **k),
                lambda a, b, c, d, **k: TF.binary_cross_entropy_with_logits(a, b, weight=c, pos_weight=d, **k),
                [x, t, w, pw], grads=(0, 1), reduction=reduction)
    assert np.all(np.isfinite(out.array))


def test_binary_gradchecks():
    p = _dg(np.clip(RNG.random((3, 4)), 0.05, 0.95), True)
    t = _dg(RNG.random((3, 4)), True)
    w = _dg(np.abs(f64(4)) + 0.1)
    assert gradcheck(lambda a, b: LC.binary_cross_entropy(a, b, weight=w, reduction="none"), [p, t])
    x = _dg(f64(3, 4), True)
    pw = _dg(np.abs(f64(4)) + 0.5)
    for red in REDUCTIONS:
        assert gradcheck(lambda a, b, r=red: LC.binary_cross_entropy_with_logits(a, b, weight=w, pos_weight=pw,
                                                                                reduction=r), [x, t])


# ----------------------------------------------------------------------------- kl_div
@pytest.mark.parametrize("reduction", ["none", "sum", "batchmean", "mean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_parity(log_target, reduction):
    x = np.log(RNG.dirichlet(np.ones(5), size=4)).astype(np.float32)
    t = RNG.dirichlet(np.ones(5), size=4).astype(np.float32)
    if log_target:
        t = np.log(t)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # both warn about "mean"
        check(L.kl_div, TF.kl_div, [x, t], grads=(0, 1), reduction=reduction, log_target=log_target)


def test_kl_div_zero_target_and_gradcheck():
    x, t = np.log(np.full((2, 3), 1 / 3)), np.array([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])
    out = L.kl_div(_dg(x), _dg(t), reduction="sum")
    assert np.isclose(float(out.array), float(TF.kl_div(_th(x), _th(t), reduction="sum")))
    xg, tg = _dg(f64(3, 4), True), _dg(RNG.random((3, 4)) + 0.1, True)
    assert gradcheck(lambda a, b: L.kl_div(a, b, reduction="batchmean"), [xg, tg])
    assert gradcheck(lambda a, b: L.kl_div(a, b, reduction="none", log_target=True), [xg, _dg(f64(3, 4), True)])


# ----------------------------------------------------------------------------- errors, legacy args
def test_legacy_size_average_and_reduce_map_to_reduction():
    x, t = _dg(f32(3, 4)), _dg(f32(3, 4))
    with pytest.warns(UserWarning):
        assert L.mse_loss(x, t, size_average=False).shape == ()
    with pytest.warns(UserWarning):
        assert L.mse_loss(x, t, reduce=False).shape == (3, 4)
    np.testing.assert_allclose(L.mse_loss(x, t, reduction="sum").array,
                               TF.mse_loss(_th(x.array), _th(t.array), reduction="sum").numpy(), rtol=1e-6)


def test_errors_name_the_loss_and_shapes():
    x = _dg(f32(4, 3))
    with pytest.raises(ValueError, match=r"cross_entropy.*\(5,\).*\(4, 3\)"):
        LC.cross_entropy(x, _dg(np.zeros(5, dtype=np.int64)))
    with pytest.raises(IndexError, match=r"cross_entropy: target class 3 out of range.*\(4, 3\)"):
        LC.cross_entropy(x, _dg(np.array([0, 1, 2, 3])))
    with pytest.raises(IndexError, match=r"nll_loss: target class -1"):
        LC.nll_loss(x, _dg(np.array([0, 1, -1, 2])))
    with pytest.raises(TypeError, match=r"cross_entropy.*integer class indices.*float32"):
        LC.cross_entropy(x, _dg(f32(4)))
    with pytest.raises(TypeError, match="probabilities"):
        LC.cross_entropy(x, _dg(np.zeros((4, 3), dtype=np.int64)))
    with pytest.raises(ValueError, match=r"weight.*3 classes.*\(2,\)"):
        LC.cross_entropy(x, _dg(np.array([0, 1, 2, 0])), weight=_dg(f32(2)))
    with pytest.raises(ValueError, match="label_smoothing"):
        LC.cross_entropy(x, _dg(np.array([0, 1, 2, 0])), label_smoothing=1.5)
    with pytest.raises(ValueError, match="reduction"):
        L.mse_loss(x, x, reduction="avg")
    with pytest.raises(ValueError, match=r"binary_cross_entropy: target size \(4,\).*\(4, 3\)"):
        LC.binary_cross_entropy(dg.sigmoid(x), _dg(f32(4)))
    with pytest.raises(ValueError, match="between 0 and 1"):
        LC.binary_cross_entropy(x, _dg(np.zeros((4, 3), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"pos_weight of shape \(2,\)"):
        LC.binary_cross_entropy_with_logits(x, x, pos_weight=_dg(f32(2)))
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument 'weight'"):
        LC.cross_entropy(x, _dg(np.array([0, 1, 2, 0])), weight=_dg(f32(3), True))
    with pytest.raises(ValueError, match="ignore_index"):
        LC.cross_entropy(x, _dg(f32(4, 3)), ignore_index=0)


# ----------------------------------------------------------------------------- penalties
def test_l2_penalty_gradient_is_the_weight_decay_term():
    lam = 0.03
    w1, w2 = _dg(f64(3, 4), True), _dg(f64(5), True)
    pen = l2_penalty([w1, w2], lam / 2)
    np.testing.assert_allclose(float(pen.array), lam / 2 * ((w1.array**2).sum() + (w2.array**2).sum()))
    pen.backward()
    np.testing.assert_allclose(w1.grad.array, lam * w1.array)  # SGD's weight_decay=lam adds exactly this
    np.testing.assert_allclose(w2.grad.array, lam * w2.array)
    assert gradcheck(lambda a, b: l2_penalty([a, b], 0.7), [w1, w2])


def test_l1_penalty_value_and_gradient():
    w = _dg(np.array([[1.0, -2.0], [0.0, 3.0]]), True)
    pen = l1_penalty(w, 0.1)
    assert np.isclose(float(pen.array), 0.6)
    pen.backward()
    np.testing.assert_allclose(w.grad.array, 0.1 * np.sign(w.array))
    with pytest.raises(ValueError, match="empty"):
        l2_penalty(iter([]), 1.0)


# ----------------------------------------------------------------------------- devices
DEVICE_CASES = [
    (lambda x, t: LC.cross_entropy(x, t, weight=dg.tensor(np.arange(1.0, 6.0, dtype=np.float32), device=x.device),
                                  ignore_index=1, label_smoothing=0.1), "index"),
    (lambda x, t: LC.nll_loss(x, t, reduction="sum"), "index"),
    (lambda x, t: LC.cross_entropy(x, t, label_smoothing=0.2), "soft"),
    (lambda x, t: LC.binary_cross_entropy_with_logits(x, t, pos_weight=dg.ones(5, device=x.device) * 2), "soft"),
    (lambda x, t: LC.binary_cross_entropy(dg.sigmoid(x), t, reduction="none"), "soft"),
    (lambda x, t: L.smooth_l1_loss(x, t, beta=0.5), "soft"),
    (lambda x, t: L.kl_div(dg.log_softmax(x, 1), t, reduction="batchmean"), "soft"),
]


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("case", range(len(DEVICE_CASES)))
def test_losses_on_device_match_numpy(device, case):
    fn, kind = DEVICE_CASES[case]
    x = f32(4, 5)
    t = RNG.integers(0, 5, 4) if kind == "index" else RNG.dirichlet(np.ones(5), size=4).astype(np.float32)
    results = []
    for dev in ("cpu", device):
        xd = dg.tensor(x, device=dev, requires_grad=True)
        out = fn(xd, dg.tensor(t, device=dev))
        out.sum().backward()
        results.append((out.cpu().array, xd.grad.cpu().array))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-4, atol=1e-6)
