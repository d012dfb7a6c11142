"""GAN training: a trainer alternating discriminator and generator steps with the original minimax loss or
the non-saturating one, optional one-sided label smoothing and ``n_critic`` discriminator steps per
generator step; loss tracking, PNG sample grids at intervals, and for 2-D data the mode coverage and a
distribution distance (sliced Wasserstein).

The game (Goodfellow et al., 2014): D maximises log D(x) + log(1 - D(G(z))); G minimises
log(1 - D(G(z))) ("minimax"), whose gradient vanishes while D confidently rejects the fakes early in
training, so in practice G maximises log D(G(z)) instead ("non_saturating"): same fixed point, strong
gradients when G is losing. Discriminators here return logits, and the losses are written with softplus:
-log sigmoid(l) = softplus(-l), -log(1 - sigmoid(l)) = softplus(l).

>>> data = make_ring(2000, std=0.05, seed=0)
>>> trainer = ring_trainer(seed=0)          # MLP GAN + PacGAN packing + annealed instance noise
>>> history = trainer.fit(data, steps=2000, batch_size=256, lr_end_factor=0.1)
>>> mode_coverage(trainer.sample(2000), ring_centers(), std=0.05).covered
8

For images: ``GANTrainer(DCGANGenerator(...), DCGANDiscriminator(...)).fit(images, steps, sample_every=500,
sample_dir="samples")`` writes PNG grids of a fixed set of latents as training goes.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from . import nn, optim
from .autograd import no_grad
from .creation import tensor
from .data.dataset import Dataset
from .functional import softplus
from .io import atomic_write_bytes
from .tensor import Tensor
from .train.guards import check_finite_gradients

LOSSES = ("non_saturating", "minimax", "least_squares")


# ----------------------------------------------------------------------------- losses
def discriminator_loss(real_logits: Tensor, fake_logits: Tensor, label_smoothing: float = 0.0,
                       kind: str = "non_saturating") -> Tensor:
    """-[t log D(x) + (1 - t) log(1 - D(x))] on real samples with target t = 1 - ``label_smoothing``
    (one-sided smoothing: fakes keep target 0), plus -log(1 - D(G(z))) on fakes, each averaged; for
    ``kind="least_squares"`` (LSGAN, Mao et al., 2017) 0.5 (D(x) - t)^2 + 0.5 D(G(z))^2 on raw outputs."""
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"discriminator_loss: label_smoothing must be in [0, 1), got {label_smoothing}")
    t = 1.0 - label_smoothing
    if kind == "least_squares":
        return ((real_logits - t) ** 2).mean() * 0.5 + (fake_logits ** 2).mean() * 0.5
    if kind not in LOSSES:
        raise ValueError(f"discriminator_loss: kind must be one of {LOSSES}, got {kind!r}")
    real = softplus(-real_logits) * t + (softplus(real_logits) * (1.0 - t) if label_smoothing else 0.0)
    return real.mean() + softplus(fake_logits).mean()


def generator_loss(fake_logits: Tensor, kind: str = "non_saturating") -> Tensor:
    """``"non_saturating"``: -log D(G(z)); ``"minimax"``: log(1 - D(G(z))) (the original objective);
    ``"least_squares"``: 0.5 (D(G(z)) - 1)^2."""
    if kind == "least_squares":
        return ((fake_logits - 1.0) ** 2).mean() * 0.5
    if kind == "non_saturating":
        return softplus(-fake_logits).mean()
    if kind == "minimax":
        return -softplus(fake_logits).mean()
    raise ValueError(f"generator_loss: kind must be one of {LOSSES}, got {kind!r}")


# ----------------------------------------------------------------------------- data
def _as_array(data) -> np.ndarray:
    if isinstance(data, Tensor):
        return data.numpy()
    if isinstance(data, np.ndarray):
        return data
    if isinstance(data, Dataset) and hasattr(data, "tensors"):
        return data.tensors[0].numpy()
    raise TypeError(f"GANTrainer: data must be an array, a Tensor, a TensorDataset or an iterable loader, "
                    f"got {type(data).__name__}")


def _batches(data, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Endless real batches: shuffled passes over an array, or a loader's batches (first element) in a loop."""
    if not isinstance(data, (np.ndarray, Tensor, Dataset)) and hasattr(data, "__iter__"):
        while True:
            empty = True
            for batch in data:
                empty = False
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                yield x.numpy() if isinstance(x, Tensor) else np.asarray(x)
            if empty:
                raise ValueError("GANTrainer: the data loader yielded no batches")
    x = _as_array(data).astype(np.float32, copy=False)
    if len(x) < batch_size:
        raise ValueError(f"GANTrainer: {len(x)} samples are fewer than batch_size={batch_size}")
    while True:
        order = rng.permutation(len(x))
        for start in range(0, len(x) - batch_size + 1, batch_size):
            yield x[order[start:start + batch_size]]


def _mean_sigmoid(logits: Tensor) -> float:
    """Mean D(x) = sigmoid(logit), for the history (float64 on the host; stable for large |logits|)."""
    v = logits.detach().numpy().astype(np.float64)
    return float(np.mean(np.exp(-np.logaddexp(0.0, -v))))


# ----------------------------------------------------------------------------- trainer
class GANTrainer:
    """Alternate ``n_critic`` discriminator steps and one generator step.

    Optimizers default to DCGAN's Adam(lr=2e-4, betas=(0.5, 0.999)) for both players (``d_lr`` gives the
    discriminator its own rate: a faster critic keeps the generator's gradients informative). ``latent_dim``
    defaults to the generator's ``latent_dim`` attribute; z ~ N(0, I) from a generator seeded by ``seed``.
    ``history`` holds, per generator step, ``d_loss``, ``g_loss`` and the mean D(x) on real (``d_real``)
    and fake (``d_fake``) samples.

    ``pack`` > 1 is PacGAN (Lin et al., 2018): the discriminator judges ``pack`` samples at once,
    concatenated along dim 1 (its input has ``pack`` times the features or channels), so it sees how
    varied the fakes are and penalises mode collapse. Batch sizes must be multiples of ``pack``.
    ``instance_noise`` > 0 adds N(0, sigma^2) noise to everything the discriminator sees, real and fake,
    with sigma falling linearly from ``instance_noise`` to 0 over :meth:`fit` (Sonderby et al., 2016): the
    blurred distributions overlap, so early gradients pull the generator toward every mode, and it
    sharpens as the noise fades.
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, g_optimizer=None, d_optimizer=None,
                 loss: str = "non_saturating", label_smoothing: float = 0.0, n_critic: int = 1,
                 pack: int = 1, latent_dim: int | None = None, lr: float = 2e-4, d_lr: float | None = None,
                 betas: tuple[float, float] = (0.5, 0.999), instance_noise: float = 0.0, seed: int = 0):
        if loss not in LOSSES:
            raise ValueError(f"GANTrainer: loss must be one of {LOSSES}, got {loss!r}")
        if isinstance(n_critic, bool) or not isinstance(n_critic, int) or n_critic < 1:
            raise ValueError(f"GANTrainer: n_critic must be a positive int, got {n_critic!r}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"GANTrainer: label_smoothing must be in [0, 1), got {label_smoothing}")
        if isinstance(pack, bool) or not isinstance(pack, int) or pack < 1:
            raise ValueError(f"GANTrainer: pack must be a positive int, got {pack!r}")
        self.generator, self.discriminator = generator, discriminator
        self.latent_dim = latent_dim if latent_dim is not None else getattr(generator, "latent_dim", None)
        if self.latent_dim is None:
            raise ValueError("GANTrainer: pass latent_dim (the generator has no latent_dim attribute)")
        self.g_optimizer = g_optimizer or optim.Adam(generator.parameters(), lr=lr, betas=betas)
        self.d_optimizer = d_optimizer or optim.Adam(discriminator.parameters(), lr=lr if d_lr is None else d_lr,
                                                     betas=betas)
        self.loss, self.label_smoothing, self.n_critic, self.pack = loss, label_smoothing, n_critic, pack
        if instance_noise < 0:
            raise ValueError(f"GANTrainer: instance_noise must be >= 0, got {instance_noise}")
        self.instance_noise = instance_noise
        self.noise_scale = 1.0  # fit() anneals it from 1 to 0 over the run
        self.rng = np.random.default_rng(seed)
        self.fixed_z = self.rng.standard_normal((64, self.latent_dim)).astype(np.float32)  # for sample grids
        self.history: dict[str, list[float]] = {"d_loss": [], "g_loss": [], "d_real": [], "d_fake": []}
        self.steps_done = 0

    def latent(self, n: int) -> Tensor:
        """n draws of z ~ N(0, I)."""
        return tensor(self.rng.standard_normal((n, self.latent_dim)).astype(np.float32))

    def sample(self, n: int | None = None, z: np.ndarray | None = None, train_mode: bool = False) -> np.ndarray:
        """Generator outputs for ``n`` fresh latents (or the given ``z``), as a NumPy array, without gradients.
        The generator runs in eval mode unless ``train_mode`` (batch norm with batch statistics)."""
        g = self.generator
        was_training = g.training
        g.train(train_mode)
        try:
            with no_grad():
                z = self.latent(n) if z is None else tensor(np.asarray(z, dtype=np.float32))
                return g(z).numpy()
        finally:
            g.train(was_training)

    def _packed(self, x: Tensor) -> Tensor:
        """What D sees: instance noise added, then (N, C, ...) -> (N / pack, pack * C, ...), consecutive
        samples side by side for PacGAN."""
        sigma = self.instance_noise * self.noise_scale
        if sigma > 0:
            x = x + tensor(self.rng.standard_normal(x.shape).astype(np.float32) * np.float32(sigma))
        if self.pack == 1:
            return x
        if x.shape[0] % self.pack:
            raise ValueError(f"GANTrainer: batch size {x.shape[0]} is not a multiple of pack={self.pack}")
        return x.reshape(x.shape[0] // self.pack, self.pack * x.shape[1], *x.shape[2:])

    def _d_step(self, real: np.ndarray) -> tuple[float, float, float]:
        G, D = self.generator, self.discriminator
        with no_grad():  # the fakes are constants for D's step: no graph through G
            fake = G(self.latent(len(real)))
        real_logits, fake_logits = D(self._packed(tensor(real))), D(self._packed(fake))
        loss = discriminator_loss(real_logits, fake_logits, self.label_smoothing, self.loss)
        self.d_optimizer.zero_grad()
        loss.backward()
        check_finite_gradients(D.named_parameters(), self.steps_done + 1, "GANTrainer (discriminator)", loss.item())
        self.d_optimizer.step()
        return float(loss.item()), _mean_sigmoid(real_logits), _mean_sigmoid(fake_logits)

    def _g_step(self, batch_size: int) -> float:
        G, D = self.generator, self.discriminator
        flags = [p.requires_grad for p in D.parameters()]
        D.requires_grad_(False)  # G's step needs gradients through D, not for D's weights
        try:
            loss = generator_loss(D(self._packed(G(self.latent(batch_size)))), self.loss)
            self.g_optimizer.zero_grad()
            loss.backward()
            check_finite_gradients(G.named_parameters(), self.steps_done + 1, "GANTrainer (generator)", loss.item())
            self.g_optimizer.step()
        finally:
            for p, f in zip(D.parameters(), flags):
                p.requires_grad_(f)
        return float(loss.item())

    def step(self, batches: Iterator[np.ndarray]) -> dict[str, float]:
        """One generator step after ``n_critic`` discriminator steps on batches from ``batches``."""
        self.generator.train()
        self.discriminator.train()
        d_stats = []
        for _ in range(self.n_critic):
            real = next(batches)
            d_stats.append(self._d_step(real))
        d_loss, d_real, d_fake = (float(np.mean(v)) for v in zip(*d_stats))
        g_loss = self._g_step(len(real))
        logs = {"d_loss": d_loss, "g_loss": g_loss, "d_real": d_real, "d_fake": d_fake}
        if not all(math.isfinite(v) for v in logs.values()):
            raise FloatingPointError(f"GANTrainer: non-finite loss at step {self.steps_done + 1}: {logs}; lower the "
                                     f"learning rate")
        for k, v in logs.items():
            self.history[k].append(v)
        self.steps_done += 1
        return logs

    def fit(self, data, steps: int, batch_size: int = 64, sample_every: int | None = None,
            sample_dir: str | os.PathLike | None = None, callback: Callable[[int, dict], None] | None = None,
            progress: bool = False, lr_end_factor: float | None = None) -> dict[str, list[float]]:
        """Train for ``steps`` generator steps on ``data`` (an array / Tensor / TensorDataset of real samples,
        or a loader yielding batches); returns ``history``.

        With ``sample_every`` and ``sample_dir``, writes ``step{N:06d}.png`` every ``sample_every`` steps
        and at the end: an image grid of the fixed latents for image data (N, C, H, W), a scatter plot
        against the real data for 2-D points. ``callback(step, logs)`` runs after every step.
        ``lr_end_factor`` decays both learning rates linearly to that fraction over the run (a late, small
        learning rate lets the generator settle onto the modes instead of orbiting them).
        """
        if steps < 1:
            raise ValueError(f"GANTrainer.fit: steps must be >= 1, got {steps}")
        schedulers = []
        if lr_end_factor is not None:
            schedulers = [optim.lr_scheduler.LinearLR(o, start_factor=1.0, end_factor=lr_end_factor, total_iters=steps)
                          for o in (self.g_optimizer, self.d_optimizer)]
        batches = _batches(data, batch_size, self.rng)
        reference = None
        if sample_dir is not None and sample_every:
            reference = _as_array(data) if isinstance(data, (np.ndarray, Tensor, Dataset)) else None
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=steps, desc="GAN", unit="step", dynamic_ncols=True)
        try:
            for i in range(steps):
                self.noise_scale = 1.0 - i / steps
                logs = self.step(batches)
                for sched in schedulers:
                    sched.step()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items()}, refresh=False)
                if callback is not None:
                    callback(self.steps_done, logs)
                if sample_dir is not None and sample_every and ((i + 1) % sample_every == 0 or i + 1 == steps):
                    self.save_samples(os.path.join(sample_dir, f"step{self.steps_done:06d}.png"), reference)
        finally:
            self.noise_scale = 0.0
            if bar is not None:
                bar.close()
        return self.history

    def save_samples(self, path: str | os.PathLike, reference: np.ndarray | None = None) -> str:
        """Write the fixed latents' samples: an image grid (image data) or a 2-D scatter plot."""
        samples = self.sample(z=self.fixed_z) if reference is None or reference.ndim == 4 else self.sample(1000)
        if samples.ndim == 4:
            return save_image_grid(samples, path)
        if samples.ndim == 2 and samples.shape[1] == 2:
            return save_scatter(samples, path, real=reference, title=f"step {self.steps_done}")
        raise ValueError(f"save_samples: cannot draw samples of shape {samples.shape} (images or 2-D points)")


# ----------------------------------------------------------------------------- pictures
def image_grid(images: np.ndarray, nrow: int | None = None, padding: int = 1,
               value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """Tile (N, C, H, W) images into one (H', W') or (H', W', 3) array in [0, 1], ``nrow`` per row."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"image_grid: expected images (N, 1 or 3, H, W), got shape {images.shape}")
    lo, hi = value_range
    images = np.clip((images - lo) / (hi - lo), 0.0, 1.0)
    n, c, h, w = images.shape
    nrow = nrow or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / nrow))
    grid = np.ones((c, rows * (h + padding) + padding, nrow * (w + padding) + padding), dtype=np.float32)
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, y:y + h, x:x + w] = images[i]
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


def save_image_grid(images: np.ndarray, path: str | os.PathLike, nrow: int | None = None,
                    value_range: tuple[float, float] = (-1.0, 1.0), min_size: int = 320) -> str:
    """Write ``images`` (N, C, H, W) as a PNG grid (pixels enlarged to at least ``min_size`` across)."""
    from matplotlib.image import imsave

    grid = image_grid(images, nrow, value_range=value_range)
    scale = max(1, int(math.ceil(min_size / grid.shape[1])))
    grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)  # crisp pixels, no interpolation
    buf = io.BytesIO()
    imsave(buf, grid, cmap="gray", vmin=0.0, vmax=1.0, format="png")
    atomic_write_bytes(path, buf.getvalue())
    return os.fspath(path)


def save_scatter(samples: np.ndarray, path: str | os.PathLike, real: np.ndarray | None = None,
                 centers: np.ndarray | None = None, title: str | None = None) -> str:
    """A PNG scatter plot of 2-D ``samples`` over the ``real`` data (and mixture ``centers``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.5, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=3, alpha=0.3, color="tab:blue", label="real")
    ax.scatter(samples[:, 0], samples[:, 1], s=3, alpha=0.5, color="tab:orange", label="generated")
    if centers is not None:
        ax.scatter(centers[:, 0], centers[:, 1], marker="x", color="black", label="modes")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())
    return os.fspath(path)


def plot_losses(history: dict[str, list[float]], path: str | os.PathLike, smooth: int = 20) -> str:
    """A PNG of the discriminator and generator losses per step (moving average over ``smooth`` steps)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for key in ("d_loss", "g_loss"):
        v = np.asarray(history[key], dtype=np.float64)
        k = max(1, min(smooth, len(v)))
        ax.plot(np.arange(k, len(v) + 1), np.convolve(v, np.ones(k) / k, mode="valid"), label=key)
    ax.set_xlabel("generator step")
    ax.set_title("GAN losses")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())
    return os.fspath(path)


# ----------------------------------------------------------------------------- 2-D data and its metrics
def ring_centers(modes: int = 8, radius: float = 2.0) -> np.ndarray:
    """``modes`` points evenly spaced on a circle of ``radius``: (modes, 2)."""
    angles = 2 * np.pi * np.arange(modes) / modes
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def make_ring(n: int = 2000, modes: int = 8, radius: float = 2.0, std: float = 0.05,
              seed: int | None = 0) -> np.ndarray:
    """``n`` points from equal-weight Gaussians (``std``) on a ring: the standard mode-collapse testbed."""
    from .data.datasets import make_gaussian_mixture

    return make_gaussian_mixture(n, centers=ring_centers(modes, radius), std=std, seed=seed).tensors[0].numpy()


def ring_trainer(seed: int = 0, pack: int = 2, instance_noise: float = 0.3, hidden: int = 128, latent_dim: int = 8,
                 lr: float = 1e-3, d_lr: float = 4e-3, **kwargs) -> GANTrainer:
    """A GANTrainer set up for 2-D mixtures such as :func:`make_ring`: MLP generator and discriminator, a
    faster discriminator (``d_lr``), PacGAN packing and annealed instance noise against mode collapse.
    Train it with ``fit(data, steps=2000, batch_size=256, lr_end_factor=0.1)`` (8 of 8 ring modes on 9 of
    10 seeds, 7 of 8 on the other; without packing and noise most seeds collapse onto 1-3 modes)."""
    from .creation import manual_seed
    from .models import MLPDiscriminator, MLPGenerator

    manual_seed(seed)
    return GANTrainer(MLPGenerator(latent_dim=latent_dim, hidden=hidden), MLPDiscriminator(2 * pack, hidden=hidden),
                      pack=pack, instance_noise=instance_noise, lr=lr, d_lr=d_lr, seed=seed, **kwargs)


def digit_images(image_size: int = 16) -> np.ndarray:
    """All 1797 of scikit-learn's digits as (N, 1, image_size, image_size) float32 in [-1, 1] (the range of a
    tanh generator), bilinearly resized from 8x8."""
    from sklearn.datasets import load_digits as sk_digits

    from .data.transforms.functional import resize

    x = (sk_digits().images.astype(np.float32) / np.float32(16.0))[:, None]
    if image_size != 8:
        x = resize(x, (image_size, image_size))
    return np.ascontiguousarray(np.clip(x, 0.0, 1.0) * 2.0 - 1.0, dtype=np.float32)


@dataclass
class ModeCoverage:
    """How generated samples spread over a mixture's modes."""

    covered: int              # modes holding at least ``min_share`` of their fair share of samples
    modes: int
    counts: np.ndarray        # samples within ``threshold`` std of each mode
    high_quality: float       # fraction of samples within ``threshold`` std of some mode

    def __str__(self) -> str:
        return (f"{self.covered}/{self.modes} modes covered, {100 * self.high_quality:.1f}% of samples near a mode, "
                f"per-mode counts {self.counts.tolist()}")


def mode_coverage(samples: np.ndarray, centers: np.ndarray, std: float, threshold: float = 3.0,
                  min_share: float = 0.25) -> ModeCoverage:
    """Assign each sample to its nearest mode if it lies within ``threshold * std`` of it; a mode counts as
    covered when it receives at least ``min_share`` of the ``len(samples) / modes`` samples it would get
    from the true mixture (Metz et al., 2017, with a count floor so stray samples do not count)."""
    samples, centers = np.asarray(samples, dtype=np.float64), np.asarray(centers, dtype=np.float64)
    if samples.ndim != 2 or centers.ndim != 2 or samples.shape[1] != centers.shape[1]:
        raise ValueError(f"mode_coverage: samples {samples.shape} and centers {centers.shape} must be (n, d), (k, d)")
    d = np.linalg.norm(samples[:, None, :] - centers[None, :, :], axis=-1)
    nearest = d.argmin(1)
    near = d[np.arange(len(samples)), nearest] <= threshold * std
    counts = np.bincount(nearest[near], minlength=len(centers))
    floor = min_share * len(samples) / len(centers)
    return ModeCoverage(int((counts >= floor).sum()), len(centers), counts, float(near.mean()))


def sliced_wasserstein(x: np.ndarray, y: np.ndarray, projections: int = 256, seed: int = 0) -> float:
    """Sliced Wasserstein-1 distance between two point clouds: the mean over random unit directions of the
    1-D Wasserstein distance between the projections (quantile matching; sizes may differ)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"sliced_wasserstein: expected (n, d) and (m, d) arrays, got {x.shape} and {y.shape}")
    dirs = np.random.default_rng(seed).standard_normal((x.shape[1], projections))
    dirs /= np.linalg.norm(dirs, axis=0, keepdims=True)
    q = (np.arange(min(len(x), len(y))) + 0.5) / min(len(x), len(y))
    return float(np.abs(_quantiles(x @ dirs, q) - _quantiles(y @ dirs, q)).mean())


def _quantiles(values: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Column-wise linear-interpolation quantiles (np.quantile's default) from one sort per column."""
    s = np.sort(values, axis=0)
    pos = q * (len(s) - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, len(s) - 1)
    w = (pos - lo)[:, None]
    return s[lo] * (1.0 - w) + s[hi] * w
