"""Second derivatives of the layers' ops (``create_graph=True``): activations, reductions, matmul/linear,
convolutions, pooling, normalisation, the losses, indexing/shape ops, embedding, attention and dropout.

Each case is checked two ways: torch 2.13's double backward (the gradient of ``grad(y, xs, v) · w`` with
respect to every input, parameters included, for random ``v`` and ``w``) and a float64 gradgradcheck
against finite differences with random upstream gradients. Shapes are tiny: the finite differences cost
one forward per input element.
"""

from __future__ import annotations

import numpy as np
import pytest
from core_parity import double_backward

import deepgrad as dg
from deepgrad.autograd import gradgradcheck

torch = pytest.importorskip("torch")


def _f(L):
    return L.nn.functional


def _long(L, values):
    return L.tensor(values, dtype=L.int64)


def _const(L, values):
    """A float64 tensor that needs no gradient (class weights: torch refuses to differentiate them)."""
    return L.tensor(values, dtype=L.float64)


# name -> (fn(lib, *tensors), specs); a spec is a shape ("signed": |x| in (0.3, 1.5), either sign, so kinks
# and ties stay out of finite differences' reach) or (shape, "prob") for values in (0.1, 0.9)
CASES = {
    # activations
    "relu_leaky": (lambda L, a: (_f(L).relu(a) * a + _f(L).leaky_relu(a, 0.1) ** 2).sum(0), [(3, 4)]),
    "elu_celu_selu": (lambda L, a: _f(L).elu(a, 0.7) ** 2 + _f(L).celu(a, 0.5) * a + _f(L).selu(a) ** 2, [(3, 4)]),
    "gelu": (lambda L, a: _f(L).gelu(a) * a + _f(L).gelu(a, approximate="tanh") ** 2, [(3, 4)]),
    "silu_mish": (lambda L, a: _f(L).silu(a) ** 2 + _f(L).mish(a) * a, [(3, 4)]),
    "softplus_sigmoid_tanh": (lambda L, a: _f(L).softplus(a, beta=2.0) ** 2 + a.sigmoid() * a.tanh()
                              + _f(L).logsigmoid(a) ** 2, [(3, 4)]),
    "hardtanh_relu6": (lambda L, a: _f(L).hardtanh(a * 2, -1.0, 1.0) * a + _f(L).relu6(a * 3) ** 2, [(3, 4)]),
    # reductions
    "max_min_dim": (lambda L, a: a.max(1).values ** 2 + a.min(1).values * a.sum(1), [(3, 4)]),
    "amax_amin_full": (lambda L, a: a.amax(0) ** 2 + a.amin(0) * a.max() + a.min() ** 3, [(3, 4)]),
    "var_std": (lambda L, a: a.var(1) ** 2 + a.std(0, correction=0)[:3] * a.var() + a.std(), [(3, 4)]),
    "logsumexp": (lambda L, a: a.logsumexp(1) ** 2 + a.logsumexp(0).sum() * a.sum(1), [(3, 4)]),
    "norm": (lambda L, a: a.norm(dim=1) ** 2 + a.norm() * a.norm(p=1, dim=0).sum()
             + L.linalg.vector_norm(a, 3, dim=1), [(3, 4)]),
    "softmax_logsoftmax": (lambda L, a: _f(L).softmax(a, 1) * _f(L).log_softmax(a, 0), [(3, 4)]),
    "sort_topk_cummax_median": (lambda L, a: a.sort(1).values ** 2 * a.topk(4, 1).values + a.cummax(0).values ** 3
                                + a.median() * a, [(3, 4)]),
    # matmul / linear
    "matmul": (lambda L, a, b: (a @ b) ** 2, [(3, 4), (4, 2)]),
    "matmul_batched_vector": (lambda L, a, b, v: ((a @ b) @ v) ** 2, [(2, 3, 4), (4, 2), (2,)]),
    "linear": (lambda L, x, w, b: _f(L).linear(x, w, b).tanh(), [(3, 4), (2, 4), (2,)]),
    # convolutions
    "conv2d": (lambda L, x, w, b: _f(L).conv2d(x, w, b, stride=2, padding=1).tanh(),
               [(2, 2, 5, 5), (3, 2, 3, 3), (3,)]),
    "conv2d_groups_dilation": (lambda L, x, w: _f(L).conv2d(x, w, padding=2, dilation=2, groups=2) ** 2,
                               [(1, 4, 4, 4), (2, 2, 3, 3)]),
    "conv_transpose2d": (lambda L, x, w, b: _f(L).conv_transpose2d(x, w, b, stride=2, padding=1,
                                                                    output_padding=1).tanh(),
                         [(1, 2, 3, 3), (2, 3, 3, 3), (3,)]),
    "conv1d": (lambda L, x, w: _f(L).conv1d(x, w, padding=1) ** 2, [(2, 2, 5), (3, 2, 3)]),
    # pooling
    "max_pool2d": (lambda L, x: _f(L).max_pool2d(x * x, 2, stride=1, padding=1) ** 2, [(1, 2, 4, 4)]),
    "avg_pool2d": (lambda L, x: _f(L).avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False) ** 2,
                   [(1, 2, 5, 5)]),
    "adaptive_pools": (lambda L, x: _f(L).adaptive_avg_pool2d(x, (2, 3)) ** 2
                       + _f(L).adaptive_max_pool2d(x * x, (2, 3)) * 2, [(1, 2, 4, 5)]),
    "max_avg_pool1d": (lambda L, x: _f(L).max_pool1d(x * x, 2) ** 2 + _f(L).avg_pool1d(x, 2) ** 3, [(2, 2, 6)]),
    # normalisation
    "layer_norm": (lambda L, x, w, b: _f(L).layer_norm(x, (4,), w, b) ** 2 * x, [(3, 4), (4,), (4,)]),
    # one group: the layer norm over (C, H, W) of a WGAN-GP DCGAN critic; two: groups of channels
    "group_norm": (lambda L, x, w, b: _f(L).group_norm(x, 1, w, b) ** 2 * x + _f(L).group_norm(x, 2, w, b) ** 3,
                   [(2, 4, 2, 2), (4,), (4,)]),
    "batch_norm_eval": (lambda L, x, w, b: _f(L).batch_norm(x, _const(L, [0.1, -0.2, 0.3]), _const(L, [0.5, 1.0, 2.0]),
                                                            w, b, training=False) ** 2 * x, [(4, 3, 2), (3,), (3,)]),
    "batch_norm_train": (lambda L, x, w, b: _f(L).batch_norm(x, None, None, w, b, training=True) ** 2 * x,
                         [(4, 3, 2), (3,), (3,)]),
    # losses
    "mse": (lambda L, a, b: _f(L).mse_loss(a.tanh(), b) + _f(L).mse_loss(a, b, reduction="sum") * a.sum(),
            [(3, 4), (3, 4)]),
    "l1_smooth_huber": (lambda L, a, b: (_f(L).l1_loss(a * a, b) * _f(L).smooth_l1_loss(a, b * 0.3, beta=0.5)
                                         + _f(L).huber_loss(a, b, delta=0.7, reduction="sum") ** 2), [(3, 4), (3, 4)]),
    "cross_entropy": (lambda L, z: _f(L).cross_entropy(z, _long(L, [0, 3, 1])) ** 2, [(3, 4)]),
    "cross_entropy_smooth_weight_ignore": (
        lambda L, z: _f(L).cross_entropy(z * z, _long(L, [0, 3, 1, 2]), weight=_const(L, [0.5, 2.0, 1.0, 1.5]),
                                         ignore_index=1, label_smoothing=0.2) ** 2, [(4, 4)]),
    "cross_entropy_probs_4d": (lambda L, z, p: _f(L).cross_entropy(z, p.softmax(1), reduction="sum"),
                               [(2, 3, 2, 2), (2, 3, 2, 2)]),
    "nll": (lambda L, z: _f(L).nll_loss(z.log_softmax(1) * z, _long(L, [2, 0, 1]), weight=_const(L, [0.5, 2.0, 1.5]))
            ** 2, [(3, 3)]),
    "bce": (lambda L, p, t: _f(L).binary_cross_entropy(p, t, weight=_const(L, [0.5, 2.0])) * p.sum(),
            [((3, 2), "prob"), ((3, 2), "prob")]),
    "bce_with_logits": (lambda L, z, t: _f(L).binary_cross_entropy_with_logits(
        z, t, weight=_const(L, [1.5, 0.5]), pos_weight=_const(L, [0.5, 3.0])) ** 2, [(3, 2), ((3, 2), "prob")]),
    "kl_div": (lambda L, a, b: _f(L).kl_div(a.log_softmax(1), b.log_softmax(1), reduction="batchmean",
                                            log_target=True) ** 2, [(3, 4), (3, 4)]),
    # indexing and shape ops
    "basic_index": (lambda L, a: a[1:, ::2] ** 2 * a[0, 1:3] + a[1:, -1:] ** 3, [(3, 4)]),
    "advanced_index_repeats": (lambda L, a: a[_long(L, [0, 2, 0])] ** 2 + a[:, _long(L, [1, 1, 3, 0])].sum(0),
                               [(3, 4)]),
    "boolean_mask": (lambda L, a: a[a > 0] ** 3, [(3, 4)]),
    "cat_stack_split": (lambda L, a, b: (L.cat([a, b * b], 0) * L.stack([b, a], 0).sum(0).repeat(2, 1))
                        + L.cat(list(a.split([1, 3], dim=1))[::-1], 1).repeat(2, 1) ** 2, [(2, 4), (2, 4)]),
    "chunk_unbind": (lambda L, a: a.chunk(2, 1)[1] ** 2 * a.unbind(0)[0][:2], [(3, 4)]),
    "transpose_squeeze": (lambda L, a: (a.unsqueeze(1).transpose(0, 2).squeeze(1) * a.t()) ** 2
                          + a.flatten().reshape(4, 3), [(3, 4)]),
    "gather": (lambda L, a: a.gather(1, _long(L, [[0, 0], [3, 1], [2, 2]])) ** 2, [(3, 4)]),
    "embedding": (lambda L, w: (_f(L).embedding(_long(L, [[0, 2], [2, 1]]), w) ** 2).sum(1), [(4, 3)]),
    "pad_where": (lambda L, a: _f(L).pad(a, (1, 2, 0, 1)) ** 2 + L.where(_f(L).pad(a, (1, 2, 0, 1)) > 0, 1.0, 0.0),
                  [(2, 3)]),
    "maximum_minimum": (lambda L, a, b: L.maximum(a, b) ** 2 * L.minimum(a * 2, b), [(3, 4), (3, 4)]),
    # attention
    "sdpa_causal": (lambda L, q, k, v: _f(L).scaled_dot_product_attention(q, k, v, is_causal=True) ** 2,
                    [(1, 3, 2), (1, 3, 2), (1, 3, 2)]),
}
GRADGRAD_SKIP: set = set()  # every case here suits finite differences (no float32 step, no kink within reach)


def _inputs(lib, specs, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for spec in specs:
        shape, kind = spec if isinstance(spec[-1], str) else (spec, "signed")
        if kind == "prob":
            v = rng.uniform(0.1, 0.9, shape)
        else:
            v = rng.uniform(0.3, 1.5, shape) * rng.choice([-1.0, 1.0], shape)
        out.append(lib.tensor(v, dtype=lib.float64, requires_grad=True))
    return out


def _double(lib, name):
    fn, specs = CASES[name]
    return double_backward(lib, fn, _inputs(lib, specs), materialize=True)


@pytest.mark.parametrize("name", list(CASES))
def test_second_derivatives_match_torch(name):
    (t_first, t_second), (d_first, d_second) = _double(torch, name), _double(dg, name)
    for a, b in zip(d_first, t_first):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)
    for k, (a, b) in enumerate(zip(d_second, t_second)):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10, err_msg=f"{name}: input {k}")


@pytest.mark.parametrize("name", [n for n in CASES if n not in GRADGRAD_SKIP])
def test_gradgradcheck(name):
    fn, specs = CASES[name]
    assert gradgradcheck(lambda *xs: fn(dg, *xs), _inputs(dg, specs, seed=3))


def test_dropout_double_backward_uses_the_forward_mask():
    # torch cannot draw deepgrad's mask, so torch's double backward runs on the same mask made explicit
    dg.manual_seed(0)
    x = dg.tensor(np.random.default_rng(0).uniform(0.5, 1.5, (4, 5)), dtype=dg.float64, requires_grad=True)
    y = dg.nn.functional.dropout(x, 0.4, training=True)
    mask = (y.detach().numpy() != 0).astype(np.float64)
    assert 0 < mask.sum() < mask.size  # a real mask: some kept, some dropped
    (g,) = dg.autograd.grad((y * y * x).sum(), x, create_graph=True)
    (h,) = dg.autograd.grad((g * g).sum(), x)

    tx = torch.tensor(x.detach().numpy(), requires_grad=True)
    ty = tx * torch.tensor(mask) / 0.6
    (tg,) = torch.autograd.grad((ty * ty * tx).sum(), tx, create_graph=True)
    (th,) = torch.autograd.grad((tg * tg).sum(), tx)
    np.testing.assert_allclose(g.detach().numpy(), tg.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(h.numpy(), th.numpy(), rtol=1e-10)

    def same_mask(t):
        dg.manual_seed(0)
        return dg.nn.functional.dropout(t, 0.4, training=True) ** 2 * t

    assert gradgradcheck(same_mask, [x])


def test_inplace_slice_assignment_double_backward_matches_torch():
    def fn(L, a, b):
        c = a * 1.0
        c[1:, :2] = b * b
        c[_long(L, [0, 0]), _long(L, [3, 2])] = b[0, :2] ** 3
        return c ** 2

    def run(L):
        a, b = _inputs(L, [(3, 4), (2, 2)])
        y = fn(L, a, b)
        up = L.tensor(np.random.default_rng(1).standard_normal((3, 4)), dtype=L.float64)
        ga, gb = L.autograd.grad(y, (a, b), up, create_graph=True)
        return [s.numpy() for s in L.autograd.grad((ga * ga).sum() + (gb ** 3).sum(), (a, b))]

    for d, t in zip(run(dg), run(torch)):
        np.testing.assert_allclose(d, t, rtol=1e-9, atol=1e-11)


def test_an_uncovered_op_raises_naming_it():
    # cumprod has no differentiable backward yet: the error must name it, never return a wrong number
    x = dg.tensor([0.5, 1.5, 2.0], dtype=dg.float64, requires_grad=True)
    y = x.cumprod(0)
    assert not hasattr(type(y.grad_fn), "backward_graph")
    with pytest.raises(RuntimeError, match=r"derivative for CumprodBackward.*create_graph=True"):
        dg.autograd.grad(y.sum(), x, create_graph=True)
    (first,) = dg.autograd.grad(x.cumprod(0).sum(), x)  # the first-order path still works
    np.testing.assert_allclose(first.numpy(), [1 + 1.5 + 3.0, 0.5 + 1.0, 0.75])
