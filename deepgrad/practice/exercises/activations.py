"""Activations and the softmax / cross-entropy pair, forward and backward."""

from __future__ import annotations

import numpy as np

from ..exercise import Case, Exercise, Mistake, Mutant
from ._util import T, arr, autograd_reference, away_from_zero, grad_case, normal, src


def _shapes(rng, k: int = 3):
    return [tuple(int(d) for d in rng.integers(1, 6, size=int(rng.integers(1, 5)))) for _ in range(k)]


def _unary_cases(rng, name: str, fwd, data=away_from_zero) -> list[Case]:
    cases = []
    for i, shape in enumerate(_shapes(rng, 4)):
        dtype = np.float32 if i % 2 else np.float64
        cases.append(Case(f"{name}_forward", {"x": normal(rng, shape, dtype, 3.0)}))
    for shape in _shapes(rng, 3):
        x = data(rng, shape)
        cases.append(grad_case(f"{name}_backward", {"x": x, "grad_out": normal(rng, shape)},
                               lambda x, **_: (fwd(x),), ("x",), ("grad_out",)))
    return cases


def _unary_reference(fwd):
    def ref(case: Case):
        if case.func.endswith("_forward"):
            return arr(fwd(T(case.args["x"])))
        return autograd_reference(case)[0]

    return ref


def _unary_statement(name: str, formula: str, extra: str = "") -> str:
    return src(f"""
    Implement {name} and its gradient with NumPy.

        {name}_forward(x)            -> y        y = {formula}, elementwise; same shape and dtype as x
        {name}_backward(x, grad_out) -> grad_x   dL/dx given dL/dy = grad_out (same shape as x)

    x is any shape, float32 or float64; keep the dtype (no silent float64).{extra}
    """)


def _relu_forward(x):
    from ... import functional as F

    return F.relu(x)


def _with_zeros(rng, name: str, fwd) -> list[Case]:
    """The unary cases plus a backward case where some x are exactly 0 (torch's convention at the kink)."""
    cases = _unary_cases(rng, name, fwd)
    x = away_from_zero(rng, (3, 5))
    x.reshape(-1)[::3] = 0.0
    cases.append(Case(f"{name}_backward", {"x": x, "grad_out": normal(rng, (3, 5))}, note="some x are exactly 0"))
    return cases


def _kink_reference(fwd):
    """deepgrad's gradient, also at exactly 0 (no finite differences there)."""
    def ref(case):
        if case.func.endswith("_backward") and case.fd is None:
            x = T(case.args["x"], grad=True)
            fwd(x).backward(T(case.args["grad_out"]))
            return arr(x.grad)
        return _unary_reference(fwd)(case)

    return ref


relu = Exercise(
    id="relu", title="ReLU forward and backward", topic="backprop", difficulty=1,
    question="Why does ReLU help against vanishing gradients?",
    statement=_unary_statement("relu", "max(x, 0)", "\nAt x == 0 use the gradient 0 (PyTorch's convention)."),
    starter=src("""
    import numpy as np


    def relu_forward(x):
        ...  # your code here


    def relu_backward(x, grad_out):
        ...  # your code here
    """),
    hints=["The derivative of max(x, 0) is 1 where x > 0 and 0 elsewhere.",
           "Multiply the upstream gradient by that 0/1 mask: the chain rule, elementwise.",
           "np.maximum(x, 0) keeps the dtype of x only if the 0 is a Python int or of x's dtype; "
           "grad_out * (x > 0) keeps grad_out's dtype."],
    solution=src("""
    import numpy as np


    def relu_forward(x):
        return np.maximum(x, 0)


    def relu_backward(x, grad_out):
        return grad_out * (x > 0)
    """),
    outputs={"relu_forward": ("y",), "relu_backward": ("grad_x",)},
    cases=lambda rng: _with_zeros(rng, "relu", _relu_forward), reference=_kink_reference(_relu_forward),
    mistakes=[
        Mistake("you pass the gradient where x == 0; ReLU's gradient at exactly 0 is 0 (use x > 0)",
                lambda c: c.args["grad_out"] * (c.args["x"] >= 0), lambda c: c.func == "relu_backward"),
        Mistake("you returned the mask alone: multiply it by grad_out (chain rule)",
                lambda c: (c.args["x"] > 0).astype(c.args["x"].dtype), lambda c: c.func == "relu_backward"),
    ],
    mutants=[
        Mutant("the gradient passes at x == 0", ("(x > 0)", "(x >= 0)"), mentions="gradient at exactly 0 is 0"),
        Mutant("the mask without the chain rule", ("return grad_out * (x > 0)", "return (x > 0).astype(x.dtype)"),
               mentions="multiply it by grad_out"),
        Mutant("a float64 result for float32 input", ("np.maximum(x, 0)", "np.maximum(x, 0).astype(np.float64)"),
               mentions="wrong dtype"),
    ],
)


def _leaky(x):
    from ... import functional as F

    return F.leaky_relu(x, 0.1)


leaky_relu = Exercise(
    id="leaky-relu", title="Leaky ReLU forward and backward (slope 0.1)", topic="backprop", difficulty=1,
    question="What is the dying-ReLU problem and how does Leaky ReLU avoid it?",
    statement=_unary_statement("leaky_relu", "x if x > 0 else 0.1 * x",
                               "\nAt x == 0 use the gradient 0.1 (PyTorch's convention)."),
    starter=src("""
    import numpy as np


    def leaky_relu_forward(x):
        ...  # your code here


    def leaky_relu_backward(x, grad_out):
        ...  # your code here
    """),
    hints=["The slope is 1 for x > 0 and 0.1 for x <= 0.",
           "np.where(x > 0, a, b) picks elementwise; make sure 0.1 does not upcast a float32 array "
           "(a Python float does not)."],
    solution=src("""
    import numpy as np


    def leaky_relu_forward(x):
        return np.where(x > 0, x, 0.1 * x)


    def leaky_relu_backward(x, grad_out):
        return np.where(x > 0, grad_out, 0.1 * grad_out)
    """),
    outputs={"leaky_relu_forward": ("y",), "leaky_relu_backward": ("grad_x",)},
    cases=lambda rng: _with_zeros(rng, "leaky_relu", _leaky), reference=_kink_reference(_leaky),
    mistakes=[Mistake("the 0.1 slope belongs to the negative side: y = x for x > 0, 0.1 x otherwise",
                      lambda c: np.where(c.args["x"] > 0, 0.1 * c.args["x"], c.args["x"]),
                      lambda c: c.func == "leaky_relu_forward")],
    mutants=[
        Mutant("the slope on the positive side", ("np.where(x > 0, x, 0.1 * x)", "np.where(x > 0, 0.1 * x, x)"),
               mentions="belongs to the negative side"),
        Mutant("slope 1 at x == 0 in backward", ("np.where(x > 0, grad_out", "np.where(x >= 0, grad_out")),
        Mutant("the negative side drops grad_out", ("0.1 * grad_out)", "0.1)")),
    ],
)


def _sigmoid(x):
    from ... import functional as F

    return F.sigmoid(x)


def _sig_cases(rng):
    cases = _unary_cases(rng, "sigmoid", _sigmoid, normal)
    cases.append(Case("sigmoid_forward", {"x": np.array([-800.0, -40.0, 0.0, 40.0, 800.0])},
                      note="extreme inputs"))
    return cases


sigmoid = Exercise(
    id="sigmoid", title="Sigmoid forward and backward", topic="backprop", difficulty=1,
    question="Why do sigmoid networks suffer from vanishing gradients?",
    statement=_unary_statement("sigmoid", "1 / (1 + exp(-x))",
                               "\nExtreme inputs (|x| in the hundreds) must give 0 or 1, never NaN."),
    starter=src("""
    import numpy as np


    def sigmoid_forward(x):
        ...  # your code here


    def sigmoid_backward(x, grad_out):
        ...  # your code here
    """),
    hints=["d sigmoid(x)/dx = s * (1 - s) with s = sigmoid(x): it is at most 0.25, which is why deep "
           "sigmoid stacks shrink gradients.",
           "Note that backward receives x, not the output: compute s from x first.",
           "For stability, evaluate exp only of non-positive numbers: for x < 0 use exp(x) / (1 + exp(x))."],
    solution=src("""
    import numpy as np


    def sigmoid_forward(x):
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


    def sigmoid_backward(x, grad_out):
        s = sigmoid_forward(x)
        return grad_out * s * (1 - s)
    """),
    outputs={"sigmoid_forward": ("y",), "sigmoid_backward": ("grad_x",)},
    cases=_sig_cases, reference=_unary_reference(_sigmoid),
    mistakes=[Mistake("you applied s * (1 - s) to x itself: backward receives x, compute s = sigmoid(x) first",
                      lambda c: c.args["grad_out"] * c.args["x"] * (1 - c.args["x"]),
                      lambda c: c.func == "sigmoid_backward")],
    mutants=[
        Mutant("s * (1 - s) of x itself",
               ("grad_out * s * (1 - s)", "grad_out * x * (1 - x)"),
               mentions="backward receives x"),
        Mutant("exp(x) / (1 + exp(x)) overflows",
               ("e = np.exp(-np.abs(x))\n    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))",
                "e = np.exp(x)\n    return e / (1 + e)"),
               mentions="NaN or inf"),
        Mutant("the derivative misses (1 - s)", ("grad_out * s * (1 - s)", "grad_out * s")),
    ],
)


def _tanh(x):
    from ... import functional as F

    return F.tanh(x)


tanh = Exercise(
    id="tanh", title="Tanh forward and backward", topic="backprop", difficulty=1,
    question="How do tanh and sigmoid compare as activations?",
    statement=_unary_statement("tanh", "tanh(x)"),
    starter=src("""
    import numpy as np


    def tanh_forward(x):
        ...  # your code here


    def tanh_backward(x, grad_out):
        ...  # your code here
    """),
    hints=["d tanh(x)/dx = 1 - tanh(x)^2.", "Backward receives x: compute t = tanh(x) first."],
    solution=src("""
    import numpy as np


    def tanh_forward(x):
        return np.tanh(x)


    def tanh_backward(x, grad_out):
        t = np.tanh(x)
        return grad_out * (1 - t * t)
    """),
    outputs={"tanh_forward": ("y",), "tanh_backward": ("grad_x",)},
    cases=lambda rng: _unary_cases(rng, "tanh", _tanh, normal), reference=_unary_reference(_tanh),
    mistakes=[Mistake("you used 1 - x^2: the derivative is 1 - tanh(x)^2, in terms of the output",
                      lambda c: c.args["grad_out"] * (1 - c.args["x"] ** 2), lambda c: c.func == "tanh_backward")],
    mutants=[
        Mutant("1 - x^2 instead of 1 - tanh^2", ("1 - t * t", "1 - x * x"), mentions="1 - tanh(x)^2"),
        Mutant("grad_out forgotten", ("return grad_out * (1 - t * t)", "return 1 - t * t")),
    ],
)


# ----------------------------------------------------------------------------- softmax
def _softmax_cases(rng):
    cases = []
    for i in range(5):
        shape = tuple(int(d) for d in rng.integers(2, 6, size=int(rng.integers(1, 4))))
        dim = int(rng.integers(-len(shape), len(shape)))
        dtype = np.float32 if i % 2 else np.float64
        cases.append(Case("softmax", {"x": normal(rng, shape, dtype, 2.0), "dim": dim}))
    shape = (int(rng.integers(1, 4)), int(rng.integers(3, 6)), int(rng.integers(2, 5)))
    cases.append(Case("softmax", {"x": normal(rng, shape, np.float32), "dim": 1}, note="a middle dim"))
    cases.append(Case("softmax", {"x": normal(rng, (3, 5), np.float64, 1.0) * 1000, "dim": -1},
                      note="large logits"))
    cases.append(Case("softmax", {"x": normal(rng, (2, 4), np.float32, 1.0) * 200, "dim": 1},
                      note="large logits"))
    rows = normal(rng, (3, int(rng.integers(2, 6)))) + np.array([[0.0], [-1500.0], [900.0]])
    cases.append(Case("softmax", {"x": rows, "dim": 1}, note="rows a thousand apart"))  # a global max underflows
    return cases


def _softmax_ref(case):
    from ... import functional as F

    return arr(F.softmax(T(case.args["x"]), case.args["dim"]))


def _softmax_no_shift(c):
    e = np.exp(c.args["x"])
    return e / e.sum(axis=c.args["dim"], keepdims=True)


softmax = Exercise(
    id="softmax", title="Numerically stable softmax along a dimension", topic="backprop", difficulty=1,
    question="Why subtract the maximum before exponentiating in softmax?",
    statement=src("""
    Implement softmax(x, dim) -> y with NumPy: y = exp(x) / sum(exp(x)) along axis `dim`
    (negative dims count from the end, as in PyTorch). Same shape and dtype as x.
    Hidden cases include logits in the hundreds and thousands: no NaN, no inf.
    """),
    starter=src("""
    import numpy as np


    def softmax(x, dim):
        ...  # your code here
    """),
    hints=["Reduce along `dim` with keepdims=True so the division broadcasts back.",
           "exp(1000) overflows. softmax(x) == softmax(x - c) for any c constant along dim.",
           "Subtract x.max(axis=dim, keepdims=True) first."],
    solution=src("""
    import numpy as np


    def softmax(x, dim):
        e = np.exp(x - x.max(axis=dim, keepdims=True))
        return e / e.sum(axis=dim, keepdims=True)
    """),
    outputs={"softmax": ("y",)}, cases=_softmax_cases, reference=_softmax_ref,
    mistakes=[
        Mistake("softmax normalises along `dim`, not along the last axis",
                lambda c: (lambda e: e / e.sum(-1, keepdims=True))(np.exp(c.args["x"] - c.args["x"].max(-1,
                                                                                                       keepdims=True))),
                lambda c: c.args["dim"] % c.args["x"].ndim != c.args["x"].ndim - 1),
        Mistake("exp overflows without the max shift: subtract x.max(axis=dim, keepdims=True) first",
                _softmax_no_shift, lambda c: bool(np.abs(c.args["x"]).max() > 80)),
    ],
    mutants=[
        Mutant("no max shift", ("np.exp(x - x.max(axis=dim, keepdims=True))", "np.exp(x)"), mentions="subtract x.max"),
        Mutant("normalised along the last axis", ("x.max(axis=dim, keepdims=True)", "x.max(axis=-1, keepdims=True)",
                                                 "e.sum(axis=dim, keepdims=True)", "e.sum(axis=-1, keepdims=True)"),
               mentions="not along the last axis"),
        Mutant("the max over the whole array", ("x.max(axis=dim, keepdims=True)", "x.max()")),
    ],
)


def _ce_forward(logits, target, **_):
    from ...nn import functional as F

    return (F.cross_entropy(logits, T(target)),)


def _ce_cases(rng):
    cases = []
    for i in range(5):
        n, k = [1, 3][i] if i < 2 else int(rng.integers(1, 7)), int(rng.integers(2, 7))
        scale = 30.0 if i == 4 else 2.0
        args = {"logits": normal(rng, (n, k), np.float64, scale), "target": rng.integers(0, k, size=n)}
        cases.append(grad_case("cross_entropy", args, _ce_forward, ("logits",), (None,), n_values=1,
                               note="large logits" if i == 4 else ""))
    return cases


def _ce_alt(c, mean=True, onehot=True):
    x, y = c.args["logits"], c.args["target"]
    n = len(y)
    z = x - x.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    p = np.exp(logp)
    oh = np.eye(x.shape[1])[y]
    loss = -logp[np.arange(n), y].sum() / (n if mean else 1)
    g = (p - oh * onehot) / (n if mean else 1)
    return float(loss), g


softmax_ce = Exercise(
    id="softmax-cross-entropy", title="Softmax + cross-entropy: loss and gradient", topic="backprop", difficulty=2,
    question="What is the gradient of softmax cross-entropy with respect to the logits?",
    statement=src("""
    Implement cross_entropy(logits, target) -> (loss, grad_logits) with NumPy.

        logits: (N, K) float64 scores,  target: (N,) int64 class indices
        loss = mean over the batch of -log softmax(logits)[n, target[n]]   (a float)
        grad_logits = d loss / d logits, shape (N, K)

    Some hidden logits are large (tens): compute log-softmax stably.
    """),
    starter=src("""
    import numpy as np


    def cross_entropy(logits, target):
        ...  # your code here
    """),
    hints=["log softmax(z) = z - log(sum(exp(z))); shift by the row max before exp.",
           "The gradient is (softmax(z) - onehot(target)) for one sample.",
           "The loss is a mean over N samples: divide the gradient by N too."],
    solution=src("""
    import numpy as np


    def cross_entropy(logits, target):
        n = logits.shape[0]
        z = logits - logits.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        loss = -logp[np.arange(n), target].mean()
        grad = np.exp(logp)
        grad[np.arange(n), target] -= 1
        return float(loss), grad / n
    """),
    outputs={"cross_entropy": ("loss", "grad_logits")}, cases=_ce_cases, reference=autograd_reference,
    mistakes=[
        Mistake("you summed over the batch: the loss is a mean, so the loss and gradient carry a 1/N",
                lambda c: _ce_alt(c, mean=False)),
        Mistake("the gradient is softmax - onehot(target): you forgot to subtract the one-hot",
                lambda c: _ce_alt(c, onehot=False)),
        Mistake("your loss is right but the gradient misses the 1/N of the mean",
                lambda c: (_ce_alt(c)[0], _ce_alt(c, mean=False)[1])),
    ],
    mutants=[
        Mutant("a sum, not a mean",
               ("logp[np.arange(n), target].mean()", "logp[np.arange(n), target].sum()",
                "grad / n", "grad"),
               mentions="you summed over the batch"),
        Mutant("no one-hot subtracted", ("    grad[np.arange(n), target] -= 1\n", ""), mentions="subtract the one-hot"),
        Mutant("the gradient misses 1/N", ("grad / n", "grad"), mentions="misses the 1/N"),
    ],
)

EXERCISES = [relu, leaky_relu, sigmoid, tanh, softmax, softmax_ce]
