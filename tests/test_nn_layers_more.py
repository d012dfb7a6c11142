"""torch.nn's smaller layers and losses that deepgrad builds from existing ops, against torch 2.13: dropout
variants, 1-D adaptive pools, MaxUnpool2d, constant pads, pixel/channel shuffles, RMSNorm, Softmax2d,
ParameterList/ParameterDict, and the margin / ranking / embedding / count losses (values, gradients,
reductions, float64 gradcheck, exception types)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from core_parity import check

import deepgrad as dg
import deepgrad.nn.functional as F
from deepgrad import nn, optim
from deepgrad.autograd import gradcheck


def _x(shape, seed=0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def _same_error(ours, theirs):
    with pytest.raises(Exception) as expected:
        theirs()
    with pytest.raises(expected.type):
        ours()


LAYERS = [
    (lambda m: m.AdaptiveAvgPool1d(3), (2, 3, 8)),
    (lambda m: m.AdaptiveMaxPool1d(4), (2, 3, 9)),
    (lambda m: m.ConstantPad1d((2, 1), 3.5), (2, 3, 4)),
    (lambda m: m.ConstantPad2d(1, -1.0), (2, 3, 4, 4)),
    (lambda m: m.ZeroPad1d(2), (3, 5)),
    (lambda m: m.ZeroPad2d((1, 0, 2, 3)), (1, 2, 3, 3)),
    (lambda m: m.PixelShuffle(2), (2, 8, 3, 3)),
    (lambda m: m.PixelUnshuffle(3), (1, 2, 6, 9)),
    (lambda m: m.ChannelShuffle(3), (2, 6, 2, 2)),
    (lambda m: m.Softmax2d(), (2, 4, 3, 3)),
    (lambda m: m.RMSNorm(6), (3, 6)),
    (lambda m: m.RMSNorm((2, 5), eps=1e-3, elementwise_affine=False), (4, 2, 5)),
]


@pytest.mark.parametrize("make,shape", LAYERS, ids=[str(i) for i in range(len(LAYERS))])
def test_layers_match_torch(make, shape):
    ours, theirs = make(nn), make(torch.nn)
    assert repr(ours) == repr(theirs) and list(ours.state_dict()) == list(theirs.state_dict())
    if list(theirs.parameters()):
        with torch.no_grad():
            for p in theirs.parameters():
                p.uniform_(0.5, 1.5)
        ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    check(ours, theirs, _x(shape))


def test_rms_norm_gradcheck_and_errors():
    w = dg.tensor(np.linspace(0.5, 1.5, 4), requires_grad=True)
    x = dg.tensor(np.random.default_rng(1).standard_normal((3, 4)), requires_grad=True)
    assert gradcheck(lambda a, b: F.rms_norm(a, (4,), b), [x, w])
    _same_error(lambda: F.rms_norm(dg.randn(2, 3), (4,)), lambda: TF.rms_norm(torch.randn(2, 3), (4,)))
    _same_error(lambda: F.pixel_shuffle(dg.randn(1, 3, 2, 2), 2), lambda: TF.pixel_shuffle(torch.randn(1, 3, 2, 2), 2))
    _same_error(lambda: F.pixel_unshuffle(dg.randn(1, 1, 3, 4), 2),
                lambda: TF.pixel_unshuffle(torch.randn(1, 1, 3, 4), 2))
    _same_error(lambda: F.channel_shuffle(dg.randn(1, 5, 2, 2), 2),
                lambda: TF.channel_shuffle(torch.randn(1, 5, 2, 2), 2))


def test_max_unpool2d_inverts_max_pool_like_torch():
    x = _x((2, 3, 6, 6), seed=2)
    pooled, idx = F.max_pool2d(dg.tensor(x), 2, return_indices=True)
    t_pooled, t_idx = TF.max_pool2d(torch.tensor(x), 2, return_indices=True)
    ours, theirs = nn.MaxUnpool2d(2), torch.nn.MaxUnpool2d(2)
    assert repr(ours) == repr(theirs)
    np.testing.assert_allclose(ours(pooled, idx).numpy(), theirs(t_pooled, t_idx).numpy())
    with_size = nn.MaxUnpool2d(2)(pooled, idx, output_size=(7, 7))
    assert with_size.shape == tuple(torch.nn.MaxUnpool2d(2)(t_pooled, t_idx, output_size=(7, 7)).shape)


@pytest.mark.parametrize("cls,shape", [("Dropout1d", (8, 16, 5)), ("Dropout3d", (4, 16, 2, 2, 2)),
                                       ("AlphaDropout", (64, 64)), ("FeatureAlphaDropout", (16, 32, 4))])
def test_dropout_variants(cls, shape):
    layer, ref = getattr(nn, cls)(p=0.25), getattr(torch.nn, cls)(p=0.25)
    assert repr(layer) == repr(ref)
    x = dg.tensor(_x(shape, seed=3) + 2.0)
    np.testing.assert_array_equal(layer.eval()(x).numpy(), x.numpy())  # eval: the identity, as torch
    dg.manual_seed(0)
    y = layer.train()(x).numpy()
    if cls.startswith("Dropout"):  # whole channels dropped, the rest scaled by 1 / (1 - p)
        dropped = np.all(y.reshape(shape[0], shape[1], -1) == 0, axis=2)
        assert 0.1 < dropped.mean() < 0.4
        kept = ~dropped[..., None] * np.ones_like(y.reshape(shape[0], shape[1], -1), bool)
        np.testing.assert_allclose(y.reshape(kept.shape)[kept], (x.numpy() / 0.75).reshape(kept.shape)[kept],
                                   rtol=1e-6)
    else:  # alpha dropout keeps a SELU-normalised input's mean and variance
        z = np.random.default_rng(4).standard_normal((200, 200)).astype(np.float32)
        out = layer(dg.tensor(z)).numpy()
        assert abs(out.mean()) < 0.05 and abs(out.std() - 1) < 0.05


def test_parameter_list_and_dict_register_like_torch():
    class Ours(nn.Module):
        def __init__(self):
            super().__init__()
            self.scales = nn.ParameterList([nn.Parameter(dg.ones(3)), dg.zeros(2)])
            self.extra = nn.ParameterDict({"gain": nn.Parameter(dg.ones(1)), "shift": nn.Parameter(dg.zeros(4))})

    class Theirs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scales = torch.nn.ParameterList([torch.nn.Parameter(torch.ones(3)), torch.zeros(2)])
            self.extra = torch.nn.ParameterDict({"gain": torch.nn.Parameter(torch.ones(1)),
                                                 "shift": torch.nn.Parameter(torch.zeros(4))})

    ours, theirs = Ours(), Theirs()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert len(list(ours.parameters())) == 4 and all(p.requires_grad for p in ours.parameters())
    ours.scales.append(dg.ones(5))
    ours.extra["bias"] = dg.zeros(1)
    assert len(ours.scales) == 3 and "bias" in ours.extra and ours.scales[-1].shape == (5,)
    loss = sum((p * p).sum() for p in ours.scales) + (ours.extra["gain"] * 3).sum()
    opt = optim.SGD(ours.parameters(), lr=0.1)
    loss.backward()
    opt.step()
    assert ours.scales[0].tolist() == pytest.approx([0.8] * 3) and ours.extra["gain"].tolist() == pytest.approx([0.7])
    with pytest.raises(IndexError):
        ours.scales[3]


# ----------------------------------------------------------------------------- losses
def _pm1(shape, seed):
    return np.where(np.random.default_rng(seed).random(shape) < 0.5, -1.0, 1.0).astype(np.float32)


LOSSES = {
    "margin_ranking": (lambda r: (F.margin_ranking_loss, TF.margin_ranking_loss,
                                  [_x(6, 1), _x(6, 2), _pm1(6, 3)], dict(margin=0.3, reduction=r))),
    "hinge_embedding": (lambda r: (F.hinge_embedding_loss, TF.hinge_embedding_loss,
                                   [np.abs(_x((3, 4), 4)), _pm1((3, 4), 5)], dict(margin=1.2, reduction=r))),
    "soft_margin": (lambda r: (F.soft_margin_loss, TF.soft_margin_loss, [_x((3, 4), 6), _pm1((3, 4), 7)],
                               dict(reduction=r))),
    "multilabel_soft_margin": (lambda r: (F.multilabel_soft_margin_loss, TF.multilabel_soft_margin_loss,
                                          [_x((4, 5), 8), (_pm1((4, 5), 9) > 0).astype(np.float32)],
                                          dict(reduction=r))),
    "cosine_embedding": (lambda r: (F.cosine_embedding_loss, TF.cosine_embedding_loss,
                                    [_x((5, 3), 10), _x((5, 3), 11), _pm1(5, 12)], dict(margin=0.1, reduction=r))),
    "triplet_margin": (lambda r: (F.triplet_margin_loss, TF.triplet_margin_loss,
                                  [_x((4, 6), 13), _x((4, 6), 14), _x((4, 6), 15)],
                                  dict(margin=2.0, p=1.5, swap=True, reduction=r))),
    "poisson_nll": (lambda r: (F.poisson_nll_loss, TF.poisson_nll_loss,
                               [_x((3, 4), 16), np.random.default_rng(17).poisson(2.0, (3, 4)).astype(np.float32)],
                               dict(full=True, reduction=r))),
    "poisson_nll_rate": (lambda r: (F.poisson_nll_loss, TF.poisson_nll_loss,
                                    [np.abs(_x((3, 4), 18)) + 0.1, np.arange(12.0, dtype=np.float32).reshape(3, 4)],
                                    dict(log_input=False, reduction=r))),
}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_losses_match_torch(name, reduction):
    ours, theirs, arrays, kwargs = LOSSES[name](reduction)
    differentiable = {"margin_ranking": 2, "cosine_embedding": 2, "triplet_margin": 3}.get(name, 1)
    grads = [i < differentiable for i in range(len(arrays))]
    check(lambda *t: ours(*t, **kwargs), lambda *t: theirs(*t, **kwargs), *arrays, requires_grad=grads)


@pytest.mark.parametrize("name", ["cosine_embedding", "triplet_margin", "poisson_nll", "multilabel_soft_margin"])
def test_losses_gradcheck(name):
    ours, _, arrays, kwargs = LOSSES[name]("mean")
    inputs = [dg.tensor(a.astype(np.float64), requires_grad=(i == 0)) for i, a in enumerate(arrays)]
    assert gradcheck(lambda first: ours(first, *inputs[1:], **kwargs), [inputs[0]])


def test_loss_modules_match_torch():
    pairs = [
        (lambda m: m.MarginRankingLoss(margin=0.5), [_x(5, 1), _x(5, 2), _pm1(5, 3)]),
        (lambda m: m.HingeEmbeddingLoss(margin=2.0), [np.abs(_x(5, 4)), _pm1(5, 5)]),
        (lambda m: m.SoftMarginLoss(), [_x(5, 6), _pm1(5, 7)]),
        (lambda m: m.MultiLabelSoftMarginLoss(), [_x((2, 3), 8), (_pm1((2, 3), 9) > 0).astype(np.float32)]),
        (lambda m: m.CosineEmbeddingLoss(margin=0.2), [_x((3, 4), 10), _x((3, 4), 11), _pm1(3, 12)]),
        (lambda m: m.TripletMarginLoss(margin=0.5), [_x((3, 4), 13), _x((3, 4), 14), _x((3, 4), 15)]),
        (lambda m: m.PoissonNLLLoss(), [_x((3, 4), 16), np.ones((3, 4), np.float32)]),
    ]
    for make, arrays in pairs:
        ours, theirs = make(nn), make(torch.nn)
        assert repr(ours) == repr(theirs)
        check(ours, theirs, *arrays, requires_grad=[True] + [False] * (len(arrays) - 1))
    _same_error(lambda: nn.TripletMarginLoss(margin=0.0), lambda: torch.nn.TripletMarginLoss(margin=0.0))
    _same_error(lambda: F.soft_margin_loss(dg.randn(3), dg.randn(3), reduction="avg"),
                lambda: TF.soft_margin_loss(torch.randn(3), torch.randn(3), reduction="avg"))
