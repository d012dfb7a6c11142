"""Exact resume: a run killed by SIGKILL and resumed from its last checkpoint ends bit-identical to an
uninterrupted run (dropout, shuffling, Adam moments and a per-batch OneCycleLR all exercised).

This file is also the worker script: ``python test_train_resume.py <mode> <dir>`` runs one training.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import nn, optim
from deepgrad.data import DataLoader, TensorDataset
from deepgrad.train import (
    Callback,
    CheckpointError,
    EarlyStopping,
    LambdaCallback,
    ModelCheckpoint,
    Trainer,
    load_checkpoint,
)

EPOCHS = 4
KILL_AT_STEP = 17  # mid-epoch (10 batches per epoch), two steps after the checkpoint of step 15


def _setup(run_dir: str, callbacks=(), every_n_steps: int | None = 5, seed: int = 1234):
    dg.manual_seed(seed)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(76, 6)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Dropout(0.3), nn.Linear(16, 2))
    opt = optim.Adam(model.parameters(), lr=1e-2)
    train = DataLoader(TensorDataset(x[:60], y[:60]), batch_size=6, shuffle=True)  # epoch seeds from the global RNG
    val = DataLoader(TensorDataset(x[60:], y[60:]), batch_size=8)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=EPOCHS * len(train))
    ckpt = ModelCheckpoint(run_dir, filename=None, every_n_steps=every_n_steps)
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt, sched, metrics=["accuracy"], progress=False,
                      callbacks=[EarlyStopping("val_loss", patience=100), *callbacks, ckpt])
    return trainer, train, val


def _weights(model) -> dict[str, np.ndarray]:
    return {k: np.array(v.array) for k, v in model.state_dict().items()}


class _KillPoint(Callback):
    """Signals the parent through a file at a fixed step, then waits to be killed."""

    def __init__(self, flag: str):
        self.flag = flag

    def on_batch_end(self, batch, logs):
        if self.trainer.global_step == KILL_AT_STEP:
            with open(self.flag, "w") as f:
                f.write("ready")
            time.sleep(60)


def _worker(mode: str, run_dir: str) -> None:
    if mode == "victim":
        trainer, train, val = _setup(run_dir, callbacks=[_KillPoint(os.path.join(run_dir, "ready"))])
        trainer.fit(train, val, epochs=EPOCHS)
    elif mode == "resume":
        trainer, train, val = _setup(run_dir, seed=999)  # another seed: everything must come from the checkpoint
        trainer.fit(train, val, epochs=EPOCHS, resume_from=os.path.join(run_dir, "last.ckpt"))
        dg.save(trainer.model.state_dict(), os.path.join(run_dir, "final.safetensors"))
        trainer.history.to_json(os.path.join(run_dir, "history.json"))


def _uninterrupted(tmp_path):
    trainer, train, val = _setup(str(tmp_path / "full"))
    history = trainer.fit(train, val, epochs=EPOCHS)
    return trainer, history


def test_sigkill_then_resume_is_bit_identical(tmp_path):
    run_dir = str(tmp_path / "killed")
    os.makedirs(run_dir)
    root = os.path.dirname(os.path.dirname(os.path.abspath(dg.__file__)))  # the subprocess imports this deepgrad
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])]))
    victim = subprocess.Popen([sys.executable, __file__, "victim", run_dir], env=env)
    flag = os.path.join(run_dir, "ready")
    deadline = time.time() + 60
    while not os.path.exists(flag):
        assert victim.poll() is None, "the training subprocess exited before reaching the kill point"
        assert time.time() < deadline, "the training subprocess never reached the kill point"
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    state = load_checkpoint(os.path.join(run_dir, "last.ckpt"))
    assert state["trainer"]["global_step"] == 15 and state["trainer"]["epoch_state"]["batches_done"] == 5
    assert not [f for f in os.listdir(run_dir) if f.startswith(".tmp-")]  # no half-written checkpoint left

    subprocess.run([sys.executable, __file__, "resume", run_dir], env=env, check=True, timeout=60)
    resumed = dg.load(os.path.join(run_dir, "final.safetensors"))
    full, history = _uninterrupted(tmp_path)
    expected = _weights(full.model)
    assert set(resumed) == set(expected)
    for k in expected:
        assert np.array_equal(resumed[k].numpy(), expected[k]), k
    import json

    with open(os.path.join(run_dir, "history.json")) as f:
        resumed_history = json.load(f)
    assert resumed_history["loss"] == history.history["loss"]
    assert resumed_history["val_accuracy"] == history.history["val_accuracy"]


@pytest.mark.parametrize("stop_at", [10, 13])  # an epoch boundary and mid-epoch
def test_in_process_resume_matches(tmp_path, stop_at):
    class Stop(Callback):  # interrupts after step `stop_at` and every checkpoint it triggers
        def on_batch_begin(self, batch, logs):
            if self.trainer.global_step == stop_at:
                raise KeyboardInterrupt

    trainer, train, val = _setup(str(tmp_path / "a"), callbacks=[Stop()], every_n_steps=1)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(train, val, epochs=EPOCHS)
    resumed, train, val = _setup(str(tmp_path / "a"), seed=7)
    history = resumed.fit(train, val, epochs=EPOCHS, resume_from=str(tmp_path / "a" / "last.ckpt"))
    full, full_history = _uninterrupted(tmp_path)
    for k, v in _weights(full.model).items():
        assert np.array_equal(_weights(resumed.model)[k], v), k
    assert history.history == full_history.history
    assert resumed.optimizer.param_groups[0]["lr"] == full.optimizer.param_groups[0]["lr"]
    es_a = [c for c in resumed.callbacks if isinstance(c, EarlyStopping)][0]
    es_b = [c for c in full.callbacks if isinstance(c, EarlyStopping)][0]
    assert (es_a.best, es_a.wait, es_a.best_epoch) == (es_b.best, es_b.wait, es_b.best_epoch)


def test_resume_without_restoring_rng_would_differ(tmp_path):
    """Control: the test above can fail. Dropping the RNG restore changes the final weights."""
    trainer, train, val = _setup(str(tmp_path / "b"), every_n_steps=1,
                                 callbacks=[LambdaCallback(on_batch_end=lambda b, logs: None)])
    trainer.fit(train, val, epochs=2)
    resumed, train, val = _setup(str(tmp_path / "b"), seed=7)
    resumed.load_checkpoint(str(tmp_path / "b" / "last.ckpt"), train)
    dg.manual_seed(7)  # clobber the restored global generator (dropout masks and epoch shuffles)
    resumed.fit(train, val, epochs=EPOCHS)
    full, _ = _uninterrupted(tmp_path)
    assert not all(np.array_equal(a, b) for a, b in zip(_weights(resumed.model).values(),
                                                         _weights(full.model).values()))


def test_checkpoint_from_other_architecture_reports_keys_and_shapes(tmp_path):
    trainer, train, val = _setup(str(tmp_path / "c"), every_n_steps=None)
    trainer.fit(train, val, epochs=1)
    other = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 2))
    t2 = Trainer(other, nn.CrossEntropyLoss(), optim.Adam(other.parameters()), progress=False)
    with pytest.raises(CheckpointError) as err:
        t2.load_checkpoint(str(tmp_path / "c" / "last.ckpt"))
    msg = str(err.value)
    assert "saved from a Sequential" in msg
    assert 'Unexpected key(s) in state_dict: "3.weight", "3.bias"' in msg
    assert 'Missing key(s) in state_dict: "2.weight", "2.bias"' in msg
    assert "size mismatch for 0.weight: copying a param with shape (16, 6)" in msg and "(8, 6)" in msg


def test_not_a_checkpoint(tmp_path):
    dg.save({"w": dg.zeros(2)}, tmp_path / "w.safetensors")
    with pytest.raises(CheckpointError, match="not a deepgrad training checkpoint"):
        load_checkpoint(tmp_path / "w.safetensors")
    (tmp_path / "junk.ckpt").write_bytes(b"\x00" * 20)
    with pytest.raises(CheckpointError, match="not a readable safetensors checkpoint"):
        load_checkpoint(tmp_path / "junk.ckpt")
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        load_checkpoint(tmp_path / "missing.ckpt")


if __name__ == "__main__":
    _worker(sys.argv[1], sys.argv[2])
