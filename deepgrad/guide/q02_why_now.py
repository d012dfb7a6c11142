"""Question 2: why is deep learning popular now? Data and compute, measured.

Data: the same small CNN and a linear classifier are trained on growing subsets of digits; the CNN keeps
turning extra examples into accuracy after the linear model has levelled off.
Compute: a training step's throughput with batch size 1 vs a large batch (the parallel work that GPUs
exploit), and, when a GPU is present, the same model's training step on CPU vs GPU.
"""

from __future__ import annotations

import math

import numpy as np

import deepgrad as dg
from deepgrad import nn, optim

from .common import accuracy, best_time, digits, fit

NUMBER = 2
QUESTION = "Why has deep learning become so popular?"
ANSWER = (
    "Because data and compute caught up with the idea. Deep networks have enough capacity to keep improving "
    "as the training set grows, where classic models level off; large labelled data sets (ImageNet, web text) "
    "supplied that data. Training is dominated by large matrix multiplications, work that parallel hardware, "
    "GPUs above all, does many times faster than a CPU. Add better training techniques (ReLU, good "
    "initialisation, batch norm, Adam, dropout) and open-source frameworks with automatic differentiation, and "
    "networks that were impractical in the 1990s became routine."
)


def small_cnn() -> nn.Sequential:
    """Two 3x3 conv blocks for 8x8 digits (~5.6k parameters)."""
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(32 * 2 * 2, 10))


def linear_model() -> nn.Sequential:
    """Multinomial logistic regression on the 64 pixels."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))


def learning_curve(ctx, data, sizes: list[int], steps: int) -> dict:
    """Test accuracy of each model trained on the first n examples (about ``steps`` optimizer steps each)."""
    order = np.random.default_rng(ctx.seed).permutation(len(data.y_train))
    curves = {"linear": [], "CNN": []}
    for n in sizes:
        ctx.progress(f"training both models on {n} examples")
        idx = order[:n]
        epochs = math.ceil(steps / math.ceil(n / 64))  # same number of updates whatever the data size
        for name, make in (("linear", linear_model), ("CNN", small_cnn)):
            model = make()
            fit(model, data.x_train[idx], data.y_train[idx], epochs=epochs, lr=5e-3, device=ctx.device)
            curves[name].append(accuracy(model, data.x_test, data.y_test, device=ctx.device))
    return curves


def step_time(model: nn.Module, batch: int, device: str, repeat: int = 3) -> float:
    """Seconds for one training step (forward, backward, Adam update) on a batch of 28x28 images."""
    model.to(device)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    x = dg.randn(batch, 1, 28, 28, device=device)
    y = dg.randint(0, 10, (batch,), device=device)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        loss.item()  # waits for the GPU to finish, so the timing is honest

    step()  # warm-up (allocations, GPU kernel compilation)
    return best_time(step, repeat)


def mlp() -> nn.Sequential:
    """A 784-512-512-10 MLP: almost all its work is matrix multiplication."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                         nn.Linear(512, 10))


def lenet() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84),
                         nn.ReLU(), nn.Linear(84, 10))


def run(ctx) -> None:
    import matplotlib.pyplot as plt

    # ---- data: accuracy vs training-set size
    data = digits(seed=ctx.seed)
    sizes = [25, 50, 100, 200, 400, 800, len(data.y_train)]
    curves = learning_curve(ctx, data, sizes, steps=ctx.pick(250, 600))
    ctx.table("Test accuracy vs number of training examples (digits 8x8)", ["examples", "linear", "CNN"],
              [[n, a, b] for n, a, b in zip(sizes, curves["linear"], curves["CNN"])])
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for name, acc in curves.items():
        ax.plot(sizes, acc, marker="o", label=name)
    ax.set(xscale="log", xlabel="training examples (log scale)", ylabel="test accuracy",
           title="More data, more accuracy")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.minorticks_off()
    ax.grid(alpha=0.3)
    ax.legend()
    ctx.figure(fig, "learning-curve", "Accuracy vs training-set size",
               "The same models trained with the same number of updates on growing subsets of digits.")
    cnn, lin = curves["CNN"], curves["linear"]
    ctx.claim("more data buys accuracy: the CNN trained on all examples beats the CNN trained on 25 by >= 20 points",
              cnn[-1] >= cnn[0] + 0.20, f"{cnn[0]:.3f} with 25 examples -> {cnn[-1]:.3f} with {sizes[-1]}")
    gap_small = float(np.mean(cnn[:2]) - np.mean(lin[:2]))
    gap_large = float(np.mean(cnn[-2:]) - np.mean(lin[-2:]))
    ctx.claim("the deep model turns data into accuracy better than the linear one: its lead on the two largest "
              "training sets is >= 1 point and larger than on the two smallest",
              gap_large >= 0.01 and gap_large > gap_small,
              f"CNN minus linear: {gap_small:+.3f} (25-50 examples), "
              f"{gap_large:+.3f} ({sizes[-2]}-{sizes[-1]} examples)")

    # ---- compute: parallel work per step, and CPU vs GPU
    ctx.progress("timing training steps")
    dg.manual_seed(ctx.seed)
    t1, t256 = step_time(mlp(), 1, "cpu", repeat=5), step_time(mlp(), 256, "cpu")
    speedup = 256 * t1 / t256
    ctx.say(f"784-512-512-10 MLP training step on the CPU: {1e3 * t1:.2f} ms for 1 image, {1e3 * t256:.1f} ms for 256 "
            f"({speedup:.0f}x more images per second when batched)")
    ctx.claim("batching is where the speed comes from: a batch of 256 trains >= 5x more images per second than "
              "one image at a time (the same parallelism GPUs scale up)", speedup >= 5,
              f"{256 / t256:.0f} vs {1 / t1:.0f} images/s ({speedup:.1f}x)")
    if dg.cuda_is_available():
        batch = ctx.pick(512, 2048)
        cpu, gpu = step_time(lenet(), batch, "cpu"), step_time(lenet(), batch, "cuda")
        ctx.table("Same model, same step, two devices", ["device", f"ms per step (batch {batch})", "images/s"],
                  [["cpu", 1e3 * cpu, batch / cpu], ["cuda", 1e3 * gpu, batch / gpu]])
        ctx.claim(f"the GPU trains LeNet-5 (batch {batch}) >= 3x faster than the CPU", cpu >= 3 * gpu,
                  f"{1e3 * cpu:.1f} ms vs {1e3 * gpu:.1f} ms per step ({cpu / gpu:.1f}x)")
    else:
        ctx.say("no GPU here (deepgrad.cuda_is_available() is False): the CPU-vs-GPU comparison was skipped; "
                "run with a CUDA GPU and CuPy installed to measure it (the claim is checked only then).")
