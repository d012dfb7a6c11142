"""Embedding and F.embedding against torch: lookups, gradients with repeated indices,
padding_idx, max_norm, scale_grad_by_freq, init, and bad indices."""

import numpy as np
import pytest

import deepgrad as dg
from deepgrad.autograd import gradcheck
from deepgrad.nn.embedding import Embedding
from deepgrad.ops.embedding import embedding

torch = pytest.importorskip("torch")

IDX = np.array([[1, 3, 3, 0], [2, 1, 9, 3]])


@pytest.mark.parametrize("padding_idx", [None, 3, -7])
@pytest.mark.parametrize("scale_grad_by_freq", [False, True])
def test_embedding_parity(padding_idx, scale_grad_by_freq):
    dg.manual_seed(0)
    m = Embedding(10, 4, padding_idx=padding_idx, scale_grad_by_freq=scale_grad_by_freq)
    tm = torch.nn.Embedding(10, 4, padding_idx=padding_idx, scale_grad_by_freq=scale_grad_by_freq)
    tm.load_state_dict({"weight": torch.tensor(m.weight.array.copy())})
    if padding_idx is not None:
        assert np.all(m.weight.array[padding_idx] == 0) and m.padding_idx == tm.padding_idx
    od, ot = m(dg.tensor(IDX)), tm(torch.tensor(IDX))
    np.testing.assert_array_equal(od.array, ot.detach().numpy())
    g = np.random.default_rng(1).standard_normal(ot.shape).astype(np.float32)
    od.backward(dg.tensor(g))
    ot.backward(torch.tensor(g))
    np.testing.assert_allclose(m.weight.grad.array, tm.weight.grad.numpy(), rtol=1e-5, atol=1e-6)
    assert str(m) == str(tm)


def test_max_norm_renormalises_like_torch():
    w = np.random.default_rng(2).standard_normal((10, 4)).astype(np.float32) * 2
    for norm_type in (2.0, 1.0):
        m = Embedding(10, 4, max_norm=1.5, norm_type=norm_type, _weight=dg.tensor(w.copy()))
        tm = torch.nn.Embedding(10, 4, max_norm=1.5, norm_type=norm_type, _weight=torch.tensor(w.copy()))
        od, ot = m(dg.tensor(IDX)), tm(torch.tensor(IDX))
        np.testing.assert_allclose(od.array, ot.detach().numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(m.weight.array, tm.weight.detach().numpy(), rtol=1e-6, atol=1e-6)


def test_init_from_pretrained_and_gradcheck():
    dg.manual_seed(4)
    w = Embedding(2000, 8).weight.array
    assert abs(w.mean()) < 0.02 and abs(w.std() - 1) < 0.02  # N(0, 1), as torch
    pre = dg.randn(5, 3)
    frozen = Embedding.from_pretrained(pre)
    assert not frozen.weight.requires_grad and frozen(dg.tensor([4])).shape == (1, 3)
    weight = dg.randn(6, 3, dtype=dg.float64, requires_grad=True)
    idx = dg.tensor([[0, 5, 5], [2, 0, 1]])
    assert gradcheck(lambda w: embedding(idx, w), [weight])  # repeated indices accumulate


def test_bad_indices():
    w = dg.randn(10, 3)
    with pytest.raises(IndexError, match=r"index 10 is out of range.*\(10, 3\)"):
        embedding(dg.tensor([1, 10]), w)
    with pytest.raises(IndexError, match="index -1"):
        embedding(dg.tensor([-1, 2]), w)
    with pytest.raises(RuntimeError, match="integer"):
        embedding(dg.tensor([1.0]), w)
    with pytest.raises(ValueError, match="padding_idx"):
        Embedding(10, 3, padding_idx=10)
