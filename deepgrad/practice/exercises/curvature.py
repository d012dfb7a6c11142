"""Curvature: a Hessian-vector product by double backprop, the interview answer to "how would you compute Hv
without the Hessian?". The reference is deepgrad's ``autograd.functional.hvp`` (a backward pass recorded with
``create_graph=True``, then differentiated again); the judge also checks the candidate's Hv against float64
finite differences of the gradient (``<Hv, u> = d/dh <grad(w + h u), v>``, H being symmetric)."""

from __future__ import annotations

import numpy as np

from ..exercise import FD, Case, Exercise, Mistake, Mutant
from ._util import T, arr, normal, src


def _loss(x, y, w):
    """The exercise's loss on deepgrad Tensors: 0.5 * mean((tanh(x @ w) - y)^2)."""
    return (((x @ w).tanh() - y) ** 2).mean() * 0.5


def _gradient(x, y, w, v=None):
    """deepgrad's first-order gradient of the loss at ``w``, as a float64 array: the function whose finite
    differences along random directions check the candidate's Hv (the judge runs it under no_grad)."""
    from ...autograd import enable_grad, grad

    with enable_grad():
        wt = T(w, grad=True)
        (g,) = grad(_loss(T(x), T(y), wt), wt)
    return (arr(g),)


def _reference(c: Case) -> np.ndarray:
    from ...autograd.functional import hvp

    a = c.args
    _, hv = hvp(lambda w: _loss(T(a["x"]), T(a["y"]), w), T(a["w"]), T(a["v"]))
    return arr(hv)


def _cases(rng):
    cases = []
    for i in range(7):
        n, d = (1, 1) if i == 0 else (int(rng.integers(2, 9)), int(rng.integers(1, 6)))
        scale = 1.5 if i % 2 else 0.5  # large weights put tanh in its curved, saturating part
        args = {"x": normal(rng, (n, d)), "y": normal(rng, (n,)), "w": normal(rng, (d,), scale=scale),
                "v": normal(rng, (d,))}
        cases.append(Case("hvp", args, note="one sample, one weight" if i == 0 else "",
                          fd=FD(_gradient, ("w",), ("v",))))
    return cases


def _parts(c: Case):
    a = c.args
    t = np.tanh(a["x"] @ a["w"])
    return a["x"], t, 1 - t * t, a["x"] @ a["v"], t - a["y"], len(a["y"])


def _gauss_newton(c: Case) -> np.ndarray:
    x, t, dt, u, r, n = _parts(c)
    return x.T @ (dt * dt * u) / n


def _sign_flipped(c: Case) -> np.ndarray:
    x, t, dt, u, r, n = _parts(c)
    return x.T @ (dt * u * (dt + 2 * t * r)) / n


hessian_vector_product = Exercise(
    id="hessian-vector-product", title="Hessian-vector product by double backprop (no Hessian)",
    topic="backprop", difficulty=3, question="How would you compute Hv without forming the Hessian H?",
    statement=src("""
    For the loss of a one-layer tanh regression,

        L(w) = 0.5 * mean_i (tanh(x_i . w) - y_i)^2        x (n, d), y (n,), w (d,)

    implement hvp(x, y, w, v) -> Hv with NumPy: the product of the Hessian of L at w with the vector v (d,),
    WITHOUT building the d x d Hessian. Double backprop: Hv is the gradient of the scalar g(w) . v, where
    g = dL/dw is the ordinary backward pass; differentiate each step of g along v (forward mode on the
    backward pass) or by hand.

    float64 throughout; returns an array of shape (d,). Checked against deepgrad's autograd (create_graph=True,
    then a second backward) and against float64 finite differences of the gradient along random directions.
    """),
    starter=src("""
    import numpy as np


    def hvp(x, y, w, v):
        ...  # your code here
    """),
    hints=["Write the gradient first: with t = tanh(x @ w) and r = t - y, g = x.T @ (r * (1 - t**2)) / n.",
           "Move w by epsilon * v: z = x @ w moves by u = x @ v, t by (1 - t**2) * u, and r by the same amount. "
           "Differentiate the product r * (1 - t**2) with the product rule.",
           "d(1 - t**2) = -2 t dt, so d[r (1 - t**2)] = (1 - t**2) u [(1 - t**2) - 2 t r]. Dropping the -2 t r "
           "term gives the Gauss-Newton product, not the Hessian's."],
    solution=src("""
    import numpy as np


    def hvp(x, y, w, v):
        n = len(y)
        t = np.tanh(x @ w)
        r = t - y                      # the residual
        dt = 1 - t * t                 # tanh'(z)
        u = x @ v                      # how z = x @ w moves along v
        # the gradient is x.T @ (r * dt) / n; its derivative along v, by the product rule:
        d_r, d_dt = dt * u, -2 * t * dt * u
        return x.T @ (d_r * dt + r * d_dt) / n
    """),
    outputs={"hvp": ("hv",)}, cases=_cases, reference=_reference,
    mistakes=[
        Mistake("you returned the Gauss-Newton product: the product rule also differentiates tanh'(z) = 1 - t^2 "
                "(the -2 t r (1 - t^2) u term), which is the Hessian's curvature of the tanh", _gauss_newton),
        Mistake("d(1 - t^2) = -2 t dt: the sign of the second term is flipped", _sign_flipped),
        Mistake("the loss is a mean over the n samples: Hv carries its 1/n",
                lambda c: _reference(c) * len(c.args["y"]), lambda c: len(c.args["y"]) > 1),
        Mistake("that is the gradient g(w), not Hv: differentiate g . v once more",
                lambda c: _gradient(c.args["x"], c.args["y"], c.args["w"])[0]),
    ],
    mutants=[
        Mutant("Gauss-Newton: the derivative of tanh' dropped", ("d_r * dt + r * d_dt", "d_r * dt"),
               mentions="Gauss-Newton"),
        Mutant("the sign of d(1 - t^2) flipped", ("dt * u, -2 * t * dt * u", "dt * u, 2 * t * dt * u"),
               mentions="sign of the second term"),
        Mutant("a sum instead of the mean", ("return x.T @ (d_r * dt + r * d_dt) / n",
                                             "return x.T @ (d_r * dt + r * d_dt)"), mentions="1/n"),
        Mutant("the gradient returned instead of Hv", ("return x.T @ (d_r * dt + r * d_dt) / n",
                                                       "return x.T @ (r * dt) / n"), mentions="not Hv"),
        Mutant("z moved by v itself, not by x @ v", ("u = x @ v ", "u = v.sum() ")),
        Mutant("tanh'(z) written as 1 - z^2", ("dt = 1 - t * t ", "dt = 1 - (x @ w) ** 2 ")),
    ],
)

EXERCISES = [hessian_vector_product]
