"""Question 10: how do CNNs and RNNs differ? The same digits, seen as images by a CNN and as sequences of
rows by an RNN (a GRU reading one 8-pixel row per step): accuracy, convergence, parameters and time, then
the usual table of differences, each row checked by running both models.
"""

from __future__ import annotations

import time

import numpy as np

import deepgrad as dg
from deepgrad import nn, optim
from deepgrad.data import DataLoader, TensorDataset
from deepgrad.models import SequenceClassifier
from deepgrad.train import Trainer

from .common import digits, n_params

NUMBER = 10
QUESTION = "What is the difference between a CNN and an RNN?"
ANSWER = (
    "A CNN is feed-forward: convolution filters slide over a grid (image, spectrogram), sharing weights across "
    "space, so each feature sees a local receptive field and all positions are computed in parallel; it suits "
    "spatial patterns and usually expects a fixed input size (once flattened into dense layers). An RNN shares "
    "weights across time: it reads a sequence step by step and carries a hidden state, so each output can depend "
    "on everything before it and the input can have any length; it suits text, speech and time series, but its "
    "steps are sequential and long dependencies need LSTM/GRU cells. Both can solve many of the same tasks."
)


def small_cnn() -> nn.Sequential:
    """Two 3x3 conv + max-pool stages and a linear classifier, for 1x8x8 images."""
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(16 * 2 * 2, 10))


class RowReader(nn.Module):
    """An image (N, 1, H, 8) read as a sequence of H rows of 8 pixels by a GRU classifier."""

    def __init__(self, hidden_size: int = 32):
        super().__init__()
        self.classifier = SequenceClassifier(10, input_size=8, hidden_size=hidden_size, cell="gru")

    def forward(self, images):
        return self.classifier(images.reshape(images.shape[0], images.shape[-2], images.shape[-1]))


def train_and_measure(model, data, epochs: int, device: str) -> dict:
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=5e-3), metrics=["accuracy"],
                      device=device, progress=False)
    start = time.perf_counter()
    history = trainer.fit(DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=64, shuffle=True),
                          DataLoader(TensorDataset(data.x_test, data.y_test), batch_size=512), epochs=epochs)
    seconds = time.perf_counter() - start
    val = history["val_accuracy"]
    to_90 = next((i + 1 for i, a in enumerate(val) if a >= 0.90), None)
    return {"params": n_params(model), "accuracy": val[-1], "epochs to 90%": to_90, "s / epoch": seconds / epochs,
            "curve": val}


def accepts(model, images: np.ndarray) -> bool:
    """Whether ``model`` runs on ``images`` (a layer with a fixed input size raises an error)."""
    try:
        with dg.no_grad():
            model(dg.tensor(images))
        return True
    except (ValueError, RuntimeError):
        return False


@dg.no_grad()
def reach_of_a_change(cnn: nn.Sequential, rnn: RowReader, images: np.ndarray) -> tuple[float, float]:
    """Change the top row of the images. Returns (largest change of the CNN's first conv output below row 2,
    change of the RNN's hidden state after the last row)."""
    edited = images.copy()
    edited[:, :, 0, :] = 1.0 - edited[:, :, 0, :]
    conv1 = cnn[0]
    cnn_delta = (conv1(dg.tensor(edited)) - conv1(dg.tensor(images))).abs().numpy()[:, :, 2:, :].max()
    gru = rnn.classifier.rnn

    def last_hidden(x):
        return gru(dg.tensor(x.reshape(len(x), 8, 8)))[0][:, -1]

    rnn_delta = (last_hidden(edited) - last_hidden(images)).abs().numpy().max()
    return float(cnn_delta), float(rnn_delta)


def curves_figure(results: dict):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4))
    for name, r in results.items():
        ax.plot(np.arange(1, len(r["curve"]) + 1), r["curve"], "-o", ms=3, label=name)
    ax.axhline(0.9, color="gray", ls=":", label="90%")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set(xlabel="epoch", ylabel="test accuracy", ylim=(0, 1))
    ax.legend(loc="lower right")
    return fig


def run(ctx) -> None:
    data = digits(seed=ctx.seed)
    epochs = ctx.pick(25, 60)
    models = {"CNN (images)": small_cnn(), "RNN (rows as a sequence)": RowReader()}
    results = {}
    for name, m in models.items():
        ctx.progress(f"training the {name} ({epochs} epochs)")
        results[name] = train_and_measure(m.to(ctx.device), data, epochs, ctx.device)
    ctx.table(f"Digits 8x8, {epochs} epochs of Adam (lr 5e-3)", ["model", "parameters", "test accuracy",
              "epochs to 90%", "s / epoch"], [[n] + [r[k] for k in ("params", "accuracy", "epochs to 90%",
                                                                      "s / epoch")] for n, r in results.items()])
    ctx.figure(curves_figure(results), "curves", "Test accuracy per epoch", "The same digits as images (CNN) and "
               "as sequences of 8 rows (GRU).")
    cnn, rnn = models["CNN (images)"].to("cpu"), models["RNN (rows as a sequence)"].to("cpu")
    cnn.eval()
    rnn.eval()
    taller = np.concatenate([data.x_test[:8], data.x_test[:8, :, :4]], axis=2)  # 12 rows of 8 pixels
    cnn_ok, rnn_ok = accepts(cnn, taller), accepts(rnn, taller)
    cnn_reach, rnn_reach = reach_of_a_change(cnn, rnn, data.x_test[:64])
    ctx.table("The table of differences, checked", ["", "CNN", "RNN", "checked by"], [
        ["weights shared across", "space (filters slide)", "time (same cell each step)", "design"],
        ["input size", "fixed (" + ("accepted" if cnn_ok else "rejected") + " a 12x8 image)",
         "any length (" + ("accepted" if rnn_ok else "rejected") + " 12 rows)", "running both on 12x8 inputs"],
        ["context of a unit", f"local receptive field (conv1 below row 2 changed by {cnn_reach:.2g})",
         f"everything so far (final hidden state changed by {rnn_reach:.2g})", "editing the top row"],
        ["parameters here", results["CNN (images)"]["params"], results["RNN (rows as a sequence)"]["params"],
         "counting"],
        ["epochs to 90% here", results["CNN (images)"]["epochs to 90%"],
         results["RNN (rows as a sequence)"]["epochs to 90%"], "training both"],
    ])
    acc = {n: r["accuracy"] for n, r in results.items()}
    ctx.claim("both learn the same task: CNN and RNN each reach >= 93% test accuracy", min(acc.values()) >= 0.93,
              ", ".join(f"{n}: {a:.3f}" for n, a in acc.items()))
    e_cnn, e_rnn = results["CNN (images)"]["epochs to 90%"], results["RNN (rows as a sequence)"]["epochs to 90%"]
    ctx.claim("on images the CNN, whose filters build in locality, reaches 90% in fewer epochs with fewer parameters",
              e_cnn is not None and e_rnn is not None and e_cnn < e_rnn
              and results["CNN (images)"]["params"] < results["RNN (rows as a sequence)"]["params"],
              f"epochs to 90%: CNN {e_cnn}, RNN {e_rnn}; parameters {results['CNN (images)']['params']} vs "
              f"{results['RNN (rows as a sequence)']['params']}")
    ctx.claim("the RNN takes a sequence of any length (12 rows instead of 8); the CNN with a dense head rejects it",
              rnn_ok and not cnn_ok, f"RNN accepted: {rnn_ok}, CNN accepted: {cnn_ok}")
    ctx.claim("a change in the first row reaches the RNN's final hidden state but not the CNN's first-layer "
              "features two rows away (receptive field 3x3)", cnn_reach == 0.0 and rnn_reach > 1e-3,
              f"CNN change below row 2: {cnn_reach:.2g}; RNN final state change: {rnn_reach:.3g}")
