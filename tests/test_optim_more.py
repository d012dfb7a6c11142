"""Adadelta, Adamax, NAdam, RAdam, Rprop and LBFGS against torch.optim: parameters after every step over a
grid of options (float32 and float64), state_dict layout and exact resume, LBFGS with and without its
strong-Wolfe line search (trajectory, returned losses, evaluation counters), and argument errors."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch
from test_optim import _assert_same, _dg_tensors, _initial, _run_dg, _run_torch, _torch_tensors

import deepgrad as dg
from deepgrad import optim


def _grid(**options):
    return [dict(zip(options, values)) for values in itertools.product(*options.values())]


CASES = (
    [("Adadelta", dict(lr=0.5, **c)) for c in _grid(rho=[0.9, 0.5], weight_decay=[0.0, 0.1], maximize=[False, True])]
    + [("Adamax", dict(lr=0.01, **c)) for c in _grid(weight_decay=[0.0, 0.1], maximize=[False, True])]
    + [("NAdam", dict(lr=0.01, **c)) for c in _grid(weight_decay=[0.0, 0.1], decoupled_weight_decay=[False, True],
                                                    momentum_decay=[4e-3, 0.1], maximize=[False, True])
       if c["weight_decay"] or not c["decoupled_weight_decay"]]
    + [("RAdam", dict(lr=0.01, **c)) for c in _grid(weight_decay=[0.0, 0.1], decoupled_weight_decay=[False, True],
                                                    maximize=[False, True])
       if c["weight_decay"] or not c["decoupled_weight_decay"]]
    + [("Rprop", dict(lr=0.05, **c)) for c in _grid(etas=[(0.5, 1.2), (0.3, 1.5)], step_sizes=[(1e-6, 50), (0.01, 0.1)],
                                                    maximize=[False, True])]
)
NAMES = ["Adadelta", "Adamax", "NAdam", "RAdam", "Rprop"]


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_twelve_steps_match_torch(name, kwargs):
    """12 steps: RAdam switches from momentum steps to rectified adaptive ones at step 6 (beta2 = 0.999)."""
    init = _initial()
    ours, theirs = _dg_tensors(init), _torch_tensors(init)
    opt_a, opt_b = getattr(optim, name)(ours, **kwargs), getattr(torch.optim, name)(theirs, **kwargs)
    for k in range(12):
        _run_dg(opt_a, ours, 1, start=k)
        _run_torch(opt_b, theirs, 1, start=k)
        _assert_same(ours, theirs)


@pytest.mark.parametrize("name", NAMES)
def test_defaults_and_float64_match_torch(name):
    init = _initial(seed=1, dtype=np.float64)
    ours, theirs = _dg_tensors(init), _torch_tensors(init)
    opt_a, opt_b = getattr(optim, name)(ours), getattr(torch.optim, name)(theirs)
    _run_dg(opt_a, ours, 12)
    _run_torch(opt_b, theirs, 12)
    assert ours[0].dtype == np.float64
    _assert_same(ours, theirs, rtol=1e-12, atol=1e-12)
    for key in ("lr", "eps", "betas", "rho", "etas", "step_sizes", "momentum_decay", "weight_decay"):
        if key in opt_b.defaults:
            assert opt_a.defaults[key] == opt_b.defaults[key], key


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_layout_matches_torch_and_resumes_exactly(name):
    init = _initial(seed=2)
    ours, theirs = _dg_tensors(init), _torch_tensors(init)
    opt_a, opt_b = getattr(optim, name)(ours, lr=0.01), getattr(torch.optim, name)(theirs, lr=0.01)
    _run_dg(opt_a, ours, 4)
    _run_torch(opt_b, theirs, 4)
    sa, sb = opt_a.state_dict(), opt_b.state_dict()
    assert sorted(sa["state"]) == sorted(sb["state"])
    for idx, st in sb["state"].items():
        assert sorted(sa["state"][idx]) == sorted(st)
        for key, value in st.items():
            np.testing.assert_allclose(np.asarray(sa["state"][idx][key]), value.numpy(), rtol=1e-5, atol=1e-6)
    assert set(sa["param_groups"][0]) <= set(sb["param_groups"][0])
    # resume from the checkpoint into fresh parameters: the next steps equal an uninterrupted run
    saved = copy.deepcopy(sa)
    resumed = [dg.tensor(p.detach().numpy().copy(), requires_grad=True) for p in ours]
    fresh = getattr(optim, name)(resumed, lr=123.0)
    fresh.load_state_dict(saved)
    _run_dg(opt_a, ours, 4, start=4)
    _run_dg(fresh, resumed, 4, start=4)
    for a, b in zip(resumed, ours):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


@pytest.mark.parametrize("make,match", [
    (lambda ps: optim.Adadelta(ps, lr=-1), "Invalid learning rate"),
    (lambda ps: optim.Adadelta(ps, rho=1.5), "Invalid rho value"),
    (lambda ps: optim.Adadelta(ps, eps=-1), "Invalid epsilon"),
    (lambda ps: optim.Adamax(ps, betas=(1.0, 0.9)), "beta parameter at index 0"),
    (lambda ps: optim.NAdam(ps, momentum_decay=-1), "Invalid momentum_decay"),
    (lambda ps: optim.NAdam(ps, betas=(0.9, 1.0)), "beta parameter at index 1"),
    (lambda ps: optim.RAdam(ps, weight_decay=-1), "Invalid weight_decay"),
    (lambda ps: optim.Rprop(ps, etas=(1.5, 1.2)), "Invalid eta values"),
    (lambda ps: optim.RAdam(ps, differentiable=True), "differentiable=True"),
    (lambda ps: optim.LBFGS([{"params": ps[:1]}, {"params": ps[1:]}]), "parameter groups"),
    (lambda ps: optim.LBFGS(ps, lr=-1), "Invalid learning rate"),
])
def test_bad_arguments_raise_like_torch(make, match):
    with pytest.raises(ValueError, match=match):
        make(_dg_tensors(_initial()))


# ----------------------------------------------------------------------------- LBFGS
def _lbfgs_problem(lib, params, x, y):
    """A small tanh network's squared error: non-convex, so the line search has real work to do."""
    w1, b1, w2 = params
    h = (x @ w1 + b1).tanh()
    return ((h @ w2 - y) ** 2).mean()


def _lbfgs_run(lib, dtype, kwargs, steps=3):
    rng = np.random.default_rng(3)
    init = [rng.standard_normal(s).astype(dtype) * 0.5 for s in [(4, 6), (6,), (6, 2)]]
    x, y = rng.standard_normal((12, 4)).astype(dtype), rng.standard_normal((12, 2)).astype(dtype)
    if lib is torch:
        params = [torch.tensor(a, requires_grad=True) for a in init]
        x, y = torch.tensor(x), torch.tensor(y)
        opt = torch.optim.LBFGS(params, **kwargs)
    else:
        params = [dg.tensor(a, requires_grad=True) for a in init]
        x, y = dg.tensor(x), dg.tensor(y)
        opt = optim.LBFGS(params, **kwargs)

    def closure():
        opt.zero_grad()
        loss = _lbfgs_problem(lib, params, x, y)
        loss.backward()
        return loss

    losses, trajectory = [], []
    for _ in range(steps):
        losses.append(opt.step(closure).item())
        trajectory.append([p.detach().numpy().copy() for p in params])
    state = opt.state[params[0]]
    return losses, trajectory, (state["func_evals"], state["n_iter"])


LBFGS_CASES = [dict(), dict(line_search_fn="strong_wolfe"), dict(history_size=3, max_iter=8, lr=0.5),
               dict(line_search_fn="strong_wolfe", history_size=2, max_iter=12, max_eval=15),
               dict(tolerance_change=1e-3, max_iter=30)]


@pytest.mark.parametrize("kwargs", LBFGS_CASES, ids=[str(k) for k in LBFGS_CASES])
def test_lbfgs_matches_torch_in_float64(kwargs):
    ours, theirs = _lbfgs_run(dg, np.float64, kwargs), _lbfgs_run(torch, np.float64, kwargs)
    assert ours[2] == theirs[2]  # the same number of evaluations and iterations: the same decisions
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-10)
    for a, b in zip(ours[1], theirs[1]):
        for pa, pb in zip(a, b):
            np.testing.assert_allclose(pa, pb, rtol=1e-9, atol=1e-11)
    assert ours[0][-1] < 0.7 * ours[0][0]  # it does optimise


def test_lbfgs_float32_stays_with_torch():
    ours, theirs = (_lbfgs_run(lib, np.float32, dict(line_search_fn="strong_wolfe"), steps=2) for lib in (dg, torch))
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-4)
    for pa, pb in zip(ours[1][-1], theirs[1][-1]):
        np.testing.assert_allclose(pa, pb, rtol=1e-3, atol=1e-4)


def test_lbfgs_needs_a_closure_and_stops_at_an_optimum():
    w = dg.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.LBFGS([w])
    with pytest.raises(TypeError):  # torch: step() missing its closure argument
        opt.step()
    calls = []

    def flat():  # zero gradient: optimal at once, one evaluation, no update
        opt.zero_grad()
        loss = (w * 0.0).sum()
        loss.backward()
        calls.append(1)
        return loss

    opt.step(flat)
    assert len(calls) == 1 and w.tolist() == [1.0, 2.0]
    bad = optim.LBFGS([w], line_search_fn="backtracking")

    def quadratic():
        bad.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
        bad.step(quadratic)


@pytest.mark.parametrize("name, kwargs", [
    ("Adam", dict(betas=(0.9, 1.0))), ("Adam", dict(lr=float("nan"))), ("AdamW", dict(weight_decay=-1)),
    ("NAdam", dict(momentum_decay=-1)), ("RAdam", dict(eps=-1)), ("Adamax", dict(betas=(-0.1, 0.9))),
    ("Adagrad", dict(initial_accumulator_value=-1)), ("RMSprop", dict(momentum=-1)), ("Adadelta", dict(rho=1.5)),
], ids=str)
def test_hyperparameter_errors_are_torchs_word_for_word(name, kwargs):
    with pytest.raises(ValueError) as theirs:
        getattr(torch.optim, name)([torch.nn.Parameter(torch.zeros(2))], **kwargs)
    with pytest.raises(ValueError) as ours:
        getattr(optim, name)([dg.nn.Parameter(dg.zeros(2))], **kwargs)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("name, kwargs", [
    ("Adam", {}), ("Adam", dict(amsgrad=True)), ("NAdam", {}), ("RAdam", {}), ("Adamax", {}), ("Adadelta", {}),
    ("RMSprop", dict(momentum=0.9, centered=True)),
], ids=str)
def test_per_parameter_state_has_torchs_keys_in_torchs_order(name, kwargs):
    ours, theirs = dg.nn.Parameter(dg.ones(2)), torch.nn.Parameter(torch.ones(2))
    states = []
    for lib, w in ((dg, ours), (torch, theirs)):
        opt = getattr(lib.optim, name)([w], **kwargs)
        (w * w).sum().backward()
        opt.step()
        states.append(list(opt.state[w]))
    assert states[0] == states[1]
