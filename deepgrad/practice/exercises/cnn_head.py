"""The head of a CNN: global average pooling and flatten, forward and backward."""

from __future__ import annotations

import numpy as np

from ..exercise import Case, Exercise, Mistake, Mutant
from ._util import T, arr, autograd_reference, grad_case, normal, src


# ----------------------------------------------------------------------------- global average pool
def _gap_fwd(x, **_):
    from ...nn import functional as F

    return (F.adaptive_avg_pool2d(x, 1).reshape(x.shape[0], x.shape[1]),)


def _gap_cases(rng):
    cases = []
    for i in range(3):
        shape = tuple(int(v) for v in rng.integers(1, 6, size=4))
        cases.append(Case("global_avg_pool", {"x": normal(rng, shape, np.float32 if i % 2 else np.float64)}))
    for j in range(2):
        shape = tuple(int(v) for v in rng.integers(1 if j else 2, 6, size=4))  # first: H * W > 1
        args = {"x": normal(rng, shape), "grad_out": normal(rng, shape[:2])}
        cases.append(grad_case("global_avg_pool_backward", args, _gap_fwd, ("x",), ("grad_out",)))
    return cases


global_avg_pool = Exercise(
    id="global-avg-pool", title="Global average pooling forward and backward", topic="cnn-architecture",
    difficulty=1, question="Why do modern CNNs end with global average pooling instead of large dense layers?",
    statement=src("""
    Implement with NumPy:
        global_avg_pool(x) -> out                         x (N, C, H, W) -> out (N, C): the mean over H and W
        global_avg_pool_backward(x, grad_out) -> dx       grad_out (N, C) -> dx (N, C, H, W)
    Keep x's dtype.
    """),
    starter=src("""
    import numpy as np


    def global_avg_pool(x):
        ...  # your code here


    def global_avg_pool_backward(x, grad_out):
        ...  # your code here
    """),
    hints=["x.mean(axis=(2, 3)).", "Every pixel gets grad_out / (H * W): broadcast grad_out[:, :, None, None]."],
    solution=src("""
    import numpy as np


    def global_avg_pool(x):
        return x.mean(axis=(2, 3))


    def global_avg_pool_backward(x, grad_out):
        h, w = x.shape[2:]
        return np.broadcast_to(grad_out[:, :, None, None] / (h * w), x.shape).copy()
    """),
    outputs={"global_avg_pool": ("out",), "global_avg_pool_backward": ("dx",)}, cases=_gap_cases,
    reference=lambda c: autograd_reference(c)[0] if c.fd else arr(_gap_fwd(T(c.args["x"]))[0]),
    mistakes=[Mistake("the mean divides by H * W: each pixel gets grad_out / (H * W)",
                      lambda c: np.broadcast_to(c.args["grad_out"][:, :, None, None], c.args["x"].shape),
                      lambda c: c.func == "global_avg_pool_backward")],
    mutants=[
        Mutant("backward not divided by H * W", ("grad_out[:, :, None, None] / (h * w)", "grad_out[:, :, None, None]"),
               mentions="divides by H * W"),
        Mutant("a sum, not a mean", ("x.mean(axis=(2, 3))", "x.sum(axis=(2, 3))")),
    ],
)


# ----------------------------------------------------------------------------- flatten
def _flat_fwd(x, start_dim, **_):
    from ... import functional as F

    return (F.flatten(x, start_dim),)


def _flat_cases(rng):
    cases = []
    for i in range(3):
        shape = tuple(int(v) for v in rng.integers(1 if i else 2, 5, size=int(rng.integers(2, 5)) + (i == 0)))
        start = int(rng.integers(1, len(shape) - 1)) if i == 0 else int(rng.integers(0, len(shape)))
        cases.append(Case("flatten", {"x": normal(rng, shape, np.float32 if i % 2 else np.float64),
                                      "start_dim": start}))
    for _ in range(2):
        shape = tuple(int(v) for v in rng.integers(2, 5, size=int(rng.integers(2, 5))))
        sd = int(rng.integers(1, len(shape)))
        cases.append(Case("flatten_backward", {"grad_out": normal(rng, shape[:sd] + (int(np.prod(shape[sd:])),)),
                                               "input_shape": shape}))
    return cases


def _flat_ref(c):
    if c.func == "flatten":
        return arr(_flat_fwd(T(c.args["x"]), c.args["start_dim"])[0])
    return c.args["grad_out"].reshape(c.args["input_shape"])


flatten = Exercise(
    id="flatten", title="Flatten forward and backward", topic="cnn-architecture", difficulty=1,
    question="How does a CNN hand its feature maps to the fully connected layers?",
    statement=src("""
    Implement with NumPy, as torch.flatten(x, start_dim) (end_dim = -1):
        flatten(x, start_dim) -> y                      dims start_dim..-1 merged into one
        flatten_backward(grad_out, input_shape) -> dx   the gradient w.r.t. the input (shape input_shape)
    """),
    starter=src("""
    import numpy as np


    def flatten(x, start_dim):
        ...  # your code here


    def flatten_backward(grad_out, input_shape):
        ...  # your code here
    """),
    hints=["Keep the leading dims: x.reshape(x.shape[:start_dim] + (-1,)).",
           "Flatten only moves elements around: the backward is a reshape back."],
    solution=src("""
    import numpy as np


    def flatten(x, start_dim):
        return x.reshape(x.shape[:start_dim] + (-1,))


    def flatten_backward(grad_out, input_shape):
        return grad_out.reshape(input_shape)
    """),
    outputs={"flatten": ("y",), "flatten_backward": ("dx",)}, cases=_flat_cases, reference=_flat_ref,
    mutants=[
        Mutant("flattens everything",
               ("x.reshape(x.shape[:start_dim] + (-1,))", "x.reshape(-1)"),
               mentions="wrong shape"),
        Mutant("starts one dim late", ("x.shape[:start_dim]", "x.shape[:start_dim + 1]")),
        Mutant("column-major order",
               ("x.reshape(x.shape[:start_dim] + (-1,))", "x.reshape(x.shape[:start_dim] + (-1,), order='F')")),
    ],
)

EXERCISES = [global_avg_pool, flatten]
