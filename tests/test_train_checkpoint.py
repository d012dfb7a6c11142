"""Checkpoint format: arrays in safetensors, everything else as JSON metadata; round trips; atomic writes."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

import deepgrad as dg
from deepgrad.train import CheckpointError, load_checkpoint, save_checkpoint
from deepgrad.train.examples import train_digits_demo


def test_round_trip_keeps_types_and_bits(tmp_path):
    rng = np.random.default_rng(0)
    state = {
        "model": {"fc.weight": dg.randn(3, 2), "fc.bias": rng.normal(size=2).astype(np.float64)},
        "optimizer": {"state": {0: {"step": 3, "exp_avg": rng.normal(size=(3, 2)).astype(np.float32)}},
                      "param_groups": [{"lr": 0.1 / 3, "betas": (0.9, 0.999), "params": [0]}]},
        "rng": {"pcg": dg.get_rng_state(), "legacy": np.random.get_state()},
        "misc": {"best": math.inf, "nan": math.nan, "f32": np.float32(0.1), "i64": np.int64(7), "none": None,
                 "flag": True, "ints": {1: "a", 2: "b"}, "empty": np.zeros((0, 4), np.int64)},
    }
    save_checkpoint(tmp_path / "c.ckpt", state)
    back = load_checkpoint(tmp_path / "c.ckpt")
    assert np.array_equal(back["model"]["fc.weight"], state["model"]["fc.weight"].array)
    assert back["model"]["fc.bias"].dtype == np.float64
    assert back["optimizer"]["state"][0]["step"] == 3 and isinstance(back["optimizer"]["state"][0]["step"], int)
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert back["optimizer"]["param_groups"][0]["lr"] == 0.1 / 3
    assert back["rng"]["pcg"] == state["rng"]["pcg"]  # 128-bit integers survive JSON
    legacy = back["rng"]["legacy"]
    assert legacy[0] == "MT19937" and np.array_equal(legacy[1], state["rng"]["legacy"][1])
    misc = back["misc"]
    assert misc["best"] == math.inf and math.isnan(misc["nan"]) and misc["ints"] == {1: "a", 2: "b"}
    assert type(misc["f32"]) is np.float32 and misc["f32"] == np.float32(0.1) and type(misc["i64"]) is np.int64
    assert misc["none"] is None and misc["flag"] is True and misc["empty"].shape == (0, 4)
    # the arrays are plain safetensors tensors: any safetensors reader sees them by their paths
    from safetensors.numpy import load_file

    assert set(load_file(tmp_path / "c.ckpt")) >= {"model.fc.weight", "optimizer.state.0.exp_avg", "rng.legacy.1"}


def test_refuses_objects_that_would_need_pickle(tmp_path):
    with pytest.raises(CheckpointError, match="cannot store function at 'hooks.0'"):
        save_checkpoint(tmp_path / "c.ckpt", {"hooks": [lambda: 0]})
    assert not os.path.exists(tmp_path / "c.ckpt")


def test_a_failed_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    save_checkpoint(path, {"epoch": 1, "w": np.ones(3)})
    before = path.read_bytes()

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"epoch": 2, "w": np.zeros(3)})
    monkeypatch.undo()
    assert path.read_bytes() == before and load_checkpoint(path)["epoch"] == 1
    assert os.listdir(tmp_path) == ["last.ckpt"]  # the temporary file was removed


def test_digits_demo(tmp_path):
    out = train_digits_demo(str(tmp_path), epochs=4, progress=False)
    history, test = out["history"], out["test"]
    assert len(history) == 4 and history["val_accuracy"][-1] > 0.85
    from deepgrad.data.datasets import load_digits

    n_test = len(load_digits(test_size=0.25, seed=0)[1])
    assert test["confusion_matrix"].shape == (10, 10) and test["confusion_matrix"].sum() == n_test
    assert open(out["plot"], "rb").read(4) == b"\x89PNG"
    assert {"best.ckpt", "last.ckpt", "history.csv", "history.png"} <= set(os.listdir(tmp_path))


def test_checkpoint_round_trip_with_batchnorm(tmp_path):
    # num_batches_tracked is 0-d: it must come back 0-d for a strict load
    from deepgrad import nn, optim
    from deepgrad.train import Trainer

    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    trainer = Trainer(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), progress=False)
    trainer.save_checkpoint(tmp_path / "c.ckpt")
    trainer.load_checkpoint(tmp_path / "c.ckpt")
    assert model[1].num_batches_tracked.shape == ()
