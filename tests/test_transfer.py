"""Transfer learning: freeze/unfreeze, replace_head, feature_extractor, discriminative learning rates, frozen
batch norm, load_pretrained reports and refusals, and the measured few-shot experiment (CI-sized)."""

import pickle
import warnings

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import models, nn, optim
from deepgrad.transfer import (
    PretrainedLoadError,
    count_parameters,
    discriminative_param_groups,
    feature_extractor,
    few_shot_experiment,
    find_head,
    freeze,
    keep_frozen_bn_eval,
    load_pretrained,
    parameter_units,
    replace_head,
    unfreeze,
)


def _snapshot(model):
    return {k: v.detach().numpy().copy() for k, v in model.named_parameters()}


def _train_step(model, x, classes, opt):
    loss = nn.functional.cross_entropy(model(x), dg.tensor(np.arange(x.shape[0]) % classes))
    opt.zero_grad()
    loss.backward()
    opt.step()


def test_freeze_up_to_leaves_exactly_the_rest_trainable_and_updated():
    dg.manual_seed(0)
    model = models.LeNet5()
    frozen = freeze(model, up_to="features")
    assert frozen == ["features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias"]
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"classifier.{i}.{k}" for i in (0, 2, 4) for k in ("weight", "bias")}
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2)  # every param handed over
    before = _snapshot(model)
    for _ in range(2):
        _train_step(model, dg.randn(4, 1, 28, 28), 10, opt)
    after = _snapshot(model)
    for name in before:
        changed = not np.array_equal(before[name], after[name])
        assert changed == (name in trainable), name
        param = dict(model.named_parameters())[name]
        assert (param.grad is None) == (name not in trainable)


def test_freeze_by_count_and_unfreeze_last_n_and_names():
    model = models.vgg11_bn(num_classes=3, in_channels=1, width=1 / 16, hidden=8, input_size=8)
    units = parameter_units(model)
    assert [u[0] for u in units[:3]] == ["features.0", "features.1", "features.4"]
    freeze(model)
    assert count_parameters(model)[0] == 0
    names = unfreeze(model, last_n=2)
    assert names == ["classifier.3.weight", "classifier.3.bias", "classifier.6.weight", "classifier.6.bias"]
    freeze(model, up_to=3)
    unfreeze(model, names=["features.25", "classifier.0.weight"])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"features.25.weight", "features.25.bias", "classifier.0.weight", "classifier.3.weight",
                         "classifier.3.bias", "classifier.6.weight", "classifier.6.bias"}
    unfreeze(model)
    assert count_parameters(model)[0] == count_parameters(model)[1]
    with pytest.raises(ValueError, match="did you mean features"):
        freeze(model, up_to="feature")
    with pytest.raises(ValueError, match="out of range"):
        freeze(model, up_to=1000)
    with pytest.raises(ValueError, match="no submodule or parameter 'head'"):
        unfreeze(model, names=["head"])


def test_freeze_clears_stale_gradients():
    model = models.MLP(3, [4], 2)
    model(dg.randn(2, 3)).sum().backward()
    freeze(model, up_to="1")
    assert model[1].weight.grad is None and model[3].weight.grad is not None


@pytest.mark.parametrize("build,head", [
    (lambda: models.LeNet5(), "classifier.4"),
    (lambda: models.vgg11(num_classes=10, in_channels=1, width=1 / 16, hidden=8, input_size=8), "classifier.6"),
    (lambda: models.resnet_cifar(8, num_classes=10, in_channels=1, width=4), "fc"),
    (lambda: models.MLP(64, [16], 10), "3"),
])
def test_replace_head(build, head):
    dg.manual_seed(0)
    model = build()
    assert find_head(model)[0] == head
    freeze(model)
    new = replace_head(model, 4)
    assert model.get_submodule(head) is new and new.out_features == 4
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [f"{head}.weight", f"{head}.bias"]
    size = 28 if isinstance(model, models.LeNet5) else 8
    x = dg.randn(2, 1, size, size)
    assert model(x).shape == (2, 4)  # layer order kept: the head is still last in its Sequential
    if hasattr(model, "num_classes"):
        assert model.num_classes == 4
    with pytest.raises(ValueError, match="positive int"):
        replace_head(model, 0)


def test_feature_extractor_returns_requested_layers():
    dg.manual_seed(0)
    model = models.resnet18(num_classes=10, width=4)
    calls = []
    model.fc.register_forward_hook(lambda m, i, o: calls.append(1))
    fx = feature_extractor(model, ["layer1", "layer4", "avgpool"])
    feats = fx(dg.randn(2, 3, 64, 64))
    assert list(feats) == ["layer1", "layer4", "avgpool"]
    assert [f.shape for f in feats.values()] == [(2, 4, 16, 16), (2, 32, 2, 2), (2, 32, 1, 1)]
    assert calls == []  # stopped before the head
    assert model.layer1._forward_hooks == []  # hooks removed afterwards
    vgg = models.vgg11(num_classes=5, in_channels=1, width=1 / 16, hidden=8, input_size=8)
    feats = feature_extractor(vgg, {"features.2": "pool1", "classifier.1": "fc1"})(dg.randn(3, 1, 8, 8))
    assert feats["pool1"].shape == (3, 4, 4, 4) and feats["fc1"].shape == (3, 8)
    with pytest.raises(ValueError, match="no submodule"):
        feature_extractor(vgg, ["features.99"])


def test_discriminative_param_groups():
    model = models.resnet_cifar(8, num_classes=3, width=4)
    freeze(model, up_to="bn1")
    groups = discriminative_param_groups(model, lr=0.1, decay=0.5, groups=["layer1", "layer2", "layer3", "fc"])
    assert [g["name"] for g in groups] == ["layer1", "layer2", "layer3", "fc"]
    np.testing.assert_allclose([g["lr"] for g in groups], [0.0125, 0.025, 0.05, 0.1])
    opt = optim.SGD(groups, lr=0.1)
    assert sum(len(g["params"]) for g in opt.param_groups) == len([p for p in model.parameters() if p.requires_grad])
    by_children = discriminative_param_groups(model, lr=1.0, decay=0.1)
    assert by_children[0]["name"] == "layer1" and by_children[-1]["lr"] == 1.0
    assert len(discriminative_param_groups(model, lr=1.0, groups=3)) == 3
    with pytest.raises(ValueError, match="belong to none"):
        discriminative_param_groups(model, lr=0.1, groups=["layer1", "fc"])


def test_frozen_batchnorm_stays_in_eval_mode():
    dg.manual_seed(0)
    model = models.vgg11_bn(num_classes=3, in_channels=1, width=1 / 16, hidden=8, input_size=8)
    freeze(model, up_to="features")
    handles = keep_frozen_bn_eval(model)
    bn = model.features[1]
    mean_before = bn.running_mean.numpy().copy()
    model.train()
    model(dg.randn(8, 1, 8, 8) * 3 + 1)
    np.testing.assert_array_equal(bn.running_mean.numpy(), mean_before)  # statistics untouched
    assert not bn.training and model.classifier.training
    assert keep_frozen_bn_eval(model)[0] is handles[0]  # installing twice is harmless
    unfreeze(model)
    model.train()
    model(dg.randn(8, 1, 8, 8) + 1)
    assert not np.array_equal(bn.running_mean.numpy(), mean_before)  # trainable again: follows train()
    for h in handles:
        h.remove()


# ----------------------------------------------------------------------------- loading weights
def test_load_pretrained_report_for_a_different_architecture(tmp_path):
    dg.manual_seed(0)
    vgg_path = tmp_path / "vgg.safetensors"
    dg.save(models.vgg11(num_classes=10, in_channels=1, width=1 / 16, hidden=8, input_size=8).state_dict(), vgg_path)
    lenet = models.LeNet5()
    before = _snapshot(lenet)
    with pytest.raises(PretrainedLoadError) as err:
        load_pretrained(lenet, vgg_path, strict=True)
    msg = str(err.value)
    assert "loaded 0 of 10 model tensors" in msg and "missing from the file" in msg and "unexpected in the file" in msg
    assert "features.0.weight: (4, 1, 3, 3) vs (6, 1, 5, 5)" in msg
    with pytest.warns(UserWarning, match="nothing loaded"):
        report = load_pretrained(lenet, vgg_path)
    assert not report.ok and len(report.mismatched) == 6 and report.loaded == []
    assert all(np.array_equal(v, _snapshot(lenet)[k]) for k, v in before.items())


def test_load_pretrained_partial_new_head_and_prefix(tmp_path):
    dg.manual_seed(0)
    source = models.LeNet5(num_classes=10)
    path = tmp_path / "lenet.safetensors"
    dg.save({f"module.{k}": v for k, v in source.state_dict().items()}, path)
    target = models.LeNet5(num_classes=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = load_pretrained(target, path, strip_prefix="module.")
    assert report.mismatched == [("classifier.4.weight", (10, 84), (5, 84)), ("classifier.4.bias", (10,), (5,))]
    assert len(report.loaded) == 8 and not report.missing and not report.unexpected
    np.testing.assert_array_equal(target.features[0].weight.detach().numpy(),
                                  source.features[0].weight.detach().numpy())
    assert "shape mismatch" in str(report)


def test_non_safetensors_files_are_refused(tmp_path):
    model = models.MLP(2, [2], 2)
    pickled = tmp_path / "model.pt"
    pickled.write_bytes(pickle.dumps({"weight": np.zeros(3)}))
    with pytest.raises(PretrainedLoadError, match="not a safetensors file.*pickle"):
        load_pretrained(model, pickled)
    zipped = tmp_path / "model.pth"
    zipped.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    with pytest.raises(PretrainedLoadError, match="zip archive"):
        load_pretrained(model, zipped)
    text = tmp_path / "weights.txt"
    text.write_text("these are not weights")
    with pytest.raises(PretrainedLoadError, match="not a safetensors file"):
        load_pretrained(model, text)
    with pytest.raises(PretrainedLoadError, match="no such file"):
        load_pretrained(model, tmp_path / "missing.safetensors")


# ----------------------------------------------------------------------------- the measured claim
def test_few_shot_transfer_beats_scratch_at_five_examples_per_class():
    result = few_shot_experiment(shots=(5,), seeds=(0, 1, 2), steps=150)
    assert result.pretrain_accuracy > 0.95
    scratch = result.mean("scratch", 5)
    assert result.mean("frozen_features", 5) > scratch
    assert result.mean("fine_tune_upper", 5) > scratch
    assert "| scratch |" in result.table()
