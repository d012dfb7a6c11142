"""Training safety: a finite loss with non-finite gradients stops before the optimizer step (Trainer and GAN),
a save killed mid-write leaves no temporary for good, malformed checkpoints are refused with the file and the
fault named, files are written with the usual permissions, and a full disk is reported against the file.

This file is also a worker script: ``python test_train_safety.py PATH`` saves large checkpoints at PATH in a
loop until it is killed."""

from __future__ import annotations

import copy
import errno
import hashlib
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import gan, io, nn, optim
from deepgrad.data import DataLoader, TensorDataset
from deepgrad.train import (
    CheckpointError,
    EarlyStopping,
    History,
    LambdaCallback,
    ModelCheckpoint,
    ProgressBar,
    Trainer,
    load_checkpoint,
    plot_history,
    save_checkpoint,
)
from deepgrad.train.checkpoint import FORMAT
from deepgrad.train.guards import NonFiniteGradientError

HERE = os.path.dirname(os.path.abspath(__file__))


class SqrtGain(nn.Module):
    """Scales its input by sqrt(gain): at gain = 0 the output (and so the loss) is finite, but d/d gain is
    infinite, the way sqrt/log/pow at 0 break real models."""

    def __init__(self):
        super().__init__()
        self.gain = nn.Parameter(dg.ones(1))

    def forward(self, x):
        return x * self.gain.sqrt()


def _net():
    dg.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3), SqrtGain())


def _data(n=96):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    return (rng.normal(size=(n, 4)) + 2.0 * np.eye(3, 4)[y]).astype(np.float32), y


def _digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


# ----------------------------------------------------------------------------- non-finite gradients
def test_finite_loss_with_nonfinite_gradient_stops_before_the_step_and_keeps_the_last_checkpoint(tmp_path):
    x, y = _data()
    train = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, generator=0)  # 6 batches per epoch
    model = _net()
    snapshot = {}

    def break_gain(epoch, logs):  # epoch 3 (index 2) starts with the gain at 0: forward fine, backward infinite
        if epoch == 2:
            snapshot["digest"] = _digest(tmp_path / "last.ckpt")
            snapshot["weights"] = {k: v.numpy().copy() for k, v in model.state_dict().items()}
            with dg.no_grad():
                model[3].gain.fill_(0.0)

    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-2), progress=False,
                      callbacks=[LambdaCallback(on_epoch_begin=break_gain), ModelCheckpoint(tmp_path, filename=None)])
    with pytest.raises(NonFiniteGradientError) as info:
        trainer.fit(train, epochs=4)
    message = str(info.value)
    assert "Trainer (epoch 3/4, batch 0): the gradient of '3.gain' is not finite at step 13" in message
    assert "while the loss is finite" in message and "before the optimizer step" in message
    assert trainer.global_step == 12  # the 13th step was not taken
    for key, before in snapshot["weights"].items():  # no weight moved (the gain is the one we zeroed)
        now = model.state_dict()[key].numpy()
        assert np.array_equal(now, before) or key == "3.gain", key
        assert np.isfinite(now).all(), key
    assert _digest(tmp_path / "last.ckpt") == snapshot["digest"]  # the last good checkpoint is untouched
    assert load_checkpoint(tmp_path / "last.ckpt")["trainer"]["global_step"] == 12

    model = _net()  # on_nonfinite="stop": a warning and the finished epochs' history
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-2), progress=False,
                      on_nonfinite="stop", callbacks=[LambdaCallback(on_epoch_begin=break_gain)])
    snapshot.clear()
    (tmp_path / "last.ckpt").unlink()
    open(tmp_path / "last.ckpt", "w").close()
    with pytest.warns(RuntimeWarning, match="gradient of '3.gain' is not finite at step 13"):
        history = trainer.fit(train, epochs=4)
    assert len(history) == 2 and "3.gain" in trainer.stop_reason


def test_gan_step_stops_on_a_nonfinite_gradient_before_updating(tmp_path):
    dg.manual_seed(0)
    generator = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
    generator.latent_dim = 2
    discriminator = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1), SqrtGain())
    with dg.no_grad():
        discriminator[3].gain.fill_(0.0)
    trainer = gan.GANTrainer(generator, discriminator, seed=0)
    before = {k: v.numpy().copy() for k, v in discriminator.state_dict().items()}
    with pytest.raises(NonFiniteGradientError, match=r"GANTrainer \(discriminator\): the gradient of '3.gain' is "
                                                     r"not finite at step 1 while the loss is finite"):
        trainer.fit(gan.make_ring(256, seed=0), steps=3, batch_size=64)
    for key, value in discriminator.state_dict().items():
        assert np.array_equal(value.numpy(), before[key]), key


# ----------------------------------------------------------------------------- killed saves
def _save_forever(path: str) -> None:
    """Worker: save a 48 MB checkpoint over and over (a kill lands mid-write most of the time)."""
    weights = np.random.default_rng(0).standard_normal(12_000_000).astype(np.float32)
    step = 0
    while True:
        save_checkpoint(path, {"step": step, "weights": weights})
        if step == 0:
            print("saved", flush=True)
        step += 1


def _kill_mid_save(path) -> list[str]:
    """Kill (SIGKILL) a process while it writes ``path``; returns the temporaries it left."""
    directory = os.path.dirname(path)
    for _ in range(5):  # the kill may land between two writes, when no temporary exists: try again
        child = subprocess.Popen([sys.executable, __file__, str(path)], stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(HERE),
                                                                                    os.environ.get("PYTHONPATH", "")])})
        assert child.stdout.readline().strip() == "saved"  # one complete checkpoint exists
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(f.startswith(".tmp-") for f in os.listdir(directory)):
            time.sleep(0.001)
        child.kill()
        child.wait(timeout=30)
        left = [f for f in os.listdir(directory) if f.startswith(".tmp-")]
        if left:
            return left
    pytest.fail("no kill landed during a write in 5 tries")


@pytest.mark.parametrize("next_action", ["resume", "save"])
def test_a_killed_save_leaves_no_temporary_for_good(tmp_path, next_action):
    path = tmp_path / "last.ckpt"
    left = _kill_mid_save(path)
    assert all(name.endswith("-last.ckpt") for name in left)
    state = load_checkpoint(path) if next_action == "resume" else None  # resuming reads the checkpoint
    if next_action == "resume":
        assert state["weights"].shape == (12_000_000,)  # the previous complete checkpoint, not half of one
    else:
        save_checkpoint(path, {"step": -1})  # the next save of the same checkpoint
        assert load_checkpoint(path)["step"] == -1
    assert [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")] == []


def test_only_dead_writers_temporaries_of_the_same_file_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tag = io._host_tag()
    names = {
        "dead-same": f".tmp-{tag}-{dead.pid}-0123abcd-last.ckpt",  # removed
        "dead-other-file": f".tmp-{tag}-{dead.pid}-0123abcd-best.ckpt",  # another checkpoint: kept
        "alive-same": f".tmp-{tag}-{os.getpid()}-0123abcd-last.ckpt",  # a write in progress here: kept
        "other-host": f".tmp-ffffffff-{dead.pid}-0123abcd-last.ckpt",  # pid means nothing here: kept
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"partial")
    io.atomic_write_bytes(tmp_path / "last.ckpt", b"whole")
    assert sorted(os.listdir(tmp_path)) == sorted([*(n for k, n in names.items() if k != "dead-same"), "last.ckpt"])


# ----------------------------------------------------------------------------- malformed checkpoints
def _checkpoint_with_state(path, skeleton_json: str, arrays=None) -> None:
    meta = {"format": FORMAT, "deepgrad_checkpoint": skeleton_json}
    io.atomic_write_bytes(path, io.safetensors_bytes(arrays or {"w": np.zeros(2, np.float32)}, metadata=meta))


@pytest.mark.parametrize("skeleton, fault", [
    ('{"epoch": 3, ', "its training state is not valid JSON"),
    ("[" * 100_000 + "]" * 100_000, "nests deeper than 64 levels"),  # past the JSON parser's recursion limit
    ('{"a": ' + "[" * 200 + "]" * 200 + "}", "nests deeper than 64 levels"),  # parses; would overflow later
    ("[1, 2]", "is a JSON list, not an object"),
    ('{"model": {"__array__": "missing"}}', "refers to an array 'missing' that it does not hold"),
    ('{"model": {"__scalar__": "no-such-dtype", "value": 1}}', "an entry has the wrong structure"),
    ('{"model": {"__items__": [[1, 2, 3]]}}', "an entry has the wrong structure"),
])
def test_malformed_checkpoint_names_the_file_and_the_fault(tmp_path, skeleton, fault):
    path = tmp_path / "last.ckpt"
    _checkpoint_with_state(path, skeleton)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and fault in str(info.value)


def test_checkpoint_of_the_wrong_structure_is_refused_before_anything_is_restored(tmp_path):
    x, y = _data(32)
    model = _net()
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), progress=False)
    trainer.fit(DataLoader(TensorDataset(x, y), batch_size=16), epochs=1)
    trainer.save_checkpoint(tmp_path / "good.ckpt")
    state = load_checkpoint(tmp_path / "good.ckpt")
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    for mutate, fault in [(lambda s: s.pop("trainer"), "it has no 'trainer' entry"),
                          (lambda s: s["trainer"].pop("global_step"), "it has no 'trainer.global_step' entry"),
                          (lambda s: s["trainer"].update(epoch="3"),
                           "its 'trainer.epoch' entry is a str, expected int"),
                          (lambda s: s["rng"].pop("numpy"), "its 'rng' entry lacks ['numpy']"),
                          (lambda s: s.update(history=[]), "its 'history' entry is a list, expected dict")]:
        broken = copy.deepcopy(state)
        mutate(broken)
        save_checkpoint(tmp_path / "bad.ckpt", broken)
        with pytest.raises(CheckpointError) as info:
            trainer.load_checkpoint(str(tmp_path / "bad.ckpt"))
        assert str(tmp_path / "bad.ckpt") in str(info.value) and fault in str(info.value), str(info.value)
    for key, value in model.state_dict().items():
        assert np.array_equal(value.numpy(), before[key])  # nothing half-restored


def test_a_safetensors_header_nested_too_deeply_is_refused(tmp_path):
    header = ("[" * 100_000 + "]" * 100_000).encode()
    path = tmp_path / "deep.ckpt"
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    with pytest.raises(CheckpointError, match="nested too deeply"):
        load_checkpoint(path)


def test_callback_state_follows_its_callback_with_or_without_a_progress_bar(tmp_path):
    x, y = _data(32)
    loaders = DataLoader(TensorDataset(x[:24], y[:24]), batch_size=8), DataLoader(TensorDataset(x[24:], y[24:]))
    model = _net()
    stopper = EarlyStopping(patience=5)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1),
                      callbacks=[ProgressBar(file=open(os.devnull, "w")), stopper])
    trainer.fit(*loaders, epochs=2)
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    again = EarlyStopping(patience=5)
    other = _net()
    resumed = Trainer(other, nn.CrossEntropyLoss(), optim.SGD(other.parameters(), lr=0.1), progress=False,
                      callbacks=[again])  # resumed without the bar: the callbacks' positions shift
    resumed.load_checkpoint(str(tmp_path / "last.ckpt"))
    assert (again.best, again.best_epoch, again.wait) == (stopper.best, stopper.best_epoch, stopper.wait)
    assert again.best_epoch is not None


# ----------------------------------------------------------------------------- files: permissions, full disk
def _write_every_kind(directory) -> list[str]:
    """Weights, a checkpoint, CSV/JSON history, a PNG plot, GAN samples and an ONNX file (when onnx is there)."""
    model = nn.Sequential(nn.Linear(2, 3))
    dg.save(model.state_dict(), directory / "model.safetensors")
    save_checkpoint(directory / "last.ckpt", {"model": model.state_dict()})
    history = History()
    history.append(1, {"loss": 0.5, "val_loss": 0.6})
    history.append(2, {"loss": 0.4, "val_loss": 0.5})
    history.to_csv(directory / "history.csv")
    history.to_json(directory / "history.json")
    plot_history(history, directory / "history.png")
    gan.save_image_grid(np.zeros((4, 1, 8, 8), np.float32), directory / "samples.png")
    try:
        from deepgrad.onnx import export

        export(model, np.zeros((1, 2), np.float32), directory / "model.onnx")
    except ImportError:
        pass
    return sorted(os.listdir(directory))


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_kept_files_get_the_usual_permissions(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        names = _write_every_kind(tmp_path)
    finally:
        os.umask(old)
    assert {"model.safetensors", "last.ckpt", "history.csv", "history.png", "samples.png"} <= set(names)
    for name in names:
        assert os.stat(tmp_path / name).st_mode & 0o777 == mode, name


def test_full_disk_names_the_file_keeps_the_old_one_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    save_checkpoint(path, {"step": 1})
    before = path.read_bytes()
    real_write = os.write

    def full_disk(fd, data):
        if fd > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(io.os, "write", full_disk)
    with pytest.raises(OSError) as info:
        save_checkpoint(path, {"step": 2})
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)  # not the temporary's name
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["last.ckpt"]


def test_early_stopping_says_it_stopped_when_and_why(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 20)).astype(np.float32)
    y = rng.integers(0, 2, 60)  # random labels: validation loss rises once the training set is memorised
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2))
    shown = open(tmp_path / "log.txt", "w")
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.01),
                      callbacks=[EarlyStopping(patience=2, restore_best_weights=True), ProgressBar(file=shown)])
    history = trainer.fit(DataLoader(TensorDataset(x[:20], y[:20]), batch_size=20),
                          DataLoader(TensorDataset(x[20:], y[20:]), batch_size=40), epochs=50)
    shown.close()
    stopped, best = len(history), int(np.argmin(history["val_loss"])) + 1
    last = open(tmp_path / "log.txt").read().splitlines()[-1]
    assert last.startswith(f"EarlyStopping: stopped after epoch {stopped}: val_loss did not improve for 2 epoch(s)")
    assert f"at epoch {best})" in last and f"the weights of epoch {best} are restored" in last and stopped < 50


if __name__ == "__main__":
    _save_forever(sys.argv[1])
