"""GAN training: a trainer alternating discriminator and generator steps with the original minimax loss,
the non-saturating one, LSGAN or WGAN-GP (a critic with a gradient penalty), optional one-sided label
smoothing and ``n_critic`` discriminator steps per generator step; loss tracking, PNG sample grids at
intervals, and for 2-D data the mode coverage and a distribution distance (sliced Wasserstein).

By role: :mod:`.losses` (the objectives), :mod:`.trainer` (:class:`GANTrainer`, on deepgrad's one training
loop), :mod:`.metrics` (mode coverage, sliced Wasserstein), :mod:`.builders` (ready-made ring and DCGAN
set-ups). The toy data lives in :mod:`deepgrad.data.datasets` (``make_ring``, ``digit_images``) and the
figures in :mod:`deepgrad.train.plots`; both are re-exported here.

>>> data = make_ring(2000, std=0.05, seed=0)
>>> trainer = ring_trainer(seed=0)          # MLP GAN + PacGAN packing + annealed instance noise
>>> history = trainer.fit(data, steps=2000, batch_size=256, lr_end_factor=0.1)
>>> mode_coverage(trainer.sample(2000), ring_centers(), std=0.05).covered
8

For images: ``GANTrainer(DCGANGenerator(...), DCGANDiscriminator(...)).fit(images, steps, sample_every=500,
sample_dir="samples")`` writes PNG grids of a fixed set of latents as training goes.
"""

from ..data.datasets import digit_images, make_ring, ring_centers
from ..train.plots import image_grid, plot_losses, save_image_grid, save_scatter
from .builders import dcgan_trainer, dcgan_wgan_gp_trainer, ring_trainer, ring_wgan_gp_trainer
from .losses import LOSSES, discriminator_loss, generator_loss, gradient_penalty
from .metrics import ModeCoverage, mode_coverage, sliced_wasserstein
from .trainer import GANTrainer

__all__ = [
    "GANTrainer", "LOSSES", "discriminator_loss", "generator_loss", "gradient_penalty", "ModeCoverage", "mode_coverage",
    "sliced_wasserstein", "ring_trainer", "ring_wgan_gp_trainer", "dcgan_trainer", "dcgan_wgan_gp_trainer",
    "make_ring", "ring_centers",
    "digit_images", "image_grid", "save_image_grid", "save_scatter", "plot_losses",
]
