"""Training mechanics: optimizer steps and gradient clipping."""

from __future__ import annotations

import math

import numpy as np

from ..exercise import Case, Exercise, Mistake, Mutant
from ._util import T, arr, normal, src


def _step(opt_cls, param, grad, state: dict, **hyper) -> tuple:
    """One step of a deepgrad optimizer from a given state; returns the new param and state arrays."""
    from ...nn import Parameter

    p = Parameter(T(param))
    p.grad = T(grad)
    opt = opt_cls([p], **hyper)
    if state:
        opt.state[p].update({k: (np.array(v) if isinstance(v, np.ndarray) else v) for k, v in state.items()})
    opt.step()
    return arr(p), opt.state[p]


# ----------------------------------------------------------------------------- SGD momentum
def _sgd_cases(rng):
    cases = []
    for i in range(6):
        shape = tuple(int(s) for s in rng.integers(1, 6, size=int(rng.integers(1, 3))))
        dtype = np.float32 if i % 2 else np.float64
        args = {"param": normal(rng, shape, dtype), "grad": normal(rng, shape, dtype),
                "buf": None if i == 0 else normal(rng, shape, dtype),
                "lr": float(rng.uniform(0.01, 0.5)), "momentum": float(rng.uniform(0.5, 0.99)),
                "weight_decay": 0.0 if i < 2 else float(rng.uniform(0.001, 0.1)), "nesterov": bool(i >= 4)}
        cases.append(Case("sgd_momentum_step", args, note="first step: buf is None" if i == 0 else ""))
    return cases


def _sgd_ref(c):
    from ...optim import SGD

    a = c.args
    state = {} if a["buf"] is None else {"momentum_buffer": a["buf"]}
    p, st = _step(SGD, a["param"], a["grad"], state, lr=a["lr"], momentum=a["momentum"],
                  weight_decay=a["weight_decay"], nesterov=a["nesterov"])
    return p, np.array(st["momentum_buffer"])


def _sgd_alt(c, lr_inside=False, decay=True, nesterov=True):
    a = c.args
    g = a["grad"] + (a["weight_decay"] * a["param"] if decay else 0)
    if lr_inside:
        b = a["lr"] * g if a["buf"] is None else a["momentum"] * a["buf"] + a["lr"] * g
        return a["param"] - b, b
    b = g if a["buf"] is None else a["momentum"] * a["buf"] + g
    step = g + a["momentum"] * b if (a["nesterov"] and nesterov) else b
    return a["param"] - a["lr"] * step, b


sgd_momentum = Exercise(
    id="sgd-momentum", title="SGD with momentum, weight decay and Nesterov (one step)", topic="backprop",
    difficulty=2, question="What does momentum add to gradient descent?",
    statement=src("""
    Implement one step of torch.optim.SGD: sgd_momentum_step(param, grad, buf, lr, momentum,
    weight_decay, nesterov) -> (new_param, new_buf), with NumPy, PyTorch's formulation:

        g = grad + weight_decay * param
        buf = g                      on the first step (buf is None)
        buf = momentum * buf + g     afterwards
        step = g + momentum * buf    if nesterov else buf
        new_param = param - lr * step

    Return new arrays of param's shape and dtype (float32 stays float32).
    """),
    starter=src("""
    import numpy as np


    def sgd_momentum_step(param, grad, buf, lr, momentum, weight_decay, nesterov):
        ...  # your code here
    """),
    hints=["Weight decay enters the gradient before the momentum buffer.",
           "PyTorch keeps lr outside the buffer: buf accumulates raw gradients.",
           "Nesterov looks ahead: the step uses g + momentum * (the new buf)."],
    solution=src("""
    import numpy as np


    def sgd_momentum_step(param, grad, buf, lr, momentum, weight_decay, nesterov):
        g = grad + weight_decay * param
        buf = g.copy() if buf is None else momentum * buf + g
        step = g + momentum * buf if nesterov else buf
        return param - lr * step, buf
    """),
    outputs={"sgd_momentum_step": ("new_param", "new_buf")}, cases=_sgd_cases, reference=_sgd_ref,
    mistakes=[
        Mistake("you put lr inside the buffer (buf = momentum * buf + lr * g): PyTorch's buffer holds raw "
                "gradients and lr multiplies the step", lambda c: _sgd_alt(c, lr_inside=True)),
        Mistake("weight decay is missing: g = grad + weight_decay * param", lambda c: _sgd_alt(c, decay=False),
                lambda c: c.args["weight_decay"] > 0),
        Mistake("nesterov=True steps by g + momentum * buf, not by buf", lambda c: _sgd_alt(c, nesterov=False),
                lambda c: c.args["nesterov"]),
    ],
    mutants=[
        Mutant("lr inside the buffer", ("buf = g.copy() if buf is None else momentum * buf + g",
                                        "buf = lr * g if buf is None else momentum * buf + lr * g",
                                        "step = g + momentum * buf if nesterov else buf", "step = buf",
                                        "param - lr * step", "param - step"), mentions="lr inside the buffer"),
        Mutant("no weight decay", ("g = grad + weight_decay * param", "g = grad"), mentions="weight decay is missing"),
        Mutant("nesterov ignored",
               ("step = g + momentum * buf if nesterov else buf", "step = buf"),
               mentions="nesterov=True"),
    ],
)


# ----------------------------------------------------------------------------- Adam / AdamW
def _adam_cases(rng, decoupled: bool):
    cases = []
    for i in range(5):
        shape = tuple(int(s) for s in rng.integers(1, 6, size=int(rng.integers(1, 3))))
        dtype = np.float32 if i % 2 else np.float64
        t = 1 if i == 0 else int(rng.integers(2, 50))
        args = {"param": normal(rng, shape, dtype), "grad": normal(rng, shape, dtype),
                "m": (np.zeros(shape, dtype) if t == 1 else normal(rng, shape, dtype, 0.3)),
                "v": (np.zeros(shape, dtype) if t == 1 else np.abs(normal(rng, shape, dtype, 0.3))),
                "t": t, "lr": float(rng.uniform(1e-3, 0.1)), "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                "weight_decay": float(rng.uniform(0.0, 0.1)) if (i >= 2 or decoupled) else 0.0}
        cases.append(Case("adamw_step" if decoupled else "adam_step", args))
    shape = (int(rng.integers(1, 5)), int(rng.integers(3, 7)))  # tiny and zero gradients: where eps matters
    grad = normal(rng, shape, scale=1e-8)
    grad[0, :2] = 0.0
    cases.append(Case(cases[0].func, {**cases[0].args, "param": normal(rng, shape), "grad": grad, "m": np.zeros(shape),
                                      "v": np.zeros(shape), "t": 1}, note="tiny gradients"))
    return cases


def _adam_ref(decoupled: bool):
    def ref(c):
        from ...optim import Adam

        a = c.args
        state = {"step": a["t"] - 1, "exp_avg": a["m"], "exp_avg_sq": a["v"]}
        p, st = _step(Adam, a["param"], a["grad"], state, lr=a["lr"], betas=(a["beta1"], a["beta2"]), eps=a["eps"],
                      weight_decay=a["weight_decay"], decoupled_weight_decay=decoupled)
        return p, np.array(st["exp_avg"]), np.array(st["exp_avg_sq"])

    return ref


def _adam_alt(c, decoupled, correct=True, eps_inside=False, as_l2=False):
    a = c.args
    p, t, lr, b1, b2 = a["param"], a["t"], a["lr"], a["beta1"], a["beta2"]
    if decoupled and not as_l2:
        p = p * (1 - lr * a["weight_decay"])
        g = a["grad"]
    else:
        g = a["grad"] + a["weight_decay"] * a["param"]
    m = b1 * a["m"] + (1 - b1) * g
    v = b2 * a["v"] + (1 - b2) * g * g
    mh, vh = (m / (1 - b1**t), v / (1 - b2**t)) if correct else (m, v)
    den = np.sqrt(vh + a["eps"]) if eps_inside else np.sqrt(vh) + a["eps"]
    return p - lr * mh / den, m, v


_ADAM_STATEMENT = """
    Implement one step of {name}: {func}(param, grad, m, v, t, lr, beta1, beta2, eps, weight_decay)
    -> (new_param, new_m, new_v) with NumPy. t is the step number counting this one (t = 1 on the
    first step, where m and v are zeros). PyTorch's formulation:

    {decay}
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g ** 2
        m_hat = m / (1 - beta1 ** t);  v_hat = v / (1 - beta2 ** t)
        new_param = param - lr * m_hat / (sqrt(v_hat) + eps)

    Keep param's dtype.
    """

adam_step = Exercise(
    id="adam-step", title="Adam (one step, with bias correction)", topic="backprop", difficulty=2,
    question="How does Adam adapt the learning rate per parameter?",
    statement=src(_ADAM_STATEMENT.format(name="torch.optim.Adam", func="adam_step",
                                         decay="g = grad + weight_decay * param      (L2, added to the gradient)")),
    starter=src("""
    import numpy as np


    def adam_step(param, grad, m, v, t, lr, beta1, beta2, eps, weight_decay):
        ...  # your code here
    """),
    hints=["Update m and v first, then bias-correct copies of them (return the uncorrected m, v).",
           "Without bias correction the first steps are far too small: m starts at 0.",
           "eps goes outside the square root: sqrt(v_hat) + eps."],
    solution=src("""
    import numpy as np


    def adam_step(param, grad, m, v, t, lr, beta1, beta2, eps, weight_decay):
        g = grad + weight_decay * param
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
    """),
    outputs={"adam_step": ("new_param", "new_m", "new_v")}, cases=lambda rng: _adam_cases(rng, False),
    reference=_adam_ref(False), tolerance={"float32": (1e-4, 1e-5)},
    mistakes=[Mistake("no bias correction: divide m by (1 - beta1**t) and v by (1 - beta2**t)",
                      lambda c: _adam_alt(c, False, correct=False)),
              Mistake("eps belongs outside the square root: sqrt(v_hat) + eps",
                      lambda c: _adam_alt(c, False, eps_inside=True))],
    mutants=[
        Mutant("no bias correction",
               ("m / (1 - beta1 ** t)", "m",
                "v / (1 - beta2 ** t)", "v"),
               mentions="no bias correction"),
        Mutant("eps inside the square root",
               ("np.sqrt(v_hat) + eps", "np.sqrt(v_hat + eps)"),
               mentions="eps belongs outside"),
        Mutant("no weight decay", ("g = grad + weight_decay * param", "g = grad")),
    ],
)

adamw_step = Exercise(
    id="adamw-step", title="AdamW: decoupled weight decay (one step)", topic="overfitting", difficulty=2,
    question="Why is weight decay not the same as L2 regularisation for Adam?",
    statement=src(_ADAM_STATEMENT.format(
        name="torch.optim.AdamW", func="adamw_step",
        decay="param = param * (1 - lr * weight_decay)   (decoupled: not through the gradient)\n"
              "        g = grad")),
    starter=src("""
    import numpy as np


    def adamw_step(param, grad, m, v, t, lr, beta1, beta2, eps, weight_decay):
        ...  # your code here
    """),
    hints=["AdamW shrinks the parameter directly, before the Adam update, and leaves the gradient alone.",
           "Adding weight_decay * param to the gradient (L2) lets Adam's per-parameter scaling undo the decay."],
    solution=src("""
    import numpy as np


    def adamw_step(param, grad, m, v, t, lr, beta1, beta2, eps, weight_decay):
        param = param * (1 - lr * weight_decay)
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad * grad
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
    """),
    outputs={"adamw_step": ("new_param", "new_m", "new_v")}, cases=lambda rng: _adam_cases(rng, True),
    reference=_adam_ref(True), tolerance={"float32": (1e-4, 1e-5)},
    mistakes=[Mistake("that is Adam with L2 (decay added to the gradient): AdamW decays the parameter "
                      "directly, param *= 1 - lr * weight_decay", lambda c: _adam_alt(c, True, as_l2=True)),
              Mistake("no bias correction: divide m by (1 - beta1**t) and v by (1 - beta2**t)",
                      lambda c: _adam_alt(c, True, correct=False))],
    mutants=[
        Mutant("L2 through the gradient",
               ("param = param * (1 - lr * weight_decay)\n", "grad = grad + weight_decay * param\n"),
               mentions="Adam with L2"),
        Mutant("no bias correction",
               ("m / (1 - beta1 ** t)", "m",
                "v / (1 - beta2 ** t)", "v"),
               mentions="no bias correction"),
        Mutant("decay without lr", ("(1 - lr * weight_decay)", "(1 - weight_decay)")),
    ],
)


# ----------------------------------------------------------------------------- gradient clipping
def _clip_cases(rng):
    cases = []
    for i in range(5):
        grads = [normal(rng, tuple(int(s) for s in rng.integers(1, 5, size=int(rng.integers(1, 3)))))
                 for _ in range(int(rng.integers(2, 5)))]
        total = math.sqrt(sum(float((g * g).sum()) for g in grads))
        max_norm = total * (2.0 if i == 0 else float(rng.uniform(0.1, 0.8)))
        cases.append(Case("clip_grad_norm", {"grads": grads, "max_norm": max_norm},
                          note="norm already below max_norm" if i == 0 else ""))
    return cases


def _clip_ref(c):
    from ...nn import Parameter
    from ...optim.clip_grad import clip_grad_norm_

    params = []
    for g in c.args["grads"]:
        p = Parameter(T(np.zeros_like(g)))
        p.grad = T(g)
        params.append(p)
    total = clip_grad_norm_(params, c.args["max_norm"])
    return [arr(p.grad) for p in params], float(arr(total))


def _clip_alt(c, per_tensor=False, always=False):
    grads, mx = c.args["grads"], c.args["max_norm"]
    total = math.sqrt(sum(float((g * g).sum()) for g in grads))
    if per_tensor:
        return [g * min(1.0, mx / (np.linalg.norm(g) + 1e-6)) for g in grads], total
    coef = mx / (total + 1e-6)
    return [g * (coef if always else min(1.0, coef)) for g in grads], total


clip_grad = Exercise(
    id="clip-grad-norm", title="Gradient clipping by global norm", topic="rnns", difficulty=1,
    question="How does gradient clipping tame exploding gradients?",
    statement=src("""
    Implement clip_grad_norm(grads, max_norm) -> (clipped, total_norm) with NumPy, as
    torch.nn.utils.clip_grad_norm_: grads is a list of arrays; total_norm is the L2 norm of all their
    elements together (a float); when it exceeds max_norm every gradient is scaled by
    max_norm / (total_norm + 1e-6). Return a list of arrays (same shapes and dtypes) and total_norm.
    """),
    starter=src("""
    import numpy as np


    def clip_grad_norm(grads, max_norm):
        ...  # your code here
    """),
    hints=["One norm over all tensors: sqrt(sum of every squared element).",
           "Scale by min(1, max_norm / (total + 1e-6)): never scale gradients up."],
    solution=src("""
    import numpy as np


    def clip_grad_norm(grads, max_norm):
        total = float(np.sqrt(sum((g * g).sum() for g in grads)))
        coef = min(1.0, max_norm / (total + 1e-6))
        return [g * coef for g in grads], total
    """),
    outputs={"clip_grad_norm": ("clipped", "total_norm")}, cases=_clip_cases, reference=_clip_ref,
    mistakes=[Mistake("you clipped each tensor by its own norm: clip_grad_norm uses one global norm over all",
                      lambda c: _clip_alt(c, per_tensor=True)),
              Mistake("gradients whose norm is already below max_norm must stay unchanged (scale by min(1, ...))",
                      lambda c: _clip_alt(c, always=True))],
    mutants=[
        Mutant("each tensor by its own norm", source=src("""
            import numpy as np


            def clip_grad_norm(grads, max_norm):
                total = float(np.sqrt(sum((g * g).sum() for g in grads)))
                return [g * min(1.0, max_norm / (np.linalg.norm(g) + 1e-6)) for g in grads], total
            """), mentions="one global norm"),
        Mutant("scales up small gradients", ("min(1.0, max_norm / (total + 1e-6))", "max_norm / (total + 1e-6)"),
               mentions="already below max_norm"),
        Mutant("the squared norm",
               ("float(np.sqrt(sum((g * g).sum() for g in grads)))", "float(sum((g * g).sum() for g in grads))")),
    ],
)


EXERCISES = [sgd_momentum, adam_step, adamw_step, clip_grad]
