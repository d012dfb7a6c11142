"""deepgrad.optim.lr_scheduler against torch.optim.lr_scheduler: identical lr (and momentum) sequences,
state_dict resume, closed-form stepping, warnings and argument errors."""

from __future__ import annotations

import json
import math
import warnings

import pytest
import torch
from torch.optim import lr_scheduler as tls

import deepgrad as dg
from deepgrad import optim
from deepgrad.optim import lr_scheduler as dls

STEPS = 30


def _optimizers(kind="SGD", lrs=(0.1, 0.02), **kwargs):
    """The same two-group optimizer in both libraries."""
    a, b = dg.zeros(2, requires_grad=True), dg.zeros(3, requires_grad=True)
    ta, tb = torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)
    ours = getattr(optim, kind)([{"params": [a], "lr": lrs[0]}, {"params": [b], "lr": lrs[1]}], **kwargs)
    theirs = getattr(torch.optim, kind)([{"params": [ta], "lr": lrs[0]}, {"params": [tb], "lr": lrs[1]}], **kwargs)
    return ours, theirs


def _momenta(opt):
    return [g["betas"][0] if "betas" in g else g.get("momentum") for g in opt.param_groups]


def _sequence(opt, sched, steps=STEPS, metrics=None):
    """lrs (and momenta) after construction and after each optimizer.step(); scheduler.step()."""
    out = [(list(sched.get_last_lr()), [g["lr"] for g in opt.param_groups], _momenta(opt))]
    for k in range(steps):
        opt.step()
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[k])
        out.append((list(sched.get_last_lr()), [g["lr"] for g in opt.param_groups], _momenta(opt)))
    return out


def _assert_sequences_equal(ours, theirs):
    assert len(ours) == len(theirs)
    for k, (a, b) in enumerate(zip(ours, theirs)):
        for x, y in zip(a, b):
            assert x == pytest.approx(y, rel=1e-12, abs=1e-15), f"step {k}: {a} != {b}"


SCHEDULERS = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=7, gamma=0.5),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[5, 12, 12, 20], gamma=0.3),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.9),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=10, eta_min=0.001),  # 30 steps: past T_max
    "CosineAnnealingLR-eta0": lambda m, o: m.CosineAnnealingLR(o, T_max=7),
    "LambdaLR": lambda m, o: m.LambdaLR(o, lambda e: 1.0 / (e + 1)),
    "LambdaLR-per-group": lambda m, o: m.LambdaLR(o, [lambda e: 0.9**e, lambda e: 1 + e]),
    "MultiplicativeLR": lambda m, o: m.MultiplicativeLR(o, lambda e: 0.95),
    "LinearLR": lambda m, o: m.LinearLR(o, start_factor=0.25, end_factor=0.9, total_iters=8),
    "ConstantLR": lambda m, o: m.ConstantLR(o, factor=0.5, total_iters=4),
    "PolynomialLR": lambda m, o: m.PolynomialLR(o, total_iters=10, power=2.0),
    "CosineAnnealingWarmRestarts": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2, eta_min=0.001),
    "CosineAnnealingWarmRestarts-T1": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=4),
    "SequentialLR": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=5), m.CosineAnnealingLR(o, T_max=10),
            m.ExponentialLR(o, gamma=0.8)], milestones=[5, 15]),
    "ChainedScheduler": lambda m, o: m.ChainedScheduler(
        [m.ConstantLR(o, factor=0.5, total_iters=3), m.ExponentialLR(o, gamma=0.9)]),
    "OneCycleLR": lambda m, o: m.OneCycleLR(o, max_lr=[0.5, 0.1], total_steps=STEPS),
    "OneCycleLR-linear-3phase": lambda m, o: m.OneCycleLR(
        o, max_lr=0.4, epochs=3, steps_per_epoch=10, anneal_strategy="linear", three_phase=True, pct_start=0.25,
        div_factor=10.0, final_div_factor=100.0, base_momentum=0.8, max_momentum=0.9),
    "OneCycleLR-no-momentum": lambda m, o: m.OneCycleLR(o, max_lr=0.3, total_steps=STEPS, cycle_momentum=False),
    "CyclicLR": lambda m, o: m.CyclicLR(o, base_lr=0.01, max_lr=[0.1, 0.05], step_size_up=4, step_size_down=6),
    "CyclicLR-triangular2": lambda m, o: m.CyclicLR(o, base_lr=[0.02, 0.001], max_lr=0.2, step_size_up=3,
                                                    mode="triangular2", base_momentum=0.7, max_momentum=0.95),
    "CyclicLR-exp_range": lambda m, o: m.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=5, mode="exp_range",
                                                  gamma=0.9),
    "CyclicLR-scale_fn": lambda m, o: m.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=2, cycle_momentum=False,
                                                 scale_fn=lambda x: 0.5 ** x, scale_mode="iterations"),
}


@pytest.mark.parametrize("kind,kwargs", [("SGD", dict(momentum=0.9)), ("Adam", {})])
@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_lr_sequence_matches_torch(name, kind, kwargs):
    ours_opt, theirs_opt = _optimizers(kind, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's SequentialLR/ChainedScheduler may warn; we compare values
        ours = _sequence(ours_opt, SCHEDULERS[name](dls, ours_opt))
        theirs = _sequence(theirs_opt, SCHEDULERS[name](tls, theirs_opt))
    _assert_sequences_equal(ours, theirs)
    if name.startswith(("OneCycleLR", "CyclicLR")) and "no-momentum" not in name and "scale_fn" not in name:
        assert len({m for _, _, ms in ours for m in ms}) > 3  # momentum (or beta1) really cycles


PLATEAU = {
    "min-rel": dict(mode="min", factor=0.5, patience=2),
    "min-abs-cooldown": dict(mode="min", factor=0.3, patience=1, threshold=0.05, threshold_mode="abs", cooldown=2),
    "max-rel-minlr": dict(mode="max", factor=0.1, patience=0, min_lr=[1e-3, 1e-4]),
    "max-abs-eps": dict(mode="max", factor=0.9, patience=1, threshold_mode="abs", eps=0.005),
}
METRICS = [1.0, 0.9, 0.95, 0.95, 0.96, 0.8, 0.8, 0.8, 0.79999, 0.81, 0.5, 0.7, 0.7, 0.7, 0.7,
           0.4, 0.45, 0.41, 0.4, 0.39, 0.6, 0.6, 0.6, 0.2, 0.3, 0.3, 0.3, 0.3, 0.3, 0.1]


@pytest.mark.parametrize("name", list(PLATEAU))
def test_reduce_lr_on_plateau_matches_torch(name):
    ours_opt, theirs_opt = _optimizers()
    ours = _sequence(ours_opt, dls.ReduceLROnPlateau(ours_opt, **PLATEAU[name]), metrics=METRICS)
    theirs = _sequence(theirs_opt, tls.ReduceLROnPlateau(theirs_opt, **PLATEAU[name]), metrics=METRICS)
    _assert_sequences_equal(ours, theirs)
    assert ours[-1][0] != ours[0][0]  # the metric sequence does trigger reductions


def test_reduce_lr_on_plateau_accepts_tensor_metric_and_round_trips():
    opt, _ = _optimizers()
    sched = dls.ReduceLROnPlateau(opt, patience=0)
    sched.step(dg.tensor(1.0))
    sched.step(dg.tensor(2.0))
    assert sched.get_last_lr() == pytest.approx([0.01, 0.002])
    state = sched.state_dict()
    fresh = dls.ReduceLROnPlateau(_optimizers()[0])
    fresh.load_state_dict(state)
    assert fresh.best == 1.0 and fresh.patience == 0 and fresh._is_better(0.5, 1.0)


@pytest.mark.parametrize("through_json", [False, True])
@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "CosineAnnealingLR", "ExponentialLR", "LambdaLR",
                                  "OneCycleLR", "SequentialLR", "ChainedScheduler", "CosineAnnealingWarmRestarts",
                                  "LinearLR", "CyclicLR", "CyclicLR-exp_range"])
def test_state_dict_resume_matches_uninterrupted(name, through_json):
    straight_opt, _ = _optimizers("SGD", momentum=0.9)
    straight = _sequence(straight_opt, SCHEDULERS[name](dls, straight_opt))

    opt, _ = _optimizers("SGD", momentum=0.9)
    sched = SCHEDULERS[name](dls, opt)
    first = _sequence(opt, sched, steps=12)
    opt_state, sched_state = opt.state_dict(), sched.state_dict()
    if through_json:  # what a JSON checkpoint does (no gradients here, so no array state)
        opt_state, sched_state = json.loads(json.dumps(opt_state)), json.loads(json.dumps(sched_state))
    fresh_opt, _ = _optimizers("SGD", momentum=0.9)
    fresh = SCHEDULERS[name](dls, fresh_opt)
    fresh_opt.load_state_dict(opt_state)
    fresh.load_state_dict(sched_state)
    rest = _sequence(fresh_opt, fresh, steps=STEPS - 12)
    _assert_sequences_equal(first + rest[1:], straight)


def test_initial_lr_and_last_epoch_resume_like_torch():
    ours_opt, theirs_opt = _optimizers()
    dls.StepLR(ours_opt, step_size=2)
    tls.StepLR(theirs_opt, step_size=2)
    assert [g["initial_lr"] for g in ours_opt.param_groups] == [g["initial_lr"] for g in theirs_opt.param_groups]
    with pytest.raises(KeyError, match="initial_lr"):
        dls.StepLR(_optimizers()[0], step_size=2, last_epoch=3)
    ours = dls.ExponentialLR(ours_opt, gamma=0.5, last_epoch=4)  # resuming must not decay one step ahead
    theirs = tls.ExponentialLR(theirs_opt, gamma=0.5, last_epoch=4)
    assert ours.get_last_lr() == theirs.get_last_lr()
    assert ours.last_epoch == theirs.last_epoch == 5


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR",
                                  "ConstantLR", "PolynomialLR"])
def test_step_with_epoch_uses_closed_form_like_torch(name):
    ours_opt, theirs_opt = _optimizers()
    ours, theirs = SCHEDULERS[name](dls, ours_opt), SCHEDULERS[name](tls, theirs_opt)
    for epoch in [3, 9, 14, 2, 25]:
        ours_opt.step()
        theirs_opt.step()
        with pytest.warns(UserWarning, match="epoch parameter"):
            ours.step(epoch)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs.step(epoch)
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12)


def test_warm_restarts_fractional_epochs_match_torch():
    ours_opt, theirs_opt = _optimizers()
    ours = dls.CosineAnnealingWarmRestarts(ours_opt, T_0=3, T_mult=2, eta_min=0.01)
    theirs = tls.CosineAnnealingWarmRestarts(theirs_opt, T_0=3, T_mult=2, eta_min=0.01)
    for epoch in [0.5, 1.25, 2.9, 3.0, 7.5, 8.99, 20.1, 4.0]:
        ours.step(epoch)
        theirs.step(epoch)
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12)
        assert (ours.T_cur, ours.T_i, ours.last_epoch) == pytest.approx((theirs.T_cur, theirs.T_i, theirs.last_epoch))
    with pytest.raises(ValueError, match="non-negative epoch"):
        ours.step(-1)


def test_warnings_like_torch():
    opt, _ = _optimizers()
    sched = dls.StepLR(opt, step_size=3)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()
    with pytest.warns(UserWarning, match="get_last_lr"):
        sched.get_lr()
    opt, _ = _optimizers()
    sched = dls.StepLR(opt, step_size=3)
    opt.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched.step()  # the right order: silent


def test_one_cycle_errors_and_adam_betas():
    opt, _ = _optimizers("Adam", betas=(0.9, 0.99))
    sched = dls.OneCycleLR(opt, max_lr=0.1, total_steps=4)
    assert opt.param_groups[0]["betas"] == (0.95, 0.99)
    for _ in range(4):  # last_epoch may reach total_steps, not pass it (torch's rule)
        opt.step()
        sched.step()
    opt.step()
    with pytest.raises(ValueError, match="Tried to step 5 times"):
        sched.step()
    good = _optimizers()[0]
    with pytest.raises(ValueError, match="total_steps OR"):
        dls.OneCycleLR(good, max_lr=0.1)
    with pytest.raises(ValueError, match="positive integer total_steps"):
        dls.OneCycleLR(good, max_lr=0.1, total_steps=0)
    with pytest.raises(ValueError, match="pct_start"):
        dls.OneCycleLR(good, max_lr=0.1, total_steps=10, pct_start=2)
    with pytest.raises(ValueError, match="anneal_strategy"):
        dls.OneCycleLR(good, max_lr=0.1, total_steps=10, anneal_strategy="exp")
    with pytest.raises(ValueError, match="max_lr must have the same length"):
        dls.OneCycleLR(good, max_lr=[0.1], total_steps=10)
    with pytest.raises(ValueError, match="momentum or beta1"):
        dls.OneCycleLR(optim.Adagrad([dg.zeros(2, requires_grad=True)]), max_lr=0.1, total_steps=10)


def test_bad_scheduler_arguments():
    opt, _ = _optimizers()
    with pytest.raises(TypeError, match="is not an Optimizer"):
        dls.StepLR(object(), step_size=2)
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        dls.ReduceLROnPlateau(opt, factor=1.5)
    with pytest.raises(ValueError, match="mode"):
        dls.ReduceLROnPlateau(opt, mode="median")
    with pytest.raises(ValueError, match="threshold mode"):
        dls.ReduceLROnPlateau(opt, threshold_mode="pct")
    with pytest.raises(ValueError, match="min_lrs"):
        dls.ReduceLROnPlateau(opt, min_lr=[0.1])
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas"):
        dls.LambdaLR(opt, [lambda e: 1.0])
    with pytest.raises(ValueError, match="Starting multiplicative factor"):
        dls.LinearLR(opt, start_factor=0.0)
    with pytest.raises(ValueError, match="Constant multiplicative factor"):
        dls.ConstantLR(opt, factor=2.0)
    with pytest.raises(ValueError, match="T_0"):
        dls.CosineAnnealingWarmRestarts(opt, T_0=0)
    with pytest.raises(ValueError, match="milestone"):
        dls.SequentialLR(opt, [dls.StepLR(opt, 2), dls.StepLR(opt, 3)], milestones=[])
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        dls.SequentialLR(opt, [dls.StepLR(opt, 2), dls.ReduceLROnPlateau(opt)], milestones=[3])
    with pytest.raises(ValueError, match="same optimizer"):
        dls.ChainedScheduler([dls.StepLR(opt, 2), dls.StepLR(_optimizers()[0], 2)])
    with pytest.raises(TypeError):
        dls.LRScheduler(opt)  # abstract: get_lr is required
    with pytest.raises(ValueError, match="mode is invalid and scale_fn is None"):
        dls.CyclicLR(opt, base_lr=0.01, max_lr=0.1, mode="sawtooth")
    with pytest.raises(ValueError, match="momentum or beta1"):
        dls.CyclicLR(optim.Adagrad([dg.zeros(2, requires_grad=True)]), base_lr=0.01, max_lr=0.1)
    with pytest.raises(ValueError, match="max_lr must have the same length"):
        dls.CyclicLR(opt, base_lr=0.01, max_lr=[0.1, 0.2, 0.3])


def test_cyclic_lr_saves_callable_scale_objects_like_torch():
    class Halving:
        def __init__(self):
            self.base = 0.5

        def __call__(self, x):
            return self.base**x

    ours_opt, theirs_opt = _optimizers("SGD", momentum=0.9)
    ours = dls.CyclicLR(ours_opt, 0.01, 0.1, step_size_up=2, scale_fn=Halving())
    theirs = tls.CyclicLR(theirs_opt, 0.01, 0.1, step_size_up=2, scale_fn=Halving())
    ours._scale_fn_custom.base = theirs._scale_fn_custom.base = 0.25
    assert ours.state_dict()["_scale_fn_custom"] == theirs.state_dict()["_scale_fn_custom"] == {"base": 0.25}
    fresh = dls.CyclicLR(_optimizers("SGD", momentum=0.9)[0], 0.01, 0.1, step_size_up=2, scale_fn=Halving())
    fresh.load_state_dict(ours.state_dict())
    assert fresh._scale_fn_custom.base == 0.25 and fresh.scale_mode == "cycle"
    with_lambda = dls.CyclicLR(ours_opt, 0.01, 0.1, scale_fn=lambda x: 1.0)
    assert with_lambda.state_dict()["_scale_fn_custom"] is None


def test_lambda_state_dict_keeps_callable_objects_state():
    class Warmup:
        def __init__(self):
            self.scale = 2.0

        def __call__(self, epoch):
            return self.scale * (epoch + 1)

    opt, _ = _optimizers()
    sched = dls.LambdaLR(opt, [Warmup(), lambda e: 1.0])
    sched.lr_lambdas[0].scale = 3.0
    state = sched.state_dict()
    assert state["lr_lambdas"] == [{"scale": 3.0}, None]
    fresh = dls.LambdaLR(_optimizers()[0], [Warmup(), lambda e: 1.0])
    fresh.load_state_dict(state)
    assert fresh.lr_lambdas[0].scale == 3.0 and math.isclose(fresh.base_lrs[0], 0.1)
    assert "lr_lambdas" in state  # loading leaves the caller's dict intact
