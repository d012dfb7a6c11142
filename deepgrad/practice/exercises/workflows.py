"""Workflows around the layers: data augmentation, freezing for transfer learning, GAN losses."""

from __future__ import annotations

import numpy as np

from ..exercise import Case, Exercise, Mistake, Mutant
from ._util import T, arr, autograd_reference, grad_case, normal, src


# ----------------------------------------------------------------------------- augmentation
def _aug_cases(rng):
    cases = []
    for i in range(6):
        c, h, w = int(rng.integers(1, 4)), int(rng.integers(4, 10)), int(rng.integers(4, 10))
        pad = int(rng.integers(0, 4))
        size = int(rng.integers(2, min(h, w) + 1))
        if i % 3 == 0:
            img = rng.integers(0, 256, size=(c, h, w)).astype(np.uint8)
        else:
            img = rng.random((c, h, w)).astype(np.float32 if i % 2 else np.float64)
        top, left = int(rng.integers(0, h + 2 * pad - size + 1)), int(rng.integers(0, w + 2 * pad - size + 1))
        if i == 0:  # a window on the image itself (not the padding): a wrong flip or offset shows
            size, top, left = min(h, w), pad, pad
        cases.append(Case("crop_flip", {"img": img, "padding": pad, "top": top, "left": left, "size": size,
                                        "flip": bool(i % 2 == 0)}))
    return cases


def _aug_ref(c, flip_axis=-1, offset=0):
    from ...data.transforms import functional as TF

    a = c.args
    p, top, left = a["padding"], a["top"] + offset * a["padding"], a["left"] + offset * a["padding"]
    out = TF.crop(TF.pad(a["img"], p), top, left, a["size"], a["size"])
    if a["flip"]:
        out = TF.hflip(out) if flip_axis == -1 else TF.vflip(out)
    return np.ascontiguousarray(out)


augment = Exercise(
    id="augment-crop-flip", title="Augmentation: padded random crop + horizontal flip", topic="overfitting",
    difficulty=1, question="How does data augmentation reduce overfitting?",
    statement=src("""
    The classic CIFAR augmentation with its random draws made explicit. Implement
    crop_flip(img, padding, top, left, size, flip) -> out with NumPy:
    img (C, H, W) (uint8 or float); zero-pad `padding` pixels on all four sides; cut the size x size
    window whose top-left corner is (top, left) IN THE PADDED image; if flip, mirror it left-right.
    Returns (C, size, size) in img's dtype.
    """),
    starter=src("""
    import numpy as np


    def crop_flip(img, padding, top, left, size, flip):
        ...  # your code here
    """),
    hints=["np.pad(img, ((0, 0), (p, p), (p, p))) pads only H and W.",
           "Left-right is the LAST axis (W): out[..., ::-1]."],
    solution=src("""
    import numpy as np


    def crop_flip(img, padding, top, left, size, flip):
        p = padding
        padded = np.pad(img, ((0, 0), (p, p), (p, p)))
        out = padded[:, top:top + size, left:left + size]
        return out[:, :, ::-1].copy() if flip else out.copy()
    """),
    outputs={"crop_flip": ("out",)}, cases=_aug_cases, reference=_aug_ref,
    mistakes=[Mistake("you flipped top-bottom: a horizontal flip mirrors the last axis (W)",
                      lambda c: _aug_ref(c, flip_axis=-2), lambda c: c.args["flip"]),
              Mistake("(top, left) are coordinates in the PADDED image; you offset them by the padding",
                      lambda c: _aug_ref(c, offset=1), lambda c: c.args["padding"] > 0)],
    mutants=[
        Mutant("flipped top-bottom", ("out[:, :, ::-1]", "out[:, ::-1, :]"), mentions="flipped top-bottom"),
        Mutant("(top, left) offset by the padding", ("padded[:, top:top + size, left:left + size]",
                                                     "padded[:, top + p:top + p + size, left + p:left + p + size]")),
        Mutant("the channels padded too", ("np.pad(img, ((0, 0), (p, p), (p, p)))", "np.pad(img, p)")),
    ],
)


# ----------------------------------------------------------------------------- freezing
def _freeze_cases(rng):
    cases = []
    layers = ["backbone.conv1", "backbone.conv2", "backbone.fc", "backbone2", "head"]  # backbone2: not backbone
    for i in range(4):
        params, grads = {}, {}
        for name in layers:
            o, n = int(rng.integers(2, 5)), int(rng.integers(2, 5))
            for suffix, shape in (("weight", (o, n)), ("bias", (o,))):
                params[f"{name}.{suffix}"] = normal(rng, shape, np.float32)
                grads[f"{name}.{suffix}"] = normal(rng, shape, np.float32)
        frozen = [["backbone"], ["backbone.conv1", "backbone.conv2"], ["backbone.conv1"], []][i]
        cases.append(Case("freeze_and_step", {"params": params, "grads": grads, "frozen": frozen,
                                              "lr": float(rng.uniform(0.1, 0.5)),  # lr * decay >= 0.005:
                                              "weight_decay": float(rng.uniform(0.05, 0.2))}))  # a decay shows
    return cases


def _is_frozen(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _freeze_ref(c):
    from ...nn import Parameter
    from ...optim import SGD

    a = c.args
    params = {k: Parameter(T(v)) for k, v in a["params"].items()}
    for k, p in params.items():
        if _is_frozen(k, a["frozen"]):
            p.requires_grad_(False)  # a frozen parameter receives no gradient in backward
        else:
            p.grad = T(a["grads"][k])
    SGD(list(params.values()), lr=a["lr"], weight_decay=a["weight_decay"]).step()
    trainable = sum(p.numel() for p in params.values() if p.requires_grad)
    return {k: arr(p) for k, p in params.items()}, int(trainable)


def _freeze_alt(c, decay_frozen=False):
    a = c.args
    out = {}
    for k, v in a["params"].items():
        frozen = _is_frozen(k, a["frozen"])
        g = (0 if frozen else a["grads"][k]) + a["weight_decay"] * v
        out[k] = v if (frozen and not decay_frozen) else v - a["lr"] * g
    return out, int(sum(v.size for k, v in a["params"].items() if not _is_frozen(k, a["frozen"])))


freeze = Exercise(
    id="freeze-layers", title="Freezing layers for transfer learning", topic="transfer-learning", difficulty=1,
    question="How do you fine-tune a pretrained network on a small dataset?",
    statement=src("""
    Implement freeze_and_step(params, grads, frozen, lr, weight_decay) -> (new_params, n_trainable):
    params and grads are dicts name -> float32 array (names like "backbone.conv1.weight"); a parameter is
    frozen when its name equals a prefix in `frozen` or starts with prefix + ".". Do one SGD step with
    L2 weight decay (p -= lr * (grad + weight_decay * p)) on the trainable parameters only; frozen ones
    come back unchanged. n_trainable is the number of trainable scalars (an int).
    Return a dict with every name.
    """),
    starter=src("""
    import numpy as np


    def freeze_and_step(params, grads, frozen, lr, weight_decay):
        ...  # your code here
    """),
    hints=["'backbone' freezes 'backbone.fc.weight' but not a hypothetical 'backbone2.weight': match prefix + '.'.",
           "A frozen parameter gets no gradient at all, so the optimizer skips it: no weight decay either."],
    solution=src("""
    import numpy as np


    def freeze_and_step(params, grads, frozen, lr, weight_decay):
        def is_frozen(name):
            return any(name == p or name.startswith(p + ".") for p in frozen)

        new, count = {}, 0
        for name, p in params.items():
            if is_frozen(name):
                new[name] = p.copy()
            else:
                new[name] = p - lr * (grads[name] + weight_decay * p)
                count += p.size
        return new, count
    """),
    outputs={"freeze_and_step": ("new_params", "n_trainable")}, cases=_freeze_cases, reference=_freeze_ref,
    mistakes=[Mistake("frozen parameters must not change at all: they get no gradient, so the optimizer skips "
                      "them, weight decay included", lambda c: _freeze_alt(c, decay_frozen=True),
                      lambda c: bool(c.args["frozen"]))],
    mutants=[
        Mutant("weight decay on frozen parameters", ("            new[name] = p.copy()\n",
                                                     "            new[name] = p - lr * weight_decay * p\n"),
               mentions="must not change at all"),
        Mutant("a bare prefix match", ('name == p or name.startswith(p + ".")', "name.startswith(p)")),
        Mutant("counts every parameter", ("            count += p.size\n", "", "return new, count",
                                          "return new, sum(p.size for p in params.values())")),
    ],
)


# ----------------------------------------------------------------------------- GAN losses
def _bce_logits(logits, target: float):
    from ...nn import functional as F

    return F.binary_cross_entropy_with_logits(logits, T(np.full(logits.shape, target)))


def _d_fwd(real_logits, fake_logits, **_):
    return (_bce_logits(real_logits, 1.0) + _bce_logits(fake_logits, 0.0),)


def _logit_cases(rng, func, fwd, wrt, names):
    cases = []
    for i in range(4):
        args = {n: normal(rng, (int(rng.integers(1 if i else 2, 8)),), np.float64, 40.0 if i == 3 else 2.0)
                for n in names}  # the first case has a batch: a mean shows its 1/n
        if i == 3:  # a confident discriminator: 1 - sigmoid(100) is 0 in float64, log of it -inf
            for n in names:
                args[n][0] = 100.0 if n != "real_logits" else -100.0
        if func == "generator_loss":
            args["non_saturating"] = bool(i % 2 == 0)
        cases.append(grad_case(func, args, fwd, wrt, (None,), n_values=1, note="large logits" if i == 3 else ""))
    return cases


def _softplus(v):
    return np.logaddexp(0, v)


def _d_alt(c, fake_target=0.0):
    r, f = c.args["real_logits"], c.args["fake_logits"]
    sf = f if fake_target == 0.0 else -f
    loss = _softplus(-r).mean() + _softplus(sf).mean()
    sig = 1 / (1 + np.exp(-r))
    sgf = 1 / (1 + np.exp(-f))
    return float(loss), (sig - 1) / len(r), (sgf - fake_target) / len(f)


gan_d_loss = Exercise(
    id="gan-d-loss", title="GAN discriminator loss and its gradient", topic="gans", difficulty=2,
    question="How is a GAN's discriminator trained?",
    statement=src("""
    The discriminator outputs logits. Implement discriminator_loss(real_logits, fake_logits)
    -> (loss, d_real, d_fake) with NumPy:
        loss = BCE-with-logits(real_logits, target 1) + BCE-with-logits(fake_logits, target 0)
    each term a mean over its batch (a float), and the gradients of loss w.r.t. both logit vectors.
    Some logits are large (|x| ~ 100): never compute log(sigmoid(x)) directly.
    """),
    starter=src("""
    import numpy as np


    def discriminator_loss(real_logits, fake_logits):
        ...  # your code here
    """),
    hints=["-log(sigmoid(x)) = softplus(-x) and -log(1 - sigmoid(x)) = softplus(x); softplus(x) = "
           "np.logaddexp(0, x) is stable.",
           "d/dx BCE-with-logits(x, t) = sigmoid(x) - t, divided by the batch size for the mean."],
    solution=src("""
    import numpy as np


    def _sigmoid(x):
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


    def discriminator_loss(real_logits, fake_logits):
        loss = np.logaddexp(0, -real_logits).mean() + np.logaddexp(0, fake_logits).mean()
        d_real = (_sigmoid(real_logits) - 1) / real_logits.size
        d_fake = _sigmoid(fake_logits) / fake_logits.size
        return float(loss), d_real, d_fake
    """),
    outputs={"discriminator_loss": ("loss", "d_real", "d_fake")},
    cases=lambda rng: _logit_cases(rng, "discriminator_loss", _d_fwd, ("real_logits", "fake_logits"),
                                   ("real_logits", "fake_logits")),
    reference=autograd_reference,
    mistakes=[Mistake("the discriminator labels fakes 0 and reals 1: you used target 1 for the fakes",
                      lambda c: _d_alt(c, fake_target=1.0))],
    mutants=[
        Mutant("target 1 for the fakes",
               ("np.logaddexp(0, fake_logits).mean()", "np.logaddexp(0, -fake_logits).mean()",
                "_sigmoid(fake_logits) / fake_logits.size", "(_sigmoid(fake_logits) - 1) / fake_logits.size"),
               mentions="target 1 for the fakes"),
        Mutant("log(sigmoid) computed directly",
               ("np.logaddexp(0, -real_logits).mean() + np.logaddexp(0, fake_logits).mean()",
                "-np.log(_sigmoid(real_logits)).mean() - np.log(1 - _sigmoid(fake_logits)).mean()")),
        Mutant("gradient of a sum, not a mean",
               ("(_sigmoid(real_logits) - 1) / real_logits.size", "_sigmoid(real_logits) - 1")),
    ],
)


def _g_fwd(fake_logits, non_saturating, **_):
    if non_saturating:
        return (_bce_logits(fake_logits, 1.0),)
    return (-_bce_logits(fake_logits, 0.0),)


def _g_alt(c, flip=False):
    f, ns = c.args["fake_logits"], c.args["non_saturating"]
    ns = not ns if flip else ns
    s = 1 / (1 + np.exp(-f))
    if ns:
        return float(_softplus(-f).mean()), (s - 1) / len(f)
    return float(-_softplus(f).mean()), -s / len(f)


gan_g_loss = Exercise(
    id="gan-g-loss", title="GAN generator loss: minimax vs non-saturating", topic="gans", difficulty=2,
    question="Why do GANs use the non-saturating generator loss?",
    statement=src("""
    Implement generator_loss(fake_logits, non_saturating) -> (loss, d_fake) with NumPy, from the
    discriminator's logits on generated samples (a float loss and its gradient w.r.t. the logits):
        non_saturating=True:  loss = mean(-log D(G(z)))       = BCE-with-logits(fake, target 1)
        non_saturating=False: loss = mean(log(1 - D(G(z))))   = -BCE-with-logits(fake, target 0)  (minimax)
    with D = sigmoid(logits). Some logits are large: use softplus, never log(sigmoid) directly.
    """),
    starter=src("""
    import numpy as np


    def generator_loss(fake_logits, non_saturating):
        ...  # your code here
    """),
    hints=["-log(sigmoid(x)) = softplus(-x); log(1 - sigmoid(x)) = -softplus(x).",
           "Gradients: non-saturating (sigmoid(x) - 1) / n; minimax -sigmoid(x) / n. When D confidently rejects "
           "fakes (x very negative), the minimax gradient vanishes — the reason for the non-saturating loss."],
    solution=src("""
    import numpy as np


    def _sigmoid(x):
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


    def generator_loss(fake_logits, non_saturating):
        n = fake_logits.size
        if non_saturating:
            return float(np.logaddexp(0, -fake_logits).mean()), (_sigmoid(fake_logits) - 1) / n
        return float(-np.logaddexp(0, fake_logits).mean()), -_sigmoid(fake_logits) / n
    """),
    outputs={"generator_loss": ("loss", "d_fake")},
    cases=lambda rng: _logit_cases(rng, "generator_loss", _g_fwd, ("fake_logits",), ("fake_logits",)),
    reference=autograd_reference,
    mistakes=[Mistake("you swapped the two losses: non_saturating=True is -log D(G(z)), the minimax one is "
                      "log(1 - D(G(z)))", lambda c: _g_alt(c, flip=True))],
    mutants=[
        Mutant("the two losses swapped",
               ("if non_saturating:", "if not non_saturating:"),
               mentions="swapped the two losses"),
        Mutant("minimax gradient sign flipped", ("-_sigmoid(fake_logits) / n", "_sigmoid(fake_logits) / n")),
        Mutant("gradient of a sum, not a mean", ("(_sigmoid(fake_logits) - 1) / n", "_sigmoid(fake_logits) - 1")),
    ],
)

EXERCISES = [augment, freeze, gan_d_loss, gan_g_loss]
