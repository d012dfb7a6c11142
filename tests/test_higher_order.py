"""Higher-order gradients (``create_graph=True``): second derivatives of each covered op match torch
2.13's double backward, pass a float64 gradgradcheck with random upstream gradients, and an op without a
differentiable backward raises an error naming it. Add an op to CASES when it gets ``backward_graph``."""

from __future__ import annotations

import numpy as np
import pytest
from core_parity import double_backward

import deepgrad as dg
from deepgrad.autograd import functional as AF
from deepgrad.autograd import gradgradcheck

torch = pytest.importorskip("torch")

# name -> (fn(lib, *tensors), shapes); inputs are float64 in (0.5, 1.5) and (-1.5, -0.5) alternately
CASES = {
    "mul_div": (lambda L, a, b: a * b / (b * b + 1), [(2, 3), (3,)]),
    "add_sub_broadcast": (lambda L, a, b: ((a + b) * (a - b)).exp(), [(2, 3), (1, 3)]),
    "pow_tensor": (lambda L, a, b: a.abs() ** b, [(2, 3), (2, 3)]),
    "pow_scalar_rpow": (lambda L, a: a ** 3 + 2.0 ** a + 1.5 / a - (3 - a) * 0.5, [(2, 3)]),
    "unary": (lambda L, a: a.exp() * a.tanh() + a.sin() * a.cos() + a.abs().log() + a.abs().sqrt() + a.abs().log1p(),
              [(2, 3)]),
    "reductions": (lambda L, a: (a * a).sum(1) * a.mean(0).sum() + a.sum(), [(2, 3)]),
    "softmax": (lambda L, a: a.softmax(1) * a.log_softmax(0), [(2, 3)]),
    "shapes": (lambda L, a: (a.reshape(3, 2).permute(1, 0).expand(2, 2, 3) * a).sum(0) ** 2, [(2, 3)]),
    "clamp_where": (lambda L, a: L.where(a > 0.8, a * a, a.clamp(-1.0, 1.0) ** 3), [(2, 3)]),
    "cast": (lambda L, a: a.float().double() ** 2, [(2, 3)]),
}


def _inputs(lib, shapes, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for k, s in enumerate(shapes):
        v = rng.uniform(0.5, 1.5, s) * (1 if k % 2 == 0 else -1)
        out.append(lib.tensor(v, dtype=lib.float64, requires_grad=True))
    return out


def _double(lib, name):
    fn, shapes = CASES[name]
    return double_backward(lib, fn, _inputs(lib, shapes))


@pytest.mark.parametrize("name", list(CASES))
def test_second_derivatives_match_torch(name):
    (tg, ts), (dg1, ds) = _double(torch, name), _double(dg, name)
    for a, b in zip(dg1, tg):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    for a, b in zip(ds, ts):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", [n for n in CASES if n != "cast"])  # float32 in the middle defeats finite differences
def test_gradgradcheck(name):
    fn, shapes = CASES[name]
    assert gradgradcheck(lambda *xs: fn(dg, *xs), _inputs(dg, shapes, seed=3))


def test_hessian_vector_product_against_finite_differences_of_the_gradient():
    rng = np.random.default_rng(0)
    x0, v = rng.standard_normal(5), rng.standard_normal(5)

    def f(t):
        return (t.tanh() * t.exp() + (t * t).sum() * t).sum()

    _, hv = AF.hvp(f, dg.tensor(x0, dtype=dg.float64), dg.tensor(v, dtype=dg.float64))

    def gradient(x):
        t = dg.tensor(x, dtype=dg.float64, requires_grad=True)
        f(t).backward()
        return t.grad.numpy()

    eps = 1e-6
    fd = (gradient(x0 + eps * v) - gradient(x0 - eps * v)) / (2 * eps)
    np.testing.assert_allclose(hv.numpy(), fd, rtol=1e-6, atol=1e-8)


def test_functional_api_matches_torch():
    x = np.array([0.3, -0.7, 1.1])
    v = np.array([1.0, 2.0, -1.0])

    def f(L):
        return lambda t: (t.exp() * t.sin()).sum() + (t ** 3).sum()

    def g(L):
        return lambda t: t.tanh() * t.exp()

    for name, args in [("hessian", (f, x)), ("jacobian", (g, x)), ("hvp", (f, x, v)), ("vhp", (f, x, v)),
                       ("jvp", (g, x, v)), ("vjp", (g, x, v))]:
        fn = args[0]
        rest = args[1:]
        t_out = getattr(torch.autograd.functional, name)(fn(torch), *[torch.tensor(a) for a in rest])
        d_out = getattr(AF, name)(fn(dg), *[dg.tensor(a, dtype=dg.float64) for a in rest])
        t_flat = t_out if isinstance(t_out, tuple) else (t_out,)
        d_flat = d_out if isinstance(d_out, tuple) else (d_out,)
        for a, b in zip(d_flat, t_flat):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, err_msg=name)


def test_backward_create_graph_leaves_grads_with_a_graph():
    for lib in (torch, dg):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        (x ** 3).sum().backward(create_graph=True)
        assert x.grad.requires_grad
        x.grad.sum().backward()  # d/dx of 3x^2 accumulates into x.grad: 3x^2 + 6x
    # (torch's value is checked by the same program: both leave x.grad = 3x^2 + 6x)
    np.testing.assert_allclose(x.grad.detach().numpy(), [9.0, 24.0])


def test_an_op_without_a_differentiable_backward_raises_naming_it():
    # the determinant has no backward_graph (tests/test_higher_order_ops.py checks another such op, cumprod)
    x = dg.tensor([[2.0, 1.0], [0.5, 3.0]], dtype=dg.float64, requires_grad=True)
    y = dg.linalg.det(x)
    assert not hasattr(type(y.grad_fn), "backward_graph")
    with pytest.raises(RuntimeError, match=r"derivative for .*Det.*create_graph=True"):
        dg.autograd.grad(y, x, create_graph=True)


def test_first_order_results_do_not_change_with_create_graph():
    fn, shapes = CASES["unary"]
    xs = _inputs(dg, shapes)
    plain = dg.autograd.grad(fn(dg, *xs).sum(), xs)
    recorded = dg.autograd.grad(fn(dg, *xs).sum(), xs, create_graph=True)
    for a, b in zip(plain, recorded):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12)
