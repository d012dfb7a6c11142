"""Ready-made GAN set-ups: an MLP GAN for 2-D mixtures (:func:`ring_trainer`) and a DCGAN for small images
(:func:`dcgan_trainer`), each seeded, each what ``deepgrad gan`` trains.

>>> from deepgrad.data.datasets import make_ring
>>> trainer = ring_trainer(seed=0)
>>> history = trainer.fit(make_ring(2000, std=0.05, seed=0), steps=5, batch_size=256, lr_end_factor=0.1)
>>> len(history["d_loss"]), trainer.sample(3).shape   # `deepgrad gan` trains 2000 steps; 5 here
(5, (3, 2))
"""

from __future__ import annotations

from ..creation import manual_seed
from ..models import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
from .trainer import GANTrainer


def ring_trainer(seed: int = 0, pack: int = 2, instance_noise: float = 0.3, hidden: int = 128, latent_dim: int = 8,
                 lr: float = 1e-3, d_lr: float = 4e-3, **kwargs) -> GANTrainer:
    """A GANTrainer set up for 2-D mixtures such as :func:`~deepgrad.data.datasets.make_ring`: MLP generator and
    discriminator, a faster discriminator (``d_lr``), PacGAN packing and annealed instance noise against mode
    collapse. Train it with ``fit(data, steps=2000, batch_size=256, lr_end_factor=0.1)`` (8 of 8 ring modes on
    9 of 10 seeds, 7 of 8 on the other; without packing and noise most seeds collapse onto 1-3 modes)."""
    manual_seed(seed)
    return GANTrainer(MLPGenerator(latent_dim=latent_dim, hidden=hidden), MLPDiscriminator(2 * pack, hidden=hidden),
                      pack=pack, instance_noise=instance_noise, lr=lr, d_lr=d_lr, seed=seed, **kwargs)


def ring_wgan_gp_trainer(seed: int = 0, hidden: int = 128, latent_dim: int = 8, lr: float = 1e-4, n_critic: int = 5,
                         gp_weight: float = 10.0, **kwargs) -> GANTrainer:
    """A WGAN-GP trainer for 2-D mixtures: the same MLP generator and critic (LeakyReLU, a raw score, no batch
    norm) as :func:`ring_trainer`, with the paper's settings (Gulrajani et al., 2017): ``n_critic`` = 5 critic
    steps per generator step, Adam(lr 1e-4, betas (0.0, 0.9)), penalty weight 10. No packing, no instance noise:
    the Wasserstein critic's gradients reach every mode on their own."""
    manual_seed(seed)
    return GANTrainer(MLPGenerator(latent_dim=latent_dim, hidden=hidden), MLPDiscriminator(2, hidden=hidden),
                      loss="wgan_gp", n_critic=n_critic, gp_weight=gp_weight, lr=lr, seed=seed, **kwargs)


def dcgan_trainer(image_size: int = 16, seed: int = 0, latent_dim: int = 32, base_width: int = 32, channels: int = 1,
                  pack: int = 1, **kwargs) -> GANTrainer:
    """A GANTrainer with a DCGAN generator and discriminator for ``channels`` x ``image_size`` x ``image_size``
    images in [-1, 1] (e.g. :func:`~deepgrad.data.datasets.digit_images`); the weights are drawn after
    ``manual_seed(seed)``. ``pack`` > 1 gives the discriminator ``pack`` images at once (PacGAN); the rest
    (``lr``, ``d_lr``, ``loss``, ...) goes to :class:`GANTrainer`."""
    manual_seed(seed)
    generator = DCGANGenerator(latent_dim=latent_dim, channels=channels, image_size=image_size, base_width=base_width)
    discriminator = DCGANDiscriminator(pack * channels, image_size, base_width)
    return GANTrainer(generator, discriminator, pack=pack, seed=seed, **kwargs)


def dcgan_wgan_gp_trainer(image_size: int = 16, seed: int = 0, latent_dim: int = 32, base_width: int = 32,
                          channels: int = 1, norm: str = "layer", lr: float = 1e-4, n_critic: int = 5,
                          gp_weight: float = 10.0, **kwargs) -> GANTrainer:
    """A WGAN-GP trainer for small images: :func:`dcgan_trainer`'s generator and a DCGAN critic whose hidden
    layers use layer norm (``norm="layer"``, the paper's choice; ``"none"`` also works) instead of batch norm,
    which would mix the samples the per-sample gradient penalty keeps apart. The paper's settings by default
    (Gulrajani et al., 2017): ``n_critic`` = 5, Adam(lr 1e-4, betas (0.0, 0.9)), penalty weight 10; the rest
    (``d_lr``, ``betas``, ...) goes to :class:`GANTrainer`.

    >>> from deepgrad.data.datasets import digit_images
    >>> trainer = dcgan_wgan_gp_trainer(image_size=8, seed=0)
    >>> history = trainer.fit(digit_images(8), steps=2, batch_size=16)
    >>> len(history["gradient_penalty"]), trainer.sample(3).shape
    (2, (3, 1, 8, 8))
    """
    if norm == "batch":
        raise ValueError("dcgan_wgan_gp_trainer: norm='batch' breaks the per-sample gradient penalty; use 'layer' "
                         "or 'none'")
    manual_seed(seed)
    generator = DCGANGenerator(latent_dim=latent_dim, channels=channels, image_size=image_size, base_width=base_width)
    critic = DCGANDiscriminator(channels, image_size, base_width, norm=norm)
    return GANTrainer(generator, critic, loss="wgan_gp", n_critic=n_critic, gp_weight=gp_weight, lr=lr, seed=seed,
                      **kwargs)
