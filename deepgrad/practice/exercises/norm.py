"""Batch normalisation (training, evaluation, backward) and layer normalisation."""

from __future__ import annotations

import numpy as np

from ..exercise import Case, Exercise, Mistake, Mutant
from ._util import T, arr, autograd_reference, grad_case, normal, src


def _bn_shape(rng):
    n, c = int(rng.integers(2, 6)), int(rng.integers(1, 4))
    return (n, c) if rng.random() < 0.5 else (n, c, int(rng.integers(1, 4)), int(rng.integers(1, 4)))


def _axes(x):
    return (0,) + tuple(range(2, x.ndim))


def _bc(v, x):
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


# ----------------------------------------------------------------------------- training forward
def _bn_train_cases(rng):
    cases = []
    for i in range(6):
        shape = _bn_shape(rng)
        dtype = np.float32 if i % 2 else np.float64
        c = shape[1]
        args = {"x": normal(rng, shape, dtype, 2.0) + dtype(1.5), "gamma": normal(rng, (c,), dtype),
                "beta": normal(rng, (c,), dtype), "running_mean": normal(rng, (c,), dtype),
                "running_var": np.abs(normal(rng, (c,), dtype)) + dtype(0.5),
                "momentum": float(rng.uniform(0.05, 0.5)), "eps": 1e-5}
        cases.append(Case("batch_norm_train", args))
    return cases


def _bn_train_ref(c):
    from ...nn import functional as F

    a = c.args
    rm, rv = T(a["running_mean"]), T(a["running_var"])
    y = F.batch_norm(T(a["x"]), rm, rv, T(a["gamma"]), T(a["beta"]), training=True, momentum=a["momentum"],
                     eps=a["eps"])
    return arr(y), arr(rm), arr(rv)


def _bn_train_alt(c, norm_ddof=0, run_ddof=1, swap_momentum=False, eps_outside=False):
    a = c.args
    x = a["x"].astype(np.float64)
    ax = _axes(x)
    n = x.size // x.shape[1]
    mean = x.mean(ax)
    var_b = x.var(ax)
    var_n = var_b * n / (n - norm_ddof)
    var_r = var_b * n / (n - run_ddof)
    den = np.sqrt(_bc(var_n, x)) + a["eps"] if eps_outside else np.sqrt(_bc(var_n, x) + a["eps"])
    y = (x - _bc(mean, x)) / den * _bc(a["gamma"], x) + _bc(a["beta"], x)
    m = 1 - a["momentum"] if swap_momentum else a["momentum"]
    return y, (1 - m) * a["running_mean"] + m * mean, (1 - m) * a["running_var"] + m * var_r


batchnorm_forward = Exercise(
    id="batchnorm-forward", title="Batch norm forward in training mode (with running statistics)",
    topic="overfitting", difficulty=2, question="How does batch normalisation work during training?",
    statement=src("""
    Implement batch_norm_train(x, gamma, beta, running_mean, running_var, momentum, eps)
    -> (y, new_running_mean, new_running_var) with NumPy, as torch's BatchNorm in training mode.
    x is (N, C) or (N, C, H, W); statistics are per channel (axis 1), over every other axis:

        y = (x - mean) / sqrt(var + eps) * gamma + beta          var: the BIASED batch variance
        new_running_mean = (1 - momentum) * running_mean + momentum * mean
        new_running_var  = (1 - momentum) * running_var  + momentum * var_unbiased

    Keep x's dtype. Return new arrays (do not rely on updating the inputs in place).
    """),
    starter=src("""
    import numpy as np


    def batch_norm_train(x, gamma, beta, running_mean, running_var, momentum, eps):
        ...  # your code here
    """),
    hints=["Reduce over axes (0, 2, 3) for 4-D input, (0,) for 2-D; reshape per-channel vectors to (1, C, 1, 1).",
           "Normalise with the biased variance (x.var(), ddof=0); the running variance uses the unbiased one "
           "(multiply by n / (n - 1), n = elements per channel).",
           "PyTorch's momentum weights the NEW statistic: running = (1 - momentum) * running + momentum * batch."],
    solution=src("""
    import numpy as np


    def batch_norm_train(x, gamma, beta, running_mean, running_var, momentum, eps):
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        n = x.size // x.shape[1]
        mean = x.mean(axis=axes)
        var = x.var(axis=axes)
        y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * gamma.reshape(shape) \\
            + beta.reshape(shape)
        new_mean = (1 - momentum) * running_mean + momentum * mean
        new_var = (1 - momentum) * running_var + momentum * var * n / (n - 1)
        return y, new_mean, new_var
    """),
    outputs={"batch_norm_train": ("y", "new_running_mean", "new_running_var")}, cases=_bn_train_cases,
    reference=_bn_train_ref,
    mistakes=[
        Mistake("the running variance uses the UNBIASED batch variance (times n / (n - 1)); you used the biased one",
                lambda c: _bn_train_alt(c, run_ddof=0)),
        Mistake("normalise with the BIASED variance (ddof=0); you used the unbiased one",
                lambda c: _bn_train_alt(c, norm_ddof=1)),
        Mistake("momentum is reversed: torch's running = (1 - momentum) * running + momentum * batch",
                lambda c: _bn_train_alt(c, swap_momentum=True)),
        Mistake("eps goes inside the square root: sqrt(var + eps)", lambda c: _bn_train_alt(c, eps_outside=True)),
    ],
    mutants=[
        Mutant("biased running variance", ("momentum * var * n / (n - 1)", "momentum * var"), mentions="UNBIASED"),
        Mutant("normalised with the unbiased variance", ("var = x.var(axis=axes)", "var = x.var(axis=axes, ddof=1)")),
        Mutant("momentum reversed",
               ("(1 - momentum) * running_mean + momentum * mean", "momentum * running_mean + (1 - momentum) * mean",
                "(1 - momentum) * running_var + momentum * var", "momentum * running_var + (1 - momentum) * var"),
               mentions="momentum is reversed"),
    ],
)


# ----------------------------------------------------------------------------- eval
def _bn_eval_cases(rng):
    return [Case("batch_norm_eval", dict((k, v) for k, v in c.args.items() if k != "momentum"))
            for c in _bn_train_cases(rng)]


def _bn_eval_ref(c):
    from ...nn import functional as F

    a = c.args
    return arr(F.batch_norm(T(a["x"]), T(a["running_mean"]), T(a["running_var"]), T(a["gamma"]), T(a["beta"]),
                            training=False, eps=a["eps"]))


batchnorm_eval = Exercise(
    id="batchnorm-eval", title="Batch norm in evaluation mode", topic="overfitting", difficulty=1,
    question="What does batch norm do differently at test time?",
    statement=src("""
    Implement batch_norm_eval(x, gamma, beta, running_mean, running_var, eps) -> y with NumPy, as
    torch's BatchNorm in eval mode: x (N, C) or (N, C, H, W), per-channel vectors of shape (C,).
    Keep x's dtype.
    """),
    starter=src("""
    import numpy as np


    def batch_norm_eval(x, gamma, beta, running_mean, running_var, eps):
        ...  # your code here
    """),
    hints=["At test time the batch statistics are not used: a prediction must not depend on the rest of the batch.",
           "y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta, per channel (reshape to (1, C, 1, 1))."],
    solution=src("""
    import numpy as np


    def batch_norm_eval(x, gamma, beta, running_mean, running_var, eps):
        shape = (1, -1) + (1,) * (x.ndim - 2)
        scale = gamma / np.sqrt(running_var + eps)
        return (x - running_mean.reshape(shape)) * scale.reshape(shape) + beta.reshape(shape)
    """),
    outputs={"batch_norm_eval": ("y",)}, cases=_bn_eval_cases, reference=_bn_eval_ref,
    mistakes=[Mistake("you normalised with the batch statistics: in eval mode use running_mean and running_var",
                      lambda c: _bn_train_alt(dict_case(c, momentum=0.1))[0])],
    mutants=[
        Mutant("batch statistics at test time", source=src("""
            import numpy as np


            def batch_norm_eval(x, gamma, beta, running_mean, running_var, eps):
                axes = (0,) + tuple(range(2, x.ndim))
                shape = (1, -1) + (1,) * (x.ndim - 2)
                mean, var = x.mean(axis=axes), x.var(axis=axes)
                return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * gamma.reshape(shape) \\
                    + beta.reshape(shape)
            """), mentions="batch statistics"),
        Mutant("no eps", ("np.sqrt(running_var + eps)", "np.sqrt(running_var)")),
        Mutant("no beta", (" + beta.reshape(shape)", "")),
    ],
)


def dict_case(c: Case, **extra) -> Case:
    return Case(c.func, {**c.args, **extra})


# ----------------------------------------------------------------------------- backward
def _bn_bwd_fwd(x, gamma, beta, eps, **_):
    from ...nn import functional as F

    return (F.batch_norm(x, None, None, gamma, beta, training=True, eps=eps),)


def _bn_bwd_cases(rng):
    cases = []
    for _ in range(5):
        shape = _bn_shape(rng)
        c = shape[1]
        args = {"x": normal(rng, shape, scale=2.0), "gamma": normal(rng, (c,)), "beta": normal(rng, (c,)),
                "eps": 1e-5, "grad_out": normal(rng, shape)}
        cases.append(grad_case("batch_norm_backward", args, _bn_bwd_fwd, ("x", "gamma", "beta"), ("grad_out",)))
    return cases


def _bn_bwd_const(c):
    a = c.args
    x, g = a["x"], a["grad_out"]
    ax = _axes(x)
    mean, var = x.mean(ax), x.var(ax)
    xhat = (x - _bc(mean, x)) / np.sqrt(_bc(var, x) + a["eps"])
    return g * _bc(a["gamma"], x) / np.sqrt(_bc(var, x) + a["eps"]), (g * xhat).sum(ax), g.sum(ax)


batchnorm_backward = Exercise(
    id="batchnorm-backward", title="Batch norm backward (training mode)", topic="backprop", difficulty=3,
    question="Derive the backward pass of batch normalisation.",
    statement=src("""
    For y = batch_norm(x) in training mode (per-channel batch mean and biased variance, then * gamma + beta;
    as in batchnorm-forward), implement batch_norm_backward(x, gamma, beta, eps, grad_out)
    -> (dx, dgamma, dbeta) with NumPy. x is (N, C) or (N, C, H, W), float64; grad_out has x's shape.
    The upstream gradient is random: an all-ones upstream would hide a wrong dx.
    """),
    starter=src("""
    import numpy as np


    def batch_norm_backward(x, gamma, beta, eps, grad_out):
        ...  # your code here
    """),
    hints=["dbeta = grad_out summed over the non-channel axes; dgamma = (grad_out * x_hat) summed likewise.",
           "The batch mean and variance depend on x: treating them as constants gives the wrong dx.",
           "With m elements per channel and g = grad_out * gamma: dx = (g - mean(g) - x_hat * mean(g * x_hat)) / "
           "sqrt(var + eps), means over the non-channel axes."],
    solution=src("""
    import numpy as np


    def batch_norm_backward(x, gamma, beta, eps, grad_out):
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        mean = x.mean(axis=axes, keepdims=True)
        inv_std = 1 / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
        x_hat = (x - mean) * inv_std
        dbeta = grad_out.sum(axis=axes)
        dgamma = (grad_out * x_hat).sum(axis=axes)
        g = grad_out * gamma.reshape(shape)
        dx = (g - g.mean(axis=axes, keepdims=True)
              - x_hat * (g * x_hat).mean(axis=axes, keepdims=True)) * inv_std
        return dx, dgamma, dbeta
    """),
    outputs={"batch_norm_backward": ("dx", "dgamma", "dbeta")}, cases=_bn_bwd_cases, reference=autograd_reference,
    mistakes=[Mistake("you treated the batch mean and variance as constants: they depend on x, which adds the "
                      "terms - mean(g) - x_hat * mean(g * x_hat) to dx", _bn_bwd_const)],
    mutants=[
        Mutant("mean and variance treated as constants",
               ("dx = (g - g.mean(axis=axes, keepdims=True)\n          - x_hat * (g * x_hat).mean(axis=axes, "
                "keepdims=True)) * inv_std",
                "dx = g * inv_std"),
               mentions="as constants"),
        Mutant("dgamma from x, not x_hat", ("(grad_out * x_hat).sum(axis=axes)", "(grad_out * x).sum(axis=axes)")),
        Mutant("the variance term forgotten",
               ("\n          - x_hat * (g * x_hat).mean(axis=axes, keepdims=True))", ")")),
    ],
)


# ----------------------------------------------------------------------------- layer norm
def _ln_cases(rng):
    cases = []
    for i in range(5):
        shape = tuple(int(v) for v in rng.integers(2, 6, size=int(rng.integers(2, 4))))
        if i == 0:
            shape = (1,) + shape[1:]  # a batch of one: layer norm needs no batch
        dtype = np.float32 if i % 2 else np.float64
        d = shape[-1]
        cases.append(Case("layer_norm", {"x": normal(rng, shape, dtype, 2.0) + dtype(1.0),
                                         "gamma": normal(rng, (d,), dtype), "beta": normal(rng, (d,), dtype),
                                         "eps": 1e-5}))
    return cases


def _ln_ref(c):
    from ...nn import functional as F

    a = c.args
    return arr(F.layer_norm(T(a["x"]), (a["x"].shape[-1],), T(a["gamma"]), T(a["beta"]), a["eps"]))


def _ln_alt(c, axis=-1, ddof=0):
    a = c.args
    x = a["x"].astype(np.float64)
    m = x.mean(axis, keepdims=True)
    v = x.var(axis, keepdims=True, ddof=ddof)
    return (x - m) / np.sqrt(v + a["eps"]) * a["gamma"] + a["beta"]


layernorm = Exercise(
    id="layernorm", title="Layer norm forward", topic="rnns", difficulty=1,
    question="How does layer normalisation differ from batch normalisation?",
    statement=src("""
    Implement layer_norm(x, gamma, beta, eps) -> y with NumPy, as torch's LayerNorm over the LAST
    dimension: x (..., D), gamma and beta (D,); mean and biased variance per row (over the last axis),
    y = (x - mean) / sqrt(var + eps) * gamma + beta. Keep x's dtype.
    """),
    starter=src("""
    import numpy as np


    def layer_norm(x, gamma, beta, eps):
        ...  # your code here
    """),
    hints=["Statistics over axis=-1 with keepdims=True: each sample is normalised on its own.",
           "Use the biased variance (ddof=0)."],
    solution=src("""
    import numpy as np


    def layer_norm(x, gamma, beta, eps):
        mean = x.mean(axis=-1, keepdims=True)
        var = x.var(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(var + eps) * gamma + beta
    """),
    outputs={"layer_norm": ("y",)}, cases=_ln_cases, reference=_ln_ref,
    mistakes=[Mistake("you normalised over the batch (axis 0): layer norm normalises each sample over its "
                      "features (the last axis)", lambda c: _ln_alt(c, axis=0)),
              Mistake("use the biased variance (ddof=0)", lambda c: _ln_alt(c, ddof=1))],
    mutants=[
        Mutant("normalised over the batch",
               ("x.mean(axis=-1, keepdims=True)", "x.mean(axis=0, keepdims=True)",
                "x.var(axis=-1, keepdims=True)", "x.var(axis=0, keepdims=True)"),
               mentions="over the batch"),
        Mutant("unbiased variance", ("x.var(axis=-1, keepdims=True)", "x.var(axis=-1, keepdims=True, ddof=1)"),
               mentions="biased variance"),
        Mutant("gamma and beta swapped", ("* gamma + beta", "* beta + gamma")),
    ],
)

EXERCISES = [batchnorm_forward, batchnorm_eval, batchnorm_backward, layernorm]
