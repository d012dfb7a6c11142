"""F.pad's copying modes (reflect, replicate, circular over 1-3 dims, negative amounts) and F.interpolate
(nearest, nearest-exact, linear, bilinear, bicubic, trilinear, area; size or scale_factor; align_corners;
recompute_scale_factor) against torch, with their modules (ReflectionPad2d, Upsample, ...), gradients,
gradchecks, errors, and max pooling of integer tensors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from core_parity import check, devices, randn

import deepgrad as dg
import deepgrad.nn.functional as F
from deepgrad.autograd import gradcheck

PADS = [
    ((2, 3, 5), (2, 1)),
    ((3, 5), (1, 2)),
    ((2, 3, 4, 5), (1, 2, 3, 0)),
    ((3, 4, 5), (2, 2, 1, 1)),
    ((1, 2, 3, 4, 5), (1, 0, 2, 1, 1, 2)),
    ((2, 3, 5), (-1, 2)),
    ((2, 3, 5), (3, -2)),
    ((1, 2, 4, 5), (0, 0, 2, 0)),
]


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_pad_copying_modes(mode, device):
    for shape, pad in PADS:
        check(
            lambda t, pad=pad: F.pad(t, pad, mode),
            lambda t, pad=pad: TF.pad(t, pad, mode),
            randn(shape, 1),
            device=device,
        )
    check(lambda t: F.pad(t, (1, 1), mode), lambda t: TF.pad(t, (1, 1), mode), np.arange(6).reshape(1, 2, 3))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_pad_gradcheck(mode):
    x = dg.tensor(randn((1, 2, 3, 4), 2).astype(np.float64), requires_grad=True)
    assert gradcheck(lambda t: F.pad(t, (2, 1, 1, 2), mode), [x])


def test_pad_errors_match_torch():
    cases = [
        lambda L, x: L.nn.functional.pad(x, (3, 3), "reflect"),
        lambda L, x: L.nn.functional.pad(x, (4, 4), "circular"),
        lambda L, x: L.nn.functional.pad(x[0, 0], (1, 1), "reflect"),
        lambda L, x: L.nn.functional.pad(x, (1, 1, 1, 1, 1, 1), "replicate"),
        lambda L, x: L.nn.functional.pad(x, (1, 1), "bogus"),
        lambda L, x: L.nn.functional.pad(x, (1,), "reflect"),
        lambda L, x: L.nn.functional.pad(x, (1, 1), "reflect", value=2.0),
        lambda L, x: L.nn.functional.pad(x[:, :0], (1, 1), "replicate"),
    ]
    for case in cases:
        with pytest.raises((RuntimeError, NotImplementedError)) as err:
            case(torch, torch.zeros(1, 2, 3))
        with pytest.raises(err.type):
            case(dg, dg.zeros(1, 2, 3))
    check(
        lambda t: F.pad(t, (1, 1), "reflect", value=0.0),
        lambda t: TF.pad(t, (1, 1), "reflect", value=0.0),
        randn((1, 2, 3), 1),
    )


@pytest.mark.parametrize(
    "name, arg, shape",
    [
        ("ReflectionPad1d", 2, (2, 3, 5)),
        ("ReflectionPad2d", (1, 0, 2, 1), (1, 2, 4, 5)),
        ("ReflectionPad3d", 1, (1, 1, 3, 3, 3)),
        ("ReplicationPad1d", (3, 1), (2, 4)),
        ("ReplicationPad2d", 2, (1, 2, 3, 3)),
        ("ReplicationPad3d", (1, 0, 0, 1, 2, 0), (1, 1, 2, 3, 3)),
        ("CircularPad1d", 1, (1, 2, 4)),
        ("CircularPad2d", (1, 2, 0, 1), (1, 1, 3, 3)),
        ("CircularPad3d", 1, (1, 1, 2, 2, 2)),
        ("ZeroPad3d", (1, 0, 0, 1, 1, 1), (1, 1, 2, 2, 2)),
    ],
)
def test_padding_modules(name, arg, shape):
    check(lambda t: getattr(dg.nn, name)(arg)(t), lambda t: getattr(torch.nn, name)(arg)(t), randn(shape, 3))
    check(lambda t: dg.nn.ConstantPad3d(1, 0.5)(t), lambda t: torch.nn.ConstantPad3d(1, 0.5)(t), randn((1, 2, 2, 2), 4))


INTERPOLATE = [  # (shape, kwargs)
    ((1, 2, 5), {"size": 8, "mode": "nearest"}),
    ((1, 2, 5), {"scale_factor": 2.5, "mode": "nearest"}),
    ((1, 2, 8), {"size": 3, "mode": "nearest"}),
    ((1, 2, 5), {"scale_factor": 1.7, "mode": "nearest-exact"}),
    ((2, 1, 5), {"size": 9, "mode": "linear"}),
    ((2, 1, 5), {"size": 9, "mode": "linear", "align_corners": True}),
    ((1, 2, 7), {"scale_factor": 0.6, "mode": "linear"}),
    ((1, 2, 3, 4), {"scale_factor": 2, "mode": "nearest"}),
    ((1, 2, 3, 4), {"size": (5, 7), "mode": "nearest"}),
    ((1, 2, 6, 5), {"size": (4, 3), "mode": "nearest-exact"}),
    ((2, 2, 3, 4), {"scale_factor": 2, "mode": "bilinear"}),
    ((1, 2, 3, 4), {"size": (5, 7), "mode": "bilinear", "align_corners": True}),
    ((1, 1, 5, 6), {"scale_factor": (0.7, 1.3), "mode": "bilinear"}),
    ((1, 1, 5, 6), {"scale_factor": 1.5, "mode": "bilinear", "recompute_scale_factor": True}),
    ((1, 2, 4, 4), {"size": (7, 5), "mode": "bicubic"}),
    ((1, 2, 4, 4), {"scale_factor": 2, "mode": "bicubic", "align_corners": True}),
    ((1, 1, 2, 3, 4), {"scale_factor": 2, "mode": "trilinear"}),
    ((1, 1, 2, 3, 2), {"size": (3, 3, 3), "mode": "nearest"}),
    ((1, 2, 6, 7), {"size": (3, 4), "mode": "area"}),
    ((1, 2, 9), {"scale_factor": 0.5, "mode": "area"}),
]


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("shape, kwargs", INTERPOLATE, ids=[f"{k['mode']}-{i}" for i, (_, k) in enumerate(INTERPOLATE)])
def test_interpolate_matches_torch(shape, kwargs, device):
    check(lambda t: F.interpolate(t, **kwargs), lambda t: TF.interpolate(t, **kwargs), randn(shape, 1), device=device)


@pytest.mark.parametrize("mode", ["linear", "nearest", "bicubic"])
def test_interpolate_gradcheck(mode):
    shape = (1, 2, 4) if mode == "linear" else (1, 1, 3, 3)
    x = dg.tensor(randn(shape, 2).astype(np.float64), requires_grad=True)
    assert gradcheck(lambda t: F.interpolate(t, scale_factor=1.7, mode=mode), [x])


def test_interpolate_integers_modules_and_errors():
    img = np.random.default_rng(0).integers(0, 256, size=(1, 3, 4, 5)).astype(np.uint8)
    check(lambda t: F.interpolate(t, scale_factor=2), lambda t: TF.interpolate(t, scale_factor=2), img)
    x = randn((1, 2, 3, 4), 3)
    for make in (
        lambda nn: nn.Upsample(scale_factor=2, mode="bilinear"),
        lambda nn: nn.Upsample(size=(5, 6)),
        lambda nn: nn.UpsamplingNearest2d(scale_factor=3),
        lambda nn: nn.UpsamplingBilinear2d(size=(4, 7)),
    ):
        check(lambda t, make=make: make(dg.nn)(t), lambda t, make=make: make(torch.nn)(t), x)
    with pytest.warns(UserWarning, match="deprecated"):
        check(lambda t: F.upsample_bilinear(t, scale_factor=2), lambda t: TF.upsample_bilinear(t, scale_factor=2), x)
    cases = [
        (lambda L: L.interpolate(L.x, size=4, scale_factor=2), ValueError),
        (lambda L: L.interpolate(L.x), ValueError),
        (lambda L: L.interpolate(L.x, scale_factor=2, mode="nearest", align_corners=True), ValueError),
        (lambda L: L.interpolate(L.x, scale_factor=2, mode="linear"), NotImplementedError),
        (lambda L: L.interpolate(L.x, size=(2, 3, 4)), ValueError),
        (lambda L: L.interpolate(L.x, size=4, recompute_scale_factor=True), ValueError),
        (lambda L: L.interpolate(L.x, scale_factor=2, mode="cubic"), NotImplementedError),
    ]

    class Lib:
        def __init__(self, module, x):
            self.interpolate, self.x = module.interpolate, x

    for case, error in cases:
        with pytest.raises(error):
            case(Lib(TF, torch.tensor(x)))
        with pytest.raises(error):
            case(Lib(F, dg.tensor(x)))


def test_max_pool_on_integer_input():
    x = np.random.default_rng(1).integers(-50, 50, size=(2, 3, 6, 5)).astype(np.int32)
    for kw in (
        {"kernel_size": 2},
        {"kernel_size": 3, "stride": 2, "padding": 1},
        {"kernel_size": 2, "return_indices": True},
    ):
        check(lambda t, kw=kw: F.max_pool2d(t, **kw), lambda t, kw=kw: TF.max_pool2d(t, **kw), x)
        check(
            lambda t, kw=kw: dg.nn.MaxPool2d(**kw)(t),
            lambda t, kw=kw: torch.nn.MaxPool2d(**kw)(t),
            x.astype(np.uint8) % 100,
        )
    for lib in (TF, F):  # torch has no integer kernel for 1-D max pooling
        with pytest.raises(NotImplementedError):
            lib.max_pool1d((torch.tensor if lib is TF else dg.tensor)(x[0].astype(np.int64)), 2)
