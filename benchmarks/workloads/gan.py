"""DCGAN training step (issue 9) on 1x28x28 MNIST-shaped data, batch 64.

G: Linear(100, 128*7*7) -> (128, 7, 7) -> ConvTranspose2d(128, 64, 4, 2, 1) + BatchNorm2d + ReLU
-> ConvTranspose2d(64, 1, 4, 2, 1) -> Tanh (7 -> 14 -> 28). D: Conv2d(1, 64, 4, 2, 1), LeakyReLU(0.2),
Conv2d(64, 128, 4, 2, 1), LeakyReLU(0.2), Flatten, Linear(128*7*7, 1) (28 -> 14 -> 7).
One step = one D update then one G update (non-saturating loss), BCEWithLogitsLoss,
Adam(lr 2e-4, betas (0.5, 0.999)). The latent noise is pre-drawn (seeded) and cycled, so both
libraries see the same noise at every step and the step times no random number generation.
"""

from __future__ import annotations

import numpy as np

from ..registry import workload
from .cnn import load_seeded_weights
from .common import randn, rng, to_lib

BATCH, LATENT, NOISE_BATCHES = 64, 100, 8


def _generator(nn):
    return nn.Sequential(
        nn.Linear(LATENT, 128 * 7 * 7), nn.Unflatten(1, (128, 7, 7)),
        nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1), nn.Tanh(),
    )


def _discriminator(nn):
    return nn.Sequential(
        nn.Conv2d(1, 64, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(128 * 7 * 7, 1),
    )


@workload("dcgan_step", "DCGAN on 1x28x28, batch 64: G linear->7x7->convT 14x14 (BN, ReLU)->convT 28x28 tanh, "
          "D conv 14x14->conv 7x7 (LeakyReLU 0.2)->linear; one D + one G update, BCEWithLogits, Adam(2e-4, 0.5)")
def build_dcgan(lib, device):
    nn = lib.nn
    gen = rng(30)
    g_net, d_net = _generator(nn).to(device), _discriminator(nn).to(device)
    load_seeded_weights(lib, g_net, gen)
    load_seeded_weights(lib, d_net, gen)
    real = to_lib(lib, device, gen.uniform(-1.0, 1.0, (BATCH, 1, 28, 28)).astype(np.float32))  # tanh's range
    noise = [to_lib(lib, device, randn(gen, BATCH, LATENT)) for _ in range(NOISE_BATCHES)]
    ones = to_lib(lib, device, np.ones((BATCH, 1), dtype=np.float32))
    zeros = to_lib(lib, device, np.zeros((BATCH, 1), dtype=np.float32))
    opt_g = lib.optim.Adam(g_net.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = lib.optim.Adam(d_net.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    count = [0]

    def step():
        z = noise[count[0] % NOISE_BATCHES]
        count[0] += 1
        fake = g_net(z)
        opt_d.zero_grad()
        loss_d = bce(d_net(real), ones) + bce(d_net(fake.detach()), zeros)
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        loss_g = bce(d_net(fake), ones)
        loss_g.backward()  # also fills D's grads: the next step's opt_d.zero_grad() drops them
        opt_g.step()
        return lib.stack([loss_d.detach(), loss_g.detach()])

    return step
