"""Training-step workloads over nn + optim (the layers issue's targets): LeNet-5 with SGD,
a small VGG with batch norm and Adam (batch 64; batch 512 on GPU only), and the tiny MLP
written with nn.Linear and optim.SGD.

Both libraries build the same modules (deepgrad.nn mirrors torch.nn) and load the same
seeded weights, so their first steps compute the same numbers.
"""

from __future__ import annotations

import numpy as np

from ..registry import workload
from .common import randn, rng


def load_seeded_weights(lib, model, gen: np.random.Generator) -> None:
    """Overwrite every floating parameter/buffer with seeded values, identical on both sides:
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases, BatchNorm stats left as built."""
    state = {}
    for name, value in model.state_dict().items():
        shape = tuple(value.shape)
        if "running" in name or "num_batches" in name or not name.endswith(("weight", "bias")):
            continue
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        bound = 1.0 / np.sqrt(fan_in)
        if ".bn" in name or (len(shape) == 1 and name.endswith("weight")):  # norm scale: ones
            arr = np.ones(shape, dtype=np.float32)
        else:
            arr = gen.uniform(-bound, bound, size=shape).astype(np.float32)
        state[name] = lib.tensor(arr)
    model.load_state_dict(state, strict=False)


def _classification_step(lib, model, optimizer, x, y, loss_fn):
    def step():
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    return step


def lenet5(nn):
    """LeNet-5 for 1x28x28 inputs (the layers of ``lenet5_sgd`` and ``lenet5_infer_*``)."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


@workload("lenet5_sgd", "LeNet-5 on 1x28x28, batch 64, cross-entropy, SGD(momentum 0.9): one training step")
def build_lenet5(lib, device):
    nn = lib.nn
    gen = rng(10)
    model = lenet5(nn).to(device)
    load_seeded_weights(lib, model, gen)
    x = lib.tensor(randn(gen, 64, 1, 28, 28), device=device)
    y = lib.tensor(gen.integers(0, 10, 64), device=device)
    opt = lib.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return _classification_step(lib, model, opt, x, y, nn.CrossEntropyLoss())


VGG_SMALL = ("small VGG on 3x32x32, batch {batch}: [conv3x3(32)+BN+ReLU]x2, pool, [conv3x3(64)+BN+ReLU]x2, pool, "
             "fc256, dropout 0.5, fc10; Adam: one training step")


def _build_vgg_small(lib, device, batch: int):
    nn = lib.nn
    gen = rng(11)

    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]

    trunk = nn.Sequential(*block(3, 32), *block(32, 32), nn.MaxPool2d(2),
                          *block(32, 64), *block(64, 64), nn.MaxPool2d(2), nn.Flatten()).to(device)
    head = nn.Sequential(nn.Linear(64 * 8 * 8, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 10)).to(device)
    load_seeded_weights(lib, trunk, gen)
    load_seeded_weights(lib, head, gen)
    x = lib.tensor(randn(gen, batch, 3, 32, 32), device=device)
    y = lib.tensor(gen.integers(0, 10, batch), device=device)
    opt = lib.optim.Adam(list(trunk.parameters()) + list(head.parameters()), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        features = trunk(x)
        loss = loss_fn(head(features), y)
        loss.backward()
        opt.step()
        # Dropout masks differ between the libraries, so the agreement check looks at the
        # deterministic part of the first step: the features entering the classifier.
        return features.detach().mean()

    return step


@workload("vgg_small_adam", VGG_SMALL.format(batch=64), comparable_steps=1)
def build_vgg_small(lib, device):
    return _build_vgg_small(lib, device, 64)


# The GPU-sized batch: at 64 a GPU step is mostly launch overhead.
@workload("vgg_small_adam_b512", VGG_SMALL.format(batch=512), devices=("cuda",), comparable_steps=1)
def build_vgg_small_b512(lib, device):
    return _build_vgg_small(lib, device, 512)


@workload("mlp_tiny_nn", "MLP 2-16-16-1 tanh with nn.Linear, batch 8, MSELoss, optim.SGD: one training step")
def build_mlp_tiny_nn(lib, device):
    nn = lib.nn
    gen = rng(12)
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1)).to(device)
    load_seeded_weights(lib, model, gen)
    x = lib.tensor(randn(gen, 8, 2), device=device)
    y = lib.tensor(randn(gen, 8, 1), device=device)
    opt = lib.optim.SGD(model.parameters(), lr=0.05)
    return _classification_step(lib, model, opt, x, y, nn.MSELoss())
