"""Question 14: what is a GAN? Two experiments with :mod:`deepgrad.gan`.

1. A ring of eight Gaussians in 2-D, the standard test of mode coverage: a plain GAN (MLP generator and
   discriminator, non-saturating loss) against the same GAN whose discriminator judges two samples at once
   (PacGAN: it sees when the fakes all look alike, i.e. mode collapse) and sees its inputs through annealed
   noise (instance noise, which keeps its gradients informative). Modes covered, the distance between
   generated and real points, and the losses of both players over time.
2. A DCGAN (transposed-convolution generator, strided-convolution discriminator) on the 8x8 digits: a grid
   of samples and how far the generated images are from the real ones before and after training.
"""

from __future__ import annotations

import numpy as np

import deepgrad as dg
from deepgrad.gan import GANTrainer, make_ring, mode_coverage, ring_centers, ring_trainer, sliced_wasserstein
from deepgrad.models import DCGANDiscriminator, DCGANGenerator

from .common import digits, image_grid

NUMBER = 14
QUESTION = "What is a GAN, and what makes GANs hard to train?"
ANSWER = (
    "A generative adversarial network trains two networks against each other: a generator G maps random noise "
    "to samples, and a discriminator D learns to tell real samples from generated ones, while G learns to fool D "
    "(a minimax game; at the equilibrium G reproduces the data distribution and D outputs 1/2). In practice G "
    "maximises log D(G(z)) (the non-saturating loss) because the original log(1 - D(G(z))) gives vanishing "
    "gradients early on. Training is unstable: the losses oscillate instead of decreasing, and the generator can "
    "collapse onto a few modes of the data (mode collapse). Remedies include DCGAN's architecture rules (batch "
    "norm, strided convolutions, LeakyReLU), a well-tuned discriminator, minibatch discrimination or packing "
    "(PacGAN), label smoothing and Wasserstein losses."
)

MODES, STD = 8, 0.05


def ring_experiment(ctx) -> None:
    data = make_ring(2000, modes=MODES, std=STD, seed=ctx.seed)
    steps = ctx.pick(2000, 6000)
    runs = {}
    # the plain GAN judges one sample at a time with no noise; the mitigated one uses ring_trainer's defaults:
    # PacGAN packing (D sees pairs of samples) and instance noise on D's inputs, annealed to zero
    for name, options in (("plain GAN", {"pack": 1, "instance_noise": 0.0}), ("PacGAN + instance noise", {})):
        trainer = ring_trainer(seed=ctx.seed, **options)
        trainer.fit(data, steps=steps, batch_size=256, lr_end_factor=0.1)  # a late, small lr settles on the modes
        samples = trainer.sample(2000)
        runs[name] = (trainer, samples, mode_coverage(samples, ring_centers(MODES), std=STD),
                      sliced_wasserstein(samples, data, seed=ctx.seed))
    ctx.table(f"Ring of {MODES} Gaussians, {steps} generator steps", ["GAN", "modes covered", "samples near a mode",
              "sliced Wasserstein to data"], [[n, f"{c.covered}/{c.modes}", c.high_quality, sw]
                                              for n, (_, _, c, sw) in runs.items()])
    ctx.figure(ring_figure(data, runs), "ring", "Generated points on the ring",
               "Real data (grey) and 2000 generated points (colour) for each GAN.")
    ctx.figure(loss_figure(runs["PacGAN + instance noise"][0].history), "losses", "Losses of both players",
               "Discriminator and generator losses per step (smoothed): they do not decrease together as in "
               "supervised training; they settle around the game's balance.")
    plain, pac = runs["plain GAN"], runs["PacGAN + instance noise"]
    ctx.say("A collapsed generator puts its points on a few modes: it can look sharp (many samples near a mode) "
            "while most modes get nothing. The distance between the two point clouds sees both failures.")
    ctx.claim(f"packing + instance noise cover >= {MODES - 1} of the {MODES} modes, and the samples are closer to the "
              f"data (sliced Wasserstein) than the plain GAN's", pac[2].covered >= MODES - 1 and pac[3] < plain[3],
              f"PacGAN {pac[2].covered}/{MODES} modes, distance {pac[3]:.3f}; plain GAN {plain[2].covered}/{MODES} "
              f"modes, distance {plain[3]:.3f}")


def ring_figure(data: np.ndarray, runs: dict):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(3.4 * len(runs), 3.4))
    for ax, (name, (_, samples, coverage, _)) in zip(axes, runs.items()):
        ax.scatter(data[:, 0], data[:, 1], s=2, c="0.7")
        ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.5)
        ax.set(title=f"{name}: {coverage.covered}/{coverage.modes} modes", xlim=(-3, 3), ylim=(-3, 3), aspect="equal")
    fig.tight_layout()
    return fig


def loss_figure(history: dict):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    window = 50
    for key in ("d_loss", "g_loss"):
        v = np.asarray(history[key])
        ax.plot(np.convolve(v, np.ones(window) / window, mode="valid"), label=key)
    ax.set(xlabel="generator step", ylabel="loss")
    ax.legend()
    return fig


def dcgan_experiment(ctx) -> None:
    data = digits(seed=ctx.seed)
    real = (data.x_train * 2 - 1).astype(np.float32)  # the generator's tanh output lives in [-1, 1]
    dg.manual_seed(ctx.seed)
    trainer = GANTrainer(DCGANGenerator(latent_dim=32, image_size=8, base_width=32),
                         DCGANDiscriminator(image_size=8, base_width=32), seed=ctx.seed)
    flat_real = real.reshape(len(real), -1)
    before = sliced_wasserstein(trainer.sample(500).reshape(500, -1), flat_real, seed=ctx.seed)
    trainer.fit(real, steps=ctx.pick(400, 3000), batch_size=64)
    samples = trainer.sample(z=trainer.fixed_z)
    after = sliced_wasserstein(trainer.sample(500).reshape(500, -1), flat_real, seed=ctx.seed)
    held_out = sliced_wasserstein((data.x_test * 2 - 1).reshape(len(data.x_test), -1), flat_real, seed=ctx.seed)
    ctx.table("DCGAN on 8x8 digits: sliced Wasserstein distance to the real training images",
              ["images", "distance"], [["generated, untrained", before], ["generated, trained", after],
                                       ["real held-out digits (floor)", held_out]])
    ctx.figure(image_grid(samples[:32, 0], ncols=8, title="DCGAN samples (fixed latents)", size=0.9), "dcgan",
               "DCGAN samples", "32 generated digits from fixed latent vectors.")
    ctx.claim("training moves the DCGAN's images towards the real digits: distance to the data falls >= 2x",
              after <= before / 2, f"{before:.3f} -> {after:.3f} (real held-out digits: {held_out:.3f})")


def run(ctx) -> None:
    ctx.say("Part 1: mode coverage on a ring of 8 Gaussians")
    ring_experiment(ctx)
    ctx.say("Part 2: a DCGAN on digits")
    dcgan_experiment(ctx)
