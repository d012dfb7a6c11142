"""Question 3: what maths do you need? Linear algebra, calculus (the chain rule), probability — made concrete.

A two-layer network (x -> tanh(x W1 + b1) -> h W2 + b2 -> softmax cross-entropy) on a batch of digits is
computed twice: by hand in NumPy, every derivative written out with the chain rule, and by deepgrad's
autograd. The two must agree to floating-point precision. Then a small gradient step checks the calculus:
the loss falls by lr * |grad|^2, as the first-order Taylor expansion predicts.
"""

from __future__ import annotations

import numpy as np

import deepgrad as dg
from deepgrad import nn

from .common import digits

NUMBER = 3
QUESTION = "What are the prerequisites for deep learning?"
ANSWER = (
    "Linear algebra (vectors, matrices, matrix products and their shapes: a layer is x W + b), calculus "
    "(derivatives, partial derivatives and above all the chain rule, which is what backpropagation applies "
    "layer by layer; gradients and gradient descent), probability and statistics (softmax outputs as class "
    "probabilities, cross-entropy as negative log-likelihood, expectations, variance, overfitting vs "
    "generalisation), plus programming in Python with NumPy. Knowing classic machine learning (loss functions, "
    "regularisation, train/validation/test splits) makes the rest much easier."
)

HIDDEN = 16


def numpy_forward_backward(x, y, w1, b1, w2, b2) -> dict:
    """The network by hand: forward pass, loss, and every gradient from the chain rule (shapes in comments)."""
    n = len(x)
    # forward                                   x (N, D)  w1 (D, H)  w2 (H, C)
    z1 = x @ w1 + b1                            # (N, H)  linear algebra: one matrix product per layer
    h = np.tanh(z1)                             # (N, H)  the non-linearity
    logits = h @ w2 + b2                        # (N, C)
    shifted = logits - logits.max(axis=1, keepdims=True)  # softmax is shift-invariant; this avoids overflow
    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)  # probability: softmax
    loss = -np.log(p[np.arange(n), y]).mean()   # cross-entropy = mean negative log-likelihood
    # backward: the chain rule, from the loss back to each parameter
    d_logits = p.copy()
    d_logits[np.arange(n), y] -= 1.0            # dL/dlogits = (softmax - one_hot) / N
    d_logits /= n
    d_w2 = h.T @ d_logits                       # (H, C)  dlogits/dw2 contracts over the batch
    d_b2 = d_logits.sum(axis=0)                 # (C,)    the bias was broadcast over the batch: sum it back
    d_h = d_logits @ w2.T                       # (N, H)
    d_z1 = d_h * (1.0 - h ** 2)                 # tanh'(z) = 1 - tanh(z)^2
    d_w1 = x.T @ d_z1                           # (D, H)
    d_b1 = d_z1.sum(axis=0)                     # (H,)
    return {"logits": logits, "loss": loss, "w1": d_w1, "b1": d_b1, "w2": d_w2, "b2": d_b2}


def deepgrad_forward_backward(x, y, w1, b1, w2, b2) -> dict:
    """The same network with deepgrad: write only the forward pass; backward() does the chain rule."""
    params = {k: dg.tensor(v, requires_grad=True) for k, v in (("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2))}
    h = dg.tanh(dg.tensor(x) @ params["w1"] + params["b1"])
    logits = h @ params["w2"] + params["b2"]
    loss = nn.functional.cross_entropy(logits, dg.tensor(y))
    loss.backward()
    out = {k: p.grad.numpy() for k, p in params.items()}
    return {"logits": logits.detach().numpy(), "loss": float(loss.item()), **out}


def max_rel_diff(a, b) -> float:
    """max |a - b| relative to max |a| (0 when both are 0)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-300))


def run(ctx) -> None:
    data = digits(seed=ctx.seed, flatten=True)
    batch = ctx.pick(64, 256)
    rng = np.random.default_rng(ctx.seed)
    x64 = data.x_train[:batch].astype(np.float64)
    y = data.y_train[:batch]
    d, c = x64.shape[1], 10
    params64 = [rng.normal(0, 1 / np.sqrt(d), (d, HIDDEN)), np.zeros(HIDDEN),
                rng.normal(0, 1 / np.sqrt(HIDDEN), (HIDDEN, c)), np.zeros(c)]
    ctx.say(f"network: {d} pixels -> {HIDDEN} tanh units -> {c} logits -> softmax cross-entropy; "
            f"a batch of {batch} digits")

    rows, worst = [], {}
    for dtype in (np.float64, np.float32):
        args = [x64.astype(dtype), y] + [p.astype(dtype) for p in params64]
        by_hand, by_autograd = numpy_forward_backward(*args), deepgrad_forward_backward(*args)
        name = np.dtype(dtype).name
        for key in ("logits", "loss", "w1", "b1", "w2", "b2"):
            err = max_rel_diff(by_hand[key], by_autograd[key])
            worst[name] = max(worst.get(name, 0.0), err)
            label = key if key in ("logits", "loss") else f"dL/d{key}"
            rows.append([name, label, str(np.shape(by_hand[key])), float(np.abs(by_hand[key]).max()), err])
    ctx.table("Hand-written NumPy vs deepgrad autograd", ["dtype", "quantity", "shape", "max |value|",
                                                           "max relative difference"], rows)
    ctx.claim("forward and backward by hand (NumPy, chain rule) match deepgrad's autograd: max relative difference "
              "<= 1e-12 in float64 and <= 1e-5 in float32", worst["float64"] <= 1e-12 and worst["float32"] <= 1e-5,
              f"float64 {worst['float64']:.1e}, float32 {worst['float32']:.1e}")

    # probability: an untrained network's softmax is close to uniform, so the loss starts near ln(10)
    start = numpy_forward_backward(x64, y, *params64)
    ctx.claim("cross-entropy is a negative log-likelihood: at initialisation the loss is within 0.5 of ln(10), "
              "the loss of a uniform guess over 10 classes", abs(start["loss"] - np.log(10)) <= 0.5,
              f"loss {start['loss']:.3f} vs ln(10) = {np.log(10):.3f}")

    # calculus: a small step against the gradient lowers the loss by about lr * |g|^2 (first-order Taylor)
    lr = 1e-3
    grads = [start[k] for k in ("w1", "b1", "w2", "b2")]
    g2 = sum(float((g * g).sum()) for g in grads)
    stepped = [p - lr * g for p, g in zip(params64, grads)]
    actual = start["loss"] - numpy_forward_backward(x64, y, *stepped)["loss"]
    predicted = lr * g2
    ctx.say(f"gradient step lr={lr}: loss {start['loss']:.6f} -> {start['loss'] - actual:.6f}; "
            f"decrease {actual:.3e}, Taylor prediction lr*|g|^2 = {predicted:.3e}")
    ctx.claim("gradient descent follows the calculus: a small step lowers the loss by lr*|g|^2 to within 5%",
              actual > 0 and abs(actual - predicted) <= 0.05 * predicted,
              f"actual {actual:.4e} vs predicted {predicted:.4e} ({actual / predicted:.3f}x)")
