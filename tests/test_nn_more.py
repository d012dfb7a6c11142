"""The nn layers and functions built from existing ops, against torch 2.13: activations (values and
gradients, including exactly at their kinks), InstanceNorm1d/2d, LocalResponseNorm, normalize /
cosine_similarity / pairwise_distance, weight_norm and spectral_norm (hooks, state_dict keys, power
iteration), DataParallel, flatten_parameters, torch's import paths; float64 gradcheck and the exception
types torch raises on bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from core_parity import check

import deepgrad as dg
import deepgrad.nn.functional as F
from deepgrad import models, nn
from deepgrad.autograd import gradcheck


def _inputs(shape, seed=0, specials=()):
    """Random values with the given special points (kinks, thresholds) mixed in."""
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32) * 3
    flat = x.reshape(-1)
    flat[:len(specials)] = specials
    return x


# name -> (deepgrad fn, torch fn, values at which the function has a kink or a branch)
ACTIVATIONS = {
    "silu": (F.silu, TF.silu, [0.0]),
    "mish": (F.mish, TF.mish, [0.0, 20.0, 25.0]),
    "hardtanh": (lambda x: F.hardtanh(x, -0.5, 2.0), lambda x: TF.hardtanh(x, -0.5, 2.0), [-0.5, 2.0, 0.0]),
    "relu6": (F.relu6, TF.relu6, [0.0, 6.0, 7.0]),
    "hardsigmoid": (F.hardsigmoid, TF.hardsigmoid, [-3.0, 3.0, 0.0]),
    "hardswish": (F.hardswish, TF.hardswish, [-3.0, 3.0, 0.0]),
    "selu": (F.selu, TF.selu, [0.0]),
    "celu": (lambda x: F.celu(x, 0.7), lambda x: TF.celu(x, 0.7), [0.0, 80.0]),
    "logsigmoid": (F.logsigmoid, TF.logsigmoid, [0.0, -30.0, 30.0]),
    "softsign": (F.softsign, TF.softsign, [0.0]),
    "tanhshrink": (F.tanhshrink, TF.tanhshrink, [0.0]),
    "threshold": (lambda x: F.threshold(x, 0.5, -2.0), lambda x: TF.threshold(x, 0.5, -2.0), [0.5]),
    "hardshrink": (lambda x: F.hardshrink(x, 0.7), lambda x: TF.hardshrink(x, 0.7), [0.7, -0.7]),
    "softshrink": (lambda x: F.softshrink(x, 0.7), lambda x: TF.softshrink(x, 0.7), [0.7, -0.7]),
    "glu": (lambda x: F.glu(x, 1), lambda x: TF.glu(x, 1), []),
    "softmin": (lambda x: F.softmin(x, 1), lambda x: TF.softmin(x, 1), []),
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_values_and_gradients_match_torch(name):
    ours, theirs, specials = ACTIVATIONS[name]
    check(ours, theirs, _inputs((3, 4, 5), specials=specials))
    x = dg.tensor(_inputs((2, 4), seed=1).astype(np.float64) * 0.3 + 0.05, requires_grad=True)  # away from kinks
    assert gradcheck(ours, [x])


MODULES = [
    (lambda m: m.SiLU(), None), (lambda m: m.Mish(), None), (lambda m: m.Hardtanh(-2.0, 1.5), None),
    (lambda m: m.ReLU6(), None), (lambda m: m.Hardsigmoid(), None), (lambda m: m.Hardswish(), None),
    (lambda m: m.SELU(), None), (lambda m: m.CELU(2.0), None), (lambda m: m.LogSigmoid(), None),
    (lambda m: m.Softsign(), None), (lambda m: m.Tanhshrink(), None), (lambda m: m.Threshold(0.1, 20.0), None),
    (lambda m: m.Hardshrink(), None), (lambda m: m.Softshrink(0.3), None), (lambda m: m.GLU(-1), None),
    (lambda m: m.Softmin(dim=2), None), (lambda m: m.PReLU(), "weight"), (lambda m: m.PReLU(4, init=0.1), "weight"),
]


@pytest.mark.parametrize("make,param", MODULES, ids=[str(i) for i in range(len(MODULES))])
def test_activation_modules_match_torch(make, param):
    ours, theirs = make(nn), make(torch.nn)
    assert repr(ours) == repr(theirs)
    x = _inputs((3, 4, 6), seed=2)
    xd, xt = dg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yd, yt = ours(xd), theirs(xt)
    np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    g = np.random.default_rng(3).standard_normal(tuple(yt.shape)).astype(np.float32)
    (yd * dg.tensor(g)).sum().backward()
    (yt * torch.from_numpy(g)).sum().backward()
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    if param:
        assert list(ours.state_dict()) == list(theirs.state_dict())
        np.testing.assert_allclose(getattr(ours, param).grad.numpy(), getattr(theirs, param).grad.numpy(),
                                   rtol=1e-4, atol=1e-5)


def _same_error(ours, theirs):
    """deepgrad raises the exception class torch raises on the same bad input."""
    with pytest.raises(Exception) as expected:
        theirs()
    with pytest.raises(expected.type):
        ours()


@pytest.mark.parametrize("case", [
    (lambda: F.silu(dg.tensor([1, 2])), lambda: TF.silu(torch.tensor([1, 2]))),
    (lambda: F.normalize(dg.tensor([[1, 2]])), lambda: TF.normalize(torch.tensor([[1, 2]]))),
    (lambda: F.logsigmoid(dg.tensor([1, 2])), lambda: TF.logsigmoid(torch.tensor([1, 2]))),
    (lambda: F.mish(dg.tensor([1, 2])), lambda: TF.mish(torch.tensor([1, 2]))),
    (lambda: F.glu(dg.randn(2, 3), 1), lambda: TF.glu(torch.randn(2, 3), 1)),
    (lambda: F.hardtanh(dg.randn(3), 2.0, 1.0), lambda: TF.hardtanh(torch.randn(3), 2.0, 1.0)),
    (lambda: F.prelu(dg.randn(2, 3), dg.ones(2)), lambda: TF.prelu(torch.randn(2, 3), torch.ones(2))),
    (lambda: F.softshrink(dg.randn(3), -1.0), lambda: TF.softshrink(torch.randn(3), -1.0)),
    (lambda: F.local_response_norm(dg.randn(2, 3), 2), lambda: TF.local_response_norm(torch.randn(2, 3), 2)),
    (lambda: nn.InstanceNorm2d(3)(dg.randn(2, 3)), lambda: torch.nn.InstanceNorm2d(3)(torch.randn(2, 3))),
    (lambda: nn.InstanceNorm1d(3, affine=True)(dg.randn(2, 4, 5)),
     lambda: torch.nn.InstanceNorm1d(3, affine=True)(torch.randn(2, 4, 5))),
    (lambda: nn.InstanceNorm1d(3)(dg.randn(2, 3, 1)), lambda: torch.nn.InstanceNorm1d(3)(torch.randn(2, 3, 1))),
])
def test_bad_input_raises_what_torch_raises(case):
    _same_error(*case)


# ----------------------------------------------------------------------------- normalisation layers
@pytest.mark.parametrize("dims,affine,track", [(1, False, False), (1, True, True), (2, True, False),
                                               (2, False, True), (2, True, True)])
def test_instance_norm_matches_torch_in_train_and_eval(dims, affine, track):
    shape = (3, 4, 7) if dims == 1 else (3, 4, 5, 6)
    ours = getattr(nn, f"InstanceNorm{dims}d")(4, affine=affine, track_running_stats=track, momentum=0.3)
    theirs = getattr(torch.nn, f"InstanceNorm{dims}d")(4, affine=affine, track_running_stats=track, momentum=0.3)
    assert repr(ours) == repr(theirs) and list(ours.state_dict()) == list(theirs.state_dict())
    if affine:
        with torch.no_grad():
            theirs.weight.uniform_(0.5, 1.5)
            theirs.bias.normal_()
        ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    for step, train in enumerate([True, True, False]):
        ours.train(train)
        theirs.train(train)
        x = _inputs(shape, seed=10 + step) + 0.5
        xd, xt = dg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        yd, yt = ours(xd), theirs(xt)
        np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), rtol=1e-4, atol=1e-5)
        g = np.random.default_rng(step).standard_normal(shape).astype(np.float32)
        (yd * dg.tensor(g)).sum().backward()
        (yt * torch.from_numpy(g)).sum().backward()
        np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    for key, value in theirs.state_dict().items():  # running stats (and a never-counted num_batches_tracked)
        np.testing.assert_allclose(ours.state_dict()[key].numpy(), value.numpy(), rtol=1e-5, atol=1e-6)
    unbatched = _inputs(shape[1:], seed=20)
    with dg.no_grad(), torch.no_grad():
        np.testing.assert_allclose(ours(dg.tensor(unbatched)).numpy(), theirs(torch.tensor(unbatched)).numpy(),
                                   rtol=1e-4, atol=1e-5)


def test_norm_layers_take_torchs_bias_flag():
    for make in (lambda m: m.BatchNorm1d(3, bias=False), lambda m: m.InstanceNorm1d(3, affine=True, bias=False),
                 lambda m: m.BatchNorm1d(3, affine=False)):
        ours, theirs = make(nn), make(torch.nn)
        assert repr(ours) == repr(theirs) and list(ours.state_dict()) == list(theirs.state_dict())
        check(ours, theirs, _inputs((4, 3, 5), seed=1))
    from deepgrad.distributed import SyncBatchNorm

    model = SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(nn.BatchNorm1d(3, bias=False), nn.InstanceNorm1d(3)))
    assert type(model[0]).__name__ == "SyncBatchNorm" and model[0].bias is None
    assert type(model[1]) is nn.InstanceNorm1d  # instance norm is not batch norm (torch does not convert it)


def test_instance_norm_gradcheck_and_channel_warning():
    layer = nn.InstanceNorm2d(3, affine=True).double()
    x = dg.tensor(np.random.default_rng(0).standard_normal((2, 3, 3, 4)), requires_grad=True)
    assert gradcheck(lambda t: layer(t), [x])
    with pytest.warns(UserWarning, match="does not match num_features"):
        nn.InstanceNorm1d(5)(dg.randn(2, 3, 4))


@pytest.mark.parametrize("size,shape", [(5, (2, 8, 4, 3)), (2, (2, 3, 6)), (4, (1, 3, 2, 2, 2)), (7, (2, 3, 4))])
def test_local_response_norm_matches_torch(size, shape):
    x = _inputs(shape, seed=size)
    check(lambda t: F.local_response_norm(t, size, alpha=0.01, beta=0.75, k=2.0),
          lambda t: TF.local_response_norm(t, size, alpha=0.01, beta=0.75, k=2.0), x)
    layer, ref = nn.LocalResponseNorm(size), torch.nn.LocalResponseNorm(size)
    assert repr(layer) == repr(ref)
    check(layer, ref, x)
    xd = dg.tensor(x.astype(np.float64), requires_grad=True)
    assert gradcheck(lambda t: F.local_response_norm(t, size, alpha=0.5, k=1.5), [xd])


@pytest.mark.parametrize("p,dim", [(2.0, 1), (1.0, -1), (3.0, 0), (float("inf"), 1)])
def test_normalize_matches_torch_and_zero_rows_get_zero_gradient(p, dim):
    x = _inputs((4, 5), seed=3)
    x[1] = 0.0  # an all-zero row (for dim=1): stays 0, and its gradient is 0, not NaN
    check(lambda t: F.normalize(t, p=p, dim=dim), lambda t: TF.normalize(t, p=p, dim=dim), x)
    xd = dg.tensor(_inputs((3, 4), seed=4).astype(np.float64), requires_grad=True)
    assert gradcheck(lambda t: F.normalize(t, p=p, dim=dim), [xd])


def test_cosine_similarity_and_pairwise_distance_match_torch():
    a, b = _inputs((4, 6), seed=5), _inputs((4, 6), seed=6)
    b[2] = 0.0  # a zero vector: the eps clamp decides
    check(lambda u, v: F.cosine_similarity(u, v, dim=1), lambda u, v: TF.cosine_similarity(u, v, dim=1), a, b)
    check(lambda u, v: F.pairwise_distance(u, v, p=1.5, keepdim=True),
          lambda u, v: TF.pairwise_distance(u, v, p=1.5, keepdim=True), a, b)
    check(nn.CosineSimilarity(dim=0), torch.nn.CosineSimilarity(dim=0), a, b)
    check(nn.PairwiseDistance(), torch.nn.PairwiseDistance(), a, b)


# ----------------------------------------------------------------------------- weight_norm and spectral_norm
@pytest.mark.parametrize("dim", [0, 1, None, -2])
def test_weight_norm_keys_forward_and_gradients_match_torch(dim):
    from deepgrad.nn.utils import remove_weight_norm, weight_norm

    ref = torch.nn.Conv2d(3, 5, 3)
    ours = nn.Conv2d(3, 5, 3)
    ours.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch deprecates the hook form in favour of parametrize
        torch.nn.utils.weight_norm(ref, dim=dim)
    weight_norm(ours, dim=dim)
    assert list(ours.state_dict()) == list(ref.state_dict()) == ["bias", "weight_g", "weight_v"]
    assert ours.weight_g.shape == tuple(ref.weight_g.shape)
    np.testing.assert_allclose(ours.weight_g.detach().numpy(), ref.weight_g.detach().numpy(), rtol=1e-6)
    with torch.no_grad():
        ref.weight_g.mul_(1.5)  # move g away from ||v|| so the two factors matter separately
    ours.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    x = _inputs((2, 3, 6, 6), seed=7)
    check(ours, ref, x)
    for name in ("weight_g", "weight_v", "bias"):
        np.testing.assert_allclose(getattr(ours, name).grad.numpy(), getattr(ref, name).grad.numpy(), rtol=1e-4,
                                   atol=1e-5, err_msg=name)
    remove_weight_norm(ours)
    assert list(ours.state_dict()) == ["bias", "weight"]
    np.testing.assert_allclose(ours.weight.detach().numpy(), ref.weight.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_weight_norm_errors_and_gradcheck():
    from deepgrad.nn.utils import remove_weight_norm, weight_norm

    layer = weight_norm(nn.Linear(4, 3)).double()
    with pytest.raises(RuntimeError, match="Cannot register two weight_norm hooks"):
        weight_norm(layer)
    with pytest.raises(ValueError, match="weight_norm of 'bias' not found"):
        remove_weight_norm(layer, "bias")
    with pytest.raises(AttributeError):
        weight_norm(nn.Linear(2, 2), name="gain")
    g, v = layer.weight_g, layer.weight_v
    x = dg.tensor(np.random.default_rng(8).standard_normal((5, 4)))
    assert gradcheck(lambda g_, v_: (v_ * (g_ / (v_ * v_).sum(1, keepdim=True).sqrt())) @ x.T, [g, v])


@pytest.mark.parametrize("layer,n_iter", [("linear", 1), ("conv", 3), ("convT", 1)])
def test_spectral_norm_power_iteration_and_gradients_match_torch(layer, n_iter):
    from deepgrad.nn.utils import remove_spectral_norm, spectral_norm

    make = {"linear": lambda m: m.Linear(6, 4), "conv": lambda m: m.Conv2d(3, 4, 3),
            "convT": lambda m: m.ConvTranspose2d(3, 4, 3)}[layer]
    torch.manual_seed(0)
    ref = torch.nn.utils.spectral_norm(make(torch.nn), n_power_iterations=n_iter)
    ours = spectral_norm(make(nn), n_power_iterations=n_iter)
    assert list(ours.state_dict()) == list(ref.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    ours.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})  # torch's random u, v too
    shape = {"linear": (5, 6), "conv": (2, 3, 6, 6), "convT": (2, 3, 4, 4)}[layer]
    for step in range(3):  # training mode: each call runs the power iteration and moves u, v
        check(ours, ref, _inputs(shape, seed=step))
    for key in ("weight_u", "weight_v"):
        np.testing.assert_allclose(ours.state_dict()[key].numpy(), ref.state_dict()[key].numpy(), rtol=1e-4,
                                   atol=1e-5, err_msg=key)
    np.testing.assert_allclose(ours.weight_orig.grad.numpy(), ref.weight_orig.grad.numpy(), rtol=1e-4, atol=1e-5)
    ours.eval()
    ref.eval()
    u_before = ours.weight_u.numpy().copy()
    check(ours, ref, _inputs(shape, seed=9), backward=False)
    np.testing.assert_array_equal(ours.weight_u.numpy(), u_before)  # eval: no power iteration
    remove_spectral_norm(ours)
    torch.nn.utils.remove_spectral_norm(ref)
    assert list(ours.state_dict()) == list(ref.state_dict())
    np.testing.assert_allclose(ours.weight.detach().numpy(), ref.weight.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_spectral_norm_bounds_the_largest_singular_value_and_refuses_misuse():
    from deepgrad.nn.utils import spectral_norm

    dg.manual_seed(0)
    layer = spectral_norm(nn.Linear(8, 6), n_power_iterations=20)
    layer(dg.randn(2, 8))
    assert abs(np.linalg.svd(layer.weight.detach().numpy(), compute_uv=False)[0] - 1.0) < 1e-4
    with pytest.raises(RuntimeError, match="Cannot register two spectral_norm hooks"):
        spectral_norm(layer)
    with pytest.raises(ValueError, match="n_power_iterations to be positive"):
        spectral_norm(nn.Linear(2, 2), n_power_iterations=0)
    with pytest.raises(ValueError, match="parameter `bias` is None"):
        spectral_norm(nn.Linear(2, 2, bias=False), name="bias")


# ----------------------------------------------------------------------------- torch's other import paths
def test_data_parallel_is_the_single_device_identity_with_torchs_keys():
    inner = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    wrapped = nn.DataParallel(inner)
    ref = torch.nn.DataParallel(torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2)))
    assert list(wrapped.state_dict()) == list(ref.state_dict())
    ref.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in wrapped.state_dict().items()})
    check(wrapped, ref, _inputs((5, 4)))
    assert wrapped.module is inner
    import deepgrad.nn.parallel as parallel

    assert parallel.DataParallel is nn.DataParallel
    with pytest.raises(AttributeError, match="deepgrad.distributed"):
        parallel.DistributedDataParallel  # noqa: B018
    with pytest.raises(ValueError, match="one device per process"):
        nn.DataParallel(inner, device_ids=[0, 1])


def test_flatten_parameters_is_a_noop_and_rnn_utils_has_torchs_path():
    from deepgrad.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    lstm = nn.LSTM(3, 4)
    before = {k: v.numpy().copy() for k, v in lstm.state_dict().items()}
    assert lstm.flatten_parameters() is None
    assert all(np.array_equal(before[k], v.numpy()) for k, v in lstm.state_dict().items())
    out, _ = lstm(pack_padded_sequence(dg.randn(5, 2, 3), [5, 3]))
    assert pad_packed_sequence(out)[0].shape == (5, 2, 4)
    assert nn.utils.rnn.pack_sequence is nn.rnn_utils.pack_sequence


def test_skip_init_builds_without_drawing_and_refuses_non_modules():
    from deepgrad.nn.utils import skip_init

    dg.manual_seed(5)
    expected = dg.randn(3).tolist()
    dg.manual_seed(5)
    layer = skip_init(nn.Linear, 300, 200)
    big = skip_init(models.VGG, depth=11, width=1 / 8, hidden=16, input_size=32)
    assert dg.randn(3).tolist() == expected  # no random numbers were drawn
    assert type(layer) is nn.Linear and layer.weight.shape == (200, 300) and layer.weight.requires_grad
    assert sum(p.numel() for p in big.parameters()) == sum(
        p.numel() for p in models.VGG(depth=11, width=1 / 8, hidden=16, input_size=32).parameters())
    nn.init.kaiming_uniform_(layer.weight)  # initialising afterwards works as usual
    assert 0 < float(layer.weight.detach().numpy().std()) < 1
    _same_error(lambda: skip_init(models.vgg11), lambda: torch.nn.utils.skip_init(lambda: None))
    _same_error(lambda: skip_init(dict), lambda: torch.nn.utils.skip_init(dict))
