"""WGAN-GP: the gradient penalty against torch's (value and the critic's parameter gradients, which need the
double backward), the critic's losses, the trainer's settings, and a short ring run that spreads the
generator over more modes than it starts on."""

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import gan, models

torch = pytest.importorskip("torch")


def _torch_critic(critic: models.MLPDiscriminator) -> torch.nn.Sequential:
    """The same MLP in torch, with the deepgrad critic's weights (float64)."""
    layers = []
    for m in critic.net:
        if isinstance(m, dg.nn.Linear):
            lin = torch.nn.Linear(m.in_features, m.out_features).double()
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(m.weight.detach().numpy().astype(np.float64)))
                lin.bias.copy_(torch.from_numpy(m.bias.detach().numpy().astype(np.float64)))
            layers.append(lin)
        else:
            layers.append(torch.nn.LeakyReLU(0.2))
    return torch.nn.Sequential(*layers)


@pytest.mark.parametrize("weight", [10.0, 1.0])
def test_gradient_penalty_matches_torch(weight):
    dg.manual_seed(0)
    critic = models.MLPDiscriminator(2, hidden=16, depth=2).to(dg.float64)
    t_critic = _torch_critic(critic)
    rng = np.random.default_rng(1)
    real, fake, mix = rng.standard_normal((12, 2)), rng.standard_normal((12, 2)) * 2, rng.uniform(0, 1, 12)

    gp = gan.gradient_penalty(critic, dg.tensor(real), dg.tensor(fake), weight, mix=mix)
    gp.backward()

    # torch's WGAN-GP penalty, as written in the paper's reference implementations
    w = torch.from_numpy(mix)[:, None]
    between = (w * torch.from_numpy(real) + (1 - w) * torch.from_numpy(fake)).requires_grad_(True)
    (slope,) = torch.autograd.grad(t_critic(between).sum(), between, create_graph=True)
    t_gp = weight * ((slope.norm(2, dim=1) - 1) ** 2).mean()
    t_gp.backward()

    np.testing.assert_allclose(gp.item(), t_gp.item(), rtol=1e-12)
    ours = [None if p.grad is None else p.grad.numpy() for p in critic.parameters()]
    theirs = [None if p.grad is None else p.grad.numpy() for p in t_critic.parameters()]
    assert len(ours) == len(theirs) == 6
    # the input gradient does not depend on the last bias: no gradient reaches it, in torch either
    assert ours[-1] is None and theirs[-1] is None
    for k, (a, b) in enumerate(zip(ours[:-1], theirs[:-1])):
        # every weight matrix gets a second-derivative gradient; the hidden biases a zero one (the slope of a
        # piecewise-linear critic moves with its biases only through LeakyReLU's step)
        assert np.abs(b).max() > 0 if k % 2 == 0 else np.abs(b).max() == 0
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


def test_gradient_penalty_of_a_1_lipschitz_linear_critic_is_zero_and_checks_shapes():
    critic = dg.nn.Linear(3, 1, bias=False)
    with dg.no_grad():
        critic.weight.copy_(dg.tensor([[0.6, 0.0, 0.8]]))  # ||grad|| = 1 everywhere: no penalty
    x, y = dg.randn(5, 3), dg.randn(5, 3)
    assert gan.gradient_penalty(critic, x, y, rng=np.random.default_rng(0)).item() == pytest.approx(0.0, abs=1e-10)
    with dg.no_grad():
        critic.weight.mul_(2.0)  # ||grad|| = 2: penalty = weight * (2 - 1)^2
    assert gan.gradient_penalty(critic, x, y, 10.0, rng=np.random.default_rng(0)).item() == pytest.approx(10.0)
    with pytest.raises(ValueError, match="gradient_penalty: real .* and fake .* differ in shape"):
        gan.gradient_penalty(critic, x, dg.randn(4, 3))
    with pytest.raises(ValueError, match=r"mix must have shape \(5,\)"):
        gan.gradient_penalty(critic, x, y, mix=np.ones(3))


def test_wasserstein_losses_and_trainer_settings():
    real, fake = dg.tensor([1.0, 3.0]), dg.tensor([-1.0, 0.5])
    assert gan.discriminator_loss(real, fake, kind="wgan_gp").item() == pytest.approx(-0.25 - 2.0)
    assert gan.generator_loss(fake, "wgan_gp").item() == pytest.approx(0.25)
    with pytest.raises(ValueError, match="label_smoothing has no meaning"):
        gan.discriminator_loss(real, fake, 0.1, kind="wgan_gp")
    trainer = gan.ring_wgan_gp_trainer(seed=0, hidden=16)
    assert trainer.loss == "wgan_gp" and trainer.n_critic == 5 and trainer.gp_weight == 10.0
    assert trainer.d_optimizer.param_groups[0]["betas"] == (0.0, 0.9)
    assert trainer.g_optimizer.param_groups[0]["lr"] == 1e-4
    plain = gan.GANTrainer(models.MLPGenerator(hidden=8), models.MLPDiscriminator(hidden=8))
    assert plain.d_optimizer.param_groups[0]["betas"] == (0.5, 0.999) and "gradient_penalty" not in plain.history
    for bad, match in (({"label_smoothing": 0.1}, "label_smoothing has no meaning"),
                       ({"gp_weight": -1.0}, "gp_weight must be >= 0")):
        with pytest.raises(ValueError, match=match):
            gan.GANTrainer(models.MLPGenerator(hidden=8), models.MLPDiscriminator(hidden=8), loss="wgan_gp", **bad)


def test_wgan_gp_ring_run_improves_mode_coverage():
    # the guide's WGAN-GP setting (topic 14), shorter: the untrained generator sits near the origin, 2 from every mode
    data = gan.make_ring(1000, std=0.05, seed=0)
    trainer = gan.ring_wgan_gp_trainer(seed=0, hidden=64, lr=2e-3, gp_weight=1.0, betas=(0.5, 0.9))
    centers = gan.ring_centers()
    start = trainer.sample(1000)
    before = gan.mode_coverage(start, centers, std=0.05, threshold=10)
    history = trainer.fit(data, steps=STEPS, batch_size=256, lr_end_factor=0.1)
    end = trainer.sample(1000)
    after = gan.mode_coverage(end, centers, std=0.05, threshold=10)
    assert len(history["gradient_penalty"]) == STEPS and np.all(np.isfinite(history["d_loss"]))
    assert after.covered >= before.covered + 6, (before.covered, after.covered)
    assert gan.sliced_wasserstein(end, data) * 3 < gan.sliced_wasserstein(start, data)


STEPS = 150


def test_a_critic_with_batch_norm_is_refused():
    """Batch statistics mix the samples, so the per-sample gradient penalty would be a wrong number."""
    with pytest.raises(ValueError, match="batch norm"):
        gan.GANTrainer(models.DCGANGenerator(latent_dim=8, channels=1, image_size=16, base_width=8),
                       models.DCGANDiscriminator(1, 16, 8), loss="wgan_gp")


def _torch_conv_critic(critic: models.DCGANDiscriminator) -> torch.nn.Sequential:
    """The same DCGAN critic in torch (float64), with the deepgrad critic's weights."""
    layers = []
    for m in critic.main:
        if isinstance(m, dg.nn.Conv2d):
            t = torch.nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                                bias=m.bias is not None).double()
        elif isinstance(m, dg.nn.GroupNorm):
            t = torch.nn.GroupNorm(m.num_groups, m.num_channels, eps=m.eps).double()
        else:
            layers.append(torch.nn.LeakyReLU(0.2))
            continue
        with torch.no_grad():
            for name, p in t.named_parameters():
                p.copy_(torch.from_numpy(getattr(m, name).detach().numpy().astype(np.float64)))
        layers.append(t)
    return torch.nn.Sequential(*layers)


@pytest.mark.parametrize("norm", ["layer", "none"])
def test_gradient_penalty_of_a_dcgan_critic_matches_torch(norm):
    """A conv critic without batch norm: layer norm (GroupNorm(1, C)) or none; 16x16 gives it one hidden
    strided convolution with its norm. The penalty's gradient needs the double backward of conv2d, LeakyReLU and
    the norm."""
    dg.manual_seed(0)
    critic = models.DCGANDiscriminator(channels=1, image_size=16, base_width=4, norm=norm).to(dg.float64)
    rng = np.random.default_rng(3)
    with dg.no_grad():  # non-trivial norm affine and conv biases (DCGAN's init sets them to 1 and 0)
        for name, p in critic.named_parameters():
            if not name.endswith("weight") or p.ndim == 1:
                p.copy_(dg.tensor(rng.normal(1.0 if name.endswith("weight") else 0.0, 0.3, p.shape)))
    kinds = [type(m).__name__ for m in critic.main]
    assert ("GroupNorm" in kinds) == (norm == "layer") and "BatchNorm2d" not in kinds
    t_critic = _torch_conv_critic(critic)
    real, fake = rng.standard_normal((6, 1, 16, 16)), rng.standard_normal((6, 1, 16, 16)) * 0.5
    mix = rng.uniform(0, 1, 6)

    gp = gan.gradient_penalty(critic, dg.tensor(real), dg.tensor(fake), 10.0, mix=mix)
    gp.backward()

    w = torch.from_numpy(mix)[:, None, None, None]
    between = (w * torch.from_numpy(real) + (1 - w) * torch.from_numpy(fake)).requires_grad_(True)
    (slope,) = torch.autograd.grad(t_critic(between).sum(), between, create_graph=True)
    t_gp = 10.0 * ((slope.reshape(6, -1).norm(2, dim=1) - 1) ** 2).mean()
    t_gp.backward()

    np.testing.assert_allclose(gp.item(), t_gp.item(), rtol=1e-10)
    ours, theirs = list(critic.parameters()), list(t_critic.parameters())
    assert len(ours) == len(theirs) == (5 if norm == "layer" else 4)
    for (name, a), b in zip(critic.named_parameters(), theirs):
        if b.grad is None:  # a bias the input gradient does not depend on (the last conv's, if any)
            assert a.grad is None, name
            continue
        # every weight gets a second-derivative gradient; biases (conv and norm) a zero one, as in the MLP critic:
        # the slope of a piecewise-linear critic moves with a bias only through LeakyReLU's step
        assert (np.abs(b.grad.numpy()).max() > 0) == name.endswith("weight"), name
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-8, atol=1e-12, err_msg=name)


def test_dcgan_wgan_gp_trainer_settings_and_a_short_digits_run():
    with pytest.raises(ValueError, match="norm must be one of"):
        models.DCGANDiscriminator(1, 16, 8, norm="instance")
    with pytest.raises(ValueError, match="norm='batch' breaks the per-sample gradient penalty"):
        gan.dcgan_wgan_gp_trainer(image_size=16, norm="batch")
    trainer = gan.dcgan_wgan_gp_trainer(image_size=16, seed=0, base_width=8)
    assert trainer.loss == "wgan_gp" and trainer.n_critic == 5 and trainer.gp_weight == 10.0
    assert trainer.d_optimizer.param_groups[0]["betas"] == (0.0, 0.9)
    assert [type(m).__name__ for m in trainer.discriminator.main].count("GroupNorm") == 1
    history = trainer.fit(gan.digit_images(16), steps=2, batch_size=16)
    assert len(history["gradient_penalty"]) == 2 and np.all(np.isfinite(history["d_loss"]))

    # topic 14's digits setting, shorter: the untrained generator's images are far from the digits
    images = gan.digit_images(8)
    trainer = gan.dcgan_wgan_gp_trainer(image_size=8, seed=0, lr=1e-3)
    flat = images.reshape(len(images), -1)
    before = gan.sliced_wasserstein(trainer.sample(500).reshape(500, -1), flat, seed=0)
    trainer.fit(images, steps=DIGIT_STEPS, batch_size=64)
    after = gan.sliced_wasserstein(trainer.sample(500).reshape(500, -1), flat, seed=0)
    assert after * 2.5 < before, (before, after)


DIGIT_STEPS = 60
