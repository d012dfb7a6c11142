"""Backprop by hand: a linear layer, a two-layer network, an embedding table, L1/L2 penalties."""

from __future__ import annotations

import numpy as np

from ..exercise import Case, Exercise, Mistake, Mutant
from ._util import T, autograd_reference, away_from_zero, grad_case, normal, src


# ----------------------------------------------------------------------------- linear
def _linear_fwd(x, weight, bias, **_):
    from ... import functional as F

    return (F.linear(x, weight, bias),)


def _linear_cases(rng):
    cases = []
    for i in range(5):
        n, fin, fout = (int(v) for v in rng.integers(1, 6, size=3))
        if i == 0:
            fin = fout  # square weights: a transposed dW has the right shape
        if i == 1:
            n = int(rng.integers(2, 6))  # a batch: the bias gradient is a sum, not a mean
        args = {"x": normal(rng, (n, fin)), "weight": normal(rng, (fout, fin)), "bias": normal(rng, (fout,)),
                "grad_out": normal(rng, (n, fout))}
        cases.append(grad_case("linear_backward", args, _linear_fwd, ("x", "weight", "bias"), ("grad_out",)))
    return cases


def _linear_alt_t(c):
    x, g, w = c.args["x"], c.args["grad_out"], c.args["weight"]
    return g @ w, x.T @ g, g.sum(0)


linear_backward = Exercise(
    id="linear-backward", title="Linear layer backward (dx, dW, db)", topic="backprop", difficulty=1,
    question="How does backpropagation compute the gradients of a fully connected layer?",
    statement=src("""
    A linear layer computes y = x @ weight.T + bias with PyTorch's layout:
    x (N, in), weight (out, in), bias (out,), y (N, out).

    Implement linear_backward(x, weight, bias, grad_out) -> (dx, dweight, dbias) with NumPy,
    given grad_out = dL/dy of shape (N, out). Each gradient has the shape of its input.
    """),
    starter=src("""
    import numpy as np


    def linear_backward(x, weight, bias, grad_out):
        ...  # your code here
    """),
    hints=["Check shapes: dx must be (N, in), dweight (out, in), dbias (out,).",
           "dx = grad_out @ weight; dweight = grad_out.T @ x.",
           "The bias is added to every row: its gradient sums grad_out over the batch."],
    solution=src("""
    import numpy as np


    def linear_backward(x, weight, bias, grad_out):
        return grad_out @ weight, grad_out.T @ x, grad_out.sum(axis=0)
    """),
    outputs={"linear_backward": ("dx", "dweight", "dbias")}, cases=_linear_cases, reference=autograd_reference,
    mistakes=[Mistake("your dweight is transposed: with weight of shape (out, in), dweight = grad_out.T @ x",
                      _linear_alt_t)],
    mutants=[
        Mutant("dweight transposed", ("grad_out.T @ x", "x.T @ grad_out"), mentions="transposed"),
        Mutant("the bias gradient averaged", ("grad_out.sum(axis=0)", "grad_out.mean(axis=0)")),
        Mutant("dx through weight.T", ("return grad_out @ weight,", "return grad_out @ weight.T,")),
    ],
)


# ----------------------------------------------------------------------------- two-layer network
def _mlp_fwd(x, y, w1, b1, w2, b2, **_):
    from ... import functional as F
    from ...nn import functional as NF

    return (NF.cross_entropy(F.linear(F.relu(F.linear(x, w1, b1)), w2, b2), T(y)),)


def _mlp_cases(rng):
    cases = []
    for _ in range(4):
        n, d, h, k = int(rng.integers(2, 7)), int(rng.integers(2, 6)), int(rng.integers(3, 8)), int(rng.integers(2, 5))
        args = {"x": normal(rng, (n, d)), "y": rng.integers(0, k, size=n), "w1": normal(rng, (h, d), scale=0.8),
                "b1": normal(rng, (h,), scale=0.5), "w2": normal(rng, (k, h), scale=0.8), "b2": normal(rng, (k,))}
        cases.append(grad_case("mlp_backprop", args, _mlp_fwd, ("w1", "b1", "w2", "b2"), (None,), n_values=1))
    return cases


def _mlp_alt(c, mask=True, mean=True):
    a = c.args
    n = len(a["y"])
    z1 = a["x"] @ a["w1"].T + a["b1"]
    h = np.maximum(z1, 0)
    z = h @ a["w2"].T + a["b2"]
    z = z - z.max(1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    loss = -np.log(p[np.arange(n), a["y"]]).mean()
    dz = p.copy()
    dz[np.arange(n), a["y"]] -= 1
    dz /= n if mean else 1
    dh = dz @ a["w2"]
    dz1 = dh * (z1 > 0) if mask else dh
    return float(loss), dz1.T @ a["x"], dz1.sum(0), dz.T @ h, dz.sum(0)


mlp_backprop = Exercise(
    id="mlp-backprop", title="Backprop by hand through a two-layer network", topic="backprop", difficulty=2,
    question="Walk through backpropagation for a small network.",
    statement=src("""
    The network: h = relu(x @ w1.T + b1); logits = h @ w2.T + b2; loss = mean cross-entropy(logits, y).
    x (N, D), y (N,) int class indices, w1 (H, D), b1 (H,), w2 (K, H), b2 (K,), all float64.

    Implement mlp_backprop(x, y, w1, b1, w2, b2) -> (loss, dw1, db1, dw2, db2) with NumPy:
    the loss as a float and the gradient of the loss w.r.t. each parameter (same shapes).
    """),
    starter=src("""
    import numpy as np


    def mlp_backprop(x, y, w1, b1, w2, b2):
        ...  # your code here
    """),
    hints=["Forward first and keep z1 = x @ w1.T + b1, h and the softmax probabilities.",
           "dlogits = (softmax - onehot(y)) / N; then dw2 = dlogits.T @ h, db2 = dlogits.sum(0).",
           "dh = dlogits @ w2; dz1 = dh * (z1 > 0); dw1 = dz1.T @ x, db1 = dz1.sum(0)."],
    solution=src("""
    import numpy as np


    def mlp_backprop(x, y, w1, b1, w2, b2):
        n = x.shape[0]
        z1 = x @ w1.T + b1
        h = np.maximum(z1, 0)
        z = h @ w2.T + b2
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        loss = -np.log(p[np.arange(n), y]).mean()
        dz = p.copy()
        dz[np.arange(n), y] -= 1
        dz /= n
        dh = dz @ w2
        dz1 = dh * (z1 > 0)
        return float(loss), dz1.T @ x, dz1.sum(axis=0), dz.T @ h, dz.sum(axis=0)
    """),
    outputs={"mlp_backprop": ("loss", "dw1", "db1", "dw2", "db2")}, cases=_mlp_cases, reference=autograd_reference,
    mistakes=[
        Mistake("the first layer's gradients miss the ReLU mask: multiply dh by (z1 > 0)",
                lambda c: _mlp_alt(c, mask=False)),
        Mistake("the gradients miss the 1/N of the mean loss", lambda c: _mlp_alt(c, mean=False)[:1]
                + _mlp_alt(c, mean=False)[1:]),
    ],
    mutants=[
        Mutant("no ReLU mask", ("dz1 = dh * (z1 > 0)", "dz1 = dh"), mentions="ReLU mask"),
        Mutant("no 1/N", ("    dz /= n\n", "")),
        Mutant("dw2 transposed", ("dz.T @ h", "h.T @ dz")),
    ],
)


# ----------------------------------------------------------------------------- embedding
def _emb_fwd(indices, weight, **_):
    from ...ops.embedding import embedding

    return (embedding(T(indices), weight),)


def _emb_cases(rng):
    cases = []
    for i in range(4):
        v, d = int(rng.integers(3, 8)), int(rng.integers(1, 5))
        shape = tuple(int(s) for s in rng.integers(1, 5, size=int(rng.integers(1, 3))))
        if i == 0:
            shape = (int(rng.integers(3, 6)),)  # several lookups, one of them repeated
        idx = rng.integers(0, v, size=shape)
        idx.reshape(-1)[0] = idx.reshape(-1)[-1]  # at least one repeated index (when there are 2+)
        args = {"indices": idx, "weight": normal(rng, (v, d)), "grad_out": normal(rng, shape + (d,))}
        cases.append(grad_case("embedding_backward", args, _emb_fwd, ("weight",), ("grad_out",)))
    return cases


def _emb_buffered(c):
    w = np.zeros_like(c.args["weight"])
    g = c.args["grad_out"].reshape(-1, w.shape[1])
    w[c.args["indices"].reshape(-1)] += g  # buffered: a repeated index keeps only its last row
    return w


embedding_backward = Exercise(
    id="embedding-backward", title="Embedding lookup backward (repeated indices)", topic="rnns", difficulty=2,
    question="How are word embeddings learned by backpropagation?",
    statement=src("""
    An embedding lookup is out = weight[indices]: weight (V, D), indices any int shape S, out S + (D,).

    Implement embedding_backward(indices, weight, grad_out) -> dweight with NumPy: the gradient of the
    loss w.r.t. weight, shape (V, D), given grad_out = dL/dout. Indices repeat.
    """),
    starter=src("""
    import numpy as np


    def embedding_backward(indices, weight, grad_out):
        ...  # your code here
    """),
    hints=["Each occurrence of index i adds its grad_out row to dweight[i]; rows never looked up get 0.",
           "dw[idx] += g is buffered in NumPy: with repeated indices only one addition survives.",
           "Use np.add.at(dw, indices.reshape(-1), grad_out.reshape(-1, D))."],
    solution=src("""
    import numpy as np


    def embedding_backward(indices, weight, grad_out):
        dw = np.zeros_like(weight)
        np.add.at(dw, indices.reshape(-1), grad_out.reshape(-1, weight.shape[1]))
        return dw
    """),
    outputs={"embedding_backward": ("dweight",)}, cases=_emb_cases, reference=lambda c: autograd_reference(c)[0],
    mistakes=[Mistake("dw[idx] += g is buffered: a repeated index keeps only one of its gradients. "
                      "Accumulate with np.add.at", _emb_buffered)],
    mutants=[
        Mutant("buffered += loses repeats",
               ("np.add.at(dw, indices.reshape(-1), grad_out.reshape(-1, weight.shape[1]))",
                "dw[indices.reshape(-1)] += grad_out.reshape(-1, weight.shape[1])"),
               mentions="np.add.at"),
        Mutant("starts from the weights, not zeros", ("dw = np.zeros_like(weight)", "dw = weight.copy()")),
    ],
)


# ----------------------------------------------------------------------------- penalties
def _pen_fwd(w, l1, l2, **_):
    from ...regularization import l1_penalty, l2_penalty

    return (l1_penalty([w], l1) + l2_penalty([w], l2),)


def _pen_cases(rng):
    cases = []
    for _i in range(4):
        shape = tuple(int(s) for s in rng.integers(1, 6, size=int(rng.integers(1, 4))))
        args = {"w": away_from_zero(rng, shape), "l1": float(rng.uniform(0.01, 0.5)), "l2": float(rng.uniform(0.01, 1))}
        cases.append(grad_case("penalty", args, _pen_fwd, ("w",), (None,), n_values=1))
    w = away_from_zero(rng, (4, 3))
    w[::2, 1] = 0.0
    cases.append(Case("penalty", {"w": w, "l1": 0.1, "l2": 0.05}, note="some weights are exactly 0"))
    return cases


def _pen_ref(c):
    if c.fd is not None:
        return autograd_reference(c)
    w, l1, l2 = c.args["w"], c.args["l1"], c.args["l2"]
    return float(l1 * np.abs(w).sum() + l2 * (w * w).sum()), l1 * np.sign(w) + 2 * l2 * w


def _pen_alt(c, two=2.0, sign=np.sign):
    w, l1, l2 = c.args["w"], c.args["l1"], c.args["l2"]
    return float(l1 * np.abs(w).sum() + l2 * (w * w).sum()), l1 * sign(w) + two * l2 * w


l1_l2_penalty = Exercise(
    id="l1-l2-penalty", title="L1 and L2 penalties and their gradients", topic="overfitting", difficulty=1,
    question="How do L1 and L2 regularisation differ?",
    statement=src("""
    Implement penalty(w, l1, l2) -> (value, grad) with NumPy:
        value = l1 * sum(|w|) + l2 * sum(w ** 2)   (a float)
        grad  = d value / d w                        (shape of w)
    At w == 0 the gradient of |w| is 0 (PyTorch's convention).
    """),
    starter=src("""
    import numpy as np


    def penalty(w, l1, l2):
        ...  # your code here
    """),
    hints=["d|w|/dw = sign(w), which is 0 at 0; d(w^2)/dw = 2w.",
           "np.sign gives exactly that convention."],
    solution=src("""
    import numpy as np


    def penalty(w, l1, l2):
        value = l1 * np.abs(w).sum() + l2 * (w * w).sum()
        return float(value), l1 * np.sign(w) + 2 * l2 * w
    """),
    outputs={"penalty": ("value", "grad")}, cases=_pen_cases, reference=_pen_ref,
    mistakes=[
        Mistake("d(w^2)/dw = 2w: the L2 gradient misses the factor 2", lambda c: _pen_alt(c, two=1.0)),
        Mistake("at w == 0 the gradient of |w| is 0 (np.sign), not +1",
                lambda c: _pen_alt(c, sign=lambda w: np.where(w >= 0, 1.0, -1.0))),
    ],
    mutants=[
        Mutant("no factor 2 in the L2 gradient", ("2 * l2 * w", "l2 * w"), mentions="factor 2"),
        Mutant("+1 at w == 0", ("np.sign(w)", "np.where(w >= 0, 1.0, -1.0)"), mentions="at w == 0"),
        Mutant("squared sum instead of sum of squares", ("l2 * (w * w).sum()", "l2 * w.sum() ** 2")),
    ],
)

EXERCISES = [linear_backward, mlp_backprop, embedding_backward, l1_l2_penalty]
