"""The GAN objectives, on discriminator logits.

The game (Goodfellow et al., 2014): D maximises log D(x) + log(1 - D(G(z))); G minimises log(1 - D(G(z)))
("minimax"), whose gradient vanishes while D confidently rejects the fakes early in training, so in practice G
maximises log D(G(z)) instead ("non_saturating"): same fixed point, strong gradients when G is losing. Written
with softplus: -log sigmoid(l) = softplus(-l), -log(1 - sigmoid(l)) = softplus(l). "least_squares" is LSGAN
(Mao et al., 2017) on raw outputs.

>>> generator_loss(deepgrad.tensor([-8.0]), "non_saturating")     # D rejects the fake: a large loss
tensor(8.0003)
"""

from __future__ import annotations

from ..functional import softplus
from ..tensor import Tensor

LOSSES = ("non_saturating", "minimax", "least_squares")


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
