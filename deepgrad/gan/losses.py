"""The GAN objectives, on discriminator logits.

The game (Goodfellow et al., 2014): D maximises log D(x) + log(1 - D(G(z))); G minimises log(1 - D(G(z)))
("minimax"), whose gradient vanishes while D confidently rejects the fakes early in training, so in practice G
maximises log D(G(z)) instead ("non_saturating"): same fixed point, strong gradients when G is losing. Written
with softplus: -log sigmoid(l) = softplus(-l), -log(1 - sigmoid(l)) = softplus(l). "least_squares" is LSGAN
(Mao et al., 2017) on raw outputs. "wgan_gp" is WGAN-GP (Gulrajani et al., 2017): D is a critic whose raw
score estimates the Wasserstein distance, E[D(fake)] - E[D(real)] for D and -E[D(fake)] for G, with
:func:`gradient_penalty` keeping the critic 1-Lipschitz (its gradient is differentiated again: create_graph).

>>> generator_loss(deepgrad.tensor([-8.0]), "non_saturating")     # D rejects the fake: a large loss
tensor(8.0003)
"""

from __future__ import annotations

import numpy as np

from ..autograd import grad
from ..creation import tensor
from ..functional import softplus
from ..tensor import Tensor

LOSSES = ("non_saturating", "minimax", "least_squares", "wgan_gp")


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor, label_smoothing: float = 0.0,
                       kind: str = "non_saturating") -> Tensor:
    """-[t log D(x) + (1 - t) log(1 - D(x))] on real samples with target t = 1 - ``label_smoothing``
    (one-sided smoothing: fakes keep target 0), plus -log(1 - D(G(z))) on fakes, each averaged; for
    ``kind="least_squares"`` (LSGAN, Mao et al., 2017) 0.5 (D(x) - t)^2 + 0.5 D(G(z))^2 on raw outputs; for
    ``kind="wgan_gp"`` the critic's E[D(G(z))] - E[D(x)] (add :func:`gradient_penalty`; no smoothing)."""
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"discriminator_loss: label_smoothing must be in [0, 1), got {label_smoothing}")
    if kind == "wgan_gp":
        if label_smoothing:
            raise ValueError("discriminator_loss: label_smoothing has no meaning for the wgan_gp critic (no labels)")
        return fake_logits.mean() - real_logits.mean()
    t = 1.0 - label_smoothing
    if kind == "least_squares":
        return ((real_logits - t) ** 2).mean() * 0.5 + (fake_logits ** 2).mean() * 0.5
    if kind not in LOSSES:
        raise ValueError(f"discriminator_loss: kind must be one of {LOSSES}, got {kind!r}")
    real = softplus(-real_logits) * t + (softplus(real_logits) * (1.0 - t) if label_smoothing else 0.0)
    return real.mean() + softplus(fake_logits).mean()


def generator_loss(fake_logits: Tensor, kind: str = "non_saturating") -> Tensor:
    """``"non_saturating"``: -log D(G(z)); ``"minimax"``: log(1 - D(G(z))) (the original objective);
    ``"least_squares"``: 0.5 (D(G(z)) - 1)^2; ``"wgan_gp"``: -E[D(G(z))], the critic's score of the fakes."""
    if kind == "wgan_gp":
        return -fake_logits.mean()
    if kind == "least_squares":
        return ((fake_logits - 1.0) ** 2).mean() * 0.5
    if kind == "non_saturating":
        return softplus(-fake_logits).mean()
    if kind == "minimax":
        return -softplus(fake_logits).mean()
    raise ValueError(f"generator_loss: kind must be one of {LOSSES}, got {kind!r}")


def gradient_penalty(critic, real: Tensor, fake: Tensor, weight: float = 10.0, mix=None,
                     rng: np.random.Generator | None = None) -> Tensor:
    """WGAN-GP's penalty ``weight * E[(||grad_x critic(x)||_2 - 1)^2]`` at ``x = mix * real + (1 - mix) * fake``,
    ``mix`` ~ U[0, 1] per sample (drawn from ``rng`` unless given, shape (N,)): the critic's 1-Lipschitz
    constraint as a soft penalty on random points between the two distributions (Gulrajani et al., 2017).
    The input gradient is recorded (``create_graph=True``), so the penalty's backward reaches the critic's
    weights through it. A critic with batch norm breaks the per-sample gradient: use none, or layer norm.

    >>> critic = deepgrad.nn.Linear(2, 1)
    >>> gp = gradient_penalty(critic, deepgrad.randn(8, 2), deepgrad.randn(8, 2), rng=np.random.default_rng(0))
    >>> gp.backward()    # a second derivative: through the critic's input gradient into its weights
    """
    if real.shape != fake.shape:
        raise ValueError(f"gradient_penalty: real {tuple(real.shape)} and fake {tuple(fake.shape)} differ in shape")
    n = real.shape[0]
    if mix is None:
        mix = (rng or np.random.default_rng()).uniform(0.0, 1.0, n)
    mix = np.asarray(mix.numpy() if isinstance(mix, Tensor) else mix, dtype=real.array.dtype)
    if mix.shape != (n,):
        raise ValueError(f"gradient_penalty: mix must have shape ({n},), got {mix.shape}")
    w = tensor(mix.reshape((n,) + (1,) * (real.ndim - 1)))
    between = (real.detach() * w + fake.detach() * (1.0 - w)).requires_grad_(True)
    (slope,) = grad(critic(between).sum(), between, create_graph=True)
    return ((slope.reshape(n, -1).norm(dim=1) - 1.0) ** 2).mean() * weight
