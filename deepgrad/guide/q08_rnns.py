"""Question 8: what is a recurrent neural network? A hidden state that carries information across steps.

1. A memory task: a sequence of random symbols; the label is the FIRST symbol, seen ten steps before the
   end. A vanilla (tanh) RNN reads the sequence one step at a time and answers from its final hidden state; a
   model without a hidden state that sees the last step cannot do better than chance. A linear readout fitted
   to the hidden state after every step shows the first symbol being carried along.
2. A real series: one-month-ahead forecasts of the S&P 500 (monthly, 1990-2022) by a GRU reading the last
   12 months, against the persistence forecast ("next month = this month") and the drift forecast (the
   training months' mean change), which on a near-random walk are as good as the network.
"""

from __future__ import annotations

import numpy as np

import deepgrad as dg
from deepgrad import nn, optim
from deepgrad.data import DataLoader, TensorDataset
from deepgrad.data.datasets import load_series, sliding_windows
from deepgrad.models import Forecaster, SequenceClassifier
from deepgrad.train import Trainer

NUMBER = 8
QUESTION = "What is a recurrent neural network (RNN)?"
ANSWER = (
    "An RNN processes a sequence one step at a time with the same weights at every step, keeping a hidden state "
    "h_t = tanh(W_x x_t + W_h h_{t-1} + b) that summarises everything seen so far; outputs are read from the "
    "hidden state. Weight sharing lets it handle any length and the hidden state lets information from early "
    "steps influence later outputs, which suits text, speech and time series. It is trained by backpropagation "
    "through time; plain RNNs struggle with long-range dependencies (vanishing gradients), which LSTM and GRU "
    "cells address with gates."
)

SYMBOLS, LENGTH = 4, 10


def first_symbol_task(n: int, seed: int) -> TensorDataset:
    """One-hot sequences ``(n, LENGTH, SYMBOLS)`` of random symbols; the label is the symbol at step 0."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, SYMBOLS, size=(n, LENGTH))
    return TensorDataset(np.eye(SYMBOLS, dtype=np.float32)[tokens], tokens[:, 0].astype(np.int64))


class LastStepOnly(nn.Module):
    """The same job without a hidden state: a linear classifier of the last step's input."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(SYMBOLS, SYMBOLS)

    def forward(self, x):
        return self.fc(x[:, -1])


def memory_task(ctx) -> None:
    train, test = first_symbol_task(ctx.pick(4000, 8000), ctx.seed), first_symbol_task(1000, 10_000 + ctx.seed)
    epochs = ctx.pick(80, 120)
    models = {"RNN (tanh, 64 hidden units)": SequenceClassifier(SYMBOLS, input_size=SYMBOLS, hidden_size=64,
                                                                 cell="rnn"),
              "no hidden state (last step only)": LastStepOnly()}
    acc = {}
    for name, model in models.items():
        ctx.progress(f"training {name} ({epochs} epochs)")
        # clipping the gradient norm is the standard guard against a plain RNN's occasional gradient spikes
        trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-3), metrics=["accuracy"],
                          grad_clip_norm=1.0, device=ctx.device, progress=False)
        trainer.fit(DataLoader(train, batch_size=64, shuffle=True), epochs=epochs)
        acc[name] = trainer.evaluate(DataLoader(test, batch_size=1000))["accuracy"]
    ctx.table(f"Recall the first of {LENGTH} symbols (chance = {1 / SYMBOLS:.2f})", ["model", "test accuracy"],
              [[n, a] for n, a in acc.items()])
    rnn = models["RNN (tanh, 64 hidden units)"]
    ctx.progress("fitting a linear readout of the first symbol to the hidden state after each step")
    probe, head = readout_by_step(rnn, train, test)
    ctx.figure(readout_figure(probe, head), "readout", "The first symbol, read from the hidden state at each step",
               "A linear readout fitted to h_t (least squares on the training sequences) decodes the first symbol "
               "from the state after every step t, on held-out sequences: the state carries it while nine more "
               "symbols pass through. The network's own output layer, trained on the last state only, misreads it "
               "at most earlier steps: the state keeps the symbol, but not always in the code that layer reads.")
    ctx.say("first symbol decoded from h_t by a readout fitted at each step: "
            + ", ".join(f"t={t}: {a:.2f}" for t, a in enumerate(probe)))
    ctx.say("... by the output layer trained on the last state: " + ", ".join(f"t={t}: {a:.2f}"
                                                                            for t, a in enumerate(head)))
    rnn_acc, base_acc = acc["RNN (tanh, 64 hidden units)"], acc["no hidden state (last step only)"]
    ctx.claim(f"the RNN's hidden state carries the first symbol across {LENGTH} steps: >= 90% test accuracy, while "
              f"the model without a hidden state stays near chance (<= 35%)", rnn_acc >= 0.90 and base_acc <= 0.35,
              f"RNN {rnn_acc:.3f}, last step only {base_acc:.3f}, chance {1 / SYMBOLS:.2f}")
    ctx.claim("the first symbol is in the state at every step: a linear readout of h_t decodes it with >= 90% "
              "held-out accuracy for every t", min(probe) >= 0.90,
              f"lowest {min(probe):.3f} (t={int(np.argmin(probe))})")
    early = head[:-1]
    ctx.claim(f"the output layer trained on the last state is no readout of the earlier ones: below 90% at half or "
              f"more of the {LENGTH - 1} earlier steps", sum(a < 0.90 for a in early) >= len(early) / 2,
              f"below 90% at {sum(a < 0.90 for a in early)} of {len(early)} steps")


@dg.no_grad()
def readout_by_step(model: SequenceClassifier, train: TensorDataset, test: TensorDataset):
    """Held-out accuracy of decoding the label from the hidden state h_t after each step t: by a linear readout
    fitted to h_t of the training sequences (least squares onto the one-hot label, a linear probe), and by the
    model's own output layer (trained on the last state only). Returns (probe accuracies, head accuracies)."""
    model.eval()

    def states(data):
        x, y = data.tensors
        return model.rnn(x)[0].numpy().astype(np.float64), y.numpy()  # (N, T, H): h_t for every t

    (h_train, y_train), (h_test, y_test) = states(train), states(test)
    target = np.eye(SYMBOLS)[y_train]
    probe, head = [], []
    for t in range(LENGTH):
        a_train = np.hstack([h_train[:, t], np.ones((len(h_train), 1))])  # features and a bias column
        a_test = np.hstack([h_test[:, t], np.ones((len(h_test), 1))])
        w = np.linalg.lstsq(a_train, target, rcond=None)[0]
        probe.append(float(((a_test @ w).argmax(1) == y_test).mean()))
        logits = model.fc(dg.tensor(h_test[:, t].astype(np.float32))).numpy()
        head.append(float((logits.argmax(1) == y_test).mean()))
    return probe, head


def readout_figure(probe: list[float], head: list[float]):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(range(len(probe)), probe, "-o", label="readout fitted to h_t")
    ax.plot(range(len(head)), head, "-s", ms=4, alpha=0.8, label="output layer (trained on last h)")
    ax.axhline(1 / SYMBOLS, color="gray", ls=":", label="chance")
    ax.set(xlabel="step t", ylabel="accuracy from h_t", ylim=(0, 1.05))
    ax.set_xticks(range(len(probe)))
    ax.legend(fontsize=9, loc="center right")
    return fig


def sp500_windows(window: int = 12):
    """Windows of monthly log prices relative to their last value (the model sees the recent shape, not the
    level, which in the test years lies above anything seen in training); 80/20 split in time order."""
    log_price = np.log(load_series("sp500"))
    x, y = sliding_windows(log_price, window, horizon=1)
    last = x[:, -1, :]
    scale = 20.0  # monthly log changes are ~0.05; scale them to ~1 for the network
    x, y = ((x - last[:, None]) * scale).astype(np.float32), ((y - last) * scale).astype(np.float32)
    n_train = int(0.8 * len(x))
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:]), scale


def forecasting(ctx) -> None:
    ctx.progress("training a GRU forecaster on the S&P 500")
    (x_tr, y_tr), (x_te, y_te), scale = sp500_windows()
    model = Forecaster(input_size=1, hidden_size=16, cell="gru")
    trainer = Trainer(model, nn.MSELoss(), optim.Adam(model.parameters(), lr=1e-2), device=ctx.device, progress=False)
    trainer.fit(DataLoader(TensorDataset(x_tr, y_tr), batch_size=32, shuffle=True), epochs=ctx.pick(30, 100))
    pred = trainer.predict(DataLoader(TensorDataset(x_te, y_te), batch_size=len(x_te)))
    rmse = {"GRU forecaster": float(np.sqrt(((pred - y_te) ** 2).mean())) / scale,
            "persistence (next = last)": float(np.sqrt((y_te ** 2).mean())) / scale,
            "training-mean change (drift)": float(np.sqrt(((y_te - y_tr.mean()) ** 2).mean())) / scale}
    ctx.table(f"S&P 500, one month ahead, {len(x_te)} test months: RMSE of the log price", ["forecast", "RMSE"],
              [[k, v] for k, v in rmse.items()])
    drift = float(y_tr.mean()) / scale
    ctx.figure(forecast_figure(pred / scale, y_te / scale, drift), "sp500", "S&P 500 forecasts",
               "Predicted vs actual monthly log-price change on the test months. Persistence forecasts a change of "
               "0, drift the training months' mean change.")
    gru, persistence, drift_rmse = (rmse[k] for k in rmse)
    best = min(rmse, key=rmse.get)
    ctx.say(f"lowest RMSE here: {best} ({rmse[best]:.4f}). On a near-random-walk price series a simple baseline is "
            "as good as a trained network: the hidden state cannot invent information the past does not hold.")
    ctx.claim("the GRU learns a forecast as good as persistence, the hard baseline for prices (RMSE within 5%), and "
              "no better than the naive forecasts: it does not beat the better of persistence and drift by more than "
              "2%", abs(gru / persistence - 1) <= 0.05 and gru >= 0.98 * min(persistence, drift_rmse),
              f"GRU {gru:.4f}, persistence {persistence:.4f} (ratio {gru / persistence:.3f}), drift {drift_rmse:.4f} "
              f"(ratio {gru / drift_rmse:.3f})")


def forecast_figure(pred: np.ndarray, actual: np.ndarray, drift: float):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(actual[:, 0], label="actual change", lw=1)
    ax.plot(pred[:, 0], label="GRU forecast")
    ax.axhline(0, color="gray", ls=":", label="persistence (0)")
    ax.axhline(drift, color="black", ls="--", lw=1, label="drift (training mean)")
    ax.set(xlabel="test month", ylabel="log-price change")
    ax.legend(fontsize=9, ncols=2, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return fig


def run(ctx) -> None:
    ctx.say(f"Part 1: a memory task (recall the first of {LENGTH} symbols)")
    memory_task(ctx)
    ctx.say("Part 2: forecasting a real series (S&P 500 monthly close)")
    forecasting(ctx)
