"""Module semantics: registration, traversal, modes, hooks, state dicts, devices, init."""

import math

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.bn = nn.BatchNorm1d(3)
        self.scale = nn.Parameter(dg.ones(3))
        self.register_buffer("steps", dg.zeros(1))
        self.register_buffer("scratch", dg.zeros(2), persistent=False)

    def forward(self, x):
        return self.bn(self.fc(x)) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(Block(), nn.ReLU(), nn.Linear(3, 2))
        self.heads = nn.ModuleList([nn.Linear(2, 1), nn.Linear(2, 1)])
        self.extra = nn.ModuleDict({"drop": nn.Dropout(0.5)})

    def forward(self, x):
        h = self.extra["drop"](self.body(x))
        return self.heads[0](h) + self.heads[1](h)


def test_registration_and_names_match_torch_convention():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == [
        "body.0.scale", "body.0.fc.weight", "body.0.fc.bias", "body.0.bn.weight", "body.0.bn.bias",
        "body.2.weight", "body.2.bias", "heads.0.weight", "heads.0.bias", "heads.1.weight", "heads.1.bias",
    ]
    keys = list(net.state_dict())
    assert "body.0.bn.running_mean" in keys and "body.0.bn.num_batches_tracked" in keys
    assert "body.0.steps" in keys and "body.0.scratch" not in keys
    assert len(list(net.modules())) == 12  # Net, body, Block, fc, bn, ReLU, Linear, heads, 2 heads, extra, drop
    assert [n for n, _ in net.named_children()] == ["body", "heads", "extra"]
    assert net.get_submodule("body.0.fc") is net.body[0].fc


def test_shared_parameter_listed_once_and_reassignment():
    lin = nn.Linear(3, 3)
    seq = nn.Sequential(lin, lin)
    assert len(list(seq.parameters())) == 2
    block = Block()
    block.fc = nn.Linear(4, 3, bias=False)
    assert block.fc.bias is None and "fc.bias" not in block.state_dict()
    with pytest.raises(TypeError, match="Parameter or None"):
        block.scale = dg.ones(3)
    del block.scale
    assert "scale" not in dict(block.named_parameters())


def test_train_eval_propagate_and_zero_grad():
    net = Net()
    net.eval()
    assert all(not m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    out = net(dg.randn(5, 4)).sum()
    out.backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(float(abs(p.grad).sum().item()) == 0 for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_forward_hooks_and_pre_hooks_can_replace_values():
    lin = nn.Linear(2, 2)
    seen = []
    h1 = lin.register_forward_pre_hook(lambda m, inp: (inp[0] * 0,))
    h2 = lin.register_forward_hook(lambda m, inp, out: seen.append(out.shape) or out + 1)
    out = lin(dg.randn(3, 2))
    np.testing.assert_allclose(out.detach().numpy(), (lin.bias.detach().numpy() + 1)[None].repeat(3, 0), rtol=1e-6)
    assert seen == [(3, 2)]
    h1.remove()
    h2.remove()
    x = dg.randn(3, 2)
    np.testing.assert_allclose(lin(x).detach().numpy(), x.numpy() @ lin.weight.detach().numpy().T
                               + lin.bias.detach().numpy(), rtol=1e-5)


def test_state_dict_round_trip_and_strictness():
    a, b = Net(), Net()
    incompatible = b.load_state_dict(a.state_dict())
    assert incompatible.missing_keys == [] and incompatible.unexpected_keys == []
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
    sd = a.state_dict()
    sd["bogus"] = dg.zeros(1)
    del sd["heads.0.bias"]
    with pytest.raises(RuntimeError, match='Unexpected key.*"bogus".*\n.*Missing key.*"heads.0.bias"'):
        b.load_state_dict(sd)
    result = b.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["heads.0.bias"] and result.unexpected_keys == ["bogus"]
    sd = a.state_dict()
    sd["body.2.weight"] = dg.zeros(5, 5)
    with pytest.raises(RuntimeError, match=r"size mismatch for body.2.weight.*\(5, 5\).*\(2, 3\)"):
        b.load_state_dict(sd, strict=False)


def test_load_state_dict_keeps_parameter_identity():
    net = nn.Linear(3, 2)
    w = net.weight
    net.load_state_dict({"weight": np.ones((2, 3)), "bias": np.zeros(2)})
    assert net.weight is w and float(w.sum().item()) == 6.0


def test_to_dtype_keeps_identity_and_casts_floats_only():
    bn = nn.BatchNorm1d(3)
    w = bn.weight
    bn.double()
    assert bn.weight is w and w.dtype == dg.float64 and bn.running_mean.dtype == dg.float64
    assert bn.num_batches_tracked.dtype == dg.int64


def test_repr_is_readable():
    text = repr(nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(864, 10)))
    assert text.splitlines()[0] == "Sequential("
    assert "(0): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))" in text
    assert "(4): Linear(in_features=864, out_features=10, bias=True)" in text


def test_sequential_indexing_slicing_and_deletion():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert isinstance(seq[-1], nn.Linear) and len(seq[:2]) == 2
    del seq[1]
    assert [type(m).__name__ for m in seq] == ["Linear", "Linear"] and list(seq._modules) == ["0", "1"]
    with pytest.raises(IndexError, match="out of range"):
        seq[5]


def test_default_init_bounds_match_torch_rule():
    dg.manual_seed(0)
    lin = nn.Linear(400, 50)
    bound = 1 / math.sqrt(400)
    w = lin.weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    conv = nn.Conv2d(6, 16, 5)
    bound = 1 / math.sqrt(6 * 25)
    assert np.abs(conv.weight.detach().numpy()).max() <= bound
    assert np.abs(conv.bias.detach().numpy()).max() <= bound


@pytest.mark.parametrize("name", ["xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_"])
def test_init_variance_matches_formula(name):
    dg.manual_seed(1)
    w = dg.empty(256, 512)
    getattr(nn.init, name)(w)
    fan_in, fan_out = 512, 256
    expected = {
        "xavier_uniform_": 2.0 / (fan_in + fan_out),
        "xavier_normal_": 2.0 / (fan_in + fan_out),
        "kaiming_uniform_": 2.0 / fan_in,  # leaky_relu with a=0 -> gain sqrt(2)
        "kaiming_normal_": 2.0 / fan_in,
    }[name]
    assert abs(float(w.numpy().var()) / expected - 1) < 0.03


def test_orthogonal_init_is_orthogonal():
    w = dg.empty(6, 10)
    nn.init.orthogonal_(w)
    a = w.numpy()
    np.testing.assert_allclose(a @ a.T, np.eye(6), atol=1e-5)


def test_manual_seed_makes_init_reproducible():
    dg.manual_seed(123)
    a = nn.Linear(5, 5).weight.detach().numpy().copy()
    dg.manual_seed(123)
    b = nn.Linear(5, 5).weight.detach().numpy()
    np.testing.assert_array_equal(a, b)


def test_module_without_forward_and_bad_assignment():
    class Empty(nn.Module):
        pass

    with pytest.raises(TypeError, match="forward"):
        Empty()(dg.zeros(1))

    class Early(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()


def test_replacing_a_child_keeps_its_position():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 4))
    seq[0] = nn.Linear(2, 3)
    assert list(seq._modules) == ["0", "1", "2"]
    assert seq(dg.randn(5, 2)).shape == (5, 4)
    block = Block()
    block.fc = nn.Linear(4, 3)
    assert [n for n, _ in block.named_children()] == ["fc", "bn"]


def test_parameter_str_and_repr_are_torchs():
    import torch

    ours, theirs = nn.Parameter(dg.tensor([1.0, 2.0])), torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    assert str(ours) == str(theirs) and repr(ours) == repr(theirs)
    assert str(ours).startswith("Parameter containing:\n")
