"""Gradients at the kinks match torch 2.13: the zero vector's norm, |x| and relu at 0, ties of max/min,
sqrt at 0, clamp at its bounds, and zeros (never 0 * inf = nan) where a where-style backward blocks an
infinite upstream gradient."""

from __future__ import annotations

import numpy as np
import pytest

import deepgrad as dg
import deepgrad.nn.functional as DF

torch = pytest.importorskip("torch")
TF = torch.nn.functional

VALUES = [-2.0, -1.0, 0.0, 0.0, 1.0, 1.0, 2.0]  # zeros and ties on purpose
CASES = {
    "abs": lambda L, x: x.abs(),
    "relu": lambda L, x: x.relu(),
    "relu_big": lambda L, x: x.repeat(2000).reshape(100, -1).relu(),  # the threaded fast path
    "sqrt_of_square": lambda L, x: (x * x).sqrt(),
    "sqrt_after_clamp": lambda L, x: x.clamp(min=0).sqrt(),  # inf upstream where clamp blocks: 0, not nan
    "sqrt_after_relu": lambda L, x: x.relu().sqrt(),
    "sqrt_after_relu_big": lambda L, x: x.repeat(2000).reshape(100, -1).relu().sqrt(),
    "clamp_bounds": lambda L, x: x.clamp(-1, 1),
    "clamp_tensor_bounds": lambda L, x: x.clamp(L.full((7,), -1.0), L.full((7,), 1.0)),
    "max_all": lambda L, x: x.max(),
    "min_all": lambda L, x: x.min(),
    "amax": lambda L, x: x.amax(),
    "max_dim": lambda L, x: x.reshape(1, 7).max(dim=1)[0],
    "maximum_ties": lambda L, x: L.maximum(x, x[[6, 5, 4, 3, 2, 1, 0]]),
    "minimum_after_inf": lambda L, x: L.minimum(x, L.zeros(7)).sqrt(),
    "norm_of_zero_vector": lambda L, x: (x * 0).norm(),
    "norm_rows_with_a_zero_row": lambda L, x: L.stack([x * 0, x]).norm(dim=1),
    "norm_p1": lambda L, x: x.norm(p=1),
    "norm_inf_ties": lambda L, x: x.norm(p=float("inf")),
    "norm_p3": lambda L, x: x.norm(p=3),
    "pow_zero_base": lambda L, x: (x * 0) ** 2,
    "pow_half_at_zero": lambda L, x: (x * 0) ** 0.5,
    "zero_pow_zero": lambda L, x: (x * 0) ** (x * 0),
    "leaky_relu_at_zero": lambda L, x: (DF if L is dg else TF).leaky_relu(x, 0.1),
    "elu_at_zero": lambda L, x: (DF if L is dg else TF).elu(x),
    "sign": lambda L, x: x.sign(),
    "std_of_constant": lambda L, x: (x * 0).std(),
    "where_blocks_inf": lambda L, x: L.where(x > 0, x, x * 0).sqrt(),
    "masked_fill": lambda L, x: x.masked_fill(x == 0, 1.0),
    "log_at_zero": lambda L, x: (x * 0).log(),
    "softplus_large": lambda L, x: (DF if L is dg else TF).softplus(x * 100),
}


def _run(L, fn):
    x = L.tensor(VALUES, requires_grad=True)
    y = fn(L, x)
    g = np.random.default_rng(0).standard_normal(tuple(y.shape)).astype(np.float32)
    y.backward(L.tensor(g))
    return y.detach().numpy(), x.grad.numpy()


@pytest.mark.parametrize("name", list(CASES))
def test_gradient_at_the_kinks_matches_torch(name):
    with np.errstate(all="ignore"):
        ty, tg = _run(torch, CASES[name])
        dy, dgr = _run(dg, CASES[name])
    np.testing.assert_allclose(dy, ty, rtol=1e-6, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(dgr, tg, rtol=1e-4, atol=1e-6, equal_nan=True)  # float32 sums of 2000 terms
