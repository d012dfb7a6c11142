"""deepgrad.optim optimizers against torch.optim: same parameters after 10 steps over a grid of options,
param groups, state_dict round trips, zero_grad, closures and argument errors."""

from __future__ import annotations

import copy
import itertools
import json
import warnings

import numpy as np
import pytest
import torch

import deepgrad as dg
from deepgrad import optim

RTOL, ATOL = 1e-5, 1e-6  # float32 parameters after 10 steps
SHAPES = [(3, 4), (4,), (2, 3, 2)]


def _initial(seed: int = 0, dtype=np.float32) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def _grads(params: list[np.ndarray], step: int) -> list[np.ndarray | None]:
    """A gradient that depends on the current parameters (a pulled quadratic) plus per-step noise of
    both signs; the last parameter only gets a gradient on even steps (tests skipping and per-param
    step counts). Computed in NumPy so both libraries see identical gradients for identical params."""
    rng = np.random.default_rng(100 + step)
    out = []
    for i, p in enumerate(params):
        noise = rng.standard_normal(p.shape).astype(p.dtype)
        g = (np.asarray(0.7 + 0.3 * i, dtype=p.dtype) * (p - 0.5) + noise).astype(p.dtype)
        out.append(None if (i == len(params) - 1 and step % 2) else g)
    return out


def _dg_tensors(arrays):
    return [dg.tensor(a.copy(), requires_grad=True) for a in arrays]


def _torch_tensors(arrays):
    return [torch.tensor(a.copy(), requires_grad=True) for a in arrays]


def _run_dg(opt, params, steps, start=0):
    for k in range(start, start + steps):
        opt.zero_grad()
        for p, g in zip(params, _grads([p.array for p in params], k)):
            p.grad = None if g is None else dg.tensor(g)
        opt.step()


def _run_torch(opt, params, steps, start=0):
    for k in range(start, start + steps):
        opt.zero_grad()
        for p, g in zip(params, _grads([p.detach().numpy() for p in params], k)):
            p.grad = None if g is None else torch.from_numpy(g)
        opt.step()


def _assert_same(dg_params, torch_params, rtol=RTOL, atol=ATOL):
    for a, b in zip(dg_params, torch_params):
        np.testing.assert_allclose(a.array, b.detach().numpy(), rtol=rtol, atol=atol)


def _grid(**options):
    keys = list(options)
    return [dict(zip(keys, values)) for values in itertools.product(*options.values())]


SGD_CASES = [
    c for c in _grid(momentum=[0.0, 0.9], dampening=[0.0, 0.3], nesterov=[False, True],
                     weight_decay=[0.0, 0.1], maximize=[False, True])
    if not (c["nesterov"] and (c["momentum"] == 0 or c["dampening"] != 0))
    and not (c["momentum"] == 0 and c["dampening"] != 0)
]
ADAM_CASES = _grid(amsgrad=[False, True], weight_decay=[0.0, 0.1], maximize=[False, True])
RMSPROP_CASES = _grid(centered=[False, True], momentum=[0.0, 0.9], weight_decay=[0.0, 0.1], maximize=[False, True])
ADAGRAD_CASES = _grid(lr_decay=[0.0, 0.1], weight_decay=[0.0, 0.1], initial_accumulator_value=[0.0, 0.1],
                      maximize=[False, True])

CASES = (
    [("SGD", dict(lr=0.05, **c)) for c in SGD_CASES]
    + [("Adam", dict(lr=0.01, **c)) for c in ADAM_CASES]
    + [("AdamW", dict(lr=0.01, **c)) for c in ADAM_CASES]
    + [("RMSprop", dict(lr=0.01, **c)) for c in RMSPROP_CASES]
    + [("Adagrad", dict(lr=0.05, **c)) for c in ADAGRAD_CASES]
)


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_ten_steps_match_torch(name, kwargs):
    init = _initial()
    ours, theirs = _dg_tensors(init), _torch_tensors(init)
    _run_dg(getattr(optim, name)(ours, **kwargs), ours, 10)
    _run_torch(getattr(torch.optim, name)(theirs, **kwargs), theirs, 10)
    _assert_same(ours, theirs)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_defaults_and_float64_match_torch(name):
    init = _initial(seed=1, dtype=np.float64)
    ours, theirs = _dg_tensors(init), _torch_tensors(init)
    _run_dg(getattr(optim, name)(ours), ours, 10)
    _run_torch(getattr(torch.optim, name)(theirs), theirs, 10)
    assert ours[0].dtype == np.float64
    _assert_same(ours, theirs, rtol=1e-12, atol=1e-12)
    assert optim.SGD(ours).defaults["lr"] == torch.optim.SGD(theirs).defaults["lr"] == 1e-3


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_param_groups_with_their_own_options(name):
    init = _initial(seed=2)

    def groups(ts, extra):
        return [{"params": [ts[0]], "lr": 0.1, **extra}, {"params": ts[1:]}]

    extra = {"SGD": {"momentum": 0.5}, "Adam": {"betas": (0.8, 0.99)}, "RMSprop": {"centered": True}}[name]
    ours, theirs = _dg_tensors(init), _torch_tensors(init)
    opt_a = getattr(optim, name)(groups(ours, extra), lr=0.01)
    opt_b = getattr(torch.optim, name)(groups(theirs, extra), lr=0.01)
    assert [g["lr"] for g in opt_a.param_groups] == [0.1, 0.01]
    _run_dg(opt_a, ours, 10)
    _run_torch(opt_b, theirs, 10)
    _assert_same(ours, theirs)


def test_add_param_group_later_matches_torch():
    init = _initial(seed=3)
    ours, theirs = _dg_tensors(init), _torch_tensors(init)
    opt_a = optim.Adam(ours[:2], lr=0.01)
    opt_b = torch.optim.Adam(theirs[:2], lr=0.01)
    _run_dg(opt_a, ours, 3)
    _run_torch(opt_b, theirs, 3)
    opt_a.add_param_group({"params": ours[2], "lr": 0.05, "amsgrad": True})
    opt_b.add_param_group({"params": theirs[2], "lr": 0.05, "amsgrad": True})
    _run_dg(opt_a, ours, 7, start=3)
    _run_torch(opt_b, theirs, 7, start=3)
    _assert_same(ours, theirs)


def _mlp_loss(lib, w1, b1, w2, b2, x, y):
    h = (x @ w1 + b1).tanh()
    return ((h @ w2 + b2 - y) ** 2).mean()


@pytest.mark.parametrize("name,kwargs", [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
                                         ("Adam", dict(lr=0.01, weight_decay=1e-3))])
def test_mlp_training_with_each_autograd_matches_torch(name, kwargs):
    rng = np.random.default_rng(4)
    init = [rng.standard_normal(s).astype(np.float32) * 0.5 for s in [(5, 8), (8,), (8, 3), (3,)]]
    x, y = rng.standard_normal((16, 5)).astype(np.float32), rng.standard_normal((16, 3)).astype(np.float32)
    ours, theirs = _dg_tensors(init), _torch_tensors(init)
    opt_a, opt_b = getattr(optim, name)(ours, **kwargs), getattr(torch.optim, name)(theirs, **kwargs)
    for _ in range(10):
        opt_a.zero_grad()
        _mlp_loss(dg, *ours, dg.tensor(x), dg.tensor(y)).backward()
        opt_a.step()
        opt_b.zero_grad()
        _mlp_loss(torch, *theirs, torch.tensor(x), torch.tensor(y)).backward()
        opt_b.step()
    _assert_same(ours, theirs, rtol=1e-4, atol=1e-5)  # gradients come from two autograds: grad tolerance


def _serialise(state_dict):
    """What a checkpoint does: arrays apart (safetensors), everything else through JSON."""
    arrays, plain = {}, {"state": {}, "param_groups": state_dict["param_groups"]}
    for idx, st in state_dict["state"].items():
        plain["state"][idx] = {}
        for k, v in st.items():
            if isinstance(v, np.ndarray):
                arrays[f"{idx}.{k}"] = v.copy()
            else:
                plain["state"][idx][k] = v
    plain = json.loads(json.dumps(plain))
    for key, v in arrays.items():
        idx, k = key.split(".", 1)
        plain["state"][idx][k] = v
    return plain


@pytest.mark.parametrize("name,kwargs", [
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01, betas=(0.8, 0.95))),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True)),
    ("Adagrad", dict(lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1)),
])
@pytest.mark.parametrize("through_json", [False, True])
def test_state_dict_round_trip_resumes_exactly(name, kwargs, through_json):
    init = _initial(seed=5)
    straight = _dg_tensors(init)
    _run_dg(getattr(optim, name)(straight, **kwargs), straight, 10)

    first = _dg_tensors(init)
    opt = getattr(optim, name)(first, **kwargs)
    _run_dg(opt, first, 5)
    saved = opt.state_dict()
    saved = _serialise(saved) if through_json else copy.deepcopy(saved)
    resumed = [dg.tensor(p.array.copy(), requires_grad=True) for p in first]
    fresh = getattr(optim, name)(resumed, lr=123.0)  # options come back from the checkpoint
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["lr"] == kwargs["lr"]
    _run_dg(fresh, resumed, 5, start=5)
    for a, b in zip(resumed, straight):
        np.testing.assert_array_equal(a.array, b.array)


@pytest.mark.parametrize("name,kwargs", [("SGD", dict(momentum=0.9)), ("SGD", {}), ("Adam", dict(amsgrad=True)),
                                         ("RMSprop", dict(momentum=0.9, centered=True)), ("Adagrad", {})])
def test_state_dict_layout_matches_torch(name, kwargs):
    init = _initial(seed=6)
    ours, theirs = _dg_tensors(init), _torch_tensors(init)
    opt_a, opt_b = getattr(optim, name)(ours, **kwargs), getattr(torch.optim, name)(theirs, **kwargs)
    _run_dg(opt_a, ours, 3)
    _run_torch(opt_b, theirs, 3)
    sa, sb = opt_a.state_dict(), opt_b.state_dict()
    assert sorted(sa) == sorted(sb) == ["param_groups", "state"]
    assert sorted(sa["state"]) == sorted(sb["state"])
    for idx in sb["state"]:
        assert sorted(sa["state"][idx]) == sorted(sb["state"][idx])
        assert sa["state"][idx].get("step", 0) == float(sb["state"][idx].get("step", 0))
        for k, v in sb["state"][idx].items():
            if k != "step":
                np.testing.assert_allclose(sa["state"][idx][k], v.numpy(), rtol=RTOL, atol=ATOL)
    ga, gb = sa["param_groups"][0], sb["param_groups"][0]
    assert ga["params"] == gb["params"] == [0, 1, 2]
    assert set(ga) <= set(gb)
    assert all(ga[k] == gb[k] for k in ga)


def test_load_state_dict_validates_and_copies():
    ps = _dg_tensors(_initial())
    opt = optim.Adam(ps)
    _run_dg(opt, ps, 2)
    saved = opt.state_dict()
    with pytest.raises(ValueError, match="different number of parameter groups"):
        optim.Adam([{"params": ps[:1]}, {"params": ps[1:]}]).load_state_dict(saved)
    with pytest.raises(ValueError, match="doesn't match the size"):
        optim.Adam(ps[:2]).load_state_dict(saved)
    other = optim.Adam(_dg_tensors(_initial()))
    other.load_state_dict(saved)
    first = other.param_groups[0]["params"][0]
    assert other.state[first]["exp_avg"] is not saved["state"][0]["exp_avg"]
    assert isinstance(other.param_groups[0]["betas"], tuple)
    # float64 checkpoints are cast to the parameters' dtype
    saved64 = copy.deepcopy(saved)
    saved64["state"][0]["exp_avg"] = saved64["state"][0]["exp_avg"].astype(np.float64)
    other.load_state_dict(saved64)
    assert other.state[first]["exp_avg"].dtype == np.float32


def test_zero_grad_and_closure():
    w = dg.tensor([1.0, -2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(w.grad.array, [0.0, 0.0])
    opt.zero_grad()
    assert w.grad is None

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with dg.no_grad():  # the closure still records its graph
        loss = opt.step(closure)
    assert float(loss) == 5.0
    np.testing.assert_allclose(w.array, [0.8, -1.6], rtol=1e-6)
    assert opt.step() is None


def test_params_without_grad_are_skipped_and_keep_no_state():
    a, b = dg.randn(3, requires_grad=True), dg.randn(3, requires_grad=True)
    before = b.array.copy()
    opt = optim.Adam([a, b])
    (a * a).sum().backward()
    opt.step()
    np.testing.assert_array_equal(b.array, before)
    assert b not in opt.state and opt.state[a]["step"] == 1


@pytest.mark.parametrize("make,match", [
    (lambda ps: optim.SGD([{"params": ps[:2]}, {"params": ps[1:]}]), "more than one parameter group"),
    (lambda ps: optim.SGD([ps[0], np.zeros(3)]), "can only optimize Tensors"),
    (lambda ps: optim.SGD(ps, lr=-0.1), "Invalid learning rate"),
    (lambda ps: optim.Adam(ps, lr=-1e-3), "Invalid learning rate"),
    (lambda ps: optim.AdamW(ps, lr=-1e-3), "Invalid learning rate"),
    (lambda ps: optim.RMSprop(ps, lr=-1e-3), "Invalid learning rate"),
    (lambda ps: optim.Adagrad(ps, lr=-1e-3), "Invalid learning rate"),
    (lambda ps: optim.SGD([]), "empty parameter list"),
    (lambda ps: optim.SGD(ps[0]), "iterable of Tensors"),
    (lambda ps: optim.SGD([{"params": set(ps)}]), "ordered collections"),
    (lambda ps: optim.SGD(ps, nesterov=True), "Nesterov momentum requires"),
    (lambda ps: optim.SGD(ps, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov momentum requires"),
    (lambda ps: optim.SGD(ps, momentum=-1), "Invalid momentum"),
    (lambda ps: optim.Adam(ps, betas=(1.0, 0.999)), "beta parameter at index 0"),
    (lambda ps: optim.Adam(ps, betas=(0.9, -0.1)), "beta parameter at index 1"),
    (lambda ps: optim.Adam(ps, eps=-1), "Invalid epsilon"),
    (lambda ps: optim.RMSprop(ps, alpha=-1), "Invalid alpha"),
    (lambda ps: optim.Adagrad(ps, lr_decay=-1), "Invalid lr_decay"),
    (lambda ps: optim.SGD([ps[0] * 2]), "non-leaf"),
    (lambda ps: optim.SGD([("w", ps[0]), ps[1]]), "names"),
])
def test_bad_arguments_raise(make, match):
    ps = _dg_tensors(_initial())
    with pytest.raises((ValueError, TypeError), match=match):
        make(ps)


def test_named_params_and_duplicate_warning():
    ps = _dg_tensors(_initial())
    opt = optim.SGD([("w", ps[0]), ("b", ps[1])], lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["w", "b"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["w", "b"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        optim.SGD([ps[0], ps[0]])
    assert any("duplicate parameters" in str(w.message) for w in caught)
    with pytest.raises(TypeError):
        optim.Optimizer(ps, {})  # abstract: step() is required
    assert "SGD (" in repr(opt) and "lr: 0.1" in repr(opt)


@pytest.mark.parametrize("device", [
    pytest.param("cuda", marks=pytest.mark.skipif(not dg.cuda_is_available(), reason="no CUDA device (CuPy)")),
])
@pytest.mark.parametrize("name,kwargs", [("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
                                         ("Adam", dict(lr=0.01, amsgrad=True)), ("AdamW", dict(lr=0.01)),
                                         ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
                                         ("Adagrad", dict(lr=0.05))])
def test_cuda_matches_cpu(device, name, kwargs):
    init = _initial(seed=7)
    cpu = _dg_tensors(init)
    gpu = [dg.tensor(a.copy(), device=device, requires_grad=True) for a in init]
    _run_dg(getattr(optim, name)(cpu, **kwargs), cpu, 10)
    opt = getattr(optim, name)(gpu, **kwargs)
    for k in range(10):
        opt.zero_grad()
        for p, g in zip(gpu, _grads([p.array.get() for p in gpu], k)):
            p.grad = None if g is None else dg.tensor(g, device=device)
        opt.step()
    for a, b in zip(cpu, gpu):
        np.testing.assert_allclose(b.array.get(), a.array, rtol=RTOL, atol=ATOL)
    saved = opt.state_dict()
    restored = optim.__dict__[name]([dg.tensor(a.copy(), requires_grad=True) for a in init], **kwargs)
    restored.load_state_dict(saved)  # a GPU checkpoint loads onto CPU parameters
    assert all(isinstance(v, np.ndarray) for st in restored.state.values() for v in st.values()
               if not isinstance(v, (int, float)))
