"""deepgrad.load reads files written by torch.save (torch 2.13 is the oracle): same tensors, dtypes, views,
strides and containers as torch.load(weights_only=True), in both the zip and the legacy format."""

import pickle

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import models, nn, optim

torch = pytest.importorskip("torch")

FORMATS = {"zip": {}, "legacy": {"_use_new_zipfile_serialization": False}}
# torch dtype -> the dtype deepgrad gives back (bfloat16 has no NumPy dtype: widened exactly to float32)
DTYPES = {torch.float32: np.float32, torch.float64: np.float64, torch.float16: np.float16, torch.bfloat16: np.float32,
          torch.int8: np.int8, torch.int16: np.int16, torch.int32: np.int32, torch.int64: np.int64,
          torch.uint8: np.uint8, torch.bool: np.bool_, torch.uint16: np.uint16, torch.uint32: np.uint32,
          torch.uint64: np.uint64}


def assert_same(expected, got, where="obj"):
    """``got`` (deepgrad.load) equals ``expected`` (torch.load): types, keys and order, tensor values/dtypes/strides."""
    if isinstance(expected, torch.Tensor):
        assert isinstance(got, dg.Tensor), where
        assert isinstance(got, nn.Parameter) == isinstance(expected, torch.nn.Parameter), where
        assert got.shape == tuple(expected.shape) and got.dtype == DTYPES[expected.dtype], where
        assert got.requires_grad == expected.requires_grad, where
        array = np.asarray(got)
        want = expected.detach().float() if expected.dtype == torch.bfloat16 else expected.detach()
        np.testing.assert_array_equal(array, want.numpy(), err_msg=where)
        if array.size > 1 and expected.dtype != torch.bfloat16:
            assert array.strides == tuple(s * expected.element_size() for s in expected.stride()), where
    elif isinstance(expected, torch.dtype):
        assert got == DTYPES[expected], where
    elif isinstance(expected, torch.device):
        assert got == dg.Device(str(expected)), where
    elif isinstance(expected, dict):
        assert type(got) is type(expected) and list(got) == list(expected), where
        for key in expected:
            assert_same(expected[key], got[key], f"{where}[{key!r}]")
    elif isinstance(expected, (list, tuple)):  # torch.Size comes back as a plain tuple
        assert type(got) is (tuple if isinstance(expected, torch.Size) else type(expected)), where
        assert len(got) == len(expected), where
        for i, (e, g) in enumerate(zip(expected, got)):
            assert_same(e, g, f"{where}[{i}]")
    else:
        assert type(got) is type(expected) and (got == expected or got != got and expected != expected), where


def _load_both(tmp_path, obj, fmt):
    path = tmp_path / f"{fmt}.pt"
    torch.save(obj, path, **FORMATS[fmt])
    return torch.load(path, weights_only=True), path


class TorchLeNet(torch.nn.Module):
    """LeNet-5 spelled in torch with deepgrad.models.LeNet5's state-dict keys."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2))
        self.classifier = torch.nn.Sequential(
            torch.nn.Linear(400, 120), torch.nn.ReLU(), torch.nn.Linear(120, 84), torch.nn.ReLU(),
            torch.nn.Linear(84, 10))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


@pytest.mark.parametrize("fmt", FORMATS)
def test_torch_lenet_weights_load_into_deepgrad_lenet(tmp_path, fmt):
    torch.manual_seed(0)
    source = TorchLeNet().eval()
    expected, path = _load_both(tmp_path, source.state_dict(), fmt)
    state = dg.load(path)
    assert_same(expected, state)
    model = models.LeNet5().eval()
    model.load_state_dict(state)  # strict: the same keys and shapes
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    with torch.no_grad():
        want = source(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model(dg.tensor(x)).detach().numpy(), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fmt", FORMATS)
def test_full_checkpoint_with_optimizer_state(tmp_path, fmt):
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    opt = torch.optim.Adam(net.parameters(), lr=0.01, betas=(0.8, 0.99))
    x = torch.randn(5, 3)
    for _ in range(2):
        opt.zero_grad()
        net(x).pow(2).sum().backward()
        opt.step()
    checkpoint = {"epoch": 2, "model_state_dict": net.state_dict(), "optimizer_state_dict": opt.state_dict(),
                  "loss": torch.tensor(0.375), "best": float("inf"), "tag": "run-1", "extra": None, "blob": b"\x00\x01",
                  "ids": {1, 2}, "shape": torch.Size([2, 3]), "dtype": torch.float16, "where": torch.device("cpu")}
    expected, path = _load_both(tmp_path, checkpoint, fmt)
    got = dg.load(path)
    assert_same(expected, got)
    assert list(got["optimizer_state_dict"]["state"]) == [0, 1, 2, 3]  # int keys stay ints
    assert got["model_state_dict"]._metadata == expected["model_state_dict"]._metadata  # torch's per-module versions

    # The optimizer state is usable: a deepgrad Adam resumed from it takes torch's next step.
    twin = dg.nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    twin.load_state_dict(got["model_state_dict"])
    twin_opt = optim.Adam(twin.parameters(), lr=0.5)
    twin_opt.load_state_dict(got["optimizer_state_dict"])
    for model, o, inputs in ((net, opt, x), (twin, twin_opt, dg.tensor(x.numpy()))):
        o.zero_grad()
        model(inputs).pow(2).sum().backward()
        o.step()
    np.testing.assert_allclose(twin[0].weight.detach().numpy(), net[0].weight.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fmt", FORMATS)
def test_views_shared_storage_and_strides(tmp_path, fmt):
    base = torch.arange(24, dtype=torch.float32)
    grid = base.view(4, 6)
    tied = torch.randn(3, 2)
    obj = {"base": base, "slice": base[5:9], "transposed": grid.t(), "window": grid[1:3, 2:5],
           "every_other": grid[:, ::2], "expanded": torch.ones(3, 1).expand(3, 4),
           "tied_a": tied, "tied_b": tied, "tied_view": tied.t()[1]}
    expected, path = _load_both(tmp_path, obj, fmt)
    got = dg.load(path)
    assert_same(expected, got)
    arrays = {k: np.asarray(v) for k, v in got.items()}
    # Like torch, views of one storage share memory after loading (tied weights stay tied).
    for key in ("slice", "transposed", "window", "every_other"):
        assert np.shares_memory(arrays[key], arrays["base"]), key
    assert np.shares_memory(arrays["tied_a"], arrays["tied_b"])
    assert np.shares_memory(arrays["tied_view"], arrays["tied_a"])
    assert not np.shares_memory(arrays["tied_a"], arrays["base"])
    assert arrays["expanded"].strides[1] == 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_common_dtype_zero_d_and_empty(tmp_path, fmt):
    rng = np.random.default_rng(2)
    obj = {}
    for dtype in DTYPES:
        if fmt == "legacy" and dtype in (torch.uint16, torch.uint32, torch.uint64):
            continue  # torch 2.13 writes these in the legacy format but cannot read them back
        if dtype.is_floating_point:
            obj[str(dtype)] = torch.from_numpy(rng.standard_normal((2, 3)).astype(np.float32)).to(dtype)
        elif dtype == torch.bool:
            obj[str(dtype)] = torch.tensor([[True, False, True]])
        else:
            obj[str(dtype)] = torch.tensor([[0, 1, 7], [100, 3, 9]]).to(dtype)
    obj["int64_extremes"] = torch.tensor([-(2**63), 2**63 - 1])
    obj["float_specials"] = torch.tensor([float("inf"), float("-inf"), -0.0, 1e-45])
    obj["zero_d"], obj["zero_d_int"] = torch.tensor(2.5), torch.tensor(7)
    obj["empty"] = torch.zeros(0, 3)
    expected, path = _load_both(tmp_path, obj, fmt)
    with pytest.warns(UserWarning, match="bfloat16 tensors were widened to float32"):
        got = dg.load(path)
    assert_same(expected, got)
    assert got["zero_d"].shape == () and got["zero_d_int"].dtype == dg.int64


@pytest.mark.parametrize("fmt", FORMATS)
def test_parameters_and_requires_grad_as_torch(tmp_path, fmt):
    obj = {"param": torch.nn.Parameter(torch.ones(2)), "frozen": torch.nn.Parameter(torch.ones(2), requires_grad=False),
           "leaf": torch.ones(2, requires_grad=True), "plain": torch.ones(2)}
    expected, path = _load_both(tmp_path, obj, fmt)
    got = dg.load(path)
    assert_same(expected, got)  # checks Parameter-ness and requires_grad of each
    got["param"].sum().backward()
    assert got["param"].grad.tolist() == [1.0, 1.0]


def test_map_location_for_tensors_saved_on_cuda(tmp_path):
    torch.save({"w": torch.arange(3.0), "b": torch.ones(2)}, tmp_path / "cpu.pt")
    # Re-spell the storages' location as 'cuda:0', as a GPU run writes it.
    import zipfile

    with zipfile.ZipFile(tmp_path / "cpu.pt") as zin, zipfile.ZipFile(tmp_path / "gpu.pt", "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith("data.pkl"):
                assert b"X\x03\x00\x00\x00cpu" in data
                data = data.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
            zout.writestr(info.filename, data)
    seen = []
    for location in ("cpu", {"cuda:0": "cpu"}, lambda storage, loc: seen.append((loc, storage.shape)) or "cpu"):
        got = dg.load(tmp_path / "gpu.pt", map_location=location)
        assert got["w"].tolist() == [0.0, 1.0, 2.0] and got["w"].device == dg.Device("cpu")
    assert sorted(seen) == [("cuda:0", (2,)), ("cuda:0", (3,))]  # once per storage, with its elements
    if not dg.cuda_is_available():
        with pytest.raises(RuntimeError, match=r"CUDA device \(cuda:0\).*map_location='cpu'"):
            dg.load(tmp_path / "gpu.pt")
    else:
        assert dg.load(tmp_path / "gpu.pt")["w"].device == dg.Device("cuda:0")


@pytest.mark.parametrize("make, message", [
    (lambda: {"c": torch.ones(2, dtype=torch.complex64)}, r"complex tensors \(torch.ComplexFloatStorage\)"),
    (lambda: {"q": torch.quantize_per_tensor(torch.ones(2), 0.1, 0, torch.qint8)}, r"'torch._utils._rebuild_qtensor'"),
    (lambda: {"s": torch.ones(2, 2).to_sparse()}, r"'torch._utils._rebuild_sparse_tensor'"),
    (lambda: {"dtype": torch.bfloat16}, "torch.bfloat16 appears as a value"),
])
@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")  # torch's own deprecation notice
def test_what_deepgrad_does_not_load_is_refused_clearly(tmp_path, make, message):
    torch.save(make(), tmp_path / "x.pt")
    with pytest.raises(pickle.UnpicklingError, match=message):
        dg.load(tmp_path / "x.pt")


def test_torchscript_archives_are_refused(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "scripted.pt", "w") as z:
        for name in ("archive/data.pkl", "archive/constants.pkl", "archive/code/__torch__.py", "archive/version"):
            z.writestr(name, b"")
    with pytest.raises(pickle.UnpicklingError, match="TorchScript"):
        dg.load(tmp_path / "scripted.pt")
