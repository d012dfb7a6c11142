"""Random layers, judged statistically: dropout (train / eval), its backward, He initialisation.

A random layer has no single right output: the judge checks the properties that define it (every
element is 0 or x / (1 - p); the keep rate is 1 - p within five binomial standard deviations; eval
mode is the identity; a fresh mask per call; the sample std of an init within its sampling error).
"""

from __future__ import annotations

import math

import numpy as np

from ..exercise import RNG, Case, Exercise, Mistake, Mutant, compare
from ._util import T, arr, away_from_zero, normal, src


def _array_problems(name: str, got, like: np.ndarray) -> list[str]:
    if not isinstance(got, np.ndarray):
        return [f"{name}: expected a NumPy array of shape {like.shape}, got {type(got).__name__}"]
    if got.shape != like.shape:
        return [f"{name}: wrong shape {got.shape}, expected {like.shape}"]
    if got.dtype != like.dtype:
        return [f"{name}: wrong dtype {got.dtype}, expected {like.dtype}"]
    return []


# ----------------------------------------------------------------------------- dropout forward
def _dropout_cases(rng):
    shared: dict = {"masks": []}
    cases = []
    x = away_from_zero(rng, (30, 70), np.float32)
    for _ in range(3):  # the same input three times: the masks must be fresh and independent across calls
        cases.append(Case("dropout", {"x": x.copy(), "p": 0.5, "training": True, "rng": RNG}, meta={"calls": shared},
                          note="the same input again"))
    for i in range(3):
        p = float(np.round(rng.uniform(0.1, 0.3) if i == 0 else rng.uniform(0.1, 0.8), 2))  # 0: far from 1/2
        dtype = np.float64 if i % 2 else np.float32
        cases.append(Case("dropout", {"x": away_from_zero(rng, (int(rng.integers(2000, 4000)),), dtype), "p": p,
                                      "training": True, "rng": RNG}))
    cases.append(Case("dropout", {"x": away_from_zero(rng, (int(rng.integers(1, 4)), 3), np.float32), "p": 0.25,
                                  "training": True, "rng": RNG}, note="a tiny input"))
    cases.append(Case("dropout", {"x": away_from_zero(rng, (8, 9), np.float32), "p": 0.3, "training": False,
                                  "rng": RNG}, note="eval mode"))
    cases.append(Case("dropout", {"x": away_from_zero(rng, (5, 7)), "p": 0.0, "training": True, "rng": RNG},
                      note="p = 0"))
    return cases


def _within(name: str, value: float, expected: float, sd: float, what: str) -> list[str]:
    """A statistic five standard deviations (plus a little slack) from what independent draws give."""
    if abs(value - expected) <= 5 * sd + 0.005:
        return []
    return [f"y: {name} is {value:.3f}; independent random draws give {expected:.3f} +- {5 * sd:.3f} "
            f"(five standard deviations): {what}"]


def _independence(kept: np.ndarray, x: np.ndarray, p: float, previous: list) -> list[str]:
    """Statistical tests of the mask: within the call (no pattern along the array, no link to the values of x)
    and across calls (fresh draws each call, independent of the last ones)."""
    n, q = kept.size, p * p + (1 - p) * (1 - p)  # q: the chance two independent draws agree
    flat = kept.reshape(-1)
    same = float((flat[1:] == flat[:-1]).mean())
    problems = _within("the fraction of neighbouring elements with the same fate", same, q,
                       math.sqrt(q * (1 - q) / (n - 1)), "the mask has a pattern; draw it from rng")
    mag = np.abs(x.astype(np.float64)).reshape(-1)
    if 0 < flat.sum() < n:
        diff = float(mag[flat].mean() - mag[~flat].mean())
        se = float(mag.std()) * math.sqrt(1 / flat.sum() + 1 / (~flat).sum())
        problems += _within("the mean |x| of kept minus dropped elements", diff, 0.0, se,
                            "which elements are dropped depends on the values of x")
    for old in previous:
        if np.array_equal(old, kept):
            return problems + ["y: two calls on the same input dropped exactly the same elements: draw a fresh "
                               "mask each call (a fixed seed inside the function?)"]
        problems += _within("the agreement of this call's mask with an earlier call's", float((old == kept).mean()),
                            q, math.sqrt(q * (1 - q) / n), "masks must be independent across calls")
    return problems


def _judge_dropout(case: Case, got) -> list[str]:
    x, p, training = case.args["x"], case.args["p"], case.args["training"]
    problems = _array_problems("y", got, x)
    if problems:
        return problems
    if not training or p == 0:
        if np.array_equal(got, x):
            return []
        ratio = float(np.median(got[x != 0] / x[x != 0]))
        what = "in eval mode" if not training else "with p = 0"
        msg = f"y: {what} dropout must return x unchanged"
        if not training and abs(ratio - (1 - p)) < 1e-3:
            msg += ("; you scaled by (1 - p) at test time: with inverted dropout the scaling happens in training, "
                    "and eval is the identity")
        elif (got == 0).any():
            msg += "; you zeroed elements: no dropping outside training"
        return [msg]
    ratio = got.astype(np.float64) / x.astype(np.float64)
    kept = ratio != 0
    scale = 1.0 / (1.0 - p)
    rtol = 1e-5 if x.dtype == np.float32 else 1e-12
    ok_scale = np.isclose(ratio, scale, rtol=rtol * 10, atol=0)
    if not (ok_scale | ~kept).all():
        r = float(np.median(ratio[kept])) if kept.any() else float("nan")
        msg = f"y: kept elements must equal x / (1 - p) = x * {scale:.6g}; yours are x * {r:.6g} (median)"
        if abs(r - 1) < 1e-6:
            msg += "\n    likely mistake: missing 1/(1 - p) scaling (inverted dropout keeps the expected value)"
        elif abs(r - (1 - p)) < 1e-6:
            msg += "\n    likely mistake: you multiplied by (1 - p): divide by it"
        elif p and abs(r - 1 / p) < 1e-6:
            msg += "\n    likely mistake: you divided by p: divide by the KEEP probability 1 - p"
        problems.append(msg)
    n = x.size
    keep_rate = kept.mean()
    sd = math.sqrt(p * (1 - p) / n)
    if abs(keep_rate - (1 - p)) > 5 * sd:
        msg = (f"y: you kept {keep_rate:.3f} of the elements; with p = {p} the keep rate must be 1 - p = {1 - p:.3f} "
               f"(allowed: +-{5 * sd:.3f}, five binomial standard deviations over {n} elements)")
        if abs(keep_rate - p) <= 5 * sd:
            msg += "\n    likely mistake: p is the probability of DROPPING an element, not of keeping it"
        problems.append(msg)
    calls = case.meta.get("calls")
    if n >= 500 and not problems:
        problems += _independence(kept, x, p, calls["masks"] if calls is not None else [])
    if calls is not None:
        calls["masks"].append(kept)
    return problems


dropout = Exercise(
    id="dropout", title="Dropout, training and evaluation (inverted dropout)", topic="overfitting", difficulty=1,
    question="How does dropout regularise a network, and what changes at test time?",
    statement=src("""
    Implement dropout(x, p, training, rng) -> y with NumPy, as torch.nn.functional.dropout:
    in training, zero each element independently with probability p and scale the kept ones by
    1 / (1 - p) (inverted dropout); in evaluation (training=False) return x unchanged.
    rng is a numpy.random.Generator to draw from. Keep x's shape and dtype.
    Judged statistically: any valid random mask passes, a wrong keep rate or scale does not.
    """),
    starter=src("""
    import numpy as np


    def dropout(x, p, training, rng):
        ...  # your code here
    """),
    hints=["p is the probability of dropping: keep where rng.random(x.shape) >= p.",
           "Scale the kept elements by 1 / (1 - p) so the expected output equals x; then nothing changes at test "
           "time.", "Build the scale in x's dtype: (mask / (1 - p)).astype(x.dtype), or multiply in two steps."],
    solution=src("""
    import numpy as np


    def dropout(x, p, training, rng):
        if not training or p == 0:
            return x
        keep = rng.random(x.shape) >= p
        return x * keep.astype(x.dtype) / x.dtype.type(1 - p)
    """),
    outputs={"dropout": ("y",)}, cases=_dropout_cases, judge_case=_judge_dropout,
    mutants=[
        Mutant("no 1/(1 - p) scaling", (" / x.dtype.type(1 - p)", ""), mentions="missing 1/(1 - p) scaling"),
        Mutant("p taken as the keep probability", ("rng.random(x.shape) >= p", "rng.random(x.shape) < p")),
        Mutant("a fixed seed: the same mask every call",
               ("rng.random(x.shape) >= p", "np.random.default_rng(0).random(x.shape) >= p"),
               mentions="exactly the same elements"),
        Mutant("a deterministic pattern with the right keep rate",
               ("rng.random(x.shape) >= p", "(np.arange(x.size).reshape(x.shape) * 0.6180339887 % 1.0) >= p"),
               mentions="the mask has a pattern"),
        Mutant("a mask computed from x", ("rng.random(x.shape) >= p", "(np.abs(x) * 1e4 % 1.0) >= p")),
    ],
)


# ----------------------------------------------------------------------------- dropout backward
def _dbwd_cases(rng):
    cases = []
    for i in range(4):
        shape = tuple(int(v) for v in rng.integers(1, 8, size=int(rng.integers(1, 4))))
        p = float(np.round(rng.uniform(0.1, 0.9), 2))
        dtype = np.float32 if i % 2 else np.float64
        cases.append(Case("dropout_backward", {"grad_out": normal(rng, shape, dtype), "mask": rng.random(shape) >= p,
                                               "p": p}))
    return cases


def _dbwd_ref(c):
    from ...ops.dropout import Noise

    a = c.args
    g = a["grad_out"]
    x = T(np.zeros_like(g), grad=True)
    Noise.apply(x, noise=a["mask"].astype(g.dtype) * g.dtype.type(1 / (1 - a["p"])), shift=None).backward(T(g))
    return arr(x.grad)


dropout_backward = Exercise(
    id="dropout-backward", title="Dropout backward", topic="overfitting", difficulty=1,
    question="How does the gradient flow through dropout?",
    statement=src("""
    In training, dropout computed y = x * mask / (1 - p) with a boolean keep-mask. Implement
    dropout_backward(grad_out, mask, p) -> grad_x with NumPy (shape and dtype of grad_out).
    """),
    starter=src("""
    import numpy as np


    def dropout_backward(grad_out, mask, p):
        ...  # your code here
    """),
    hints=["y is linear in x: the gradient is the same mask and the same scale as the forward."],
    solution=src("""
    import numpy as np


    def dropout_backward(grad_out, mask, p):
        return grad_out * mask / grad_out.dtype.type(1 - p)
    """),
    outputs={"dropout_backward": ("grad_x",)}, cases=_dbwd_cases, reference=_dbwd_ref,
    mistakes=[Mistake("missing 1/(1 - p) scaling: the backward scales exactly like the forward",
                      lambda c: c.args["grad_out"] * c.args["mask"])],
    mutants=[
        Mutant("no 1/(1 - p) scaling", ("grad_out * mask / grad_out.dtype.type(1 - p)", "grad_out * mask"),
               mentions="missing 1/(1 - p) scaling"),
        Mutant("divides by p", ("grad_out.dtype.type(1 - p)", "grad_out.dtype.type(p)")),
        Mutant("the mask inverted", ("grad_out * mask", "grad_out * ~mask")),
    ],
)


# ----------------------------------------------------------------------------- He initialisation
def _init_cases(rng):
    cases, shared = [], {}
    shapes = [(int(rng.integers(60, 120)), int(rng.integers(130, 260))),
              (int(rng.integers(8, 16)), int(rng.integers(24, 40)), 3, 3),
              (int(rng.integers(120, 200)), int(rng.integers(30, 60)))]
    shapes.insert(1, shapes[0])  # the same shape twice: two draws must differ
    for i, shape in enumerate(shapes):
        cases.append(Case("kaiming_normal", {"shape": shape, "rng": RNG}, meta={"pair": shared} if i < 2 else {}))
    return cases


def _fans(shape):
    from ...nn import init

    return init._calculate_fan_in_and_fan_out(T(np.empty(shape, np.float32)))


def _judge_init(case: Case, got) -> list[str]:
    from ...nn import init

    shape = case.args["shape"]
    problems = _array_problems("w", got, np.empty(shape, np.float32))
    if problems:
        return problems
    fan_in, fan_out = _fans(shape)
    target = init.calculate_gain("relu") / math.sqrt(fan_in)
    w = got.astype(np.float64)
    n = w.size
    s, m = float(w.std()), float(w.mean())
    if abs(s / target - 1) > 5 / math.sqrt(2 * n) + 0.01:
        msg = f"w: sample std {s:.5g}, expected sqrt(2 / fan_in) = {target:.5g} (fan_in = {fan_in})"
        known = {"you used fan_out: He init (mode='fan_in') divides by the number of inputs per unit":
                 math.sqrt(2 / fan_out),
                 "you drew with std = 2 / fan_in: that is the variance, take its square root": 2 / fan_in,
                 "the ReLU gain sqrt(2) is missing: std = sqrt(2 / fan_in)": 1 / math.sqrt(fan_in),
                 "that is Xavier/Glorot (sqrt(2 / (fan_in + fan_out))): He init uses fan_in only":
                 math.sqrt(2 / (fan_in + fan_out))}
        for text, std in known.items():
            if abs(s / std - 1) < 5 / math.sqrt(2 * n) + 0.01:
                msg += "\n    likely mistake: " + text
                break
        problems.append(msg)
    if abs(m) > 5 * target / math.sqrt(n):
        problems.append(f"w: sample mean {m:.4g} is not 0 (allowed +-{5 * target / math.sqrt(n):.3g})")
    kurt = float(((w - m) ** 4).mean() / max(s, 1e-300) ** 4)
    if abs(kurt - 3) > 5 * math.sqrt(24 / n) + 0.05:
        msg = f"w: kurtosis {kurt:.3f}, a normal distribution has 3"
        if abs(kurt - 1.8) < 0.2:
            msg += "\n    likely mistake: you drew from a uniform distribution; kaiming_normal draws from a normal"
        problems.append(msg)
    pair = case.meta.get("pair")
    if pair is not None and not problems:
        if "w" in pair and np.array_equal(pair["w"], got):
            problems.append("w: two calls returned identical weights: draw from rng (no fixed seed)")
        pair["w"] = got
    return problems


kaiming_init = Exercise(
    id="kaiming-init", title="He (Kaiming) normal initialisation", topic="backprop", difficulty=1,
    question="Why does weight initialisation matter for vanishing and exploding gradients?",
    statement=src("""
    Implement kaiming_normal(shape, rng) -> w with NumPy, as
    torch.nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu"): w float32 of the given shape
    ((out, in) or (out, in, kh, kw)) drawn from N(0, std^2) with std = sqrt(2 / fan_in), where
    fan_in = in * kh * kw. rng is a numpy.random.Generator. Judged statistically.
    """),
    starter=src("""
    import numpy as np


    def kaiming_normal(shape, rng):
        ...  # your code here
    """),
    hints=["fan_in is the number of inputs feeding one output unit: shape[1] * prod(shape[2:]).",
           "The ReLU zeroes half the signal; the gain sqrt(2) keeps the activations' variance constant.",
           "rng.standard_normal(shape) * std, cast to float32."],
    solution=src("""
    import math

    import numpy as np


    def kaiming_normal(shape, rng):
        fan_in = shape[1] * math.prod(shape[2:])
        return (rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)).astype(np.float32)
    """),
    outputs={"kaiming_normal": ("w",)}, cases=_init_cases, judge_case=_judge_init,
    mutants=[
        Mutant("fan_out instead of fan_in",
               ("fan_in = shape[1] * math.prod(shape[2:])", "fan_in = shape[0] * math.prod(shape[2:])"),
               mentions="fan_out"),
        Mutant("a uniform distribution",
               ("rng.standard_normal(shape)", "rng.uniform(-math.sqrt(3), math.sqrt(3), shape)"),
               mentions="uniform distribution"),
        Mutant("the variance as the std", ("math.sqrt(2.0 / fan_in)", "(2.0 / fan_in)")),
        Mutant("a fixed seed", ("rng.standard_normal(shape)", "np.random.default_rng(0).standard_normal(shape)"),
               mentions="identical weights"),
    ],
)

EXERCISES = [dropout, dropout_backward, kaiming_init]
__all__ = ["EXERCISES", "compare"]
