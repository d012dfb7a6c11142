"""deepgrad.data.datasets: digits, IDX/MNIST readers, CSV/NumPy tables, time series windows, synthetic tasks."""

import gzip
import importlib.util

import numpy as np
import pytest

from deepgrad.data import DataLoader
from deepgrad.data import datasets as D
from deepgrad.data import transforms as T
from deepgrad.data.datasets import timeseries


# ----------------------------------------------------------------------------- digits
def test_load_digits_shapes_balance_and_normalisation():
    train, test = D.load_digits(test_size=0.2, seed=0)
    assert len(train) + len(test) == 1797
    x, y = train.tensors
    assert x.shape == (len(train), 1, 8, 8) and x.dtype == np.float32 and y.dtype == np.int64
    assert abs(float(x.numpy().mean())) < 1e-5 and abs(float(x.numpy().std()) - 1.0) < 1e-4
    full = np.bincount(np.concatenate([y.numpy(), test.tensors[1].numpy()]), minlength=10)
    assert np.all(np.abs(np.bincount(test.tensors[1].numpy(), minlength=10) - 0.2 * full) <= 1)  # stratified
    again, _ = D.load_digits(seed=0)
    np.testing.assert_array_equal(again.tensors[1].numpy(), y.numpy())
    other, _ = D.load_digits(seed=1)
    assert not np.array_equal(other.tensors[1].numpy(), y.numpy())
    big, _ = D.load_digits(size=28, normalize=False)
    xb = big.tensors[0].numpy()
    assert xb.shape[1:] == (1, 28, 28) and xb.min() >= 0 and xb.max() <= 1
    assert np.all(xb[:, :, :2] == 0) and np.all(xb[:, :, :, -2:] == 0)  # MNIST-like blank border
    flat, _ = D.load_digits(flatten=True)
    assert flat.tensors[0].shape == (len(train), 64)
    with pytest.raises(ValueError, match="size"):
        D.load_digits(size=16)


# ----------------------------------------------------------------------------- IDX / MNIST
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, dtype, suffix):
    a = (np.random.default_rng(0).random((3, 4, 5)) * 100).astype(dtype)
    path = tmp_path / f"arr-idx3-ubyte{suffix}"
    D.write_idx(path, a)
    if suffix:
        with gzip.open(path, "rb") as f:
            assert f.read(4)[:2] == b"\x00\x00"
    b = D.read_idx(path)
    assert b.dtype == a.dtype and b.shape == a.shape
    np.testing.assert_array_equal(a, b)


def _write_mnist(folder, n_train=6, n_test=4, gz=False):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    ext = ".gz" if gz else ""
    data = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        D.write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", imgs)
        D.write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", labels)
        data[prefix] = (imgs, labels)
    return data


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_reads_idx_files(tmp_path, gz):
    written = _write_mnist(tmp_path / "MNIST" / "raw", gz=gz)
    train = D.MNIST(tmp_path, train=True)
    test = D.MNIST(tmp_path, train=False)
    assert len(train) == 6 and len(test) == 4
    img, label = train[3]
    np.testing.assert_array_equal(img, written["train"][0][3])
    assert label == 3 and isinstance(label, int)
    ds = D.MNIST(tmp_path, transform=T.ToArray(), target_transform=lambda t: t + 100)
    x, y = ds[1]
    assert x.shape == (1, 28, 28) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1 and y == 101
    xb, yb = next(iter(DataLoader(ds, batch_size=4)))
    assert xb.shape == (4, 1, 28, 28) and yb.dtype == np.int64
    fast = train.as_tensor_dataset()
    np.testing.assert_array_equal(fast.tensors[0].numpy()[3, 0], written["train"][0][3] / np.float32(255))
    # Files straight in root work too; so does Fashion-MNIST with its own folder and class names.
    _write_mnist(tmp_path / "flat")
    assert len(D.MNIST(tmp_path / "flat")) == 6
    _write_mnist(tmp_path / "FashionMNIST" / "raw", gz=True)
    fashion = D.FashionMNIST(tmp_path, train=False)
    assert len(fashion) == 4 and fashion.classes[9] == "Ankle boot"


def test_mnist_missing_and_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        D.MNIST(tmp_path / "nowhere")
    msg = str(info.value)
    assert "train-images-idx3-ubyte" in msg and "never downloads" in msg and str(tmp_path / "nowhere") in msg
    with pytest.raises(RuntimeError, match="never downloads"):
        D.MNIST(tmp_path, download=True)
    _write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        D.MNIST(tmp_path, train=False)
    D.write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match="4 images but labels of shape"):
        D.MNIST(tmp_path, train=False)
    raw = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw[:-10])
    with pytest.raises(ValueError, match="truncated"):
        D.MNIST(tmp_path)
    (tmp_path / "junk").write_bytes(b"\x12\x34\x56\x78")
    with pytest.raises(ValueError, match="not an IDX file"):
        D.read_idx(tmp_path / "junk")


# ----------------------------------------------------------------------------- tables
def test_load_csv_and_numpy(tmp_path):
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("a,b,label\n1.0,2.0,0\n3.5,4.0,1\n5.0,6.0,1\n")
    ds = D.load_csv(csv_path, target="label")
    x, y = ds.tensors
    assert x.shape == (3, 2) and x.dtype == np.float32 and y.dtype == np.int64 and y.tolist() == [0, 1, 1]
    assert ds.feature_names == ["a", "b"] and ds.target_name == "label"
    reg = D.load_csv(csv_path, target=0)
    assert reg.tensors[1].dtype == np.float32 and reg.tensors[1].tolist() == [1.0, 3.5, 5.0]
    nohead = tmp_path / "n.csv"
    nohead.write_text("1;2;3\n4;5;6\n")
    assert D.load_csv(nohead, delimiter=";").tensors[0].tolist() == [[1, 2], [4, 5]]
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3,\n")
    with pytest.raises(ValueError, match="line 3, column 2"):
        D.load_csv(bad)
    with pytest.raises(KeyError, match="no column named 'c'"):
        D.load_csv(csv_path, target="c")
    with pytest.raises(FileNotFoundError):
        D.load_csv(tmp_path / "missing.csv")
    np.savez(tmp_path / "d.npz", x=np.ones((4, 3)), y=np.arange(4))
    z = D.load_numpy(tmp_path / "d.npz")
    assert z.tensors[0].dtype == np.float64 and z.tensors[1].dtype == np.int64
    with pytest.raises(KeyError, match="holds"):
        D.load_numpy(tmp_path / "d.npz", x_key="inputs")
    np.save(tmp_path / "a.npy", np.array([[1, 2, 0], [3, 4, 1]]))
    a = D.load_numpy(tmp_path / "a.npy", target=-1)
    assert a.tensors[0].dtype == np.float32 and a.tensors[1].tolist() == [0, 1]


def test_load_tabular():
    train, test = D.load_tabular("iris", seed=0)
    assert len(train) == 120 and len(test) == 30
    assert np.all(np.bincount(test.tensors[1].numpy()) == 10)
    np.testing.assert_allclose(train.tensors[0].numpy().mean(0), 0, atol=1e-5)
    dtrain, _ = D.load_tabular("diabetes")
    assert dtrain.tensors[1].dtype == np.float32 and dtrain.tensors[1].shape[1:] == (1,)
    with pytest.raises(ValueError, match="unknown table"):
        D.load_tabular("titanic")


# ----------------------------------------------------------------------------- time series
def test_bundled_series():
    for name, length in (("sp500", 391), ("goog", 1047)):
        s = D.load_series(name)
        assert s.shape == (length,) and s.dtype == np.float64 and np.all(np.isfinite(s)) and np.all(s > 0)
    with pytest.raises(ValueError, match="unknown series"):
        D.load_series("nope")


def test_sunspots_from_statsmodels_files(tmp_path, monkeypatch):
    if importlib.util.find_spec("statsmodels") is None:
        with pytest.raises(ModuleNotFoundError, match="install statsmodels"):
            D.load_series("sunspots")
    fake = tmp_path / "sunspots.csv"
    fake.write_text('"YEAR","SUNACTIVITY"\n1700,5\n1701,11\n1702,16\n')
    monkeypatch.setattr(timeseries, "_statsmodels_file", lambda rel: fake)
    np.testing.assert_array_equal(D.load_series("sunspots"), [5.0, 11.0, 16.0])


def test_windows_and_forecasting_splits():
    s = np.arange(20, dtype=np.float64)
    x, y = D.sliding_windows(s, window=4, horizon=2, stride=3)
    assert x.shape == (5, 4, 1) and y.shape == (5, 2)
    for k in range(5):
        np.testing.assert_array_equal(x[k, :, 0], s[3 * k:3 * k + 4])
        np.testing.assert_array_equal(y[k], s[3 * k + 4:3 * k + 6])
    multi = np.stack([s, -s], axis=1)
    xm, ym = D.sliding_windows(multi, 3)
    assert xm.shape == (17, 3, 2) and ym.shape == (17, 1, 2)
    with pytest.raises(ValueError, match="too short"):
        D.sliding_windows(s[:3], window=3)

    series = D.load_series("sp500")
    sp = D.load_forecasting("sp500", window=12, horizon=3, split=(0.6, 0.2, 0.2))
    n_train = int(round(0.6 * len(series)))
    assert sp.mean.shape == (1,)
    np.testing.assert_allclose(sp.mean[0], series[:n_train].mean())  # statistics from the training part only
    np.testing.assert_allclose(sp.std[0], series[:n_train].std())
    xt, yt = sp.train.tensors
    assert xt.shape[1:] == (12, 1) and yt.shape[1:] == (3,) and xt.dtype == np.float32
    np.testing.assert_allclose(sp.denormalize(xt.numpy()[0, :, 0]), series[:12], rtol=1e-6)
    xv, yv = sp.val.tensors
    np.testing.assert_allclose(sp.denormalize(xv.numpy()[0, :, 0]), series[n_train:n_train + 12], rtol=1e-6)
    last_train_target = sp.denormalize(yt.numpy()[-1])
    assert np.all(np.isin(np.round(last_train_target, 3), np.round(series[:n_train], 3)))  # never crosses
    with pytest.raises(ValueError, match="fewer than window"):
        D.forecasting_splits(np.arange(30.0), window=10, horizon=1)


# ----------------------------------------------------------------------------- synthetic
def test_synthetic_tasks():
    xor = D.make_xor(200, noise=0.1, seed=0)
    x, y = (t.numpy() for t in xor.tensors)
    assert x.shape == (200, 2) and y.dtype == np.int64 and np.bincount(y).tolist() == [100, 100]
    np.testing.assert_array_equal(y, (np.sign(x[:, 0]) != np.sign(x[:, 1])).astype(np.int64))
    np.testing.assert_array_equal(D.make_xor(200, noise=0.1, seed=0).tensors[0].numpy(), x)
    assert not np.array_equal(D.make_xor(50, seed=0).tensors[0].numpy(), D.make_xor(50, seed=1).tensors[0].numpy())

    sp = D.make_spirals(301, seed=0)
    assert sp.tensors[0].shape == (301, 2) and np.ptp(np.bincount(sp.tensors[1].numpy())) <= 1

    gm = D.make_gaussian_mixture(300, centers=np.array([[0.0, 0.0], [10.0, 10.0], [-10.0, 10.0]]), std=0.5)
    gx, gy = (t.numpy() for t in gm.tensors)
    assert np.bincount(gy).tolist() == [100, 100, 100]
    np.testing.assert_array_equal(np.argmin(((gx[:, None] - gm.centers[None]) ** 2).sum(-1), 1), gy)
    assert D.make_gaussian_mixture(30, centers=4, dim=5).tensors[0].shape == (30, 5)

    add = D.make_adding_problem(64, seq_len=20, seed=0)
    ax, ay = (t.numpy() for t in add.tensors)
    assert ax.shape == (64, 20, 2) and ay.shape == (64, 1) and ay.dtype == np.float32
    assert np.all(ax[:, :, 1].sum(1) == 2) and np.all(ax[:, :10, 1].sum(1) == 1)
    np.testing.assert_allclose(ay[:, 0], (ax[:, :, 0] * ax[:, :, 1]).sum(1), rtol=1e-6)

    cp = D.make_copy_task(16, seq_len=5, delay=7, n_symbols=4, seed=0)
    cx, cy = (t.numpy() for t in cp.tensors)
    assert cx.shape == cy.shape == (16, 17) and cx.dtype == np.int64
    np.testing.assert_array_equal(cy[:, 12:], cx[:, :5])
    assert np.all(cy[:, :12] == 0) and np.all(cx[:, 11] == 5) and np.all(cx[:, 5:11] == 0) and np.all(cx[:, 12:] == 0)
    oh = D.make_copy_task(4, seq_len=5, delay=7, n_symbols=4, one_hot=True).tensors[0].numpy()
    assert oh.shape == (4, 17, 6) and np.all(oh.sum(-1) == 1)

    sw = D.make_sine_waves(8, seq_len=30, noise=0.0, seed=0)
    sx, sy = (t.numpy() for t in sw.tensors)
    assert sx.shape == sy.shape == (8, 30, 1)
    np.testing.assert_allclose(sx[:, 1:], sy[:, :-1], atol=1e-6)  # target = next step
    noisy = D.make_sine_waves(8, seq_len=30, noise=0.3, seed=0).tensors[0].numpy()
    assert 0.2 < np.std(noisy - sx) < 0.4
    with pytest.raises(ValueError, match="seq_len"):
        D.make_adding_problem(4, seq_len=1)
    with pytest.raises(TypeError, match="seed"):
        D.make_xor(4, seed=1.5)
