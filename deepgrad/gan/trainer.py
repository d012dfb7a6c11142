"""GANTrainer: the two-player step on deepgrad's one training loop (:class:`deepgrad.train.TrainingLoop`).

Each training step is ``n_critic`` discriminator steps then one generator step, each guarded like any
Trainer step (a non-finite loss or gradient stops training before the optimizer step); the loop brings the
progress bar, callbacks and the per-epoch history (a ``fit`` call is one epoch of ``steps`` steps), and the
trainer keeps the per-step losses in ``history``.

>>> import os
>>> from deepgrad.data.datasets import digit_images
>>> from deepgrad.models import DCGANDiscriminator, DCGANGenerator
>>> trainer = GANTrainer(DCGANGenerator(latent_dim=32, image_size=8), DCGANDiscriminator(image_size=8))
>>> history = trainer.fit(digit_images(8), steps=4, batch_size=64, sample_every=2, sample_dir="samples")
>>> len(history["d_loss"]), trainer.sample(16).shape, sorted(os.listdir("samples"))
(4, (16, 1, 8, 8), ['step000002.png', 'step000004.png'])
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from .. import nn, optim
from ..autograd import no_grad
from ..creation import tensor
from ..data.dataset import Dataset
from ..nn.norm import _BatchNorm
from ..tensor import Tensor
from ..train.callbacks import Callback, LambdaCallback
from ..train.loop import TrainingLoop
from ..train.plots import save_image_grid, save_scatter
from ..train.progress import ProgressBar
from .losses import LOSSES, discriminator_loss, generator_loss, gradient_penalty


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


class _Steps:
    """What the loop iterates over in a GAN fit: ``steps`` times the stream of real batches, from which each
    step draws its ``n_critic`` batches as it goes (so the batches interleave with the latent draws exactly
    as in a hand-written loop)."""

    def __init__(self, batches: Iterator[np.ndarray], steps: int):
        self.batches, self.steps = batches, steps

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        for _ in range(self.steps):
            yield self.batches


class _SampleWriter(Callback):
    """Write ``step{N:06d}.png`` into ``directory`` every ``every`` steps of the fit and after its last."""

    order = 10  # after the progress bar and a user's per-step function, as before

    def __init__(self, directory: str | os.PathLike, every: int, steps: int, reference: np.ndarray | None):
        self.directory, self.every, self.steps, self.reference = directory, every, steps, reference

    def on_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        if (batch + 1) % self.every == 0 or batch + 1 == self.steps:
            self.trainer.save_samples(os.path.join(self.directory, f"step{self.trainer.global_step:06d}.png"),
                                      self.reference)


def _mean_sigmoid(logits: Tensor) -> float:
    """Mean D(x) = sigmoid(logit), for the history (float64 on the host; stable for large |logits|)."""
    v = logits.detach().numpy().astype(np.float64)
    return float(np.mean(np.exp(-np.logaddexp(0.0, -v))))


class GANTrainer(TrainingLoop):
    """Alternate ``n_critic`` discriminator steps and one generator step.

    Optimizers default to DCGAN's Adam(lr=2e-4, betas=(0.5, 0.999)) for both players (``d_lr`` gives the
    discriminator its own rate: a faster critic keeps the generator's gradients informative). ``latent_dim``
    defaults to the generator's ``latent_dim`` attribute; z ~ N(0, I) from a generator seeded by ``seed``.
    ``history`` holds, per generator step, ``d_loss``, ``g_loss`` and the mean D(x) on real (``d_real``)
    and fake (``d_fake``) samples; ``epoch_history`` one entry per :meth:`fit` with their means.

    ``pack`` > 1 is PacGAN (Lin et al., 2018): the discriminator judges ``pack`` samples at once,
    concatenated along dim 1 (its input has ``pack`` times the features or channels), so it sees how
    varied the fakes are and penalises mode collapse. Batch sizes must be multiples of ``pack``.
    ``instance_noise`` > 0 adds N(0, sigma^2) noise to everything the discriminator sees, real and fake,
    with sigma falling linearly from ``instance_noise`` to 0 over :meth:`fit` (Sonderby et al., 2016): the
    blurred distributions overlap, so early gradients pull the generator toward every mode, and it
    sharpens as the noise fades.

    ``loss="wgan_gp"`` is WGAN-GP (Gulrajani et al., 2017): the discriminator is a critic with a raw score (no
    sigmoid, and no batch norm), trained on E[D(fake)] - E[D(real)] plus :func:`~.losses.gradient_penalty`
    with weight ``gp_weight``; Adam's betas default to the paper's (0.0, 0.9) and the history's ``d_real`` /
    ``d_fake`` are then mean critic scores, with ``gradient_penalty`` added. The paper uses ``n_critic=5``
    and lr 1e-4 (see :func:`~.builders.ring_wgan_gp_trainer`).

    ``callbacks`` and ``on_nonfinite`` are the training loop's (:class:`deepgrad.train.TrainingLoop`); a
    callback's ``on_batch_end`` runs after every generator step. GAN runs write no checkpoints.
    """

    progress_unit = "step"
    nonfinite_hint = "Lower the learning rates (lr, d_lr)."

    def __init__(self, generator: nn.Module, discriminator: nn.Module, g_optimizer=None, d_optimizer=None,
                 loss: str = "non_saturating", label_smoothing: float = 0.0, n_critic: int = 1,
                 pack: int = 1, latent_dim: int | None = None, lr: float = 2e-4, d_lr: float | None = None,
                 betas: tuple[float, float] | None = None, instance_noise: float = 0.0, seed: int = 0,
                 callbacks: Iterable[Callback] = (), on_nonfinite: str = "raise", gp_weight: float = 10.0):
        if loss not in LOSSES:
            raise ValueError(f"GANTrainer: loss must be one of {LOSSES}, got {loss!r}")
        if isinstance(n_critic, bool) or not isinstance(n_critic, int) or n_critic < 1:
            raise ValueError(f"GANTrainer: n_critic must be a positive int, got {n_critic!r}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"GANTrainer: label_smoothing must be in [0, 1), got {label_smoothing}")
        if loss == "wgan_gp" and label_smoothing:
            raise ValueError("GANTrainer: label_smoothing has no meaning for the wgan_gp critic (it has no labels)")
        if not gp_weight >= 0:
            raise ValueError(f"GANTrainer: gp_weight must be >= 0, got {gp_weight}")
        if loss == "wgan_gp":  # batch statistics mix the samples: the per-sample penalty would be a wrong number
            batch_norms = [name or type(m).__name__ for name, m in discriminator.named_modules()
                           if isinstance(m, _BatchNorm)]
            if batch_norms:
                raise ValueError(f"GANTrainer: the wgan_gp critic must not use batch norm (its gradient penalty is "
                                 f"per sample), but the discriminator has {', '.join(batch_norms)}; use layer "
                                 f"norm or none (Gulrajani et al., 2017)")
        if betas is None:  # DCGAN's Adam, or the WGAN-GP paper's (beta1 = 0, beta2 = 0.9)
            betas = (0.0, 0.9) if loss == "wgan_gp" else (0.5, 0.999)
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
        self.gp_weight = gp_weight
        if instance_noise < 0:
            raise ValueError(f"GANTrainer: instance_noise must be >= 0, got {instance_noise}")
        self.instance_noise = instance_noise
        self.noise_scale = 1.0  # fit() anneals it from 1 to 0 over the run
        self.rng = np.random.default_rng(seed)
        self.fixed_z = self.rng.standard_normal((64, self.latent_dim)).astype(np.float32)  # for sample grids
        self.history: dict[str, list[float]] = {"d_loss": [], "g_loss": [], "d_real": [], "d_fake": []}
        if loss == "wgan_gp":
            self.history["gradient_penalty"] = []
        self._schedulers: list = []  # a fit's learning-rate decay, stepped after every generator step
        self._fit_steps = 0
        super().__init__(callbacks, progress=False, on_nonfinite=on_nonfinite)

    @property
    def steps_done(self) -> int:
        """Generator steps taken so far (the loop's ``global_step``)."""
        return self.global_step

    @steps_done.setter
    def steps_done(self, value: int) -> None:
        self.global_step = int(value)

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

    # ------------------------------------------------------------------ the step
    def _d_step(self, real: np.ndarray, batch_idx: int, epochs: int) -> tuple[float, ...] | None:
        G, D = self.generator, self.discriminator
        with no_grad():  # the fakes are constants for D's step: no graph through G
            fake = G(self.latent(len(real)))
        real_in, fake_in = self._packed(tensor(real)), self._packed(fake)
        real_logits, fake_logits = D(real_in), D(fake_in)
        loss = discriminator_loss(real_logits, fake_logits, self.label_smoothing, self.loss)
        if self.loss == "wgan_gp":
            penalty = gradient_penalty(D, real_in, fake_in, self.gp_weight, rng=self.rng)
            loss = loss + penalty
        value = self._guarded_step(loss, self.d_optimizer, D.named_parameters(), batch_idx, epochs,
                                   "GANTrainer (discriminator)")
        if value is None:
            return None
        if self.loss == "wgan_gp":  # raw critic scores, and the penalty's share of the loss
            return (value, float(real_logits.detach().numpy().mean()), float(fake_logits.detach().numpy().mean()),
                    float(penalty.detach().numpy()))
        return value, _mean_sigmoid(real_logits), _mean_sigmoid(fake_logits)

    def _g_step(self, batch_size: int, batch_idx: int, epochs: int) -> float | None:
        G, D = self.generator, self.discriminator
        flags = [p.requires_grad for p in D.parameters()]
        D.requires_grad_(False)  # G's step needs gradients through D, not for D's weights
        try:
            loss = generator_loss(D(self._packed(G(self.latent(batch_size)))), self.loss)
            return self._guarded_step(loss, self.g_optimizer, G.named_parameters(), batch_idx, epochs,
                                      "GANTrainer (generator)")
        finally:
            for p, f in zip(D.parameters(), flags):
                p.requires_grad_(f)

    def training_step(self, batches: Iterator[np.ndarray], batch_idx: int, epochs: int) -> dict[str, float] | None:
        """One generator step after ``n_critic`` discriminator steps on real batches drawn from ``batches``;
        the logs are appended to ``history``."""
        if self._fit_steps:
            self.noise_scale = 1.0 - batch_idx / self._fit_steps
        self._train_mode()
        self._call("on_batch_begin", batch_idx, {})
        d_stats = []
        for _ in range(self.n_critic):
            real = next(batches)
            stats = self._d_step(real, batch_idx, epochs)
            if stats is None:
                return None
            d_stats.append(stats)
        d_loss, d_real, d_fake, *penalty = (float(np.mean(v)) for v in zip(*d_stats))
        g_loss = self._g_step(len(real), batch_idx, epochs)
        if g_loss is None:
            return None
        for sched in self._schedulers:
            sched.step()
        logs = {"d_loss": d_loss, "g_loss": g_loss, "d_real": d_real, "d_fake": d_fake}
        if penalty:
            logs["gradient_penalty"] = penalty[0]
        for k, v in logs.items():
            self.history[k].append(v)
        return logs

    def step(self, batches: Iterator[np.ndarray]) -> dict[str, float]:
        """One generator step after ``n_critic`` discriminator steps on batches from ``batches`` (outside
        :meth:`fit`; no callbacks run)."""
        logs = self.training_step(batches, self.global_step, self.epoch + 1)
        if logs is not None:
            self.global_step += 1
        return logs

    # ------------------------------------------------------------------ the loop's hooks
    def _train_mode(self) -> None:
        self.generator.train()
        self.discriminator.train()

    def _position(self, batch_idx: int, epochs: int) -> str:
        return f"at step {self.global_step + 1}"

    def _epoch_logs(self) -> dict[str, Any]:
        n = self._epoch_state["batches_done"]
        return {k: float(np.mean(v[-n:])) for k, v in self.history.items()}

    def running_logs(self) -> dict[str, float]:
        """The last step's logs (what the progress bar shows)."""
        return {k: v[-1] for k, v in self.history.items()} if self.history["d_loss"] else {}

    def progress_label(self, epoch: int, epochs: int) -> str:
        return "GAN"

    # ------------------------------------------------------------------ fit
    def fit(self, data, steps: int, batch_size: int = 64, sample_every: int | None = None,
            sample_dir: str | os.PathLike | None = None, callback: Callable[[int, dict], None] | None = None,
            progress: bool = False, lr_end_factor: float | None = None) -> dict[str, list[float]]:
        """Train for ``steps`` generator steps on ``data`` (an array / Tensor / TensorDataset of real samples,
        or a loader yielding batches); returns ``history``.

        With ``sample_every`` and ``sample_dir``, writes ``step{N:06d}.png`` every ``sample_every`` steps
        and at the end: an image grid of the fixed latents for image data (N, C, H, W), a scatter plot
        against the real data for 2-D points. ``callback(step, logs)`` runs after every step. ``progress``
        shows a bar on a terminal (a summary line elsewhere).
        ``lr_end_factor`` decays both learning rates linearly to that fraction over the run (a late, small
        learning rate lets the generator settle onto the modes instead of orbiting them).
        """
        if steps < 1:
            raise ValueError(f"GANTrainer.fit: steps must be >= 1, got {steps}")
        if lr_end_factor is not None:
            self._schedulers = [optim.lr_scheduler.LinearLR(o, start_factor=1.0, end_factor=lr_end_factor,
                                                            total_iters=steps)
                                for o in (self.g_optimizer, self.d_optimizer)]
        extra: list[Callback] = [ProgressBar()] if progress else []
        if callback is not None:
            extra.append(LambdaCallback(on_batch_end=lambda batch, logs: callback(self.global_step, logs)))
        if sample_dir is not None and sample_every:
            reference = _as_array(data) if isinstance(data, (np.ndarray, Tensor, Dataset)) else None
            extra.append(_SampleWriter(sample_dir, sample_every, steps, reference))
        self._fit_steps = steps
        try:
            with self._extra_callbacks(extra):
                super().fit(_Steps(_batches(data, batch_size, self.rng), steps), epochs=self.epoch + 1)
        finally:
            self.noise_scale = 0.0
            self._schedulers, self._fit_steps = [], 0
        return self.history

    def save_samples(self, path: str | os.PathLike, reference: np.ndarray | None = None) -> str:
        """Write the fixed latents' samples: an image grid (image data) or a 2-D scatter plot."""
        samples = self.sample(z=self.fixed_z) if reference is None or reference.ndim == 4 else self.sample(1000)
        if samples.ndim == 4:
            return save_image_grid(samples, path)
        if samples.ndim == 2 and samples.shape[1] == 2:
            return save_scatter(samples, path, real=reference, title=f"step {self.steps_done}")
        raise ValueError(f"save_samples: cannot draw samples of shape {samples.shape} (images or 2-D points)")
