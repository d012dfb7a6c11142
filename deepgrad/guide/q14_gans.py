"""Question 14: what is a GAN? Two experiments with :mod:`deepgrad.gan`.

1. A ring of eight Gaussians in 2-D, the standard test of mode coverage: a plain GAN (MLP generator and
   discriminator, non-saturating loss) against the same GAN whose discriminator judges two samples at once
   (PacGAN: it sees when the fakes all look alike, i.e. mode collapse) and sees its inputs through annealed
   noise (instance noise, which keeps its gradients informative). Modes covered, the distance between
   generated and real points, and the losses of both players over time.
2. WGAN-GP as a remedy: the same ring, a plain GAN against a Wasserstein GAN whose critic is kept 1-Lipschitz
   by a gradient penalty (a second derivative: the critic's input gradient is itself differentiated), on
   three seeds: modes reached and distance to the data.
3. A DCGAN (transposed-convolution generator, strided-convolution discriminator) on the 8x8 digits: a grid
   of samples, how far the generated images are from the real ones before and after training, and how many
   of them a CNN trained on the real digits recognises.
4. WGAN-GP on the same digits against that plain DCGAN, with a third of its generator steps (5 critic steps
   each): distance to the real digits and the judge's verdict, on one seed in quick mode and five in full mode.
"""

from __future__ import annotations

import time

import numpy as np

import deepgrad as dg
from deepgrad import nn
from deepgrad.data.datasets import make_ring, ring_centers
from deepgrad.gan import (
    GANTrainer,
    dcgan_wgan_gp_trainer,
    mode_coverage,
    ring_trainer,
    ring_wgan_gp_trainer,
    sliced_wasserstein,
)
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
    "(PacGAN), label smoothing and Wasserstein losses (WGAN-GP: a critic scoring realness on an open scale, "
    "kept 1-Lipschitz by a penalty on its input gradient, gives the generator useful gradients toward every mode)."
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


# WGAN-GP against the plain GAN: both with MLPs of width 64, WGAN_STEPS generator steps of 256 samples, learning
# rates decayed to 1/10. WGAN-GP uses 5 critic steps per generator step, Adam lr 2e-3 with betas (0.5, 0.9) and a
# penalty weight of 1: with the paper's weight 10 and lr 1e-4 the generator had not reached the ring after 1000
# steps (width 128, seed 0: sliced Wasserstein 0.63). Measured over seeds 0-4 at 200 steps: WGAN-GP reaches all 8
# modes (sliced Wasserstein 0.20-0.23), the plain GAN 2-3 (0.94-1.38); at 400 steps WGAN-GP still reaches all 8
# (0.11-0.13) and the plain GAN 1-7 (0.50-1.59). The run is the same size in quick and full mode (about 5 s a seed).
WGAN_STEPS, WGAN_WIDTH, NEAR = 200, 64, 10.0  # NEAR: a sample counts for a mode within NEAR * STD = 0.5 of it


def wgan_gp_experiment(ctx) -> None:
    steps, seeds = WGAN_STEPS, [ctx.seed + k for k in range(ctx.pick(3, 5))]
    ctx.say(f"plain GAN (non-saturating loss, discriminator lr {D_LR:g}) against WGAN-GP (critic with gradient "
            f"penalty, 5 critic steps per generator step), MLPs of width {WGAN_WIDTH}, {steps} generator steps of 256 "
            f"samples, seeds {seeds[0]}-{seeds[-1]}")
    rows, results = [], {"plain GAN": [], "WGAN-GP": []}
    for seed in seeds:
        data = make_ring(2000, modes=MODES, std=STD, seed=seed)
        for name in results:
            ctx.progress(f"training the {name}, seed {seed}")
            if name == "WGAN-GP":
                trainer = ring_wgan_gp_trainer(seed=seed, hidden=WGAN_WIDTH, lr=2e-3, gp_weight=1.0, betas=(0.5, 0.9))
            else:
                trainer = ring_trainer(seed=seed, hidden=WGAN_WIDTH, d_lr=D_LR, pack=1, instance_noise=0.0)
            trainer.fit(data, steps=steps, batch_size=256, lr_end_factor=0.1)
            samples = trainer.sample(2000)
            sharp = mode_coverage(samples, ring_centers(MODES), std=STD)
            spread = mode_coverage(samples, ring_centers(MODES), std=STD, threshold=NEAR)
            distance = sliced_wasserstein(samples, data, seed=seed)
            results[name].append((spread.covered, sharp.covered, sharp.high_quality, distance, samples, data))
            rows.append([name, seed, f"{spread.covered}/{MODES}", f"{sharp.covered}/{MODES}", sharp.high_quality,
                         distance])
    ctx.table(f"Plain GAN vs WGAN-GP on the ring, {steps} generator steps", ["GAN", "seed", "modes reached (0.5)",
              f"modes covered (3 std = {3 * STD:g})", "samples within 3 std", "sliced Wasserstein to data"], rows)
    plain, wgan = results["plain GAN"], results["WGAN-GP"]
    ctx.figure(wgan_figure(plain[0], wgan[0]), "wgan_gp", f"Plain GAN and WGAN-GP, seed {seeds[0]}",
               f"Real data (grey) and 2000 generated points after {steps} generator steps. The plain GAN sits on a few "
               f"modes; WGAN-GP spreads its points around the whole ring, reaching all {MODES} modes, though less "
               f"sharply.")
    ctx.claim(f"on every seed WGAN-GP reaches all {MODES} modes (each gets >= 1/4 of its share of the samples within "
              f"0.5 of it) and the plain GAN <= {MODES // 2}", all(w[0] == MODES for w in wgan)
              and all(p[0] <= MODES // 2 for p in plain),
              f"WGAN-GP {[w[0] for w in wgan]}, plain GAN {[p[0] for p in plain]} modes (seeds {seeds})")
    ctx.claim("on every seed WGAN-GP's samples are >= 3x closer to the data (sliced Wasserstein) than the plain GAN's",
              all(w[3] * 3 <= p[3] for w, p in zip(wgan, plain)),
              f"WGAN-GP {[round(w[3], 3) for w in wgan]}, plain GAN {[round(p[3], 3) for p in plain]}")
    ctx.say("The price: a Wasserstein critic pulls the generator toward every mode at once, so after a short run its "
            "points still spread between the modes. A collapsed GAN is sharp on the few modes it keeps.")
    ctx.claim("WGAN-GP's samples are not yet sharp: on every seed < 50% of them lie within 3 std of a mode",
              all(w[2] < 0.5 for w in wgan), f"{[f'{w[2]:.0%}' for w in wgan]} (seeds {seeds})")


def _ring_panel(title: str, data: np.ndarray, samples: np.ndarray):
    """One panel: the real ring data in grey, a GAN's generated points on top."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3.4, 3.6))
    ax.scatter(data[:, 0], data[:, 1], s=2, c="0.7")
    ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.5)
    ax.set(title=title, xlim=(-3, 3), ylim=(-3, 3), aspect="equal")
    fig.tight_layout()
    return fig


def wgan_figure(plain: tuple, wgan: tuple) -> list:
    """Two panels: the plain GAN's and WGAN-GP's points over the real data."""
    return [_ring_panel(f"{name}\n{run[0]}/{MODES} modes reached", run[5], run[4])
            for name, run in (("plain GAN", plain), ("WGAN-GP", wgan))]


def ring_figure(data: np.ndarray, runs: dict) -> list:
    """One panel per GAN: the real data in grey, its generated points on top."""
    return [_ring_panel(f"{name}\n{coverage.covered}/{coverage.modes} modes", data, samples)
            for name, (_, samples, coverage, _) in runs.items()]


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


def dcgan_experiment(ctx) -> tuple[nn.Module, np.ndarray, dict]:
    data = digits(seed=ctx.seed)
    real = (data.x_train * 2 - 1).astype(np.float32)  # the generator's tanh output lives in [-1, 1]
    ctx.progress("training a judge: a CNN classifier of the real digits")
    dg.manual_seed(ctx.seed)
    judge = judge_cnn()
    fit(judge, data.x_train, data.y_train, epochs=15, lr=5e-3, device=ctx.device)
    judge.to("cpu")
    trainer = plain_dcgan(ctx.seed)
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
    plain_runs = {ctx.seed: (after, *seen_after, samples)} if steps == DIGITS_PLAIN_STEPS else {}
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
    return judge, real, plain_runs


def plain_dcgan(seed: int) -> GANTrainer:
    """The plain DCGAN of part 3 (8x8 digits, non-saturating loss), its weights drawn after ``manual_seed(seed)``."""
    dg.manual_seed(seed)
    # Adam lr 1e-3 for the generator and 5e-4 for the discriminator: DCGAN's 2e-4 needs thousands of steps (after
    # 400 steps the judge recognised 26% of its samples on seed 0, about half with these rates). The share moves a
    # lot from one training run to the next (GAN training oscillates): 34-48% after 400 steps over seeds 0-4,
    # 36-50% after 600.
    return GANTrainer(DCGANGenerator(latent_dim=32, image_size=8, base_width=32),
                      DCGANDiscriminator(image_size=8, base_width=32), lr=1e-3, d_lr=5e-4, seed=seed)


# WGAN-GP on the digits against the plain DCGAN, at about the same training cost: the plain DCGAN takes 600 steps
# (one discriminator and one generator step each), WGAN-GP 200 generator steps with 5 critic steps each (1000 critic
# steps, each with a double backward for the penalty). Same generator, a critic with the discriminator's layers
# (at 8x8 it has no hidden norm layer to replace) and a raw score; Adam lr 1e-3, betas (0, 0.9), penalty weight 10:
# the paper's lr 1e-4 had not left the untrained generator's neighbourhood after 100 steps (seed 0: judge
# recognised 0%, sliced Wasserstein 0.63). Measured in full mode (GAN seeds 0-4 on guide seed 0's data split and
# judge, 5-9 on seed 5's): WGAN-GP sliced Wasserstein 0.067-0.080 (judge recognises 44-59%, 10 classes), plain
# DCGAN 0.118-0.211 (32-49%, 9-10 classes), a ratio of 1.54-2.85 (seed 2: 1.54, the only one under 1.8); the plain
# DCGAN of part 3 after 3000 steps is no closer (0.161). After 600 WGAN-GP generator steps 0.055-0.062 (seeds 0-4,
# each on its own split). About 7 s a WGAN-GP run and 5 s a plain one on one CPU core: quick mode runs seed
# ctx.seed against part 3's plain DCGAN, full mode five seeds.
DIGITS_PLAIN_STEPS, DIGITS_WGAN_STEPS = 600, 200


def wgan_gp_digits_experiment(ctx, judge: nn.Module, real: np.ndarray, plain_runs: dict) -> None:
    seeds = [ctx.seed + k for k in range(ctx.pick(1, 5))]
    flat_real = real.reshape(len(real), -1)
    ctx.say(f"plain DCGAN ({DIGITS_PLAIN_STEPS} steps of one discriminator and one generator step) against WGAN-GP "
            f"({DIGITS_WGAN_STEPS} generator steps of 5 critic steps each, gradient penalty weight 10), batches of 64, "
            f"the same generator; GAN seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}, data split "
            f"and judge of part 3")
    runs: dict[str, list] = {"plain DCGAN": [], "WGAN-GP": []}
    rows = []
    for seed in seeds:
        for name in runs:
            start = time.perf_counter()
            if name == "plain DCGAN" and seed in plain_runs:
                run, seconds = plain_runs[seed], None  # part 3 trained this very run
            else:
                ctx.progress(f"training the {name} on digits, seed {seed}")
                if name == "plain DCGAN":
                    trainer, steps = plain_dcgan(seed), DIGITS_PLAIN_STEPS
                else:
                    trainer = dcgan_wgan_gp_trainer(image_size=8, seed=seed, latent_dim=32, base_width=32, lr=1e-3)
                    steps = DIGITS_WGAN_STEPS
                trainer.fit(real, steps=steps, batch_size=64)
                seconds = time.perf_counter() - start
                generated = trainer.sample(500)
                run = (sliced_wasserstein(generated.reshape(500, -1), flat_real, seed=ctx.seed),
                       *recognised(judge, generated), trainer.sample(z=trainer.fixed_z))
            runs[name].append(run)
            rows.append([name, seed, run[0], run[1], run[2], "part 3" if seconds is None else f"{seconds:.1f}"])
    ctx.table("Plain DCGAN vs WGAN-GP on 8x8 digits", ["GAN", "seed", "sliced Wasserstein to data", "recognised",
              "classes", "training s"], rows)
    plain, wgan = runs["plain DCGAN"], runs["WGAN-GP"]
    ctx.figure([image_grid(plain[0][3][:16, 0], ncols=4, size=1.1, vmin=-1, vmax=1, title="plain DCGAN"),
                image_grid(wgan[0][3][:16, 0], ncols=4, size=1.1, vmin=-1, vmax=1, title="WGAN-GP")],
               "dcgan_wgan_gp", f"Plain DCGAN and WGAN-GP digits, seed {seeds[0]}",
               f"16 samples of each from fixed latent vectors, on the same grey scale: the plain DCGAN after "
               f"{DIGITS_PLAIN_STEPS} steps, WGAN-GP after {DIGITS_WGAN_STEPS} generator steps. The judge recognises "
               f"{plain[0][1]:.0%} and {wgan[0][1]:.0%} of their samples; WGAN-GP's are "
               f"{plain[0][0] / wgan[0][0]:.1f}x closer to the real digits (sliced Wasserstein).")
    ctx.claim("on every seed WGAN-GP's samples are >= 1.4x closer to the real digits (sliced Wasserstein) than the "
              f"plain DCGAN's, with {DIGITS_WGAN_STEPS} generator steps against its {DIGITS_PLAIN_STEPS}",
              all(w[0] * 1.4 <= p[0] for w, p in zip(wgan, plain)),
              f"WGAN-GP {[round(w[0], 3) for w in wgan]}, plain DCGAN {[round(p[0], 3) for p in plain]} "
              f"(seeds {seeds})")
    ctx.claim("and they stay recognisable digits of many classes: on every seed the judge recognises >= 30% of "
              "WGAN-GP's samples across >= 8 of the 10 classes", all(w[1] >= 0.30 and w[2] >= 8 for w in wgan),
              f"{[f'{w[1]:.0%} over {w[2]} classes' for w in wgan]} (plain DCGAN "
              f"{[f'{p[1]:.0%} over {p[2]} classes' for p in plain]})")


def run(ctx) -> None:
    ctx.say("Part 1: mode coverage on a ring of 8 Gaussians")
    ring_experiment(ctx)
    ctx.say("Part 2: WGAN-GP, a remedy by a gradient penalty (a second derivative)")
    wgan_gp_experiment(ctx)
    ctx.say("Part 3: a DCGAN on digits")
    judge, real, plain_runs = dcgan_experiment(ctx)
    ctx.say("Part 4: WGAN-GP against the plain DCGAN on digits")
    wgan_gp_digits_experiment(ctx, judge, real, plain_runs)
