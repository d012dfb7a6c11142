"""The CUDA path against the NumPy path, for what the op-level cuda cases do not reach: whole layers (forward,
input and parameter gradients, running statistics), the optimizers the optim tests leave out, a Trainer run,
device moves of modules and tensors, DLPack exchange, dtype behaviour, and the random layers (statistically:
CuPy draws other numbers than NumPy for the same seed).

Each test is parametrized over ``devices``: the "cuda" case runs where CuPy sees a GPU (scripts/gpu_check.sh
selects it with ``-k cuda``); the "cpu" case runs the same code here, NumPy against NumPy, so the test itself
is known to work before a GPU ever sees it.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import devices

import deepgrad as dg
from deepgrad import nn, optim
from deepgrad.data import DataLoader, TensorDataset
from deepgrad.train import Trainer

RTOL, ATOL = 1e-4, 1e-5  # float32 on two backends (cuBLAS/cuDNN-free CuPy kernels reorder sums)


def host(x) -> np.ndarray:
    """A tensor's (or array's) values as a NumPy array, wherever they live."""
    a = x.array if isinstance(x, dg.Tensor) else x
    return a.get() if hasattr(a, "get") else np.asarray(a)


def _on(device: str, *tensors):
    for t in tensors:
        assert t.device.type == dg.Device(device).type, f"{t.device} is not {device}"


LAYERS = {
    "linear": (lambda: nn.Linear(6, 5), (4, 6)),
    "conv2d": (lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1), (2, 3, 9, 9)),
    "conv_transpose2d": (lambda: nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1), (2, 3, 5, 5)),
    "batchnorm2d": (lambda: nn.BatchNorm2d(3), (4, 3, 5, 5)),
    "layernorm": (lambda: nn.LayerNorm(6), (3, 4, 6)),
    "groupnorm": (lambda: nn.GroupNorm(2, 4), (3, 4, 5)),
    "maxpool_relu": (lambda: nn.Sequential(nn.MaxPool2d(2), nn.ReLU()), (2, 3, 6, 6)),
    "lstm": (lambda: nn.LSTM(5, 7, num_layers=2, batch_first=True), (3, 6, 5)),
    "lstm_bidirectional": (lambda: nn.LSTM(5, 4, bidirectional=True), (6, 3, 5)),
    "gru": (lambda: nn.GRU(5, 7, num_layers=2), (6, 3, 5)),
    "rnn_relu": (lambda: nn.RNN(5, 7, nonlinearity="relu", bidirectional=True, batch_first=True), (3, 6, 5)),
    "lstm_cell": (lambda: nn.LSTMCell(5, 7), (3, 5)),
    "gru_cell": (lambda: nn.GRUCell(5, 7), (3, 5)),
    "encoder_layer": (lambda: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True), (2, 5, 8)),
}


def _first(out):
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_on_device_matches_numpy(name, device):
    make, shape = LAYERS[name]
    dg.manual_seed(0)
    ref = make()
    dg.manual_seed(0)
    mod = make().to(device)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    up = np.random.default_rng(2)
    xs = [dg.tensor(x, requires_grad=True), dg.tensor(x, device=device, requires_grad=True)]
    outs = [_first(ref(xs[0])), _first(mod(xs[1]))]
    _on(device, outs[1], *mod.parameters())
    g = up.standard_normal(outs[0].shape).astype(np.float32)
    (outs[0] * dg.tensor(g)).sum().backward()
    (outs[1] * dg.tensor(g, device=device)).sum().backward()
    np.testing.assert_allclose(host(outs[1]), host(outs[0]), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(host(xs[1].grad), host(xs[0].grad), rtol=RTOL, atol=ATOL)
    _on(device, xs[1].grad)
    for (key, p), q in zip(ref.named_parameters(), mod.parameters()):
        _on(device, q.grad)
        np.testing.assert_allclose(host(q.grad), host(p.grad), rtol=RTOL, atol=ATOL, err_msg=key)
    for (key, b), c in zip(ref.named_buffers(), mod.buffers()):  # BatchNorm's running statistics
        _on(device, c)
        np.testing.assert_allclose(host(c), host(b), rtol=RTOL, atol=ATOL, err_msg=key)


@pytest.mark.parametrize("device", devices)
def test_module_moves_and_state_dicts_cross_devices(device):
    dg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    model(dg.randn(5, 3)).sum().backward()  # grads exist before the move: they travel too
    state = {k: host(v).copy() for k, v in model.state_dict().items()}
    model.to(device)
    for t in [*model.parameters(), *model.buffers(), *(p.grad for p in model.parameters())]:
        _on(device, t)
    moved = model.state_dict()
    assert list(moved) == list(state)
    for k, v in moved.items():
        _on(device, v)
        np.testing.assert_array_equal(host(v), state[k])
    back = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    back.load_state_dict(moved)  # a device state dict loads into a CPU model
    for k, v in back.state_dict().items():
        _on("cpu", v)
        np.testing.assert_array_equal(host(v), state[k])
    model.cpu().double()
    assert all(p.device.type == "cpu" and p.dtype == dg.float64 for p in model.parameters())
    assert model[1].num_batches_tracked.dtype == dg.int64  # casts touch floating tensors only


@pytest.mark.parametrize("device", devices)
def test_tensor_moves_keep_values_dtype_and_the_graph(device):
    x = dg.tensor([[1.5, -2.0], [3.25, 0.5]], requires_grad=True)
    y = x.to(device, dg.float64)
    assert y.dtype == dg.float64 and y.device.type == dg.Device(device).type and y.requires_grad
    z = (y * y).sum().to("cpu")
    z.backward()
    np.testing.assert_array_equal(host(x.grad), 2 * host(x))
    assert x.grad.dtype == dg.float32 and x.grad.device.type == "cpu"
    other = dg.zeros(1, dtype=dg.float16, device=device)
    w = dg.arange(4).to(other)  # .to(tensor): that tensor's device and dtype
    assert w.dtype == dg.float16 and w.device == other.device
    assert x.to(device).to(device) is not None and host(x.to(device).cpu()).tolist() == host(x).tolist()
    if device != "cpu":
        with pytest.raises(TypeError, match="cuda"):
            dg.ones(2, device=device).numpy()
        assert dg.ones(2, device=device).tolist() == [1.0, 1.0]
        assert dg.tensor(3.5, device=device).item() == 3.5


@pytest.mark.parametrize("device", devices)
def test_factories_allocate_on_the_device(device):
    made = [dg.zeros(2, 3, device=device), dg.ones(2, device=device), dg.full((2,), 7.0, device=device),
            dg.eye(3, device=device), dg.arange(5, device=device), dg.linspace(0, 1, 4, device=device),
            dg.empty(3, device=device), dg.rand(3, device=device), dg.randn(3, device=device),
            dg.randint(0, 5, (4,), device=device), dg.randperm(5, device=device),
            dg.zeros_like(dg.ones(2, device=device)), dg.rand(3, dtype=dg.float16, device=device),
            dg.randn(3, dtype=dg.float64, device=device), dg.tensor([1, 2], device=device)]
    _on(device, *made)
    assert [t.dtype for t in made] == [dg.float32] * 4 + [dg.int64, dg.float32, dg.float32, dg.float32,
                                                          dg.float32, dg.int64, dg.int64, dg.float32,
                                                          dg.float16, dg.float64, dg.int64]
    assert sorted(host(made[10]).tolist()) == list(range(5))


DTYPE_CASES = {
    "int_plus_float": lambda a, b: a.long() + b,
    "int_true_divide": lambda a, b: a.long() / 2,
    "int_floor_divide": lambda a, b: a.long() // 2,
    "bool_sum": lambda a, b: (a > 0).sum(),
    "int_mean_float": lambda a, b: a.int().float().mean(),
    "half_matmul": lambda a, b: a.half() @ b.half().T,
    "half_plus_double_scalar": lambda a, b: a.half() + 1.5,
    "float_plus_double": lambda a, b: a + b.double(),
    "int_times_python_float": lambda a, b: a.int() * 2.5,
    "compare_mixed": lambda a, b: a.int() < b,
    "argmax": lambda a, b: a.argmax(dim=1),
    "where_mixed": lambda a, b: dg.where(a > 0, a.double(), b),
}


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("case", sorted(DTYPE_CASES))
def test_dtype_behaviour_matches_the_cpu(case, device):
    rng = np.random.default_rng(3)
    a, b = (rng.standard_normal((3, 4)).astype(np.float32) * 3 for _ in range(2))
    fn = DTYPE_CASES[case]
    want = fn(dg.tensor(a), dg.tensor(b))
    got = fn(dg.tensor(a, device=device), dg.tensor(b, device=device))
    _on(device, got)
    assert got.dtype == want.dtype, f"{case}: {got.dtype} on {device}, {want.dtype} on the CPU"
    tol = 1e-2 if want.dtype == dg.float16 else 1e-6
    np.testing.assert_allclose(host(got).astype(np.float64), host(want).astype(np.float64), rtol=tol, atol=tol)


@pytest.mark.parametrize("device", devices)
def test_dlpack_exchange_shares_memory(device):
    torch = pytest.importorskip("torch")
    t = dg.arange(6, dtype=dg.float32, device=device)
    back = dg.from_dlpack(t)  # deepgrad to deepgrad, zero copy
    back.array[0] = 42.0
    assert host(t)[0] == 42.0 and back.device == t.device
    if device == "cpu" or torch.cuda.is_available():
        tt = torch.from_dlpack(t)  # deepgrad -> torch, on the same device
        assert tt.device.type == dg.Device(device).type
        tt[1] = -1.0
        assert host(t)[1] == -1.0
        d = dg.from_dlpack(tt)  # torch -> deepgrad
        assert d.device.type == dg.Device(device).type and host(d).tolist() == host(t).tolist()


@pytest.mark.parametrize("device", devices)
def test_random_layers_and_draws_statistically(device):
    dg.manual_seed(0)
    n = 200_000
    u, z = dg.rand(n, device=device), dg.randn(n, device=device)
    assert abs(host(u).mean() - 0.5) < 0.01 and abs(host(u).var() - 1 / 12) < 0.005
    assert 0.0 <= host(u).min() and host(u).max() < 1.0
    assert abs(host(z).mean()) < 0.01 and abs(host(z).std() - 1.0) < 0.01
    k = host(dg.randint(0, 4, (n,), device=device))
    assert set(np.unique(k).tolist()) == {0, 1, 2, 3} and abs(np.bincount(k).min() / n - 0.25) < 0.01
    b = host(dg.bernoulli(dg.full((n,), 0.3, device=device)))
    assert abs(b.mean() - 0.3) < 0.01
    b2 = host(dg.bernoulli(dg.zeros(n, device=device), p=0.7))
    assert abs(b2.mean() - 0.7) < 0.01
    # Dropout: about p of the units zeroed, the rest scaled by 1/(1-p); identity in eval mode
    drop = nn.Dropout(0.25).to(device)
    out = host(drop(dg.ones(n, device=device)))
    assert abs((out == 0).mean() - 0.25) < 0.01 and np.allclose(out[out != 0], 1 / 0.75)
    drop.eval()
    assert (host(drop(dg.ones(8, device=device))) == 1).all()
    # an initialiser on a device parameter: Kaiming-uniform bound sqrt(6 / fan_in) for ReLU
    w = nn.Linear(400, 300).to(device).weight
    nn.init.kaiming_uniform_(w, nonlinearity="relu")
    _on(device, w)
    bound = np.sqrt(6 / 400)
    assert host(w).max() <= bound and host(w).min() >= -bound and abs(host(w).std() - bound / np.sqrt(3)) < 0.01
    # the same seed gives the same draws again, on this device
    dg.manual_seed(5)
    first = host(dg.randn(4, device=device))
    dg.manual_seed(5)
    assert np.array_equal(host(dg.randn(4, device=device)), first)


OPTIMIZERS = [("Adamax", dict(lr=0.05)), ("NAdam", dict(lr=0.05)), ("RAdam", dict(lr=0.05)),
              ("Adadelta", dict(lr=1.0)), ("Rprop", dict(lr=0.01)),
              ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.01, dampening=0.1)),
              ("Adam", dict(lr=0.05, weight_decay=0.1, maximize=True))]


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("name,kwargs", OPTIMIZERS, ids=[o[0] + str(i) for i, o in enumerate(OPTIMIZERS)])
def test_more_optimizers_on_device_match_numpy(name, kwargs, device):
    rng = np.random.default_rng(4)
    init = [rng.standard_normal(s).astype(np.float32) for s in ((3, 4), (4,))]
    params = {dev: [dg.tensor(a, device=dev, requires_grad=True) for a in init] for dev in ("cpu", device)}
    opts = {dev: getattr(optim, name)(params[dev], **kwargs) for dev in params}
    for _step in range(6):
        grads = [rng.standard_normal(a.shape).astype(np.float32) for a in init]
        for dev in params:
            opts[dev].zero_grad()
            for p, g in zip(params[dev], grads):
                p.grad = dg.tensor(g, device=dev)
            opts[dev].step()
    for a, b in zip(params["cpu"], params[device]):
        _on(device, b)
        np.testing.assert_allclose(host(b), host(a), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("device", devices)
def test_trainer_on_device_follows_the_numpy_run(device):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 64)
    x = (rng.normal(size=(64, 4)) + 3.0 * np.eye(3, 4)[y]).astype(np.float32)
    histories, weights = [], []
    for dev in ("cpu", device):
        dg.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
        loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)  # order drawn on the CPU generator
        trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.05),
                          metrics=["accuracy"], device=dev, progress=False)
        histories.append(trainer.fit(loader, epochs=2))
        _on(dev, *model.parameters())
        weights.append([host(v) for v in model.state_dict().values()])
    np.testing.assert_allclose(histories[1]["loss"], histories[0]["loss"], rtol=1e-4)
    # float32 sums in another order may flip one near-tied prediction per epoch, not more
    np.testing.assert_allclose(histories[1]["accuracy"], histories[0]["accuracy"], atol=1 / 64 + 1e-9)
    for a, b in zip(weights[0], weights[1]):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-4)


LOSSES = {  # the losses tests/test_ops_loss.py's device cases leave out, on two float inputs
    "mse": lambda a, b: nn.functional.mse_loss(a, b),
    "l1_sum": lambda a, b: nn.functional.l1_loss(a, b, reduction="sum"),
    "huber": lambda a, b: nn.functional.huber_loss(a, b, delta=0.7),
    "soft_margin": lambda a, b: nn.functional.soft_margin_loss(a, b.sign()),
    "multilabel_soft_margin": lambda a, b: nn.functional.multilabel_soft_margin_loss(a, (b > 0).float()),
    "poisson_nll": lambda a, b: nn.functional.poisson_nll_loss(a, b.abs()),
    "hinge_embedding": lambda a, b: nn.functional.hinge_embedding_loss(a, b.sign(), margin=0.5),
    "margin_ranking": lambda a, b: nn.functional.margin_ranking_loss(a[:, 0], b[:, 0], a[:, 1].sign(), 0.1),
    "cosine_embedding": lambda a, b: nn.functional.cosine_embedding_loss(a, b, b[:, 0].sign()),
    "triplet_margin": lambda a, b: nn.functional.triplet_margin_loss(a, b, a.flip(0)),
}


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_more_losses_on_device_match_numpy(name, device):
    fn = LOSSES[name]
    rng = np.random.default_rng(5)
    a, b = (rng.standard_normal((4, 5)).astype(np.float32) for _ in range(2))
    results = []
    for dev in ("cpu", device):
        xa, xb = dg.tensor(a, device=dev, requires_grad=True), dg.tensor(b, device=dev, requires_grad=True)
        out = fn(xa, xb)
        _on(dev, out)
        out.sum().backward()
        results.append([host(out), host(xa.grad), host(xb.grad) if xb.grad is not None else None])
    for got, want in zip(results[1], results[0]):
        if want is None:
            assert got is None or not got.any()
            continue
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
