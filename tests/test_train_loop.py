"""One training loop: GANTrainer and fit_classifier run on train/loop.py (callbacks, progress, guards, history),
schedulers declare their cadence, accuracy and the random shift live in one place each, and the moved modules
keep their public import paths."""

from __future__ import annotations

import ast
import os
import pathlib
import re

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import gan, models, nn, optim
from deepgrad.data import DataLoader, TensorDataset
from deepgrad.data.transforms import RandomShift
from deepgrad.data.transforms.functional import shift
from deepgrad.models._fit import fit_classifier
from deepgrad.train import (
    LambdaCallback,
    ModelCheckpoint,
    NonFiniteLossError,
    ProgressBar,
    Trainer,
    accuracy,
    model_accuracy,
)

ROOT = pathlib.Path(dg.__file__).parent


# ----------------------------------------------------------------------------- fit_classifier on the Trainer
def _reference_fit(model, x, y, epochs, lr, batch_size, seed, shift, cosine):
    """The hand-written loop fit_classifier used to be (the stream the shipped weights were made with)."""
    opt = optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs) if cosine else None
    loss_fn, rng, losses = nn.CrossEntropyLoss(), np.random.default_rng(seed), []
    model.train()
    for _ in range(epochs):
        order, total = rng.permutation(len(y)), 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            xb = x[idx]
            if shift:
                n, _, h, w = xb.shape
                padded = np.pad(xb, ((0, 0), (0, 0), (shift, shift), (shift, shift)), constant_values=float(xb.min()))
                dy, dx = rng.integers(0, 2 * shift + 1, size=(2, n))
                xb = np.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
            loss = loss_fn(model(dg.tensor(xb)), dg.tensor(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.item()) * len(idx)
        losses.append(total / len(y))
        if sched is not None:
            sched.step()
    return losses


def _tiny_images(n=70, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n).astype(np.int64)
    x = (rng.standard_normal((n, 1, 5, 5)) + y[:, None, None, None]).astype(np.float32)
    return x, y


def _tiny_cnn(seed):
    dg.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(36, 3))


def test_fit_classifier_is_the_reference_loop_bit_for_bit():
    x, y = _tiny_images()
    ours, ref = _tiny_cnn(3), _tiny_cnn(3)
    got = fit_classifier(ours, x, y, epochs=3, lr=1e-2, batch_size=16, seed=5, shift=1, cosine=True)
    want = _reference_fit(ref, x, y, epochs=3, lr=1e-2, batch_size=16, seed=5, shift=1, cosine=True)
    assert got == want
    for (k, a), b in zip(ours.state_dict().items(), ref.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)


def test_fit_classifier_step_cap_and_guard():
    x, y = _tiny_images()
    model = _tiny_cnn(0)
    calls = []
    model.register_forward_hook(lambda m, i, o: calls.append(1))
    losses = fit_classifier(model, x, y, epochs=5, batch_size=16, steps=7)  # 5 batches per epoch: 5 + 2
    assert len(calls) == 7 and len(losses) == 2 and all(np.isfinite(losses))
    with pytest.raises(ValueError, match="at least one sample and one step"):
        fit_classifier(model, x, y, epochs=1, steps=0)
    with dg.no_grad():
        model[3].weight.fill_(float("nan"))  # the shared loop's guard now covers the zoo's recipes too
    with pytest.raises(NonFiniteLossError, match="the training loss is nan at epoch 1/1, batch 0"):
        fit_classifier(model, x, y, epochs=1)


# ----------------------------------------------------------------------------- GANTrainer on the loop
def _small_gan(**kwargs):
    dg.manual_seed(0)
    return gan.GANTrainer(models.MLPGenerator(latent_dim=2, hidden=8), models.MLPDiscriminator(hidden=8), seed=0,
                          **kwargs)


def test_gan_runs_the_loops_callbacks_progress_and_epoch_history(capsys):
    seen = []
    trainer = _small_gan(callbacks=[LambdaCallback(on_batch_end=lambda b, logs: seen.append((b, dict(logs))),
                                                   on_epoch_end=lambda e, logs: seen.append(("epoch", e)))])
    data = gan.make_ring(256, seed=0)
    history = trainer.fit(data, steps=5, batch_size=32, progress=True)
    assert [b for b, _ in seen[:5]] == [0, 1, 2, 3, 4] and seen[5] == ("epoch", 0)
    assert [logs["g_loss"] for _, logs in seen[:5]] == history["g_loss"]
    trainer.fit(data, steps=3, batch_size=32)  # a second fit: 3 more steps, one more epoch entry
    assert trainer.steps_done == trainer.global_step == 8 and len(history["d_loss"]) == 8
    assert trainer.epoch_history.epochs == [1, 2]
    assert trainer.epoch_history["d_loss"][1] == pytest.approx(np.mean(history["d_loss"][5:]))
    summary = capsys.readouterr().err.strip().splitlines()[-1]  # stderr is no terminal: the summary line only
    assert re.match(r"GAN  d_loss \S+  g_loss \S+  d_real \S+  d_fake \S+", summary), summary


def test_gan_nonfinite_loss_stops_before_any_update():
    trainer = _small_gan()
    with dg.no_grad():
        trainer.discriminator.net[-1].bias.fill_(float("nan"))
    before = {k: v.numpy().copy() for k, v in trainer.generator.state_dict().items()}
    with pytest.raises(NonFiniteLossError, match=r"GANTrainer \(discriminator\): the training loss is nan at step 1"):
        trainer.fit(gan.make_ring(128, seed=0), steps=2, batch_size=32)
    assert isinstance(NonFiniteLossError("x"), FloatingPointError)  # what `deepgrad gan` catches
    stopping = _small_gan(on_nonfinite="stop")
    with dg.no_grad():
        stopping.discriminator.net[-1].bias.fill_(float("nan"))
    with pytest.warns(RuntimeWarning, match="training loss is nan at step 1"):
        history = stopping.fit(gan.make_ring(128, seed=0), steps=2, batch_size=32)
    assert history["d_loss"] == [] and stopping.global_step == 0
    for k, v in trainer.generator.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])


def test_gan_refuses_checkpoints_clearly(tmp_path):
    trainer = _small_gan(callbacks=[ModelCheckpoint(tmp_path, every_n_steps=1)])
    with pytest.raises(NotImplementedError, match="GANTrainer does not write checkpoints"):
        trainer.fit(gan.make_ring(128, seed=0), steps=1, batch_size=32)


# ----------------------------------------------------------------------------- schedulers declare their cadence
def _fit_with(scheduler_factory, epochs=2, **trainer_kwargs):
    x = np.random.default_rng(0).standard_normal((40, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    dg.manual_seed(0)
    model = nn.Linear(4, 2)
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = scheduler_factory(opt)
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt, sched, progress=False, **trainer_kwargs)
    trainer.fit(DataLoader(TensorDataset(x, y), batch_size=10), DataLoader(TensorDataset(x, y), batch_size=40),
                epochs=epochs)
    return trainer, sched


class _PerBatchStepLR(optim.lr_scheduler.StepLR):
    interval = "step"


class _Plateau(optim.lr_scheduler.ReduceLROnPlateau):  # no class-name string would recognise it
    pass


def test_trainer_reads_the_schedulers_interval_and_metric_needs():
    trainer, sched = _fit_with(lambda o: optim.lr_scheduler.StepLR(o, 1))
    assert trainer.scheduler_interval == "epoch" and sched.last_epoch == 2
    trainer, sched = _fit_with(lambda o: _PerBatchStepLR(o, 1))
    assert trainer.scheduler_interval == "step" and sched.last_epoch == 8  # 4 batches x 2 epochs

    def per_batch(o):
        s = optim.lr_scheduler.ExponentialLR(o, 0.5)
        s.interval = "step"  # an instance can say so too
        return s

    _, sched = _fit_with(per_batch)
    assert sched.last_epoch == 8
    _, sched = _fit_with(lambda o: _Plateau(o, patience=0, factor=0.5, mode="max"), epochs=3)
    assert sched.get_last_lr()[0] == pytest.approx(0.025)  # stepped with the falling val_loss: cut twice
    assert optim.lr_scheduler.OneCycleLR.interval == optim.lr_scheduler.CyclicLR.interval == "step"

    def odd(o):
        s = optim.lr_scheduler.StepLR(o, 1)
        s.interval = "batch"
        return s

    with pytest.raises(ValueError, match="the scheduler's interval must be 'epoch' or 'step', got 'batch'"):
        _fit_with(odd)


# ----------------------------------------------------------------------------- one accuracy, one shift
def test_model_accuracy_is_accuracy_of_the_outputs_and_restores_the_mode():
    dg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 3))
    x = np.random.default_rng(1).standard_normal((37, 4)).astype(np.float32)
    y = np.random.default_rng(2).integers(0, 3, 37)
    model.eval()
    with dg.no_grad():
        expected = accuracy(model(dg.tensor(x)), y)
    model.train()
    assert model_accuracy(model, x, y, batch_size=8) == expected and model.training
    model.eval()
    assert model_accuracy(model, x, y) == expected and not model.training


def test_random_shift_is_a_pad_and_crop_per_image():
    x = np.random.default_rng(0).standard_normal((30, 2, 6, 5)).astype(np.float32)
    out = RandomShift(2, per_sample=True, generator=np.random.default_rng(7))(x)
    rng = np.random.default_rng(7)
    dy, dx = rng.integers(0, 5, size=(2, 30))
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), constant_values=float(x.min()))
    np.testing.assert_array_equal(out, np.stack([padded[i, :, dy[i]:dy[i] + 6, dx[i]:dx[i] + 5] for i in range(30)]))
    one = RandomShift(1, fill=0.0, generator=3)(x[0])  # a single image: one offset for all its channels
    assert any(np.array_equal(one, shift(x[0], a, b)) for a in (-1, 0, 1) for b in (-1, 0, 1))
    with pytest.raises(ValueError, match="max_shift must be a non-negative integer"):
        RandomShift(-1)


# ----------------------------------------------------------------------------- structure and public paths
def _imports(path: pathlib.Path) -> list[str]:
    """Absolute names of the modules a file imports (``from .x import y`` resolved against its package)."""
    package = ["deepgrad", *path.relative_to(ROOT).parent.parts]
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names += [module] + [f"{module}.{a.name}" for a in node.names]
    return names


@pytest.mark.parametrize("below, above", [("nn", "deepgrad.optim"), ("models", "deepgrad.transfer"),
                                          ("models", "deepgrad.gan"), ("train", "deepgrad.gan"),
                                          ("data", "deepgrad.train")])
def test_imports_go_down_here(below, above):
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / below).rglob("*.py")
                 if any(n == above or n.startswith(above + ".") for n in _imports(p))]
    assert offenders == [], f"{below}/ imports {above}: {offenders}"


def test_private_constructor_stays_in_the_engine():
    engine = ("ops", "autograd", "kernels", "tensor.py", "creation.py", "functional.py")
    users = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")
             if p.relative_to(ROOT).parts[0] not in engine and "._make(" in p.read_text()]
    assert users == []


def test_moved_things_keep_their_import_paths():
    from deepgrad import transfer
    from deepgrad.models import loading
    from deepgrad.nn import utils

    assert transfer.load_pretrained is loading.load_pretrained is models.load_pretrained
    assert transfer.LoadReport is loading.LoadReport and transfer.read_safetensors is loading.read_safetensors
    assert utils.clip_grad_norm_ is optim.clip_grad_norm_ and optim.clip_grad.clip_grad_value_ is utils.clip_grad_value_
    for name in ("GANTrainer", "ring_trainer", "dcgan_trainer", "make_ring", "ring_centers", "digit_images",
                 "mode_coverage", "sliced_wasserstein", "discriminator_loss", "generator_loss", "image_grid",
                 "save_image_grid", "save_scatter", "plot_losses", "ModeCoverage", "LOSSES"):
        assert hasattr(gan, name), name
    assert os.path.isdir(ROOT / "gan") and not (ROOT / "gan.py").exists()


def test_rnn_dropout_between_layers_is_functional_dropout(monkeypatch):
    calls = []
    real = nn.functional.dropout

    def spy(x, p=0.5, training=True, inplace=False):
        calls.append(p)
        return real(x, p, training, inplace)

    monkeypatch.setattr(nn.functional, "dropout", spy)
    dg.manual_seed(0)
    gru = nn.GRU(3, 4, num_layers=3, dropout=0.25)
    gru(dg.randn(5, 2, 3))
    assert calls == [0.25, 0.25]  # after layers 1 and 2, not after the last
    gru.eval()
    gru(dg.randn(5, 2, 3))
    assert calls == [0.25, 0.25]


def test_progress_bar_uses_the_trainers_label():
    bar = ProgressBar(live=False)
    bar.set_trainer(_small_gan())
    assert bar._label(0) == "GAN"
