"""Question 7: pooling — max, average and sum pooling on a worked example, then their effect on a CNN's
accuracy and on its robustness to shifted inputs (28x28 digits moved by a few pixels).
"""

from __future__ import annotations

import numpy as np

import deepgrad as dg
from deepgrad import nn

from .common import accuracy, digits, fit, shift

NUMBER = 7
QUESTION = "What is pooling in a CNN? How do max, average and sum pooling differ?"
ANSWER = (
    "Pooling slides a window (typically 2x2, stride 2) over each feature map and summarises it by one number, "
    "with no learned weights: max pooling keeps the strongest response (is this feature present anywhere "
    "here?), average pooling the mean (smoother, keeps how much of it there is), sum pooling the total (the "
    "average times the window size). It shrinks the maps (4x fewer values for 2x2), cutting compute and "
    "parameters downstream, enlarges the receptive field of later layers, and makes the features tolerant of "
    "small shifts. Max pooling is the usual default inside CNNs; global average pooling often replaces the "
    "flatten + dense head."
)

POOLS = {"max": nn.MaxPool2d, "average": nn.AvgPool2d, "sum": nn.SumPool2d, "none": None}
SHIFTS = [(0, 2), (2, 0), (2, 2), (-2, 1)]


def worked_example(ctx) -> None:
    """A 4x4 input pooled with 2x2 windows, stride 2, by each layer and by hand."""
    x = np.array([[1, 3, 2, 0],
                  [4, 2, 1, 1],
                  [0, 1, 5, 6],
                  [2, 2, 7, 8]], dtype=np.float32)
    ctx.table("Worked example: the 4x4 input (four 2x2 windows: rows 0-1 / 2-3 x cols 0-1 / 2-3)",
              ["", "col 0", "col 1", "col 2", "col 3"],
              [[f"row {i}"] + [int(v) for v in row] for i, row in enumerate(x)])
    windows = x.reshape(2, 2, 2, 2).transpose(0, 2, 1, 3).reshape(2, 2, 4)  # (out_row, out_col, window values)
    by_hand = {"max": windows.max(-1), "average": windows.mean(-1), "sum": windows.sum(-1)}
    rows, ok = [], True
    for name in by_hand:
        out = POOLS[name](2)(dg.tensor(x[None, None])).numpy()[0, 0]
        ok &= bool(np.allclose(out, by_hand[name]))
        rows.append([f"{name} pooling", str(out.tolist()), str(by_hand[name].tolist())])
    ctx.table("2x2 pooling, stride 2: layer output vs by hand", ["layer", "deepgrad output", "by hand"], rows)
    ctx.claim("MaxPool2d, AvgPool2d and SumPool2d compute the window max, mean and sum (checked by hand on the "
              "worked example)", ok, "; ".join(f"{r[0]} {r[1]}" for r in rows))


def cnn(pool: str) -> nn.Sequential:
    """Two 5x5 conv blocks on 28x28 digits, each followed by the given 2x2 pooling (or none)."""
    def block(c_in, c_out):
        layers = [nn.Conv2d(c_in, c_out, 5, padding=2), nn.ReLU()]
        return layers + ([POOLS[pool](2)] if POOLS[pool] else [])

    side = 7 if POOLS[pool] else 28
    return nn.Sequential(*block(1, 8), *block(8, 16), nn.Flatten(), nn.Linear(16 * side * side, 10))


def global_max_cnn() -> nn.Sequential:
    """Max pooling over the whole last feature map instead of a dense layer over positions: each of the 32
    channels reports only *whether* its feature occurs, not *where*."""
    return nn.Sequential(nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 32, 5, padding=2), nn.ReLU(), nn.AdaptiveMaxPool2d(1),
                         nn.Flatten(), nn.Linear(32, 10))


def run(ctx) -> None:
    worked_example(ctx)
    data = digits(size=28, seed=ctx.seed)
    epochs = ctx.pick(6, 15)
    rows, clean, shifted = [], {}, {}
    # "none" (no pooling: a dense layer over 16 full 28x28 maps) is the slowest model; only the full run trains it
    variants = ["max", "average", "sum", "global max"] + ctx.pick([], ["none"])
    for name in variants:
        ctx.progress(f"training the CNN with {name} pooling")
        model = global_max_cnn() if name == "global max" else cnn(name)
        # the global-pool head has only 32 inputs and needs more epochs to reach a comparable accuracy
        fit(model, data.x_train, data.y_train, epochs=2 * epochs if name == "global max" else epochs, lr=3e-3,
            device=ctx.device, anneal=True)
        clean[name] = accuracy(model, data.x_test, data.y_test, device=ctx.device)
        per_shift = [accuracy(model, shift(data.x_test, dy, dx), data.y_test, device=ctx.device) for dy, dx in SHIFTS]
        shifted[name] = float(np.mean(per_shift))
        rows.append([name, sum(p.numel() for p in model.parameters()), clean[name]] + per_shift + [shifted[name]])
    ctx.table("Test accuracy by pooling type (centred training digits; test digits shifted by (rows, cols))",
              ["pooling", "parameters", "no shift"] + [f"shift {s}" for s in SHIFTS] + ["mean shifted"], rows)
    ctx.claim("every pooling type trains a good classifier (>= 93% on centred test digits)",
              min(clean[p] for p in ("max", "average", "sum")) >= 0.93,
              ", ".join(f"{p} {clean[p]:.3f}" for p in ("max", "average", "sum")))
    without = f", no pooling {shifted['none']:.3f}" if "none" in shifted else ""
    ctx.figure(shift_figure(clean, rows, variants), "shifts", "Accuracy on shifted digits, by pooling",
               "Test accuracy of each CNN on centred digits and on digits shifted by (rows, cols) pixels. The 2x2 "
               "pools followed by a dense layer lose much of their accuracy; global max pooling keeps most of it.")
    drop_local, drop_global = clean["max"] - shifted["max"], clean["global max"] - shifted["global max"]
    ctx.say(f"2x2 pooling followed by a dense layer gives only limited robustness to 2-pixel shifts (mean shifted "
            f"accuracy: max {shifted['max']:.3f}{without}): the dense layer still reads *where* each feature is. "
            "Pooling over the whole map removes the position.")
    ctx.claim("2x2 max pooling + a dense layer is only a little robust: shifting the digits 2 px costs it >= 10 "
              "points of accuracy", drop_local >= 0.10,
              f"{clean['max']:.3f} -> {shifted['max']:.3f} (mean over {len(SHIFTS)} shifts)")
    ctx.claim("global max pooling buys translation robustness: shifting the digits 2 px costs the global-max-pool "
              "CNN <= half the accuracy it costs the 2x2-max-pool + dense CNN",
              drop_global <= 0.5 * drop_local,
              f"accuracy drop {drop_global:.3f} ({clean['global max']:.3f} -> {shifted['global max']:.3f}) vs "
              f"{drop_local:.3f} ({clean['max']:.3f} -> {shifted['max']:.3f})")
    # the dense head reads every value of the last feature maps: pooling shrinks what it reads
    heads = {name: model_head_size(name) for name in ("none", "max", "global max")}
    ctx.say("pooling also shrinks the dense head: " + ", ".join(f"{n} pooling {p:,} weights and biases"
                                                                   for n, p in heads.items()))
    ctx.claim("pooling shrinks the dense head: two 2x2 pools cut its parameters >= 15x (16 maps of 7x7 instead of "
              "28x28), global max pooling >= 20x more", heads["none"] >= 15 * heads["max"]
              and heads["max"] >= 20 * heads["global max"],
              ", ".join(f"{n} {p:,}" for n, p in heads.items()))


def model_head_size(name: str) -> int:
    """Parameters of the final dense layer of the CNN with ``name`` pooling (built, not trained)."""
    model = global_max_cnn() if name == "global max" else cnn(name)
    return sum(p.numel() for p in model[-1].parameters())


def shift_figure(clean: dict, rows: list, variants: list):
    """Accuracy per test condition (no shift, then each shift), one line per pooling type."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    labels = ["none"] + [f"{dy},{dx}" for dy, dx in SHIFTS]
    for name, row in zip(variants, rows):
        ax.plot(range(len(labels)), [clean[name]] + row[3:3 + len(SHIFTS)], "-o", ms=4, label=name)
    ax.set_xticks(range(len(labels)), labels)
    ax.set(xlabel="shift of the test digits (rows,cols)", ylabel="test accuracy", ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, title="pooling", title_fontsize=9)
    return fig
