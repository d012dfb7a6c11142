"""Training schedules: a cosine learning-rate schedule and early stopping."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from ..exercise import Case, Exercise, Mistake, Mutant
from ._util import T, src


# ----------------------------------------------------------------------------- cosine schedule
def _cos_cases(rng):
    cases = []
    for i in range(6):
        t_max = int(rng.integers(5, 60))
        epoch = [0, t_max][i] if i < 2 else int(rng.integers(1, t_max))
        cases.append(Case("cosine_lr", {"base_lr": float(rng.uniform(0.01, 1)), "eta_min": float(rng.uniform(0, 0.005)),
                                        "T_max": t_max, "epoch": epoch}))
    return cases


def _cos_ref(c):
    from ...nn import Parameter
    from ...optim import SGD
    from ...optim.lr_scheduler import CosineAnnealingLR

    a = c.args
    opt = SGD([Parameter(T(np.zeros(1)))], lr=a["base_lr"])
    sched = CosineAnnealingLR(opt, T_max=a["T_max"], eta_min=a["eta_min"])
    for _ in range(a["epoch"]):
        opt.step()
        sched.step()
    return float(opt.param_groups[0]["lr"])


cosine_lr = Exercise(
    id="cosine-lr", title="Cosine annealing learning rate", topic="backprop", difficulty=1,
    question="Why decay the learning rate during training?",
    statement=src("""
    Implement cosine_lr(base_lr, eta_min, T_max, epoch) -> lr (a float), the learning rate of
    torch.optim.lr_scheduler.CosineAnnealingLR after `epoch` scheduler steps (0 <= epoch <= T_max):
    it starts at base_lr and follows half a cosine down to eta_min at epoch T_max.
    """),
    starter=src("""
    import math


    def cosine_lr(base_lr, eta_min, T_max, epoch):
        ...  # your code here
    """),
    hints=["lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2."],
    solution=src("""
    import math


    def cosine_lr(base_lr, eta_min, T_max, epoch):
        return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * epoch / T_max)) / 2
    """),
    outputs={"cosine_lr": ("lr",)}, cases=_cos_cases, reference=_cos_ref,
    mistakes=[Mistake("the cosine spans half a period over T_max epochs: cos(pi * epoch / T_max)",
                      lambda c: c.args["eta_min"] + (c.args["base_lr"] - c.args["eta_min"])
                      * (1 + math.cos(2 * math.pi * c.args["epoch"] / c.args["T_max"])) / 2)],
    mutants=[
        Mutant("a full period", ("math.pi * epoch", "2 * math.pi * epoch"), mentions="half a period"),
        Mutant("eta_min ignored", ("eta_min + (base_lr - eta_min) *", "base_lr *")),
    ],
)


# ----------------------------------------------------------------------------- early stopping
def _es_cases(rng):
    cases = []
    for i in range(7):
        n = int(rng.integers(6, 20))
        losses = list(np.round(1.0 / (1 + np.arange(n) * rng.uniform(0.1, 0.5)) + rng.normal(0, 0.05, n), 3))
        if i % 3 == 0:  # a plateau of exact repeats: "no improvement" is strict
            k = int(rng.integers(1, n - 3))
            losses[k + 1:k + 4] = [losses[k]] * 3
        losses = [float(v) for v in losses]
        min_delta = 0.0 if i % 2 else float(rng.choice([0.005, 0.01, 0.02]))
        cases.append(Case("early_stopping", {"losses": losses, "patience": int(rng.integers(1, 4)),
                                             "min_delta": min_delta}))
    shift = float(np.round(rng.uniform(0, 1), 3))  # two fixed traps, shifted: a plateau at the best, a rebound
    cases.append(Case("early_stopping", {"losses": [shift + v for v in (1.0, 0.8, 0.8, 0.8, 0.7, 0.6)],
                                         "patience": 2, "min_delta": 0.0}, note="a plateau at the best loss"))
    cases.append(Case("early_stopping", {"losses": [shift + v for v in (1.0, 0.5, 0.9, 0.8, 0.7, 0.6, 0.55)],
                                         "patience": 3, "min_delta": 0.0}, note="a rebound"))
    cases.append(Case("early_stopping", {"losses": [shift + v for v in (1.0, 0.8, 0.796, 0.793, 0.6)],
                                         "patience": 2, "min_delta": 0.01}, note="improvements below min_delta"))
    return cases


def _es_ref(c):
    from ...train.callbacks import EarlyStopping

    cb = EarlyStopping("val_loss", min_delta=c.args["min_delta"], patience=c.args["patience"], mode="min")
    cb.trainer = SimpleNamespace(stop_training=False, stop_reason=None, epoch=0)
    for epoch, v in enumerate(c.args["losses"]):
        cb.on_epoch_end(epoch, {"val_loss": v})
        if cb.trainer.stop_training:
            return epoch, int(cb.best_epoch)
    return -1, int(cb.best_epoch)


def _es_alt(c, strict=True, last=False, off_by_one=False):
    best, best_epoch, wait, prev = math.inf, -1, 0, math.inf
    a = c.args
    for epoch, v in enumerate(a["losses"]):
        ref = prev if last else best
        better = v < ref - a["min_delta"] if strict else v <= ref - a["min_delta"]
        prev = v
        if better:
            best, best_epoch, wait = v, epoch, 0
            continue
        wait += 1
        if wait > a["patience"] if off_by_one else wait >= a["patience"]:
            return epoch, best_epoch
    return -1, best_epoch


early_stopping = Exercise(
    id="early-stopping", title="Early stopping logic", topic="overfitting", difficulty=1,
    question="How does early stopping prevent overfitting?",
    statement=src("""
    Implement early_stopping(losses, patience, min_delta) -> (stop_epoch, best_epoch), Keras/deepgrad
    EarlyStopping in "min" mode, fed one validation loss per epoch (epochs count from 0):

    * an epoch improves when loss < best - min_delta (strictly); then best = loss, best_epoch = epoch
      and the wait counter resets to 0;
    * otherwise wait += 1, and training stops at this epoch once wait >= patience.

    Return the epoch at which training stops (-1 if it never does) and the best epoch, as ints.
    """),
    starter=src("""
    def early_stopping(losses, patience, min_delta):
        ...  # your code here
    """),
    hints=["Compare against the best loss so far, not against the previous epoch.",
           "An exact repeat of the best loss is not an improvement (strict <).",
           "Stop as soon as wait reaches patience (>=)."],
    solution=src("""
    import math


    def early_stopping(losses, patience, min_delta):
        best, best_epoch, wait = math.inf, -1, 0
        for epoch, loss in enumerate(losses):
            if loss < best - min_delta:
                best, best_epoch, wait = loss, epoch, 0
                continue
            wait += 1
            if wait >= patience:
                return epoch, best_epoch
        return -1, best_epoch
    """),
    outputs={"early_stopping": ("stop_epoch", "best_epoch")}, cases=_es_cases, reference=_es_ref,
    mistakes=[Mistake("an equal loss counted as an improvement: improvement is strict (loss < best - min_delta)",
                      lambda c: _es_alt(c, strict=False)),
              Mistake("you compared with the previous epoch: compare with the best loss so far",
                      lambda c: _es_alt(c, last=True)),
              Mistake("off by one: stop as soon as wait >= patience", lambda c: _es_alt(c, off_by_one=True))],
    mutants=[
        Mutant("an equal loss improves", ("if loss < best - min_delta:", "if loss <= best - min_delta:"),
               mentions="improvement is strict"),
        Mutant("stops one epoch late", ("if wait >= patience:", "if wait > patience:"), mentions="off by one"),
        Mutant("min_delta ignored", ("if loss < best - min_delta:", "if loss < best:")),
    ],
)

EXERCISES = [cosine_lr, early_stopping]
