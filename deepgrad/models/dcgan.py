"""DCGAN (Radford et al., 2015): a transposed-convolution generator and a strided-convolution
discriminator, batch norm everywhere except the generator's output and the discriminator's input,
ReLU / LeakyReLU(0.2), a tanh output in [-1, 1], and N(0, 0.02) initialisation.

``image_size`` = s0 * 2**k with s0 in 4..7: 8, 16, 32, 64 (s0 = 4) and 28 (s0 = 7) all work. The
discriminator returns *logits* (N,): pair it with a logits loss (see :mod:`deepgrad.gan`).

>>> g, d = DCGANGenerator(latent_dim=32, image_size=16), DCGANDiscriminator(image_size=16)
>>> d(g(deepgrad.randn(4, 32))).shape
(4,)
"""

from __future__ import annotations

from .. import nn
from ..tensor import Tensor
from ._init import normal_f32_, zero_


def _plan(image_size: int) -> tuple[int, int]:
    """(s0, k): image_size = s0 * 2**k with the smallest s0 >= 4 reached by halving."""
    s, k = int(image_size), 0
    while s % 2 == 0 and s // 2 >= 4:
        s //= 2
        k += 1
    if k == 0 or s > 7:
        raise ValueError(f"DCGAN: image_size must be s0 * 2**k with 4 <= s0 <= 7 and k >= 1 (8, 16, 28, 32, 64...), "
                         f"got {image_size}")
    return s, k


NORMS = ("batch", "layer", "none")


def dcgan_init_(module: nn.Module) -> None:
    """DCGAN's initialisation: conv weights N(0, 0.02), batch- and layer-norm weights N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            normal_f32_(m.weight, 0.02)
            zero_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            normal_f32_(m.weight, 0.02, mean=1.0)
            zero_(m.bias)


class DCGANGenerator(nn.Module):
    """z (N, latent_dim) or (N, latent_dim, 1, 1) -> images (N, channels, image_size, image_size) in [-1, 1].

    ``base_width`` is the channel count of the last hidden layer (the paper's ngf = 64); it doubles
    toward the input.
    """

    def __init__(self, latent_dim: int = 100, channels: int = 1, image_size: int = 64, base_width: int = 64):
        super().__init__()
        s0, k = _plan(image_size)
        self.latent_dim, self.channels, self.image_size = latent_dim, channels, image_size
        width = base_width * 2 ** (k - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(latent_dim, width, s0, 1, 0, bias=False), nn.BatchNorm2d(width),
                                   nn.ReLU(True)]
        for _ in range(k - 1):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2),
                       nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        dcgan_init_(self)

    def forward(self, z: Tensor) -> Tensor:
        if z.ndim == 2:
            z = z.reshape(z.shape[0], z.shape[1], 1, 1)
        if z.ndim != 4 or z.shape[1:] != (self.latent_dim, 1, 1):
            raise ValueError(f"DCGANGenerator: expected z of shape (N, {self.latent_dim}) or "
                             f"(N, {self.latent_dim}, 1, 1), got {tuple(z.shape)}")
        return self.main(z)


def _norm_layer(norm: str, channels: int) -> list[nn.Module]:
    if norm == "batch":
        return [nn.BatchNorm2d(channels)]
    if norm == "layer":  # one group: each sample normalised over all its (C, H, W), with a per-channel affine
        return [nn.GroupNorm(1, channels)]
    return []


class DCGANDiscriminator(nn.Module):
    """Images (N, channels, image_size, image_size) -> real/fake logits (N,).

    ``norm`` after each hidden strided convolution: ``"batch"`` (DCGAN's), ``"layer"`` (per-sample layer norm
    over (C, H, W), as ``GroupNorm(1, C)``: the WGAN-GP critic's, whose gradient penalty needs each score to
    depend on its own sample only) or ``"none"``. The convolutions followed by no norm get a bias."""

    def __init__(self, channels: int = 1, image_size: int = 64, base_width: int = 64, norm: str = "batch"):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"DCGANDiscriminator: norm must be one of {NORMS}, got {norm!r}")
        s0, k = _plan(image_size)
        self.channels, self.image_size, self.norm = channels, image_size, norm
        layers: list[nn.Module] = [nn.Conv2d(channels, base_width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        width = base_width
        for _ in range(k - 1):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=norm == "none"), *_norm_layer(norm, width * 2),
                       nn.LeakyReLU(0.2, True)]
            width *= 2
        layers.append(nn.Conv2d(width, 1, s0, 1, 0, bias=False))
        self.main = nn.Sequential(*layers)
        dcgan_init_(self)

    def forward(self, x: Tensor) -> Tensor:
        expected = (self.channels, self.image_size, self.image_size)
        if x.ndim != 4 or x.shape[1:] != expected:
            raise ValueError(f"DCGANDiscriminator: expected images (N, {', '.join(map(str, expected))}), "
                             f"got {tuple(x.shape)}")
        return self.main(x).reshape(x.shape[0])
