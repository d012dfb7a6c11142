"""Small API contracts where deepgrad used to differ from torch 2.13: autograd.grad always returns a
tuple, backward(inputs=...), NumPy's ``axis=`` alias in reductions, and ``format`` of 0-d tensors."""

from __future__ import annotations

import numpy as np
import pytest

import deepgrad as dg

torch = pytest.importorskip("torch")

X = np.array([[1.0, 2.0, 3.0], [4.0, -5.0, 6.0]], dtype=np.float32)


def _leaves(lib):
    return lib.tensor(X, requires_grad=True), lib.tensor(X[0] * 0.5, requires_grad=True)


def test_grad_returns_a_tuple_for_a_single_input_like_torch():
    out = {}
    for lib in (torch, dg):
        x, _ = _leaves(lib)
        res = lib.autograd.grad((x ** 2).sum(), x)
        assert isinstance(res, tuple) and len(res) == 1
        out[lib.__name__] = res[0].numpy()
    np.testing.assert_array_equal(out["deepgrad"], out["torch"])  # grad(y, x)[0] is the whole gradient


def test_grad_with_several_outputs_grad_outputs_and_unused_inputs():
    res = {}
    for lib in (torch, dg):
        x, w = _leaves(lib)
        unused = lib.ones(2, requires_grad=True)
        y1, y2 = (x * w).sum(dim=1), (x.tanh() * 2).sum(dim=0)
        g1, g2 = lib.tensor([1.0, -2.0]), lib.tensor([0.5, 1.0, -1.0])
        gx, gw, gu = lib.autograd.grad([y1, y2], [x, w, unused], grad_outputs=[g1, g2], allow_unused=True,
                                       retain_graph=True)
        assert gu is None and x.grad is None and w.grad is None
        _, _, zu = lib.autograd.grad([y1, y2], [x, w, unused], grad_outputs=[g1, g2], materialize_grads=True)
        res[lib.__name__] = (gx.numpy(), gw.numpy(), np.asarray(zu.numpy()))
        with pytest.raises(RuntimeError):
            x2, _ = _leaves(lib)
            lib.autograd.grad((x2 * 2).sum(), [x2, lib.ones(1, requires_grad=True)])
    for a, b in zip(res["deepgrad"], res["torch"]):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_backward_with_inputs_fills_only_those_grads():
    res = {}
    for lib in (torch, dg):
        x, w = _leaves(lib)
        h = x * w
        h.retain_grad() if lib is torch else None
        (h.exp().sum()).backward(inputs=[w])
        assert x.grad is None
        res[lib.__name__] = w.grad.numpy()
    np.testing.assert_allclose(res["deepgrad"], res["torch"], rtol=1e-5)


@pytest.mark.parametrize("name", ["sum", "mean", "std", "var", "amax", "amin", "logsumexp", "argmax", "all", "any"])
def test_numpy_axis_alias_in_reductions(name):
    d, t = dg.tensor(X), torch.tensor(X)
    if name in ("all", "any"):
        d, t = d > 0, t > 0
    for axis in (0, 1, (0, 1)) if name not in ("argmax", "logsumexp") else (0, 1):
        np.testing.assert_allclose(getattr(d, name)(axis=axis).numpy(), getattr(t, name)(axis=axis).numpy(), rtol=1e-6)
    with pytest.raises(TypeError):
        getattr(d, name)(0, axis=1)


def test_max_and_min_accept_axis_and_return_values_and_indices():
    for name in ("max", "min"):
        dv, di = getattr(dg.tensor(X), name)(axis=1)
        tv, ti = getattr(torch.tensor(X), name)(axis=1)
        np.testing.assert_array_equal(dv.numpy(), tv.numpy())
        np.testing.assert_array_equal(di.numpy(), ti.numpy())


def test_format_of_tensors_like_torch():
    for spec in ("+.2f", ".3e", "", "8.1f"):
        assert format(dg.tensor(-1.23456), spec) == format(torch.tensor(-1.23456), spec)
    assert f"{dg.tensor(3):04d}" == f"{torch.tensor(3):04d}"
    with pytest.raises(TypeError):
        format(dg.tensor([1.0, 2.0]), ".2f")
    with pytest.raises(TypeError):
        format(torch.tensor([1.0, 2.0]), ".2f")
