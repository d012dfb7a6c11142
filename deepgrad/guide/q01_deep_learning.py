"""Question 1: what is deep learning? Measured on two interleaved spirals, a task no straight line solves.

Four models see the same data: a linear classifier; three linear layers with no activation between them
(still a linear map); one wide hidden layer; three narrow hidden layers with the same parameter count.
"""

from __future__ import annotations

import numpy as np

import deepgrad as dg
from deepgrad import nn
from deepgrad.data.datasets import make_spirals

from .common import accuracy, fit, n_params

NUMBER = 1
QUESTION = "What is deep learning, and what do its layers and non-linearities buy you?"
ANSWER = (
    "Deep learning fits functions built from many stacked layers, each a learned linear map followed by a "
    "non-linear activation, trained end to end with gradient descent. The non-linearity is essential: without "
    "it any stack of layers collapses into one linear map. Each layer re-represents its input, so the network "
    "learns its own features instead of relying on hand-made ones, and depth composes simple features into "
    "complex ones, often more efficiently (per parameter) than one very wide layer."
)

TURNS = 2.5  # two and a half turns: far from linearly separable, still learnable in seconds


def mlp(widths: list[int], activation=nn.ReLU) -> nn.Sequential:
    """2 inputs -> hidden layers of the given widths (each followed by ``activation``) -> 2 logits."""
    layers, d = [], 2
    for w in widths:
        layers += [nn.Linear(d, w), activation()]
        d = w
    return nn.Sequential(*layers, nn.Linear(d, 2))


MODELS = {
    # name: (factory, description). Deep and wide have about the same number of parameters (~2,270).
    "linear": (lambda: nn.Linear(2, 2), "logistic regression: one linear layer"),
    "deep, no activation": (lambda: mlp([32, 32, 32], nn.Identity), "3 hidden layers of 32, identity activations"),
    "wide (1 x 454)": (lambda: mlp([454]), "1 hidden layer of 454 ReLUs"),
    "deep (3 x 32)": (lambda: mlp([32, 32, 32]), "3 hidden layers of 32 ReLUs"),
}


def decision_figure(models: dict, x: np.ndarray, y: np.ndarray) -> list:
    """The predicted class over the plane for each model, with the test points on top: one panel per model."""
    import matplotlib.pyplot as plt

    g = np.linspace(-1.2, 1.2, 150, dtype=np.float32)
    grid = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    panels = []
    for name, model in models.items():
        with dg.no_grad():
            pred = model.eval()(dg.tensor(grid)).argmax(dim=1).numpy().reshape(len(g), len(g))
        fig, ax = plt.subplots(figsize=(3.2, 3.3))
        ax.contourf(g, g, pred, levels=[-0.5, 0.5, 1.5], colors=["#cfe0f7", "#f7d6cf"])
        ax.scatter(x[:, 0], x[:, 1], c=y, cmap="coolwarm", s=5)
        ax.set_title(name, fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.tight_layout()
        panels.append(fig)
    return panels


def run(ctx) -> None:
    train = make_spirals(ctx.pick(800, 2000), turns=TURNS, seed=ctx.seed)
    test = make_spirals(400, turns=TURNS, seed=ctx.seed + 1000)
    (x_tr, y_tr), (x_te, y_te) = ([t.numpy() for t in ds.tensors] for ds in (train, test))
    epochs, repeats = ctx.pick(120, 300), ctx.pick(3, 5)
    ctx.say(f"data: two spirals ({TURNS} turns), {len(x_tr)} training / {len(x_te)} test points; "
            f"Adam lr 5e-3, {epochs} epochs; each model trained from {repeats} random initialisations")

    rows, mean_acc, last = [], {}, {}
    for name, (make, description) in MODELS.items():
        ctx.progress(f"training {name} ({description}) {repeats} times")
        accs = []
        for _ in range(repeats):  # several initialisations: the comparison is about the model, not one draw
            model = make()
            fit(model, x_tr, y_tr, epochs=epochs, lr=5e-3, device=ctx.device)
            accs.append(accuracy(model, x_te, y_te, device=ctx.device))
        mean_acc[name], last[name] = float(np.mean(accs)), model.to("cpu")
        rows.append([name, description, n_params(model), mean_acc[name], min(accs), max(accs)])
    ctx.table("Test accuracy on two spirals", ["model", "layers", "parameters", "mean accuracy", "min", "max"], rows)
    ctx.figure(decision_figure(last, x_te, y_te), "boundaries", "What each model learned",
               "Predicted class over the plane (background) and the test points. The linear models can only "
               "cut the plane with a straight line; the ReLU networks bend the boundary along the spirals.")

    lin, deep_lin = mean_acc["linear"], mean_acc["deep, no activation"]
    wide, deep = mean_acc["wide (1 x 454)"], mean_acc["deep (3 x 32)"]
    ctx.claim("a linear model cannot separate the spirals (<= 75% test accuracy) while the ReLU networks bend the "
              "boundary along them: the deep one reaches >= 95%, the wide one >= 15 points above the linear model",
              lin <= 0.75 and deep >= 0.95 and wide >= lin + 0.15,
              f"linear {lin:.3f}, deep ReLU {deep:.3f}, wide ReLU {wide:.3f}")
    ctx.claim("stacking layers without non-linear activations adds nothing: 3 linear layers score within "
              "5 points of one linear layer (and <= 75%)", abs(deep_lin - lin) <= 0.05 and deep_lin <= 0.75,
              f"{deep_lin:.3f} vs {lin:.3f}")
    ctx.claim("at an equal parameter count, depth beats width: 3 x 32 ReLUs score >= 5 points above 1 x 454",
              deep >= wide + 0.05, f"deep {deep:.3f} vs wide {wide:.3f} "
              f"({n_params(last['deep (3 x 32)'])} vs {n_params(last['wide (1 x 454)'])} parameters)")
