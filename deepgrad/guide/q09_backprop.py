"""Question 9: how does backpropagation work, and why do gradients vanish? Three experiments.

1. The four steps (forward, loss, backward, update) on a real network: a 2-layer MLP on digits written
   with the engine's tensor ops only (no ``nn``, no ``optim``), each step checked by a measurement.
2. Vanishing gradients with depth: per-layer gradient norms of a 20-layer sigmoid MLP, against ReLU
   (default and He initialisation), sigmoid + batch norm and sigmoid + residual connections, read off by
   :class:`deepgrad.diagnostics.GradientFlowMonitor`, and what each can learn in a few epochs.
3. Vanishing gradients through time: a tanh RNN, an LSTM and a GRU on the adding problem as the sequence
   grows, and the gradient of the output with respect to each earlier input (gradient vs time-step distance).
"""

from __future__ import annotations

import copy
import math

import numpy as np

import deepgrad as dg
from deepgrad import nn, optim
from deepgrad.data.datasets import load_digits, make_adding_problem
from deepgrad.diagnostics import GradientFlowMonitor, rnn_gradient_by_timestep
from deepgrad.models import MLP, Forecaster

from .common import accuracy, digits, fit

NUMBER = 9
QUESTION = "How does backpropagation work, and what are vanishing gradients?"
ANSWER = (
    "Backpropagation is the chain rule applied in reverse over the computation graph: (1) a forward pass computes "
    "and stores the activations, (2) the loss compares the output with the target, (3) the backward pass walks the "
    "graph from the loss to the inputs, multiplying each node's local derivative into the upstream gradient to get "
    "dLoss/dparameter for every weight, (4) an optimizer updates the weights against their gradients. Because the "
    "gradient reaching an early layer is a product of one factor per layer (or per time step in an RNN), factors "
    "below 1, such as sigmoid's derivative (at most 0.25), shrink it geometrically: early layers stop learning. "
    "ReLU with He initialisation, batch norm, residual connections and, through time, the gated LSTM/GRU cells "
    "(an additive memory path) keep the gradient alive."
)

# ---------------------------------------------------------------- 1. the four steps, engine ops only
HIDDEN, LR, BATCH = 128, 0.1, 32


def init_params(n_in: int, n_hidden: int, n_out: int) -> list[dg.Tensor]:
    """W1, b1, W2, b2 as leaves that require grad. W1 is He-scaled (ReLU activations stay O(1)); W2 is small so
    the first softmax is near uniform (loss ~ ln 10) instead of confidently wrong."""
    w1 = (dg.randn(n_in, n_hidden) * math.sqrt(2.0 / n_in)).requires_grad_()
    b1 = dg.zeros(n_hidden, requires_grad=True)
    w2 = (dg.randn(n_hidden, n_out) * (0.1 / math.sqrt(n_hidden))).requires_grad_()
    b2 = dg.zeros(n_out, requires_grad=True)
    return [w1, b1, w2, b2]


def forward(params: list[dg.Tensor], x: dg.Tensor) -> dg.Tensor:
    """Logits of the MLP: relu(x W1 + b1) W2 + b2."""
    w1, b1, w2, b2 = params
    return (x @ w1 + b1).relu() @ w2 + b2


def nll_loss(logits: dg.Tensor, y: dg.Tensor) -> dg.Tensor:
    """Mean negative log-likelihood of the true class: -mean(log_softmax(logits)[i, y_i])."""
    return -dg.gather(dg.log_softmax(logits, dim=1), 1, y.unsqueeze(1)).mean()


def sgd_step(params: list[dg.Tensor], lr: float) -> None:
    """p <- p - lr * dL/dp, outside the graph (an update must not be differentiated)."""
    with dg.no_grad():
        for p in params:
            p -= lr * p.grad
            p.grad = None  # the next backward() would otherwise accumulate into it


def directional_grad_check(params: list[dg.Tensor], x: dg.Tensor, y: dg.Tensor, eps: float = 1e-6) -> list:
    """For each parameter, compare backward() with a float64 central difference of L along u = g/|g|.

    Along u the directional derivative is g.u = |g|; agreement to 1e-6 means the gradient is right, and checking
    each parameter alone keeps a small wrong gradient from hiding behind a large one.
    Returns ``[(|g| from backward, finite difference, relative error)]`` in the order of ``params``.
    """
    p64 = [p.detach().double().requires_grad_() for p in params]
    x64 = x.double()
    nll_loss(forward(p64, x64), y).backward()

    def loss_moved(i, step):
        moved = [dg.tensor(p.array + step) if j == i else p for j, p in enumerate(p64)]
        return nll_loss(forward(moved, x64), y).item()

    checks = []
    with dg.no_grad():
        for i, p in enumerate(p64):
            g = p.grad.array
            norm = float(np.sqrt((g * g).sum()))
            numeric = (loss_moved(i, eps * g / norm) - loss_moved(i, -eps * g / norm)) / (2 * eps)
            checks.append((norm, numeric, abs(numeric - norm) / norm))
    return checks


def four_steps(ctx) -> None:
    """Narrate one training step in its four parts, check each, then train with the same four steps."""
    train, test = load_digits(seed=ctx.seed, flatten=True)  # pixels standardised with the training statistics
    (x_train, y_train), (x_test, y_test) = train.tensors, test.tensors
    params = init_params(64, HIDDEN, 10)
    xb, yb = x_train[:BATCH], y_train[:BATCH]
    logits = forward(params, xb)                                   # 1. forward: the graph is recorded
    loss = nll_loss(logits, yb)                                    # 2. loss
    loss0 = loss.item()
    loss.backward()                                                # 3. backward: p.grad for every leaf
    checks = directional_grad_check(params, xb, yb)
    sgd_step(params, LR)                                           # 4. update
    with dg.no_grad():
        loss1 = nll_loss(forward(params, xb), yb).item()
    ctx.say(f"1. forward   h = relu(x W1 + b1), logits = h W2 + b2: logits {tuple(logits.shape)}, graph node "
            f"{type(logits.grad_fn).__name__}")
    ctx.say(f"2. loss      L = -mean log softmax(logits)[y] = {loss0:.4f} (ln 10 = {math.log(10):.4f}: an untrained "
            f"net guesses uniformly)")
    ctx.say("3. backward  L.backward() applies the chain rule node by node, from L back to W1")
    ctx.table("Step 3 checked: |dL/dp| from backward() vs a float64 finite difference", ["parameter", "backward",
              "finite difference", "relative error"], [[n, g, fd, e] for n, (g, fd, e) in zip(("W1", "b1", "W2", "b2"),
                                                                                               checks)])
    ctx.say(f"4. update    p -= lr * p.grad under no_grad(): loss on the same batch {loss0:.4f} -> {loss1:.4f}")
    epochs = ctx.pick(8, 20)
    for _ in range(epochs):  # the same four steps, over every batch
        order = dg.randperm(len(x_train))
        for i in range(0, len(x_train), BATCH):
            idx = order[i:i + BATCH]
            nll_loss(forward(params, x_train[idx]), y_train[idx]).backward()
            sgd_step(params, LR)
    with dg.no_grad():
        test_acc = (forward(params, x_test).argmax(dim=1) == y_test).float().mean().item()
    rel_err = max(e for _, _, e in checks)
    ctx.claim("backward() computes the true gradient: it matches a finite difference for every parameter",
              rel_err < 1e-6, f"max relative error {rel_err:.1e}")
    ctx.claim(f"the four steps learn: the untrained loss is ln 10 +- 0.2 (a uniform guess), one update lowers it, "
              f"and {epochs} epochs of them reach >= 90% test accuracy",
              abs(loss0 - math.log(10)) < 0.2 and loss1 < loss0 and test_acc >= 0.90,
              f"batch loss {loss0:.3f} -> {loss1:.3f}; test accuracy {test_acc:.3f}")


# ---------------------------------------------------------------- 2. vanishing gradients with depth
DEPTH, WIDTH = 20, 32  # 20 weight layers


class ResidualBlock(nn.Module):
    """x + Linear(act(x)): the identity path carries the gradient past the layer unchanged."""

    def __init__(self, width: int, activation=nn.Sigmoid):
        super().__init__()
        self.act, self.linear = activation(), nn.Linear(width, width)

    def forward(self, x):
        return x + self.linear(self.act(x))


def residual_mlp(depth: int = DEPTH, width: int = WIDTH) -> nn.Sequential:
    """Input layer, ``depth - 2`` sigmoid residual blocks, output layer: ``depth`` weight layers in all."""
    blocks = [ResidualBlock(width) for _ in range(depth - 2)]
    return nn.Sequential(nn.Flatten(), nn.Linear(64, width), *blocks, nn.Sigmoid(), nn.Linear(width, 10))


def he_init(model: nn.Module) -> nn.Module:
    """Kaiming (He) normal weights, zero biases: keeps the ReLU activations' variance constant with depth."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return model


DEEP_MODELS = {
    "sigmoid": lambda: MLP(64, [WIDTH] * (DEPTH - 1), 10, activation="sigmoid"),
    "ReLU, default init": lambda: MLP(64, [WIDTH] * (DEPTH - 1), 10, activation="relu"),
    "ReLU + He init": lambda: he_init(MLP(64, [WIDTH] * (DEPTH - 1), 10, activation="relu")),
    "sigmoid + batch norm": lambda: MLP(64, [WIDTH] * (DEPTH - 1), 10, activation="sigmoid", batch_norm=True),
    "sigmoid + residual": residual_mlp,
}
FIXES = ("ReLU + He init", "sigmoid + batch norm", "sigmoid + residual")


def depth_experiment(ctx) -> None:
    data = digits(seed=ctx.seed)
    x, y = dg.tensor(data.x_train[:256]), dg.tensor(data.y_train[:256])
    epochs = ctx.pick(20, 40)
    rows, norms, status, acc = [], {}, {}, {}
    for name, make in DEEP_MODELS.items():
        ctx.progress(f"{DEPTH}-layer MLP, {name}: gradient norms, then {epochs} epochs of training")
        model = make()
        with GradientFlowMonitor(model) as monitor:  # per-layer gradient norms at initialisation
            nn.functional.cross_entropy(model(x), y).backward()
            monitor.step()
            layer_norms = monitor.typical_grad_norms()[monitor.weight_layers]
            status[name] = monitor.verdict().status
        norms[name] = layer_norms
        fit(model, data.x_train, data.y_train, epochs=epochs, lr=1e-3)
        acc[name] = accuracy(model, data.x_test, data.y_test)
        rows.append([name, layer_norms[0], layer_norms[-1], layer_norms[0] / layer_norms[-1], status[name], acc[name]])
    ctx.table(f"{DEPTH}-layer MLPs on digits: gradient norms at initialisation, then test accuracy after {epochs} "
              f"epochs", ["model", "|grad| layer 1", f"|grad| layer {DEPTH}", "first / last", "monitor verdict",
                          "test accuracy"], rows)
    ratio = norms["sigmoid"][0] / norms["sigmoid"][-1]
    ctx.figure(depth_figure(norms), "depth", "Gradient norm per layer",
               f"Each layer's weight-gradient norm at initialisation (log scale). Through {DEPTH} sigmoid layers the "
               f"gradient shrinks by ~{ratio ** (-1 / (DEPTH - 1)):.0f}x per layer (sigmoid' <= 0.25); the three "
               "fixes keep it level.")
    ctx.claim(f"in the {DEPTH}-layer sigmoid MLP the first layer's gradient norm is >= 10^6 times smaller than the "
              f"last layer's", ratio <= 1e-6, f"first/last = {ratio:.1e}")
    ctx.claim("ReLU with He init, batch norm and residual connections each keep every layer's gradient within "
              "100x of the last layer's (the monitor's verdict is 'healthy')",
              all(status[f] == "healthy" for f in FIXES),
              ", ".join(f"{f}: min layer/last = {min(norms[f] / norms[f][-1]):.2f}" for f in FIXES))
    ctx.claim(f"after {epochs} epochs the sigmoid MLP is still at chance (<= 20%) while each fix reaches >= 50%",
              acc["sigmoid"] <= 0.20 and all(acc[f] >= 0.50 for f in FIXES),
              ", ".join(f"{n}: {acc[n]:.3f}" for n in ("sigmoid", *FIXES)))


def depth_figure(norms: dict):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.2))
    for name, n in norms.items():
        ax.semilogy(np.arange(1, len(n) + 1), n, "-o", ms=3, label=name)
    ax.set(xlabel="layer (input -> output)", ylabel="||dL/dW|| (log scale)",
           title=f"{DEPTH}-layer MLP at initialisation")
    ax.set_xticks(range(1, DEPTH + 1, 2))  # layers are whole numbers
    ax.legend(fontsize=9, ncols=2, loc="lower center", bbox_to_anchor=(0.5, 1.08), frameon=False)
    ax.grid(alpha=0.3, which="both")
    return fig


# ---------------------------------------------------------------- 3. vanishing gradients through time
SOLVED = 0.01  # MSE; always answering the mean (1.0) scores 1/6 ~ 0.167


def train_adding(cell: str, seq_len: int, seed: int, max_steps: int):
    """Adam on fresh adding-problem batches until the held-out MSE is below SOLVED (checked every 50 steps).

    Returns (model, held-out MSE, steps taken, held-out inputs)."""
    dg.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = Forecaster(input_size=2, hidden_size=32, output_size=1, cell=cell)  # last hidden state -> Linear
    x_val, y_val = make_adding_problem(512, seq_len, seed=10_000 + seed).tensors
    opt = optim.Adam(model.parameters(), lr=2e-2)

    def val_mse():
        with dg.no_grad():
            return ((model(x_val) - y_val) ** 2).mean().item()

    step, mse = 0, val_mse()
    while step < max_steps and mse >= SOLVED:
        for _ in range(50):
            x, y = make_adding_problem(64, seq_len, seed=int(rng.integers(2**31))).tensors
            loss = ((model(x) - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        step += 50
        mse = val_mse()
    return model, mse, step, x_val


def time_experiment(ctx) -> None:
    lengths, max_steps = ctx.pick(((10, 50), 1500), ((10, 25, 50, 100, 150), 4000))
    rows, mse, by_distance = [], {}, {}
    for seq_len in lengths:
        for cell in ("rnn", "lstm", "gru"):
            ctx.progress(f"adding problem, length {seq_len}: training the {cell.upper()}")
            model, mse[cell, seq_len], steps, x_val = train_adding(cell, seq_len, ctx.seed, max_steps)
            solved = mse[cell, seq_len] < SOLVED
            rows.append([seq_len, cell.upper(), mse[cell, seq_len], steps if solved else f"not in {max_steps}"])
            if seq_len == lengths[-1]:
                # ||dy/dx_t|| for each input step t of the trained model; reversed, index = distance from the end.
                # In float64: the RNN's gradient fades below float32's smallest number (~1e-45) at long range,
                # and a plot or claim must show the value, not an underflow to 0.
                by_distance[cell] = rnn_gradient_by_timestep(copy.deepcopy(model).double(), x_val[:256].double(),
                                                             time_dim=1)[::-1]
    ctx.table("Adding problem: held-out MSE (the mean-guess baseline is 0.167) and steps to reach MSE < 0.01",
              ["length", "cell", "MSE", "steps to solve"], rows)
    longest = lengths[-1]
    ctx.figure(time_figure(by_distance, longest), "time", "Gradient vs time-step distance",
               f"||dy/dx_t|| of the trained models at length {longest}, against how many steps before the end "
               "input t was seen.")
    far = {c: float(g[-1] / g[0]) for c, g in by_distance.items()}  # first step vs last step
    ctx.claim(f"length {lengths[0]}: all three cells solve the adding problem (MSE < {SOLVED})",
              all(mse[c, lengths[0]] < SOLVED for c in ("rnn", "lstm", "gru")),
              ", ".join(f"{c.upper()} {mse[c, lengths[0]]:.4f}" for c in ("rnn", "lstm", "gru")))
    ctx.claim(f"length {longest}: LSTM and GRU solve it (MSE < {SOLVED}) while the tanh RNN stays near the mean-guess "
              f"baseline (MSE > 0.1)",
              mse["lstm", longest] < SOLVED and mse["gru", longest] < SOLVED and mse["rnn", longest] > 0.1,
              ", ".join(f"{c.upper()} {mse[c, longest]:.4f}" for c in ("rnn", "lstm", "gru")))
    ctx.claim(f"gradient {longest - 1} steps back, relative to the last step: >= 0.1 for the trained LSTM and GRU "
              f"(gates keep the path open), <= 1e-3 for the RNN (it vanishes geometrically)",
              far["lstm"] >= 0.1 and far["gru"] >= 0.1 and far["rnn"] <= 1e-3,
              ", ".join(f"{c.upper()} {v:.1e}" for c, v in far.items()))


def time_figure(by_distance: dict, seq_len: int):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for cell, g in by_distance.items():
        ax.semilogy(np.arange(len(g)), np.where(g > 0, g, np.nan), label=cell.upper())  # log(0) is not drawn
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set(xlabel="steps before the end (distance)", ylabel="||dy/dx_t|| (log scale)",
           title=f"adding problem, length {seq_len}")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    return fig


def run(ctx) -> None:
    ctx.say("Part 1: the four steps of backpropagation on a 64-128-10 MLP (engine tensor ops only)")
    four_steps(ctx)
    ctx.say(f"Part 2: vanishing gradients with depth ({DEPTH} layers of {WIDTH} units)")
    depth_experiment(ctx)
    ctx.say("Part 3: vanishing gradients through time (adding problem)")
    time_experiment(ctx)
