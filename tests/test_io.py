"""deepgrad.save / deepgrad.load: shapes and dtypes survive, writes are atomic, nothing executes on load."""

import os

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import io, nn


def test_round_trip_keeps_shapes_dtypes_including_0d(tmp_path):
    state = {"scalar": dg.tensor(7), "w": dg.randn(3, 2), "half": dg.ones(4, dtype=dg.float64),
             "strided": dg.randn(4, 6)[:, ::2]}
    dg.save(state, tmp_path / "s.safetensors")
    back = dg.load(tmp_path / "s.safetensors")
    for k, v in state.items():
        assert back[k].shape == v.shape and back[k].dtype == v.dtype, k
        np.testing.assert_array_equal(back[k].numpy(), v.numpy())


def test_batchnorm_state_reloads_strictly(tmp_path):
    bn = nn.BatchNorm2d(3)
    bn(dg.randn(4, 3, 2, 2))
    dg.save(bn.state_dict(), tmp_path / "bn.safetensors")
    fresh = nn.BatchNorm2d(3)
    fresh.load_state_dict(dg.load(tmp_path / "bn.safetensors"))  # strict: num_batches_tracked is 0-d
    assert int(fresh.num_batches_tracked.item()) == 1


def test_failed_write_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    dg.save({"a": dg.zeros(2)}, path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(io.os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        dg.save({"a": dg.ones(1000)}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # no temporary file left behind


def test_load_refuses_missing_and_non_safetensors_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        dg.load(tmp_path / "missing.safetensors")
    bogus = tmp_path / "model.pt"
    bogus.write_bytes(b"\x80\x04\x95 pickled data, never executed")
    with pytest.raises(ValueError, match="not a safetensors file.*never unpickles"):
        dg.load(bogus)
    assert os.path.exists(bogus)


def test_save_rejects_non_numeric_entries(tmp_path):
    with pytest.raises(TypeError, match="'bad'"):
        dg.save({"bad": np.array([object()])}, tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="metadata values must be strings"):
        dg.save({"a": dg.zeros(1)}, tmp_path / "x.safetensors", metadata={"epoch": 3})


def test_header_length_starting_with_0x80_is_not_taken_for_a_pickle(tmp_path):
    # A header of 128 + 256 k bytes has 0x80 as its first length byte, like a pickle's opcode.
    for width in range(1, 400):
        state = {"w" * width: dg.zeros(1)}
        payload = io.safetensors_bytes({k: v.numpy() for k, v in state.items()})
        if payload[0] == 0x80:
            break
    else:
        pytest.skip("no key width gave a header length starting with 0x80")
    dg.save(state, tmp_path / "x.safetensors")
    assert list(dg.load(tmp_path / "x.safetensors")) == list(state)
