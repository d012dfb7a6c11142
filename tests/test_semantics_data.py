"""``Tensor.data`` is torch's: a tensor sharing the parameter's memory, cut from the graph, with its own
version counter — so the idioms of real training code write into the parameter. Each idiom runs on
torch and on deepgrad from the same weights and must give the same numbers (or the same error)."""

from __future__ import annotations

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import nn

torch = pytest.importorskip("torch")


def _pair_linear(seed=0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    dm, tm = nn.Linear(4, 3), torch.nn.Linear(4, 3)
    with dg.no_grad():
        dm.weight.copy_(dg.tensor(w))
        dm.bias.copy_(dg.tensor(b))
    with torch.no_grad():
        tm.weight.copy_(torch.tensor(w))
        tm.bias.copy_(torch.tensor(b))
    return dm, tm


def _same(a, b, tol=1e-6):
    np.testing.assert_allclose(np.asarray(a.detach().numpy()), b.detach().numpy(), rtol=tol, atol=tol)


def test_data_is_a_detached_tensor_sharing_memory():
    p = nn.Parameter(dg.ones(3))
    d = p.data
    assert isinstance(d, dg.Tensor) and not d.requires_grad and d.grad_fn is None
    d[0] = 5.0
    assert float(p[0]) == 5.0
    assert p._version == 0  # .data has a counter of its own, as in torch
    assert isinstance(p.array, np.ndarray) and np.shares_memory(p.array, d.array)


def test_dcgan_style_init_through_data():
    for m_dg in (nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)):
        before = id(m_dg.weight)
        nn.init.normal_(m_dg.weight.data, 1.0, 0.02)
        m_dg.bias.data.fill_(0)
        assert id(m_dg.weight) == before
        w = m_dg.weight.detach().numpy()
        assert abs(float(w.mean()) - 1.0) < 0.05 and 0.005 < float(w.std()) < 0.05
        assert np.all(m_dg.bias.detach().numpy() == 0)


def test_gradient_clipping_and_manual_sgd_through_data():
    dm, tm = _pair_linear()
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32) * 10
    for m, lib in ((dm, dg), (tm, torch)):
        for _ in range(3):
            m.zero_grad()
            m(lib.tensor(x)).pow(2).sum().backward()
            for p in m.parameters():
                p.grad.data.clamp_(-1.0, 1.0)
                p.data.add_(p.grad.data, alpha=-0.1)
    _same(dm.weight, tm.weight)
    _same(dm.bias, tm.bias)


def test_ema_of_weights_through_data():
    dm, tm = _pair_linear(0)
    de, te = _pair_linear(1)
    x = np.random.default_rng(2).standard_normal((6, 4)).astype(np.float32)
    for m, ema, lib, opt in ((dm, de, dg, dg.optim.SGD(dm.parameters(), lr=0.05)),
                             (tm, te, torch, torch.optim.SGD(tm.parameters(), lr=0.05))):
        for _ in range(4):
            opt.zero_grad()
            m(lib.tensor(x)).tanh().sum().backward()
            opt.step()
            for pe, p in zip(ema.parameters(), m.parameters()):
                pe.data.mul_(0.9).add_(p.data, alpha=0.1)
    _same(de.weight, te.weight)
    _same(de.bias, te.bias)


def test_copy_into_data_and_replacing_data():
    dm, tm = _pair_linear()
    src = np.full((3, 4), 0.25, dtype=np.float32)
    dm.weight.data.copy_(dg.tensor(src))
    tm.weight.data.copy_(torch.tensor(src))
    _same(dm.weight, tm.weight)
    new = np.arange(15, dtype=np.float32).reshape(3, 5) / 10
    dm.weight.data = dg.tensor(new)  # a new shape is allowed, as in torch
    tm.weight.data = torch.tensor(new)
    assert tuple(dm.weight.shape) == tuple(tm.weight.shape) == (3, 5)
    x = np.ones((2, 5), dtype=np.float32)
    yd = dg.nn.functional.linear(dg.tensor(x), dm.weight, dm.bias)
    yt = torch.nn.functional.linear(torch.tensor(x), tm.weight, tm.bias)
    _same(yd, yt)
    yd.sum().backward()
    yt.sum().backward()
    _same(dm.weight.grad, tm.weight.grad)  # training continues on the new values


def test_setting_data_checks_like_torch():
    for lib in (torch, dg):
        p = lib.ones(3, requires_grad=True)
        with pytest.raises(TypeError):
            p.data = np.zeros(3)
        with pytest.raises(RuntimeError):
            p.data = lib.tensor([1, 2, 3])  # an integer tensor cannot carry a gradient


def test_raw_array_has_its_own_clear_name():
    t = dg.tensor([1.0, 2.0])
    assert t.array is t.numpy()
    assert t.data is not t and t.data.array is t.array
