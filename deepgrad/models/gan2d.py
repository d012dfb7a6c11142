"""A small MLP GAN for 2-D (or any low-dimensional) data: the classic mixture-of-Gaussians testbed."""

from __future__ import annotations

from collections.abc import Callable

from .. import nn
from ..tensor import Tensor


def _mlp(sizes: list[int], activation: Callable[[], nn.Module]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(fan_in, fan_out), activation()]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return layers


class MLPGenerator(nn.Module):
    """z (N, latent_dim) -> points (N, out_features) through ``depth`` hidden ReLU layers.

    >>> MLPGenerator(latent_dim=8)(deepgrad.randn(5, 8)).shape
    (5, 2)
    """

    def __init__(self, latent_dim: int = 8, hidden: int = 128, depth: int = 3, out_features: int = 2):
        super().__init__()
        if depth < 1:
            raise ValueError(f"MLPGenerator: depth must be >= 1, got {depth}")
        self.latent_dim, self.out_features = latent_dim, out_features
        self.net = nn.Sequential(*_mlp([latent_dim] + [hidden] * depth + [out_features], nn.ReLU))

    def forward(self, z: Tensor) -> Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"MLPGenerator: expected z of shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """Points (N, in_features) -> real/fake logits (N,) through ``depth`` hidden LeakyReLU(0.2) layers."""

    def __init__(self, in_features: int = 2, hidden: int = 128, depth: int = 3):
        super().__init__()
        if depth < 1:
            raise ValueError(f"MLPDiscriminator: depth must be >= 1, got {depth}")
        self.in_features = in_features
        self.net = nn.Sequential(*_mlp([in_features] + [hidden] * depth + [1], lambda: nn.LeakyReLU(0.2)))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"MLPDiscriminator: expected points of shape (N, {self.in_features}), "
                             f"got {tuple(x.shape)}")
        return self.net(x).reshape(x.shape[0])
