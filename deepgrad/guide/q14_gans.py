"""Question 14: what is a GAN? Two experiments with :mod:`deepgrad.gan`.

1. A ring of eight Gaussians in 2-D, the standard test of mode coverage: a plain GAN (MLP generator and
   discriminator, non-saturating loss) against the same GAN whose discriminator judges two samples at once
   (PacGAN: it sees when the fakes all look alike, i.e. mode collapse) and sees its inputs through annealed
   noise (instance noise, which keeps its gradients informative). Modes covered, the distance between
   generated and real points, and the losses of both players over time.
2. A DCGAN (transposed-convolution generator, strided-convolution discriminator) on the 8x8 digits: a grid
   of samples, how far the generated images are from the real ones before and after training, and how many
   of them a CNN trained on the real digits recognises.
"""

from __future__ import annotations

import numpy as np

import deepgrad as dg
from deepgrad import nn
from deepgrad.data.datasets import make_ring, ring_centers
from deepgrad.gan import GANTrainer, mode_coverage, ring_trainer, sliced_wasserstein
from deepgrad.models import DCGANDiscriminator, DCGANGenerator

from .common import digits, fit, image_grid

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
# The setting where the plain GAN collapses: its discriminator learns 8x faster than its generator (Adam lr 8e-3
# vs 1e-3). A discriminator that far ahead gives the generator one steep direction at a time, toward whichever
# mode it currently rates most real, and the plain GAN ends on 2 or 3 modes (seeds 0-3 checked); the mitigated
# GAN trains in exactly the same setting.
D_LR = 8e-3
RING_STEPS = 2000


def ring_experiment(ctx) -> None:
    data = make_ring(2000, modes=MODES, std=STD, seed=ctx.seed)
    steps = ctx.pick(RING_STEPS, 3 * RING_STEPS)
    ctx.say(f"both GANs: MLP generator (lr 1e-3) and discriminator (lr {D_LR:g}, {D_LR / 1e-3:.0f}x faster), the "
            f"non-saturating loss, {steps} generator steps of 256 samples, learning rates decayed to 1/10")
    runs = {}
    # the plain GAN judges one sample at a time with no noise; the mitigated one uses ring_trainer's defaults:
    # PacGAN packing (D sees pairs of samples) and instance noise on D's inputs, annealed to zero
    for name, options in (("plain GAN", {"pack": 1, "instance_noise": 0.0}), ("PacGAN + instance noise", {})):
        ctx.progress(f"training the {name}")
        trainer = ring_trainer(seed=ctx.seed, d_lr=D_LR, **options)
        trainer.fit(data, steps=steps, batch_size=256, lr_end_factor=0.1)  # a late, small lr settles on the modes
        samples = trainer.sample(2000)
        runs[name] = (trainer, samples, mode_coverage(samples, ring_centers(MODES), std=STD),
                      sliced_wasserstein(samples, data, seed=ctx.seed))
    ctx.table(f"Ring of {MODES} Gaussians, {steps} generator steps", ["GAN", "modes covered", "samples near a mode",
              "sliced Wasserstein to data"], [[n, f"{c.covered}/{c.modes}", c.high_quality, sw]
                                              for n, (_, _, c, sw) in runs.items()])
    ctx.figure(ring_figure(data, runs), "ring", "Generated points on the ring",
               f"Real data (grey) and 2000 generated points (colour) for each GAN. The plain GAN has collapsed onto a "
               f"few of the {MODES} modes; packing and instance noise keep the generator on at least {MODES - 1}.")
    plain, pac = runs["plain GAN"], runs["PacGAN + instance noise"]
    ctx.claim(f"mode collapse: the plain GAN covers <= {MODES // 2} of the {MODES} modes",
              plain[2].covered <= MODES // 2,
              f"{plain[2].covered}/{MODES} modes; samples near each mode {plain[2].counts.tolist()}")
    ctx.claim(f"packing + instance noise cover >= {MODES - 1} of the {MODES} modes, and the samples are closer to the "
              f"data (sliced Wasserstein) than the plain GAN's", pac[2].covered >= MODES - 1 and pac[3] < plain[3],
              f"PacGAN {pac[2].covered}/{MODES} modes, distance {pac[3]:.3f}; plain GAN {plain[2].covered}/{MODES} "
              f"modes, distance {plain[3]:.3f}")
    ctx.say("A collapsed generator puts its points on a few modes: it can look sharp (many samples near a mode) "
            "while most modes get nothing. The distance between the two point clouds sees both failures.")
    ctx.claim("the collapsed generator still looks sharp: >= 60% of its samples lie near a mode, yet its distance to "
              "the data is >= 2x the mitigated GAN's", plain[2].high_quality >= 0.6 and plain[3] >= 2 * pac[3],
              f"{plain[2].high_quality:.0%} near a mode; distance {plain[3]:.3f} vs {pac[3]:.3f}")

    history = pac[0].history
    ctx.figure(loss_figure(history), "losses", "Losses of both players (PacGAN + instance noise)",
               "Discriminator and generator losses per step (smoothed over 50 steps). Unlike a supervised loss they "
               "do not fall together: the discriminator's loss rises as the generator's falls, then both level off "
               "far from zero, neither player winning outright. Dotted: the losses at the game's balance, where the "
               "discriminator cannot tell real from generated (D = 1/2).")
    tenth = len(history["d_loss"]) // 10
    start = {k: float(np.mean(history[k][:50])) for k in ("d_loss", "g_loss")}
    end = {k: float(np.mean(history[k][-tenth:])) for k in ("d_loss", "g_loss", "d_real", "d_fake")}
    ctx.claim("the two losses move in opposite directions: from the first 50 steps to the last tenth of training the "
              "discriminator's loss rises and the generator's falls", end["d_loss"] > start["d_loss"]
              and end["g_loss"] < start["g_loss"],
              f"D {start['d_loss']:.3f} -> {end['d_loss']:.3f}, G {start['g_loss']:.3f} -> {end['g_loss']:.3f}")
    ctx.claim("neither player wins outright: over the last tenth D's loss stays >= half its value at the balance "
              "(2 ln 2) and D's mean output on real and on generated points differ by <= 0.4 (1 vs 0 for a perfect D)",
              end["d_loss"] >= np.log(2) and end["d_real"] - end["d_fake"] <= 0.4,
              f"D loss {end['d_loss']:.3f} (2 ln 2 = {2 * np.log(2):.3f}); D(real) {end['d_real']:.2f}, "
              f"D(generated) {end['d_fake']:.2f}")


def ring_figure(data: np.ndarray, runs: dict) -> list:
    """One panel per GAN: the real data in grey, its generated points on top."""
    import matplotlib.pyplot as plt

    panels = []
    for name, (_, samples, coverage, _) in runs.items():
        fig, ax = plt.subplots(figsize=(3.4, 3.6))
        ax.scatter(data[:, 0], data[:, 1], s=2, c="0.7")
        ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.5)
        ax.set(title=f"{name}\n{coverage.covered}/{coverage.modes} modes", xlim=(-3, 3), ylim=(-3, 3), aspect="equal")
        fig.tight_layout()
        panels.append(fig)
    return panels


def loss_figure(history: dict):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    window = 50
    for key, label in (("d_loss", "discriminator"), ("g_loss", "generator")):
        v = np.asarray(history[key])
        ax.plot(np.arange(window, len(v) + 1), np.convolve(v, np.ones(window) / window, mode="valid"), label=label)
    ax.axhline(2 * np.log(2), color="C0", ls=":", lw=1, label="2 ln 2")
    ax.axhline(np.log(2), color="C1", ls=":", lw=1, label="ln 2")
    ax.set(xlabel="generator step", ylabel="loss")
    ax.legend(ncols=2, fontsize=9)
    return fig


DCGAN_STEPS = 600
CONFIDENT = 0.9  # a digit counts as recognisable when the judge gives one class at least this probability


def judge_cnn() -> nn.Sequential:
    """A small CNN for 1x8x8 digits in [0, 1]: trained on the real digits, it judges the generated ones."""
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(128, 10))


def recognised(judge: nn.Module, images: np.ndarray) -> tuple[float, int]:
    """(fraction of ``images`` (N, 1, 8, 8) in [-1, 1] the judge assigns a class with >= CONFIDENT probability,
    number of different classes among those)."""
    judge.eval()
    with dg.no_grad():
        p = dg.softmax(judge(dg.tensor(((images + 1) / 2).astype(np.float32))), dim=1).numpy()
    sure = p.max(axis=1) >= CONFIDENT
    return float(sure.mean()), len(set(p.argmax(axis=1)[sure].tolist()))


def dcgan_experiment(ctx) -> None:
    data = digits(seed=ctx.seed)
    real = (data.x_train * 2 - 1).astype(np.float32)  # the generator's tanh output lives in [-1, 1]
    ctx.progress("training a judge: a CNN classifier of the real digits")
    dg.manual_seed(ctx.seed)
    judge = judge_cnn()
    fit(judge, data.x_train, data.y_train, epochs=15, lr=5e-3, device=ctx.device)
    judge.to("cpu")
    dg.manual_seed(ctx.seed)
    # Adam lr 1e-3 for the generator and 5e-4 for the discriminator: DCGAN's 2e-4 needs thousands of steps (after
    # 400 steps the judge recognised 26% of its samples on seed 0, about half with these rates). The share moves a
    # lot from one training run to the next (GAN training oscillates): 34-48% after 400 steps over seeds 0-4,
    # 36-50% after 600.
    trainer = GANTrainer(DCGANGenerator(latent_dim=32, image_size=8, base_width=32),
                         DCGANDiscriminator(image_size=8, base_width=32), lr=1e-3, d_lr=5e-4, seed=ctx.seed)
    flat_real = real.reshape(len(real), -1)
    untrained = trainer.sample(500)
    before, seen_before = sliced_wasserstein(untrained.reshape(500, -1), flat_real, seed=ctx.seed), recognised(
        judge, untrained)
    steps = ctx.pick(DCGAN_STEPS, 3000)
    ctx.progress(f"training the DCGAN ({steps} steps)")
    trainer.fit(real, steps=steps, batch_size=64)
    samples = trainer.sample(z=trainer.fixed_z)
    generated = trainer.sample(500)
    after, seen_after = sliced_wasserstein(generated.reshape(500, -1), flat_real, seed=ctx.seed), recognised(
        judge, generated)
    test = (data.x_test * 2 - 1).astype(np.float32)
    held_out, seen_real = sliced_wasserstein(test.reshape(len(test), -1), flat_real, seed=ctx.seed), recognised(
        judge, test)
    ctx.table(f"DCGAN on 8x8 digits: distance to the real training images, and digits a CNN judge recognises "
              f"(probability >= {CONFIDENT} for one class)", ["images", "sliced Wasserstein", "recognised", "classes"],
              [["generated, untrained", before, *seen_before], ["generated, trained", after, *seen_after],
               ["real held-out digits", held_out, *seen_real]])
    # 16 of each in a 4 x 4 grid: 8x8 digits need the room to be seen on a phone
    ctx.figure([image_grid(test[:16, 0], ncols=4, size=1.1, vmin=-1, vmax=1, title="real digits"),
                image_grid(samples[:16, 0], ncols=4, size=1.1, vmin=-1, vmax=1, title="DCGAN samples")],
               "dcgan", "Real and generated digits",
               f"16 held-out real digits and 16 DCGAN samples from fixed latent vectors, on the same grey scale, "
               f"after {steps} training steps. The judge recognises {seen_after[0]:.0%} of the generated digits, "
               f"of {seen_after[1]} classes ({seen_real[0]:.0%} of the real ones).")
    ctx.claim("training moves the DCGAN's images towards the real digits: distance to the data falls >= 2x",
              after <= before / 2, f"{before:.3f} -> {after:.3f} (real held-out digits: {held_out:.3f})")
    ctx.claim("the samples are recognisable digits of many classes: the judge recognises >= 30% of them (real "
              "digits: >= 85%, untrained generator: <= 5%) across >= 8 of the 10 classes",
              seen_after[0] >= 0.30 and seen_after[1] >= 8 and seen_real[0] >= 0.85 and seen_before[0] <= 0.05,
              f"trained {seen_after[0]:.0%} over {seen_after[1]} classes; real {seen_real[0]:.0%}; untrained "
              f"{seen_before[0]:.0%}")


def run(ctx) -> None:
    ctx.say("Part 1: mode coverage on a ring of 8 Gaussians")
    ring_experiment(ctx)
    ctx.say("Part 2: a DCGAN on digits")
    dcgan_experiment(ctx)
