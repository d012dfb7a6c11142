"""The other parts of a transformer block: layer norm backward, sinusoidal positional encodings, and the softmax
backward (the Jacobian-vector product inside attention)."""

from __future__ import annotations

import numpy as np

from ..exercise import Case, Exercise, Mistake, Mutant
from ._util import T, arr, autograd_reference, grad_case, normal, src


# ----------------------------------------------------------------------------- layer norm backward
def _ln_fwd(x, gamma, beta, eps, **_):
    from ...nn import functional as F

    return (F.layer_norm(x, (x.shape[-1],), gamma, beta, eps),)


def _spread_rows(rng, shape) -> np.ndarray:
    """Rows (over the last axis) that are never nearly constant: a near-zero variance would make the float64
    finite differences of the normalisation unreliable."""
    x = normal(rng, shape, scale=2.0) + 1.0
    if shape[-1] > 1:
        flat = x.reshape(-1, shape[-1])
        while (flat.var(axis=-1) < 0.05).any():
            bad = flat.var(axis=-1) < 0.05
            flat[bad] = normal(rng, (int(bad.sum()), shape[-1]), scale=2.0) + 1.0
    return x


def _ln_cases(rng):
    cases = []
    for i in range(6):
        d = int(rng.integers(2, 8))
        if i < 2:      # (B, T, D): dgamma and dbeta sum over every axis but the last
            shape = (int(rng.integers(1, 5)), int(rng.integers(2, 5)), d)
        elif i == 2:   # a single feature: x_hat is 0, everything flows to beta
            shape = (int(rng.integers(1, 5)), 1)
        elif i == 3:   # one vector, no batch
            shape = (d,)
        else:
            shape = (int(rng.integers(1, 6)), d)
        args = {"x": _spread_rows(rng, shape), "gamma": normal(rng, shape[-1:]), "beta": normal(rng, shape[-1:]),
                "eps": 1e-5, "grad_out": normal(rng, shape)}
        cases.append(grad_case("layer_norm_backward", args, _ln_fwd, ("x", "gamma", "beta"), ("grad_out",),
                               note="a single feature" if i == 2 else ""))
    return cases


def _ln_bwd_alt(c, mean_term=True):
    a = c.args
    x, g = a["x"], a["grad_out"]
    inv_std = 1 / np.sqrt(x.var(-1, keepdims=True) + a["eps"])
    x_hat = (x - x.mean(-1, keepdims=True)) * inv_std
    rows = tuple(range(x.ndim - 1))
    gg = g * a["gamma"]
    dx = (gg - (gg.mean(-1, keepdims=True) if mean_term else 0) - x_hat * (gg * x_hat).mean(-1, keepdims=True))
    return dx * inv_std, (g * x_hat).sum(rows), g.sum(rows)


layernorm_backward = Exercise(
    id="layernorm-backward", title="Layer norm backward (dx, dgamma, dbeta)",
    topic="transformers", difficulty=3, question="Derive the backward pass of layer normalisation.",
    statement=src("""
    For y = layer_norm(x) over the LAST axis as in the layernorm exercise (per-row mean and BIASED variance,
    y = (x - mean) / sqrt(var + eps) * gamma + beta), implement
    layer_norm_backward(x, gamma, beta, eps, grad_out) -> (dx, dgamma, dbeta) with NumPy: the gradients of
    sum(grad_out * y). x (..., D) float64 with any number of leading axes (also none); gamma, beta (D,);
    grad_out has x's shape. Checked against deepgrad's autograd and float64 finite differences.
    """),
    starter=src("""
    import numpy as np


    def layer_norm_backward(x, gamma, beta, eps, grad_out):
        ...  # your code here
    """),
    hints=["dbeta = grad_out summed over every axis but the last; dgamma = (grad_out * x_hat) summed likewise.",
           "The row's mean and variance depend on every x of the row: their gradients add two terms to dx.",
           "With g = grad_out * gamma: dx = (g - mean(g) - x_hat * mean(g * x_hat)) / sqrt(var + eps), the means "
           "over the last axis (keepdims=True)."],
    solution=src("""
    import numpy as np


    def layer_norm_backward(x, gamma, beta, eps, grad_out):
        rows = tuple(range(x.ndim - 1))
        inv_std = 1 / np.sqrt(x.var(axis=-1, keepdims=True) + eps)
        x_hat = (x - x.mean(axis=-1, keepdims=True)) * inv_std
        dbeta = grad_out.sum(axis=rows)
        dgamma = (grad_out * x_hat).sum(axis=rows)
        g = grad_out * gamma
        dx = (g - g.mean(axis=-1, keepdims=True) - x_hat * (g * x_hat).mean(axis=-1, keepdims=True)) * inv_std
        return dx, dgamma, dbeta
    """),
    outputs={"layer_norm_backward": ("dx", "dgamma", "dbeta")}, cases=_ln_cases, reference=autograd_reference,
    mistakes=[Mistake("dx misses the mean's term: subtract mean(g) over the row (g = grad_out * gamma), because "
                      "every x of the row moves the mean", lambda c: _ln_bwd_alt(c, mean_term=False))],
    mutants=[
        Mutant("the mean term forgotten in dx", ("(g - g.mean(axis=-1, keepdims=True) - x_hat", "(g - x_hat"),
               mentions="misses the mean's term"),
        Mutant("the unbiased variance", ("x.var(axis=-1, keepdims=True)", "x.var(axis=-1, keepdims=True, ddof=1)")),
        Mutant("the variance term forgotten in dx",
               (" - x_hat * (g * x_hat).mean(axis=-1, keepdims=True)) * inv_std", ") * inv_std")),
        Mutant("dgamma and dbeta summed over the first axis only", ("rows = tuple(range(x.ndim - 1))", "rows = 0")),
        Mutant("gamma left out of dx", ("g = grad_out * gamma", "g = grad_out")),
    ],
)


# ----------------------------------------------------------------------------- sinusoidal positional encoding
def _pe_cases(rng):
    sizes = [(1, int(rng.integers(1, 5))),                                # one position
             (int(rng.integers(2, 5)), int(rng.integers(2, 5))),          # tiny
             (int(rng.integers(5, 40)), 2 * int(rng.integers(2, 9)) + 1),  # odd d_model: one more sine than cosine
             (int(rng.integers(5, 40)), 2 * int(rng.integers(3, 12))),     # even, not a power of two as a rule
             (int(rng.integers(40, 100)), int(rng.choice([16, 32, 64])))]
    return [Case("positional_encoding", {"length": t, "d_model": d}) for t, d in sizes]


def _pe_ref(c):
    from ...models.transformer import sinusoidal_table

    return sinusoidal_table(c.args["length"], c.args["d_model"])


def _pe_swapped(c):
    pe = _pe_ref(c).astype(np.float64)
    t, d = pe.shape
    i = np.arange(0, d, 2)
    angles = np.arange(t)[:, None] / 10000.0 ** (i / d)
    pe[:, 0::2], pe[:, 1::2] = np.cos(angles), np.sin(angles[:, : d // 2])
    return pe


positional_encoding = Exercise(
    id="positional-encoding", title="Sinusoidal positional encoding", topic="transformers", difficulty=1,
    question="Why does a transformer need positional encodings, and how do sinusoidal ones work?",
    statement=src("""
    Implement positional_encoding(length, d_model) -> pe with NumPy: the sinusoidal codes of "Attention is all
    you need" (as deepgrad.models.sinusoidal_table), a float32 array (length, d_model):

        pe[t, 2i]     = sin(t / 10000^(2i / d_model))
        pe[t, 2i + 1] = cos(t / 10000^(2i / d_model))          t = 0 .. length - 1

    Sines in the even columns, cosines in the odd ones; a (sin, cos) pair shares one frequency. d_model may be
    odd (then the last column is a sine). Compute in float64, return float32.
    """),
    starter=src("""
    import numpy as np


    def positional_encoding(length, d_model):
        ...  # your code here
    """),
    hints=["The exponent uses the index of the PAIR (2i = the even column), not the column: columns 2i and 2i + 1 "
           "share the frequency 1 / 10000^(2i / d_model).",
           "Angles (length, ceil(d_model / 2)) = positions[:, None] * frequencies[None, :]; fill pe[:, 0::2] with "
           "their sines and pe[:, 1::2] with the cosines of the first d_model // 2 of them."],
    solution=src("""
    import numpy as np


    def positional_encoding(length, d_model):
        i = np.arange(0, d_model, 2)  # 2i: the even column of each (sin, cos) pair
        angles = np.arange(length)[:, None] / 10000.0 ** (i / d_model)
        pe = np.zeros((length, d_model))
        pe[:, 0::2] = np.sin(angles)
        pe[:, 1::2] = np.cos(angles[:, : d_model // 2])
        return pe.astype(np.float32)
    """),
    outputs={"positional_encoding": ("pe",)}, cases=_pe_cases, reference=_pe_ref,
    mistakes=[Mistake("sines go to the EVEN columns (0, 2, ...), cosines to the odd ones: yours are swapped",
                      _pe_swapped)],
    mutants=[
        Mutant("sin and cos swapped", ("pe[:, 0::2] = np.sin(angles)", "pe[:, 0::2] = np.cos(angles)",
                                       "np.cos(angles[:, : d_model // 2])", "np.sin(angles[:, : d_model // 2])"),
               mentions="swapped"),
        Mutant("the column index in the exponent (i / d, not 2i / d)",
               ("i = np.arange(0, d_model, 2)", "i = np.arange((d_model + 1) // 2)")),
        Mutant("sines in the first half, cosines in the second", source=src("""
            import numpy as np


            def positional_encoding(length, d_model):
                i = np.arange(0, d_model, 2)
                angles = np.arange(length)[:, None] / 10000.0 ** (i / d_model)
                pe = np.concatenate([np.sin(angles), np.cos(angles[:, : d_model // 2])], axis=1)
                return pe.astype(np.float32)
            """)),
        Mutant("positions counted from 1", ("np.arange(length)[:, None]", "np.arange(1, length + 1)[:, None]")),
        Mutant("a float64 result", ("pe.astype(np.float32)", "pe"), mentions="wrong dtype"),
    ],
)


# ----------------------------------------------------------------------------- softmax backward
def _softmax_fwd(x, dim, **_):
    from ... import functional as F

    return (F.softmax(x, dim),)


def _sb_cases(rng):
    cases = []
    for i in range(5):  # float64, against autograd and finite differences; sizes 1-5, any dim
        shape = tuple(int(d) for d in rng.integers(1, 6, size=int(rng.integers(1, 4))))
        if i == 0:
            shape = (int(rng.integers(1, 4)), int(rng.integers(2, 6)), int(rng.integers(2, 5)))
        dim = 1 if i == 0 else int(rng.integers(-len(shape), len(shape)))
        args = {"x": normal(rng, shape, scale=2.0), "grad_out": normal(rng, shape), "dim": dim}
        cases.append(grad_case("softmax_backward", args, _softmax_fwd, ("x",), ("grad_out",),
                               note="a middle dim" if i == 0 else ""))
    for _ in range(2):  # float32: the autograd reference only (finite differences need float64)
        shape = (int(rng.integers(1, 5)), int(rng.integers(2, 7)))
        cases.append(Case("softmax_backward", {"x": normal(rng, shape, np.float32, 2.0),
                                               "grad_out": normal(rng, shape, np.float32),
                                               "dim": int(rng.choice([0, -1]))}))
    big = normal(rng, (3, int(rng.integers(2, 6)))) * 1000
    cases.append(grad_case("softmax_backward", {"x": big, "grad_out": normal(rng, big.shape), "dim": -1},
                           _softmax_fwd, ("x",), ("grad_out",), note="logits in the thousands"))
    rows = normal(rng, (3, int(rng.integers(2, 6)))) + np.array([[0.0], [-1500.0], [900.0]])
    cases.append(grad_case("softmax_backward", {"x": rows, "grad_out": normal(rng, rows.shape), "dim": 1},
                           _softmax_fwd, ("x",), ("grad_out",), note="rows a thousand apart"))
    return cases


def _sb_ref(c):
    if c.fd is not None:
        return autograd_reference(c)[0]
    from ... import functional as F

    x = T(c.args["x"], grad=True)
    F.softmax(x, c.args["dim"]).backward(T(c.args["grad_out"]))
    return arr(x.grad)


def _sb_alt(c, dot=True):
    x, g, dim = c.args["x"].astype(np.float64), c.args["grad_out"], c.args["dim"]
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    y = e / e.sum(axis=dim, keepdims=True)
    return y * (g - (g * y).sum(axis=dim, keepdims=True)) if dot else y * g


softmax_backward = Exercise(
    id="softmax-backward", title="Softmax backward (Jacobian-vector product), stable",
    topic="transformers", difficulty=2, question="What is the gradient of softmax, and how is it computed cheaply?",
    statement=src("""
    Implement softmax_backward(x, grad_out, dim) -> grad_x with NumPy: for y = softmax(x) along axis `dim`
    (negative dims count from the end), grad_x = dL/dx given dL/dy = grad_out, same shape and dtype as x
    (float32 or float64). Do not build the Jacobian: the product has a closed form.
    Hidden logits reach the thousands: no overflow, no NaN.
    """),
    starter=src("""
    import numpy as np


    def softmax_backward(x, grad_out, dim):
        ...  # your code here
    """),
    hints=["Compute y = softmax(x) stably first (subtract the max along dim).",
           "dy_i/dx_j = y_i (delta_ij - y_j), so grad_x_j = y_j * (grad_out_j - sum_i grad_out_i * y_i).",
           "The sum runs along `dim` with keepdims=True, so it broadcasts back."],
    solution=src("""
    import numpy as np


    def softmax_backward(x, grad_out, dim):
        e = np.exp(x - x.max(axis=dim, keepdims=True))
        y = e / e.sum(axis=dim, keepdims=True)
        return y * (grad_out - (grad_out * y).sum(axis=dim, keepdims=True))
    """),
    outputs={"softmax_backward": ("grad_x",)}, cases=_sb_cases, reference=_sb_ref,
    mistakes=[Mistake("you kept only the diagonal of the Jacobian: grad_x = y * (grad_out - sum(grad_out * y)), "
                      "not y * grad_out", lambda c: _sb_alt(c, dot=False))],
    mutants=[
        Mutant("without the subtracted dot product",
               ("y * (grad_out - (grad_out * y).sum(axis=dim, keepdims=True))", "y * grad_out"),
               mentions="only the diagonal"),
        Mutant("no max shift", ("np.exp(x - x.max(axis=dim, keepdims=True))", "np.exp(x)"), mentions="NaN or inf"),
        Mutant("the dot product along the last axis", ("(grad_out * y).sum(axis=dim, keepdims=True)",
                                                       "(grad_out * y).sum(axis=-1, keepdims=True)")),
        Mutant("the dot product without y", ("(grad_out * y).sum(axis=dim", "grad_out.sum(axis=dim")),
    ],
)

EXERCISES = [positional_encoding, softmax_backward, layernorm_backward]
