"""The backprop demo of the guide: its pieces, its claims, and that it catches a broken engine."""

import math

import numpy as np
import pytest

import deepgrad as dg
from deepgrad.guide import backprop_demo as demo
from deepgrad.ops import activation, reduce


def quiet(*args):
    pass


def test_split_is_seeded_standardised_and_complete():
    (xtr, ytr), (xte, yte) = demo.load_digits_split(seed=3)
    assert xtr.shape == (1438, 64) and xte.shape == (359, 64)
    assert xtr.dtype == dg.float32 and ytr.dtype == dg.int64
    from sklearn.datasets import load_digits

    # train and test together are the whole data set: same label counts, nothing lost or repeated
    counts = np.bincount(np.concatenate([ytr.numpy(), yte.numpy()]), minlength=10)
    np.testing.assert_array_equal(counts, np.bincount(load_digits().target, minlength=10))
    # standardised with the train statistics: train pixels have mean 0 and std 1 (or 0 for blank pixels)
    np.testing.assert_allclose(xtr.numpy().mean(axis=0), 0, atol=1e-5)
    stds = xtr.numpy().std(axis=0)
    assert np.all((np.abs(stds - 1) < 1e-4) | (stds < 1e-6))
    (xtr2, _), _ = demo.load_digits_split(seed=3)
    (xtr3, _), _ = demo.load_digits_split(seed=4)
    assert np.array_equal(xtr.numpy(), xtr2.numpy()) and not np.array_equal(xtr.numpy(), xtr3.numpy())


def test_nll_loss_matches_torch_cross_entropy():
    import torch

    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 10)).astype(np.float32) * 3
    y = rng.integers(0, 10, 6)
    x = dg.tensor(logits, requires_grad=True)
    loss = demo.nll_loss(x, dg.tensor(y))
    loss.backward()
    xt = torch.tensor(logits, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(xt, torch.tensor(y))
    ref.backward()
    np.testing.assert_allclose(loss.item(), ref.item(), rtol=1e-5)
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_grad_check_agrees_on_a_correct_engine():
    dg.manual_seed(1)
    params = demo.init_params(5, 7, 3)
    x, y = dg.randn(4, 5), dg.tensor([0, 2, 1, 2])
    checks = demo.directional_grad_check(params, x, y)
    assert len(checks) == 4
    for norm, numeric, err in checks:
        assert norm > 0 and err < 1e-6, (norm, numeric)


def test_sgd_step_moves_against_the_gradient_and_clears_it():
    p = dg.tensor([1.0, -2.0], requires_grad=True)
    (p * p).sum().backward()  # grad = 2p
    demo.sgd_step([p], lr=0.25)
    np.testing.assert_allclose(p.detach().numpy(), [0.5, -1.0])
    assert p.grad is None and p.is_leaf and p.requires_grad


def test_quick_run_holds_every_claim_and_is_deterministic():
    a = demo.run(quick=True, seed=2, out=quiet)
    b = demo.run(quick=True, seed=2, out=quiet)
    assert a.passed, [(c.text, c.measured) for c in a.claims if not c.ok]
    assert len(a.epoch_losses) == demo.QUICK_EPOCHS
    assert a.epoch_losses == b.epoch_losses and a.test_accuracy == b.test_accuracy
    assert all(later < earlier for earlier, later in zip(a.epoch_losses, a.epoch_losses[1:]))
    assert a.test_accuracy >= demo.MIN_ACCURACY_QUICK and a.grad_rel_err < demo.MAX_GRAD_REL_ERR


def test_initial_loss_is_near_ln10():
    result = demo.run(quick=True, epochs=1, out=quiet)
    initial = float(result.claims[0].measured.split()[0])
    assert abs(initial - math.log(10)) < 0.2


@pytest.mark.parametrize(
    "cls, broken_backward",
    [
        (activation.Relu, lambda self, g: g),  # forgets the ReLU mask: W1's gradient is wrong
        (reduce.LogSoftmax, lambda self, g: g),  # drops the softmax term: training diverges
    ],
    ids=["relu-without-mask", "log-softmax-missing-term"],
)
def test_a_broken_backward_fails_the_claims(monkeypatch, cls, broken_backward):
    monkeypatch.setattr(cls, "backward", broken_backward)
    result = demo.run(quick=True, seed=0, out=quiet)
    assert not result.passed
    assert result.grad_rel_err > 1e3 * demo.MAX_GRAD_REL_ERR
