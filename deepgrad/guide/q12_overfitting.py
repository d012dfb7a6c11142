"""Question 12: what is overfitting, and what prevents it? Measured on a small, noisy digits training set.

A 64-512-512-10 MLP (about 300k parameters) sees only 200 training images, and 30% of their labels are
wrong (replaced by another class at random), as in real, hand-labelled data. It can memorise all of them,
wrong labels included, so it fits the training set perfectly and generalises poorly. Then each remedy is
applied alone (early stopping, dropout, augmentation, L1, L2, batch norm, a smaller model) and a few
together, and the validation accuracy is measured on the clean held-out images.

A model that learned digits rather than the noise can only get the ~70% correct training labels right, so
a remedy that works *lowers* the training accuracy towards 0.7 while raising the validation accuracy.
"""

from __future__ import annotations

import numpy as np

import deepgrad as dg
from deepgrad import nn, optim
from deepgrad.data import DataLoader, TensorDataset, TransformDataset
from deepgrad.data import transforms as T
from deepgrad.models import MLP
from deepgrad.regularization import l1_penalty, l2_penalty
from deepgrad.train import EarlyStopping, Trainer

from .common import digits

NUMBER = 12
QUESTION = "What is overfitting, and how do you prevent it?"
ANSWER = (
    "A model overfits when it fits the training data, noise included, better than the pattern that "
    "generalises: training loss keeps falling while validation loss turns up, leaving a large train/validation "
    "gap. It is likeliest with high capacity and little or noisy data. Remedies: more data or data "
    "augmentation; early stopping on validation loss; dropout; weight penalties (L2 shrinks all weights, L1 "
    "drives many to zero); a smaller model; and usually a combination. Batch norm mainly speeds up and "
    "stabilises training; its regularising effect is weak and not a reliable cure."
)

N_TRAIN = 200        # small: 20 images per class
LABEL_NOISE = 0.3    # fraction of training labels replaced by a wrong class
BIG = [512, 512]     # the over-sized model; the "smaller model" remedy uses one layer of 32

# name -> settings of one run; each single remedy is switched on alone, then three together.
REMEDIES = {
    "baseline (no remedy)": {},
    "early stopping": {"early_stopping": 5},
    "dropout 0.5": {"dropout": 0.5},
    "augmentation": {"augment": True},
    "L1 penalty": {"l1": 3e-4},
    "L2 penalty": {"l2": 1e-2},
    "batch norm": {"batch_norm": True},
    "smaller model (1 x 32)": {"hidden": [32]},
    "combined: early stop + dropout + aug": {"early_stopping": 10, "dropout": 0.5, "augment": True},
}


def noisy_small_split(seed: int):
    """200 training images with 30% wrong labels, and the full clean validation split."""
    data = digits(size=8, seed=seed)
    rng = np.random.default_rng(seed)
    keep = rng.permutation(len(data.x_train))[:N_TRAIN]
    x, y = data.x_train[keep], data.y_train[keep].copy()
    wrong = rng.random(N_TRAIN) < LABEL_NOISE
    y[wrong] = (y[wrong] + rng.integers(1, 10, wrong.sum())) % 10  # a different class, uniformly
    return TensorDataset(x, y), TensorDataset(data.x_test, data.y_test), wrong.mean()


def train_one(settings: dict, train: TensorDataset, val: TensorDataset, epochs: int, device: str):
    """Train the MLP with ``settings``; returns (trainer, history)."""
    model = MLP(64, settings.get("hidden", BIG), 10, dropout=settings.get("dropout", 0.0),
                batch_norm=settings.get("batch_norm", False))
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]  # penalise weights, not biases
    cross_entropy = nn.CrossEntropyLoss()

    def loss_fn(logits, target):
        loss = cross_entropy(logits, target)
        if model.training:  # the penalty is part of the training objective only; val_loss stays comparable
            if settings.get("l1"):
                loss = loss + l1_penalty(weights, settings["l1"])
            if settings.get("l2"):
                loss = loss + l2_penalty(weights, settings["l2"])
        return loss

    if settings.get("augment"):
        # small random rotations, shifts and zooms: a "new" training image every epoch, same label
        train = TransformDataset(train, T.RandomAffine(degrees=10, translate=(0.125, 0.125), scale=(0.9, 1.1)))
    callbacks = []
    if settings.get("early_stopping"):
        callbacks.append(EarlyStopping("val_loss", patience=settings["early_stopping"], restore_best_weights=True))
    trainer = Trainer(model, loss_fn, optim.Adam(model.parameters(), lr=1e-3), metrics=["accuracy"],
                      callbacks=callbacks, device=device, progress=False)
    history = trainer.fit(DataLoader(train, batch_size=32, shuffle=True), DataLoader(val, batch_size=512),
                          epochs=epochs)
    return trainer, history


def curves_figure(histories: dict) -> list:
    """Training and validation loss per epoch for a few of the runs: one panel per run."""
    import matplotlib.pyplot as plt

    panels = []
    for name, h in histories.items():
        fig, ax = plt.subplots(figsize=(4.2, 3.4))
        epochs = np.arange(1, len(h) + 1)
        ax.plot(epochs, h["loss"], label="training loss")
        ax.plot(epochs, h["val_loss"], label="validation loss")
        best = int(np.argmin(h["val_loss"]))
        ax.axvline(best + 1, color="gray", ls=":", label=f"best val loss (epoch {best + 1})")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set(title=name, xlabel="epoch", ylabel="cross-entropy", ylim=(0, 2.5))
        ax.legend(fontsize=9)
        fig.tight_layout()
        panels.append(fig)
    return panels


def run(ctx) -> None:
    epochs = ctx.pick(60, 150)
    train, val, noise = noisy_small_split(ctx.seed)
    ctx.say(f"{len(train)} training digits, {noise:.0%} of them with a wrong label; {len(val)} clean validation "
            f"digits. MLP 64-512-512-10, Adam lr 1e-3, batch 32, up to {epochs} epochs.")
    rows, results, histories = [], {}, {}
    clean_loader = DataLoader(train, batch_size=512)  # the training images without augmentation
    final_val_loss = {}
    for name, settings in REMEDIES.items():
        ctx.progress(f"training with {name}")
        dg.manual_seed(ctx.seed)  # every run starts from the same random state
        trainer, history = train_one(settings, train, val, epochs, ctx.device)
        train_acc = trainer.evaluate(clean_loader)["accuracy"]  # eval mode: no dropout, running BN stats
        val_metrics = trainer.evaluate(DataLoader(val, batch_size=512))
        val_acc, final_val_loss[name] = val_metrics["accuracy"], val_metrics["loss"]
        results[name] = (train_acc, val_acc)
        rows.append([name, train_acc, val_acc, train_acc - val_acc, len(history)])
        if name in ("baseline (no remedy)", "early stopping", "combined: early stop + dropout + aug"):
            histories[name] = history
    ctx.table("Accuracy on the (noisy) training labels and on clean validation digits",
              ["run", "train acc", "val acc", "gap", "epochs run"], rows)
    ctx.figure(curves_figure(histories), "curves", "Learning curves",
               "Without a remedy the training loss keeps falling towards zero while the validation loss bottoms out "
               "and then rises: the model is memorising wrong labels. Early stopping keeps the weights of the best "
               "epoch.")
    base_hist = histories["baseline (no remedy)"]
    turn = int(np.argmin(base_hist["val_loss"])) + 1
    ctx.claim("without a remedy the training loss keeps falling (to <= 10% of its first epoch's) while the "
              "validation loss bottoms out before the last third of the epochs and then rises",
              base_hist["loss"][-1] <= 0.1 * base_hist["loss"][0] and turn <= 2 * epochs // 3
              and base_hist["val_loss"][-1] > min(base_hist["val_loss"]),
              f"training loss {base_hist['loss'][0]:.3f} -> {base_hist['loss'][-1]:.3f}; validation loss lowest at "
              f"epoch {turn} of {epochs} ({min(base_hist['val_loss']):.3f}), {base_hist['val_loss'][-1]:.3f} at the "
              "end")
    stopped = histories["early stopping"]
    best_epoch = int(np.argmin(stopped["val_loss"])) + 1
    ctx.claim("early stopping keeps the weights of the best epoch: the model it returns has that epoch's validation "
              "loss", abs(final_val_loss["early stopping"] - min(stopped["val_loss"])) <= 1e-4,
              f"{final_val_loss['early stopping']:.5f} vs {min(stopped['val_loss']):.5f} at epoch {best_epoch} of "
              f"{len(stopped)} run")

    base_train, base_val = results["baseline (no remedy)"]
    base_gap = base_train - base_val
    ctx.claim("without a remedy the MLP memorises the noisy training set: >= 98% training accuracy (wrong labels "
              "included), validation accuracy >= 15 points lower, and validation loss ends >= 1.25x its minimum",
              base_train >= 0.98 and base_gap >= 0.15
              and base_hist["val_loss"][-1] >= 1.25 * min(base_hist["val_loss"]),
              f"train {base_train:.3f}, val {base_val:.3f}, val loss {min(base_hist['val_loss']):.3f} at best -> "
              f"{base_hist['val_loss'][-1]:.3f} at the end")
    singles = [n for n in REMEDIES if n not in ("baseline (no remedy)", "batch norm")
               and not n.startswith("combined")]
    helped = [n for n in singles if results[n][1] > base_val and results[n][0] - results[n][1] < base_gap]
    ctx.claim("each of early stopping, dropout, augmentation, L1, L2 and a smaller model alone raises validation "
              "accuracy and shrinks the train/validation gap",
              len(helped) == len(singles),
              ", ".join(f"{n}: val {results[n][1]:.3f}, gap {results[n][0] - results[n][1]:+.3f}" for n in singles)
              + f"; baseline val {base_val:.3f}, gap {base_gap:+.3f}")
    bn_train, bn_val = results["batch norm"]
    ctx.claim("batch norm alone does not stop the memorisation: it still fits >= 95% of the noisy training labels",
              bn_train >= 0.95, f"train {bn_train:.3f}, val {bn_val:.3f} (baseline val {base_val:.3f})")
    comb_train, comb_val = results["combined: early stop + dropout + aug"]
    ctx.claim("combining early stopping, dropout and augmentation raises validation accuracy by >= 10 points",
              comb_val >= base_val + 0.10, f"{base_val:.3f} -> {comb_val:.3f} (train {comb_train:.3f})")
