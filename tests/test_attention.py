"""The fused scaled dot-product attention op: parity with torch 2.13 (forward and every gradient, each mask
kind, causal, scale, grouped-query heads, broadcasting), float64 gradient checks with masks and dropout,
fully masked rows, dropout statistics, what the node keeps for backward, and torch's errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from core_parity import check, devices, randn

import deepgrad as dg
import deepgrad.nn.functional as F
from deepgrad.autograd import gradcheck


def _bool(shape, seed, p=0.35):
    return np.random.default_rng(seed).random(shape) > p


CASES = {
    "plain": dict(shapes=((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7))),
    "causal L < S": dict(shapes=((2, 2, 4, 5), (2, 2, 6, 5), (2, 2, 6, 3)), is_causal=True),
    "causal L > S": dict(shapes=((1, 2, 6, 4), (1, 2, 3, 4), (1, 2, 3, 4)), is_causal=True),
    "bool mask (L, S)": dict(shapes=((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 5)), mask=("bool", (4, 6))),
    "bool mask per batch": dict(shapes=((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 5)), mask=("bool", (2, 1, 4, 6))),
    "float mask (H, L, S)": dict(shapes=((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 5)), mask=("float", (3, 4, 6))),
    "scale": dict(shapes=((3, 4, 5), (3, 6, 5), (3, 6, 2)), scale=0.7),
    "2-D inputs": dict(shapes=((4, 5), (6, 5), (6, 3))),
    "key batch broadcast": dict(shapes=((2, 3, 4, 5), (1, 3, 6, 5), (1, 3, 6, 5))),
    "grouped-query heads": dict(shapes=((2, 6, 4, 5), (2, 2, 6, 5), (2, 2, 6, 5)), enable_gqa=True,
                                mask=("float", (6, 4, 6))),
}


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("name", list(CASES))
def test_matches_torch_forward_and_gradients(name, device):
    case = CASES[name]
    arrays = [randn(s, seed=i) for i, s in enumerate(case["shapes"])]
    kind, mshape = case.get("mask", (None, None))
    if kind == "bool":
        arrays.append(_bool(mshape, 7))
    elif kind == "float":
        arrays.append(randn(mshape, seed=7))
    kw = {k: case[k] for k in ("is_causal", "scale", "enable_gqa") if k in case}
    check(lambda q, k, v, *m: F.scaled_dot_product_attention(q, k, v, *m, **kw),
          lambda q, k, v, *m: TF.scaled_dot_product_attention(q, k, v, *m, **kw), *arrays, device=device)


def test_gradcheck_float64_with_masks():
    rng = np.random.default_rng(0)
    q, k, v = (dg.tensor(rng.standard_normal(s), requires_grad=True) for s in ((1, 2, 3, 4), (1, 2, 5, 4),
                                                                                   (1, 2, 5, 3)))
    keep = dg.tensor(_bool((1, 2, 3, 5), 1))
    bias = rng.standard_normal((2, 3, 5))
    bias[0, 1, 2] = -np.inf  # an -inf inside a float mask: that weight is 0, its gradient 0
    bias = dg.tensor(bias, requires_grad=True)
    assert gradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, keep), [q, k, v])
    assert gradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=True, scale=0.3), [q, k, v])
    assert gradcheck(lambda a, b, c, m: F.scaled_dot_product_attention(a, b, c, m), [q, k, v, bias])
    F.scaled_dot_product_attention(q, k, v, bias).sum().backward()
    assert np.isfinite(bias.grad.numpy()).all() and bias.grad.numpy()[0, 1, 2] == 0


def test_gradcheck_float64_with_dropout_and_grouped_heads():
    rng = np.random.default_rng(1)
    q = dg.tensor(rng.standard_normal((2, 4, 3, 2)), requires_grad=True)
    k, v = (dg.tensor(rng.standard_normal((2, 2, 4, 2)), requires_grad=True) for _ in range(2))

    def attend(a, b, c):
        dg.manual_seed(3)  # the same dropout draw on every evaluation
        return F.scaled_dot_product_attention(a, b, c, dropout_p=0.4, enable_gqa=True)

    assert gradcheck(attend, [q, k, v])


def test_fully_masked_rows_give_zero_output_and_gradient_like_torch():
    q, k, v = randn((2, 2, 3, 4), 0), randn((2, 2, 5, 4), 1), randn((2, 2, 5, 4), 2)
    mask = _bool((2, 1, 3, 5), 3)
    mask[0, 0, 1] = False  # query 1 of batch 0 may attend to nothing
    float_mask = np.where(mask, 0.0, -np.inf).astype(np.float32)
    for m in (mask, float_mask):
        out_d, _ = check(F.scaled_dot_product_attention, TF.scaled_dot_product_attention, q, k, v, m,
                         requires_grad=[True, True, True, False])
        assert not out_d.detach().numpy()[0, :, 1].any()


def test_dropout_statistics_and_extremes():
    dg.manual_seed(0)
    n, s, p = 256, 16, 0.3
    q, k = dg.zeros(n, 4, 1, 8), dg.zeros(n, 4, s, 8)  # equal scores: every weight is 1/s
    v = dg.eye(s).reshape(1, 1, s, s).expand(n, 4, s, s)  # output row == the dropped weights themselves
    w = F.scaled_dot_product_attention(q, k, v, dropout_p=p).numpy()
    kept = w != 0
    assert abs(1 - kept.mean() - p) < 0.01  # 16384 draws: the dropped fraction's std is ~0.004
    np.testing.assert_allclose(w[kept], (1 / s) / (1 - p), rtol=1e-6)  # survivors rescaled by 1 / (1 - p)
    assert abs(w.sum(-1).mean() - 1) < 0.01  # the expected row sum stays 1
    assert not F.scaled_dot_product_attention(q, k, v, dropout_p=1.0).numpy().any()
    a, b = dg.randn(2, 3, 4), dg.randn(2, 5, 4)
    np.testing.assert_array_equal(F.scaled_dot_product_attention(a, b, b, dropout_p=0.0).numpy(),
                                  F.scaled_dot_product_attention(a, b, b).numpy())


def test_the_node_keeps_the_probabilities_and_a_byte_mask_only():
    """Save only what backward needs: one (..., L, S) float array (and, with dropout, a bool one)."""
    q = dg.randn(2, 3, 8, 4, requires_grad=True)
    k, v = dg.randn(2, 3, 10, 4), dg.randn(2, 3, 10, 4)
    for p, expected in ((0.0, ["float32"]), (0.5, ["bool", "float32"])):
        node = F.scaled_dot_product_attention(q, k, v, dg.tensor(_bool((8, 10), 0)), dropout_p=p).grad_fn
        big = sorted(str(a.dtype) for a in vars(node).values()
                     if isinstance(a, np.ndarray) and a.shape[-2:] == (8, 10) and a.ndim == 4)
        assert big == expected
        assert node.probs.shape == (2, 3, 8, 10)


def test_empty_sequences():
    q, k = dg.randn(2, 3, 4), dg.randn(2, 0, 4)
    assert F.scaled_dot_product_attention(q, k, k).shape == (2, 3, 4)
    assert not F.scaled_dot_product_attention(q, k, k).numpy().any()  # torch: zeros
    assert F.scaled_dot_product_attention(dg.randn(2, 0, 4), q, q).shape == (2, 0, 4)


@pytest.mark.parametrize("args, kwargs, message", [
    (((4,), (4,), (4,)), {}, "at least 2 dimensional"),
    (((3, 4), (5, 3), (5, 4)), {}, "same embedding size"),
    (((3, 4), (5, 4), (6, 4)), {}, "same sequence length"),
    (((2, 3, 4), (3, 5, 4), (3, 5, 4)), {}, "do not broadcast"),
    (((3, 4), (5, 4), (5, 4)), {"attn_mask": np.zeros((3, 5), np.int64)}, "bool or float"),
    (((3, 4), (5, 4), (5, 4)), {"attn_mask": np.zeros((3, 5), np.float64)}, "bool or float"),
    (((3, 4), (5, 4), (5, 4)), {"attn_mask": np.zeros((4, 5), bool)}, "does not broadcast"),
    (((3, 4), (5, 4), (5, 4)), {"attn_mask": np.zeros((3, 5), bool), "is_causal": True}, "is_causal"),
    (((3, 4), (5, 4), (5, 4)), {"dropout_p": 1.5}, "between 0 and 1"),
    (((1, 6, 3, 4), (1, 4, 5, 4), (1, 4, 5, 4)), {"enable_gqa": True}, "must divide"),
])
def test_errors(args, kwargs, message):
    q, k, v = (dg.randn(*s) for s in args)
    kwargs = {key: dg.tensor(val) if isinstance(val, np.ndarray) else val for key, val in kwargs.items()}
    with pytest.raises(RuntimeError, match=message):
        F.scaled_dot_product_attention(q, k, v, **kwargs)
    with pytest.raises(RuntimeError, match="same dtype"):
        F.scaled_dot_product_attention(dg.randn(3, 4), dg.randn(5, 4, dtype=dg.float64), dg.randn(5, 4))


def test_mixed_mask_dtype_matches_torch_rejection():
    """torch rejects a float64 mask on float32 queries; so does deepgrad (same message start)."""
    q = randn((3, 4), 0)
    mask = np.zeros((3, 3), np.float64)
    with pytest.raises(RuntimeError, match="Expected attn_mask dtype"):
        TF.scaled_dot_product_attention(torch.tensor(q), torch.tensor(q), torch.tensor(q), torch.tensor(mask))
    with pytest.raises(RuntimeError, match="Expected attn_mask dtype"):
        F.scaled_dot_product_attention(dg.tensor(q), dg.tensor(q), dg.tensor(q), dg.tensor(mask))


@pytest.mark.parametrize("key_batch", [8, 1])
def test_thread_split_gives_identical_results(key_batch):
    """Big weights are split over the batch across deepgrad's threads; every element is computed the same way,
    so 1 and 2 threads agree bit for bit (a broadcast key batch keeps the backward whole)."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((8, 4, 128, 16), (key_batch, 4, 128, 16),
                                                                    (key_batch, 4, 128, 16))]
    keep = dg.tensor(_bool((8, 1, 128, 128), 1))
    up = dg.tensor(rng.standard_normal((8, 4, 128, 16)).astype(np.float32))
    results = []
    threads = dg.get_num_threads()
    try:
        for n in (1, 2):
            dg.set_num_threads(n)
            dg.manual_seed(0)
            q, k, v = (dg.tensor(a, requires_grad=True) for a in arrays)
            out = F.scaled_dot_product_attention(q, k, v, keep, dropout_p=0.1)
            out.backward(up)
            results.append([out.detach().numpy()] + [t.grad.numpy() for t in (q, k, v)])
    finally:
        dg.set_num_threads(threads)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
