"""AlexNet, GoogLeNet and Inception-v3 against torchvision: state_dict keys and shapes equal the checked-in
layouts (tests/data/torchvision_layouts, written from torchvision's source) and torchvision's published
parameter counts; weights copied from a torch mirror of torchvision's code (tests/torchvision_reference.py)
give the same outputs in eval and training mode (auxiliary heads, batch-norm statistics, gradients), and
deepgrad's weights load into the mirror. Whole networks run on small inputs; every block type is also
checked on its own so the suite stays fast."""

from __future__ import annotations

import os

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import models

torch = pytest.importorskip("torch")
R = pytest.importorskip("torchvision_reference")

LAYOUTS = os.path.join(os.path.dirname(__file__), "data", "torchvision_layouts")
# torchvision's published parameter counts (its weights' metadata): googlenet is counted without the aux heads
PUBLISHED_PARAMS = {"alexnet": 61_100_840, "googlenet": 6_624_904, "inception_v3": 27_161_264}
BUILDERS = {"alexnet": (models.alexnet, R.AlexNet), "googlenet": (models.googlenet, R.GoogLeNet),
            "inception_v3": (models.inception_v3, R.Inception3)}


def _layout(name: str) -> list[tuple[str, tuple]]:
    rows = []
    with open(os.path.join(LAYOUTS, f"{name}.txt")) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            key, shape = line.split()
            rows.append((key, () if shape == "scalar" else tuple(int(n) for n in shape.split("x"))))
    return rows


def _rows(state_dict) -> list[tuple[str, tuple]]:
    return [(k, tuple(v.shape)) for k, v in state_dict.items()]


@pytest.fixture(scope="module")
def full_size():
    """The three deepgrad networks at torchvision's default size, built once."""
    dg.manual_seed(0)
    return {name: build() for name, (build, _) in BUILDERS.items()}


def _randomize_(torch_model, seed: int) -> None:
    """Give every batch norm non-trivial statistics and affine parameters (identity ones would hide bugs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in torch_model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.num_batches_tracked.fill_(int(torch.randint(0, 50, (), generator=g)))


def _to_dg(torch_model, dg_model) -> None:
    report = dg_model.load_state_dict({k: v.numpy() for k, v in torch_model.state_dict().items()})
    assert not report.missing_keys and not report.unexpected_keys


def _to_torch(dg_model, torch_model) -> None:
    torch_model.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in dg_model.state_dict().items()})


def _close(ours, theirs, rtol=1e-4, atol=1e-5, what="output"):
    a, b = np.asarray(ours.detach().numpy()), theirs.detach().numpy()
    assert a.shape == b.shape, f"{what}: {a.shape} vs torch {b.shape}"
    scale = max(1.0, float(np.abs(b).max()))
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol * scale, err_msg=what)


# ----------------------------------------------------------------------------- layouts
@pytest.mark.parametrize("name", list(BUILDERS))
def test_state_dict_layout_is_torchvisions(full_size, name):
    model = full_size[name]
    assert _rows(model.state_dict()) == _layout(name)  # keys, shapes and order
    params = sum(p.numel() for n, p in model.named_parameters() if not n.startswith(("aux1.", "aux2.")))
    assert params == PUBLISHED_PARAMS[name]


@pytest.mark.parametrize("name", list(BUILDERS))
def test_reference_mirror_has_the_same_layout(name):
    torch.manual_seed(0)
    assert _rows(BUILDERS[name][1]().state_dict()) == _layout(name)


def test_torchvision_initialisation(full_size):
    g, inc, alex = full_size["googlenet"], full_size["inception_v3"], full_size["alexnet"]

    def std(p) -> float:
        return float(p.detach().numpy().std())

    # GoogLeNet: every conv / linear weight ~ N(0, 0.01^2)
    assert abs(std(g.inception4e.branch2[1].conv.weight) - 0.01) < 5e-4
    assert abs(std(g.aux1.fc1.weight) - 0.01) < 5e-4
    # Inception-v3: 0.1 everywhere, 0.001 for the aux fc; the aux conv1's 0.01 is set on the BasicConv2d, so (as
    # in torchvision) its inner conv keeps 0.1
    assert abs(std(inc.Mixed_7c.branch3x3dbl_2.conv.weight) - 0.1) < 2e-3
    assert abs(std(inc.AuxLogits.fc.weight) - 0.001) < 5e-5
    assert abs(std(inc.AuxLogits.conv1.conv.weight) - 0.1) < 2e-3
    bn = inc.Mixed_6b.branch1x1.bn
    assert set(bn.weight.detach().numpy().tolist()) == {1.0} and set(bn.bias.detach().numpy().tolist()) == {0.0}
    assert bn.eps == 0.001
    # AlexNet keeps torch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    w = alex.classifier[1].weight.detach().numpy()
    bound = np.float32(1 / np.sqrt(9216))
    assert np.abs(w).max() <= bound and abs(w.std() - bound / np.sqrt(3)) < 1e-2 * bound


# ----------------------------------------------------------------------------- whole networks, eval mode
@pytest.mark.parametrize("name,shape", [("alexnet", (2, 3, 64, 64)), ("googlenet", (2, 3, 32, 32)),
                                        ("inception_v3", (1, 3, 75, 75))])
def test_eval_outputs_match_torchvision_weights(full_size, name, shape):
    torch.manual_seed(1)
    reference = BUILDERS[name][1]().eval()
    _randomize_(reference, seed=2)
    model = full_size[name]
    _to_dg(reference, model)
    if name == "inception_v3":  # ImageNet-normalised input mapped to [-1, 1], as its ported weights expect
        model.transform_input = reference.transform_input = True
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    model.eval()
    with dg.no_grad():
        out = model(dg.tensor(x))
    assert isinstance(out, dg.Tensor)  # eval mode: the logits alone, no aux outputs
    _close(out, reference(torch.from_numpy(x)))


def test_weights_go_back_to_torch():
    """deepgrad's own (randomly initialised) weights load strictly into torchvision's layout and compute the same."""
    dg.manual_seed(4)
    model = models.googlenet(num_classes=7, transform_input=True).eval()
    reference = R.GoogLeNet(num_classes=7, transform_input=True).eval()
    _to_torch(model, reference)
    x = np.random.default_rng(4).standard_normal((2, 3, 16, 16)).astype(np.float32)
    with dg.no_grad():
        _close(model(dg.tensor(x)), reference(torch.from_numpy(x)))
    for key, value in reference.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), model.state_dict()[key].numpy())


# ----------------------------------------------------------------------------- training mode: aux heads and grads
def test_googlenet_training_outputs_statistics_and_gradients():
    # float64: batch statistics of 2 samples on 1x1 maps amplify float32 rounding beyond any fair tolerance
    torch.manual_seed(5)
    reference = R.GoogLeNet(num_classes=10, dropout=0.0, dropout_aux=0.0).double()
    _randomize_(reference, seed=6)
    model = models.googlenet(num_classes=10, dropout=0.0, dropout_aux=0.0).double()
    _to_dg(reference, model)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 20, 20))
    ours, theirs = model(dg.tensor(x)), reference(torch.from_numpy(x))
    assert type(ours).__name__ == "GoogLeNetOutputs" and ours._fields == ("logits", "aux_logits2", "aux_logits1")
    for field in ours._fields:
        _close(getattr(ours, field), getattr(theirs, field), what=field)
    # aux_logits1 is the head on inception4a (torchvision's order since vision#8743)
    upstream = [rng.standard_normal((2, 10)) for _ in range(3)]
    sum((o * dg.tensor(u)).sum() for o, u in zip(ours, upstream)).backward()
    sum((o * torch.from_numpy(u)).sum() for o, u in zip(theirs, upstream)).backward()
    ours_p, theirs_p = dict(model.named_parameters()), dict(reference.named_parameters())
    for key in ("conv1.conv.weight", "inception3a.branch3.1.conv.weight", "inception4a.branch4.1.bn.weight",
                "aux1.fc1.weight", "aux1.conv.conv.weight", "aux2.fc2.bias", "fc.weight"):
        _close(ours_p[key].grad, theirs_p[key].grad, rtol=1e-3, atol=1e-4, what=f"grad {key}")
    ours_s, theirs_s = model.state_dict(), reference.state_dict()
    for key in ("conv1.bn.running_mean", "aux2.conv.bn.running_var", "inception5b.branch1.bn.num_batches_tracked"):
        _close(ours_s[key], theirs_s[key], what=key)


def test_aux_heads_can_be_switched_off():
    model = models.googlenet(num_classes=10, aux_logits=False, width=1 / 16)
    assert model.aux1 is None and not any(k.startswith("aux") for k in model.state_dict())
    assert isinstance(model(dg.randn(2, 3, 16, 16)), dg.Tensor)  # training mode, but no heads: logits only
    # torchvision's recipe for its ImageNet weights: build with heads, load, then drop them
    model = models.googlenet(num_classes=10, width=1 / 16, init_weights=False)
    model.aux_logits, model.aux1, model.aux2 = False, None, None
    assert isinstance(model(dg.randn(2, 3, 16, 16)), dg.Tensor)
    inc = models.inception_v3(num_classes=5, aux_logits=False)
    assert inc.AuxLogits is None and isinstance(inc(dg.randn(2, 3, 75, 75)), dg.Tensor)


# ----------------------------------------------------------------------------- Inception-v3's aux head, training mode
def test_inception_v3_aux_head_matches_torchvision():
    """The head needs the 17x17 grid of a 299x299 input, so it is checked on its own here (the eval test runs
    every other block of the network; the slow test below runs the whole training step)."""
    from deepgrad.models.inception import InceptionAux

    torch.manual_seed(8)
    reference = R.InceptionAux(768, 10).double()
    _randomize_(reference, seed=9)
    head = InceptionAux(768, 10).double()
    _to_dg(reference, head)
    x = np.random.default_rng(10).standard_normal((2, 768, 17, 17))
    _close(head(dg.tensor(x)), reference(torch.from_numpy(x)))
    _close(head.state_dict()["conv1.bn.running_var"], reference.state_dict()["conv1.bn.running_var"])


@pytest.mark.slow
def test_inception_v3_full_training_step_with_aux_at_299():
    """The aux head needs the 17x17 grid of a 299x299 input; this is the whole network's training step."""
    torch.manual_seed(14)  # float64, as the GoogLeNet training test: batch statistics amplify float32 rounding
    reference = R.Inception3(num_classes=10, dropout=0.0).double()
    _randomize_(reference, seed=15)
    model = models.inception_v3(num_classes=10, dropout=0.0).double()
    _to_dg(reference, model)
    x = np.random.default_rng(16).standard_normal((2, 3, 299, 299))
    ours, theirs = model(dg.tensor(x)), reference(torch.from_numpy(x))
    assert ours._fields == ("logits", "aux_logits")
    _close(ours.logits, theirs.logits, rtol=2e-4)
    _close(ours.aux_logits, theirs.aux_logits, rtol=2e-4)
    (ours.logits.sum() + 0.4 * ours.aux_logits.sum()).backward()
    (theirs.logits.sum() + 0.4 * theirs.aux_logits.sum()).backward()
    _close(model.Conv2d_1a_3x3.conv.weight.grad, reference.Conv2d_1a_3x3.conv.weight.grad, rtol=1e-3, atol=1e-4)


# ----------------------------------------------------------------------------- small variants and errors
def test_small_variants_keep_torchvision_keys():
    small = models.alexnet(num_classes=10, in_channels=1, width=1 / 8, hidden=32, input_size=28)
    assert [k for k, _ in _rows(small.state_dict())] == [k for k, _ in _layout("alexnet")]
    assert small(dg.randn(2, 1, 28, 28)).shape == (2, 10)
    tiny = models.googlenet(num_classes=10, in_channels=1, width=1 / 8)
    assert [k for k, _ in _rows(tiny.state_dict())] == [k for k, _ in _layout("googlenet")]
    assert all(o.shape == (2, 10) for o in tiny(dg.randn(2, 1, 15, 15)))  # torchvision's minimum input


def test_bad_inputs_name_the_model_and_shapes():
    with pytest.raises(ValueError, match=r"AlexNet: expected input \(N, 3, H, W\), got \(2, 1, 64, 64\)"):
        models.alexnet(width=1 / 16, hidden=8)(dg.randn(2, 1, 64, 64))
    with pytest.raises(ValueError, match="AlexNet: input_size 4 is too small"):
        models.alexnet(input_size=4)
    with pytest.raises(ValueError, match="GoogLeNet: expected input"):
        models.googlenet(width=1 / 16)(dg.randn(2, 3, 32))
    with pytest.raises(ValueError, match="blocks must list 3"):
        models.googlenet(blocks=[models.googlenet])
    with pytest.raises(ValueError, match="minimum input size is 75x75"):
        models.inception_v3(aux_logits=False).eval()(dg.randn(1, 3, 74, 80))
    with pytest.raises(ValueError, match="width must be positive"):
        models.googlenet(width=0)
