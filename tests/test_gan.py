"""GANs: the losses against torch, the metrics, the 8-mode ring coverage claim, a test-sized DCGAN on digits,
sample grids, and the ``train`` / ``gan`` CLI handlers with tiny settings."""

import argparse
import json
import os

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import gan, models
from deepgrad.cli_train import add_gan_parser, add_train_parser

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_losses_match_torch(smoothing):
    rng = np.random.default_rng(0)
    real, fake = rng.standard_normal(7).astype(np.float32) * 3, rng.standard_normal(7).astype(np.float32) * 3
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    tr, tf = torch.from_numpy(real), torch.from_numpy(fake)
    d_expected = bce(tr, torch.full((7,), 1.0 - smoothing)) + bce(tf, torch.zeros(7))
    d_ours = gan.discriminator_loss(dg.tensor(real), dg.tensor(fake), smoothing)
    np.testing.assert_allclose(d_ours.item(), d_expected.item(), rtol=1e-5)
    np.testing.assert_allclose(gan.generator_loss(dg.tensor(fake), "non_saturating").item(),
                               bce(tf, torch.ones(7)).item(), rtol=1e-5)
    np.testing.assert_allclose(gan.generator_loss(dg.tensor(fake), "minimax").item(),
                               torch.log1p(-torch.sigmoid(tf.double())).mean().item(), rtol=1e-5)
    np.testing.assert_allclose(gan.generator_loss(dg.tensor(fake), "least_squares").item(),
                               0.5 * ((tf - 1) ** 2).mean().item(), rtol=1e-5)
    with pytest.raises(ValueError, match="kind must be one of"):
        gan.generator_loss(dg.tensor(fake), "wasserstein")


def test_minimax_gradient_saturates_where_non_saturating_does_not():
    logits = dg.tensor(np.array([-8.0], dtype=np.float32), requires_grad=True)  # D confidently rejects the fake
    gan.generator_loss(logits, "minimax").backward()
    weak = abs(logits.grad.item())
    logits.grad = None
    gan.generator_loss(logits, "non_saturating").backward()
    assert weak < 1e-3 < abs(logits.grad.item())


def test_mode_coverage_and_sliced_wasserstein():
    centers = gan.ring_centers(8, 2.0)
    data = gan.make_ring(4000, std=0.05, seed=1)
    full = gan.mode_coverage(data, centers, std=0.05)
    assert full.covered == 8 and full.high_quality > 0.98
    collapsed = np.repeat(centers[:2], 500, axis=0) + 0.01
    assert gan.mode_coverage(collapsed, centers, std=0.05).covered == 2
    angles = np.random.default_rng(0).uniform(0, 2 * np.pi, 2000)  # a smeared ring covers no mode properly
    smeared = 2.0 * np.stack([np.cos(angles), np.sin(angles)], 1)
    assert gan.mode_coverage(smeared, centers, std=0.05).covered == 0
    assert gan.sliced_wasserstein(data, gan.make_ring(3000, std=0.05, seed=2)) < 0.03
    assert gan.sliced_wasserstein(data, collapsed) > 0.5
    assert "8/8 modes covered" in str(full)


@pytest.mark.parametrize("seed", [0, 1])
def test_gan_covers_the_ring(seed):
    data = gan.make_ring(2000, std=0.05, seed=seed)
    trainer = gan.ring_trainer(seed)
    history = trainer.fit(data, steps=2000, batch_size=256, lr_end_factor=0.1)
    samples = trainer.sample(2000)
    coverage = gan.mode_coverage(samples, gan.ring_centers(), std=0.05)
    assert coverage.covered >= 7, str(coverage)
    assert coverage.high_quality > 0.5
    assert gan.sliced_wasserstein(samples, data) < 0.25
    assert len(history["d_loss"]) == len(history["g_loss"]) == 2000


def test_dcgan_on_digits_test_sized(tmp_path):
    dg.manual_seed(0)
    images = gan.digit_images(8)
    assert images.shape == (1797, 1, 8, 8) and images.min() >= -1 and images.max() <= 1
    g = models.DCGANGenerator(latent_dim=8, channels=1, image_size=8, base_width=8)
    d = models.DCGANDiscriminator(channels=2, image_size=8, base_width=8)
    trainer = gan.GANTrainer(g, d, n_critic=2, label_smoothing=0.1, pack=2, seed=0)
    history = trainer.fit(images, steps=6, batch_size=32, sample_every=3, sample_dir=tmp_path)
    assert set(history) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert all(len(v) == 6 and np.all(np.isfinite(v)) for v in history.values())
    assert all(0 < v < 1 for v in history["d_real"] + history["d_fake"])
    assert sorted(os.listdir(tmp_path)) == ["step000003.png", "step000006.png"]
    samples = trainer.sample(5)
    assert samples.shape == (5, 1, 8, 8)
    assert g.training and d.training
    with pytest.raises(ValueError, match="multiple of pack"):
        trainer.fit(images, steps=1, batch_size=31)


def test_image_grid_and_png(tmp_path):
    imgs = np.linspace(-1, 1, 6 * 4 * 4, dtype=np.float32).reshape(6, 1, 4, 4)
    grid = gan.image_grid(imgs, nrow=3, padding=1)
    assert grid.shape == (2 * 5 + 1, 3 * 5 + 1)
    np.testing.assert_allclose(grid[1:5, 1:5], (imgs[0, 0] + 1) / 2)
    path = gan.save_image_grid(imgs, tmp_path / "grid.png")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="expected images"):
        gan.image_grid(np.zeros((2, 4, 4)))


def test_trainer_rejects_bad_settings():
    g, d = models.MLPGenerator(latent_dim=2), models.MLPDiscriminator()
    with pytest.raises(ValueError, match="loss must be one of"):
        gan.GANTrainer(g, d, loss="hinge")
    with pytest.raises(ValueError, match="n_critic"):
        gan.GANTrainer(g, d, n_critic=0)
    with pytest.raises(ValueError, match="fewer than batch_size"):
        gan.GANTrainer(g, d).fit(np.zeros((10, 2), np.float32), steps=1, batch_size=64)


# ----------------------------------------------------------------------------- CLI
def _cli(argv):
    parser = argparse.ArgumentParser(prog="deepgrad")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_parser(sub)
    add_gan_parser(sub)
    args = parser.parse_args(argv)
    return args.handler(args, parser)


def test_cli_train_writes_best_checkpoint_plot_and_loadable_weights(tmp_path, capsys):
    out = tmp_path / "run"
    assert _cli(["train", "lenet5", "--data", "digits", "--epochs", "2", "--limit", "200", "--out", str(out),
                 "--no-progress"]) == 0
    assert {"best.ckpt", "history.csv", "history.png", "model.safetensors"} <= set(os.listdir(out))
    model = models.load_model(out / "model.safetensors")
    assert isinstance(model, models.LeNet5)
    assert "accuracy" in capsys.readouterr().out
    assert _cli(["train", "vgg11_bn", "--data", "digits", "--epochs", "1", "--limit", "64",
                 "--out", str(tmp_path / "v"), "--pretrained", "vgg11_bn_digits", "--freeze", "features",
                 "--no-progress"]) == 0
    assert "all keys and shapes match" in capsys.readouterr().out
    assert _cli(["train", "mlp", "--data", "spirals", "--epochs", "1", "--out", str(tmp_path / "m"),
                 "--no-progress"]) == 0
    assert _cli(["train", "lenet5", "--data", "spirals", "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    assert "needs images" in capsys.readouterr().err


def test_cli_gan_ring_and_digits(tmp_path, capsys):
    out = tmp_path / "ring"
    assert _cli(["gan", "--data", "ring", "--steps", "30", "--sample-every", "15", "--out", str(out),
                 "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["modes"] == 8 and 0 <= metrics["modes_covered"] <= 8 and "sliced_wasserstein" in metrics
    assert {"samples.png", "losses.png", "generator.safetensors"} <= set(os.listdir(out))
    assert sorted(os.listdir(out / "samples")) == ["step000015.png", "step000030.png"]
    assert isinstance(models.load_model(out / "generator.safetensors"), models.MLPGenerator)
    dig = tmp_path / "digits"
    assert _cli(["gan", "--data", "digits", "--image-size", "8", "--steps", "4", "--batch-size", "16",
                 "--loss", "minimax", "--out", str(dig), "--no-progress"]) == 0
    assert (dig / "samples.png").exists()
