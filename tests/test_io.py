"""deepgrad.save / deepgrad.load on deepgrad's own format: what torch.save users pass comes back exactly, the file
is one plain safetensors file (no pickle), writes are atomic, and hostile structures are refused."""

import io as pyio
import json
import os
import pickle
import warnings
from collections import OrderedDict

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import io, nn, optim

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")


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


def _trained_linear_and_adam():
    dg.manual_seed(0)
    model = nn.Linear(3, 2)
    opt = optim.Adam(model.parameters(), lr=0.01, betas=(0.8, 0.99))
    for _ in range(2):
        opt.zero_grad()
        model(dg.randn(5, 3)).pow(2).sum().backward()
        opt.step()
    return model, opt


def test_pytorch_style_checkpoint_round_trips_exactly(tmp_path):
    model, opt = _trained_linear_and_adam()
    checkpoint = {
        "epoch": 7, "model_state_dict": model.state_dict(), "optimizer_state_dict": opt.state_dict(),
        "loss": 0.125, "best": float("-inf"), "diverged": float("nan"), "note": "warm-up", "scheduler": None,
        "flags": (True, False), "history": [(1, 0.5), (2, 0.25)], "big": 2**70, "blob": b"\x00\xff",
        "ids": {3, 5}, "np_scalar": np.float32(1.5), "np_array": np.arange(4, dtype=np.int16), "z": 1 + 2j,
        "dtypes": {"bool": dg.tensor([True, False]), "i64": dg.tensor([2**40, -1]), "f16": dg.ones(3, dtype=dg.float16),
                   "u8": dg.tensor([0, 255], dtype=dg.uint8), "zero_d": dg.tensor(2.5), "empty": dg.zeros(0, 3)},
        (1, "tuple-key"): "value", 4: "int key", None: "none key",
    }
    dg.save(checkpoint, tmp_path / "ckpt.safetensors")
    back = dg.load(tmp_path / "ckpt.safetensors")

    assert list(back) == list(checkpoint)
    for key in ("epoch", "loss", "best", "note", "scheduler", "flags", "history", "big", "blob", "ids", "z",
                (1, "tuple-key"), 4, None):
        assert back[key] == checkpoint[key] and type(back[key]) is type(checkpoint[key]), key
    assert np.isnan(back["diverged"])
    assert type(back["np_scalar"]) is np.float32 and back["np_scalar"] == 1.5
    assert isinstance(back["np_array"], np.ndarray) and back["np_array"].dtype == np.int16
    assert type(back["model_state_dict"]) is OrderedDict and list(back["model_state_dict"]) == ["weight", "bias"]
    for name, value in checkpoint["dtypes"].items():
        got = back["dtypes"][name]
        assert isinstance(got, dg.Tensor) and got.dtype == value.dtype and got.shape == value.shape, name
        np.testing.assert_array_equal(got.numpy(), value.numpy())
    saved_opt, got_opt = checkpoint["optimizer_state_dict"], back["optimizer_state_dict"]
    assert list(got_opt["state"]) == [0, 1]  # int keys stay ints
    assert got_opt["param_groups"][0]["betas"] == (0.8, 0.99)  # tuples stay tuples
    assert got_opt["param_groups"][0]["params"] == [0, 1]
    for i in (0, 1):
        assert got_opt["state"][i]["step"] == saved_opt["state"][i]["step"]
        np.testing.assert_array_equal(np.asarray(got_opt["state"][i]["exp_avg"]), saved_opt["state"][i]["exp_avg"])


def test_resumed_optimizer_takes_the_same_step(tmp_path):
    model, opt = _trained_linear_and_adam()
    dg.save({"model": model.state_dict(), "opt": opt.state_dict()}, tmp_path / "c.safetensors")
    back = dg.load(tmp_path / "c.safetensors")
    twin = nn.Linear(3, 2)
    twin.load_state_dict(back["model"])
    twin_opt = optim.Adam(twin.parameters(), lr=0.5)
    twin_opt.load_state_dict(back["opt"])
    x = dg.randn(5, 3)
    for m, o in ((model, opt), (twin, twin_opt)):
        o.zero_grad()
        m(x).pow(2).sum().backward()
        o.step()
    np.testing.assert_array_equal(twin.weight.detach().numpy(), model.weight.detach().numpy())


def test_flat_state_dict_is_a_plain_safetensors_file_torch_reads(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    dg.save(model.state_dict(), tmp_path / "m.safetensors")
    tensors = safetensors_torch.load_file(str(tmp_path / "m.safetensors"))
    assert sorted(tensors) == sorted(model.state_dict())
    twin = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    twin.load_state_dict(tensors)  # strict
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_allclose(twin(torch.from_numpy(x)).detach().numpy(), model(dg.tensor(x)).detach().numpy(),
                               rtol=1e-6, atol=1e-6)


def test_a_checkpoint_file_is_safetensors_and_nothing_else(tmp_path):
    model, opt = _trained_linear_and_adam()
    dg.save({"epoch": 1, "model": model.state_dict(), "opt": opt.state_dict()}, tmp_path / "c.ckpt")
    data = (tmp_path / "c.ckpt").read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    spans = sorted(tuple(v["data_offsets"]) for k, v in header.items() if k != "__metadata__")
    # Header + tensor bytes cover the whole file end to end: there is no room for a hidden pickle.
    assert spans[0][0] == 0 and spans[-1][1] == len(data) - 8 - n
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert not data.startswith(b"\x80") and b"posix" not in data and b"__reduce__" not in data
    structure = json.loads(header["__metadata__"]["deepgrad.structure"])
    assert structure["$dict"][0] == ["epoch", 1]
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(data)  # not a pickle at all
    assert sorted(safetensors_torch.load_file(str(tmp_path / "c.ckpt"))) == sorted(
        k for k in header if k != "__metadata__")


def test_file_objects_and_metadata(tmp_path):
    buffer = pyio.BytesIO()
    dg.save({"w": dg.ones(2), "step": 3}, buffer, metadata={"author": "me"})
    buffer.seek(0)
    back = dg.load(buffer)
    assert back["step"] == 3 and back["w"].tolist() == [1.0, 1.0]
    with open(tmp_path / "f.safetensors", "wb") as f:
        dg.save([dg.zeros(1)], f, metadata={"author": "me"})
    assert io.metadata(tmp_path / "f.safetensors")["author"] == "me"
    with open(tmp_path / "f.safetensors", "rb") as f:
        assert dg.load(f)[0].tolist() == [0.0]


def test_same_tensor_twice_is_one_object_and_parameters_keep_requires_grad(tmp_path):
    w = nn.Parameter(dg.randn(2, 2))
    frozen = dg.randn(3, requires_grad=True)
    dg.save({"a": w, "b": w, "frozen": frozen, "plain": frozen.detach()}, tmp_path / "p.safetensors")
    back = dg.load(tmp_path / "p.safetensors")
    assert back["a"] is back["b"] and isinstance(back["a"], nn.Parameter) and back["a"].requires_grad
    assert back["frozen"].requires_grad and not isinstance(back["frozen"], nn.Parameter)
    assert not back["plain"].requires_grad


def test_failed_write_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    dg.save({"a": dg.zeros(2)}, path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(io.os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        dg.save({"epoch": 2, "a": dg.ones(1000)}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # no temporary file left behind


def test_unstorable_objects_are_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "w.safetensors"
    dg.save({"a": dg.zeros(2)}, path)
    before = path.read_bytes()
    with pytest.raises(TypeError, match=r"cannot store a Linear at 'model'.*never pickles"):
        dg.save({"epoch": 1, "model": nn.Linear(2, 2)}, path)
    loop = {"x": []}
    loop["x"].append(loop)
    with pytest.raises(ValueError, match="contains itself"):
        dg.save(loop, path)
    with pytest.raises(TypeError, match="'bad'"):
        dg.save({"bad": np.array([object()])}, path)
    with pytest.raises(TypeError, match="metadata values must be strings"):
        dg.save({"a": dg.zeros(1)}, path, metadata={"epoch": 3})
    with pytest.raises(ValueError, match="deepgrad.save's own"):
        dg.save({"a": dg.zeros(1)}, path, metadata={"deepgrad.structure": "{}"})
    assert path.read_bytes() == before and len(list(tmp_path.iterdir())) == 1


def test_load_refuses_missing_and_unknown_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        dg.load(tmp_path / "missing.safetensors")
    text = tmp_path / "notes.txt"
    text.write_text("these are not weights")
    with pytest.raises(ValueError, match="not a file deepgrad.load reads"):
        dg.load(text)
    bogus = tmp_path / "model.pt"
    bogus.write_bytes(b"\x80\x04\x95 pickled data, never executed")
    with pytest.raises(pickle.UnpicklingError, match="malformed pickle data.*nothing in the file was executed"):
        dg.load(bogus)


def test_load_keywords_follow_torch(tmp_path):
    path = tmp_path / "k.safetensors"
    dg.save({"w": dg.ones(2)}, path)
    seen = []
    assert dg.load(path, map_location="cpu", weights_only=True)["w"].device == dg.Device("cpu")
    assert dg.load(path, map_location={"cuda:0": "cpu"}, weights_only=False)["w"].tolist() == [1.0, 1.0]
    assert dg.load(path, map_location=lambda storage, loc: seen.append(loc) or storage)["w"].device.type == "cpu"
    assert seen == ["cpu"]
    assert dg.load(path, device="cpu")["w"].tolist() == [1.0, 1.0]  # deepgrad's older keyword still works
    with pytest.raises(TypeError, match="map_location must be"):
        dg.load(path, map_location=3)
    with pytest.raises(RuntimeError, match="no deepgrad device"):
        dg.load(path, map_location="mps")
    with pytest.raises(TypeError, match="pickle_module is not supported"):
        dg.load(path, pickle_module=pickle)
    with pytest.raises(TypeError, match="unsupported keyword.*encoding"):
        dg.load(path, encoding="latin1")
    with pytest.raises(ValueError, match="mmap=True is not supported"):
        dg.load(path, mmap=True)
    with pytest.raises(TypeError, match="weights_only must be a bool"):
        dg.load(path, weights_only="yes")
    if not dg.cuda_is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available.*map_location='cpu'"):
            dg.load(path, map_location="cuda")


def _rewrite_structure(src, dst, structure):
    data = src.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    header["__metadata__"]["deepgrad.structure"] = json.dumps(structure)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    dst.write_bytes(len(raw).to_bytes(8, "little") + raw + data[8 + n:])


@pytest.mark.parametrize("structure, message", [
    ({"$tensor": "not-in-file"}, "does not hold"),
    ({"$eval": "__import__('os')"}, "unknown tag"),
    ({"$dict": [["a"]]}, "not a \\[key, value\\] pair"),
    ({"$dict": [[[1, 2], 3]]}, "unhashable"),
    ({"$scalar": "|O", "value": 1}, "bad \\$scalar"),
    ({"$bytes": "!!not base64"}, "bad \\$bytes"),
    ({"plain": "object"}, "unexpected node"),
])
def test_hostile_structures_are_refused(tmp_path, structure, message):
    dg.save({"w": dg.ones(2)}, tmp_path / "ok.safetensors")
    _rewrite_structure(tmp_path / "ok.safetensors", tmp_path / "bad.safetensors", structure)
    with pytest.raises(ValueError, match=message):
        dg.load(tmp_path / "bad.safetensors")


def test_bfloat16_safetensors_widen_exactly_to_float32(tmp_path):
    values = torch.tensor([1.5, -2.25, 3.0e38, 1e-40], dtype=torch.bfloat16)
    safetensors_torch.save_file({"b": values}, str(tmp_path / "bf.safetensors"))
    with pytest.warns(UserWarning, match="bfloat16.*float32"):
        back = dg.load(tmp_path / "bf.safetensors")
    assert back["b"].dtype == dg.float32
    np.testing.assert_array_equal(back["b"].numpy(), values.float().numpy())


def test_header_length_starting_with_0x80_is_not_taken_for_a_pickle(tmp_path):
    # A header of 128 + 256 k bytes has 0x80 as its first length byte, like a pickle's opcode.
    for width in range(1, 400):
        state, buffer = {"w" * width: dg.zeros(1)}, pyio.BytesIO()
        dg.save(state, buffer)
        if buffer.getvalue()[0] == 0x80:
            break
    else:
        pytest.skip("no key width gave a header length starting with 0x80")
    dg.save(state, tmp_path / "x.safetensors")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(dg.load(tmp_path / "x.safetensors")) == list(state)
    assert os.path.getsize(tmp_path / "x.safetensors") > 128


def test_tensors_saved_on_cuda_follow_map_location(tmp_path):
    dg.save({"w": dg.arange(3.0)}, tmp_path / "cpu.safetensors")
    _rewrite_structure(tmp_path / "cpu.safetensors", tmp_path / "gpu.safetensors",
                       {"$dict": [["w", {"$tensor": "w", "device": "cuda:0"}]], "ordered": False})
    assert dg.load(tmp_path / "gpu.safetensors", map_location="cpu")["w"].tolist() == [0.0, 1.0, 2.0]
    assert dg.load(tmp_path / "gpu.safetensors", map_location={"cuda:0": "cpu"})["w"].device == dg.Device("cpu")
    if not dg.cuda_is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            dg.load(tmp_path / "gpu.safetensors")
