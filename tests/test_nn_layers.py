"""Every layer against torch.nn: forward, input and parameter gradients, running statistics,
and weights moving both ways through safetensors files."""

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import nn

torch = pytest.importorskip("torch")
tnn = torch.nn

RTOL, ATOL = 1e-4, 1e-5


def _to_torch_state(module):
    return {k: torch.from_numpy(np.array(v.numpy())) for k, v in module.state_dict().items()}


def _close(a, b, what, rtol=RTOL, atol=ATOL):
    a = a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol, err_msg=what)


def check_layer(dg_layer, t_layer, x, train=True, steps=1, seed=0, rtol=RTOL, atol=ATOL):
    """Same weights -> same outputs, input gradients and parameter gradients (and buffers)."""
    t_layer.load_state_dict(_to_torch_state(dg_layer))
    dg_layer.train(train)
    t_layer.train(train)
    rng = np.random.default_rng(seed)
    for step in range(steps):
        xd = dg.tensor(x, requires_grad=True)
        xt = torch.tensor(x, requires_grad=True)
        od, ot = dg_layer(xd), t_layer(xt)
        _close(od, ot.detach().numpy(), f"forward (step {step})", rtol, atol)
        g = rng.standard_normal(ot.shape).astype(np.float32)
        dg_layer.zero_grad()
        t_layer.zero_grad()
        od.backward(dg.tensor(g))
        ot.backward(torch.tensor(g))
        _close(xd.grad, xt.grad.numpy(), f"input grad (step {step})", rtol, atol)
        tparams = dict(t_layer.named_parameters())
        for name, p in dg_layer.named_parameters():
            _close(p.grad, tparams[name].grad.numpy(), f"grad of {name} (step {step})", rtol, atol)
    tbuf = dict(t_layer.named_buffers())
    for name, b in dg_layer.named_buffers():
        _close(b, tbuf[name].numpy(), f"buffer {name}", rtol, atol)


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_linear_and_no_bias():
    check_layer(nn.Linear(7, 5), tnn.Linear(7, 5), rand(4, 7))
    check_layer(nn.Linear(7, 5, bias=False), tnn.Linear(7, 5, bias=False), rand(2, 3, 7))


@pytest.mark.parametrize(
    "kw",
    [
        dict(kernel_size=3),
        dict(kernel_size=3, stride=2, padding=1),
        dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
        dict(kernel_size=3, padding="same", dilation=2),
        dict(kernel_size=3, padding="valid", bias=False),
        dict(kernel_size=1, groups=2),
    ],
)
def test_conv2d(kw):
    check_layer(nn.Conv2d(4, 6, **kw), tnn.Conv2d(4, 6, **kw), rand(2, 4, 9, 8))


def test_conv2d_depthwise_and_unbatched():
    check_layer(nn.Conv2d(4, 8, 3, groups=4, padding=1), tnn.Conv2d(4, 8, 3, groups=4, padding=1), rand(2, 4, 6, 6))
    check_layer(nn.Conv2d(3, 2, 3), tnn.Conv2d(3, 2, 3), rand(3, 7, 7))


def test_conv1d():
    check_layer(nn.Conv1d(3, 5, 3, stride=2, padding=1), tnn.Conv1d(3, 5, 3, stride=2, padding=1), rand(2, 3, 11))


@pytest.mark.parametrize("kw", [dict(stride=2, padding=1, output_padding=1), dict(stride=1), dict(stride=2, groups=2)])
def test_conv_transpose2d(kw):
    check_layer(nn.ConvTranspose2d(4, 6, 3, **kw), tnn.ConvTranspose2d(4, 6, 3, **kw), rand(2, 4, 5, 5))


def test_conv_transpose2d_output_size():
    d, t = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1), tnn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    t.load_state_dict(_to_torch_state(d))
    x = rand(1, 2, 4, 4)
    out_d = d(dg.tensor(x), output_size=(8, 8))
    out_t = t(torch.tensor(x), output_size=(8, 8))
    assert out_d.shape == (1, 3, 8, 8)
    _close(out_d, out_t.detach().numpy(), "output_size")


@pytest.mark.parametrize(
    "dg_cls,t_cls,kw",
    [
        (nn.MaxPool2d, tnn.MaxPool2d, dict(kernel_size=2)),
        (nn.MaxPool2d, tnn.MaxPool2d, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
        (nn.AvgPool2d, tnn.AvgPool2d, dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
        (nn.AvgPool2d, tnn.AvgPool2d, dict(kernel_size=2, ceil_mode=True)),
        (nn.AdaptiveAvgPool2d, tnn.AdaptiveAvgPool2d, dict(output_size=(3, 2))),
        (nn.AdaptiveMaxPool2d, tnn.AdaptiveMaxPool2d, dict(output_size=3)),
    ],
)
def test_pools_2d(dg_cls, t_cls, kw):
    check_layer(dg_cls(**kw), t_cls(**kw), rand(2, 3, 7, 9))


def test_pools_1d():
    check_layer(nn.MaxPool1d(3, stride=2), tnn.MaxPool1d(3, stride=2), rand(2, 3, 10))
    check_layer(nn.AvgPool1d(2), tnn.AvgPool1d(2), rand(2, 3, 10))


def test_sum_pool_is_the_window_sum():
    x = rand(2, 3, 6, 6)
    out = nn.SumPool2d(2)(dg.tensor(x))
    expected = tnn.AvgPool2d(2)(torch.tensor(x)).numpy() * 4
    _close(out, expected, "sum pool = 4 * avg pool")
    assert out.shape == (2, 3, 3, 3)
    np.testing.assert_allclose(out.numpy()[0, 0, 0, 0], x[0, 0, :2, :2].sum(), rtol=1e-5)


def test_max_pool_return_indices_match_torch():
    x = rand(2, 2, 6, 6)
    out, idx = nn.MaxPool2d(2, return_indices=True)(dg.tensor(x))
    tout, tidx = tnn.MaxPool2d(2, return_indices=True)(torch.tensor(x))
    _close(out, tout.numpy(), "values")
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm1d_running_stats_over_steps(momentum):
    check_layer(nn.BatchNorm1d(5, momentum=momentum), tnn.BatchNorm1d(5, momentum=momentum), rand(8, 5), steps=4)
    check_layer(nn.BatchNorm1d(4), tnn.BatchNorm1d(4), rand(6, 4, 3), steps=3)


def test_batchnorm2d_train_then_eval():
    d, t = nn.BatchNorm2d(3), tnn.BatchNorm2d(3)
    for s in range(3):
        check_layer(d, t, rand(4, 3, 5, 5, seed=s), train=True, seed=s)
    check_layer(d, t, rand(2, 3, 5, 5, seed=9), train=False)
    assert int(d.num_batches_tracked.item()) == 3


def test_batchnorm_without_running_stats_and_affine():
    check_layer(nn.BatchNorm2d(3, affine=False, track_running_stats=False),
                tnn.BatchNorm2d(3, affine=False, track_running_stats=False), rand(4, 3, 4, 4), train=False)


def test_layernorm():
    check_layer(nn.LayerNorm(6), tnn.LayerNorm(6), rand(3, 4, 6))
    check_layer(nn.LayerNorm((4, 6), elementwise_affine=False), tnn.LayerNorm((4, 6), elementwise_affine=False),
                rand(3, 4, 6))


@pytest.mark.parametrize(
    "dg_layer,t_layer",
    [
        (nn.ReLU(), tnn.ReLU()), (nn.LeakyReLU(0.2), tnn.LeakyReLU(0.2)), (nn.Sigmoid(), tnn.Sigmoid()),
        (nn.Tanh(), tnn.Tanh()), (nn.GELU(), tnn.GELU()), (nn.GELU("tanh"), tnn.GELU("tanh")),
        (nn.ELU(0.7), tnn.ELU(0.7)), (nn.Softmax(dim=1), tnn.Softmax(dim=1)),
        (nn.LogSoftmax(dim=-1), tnn.LogSoftmax(dim=-1)), (nn.Softplus(2.0, 5.0), tnn.Softplus(2.0, 5.0)),
        (nn.Flatten(), tnn.Flatten()), (nn.Unflatten(1, (2, 3)), tnn.Unflatten(1, (2, 3))),
        (nn.Identity(), tnn.Identity()),
    ],
)
def test_activation_and_shape_modules(dg_layer, t_layer):
    check_layer(dg_layer, t_layer, rand(4, 6))


def test_dropout_train_and_eval():
    d = nn.Dropout(0.3)
    x = np.ones((200, 100), dtype=np.float32)
    out = d(dg.tensor(x)).numpy()
    kept = out != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(out[kept], 1 / 0.7, rtol=1e-6)
    d.eval()
    np.testing.assert_array_equal(d(dg.tensor(x)).numpy(), x)
    d2 = nn.Dropout2d(0.5)
    out = d2(dg.tensor(np.ones((4, 16, 3, 3), dtype=np.float32))).numpy()
    per_channel = out.reshape(4, 16, 9)
    assert np.all((per_channel == 0).all(-1) | (per_channel != 0).all(-1))
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


def _loss_case(dg_loss, t_loss, x, target, target_t=None):
    xd, xt = dg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ld = dg_loss(xd, dg.tensor(target))
    lt = t_loss(xt, torch.tensor(target) if target_t is None else target_t)
    _close(ld, lt.detach().numpy(), "loss value")
    ld.sum().backward()
    lt.sum().backward()
    _close(xd.grad, xt.grad.numpy(), "loss input grad")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_modules(reduction):
    x, y = rand(6, 4), rand(6, 4, seed=1)
    _loss_case(nn.MSELoss(reduction=reduction), tnn.MSELoss(reduction=reduction), x, y)
    _loss_case(nn.L1Loss(reduction=reduction), tnn.L1Loss(reduction=reduction), x, y)
    _loss_case(nn.SmoothL1Loss(reduction=reduction, beta=0.5), tnn.SmoothL1Loss(reduction=reduction, beta=0.5), x, y)
    cls = np.array([0, 3, 1, 2, 3, 0])
    w = np.array([1.0, 2.0, 0.5, 1.5], dtype=np.float32)
    _loss_case(nn.CrossEntropyLoss(weight=dg.tensor(w), reduction=reduction, label_smoothing=0.1),
               tnn.CrossEntropyLoss(weight=torch.tensor(w), reduction=reduction, label_smoothing=0.1), x, cls)
    _loss_case(nn.NLLLoss(reduction=reduction, ignore_index=1), tnn.NLLLoss(reduction=reduction, ignore_index=1),
               np.log(np.abs(x) + 0.1).astype(np.float32), cls)
    p = (1 / (1 + np.exp(-x))).astype(np.float32)
    t01 = (y > 0).astype(np.float32)
    _loss_case(nn.BCELoss(reduction=reduction), tnn.BCELoss(reduction=reduction), p, t01)
    pw = np.array([1.0, 2.0, 3.0, 0.5], dtype=np.float32)
    _loss_case(nn.BCEWithLogitsLoss(reduction=reduction, pos_weight=dg.tensor(pw)),
               tnn.BCEWithLogitsLoss(reduction=reduction, pos_weight=torch.tensor(pw)), x, t01)


def small_cnn(lib):
    return lib.Sequential(
        lib.Conv2d(1, 4, 3, padding=1), lib.BatchNorm2d(4), lib.ReLU(), lib.MaxPool2d(2),
        lib.Conv2d(4, 8, 3), lib.ReLU(), lib.AdaptiveAvgPool2d(1), lib.Flatten(), lib.Linear(8, 3),
    )


def test_whole_network_parity_and_safetensors_both_ways(tmp_path):
    from safetensors.torch import load_file as t_load
    from safetensors.torch import save_file as t_save

    d, t = small_cnn(nn), small_cnn(tnn)
    dg.save(d.state_dict(), tmp_path / "dg.safetensors")
    t.load_state_dict(t_load(str(tmp_path / "dg.safetensors")))
    check_layer(d, t, rand(3, 1, 8, 8), steps=2)

    t2, d2 = small_cnn(tnn), small_cnn(nn)
    t_save(t2.state_dict(), str(tmp_path / "torch.safetensors"))
    d2.load_state_dict(dg.load(tmp_path / "torch.safetensors"))
    x = rand(2, 1, 8, 8)
    t2.eval()
    d2.eval()
    _close(d2(dg.tensor(x)), t2(torch.tensor(x)).detach().numpy(), "torch weights in deepgrad")


def test_conv2d_bad_input_errors_name_layer_and_shapes():
    conv = nn.Conv2d(3, 8, kernel_size=5)
    # one check, the op's (torch's wording), with the layer's name in front
    with pytest.raises(RuntimeError, match=r"^Conv2d\(3, 8, kernel_size=\(5, 5\)\): conv2d: .*input\(2, 4, 9, 9\) to "
                                           r"have 3 channels, but got 4"):
        conv(dg.randn(2, 4, 9, 9))
    with pytest.raises(RuntimeError, match=r"^Conv2d\(3, 8.*padded input size per channel: \(4, 4\); kernel size "
                                           r"\(dilated\): \(5, 5\)"):
        conv(dg.randn(2, 3, 4, 4))
    with pytest.raises(RuntimeError, match=r"^Conv2d\(3, 8.*4-D \(batched\) input.*got shape \(2, 3\)"):
        conv(dg.randn(2, 3))
    with pytest.raises(RuntimeError, match=r"^ConvTranspose2d\(3, 8.*got shape \(3,\)"):
        nn.ConvTranspose2d(3, 8, 3)(dg.randn(3), output_size=(5, 5))
    with pytest.raises(RuntimeError, match=r"^Linear\(in_features=4, out_features=2\): linear: input of shape \(2, 5\) "
                                           r".*\(expected input \(\.\.\., 4\)\)"):
        nn.Linear(4, 2)(dg.randn(2, 5))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\).*4-D.*\(2, 3\)"):
        nn.BatchNorm2d(3)(dg.randn(2, 3))
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 8, 3, groups=2)


def test_group_norm_huber_and_kl_modules():
    check_layer(nn.GroupNorm(2, 4), tnn.GroupNorm(2, 4), rand(3, 4, 5))
    x, y = rand(5, 3), rand(5, 3, seed=2)
    _loss_case(nn.HuberLoss(delta=0.7), tnn.HuberLoss(delta=0.7), x, y)
    logp = np.log(np.abs(x) / np.abs(x).sum(1, keepdims=True)).astype(np.float32)
    q = np.abs(y) / np.abs(y).sum(1, keepdims=True)
    _loss_case(nn.KLDivLoss(reduction="batchmean"), tnn.KLDivLoss(reduction="batchmean"), logp, q.astype(np.float32))
