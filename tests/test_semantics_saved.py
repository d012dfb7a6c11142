"""What each op saves for its backward, checked the way a user trips on it: run the forward, change one
of its tensor arguments (or its output) in place, then run the backward — on torch 2.13 and on deepgrad.

Either both raise (torch's "modified by an inplace operation"), or both give the same gradients. An op
that keeps an alias of an argument torch does not save would give a different gradient here; an op that
keeps a private copy where torch saves the tensor would fail to raise.
"""

from __future__ import annotations

import numpy as np
import pytest

import deepgrad as dg
import deepgrad.nn.functional as DF

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def F(lib):
    return DF if lib is dg else TF


# name -> (fn(lib, *args), [(shape, kind)]) with kind "x" (float, requires grad), "c" (float constant),
# "i<n>" (int64 in [0, n)), "p" (positive float constant), "b" (bool mask)
CASES = {
    "mul": (lambda L, a, b: a * b, [((2, 3), "x"), ((2, 3), "x")]),
    "mul_const": (lambda L, a, b: a * b, [((2, 3), "x"), ((2, 3), "c")]),
    "div": (lambda L, a, b: a / b, [((2, 3), "x"), ((2, 3), "p")]),
    "pow": (lambda L, a, b: a.abs() ** b, [((2, 3), "x"), ((2, 3), "x")]),
    "matmul": (lambda L, a, b: a @ b, [((2, 3), "x"), ((3, 4), "x")]),
    "matmul_const": (lambda L, a, b: a @ b, [((2, 3), "c"), ((3, 4), "x")]),
    "linear": (lambda L, x, w, b: F(L).linear(x, w, b), [((2, 3), "c"), ((4, 3), "x"), ((4,), "x")]),
    "exp": (lambda L, a: a.exp(), [((2, 3), "x")]),
    "tanh": (lambda L, a: a.tanh(), [((2, 3), "x")]),
    "sigmoid": (lambda L, a: a.sigmoid(), [((2, 3), "x")]),
    "sin": (lambda L, a: a.sin(), [((2, 3), "x")]),
    "log": (lambda L, a: a.abs().log(), [((2, 3), "x")]),
    "relu": (lambda L, a: F(L).relu(a), [((2, 3), "x")]),
    "gelu": (lambda L, a: F(L).gelu(a), [((2, 3), "x")]),
    "elu": (lambda L, a: F(L).elu(a), [((2, 3), "x")]),
    "leaky_relu": (lambda L, a: F(L).leaky_relu(a, 0.2), [((2, 3), "x")]),
    "softplus": (lambda L, a: F(L).softplus(a), [((2, 3), "x")]),
    "softmax": (lambda L, a: F(L).softmax(a, dim=1), [((2, 3), "x")]),
    "log_softmax": (lambda L, a: F(L).log_softmax(a, dim=1), [((2, 3), "x")]),
    "logsumexp": (lambda L, a: a.logsumexp(dim=1), [((2, 3), "x")]),
    "var": (lambda L, a: a.var(dim=1), [((2, 3), "x")]),
    "std": (lambda L, a: a.std(dim=1), [((2, 3), "x")]),
    "amax": (lambda L, a: a.amax(dim=1), [((2, 3), "x")]),
    "sum": (lambda L, a: a.sum(dim=1), [((2, 3), "x")]),
    "norm": (lambda L, a: a.norm(dim=1), [((2, 3), "x")]),
    "clamp_tensor": (lambda L, a, lo: a.clamp(min=lo), [((2, 3), "x"), ((2, 3), "c")]),
    "maximum": (lambda L, a, b: L.maximum(a, b), [((2, 3), "x"), ((2, 3), "x")]),
    "where": (lambda L, m, a, b: L.where(m, a, b), [((2, 3), "b"), ((2, 3), "x"), ((2, 3), "x")]),
    "gather": (lambda L, a, i: a.gather(1, i), [((2, 3), "x"), ((2, 2), "i3")]),
    "index_tensor": (lambda L, a, i: a[i], [((4, 3), "x"), ((5,), "i4")]),
    "embedding": (lambda L, i, w: F(L).embedding(i, w), [((5,), "i4"), ((4, 3), "x")]),
    "conv2d": (lambda L, x, w, b: F(L).conv2d(x, w, b, padding=1), [((1, 2, 5, 5), "x"), ((3, 2, 3, 3), "x"),
                                                                    ((3,), "x")]),
    "conv_transpose2d": (lambda L, x, w: F(L).conv_transpose2d(x, w, stride=2),
                         [((1, 2, 3, 3), "x"), ((2, 3, 3, 3), "x")]),
    "max_pool2d": (lambda L, x: F(L).max_pool2d(x, 2), [((1, 2, 4, 4), "x")]),
    "avg_pool2d": (lambda L, x: F(L).avg_pool2d(x, 2), [((1, 2, 4, 4), "x")]),
    "adaptive_avg_pool2d": (lambda L, x: F(L).adaptive_avg_pool2d(x, 3), [((1, 2, 5, 5), "x")]),
    "batch_norm_train": (lambda L, x, w, b: F(L).batch_norm(x, None, None, w, b, training=True),
                         [((4, 3), "x"), ((3,), "x"), ((3,), "x")]),
    "batch_norm_eval": (lambda L, x, m, v, w: F(L).batch_norm(x, m, v, w, None, training=False),
                        [((4, 3), "x"), ((3,), "c"), ((3,), "p"), ((3,), "x")]),
    "layer_norm": (lambda L, x, w, b: F(L).layer_norm(x, (3,), w, b), [((4, 3), "x"), ((3,), "x"), ((3,), "x")]),
    "mse_loss": (lambda L, x, t: F(L).mse_loss(x, t), [((2, 3), "x"), ((2, 3), "c")]),
    "l1_loss": (lambda L, x, t: F(L).l1_loss(x, t), [((2, 3), "x"), ((2, 3), "x")]),
    "smooth_l1_loss": (lambda L, x, t: F(L).smooth_l1_loss(x, t), [((2, 3), "x"), ((2, 3), "c")]),
    "cross_entropy": (lambda L, x, t, w: F(L).cross_entropy(x, t, weight=w), [((4, 3), "x"), ((4,), "i3"),
                                                                             ((3,), "p")]),
    "nll_loss": (lambda L, x, t: F(L).nll_loss(x, t), [((4, 3), "x"), ((4,), "i3")]),
    "bce": (lambda L, x, t, w: F(L).binary_cross_entropy(x.sigmoid(), t, weight=w),
            [((2, 3), "x"), ((2, 3), "u"), ((2, 3), "p")]),
    "bce_with_logits": (lambda L, x, t, w, pw: F(L).binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw),
                        [((2, 3), "x"), ((2, 3), "u"), ((2, 3), "p"), ((3,), "p")]),
    "kl_div": (lambda L, x, t: F(L).kl_div(x, t, reduction="batchmean"), [((2, 3), "x"), ((2, 3), "u")]),
    "cat": (lambda L, a, b: L.cat([a * 1, b * 2]), [((2, 3), "x"), ((1, 3), "x")]),
    # issue 19's ops
    "floor": (lambda L, a: a.floor(), [((2, 3), "x")]),
    "frac": (lambda L, a: a.frac(), [((2, 3), "x")]),
    "rsqrt_x": (lambda L, a: a.abs().rsqrt(), [((2, 3), "x")]),
    "reciprocal": (lambda L, a: a.reciprocal(), [((2, 3), "x")]),
    "log2": (lambda L, a: (a * 1).abs().log2(), [((2, 3), "x")]),
    "exp2": (lambda L, a: a.exp2(), [((2, 3), "x")]),
    "expm1": (lambda L, a: a.expm1(), [((2, 3), "x")]),
    "tan": (lambda L, a: a.tan(), [((2, 3), "x")]),
    "asin": (lambda L, a: (a * 0.3).asin(), [((2, 3), "x")]),
    "atan": (lambda L, a: a.atan(), [((2, 3), "x")]),
    "sinh": (lambda L, a: a.sinh(), [((2, 3), "x")]),
    "acosh": (lambda L, a: (a.abs() + 1.5).acosh(), [((2, 3), "x")]),
    "erf": (lambda L, a: a.erf(), [((2, 3), "x")]),
    "erfinv": (lambda L, a: (a * 0.3).erfinv(), [((2, 3), "x")]),
    "lgamma": (lambda L, a: (a.abs() + 0.5).lgamma(), [((2, 3), "x")]),
    "logit": (lambda L, a: a.sigmoid().logit(), [((2, 3), "x")]),
    "nan_to_num": (lambda L, a: a.nan_to_num(), [((2, 3), "x")]),
    "atan2": (lambda L, a, b: L.atan2(a, b), [((2, 3), "x"), ((2, 3), "x")]),
    "hypot": (lambda L, a, b: L.hypot(a, b), [((2, 3), "x"), ((2, 3), "x")]),
    "logaddexp": (lambda L, a, b: L.logaddexp(a, b), [((2, 3), "x"), ((2, 3), "x")]),
    "xlogy": (lambda L, a, b: L.xlogy(a, b), [((2, 3), "x"), ((2, 3), "p")]),
    "copysign": (lambda L, a, b: L.copysign(a, b), [((2, 3), "x"), ((2, 3), "x")]),
    "fmod": (lambda L, a, b: L.fmod(a, b), [((2, 3), "x"), ((2, 3), "x")]),
    "fmax": (lambda L, a, b: L.fmax(a, b), [((2, 3), "x"), ((2, 3), "x")]),
    "lerp": (lambda L, a, b, w: L.lerp(a, b, w), [((2, 3), "x"), ((2, 3), "x"), ((2, 3), "x")]),
    "lerp_scalar": (lambda L, a, b: L.lerp(a, b, 0.3), [((2, 3), "x"), ((2, 3), "x")]),
    "cumsum": (lambda L, a: a.cumsum(1), [((2, 3), "x")]),
    "cumprod": (lambda L, a: a.cumprod(1), [((2, 3), "x")]),
    "logcumsumexp": (lambda L, a: a.logcumsumexp(1), [((2, 3), "x")]),
    "cummax": (lambda L, a: a.cummax(1).values, [((2, 3), "x")]),
    "prod": (lambda L, a: a.prod(1), [((2, 3), "x")]),
    "prod_all": (lambda L, a: a.prod(), [((2, 3), "x")]),
    "sort": (lambda L, a: a.sort(1).values, [((2, 3), "x")]),
    "topk": (lambda L, a: a.topk(2, 1).values, [((2, 3), "x")]),
    "kthvalue": (lambda L, a: a.kthvalue(2, 1).values, [((2, 3), "x")]),
    "median": (lambda L, a: a.median(), [((2, 3), "x")]),
    "median_dim": (lambda L, a: a.median(1).values, [((2, 3), "x")]),
    "scatter": (lambda L, a, i, s: a.scatter(1, i, s), [((2, 3), "x"), ((2, 2), "i3"), ((2, 2), "x")]),
    "scatter_add": (lambda L, a, i, s: a.scatter_add(1, i, s), [((2, 3), "x"), ((2, 2), "i3"), ((2, 2), "x")]),
    "scatter_reduce_sum": (lambda L, a, i, s: a.scatter_reduce(1, i, s, "sum"),
                           [((2, 3), "x"), ((2, 2), "i3"), ((2, 2), "x")]),
    "scatter_reduce_amax": (lambda L, a, i, s: a.scatter_reduce(1, i, s, "amax", include_self=False),
                            [((2, 3), "x"), ((2, 2), "i3"), ((2, 2), "x")]),
    "index_select": (lambda L, a, i: a.index_select(0, i), [((4, 3), "x"), ((5,), "i4")]),
    "index_add": (lambda L, a, i, s: a.index_add(0, i, s), [((4, 3), "x"), ((2,), "i4"), ((2, 3), "x")]),
    "index_copy": (lambda L, a, i, s: a.index_copy(0, i, s), [((4, 3), "x"), ((1,), "i4"), ((1, 3), "x")]),
    "masked_select": (lambda L, a, m: a.masked_select(m), [((2, 3), "x"), ((2, 3), "b")]),
    "masked_scatter": (lambda L, a, m, s: a.masked_scatter(m, s), [((2, 3), "x"), ((2, 3), "b"), ((6,), "x")]),
    "take": (lambda L, a, i: a.take(i), [((2, 3), "x"), ((4,), "i4")]),
    "einsum": (lambda L, a, b: L.einsum("ij,kj->ik", a, b), [((2, 3), "x"), ((4, 3), "x")]),
    "einsum_diag": (lambda L, a: L.einsum("ii->i", a), [((3, 3), "x")]),
    "tensordot": (lambda L, a, b: L.tensordot(a, b, 1), [((2, 3), "x"), ((3, 4), "x")]),
    "bmm": (lambda L, a, b: L.bmm(a, b), [((2, 2, 3), "x"), ((2, 3, 2), "x")]),
    "addmm": (lambda L, i, a, b: L.addmm(i, a, b, beta=0.5), [((2,), "x"), ((2, 3), "x"), ((3, 2), "x")]),
    "outer": (lambda L, a, b: L.outer(a, b), [((2,), "x"), ((3,), "x")]),
    "cdist": (lambda L, a, b: L.cdist(a, b), [((3, 2), "x"), ((4, 2), "x")]),
    "diagonal": (lambda L, a: (a * 1).diagonal() * 2, [((3, 3), "x")]),
    "tril": (lambda L, a: a.tril(), [((3, 3), "x")]),
    "trace": (lambda L, a: a.trace(), [((3, 3), "x")]),
    "flip": (lambda L, a: a.flip(0), [((2, 3), "x")]),
    "roll": (lambda L, a: a.roll(1, 1), [((2, 3), "x")]),
    "repeat_interleave": (lambda L, a: a.repeat_interleave(2, 0), [((2, 3), "x")]),
    "unfold": (lambda L, a: a.unfold(1, 2, 1) * 1, [((2, 3), "x")]),
    "pad_reflect": (lambda L, a: F(L).pad(a, (2, 1), "reflect"), [((1, 2, 3), "x")]),
    "pad_circular": (lambda L, a: F(L).pad(a, (1, 1, 1, 0), "circular"), [((1, 1, 2, 3), "x")]),
    "interpolate_bilinear": (lambda L, a: F(L).interpolate(a, scale_factor=2, mode="bilinear"),
                             [((1, 1, 2, 3), "x")]),
    "interpolate_nearest": (lambda L, a: F(L).interpolate(a, size=5), [((1, 1, 3), "x")]),
    "nansum": (lambda L, a: a.nansum(1), [((2, 3), "x")]),
    "aminmax": (lambda L, a: a.aminmax().max, [((2, 3), "x")]),
    "quantile": (lambda L, a: a.quantile(0.4, 1), [((2, 3), "x")]),
    "linalg_inv": (lambda L, a: L.linalg.inv(a + 3 * L.eye(3)), [((3, 3), "x")]),
    "linalg_det": (lambda L, a: L.linalg.det(a * 1), [((3, 3), "x")]),
    "linalg_solve": (lambda L, a, b: L.linalg.solve(a * 1 + 3 * L.eye(3), b * 1), [((3, 3), "x"), ((3, 2), "x")]),
    "linalg_cholesky": (lambda L, a: L.linalg.cholesky(a @ a.mT + 3 * L.eye(3)), [((3, 3), "x")]),
}


def _inputs(lib, spec, seed):
    rng = np.random.default_rng(seed)
    out = []
    for shape, kind in spec:
        if kind.startswith("i"):
            out.append(lib.tensor(rng.integers(0, int(kind[1:]), size=shape)))
        elif kind == "b":
            out.append(lib.tensor(rng.random(shape) > 0.5))
        else:
            v = rng.standard_normal(shape).astype(np.float32)
            v = np.abs(v) + 0.5 if kind == "p" else (1 / (1 + np.exp(-v)) if kind == "u" else v)
            out.append(lib.tensor(v.astype(np.float32), requires_grad=kind == "x"))
    return out


def _modify(t):
    if t.dtype in (torch.int64, dg.int64):
        flat = t.reshape(-1)  # a view: the write lands in t
        flat[0] = (flat[0] + 1) % 2
    elif t.dtype in (torch.bool, dg.bool):
        flat = t.reshape(-1)
        flat[0] = ~flat[0]
    else:
        t.mul_(0.5)


def _outcome(lib, name, target):
    fn, spec = CASES[name]
    args = _inputs(lib, spec, 0)
    out = fn(lib, *args)
    with lib.no_grad():
        _modify(out if target == "out" else args[target])
    try:
        out.backward(lib.ones_like(out) * 0.7)
    except RuntimeError as e:
        assert "inplace" in str(e), e
        return "raised"
    return [None if a.grad is None else np.asarray(a.grad.numpy()) for a in args]


@pytest.mark.parametrize("name", list(CASES))
def test_changing_an_argument_or_the_output_before_backward_matches_torch(name):
    targets = list(range(len(CASES[name][1]))) + ["out"]
    for target in targets:
        t, d = _outcome(torch, name, target), _outcome(dg, name, target)
        what = f"{name}: changing {'the output' if target == 'out' else f'argument {target}'} in place"
        assert (t == "raised") == (d == "raised"), f"{what}: torch {'raised' if t == 'raised' else 'ran'}, " \
                                                   f"deepgrad {'raised' if d == 'raised' else 'ran'}"
        if t != "raised":
            for a, b in zip(d, t):
                assert (a is None) == (b is None), what
                if a is not None:
                    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=what)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_recurrent_layers_save_what_torch_saves(kind):
    """torch's LSTM (oneDNN) saves its output, its GRU and RNN do not; all save their input and weights."""
    for target in ("output", "h_n", "input", "weight"):
        outcome = {}
        for lib in (torch, dg):
            lib.manual_seed(0)
            m = getattr(lib.nn, kind)(3, 4)
            with lib.no_grad():
                for p in m.parameters():
                    p.copy_(lib.tensor(np.linspace(-0.5, 0.5, p.numel(), dtype=np.float32).reshape(tuple(p.shape))))
            x = lib.tensor(np.linspace(-1, 1, 30, dtype=np.float32).reshape(5, 2, 3), requires_grad=True)
            y, h = m(x)
            h = h[0] if isinstance(h, tuple) else h
            with lib.no_grad():
                {"output": y, "h_n": h, "input": x, "weight": m.weight_hh_l0}[target].mul_(2)
            try:
                (y.sum() + h.sum()).backward()
                outcome[lib.__name__] = (x.grad.numpy(), m.weight_ih_l0.grad.numpy())
            except RuntimeError as e:
                assert "inplace" in str(e)
                outcome[lib.__name__] = "raised"
        t, d = outcome["torch"], outcome["deepgrad"]
        assert (t == "raised") == (d == "raised"), f"{kind}, changing {target}: torch {t!r:.30}, deepgrad {d!r:.30}"
        if t != "raised":
            for a, b in zip(d, t):
                np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=f"{kind}, changing {target}")
