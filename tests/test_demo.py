"""The four steps of backpropagation in guide topic 9 (deepgrad/guide/q09_backprop.py): its pieces, its
claims, and that those claims catch a broken engine."""

import math

import numpy as np
import pytest

import deepgrad as dg
from deepgrad.guide import q09_backprop as q09
from deepgrad.guide.core import Context, TopicResult
from deepgrad.ops import activation, reduce


def four_steps_claims(seed=0):
    result = TopicResult("backprop", 9, q09.QUESTION, q09.ANSWER)
    dg.manual_seed(seed)
    q09.four_steps(Context(result, quick=True, seed=seed, log=lambda *a: None))
    return result


def test_nll_loss_matches_torch_cross_entropy():
    import torch

    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 10)).astype(np.float32) * 3
    y = rng.integers(0, 10, 6)
    x = dg.tensor(logits, requires_grad=True)
    loss = q09.nll_loss(x, dg.tensor(y))
    loss.backward()
    xt = torch.tensor(logits, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(xt, torch.tensor(y))
    ref.backward()
    np.testing.assert_allclose(loss.item(), ref.item(), rtol=1e-5)
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_initial_loss_is_near_ln10():
    dg.manual_seed(3)
    params = q09.init_params(64, q09.HIDDEN, 10)
    x, y = dg.randn(256, 64), dg.randint(0, 10, (256,))
    assert abs(q09.nll_loss(q09.forward(params, x), y).item() - math.log(10)) < 0.2


def test_grad_check_agrees_on_a_correct_engine():
    dg.manual_seed(1)
    params = q09.init_params(5, 7, 3)
    x, y = dg.randn(4, 5), dg.tensor([0, 2, 1, 2])
    checks = q09.directional_grad_check(params, x, y)
    assert len(checks) == 4
    for norm, numeric, err in checks:
        assert norm > 0 and err < 1e-6, (norm, numeric)


def test_sgd_step_moves_against_the_gradient_and_clears_it():
    p = dg.tensor([1.0, -2.0], requires_grad=True)
    (p * p).sum().backward()  # grad = 2p
    q09.sgd_step([p], lr=0.25)
    np.testing.assert_allclose(p.detach().numpy(), [0.5, -1.0])
    assert p.grad is None and p.is_leaf and p.requires_grad


def test_four_steps_hold_their_claims_and_are_deterministic():
    a, b = four_steps_claims(seed=2), four_steps_claims(seed=2)
    assert len(a.claims) == 2 and all(c.passed for c in a.claims), [(c.text, c.measured) for c in a.claims]
    assert [c.measured for c in a.claims] == [c.measured for c in b.claims]
    assert len(a.tables) == 1 and [row[0] for row in a.tables[0].rows] == ["W1", "b1", "W2", "b2"]


@pytest.mark.parametrize(
    "cls, broken_backward",
    [
        (activation.Relu, lambda self, g: g),  # forgets the ReLU mask: W1's gradient is wrong
        (reduce.LogSoftmax, lambda self, g: g),  # drops the softmax term: training goes nowhere
    ],
    ids=["relu-without-mask", "log-softmax-missing-term"],
)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # a broken engine may overflow while it trains
def test_a_broken_backward_fails_the_gradient_claim(monkeypatch, cls, broken_backward):
    monkeypatch.setattr(cls, "backward", broken_backward)
    result = four_steps_claims(seed=0)
    grad_claim = result.claims[0]
    assert not grad_claim.passed
    assert float(grad_claim.measured.split()[-1]) > 1e-3  # "max relative error X"
