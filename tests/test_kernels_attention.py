"""The attention kernels (deepgrad.kernels.attention: batch slices, threads, in-place softmax) against the plain
formulas on whole arrays, in float64: output, probabilities and all four gradients, with masks, causality,
dropout, broadcast batch dims and fully masked rows. (Thread-count invariance is in test_attention.py.)"""

from __future__ import annotations

import numpy as np
import pytest

import deepgrad as dg
from deepgrad.kernels import attention as KA
from deepgrad.kernels import parallel


@pytest.fixture
def split_small(monkeypatch):
    """Two threads, and test-sized weights split across them, so the sliced path runs."""
    monkeypatch.setattr(parallel, "PARALLEL_MIN_ELEMENTS", 1)
    before = dg.get_num_threads()
    dg.set_num_threads(2)
    yield
    dg.set_num_threads(before)


CASES = {  # shapes of q, k, v, the mask kind and shape, causal, dropout p
    "plain": ((4, 2, 6, 5), (4, 2, 7, 5), (4, 2, 7, 3), None, None, False, 0.0),
    "causal": ((4, 2, 6, 5), (4, 2, 6, 5), (4, 2, 6, 3), None, None, True, 0.0),
    "bool-mask": ((4, 2, 6, 5), (4, 2, 7, 5), (4, 2, 7, 3), "bool", (4, 1, 6, 7), False, 0.0),
    "float-mask": ((4, 2, 6, 5), (4, 2, 7, 5), (4, 2, 7, 3), "float", (6, 7), False, 0.0),
    "dropout": ((4, 2, 6, 5), (4, 2, 7, 5), (4, 2, 7, 3), "float", (4, 2, 6, 7), False, 0.3),
    "broadcast-keys": ((4, 2, 6, 5), (1, 2, 7, 5), (1, 2, 7, 3), None, None, True, 0.0),
    "2-d": ((6, 5), (7, 5), (7, 3), "bool", (6, 7), False, 0.0),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_attention_kernels_equal_the_plain_formulas(split_small, case):
    qs, ks, vs, mask_kind, mask_shape, causal, p = case
    rng = np.random.default_rng(len(qs) + int(causal) + int(p * 10))
    q, k, v = (rng.standard_normal(s) for s in (qs, ks, vs))
    mask = None
    if mask_kind == "bool":
        mask = rng.random(mask_shape) > 0.3
        mask[..., 1, :] = False  # a fully masked row: zero weights, zero gradients
    elif mask_kind == "float":
        mask = rng.standard_normal(mask_shape)
    batch = np.broadcast_shapes(qs[:-2], ks[:-2], vs[:-2])
    draw = rng.random(batch + (qs[-2], ks[-2])) if p else None
    out, probs, keep = KA.attention_forward(q, k, v, mask, mask_kind, causal, 0.4, draw, p)
    r_out, r_probs, r_keep = KA.attention_forward_reference(q, k, v, mask, mask_kind, causal, 0.4, draw, p)
    tol = dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out, r_out, **tol)
    np.testing.assert_allclose(probs, r_probs, **tol)
    if mask_kind == "bool":
        assert not out[..., 1, :].any()
    if p:
        np.testing.assert_array_equal(keep, r_keep)
    g = rng.standard_normal(out.shape)
    float_mask = mask_kind == "float"
    grads = KA.attention_backward(g, q, k, v, probs, keep, 0.4, p, (True, True, True, float_mask),
                                  mask_shape if float_mask else None)
    r_grads = KA.attention_backward_reference(g, q, k, v, r_probs, r_keep, 0.4, p, mask_shape if float_mask else None)
    for name, got, want in zip(("q", "k", "v", "mask"), grads, r_grads):
        if want is None:
            assert got is None, name
        else:
            np.testing.assert_allclose(got, want, err_msg=name, **tol)
