"""The Tensor API and the creation functions against torch: attributes, conversions (item,
numpy, __array__, to), repr, creation and random seeding, from_numpy and DLPack exchange."""

import numpy as np
import pytest
import torch
from core_parity import assert_close, devices, dtype_name

import deepgrad as dg


# ----------------------------------------------------------------------------- attributes
def test_attributes():
    x = dg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    assert isinstance(x.array, np.ndarray) and x.grad is None and x.requires_grad and x.is_leaf
    assert x.dtype == dg.float32 == np.float32 and x.device == dg.device("cpu") and x.device == "cpu"
    assert x.shape == (2, 3) and x.ndim == 2 and x.dim() == 2 and x.size() == (2, 3) and x.size(-1) == 3
    assert x.numel() == 6 and dg.numel(x) == 6 and len(x) == 2 and x.element_size() == 4
    assert x.is_floating_point() and not x.is_cuda and dg.is_tensor(x) and not dg.is_tensor(x.array)
    assert [row.tolist() for row in x.detach()] == x.tolist()
    assert x.T.shape == (3, 2) and x.mT.shape == (3, 2)
    y = x * 2
    assert not y.is_leaf and y.grad_fn is not None and y.requires_grad
    with pytest.raises(TypeError):
        len(dg.tensor(1.0))


def test_item_and_python_conversions():
    assert dg.tensor(2.5).item() == 2.5 and isinstance(dg.tensor(2.5).item(), float)
    assert dg.tensor([3]).item() == 3 and isinstance(dg.tensor([3]).item(), int)
    assert float(dg.tensor(1.5)) == 1.5 and int(dg.tensor(7)) == 7 and [10, 20, 30][dg.tensor(1)] == 20
    assert bool(dg.tensor([1.0])) and not bool(dg.tensor(0))
    with pytest.raises(ValueError, match="item"):
        dg.ones(2).item()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(dg.ones(2))
    with pytest.raises(TypeError):
        [1, 2][dg.tensor(1.0)]


def test_numpy_shares_memory_and_array_protocol():
    x = dg.tensor([1.0, 2.0, 3.0])
    n = x.numpy()
    n[0] = 10.0
    assert x.tolist() == [10.0, 2.0, 3.0]
    assert np.shares_memory(np.asarray(x), x.array)
    copy = np.array(x)  # np.array copies by default, as for any array-like
    copy[1] = -1.0
    assert x.tolist()[1] == 2.0
    assert np.asarray(x, dtype=np.float64).dtype == np.float64
    with pytest.raises(RuntimeError, match="detach"):
        dg.ones(2, requires_grad=True).numpy()


@pytest.mark.parametrize("device", devices)
def test_to_dtype_and_device(device):
    x = dg.tensor([1.5, -2.5], device=device)
    assert x.to(device) is x and x.to(dg.float32) is x
    for target, torch_dtype in [(dg.float64, torch.float64), (dg.int64, torch.int64), (dg.float16, torch.float16),
                                (dg.bool, torch.bool), (dg.int32, torch.int32)]:
        out, ref = x.to(target), torch.tensor([1.5, -2.5]).to(torch_dtype)
        assert dtype_name(out) == dtype_name(ref) and out.device == x.device
        assert_close(out, ref)
    assert x.double().dtype == dg.float64 and x.long().dtype == dg.int64 and x.int().dtype == dg.int32
    assert x.half().dtype == dg.float16 and x.bool().dtype == dg.bool and x.type(dg.float64).dtype == dg.float64
    assert x.to("cpu", dg.float64).device == "cpu" and x.to(dtype=dg.float64).dtype == dg.float64
    assert x.to(dg.zeros(1, dtype=dg.float64)).dtype == dg.float64 and x.cpu().device == "cpu"


@pytest.mark.skipif(not dg.cuda_is_available(), reason="no CUDA device (CuPy)")
def test_cuda_round_trip_keeps_gradients():
    x = dg.tensor([1.0, 2.0], requires_grad=True)
    y = x.to("cuda") * 3
    assert y.device.type == "cuda"
    y.cpu().sum().backward()
    assert x.grad.tolist() == [3.0, 3.0] and x.grad.device == "cpu"


REPR_CASES = [
    [1.0, 2.0, 3.0], [1.5, -2.25], [[1.0, 2.5], [3.0, 4.0]], 3.0, [1, 2, 3], [True, False], [1.123456, 1e-3],
    [0.0, 0.0], [1e9, 1.0], [], [-0.5, 100.0],
]


@pytest.mark.parametrize("value", REPR_CASES, ids=str)
def test_repr_looks_like_torch(value):
    assert repr(dg.tensor(value)) == repr(torch.tensor(value)).replace("torch.", "deepgrad.")


def test_repr_of_dtypes_shapes_and_grad():
    for dg_t, th_t in [(dg.tensor([1.5, 2.0], dtype=dg.float64), torch.tensor([1.5, 2.0], dtype=torch.float64)),
                       (dg.zeros(2, 0), torch.zeros(2, 0)), (dg.tensor([1, 2], dtype=dg.int32),
                                                             torch.tensor([1, 2], dtype=torch.int32)),
                       (dg.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)),
                       (dg.arange(2000), torch.arange(2000))]:
        assert repr(dg_t) == repr(th_t).replace("torch.", "deepgrad.")
    assert repr(dg.ones(2, requires_grad=True) * dg.ones(2)) == "tensor([1., 1.], grad_fn=<MulBackward>)"
    assert str(dg.ones(1)) == repr(dg.ones(1))


def test_device_objects():
    assert repr(dg.device("cuda:1")) == "device(type='cuda', index=1)" and str(dg.device("cuda", 0)) == "cuda:0"
    assert dg.device("cpu") == "cpu" and dg.Device(dg.device("cpu")) == dg.device("cpu")
    with pytest.raises(ValueError, match="device"):
        dg.device("tpu")


# ----------------------------------------------------------------------------- creation
def same(dg_t, th_t):
    assert dtype_name(dg_t) == dtype_name(th_t), f"{dg_t.dtype} != {th_t.dtype}"
    assert_close(dg_t, th_t)


@pytest.mark.parametrize(
    "data", [[1.0, 2.0], [1, 2], [True, False], 3.5, 7, [[1, 2.5]], np.array([1.0, 2.0]), np.array([1, 2], np.int32),
             np.float64(2.0), []],
    ids=str,
)
def test_tensor_infers_dtypes_like_torch(data):
    same(dg.tensor(data), torch.tensor(data))


def test_tensor_from_a_torch_tensor_keeps_dtype_and_copies():
    source = torch.tensor([1.0, 2.0], dtype=torch.float64)
    copy = dg.tensor(source)
    assert copy.dtype == dg.float64 and copy.tolist() == [1.0, 2.0]
    source[0] = 5.0
    assert copy.tolist()[0] == 1.0
    assert dg.tensor([dg.tensor(1.5), dg.tensor(2.5)]).tolist() == [1.5, 2.5]


def test_tensor_copies_and_as_tensor_from_numpy_share():
    a = np.array([1.0, 2.0], np.float32)
    t, shared, shared2 = dg.tensor(a), dg.as_tensor(a), dg.from_numpy(a)
    a[0] = 9.0
    assert t.tolist()[0] == 1.0 and shared.tolist()[0] == 9.0 and shared2.tolist()[0] == 9.0
    shared2.array[1] = -1.0
    assert a[1] == -1.0
    assert dg.tensor(t).array is not t.array and dg.as_tensor(t) is t
    assert dg.tensor(a, dtype=dg.float64, requires_grad=True).requires_grad
    with pytest.raises(TypeError, match="from_numpy"):
        dg.from_numpy([1.0])


@pytest.mark.parametrize(
    "dg_fn, torch_fn",
    [
        (lambda: dg.zeros(2, 3), lambda: torch.zeros(2, 3)),
        (lambda: dg.zeros((2, 3), dtype=dg.int64), lambda: torch.zeros((2, 3), dtype=torch.int64)),
        (lambda: dg.ones(4), lambda: torch.ones(4)),
        (lambda: dg.ones([2, 1], dtype=dg.float64), lambda: torch.ones([2, 1], dtype=torch.float64)),
        (lambda: dg.full((2, 2), 1.5), lambda: torch.full((2, 2), 1.5)),
        (lambda: dg.full((2,), 3), lambda: torch.full((2,), 3)),
        (lambda: dg.full((2,), True), lambda: torch.full((2,), True)),
        (lambda: dg.arange(5), lambda: torch.arange(5)),
        (lambda: dg.arange(1, 10, 3), lambda: torch.arange(1, 10, 3)),
        (lambda: dg.arange(0, 1, 0.1), lambda: torch.arange(0, 1, 0.1)),
        (lambda: dg.arange(5, 0, -1.5), lambda: torch.arange(5, 0, -1.5)),
        (lambda: dg.arange(3, dtype=dg.float32), lambda: torch.arange(3, dtype=torch.float32)),
        (lambda: dg.linspace(0, 1, 5), lambda: torch.linspace(0, 1, 5)),
        (lambda: dg.linspace(-2, 3, 7, dtype=dg.float64), lambda: torch.linspace(-2, 3, 7, dtype=torch.float64)),
        (lambda: dg.eye(3), lambda: torch.eye(3)),
        (lambda: dg.eye(2, 4), lambda: torch.eye(2, 4)),
        (lambda: dg.zeros_like(dg.ones(2, dtype=dg.int32)), lambda: torch.zeros_like(torch.ones(2, dtype=torch.int32))),
        (lambda: dg.ones_like(dg.zeros(2, 3)), lambda: torch.ones_like(torch.zeros(2, 3))),
        (lambda: dg.full_like(dg.zeros(2), 4.0), lambda: torch.full_like(torch.zeros(2), 4.0)),
        (lambda: dg.full_like(dg.zeros(2, dtype=dg.int64), 4), lambda: torch.full_like(torch.zeros(2).long(), 4)),
    ],
)
def test_deterministic_creation_matches_torch(dg_fn, torch_fn):
    same(dg_fn(), torch_fn())


def test_empty_and_requires_grad_arguments():
    e = dg.empty(2, 3)
    assert e.shape == (2, 3) and e.dtype == dg.float32
    assert dg.empty_like(dg.zeros(4, dtype=dg.float64)).dtype == dg.float64
    for make in (dg.zeros, dg.ones, dg.empty, dg.rand, dg.randn):
        t = make(2, requires_grad=True)
        assert t.requires_grad and t.is_leaf
    assert dg.zeros(0).shape == (0,) and dg.ones(()).shape == ()


def test_random_creation_shapes_ranges_and_dtypes():
    dg.manual_seed(0)
    r, n = dg.rand(1000), dg.randn(2, 500)
    assert r.dtype == dg.float32 and 0.0 <= r.min().item() and r.max().item() < 1.0
    assert abs(r.mean().item() - 0.5) < 0.05 and abs(n.mean().item()) < 0.1 and abs(n.std().item() - 1) < 0.1
    assert dg.randn(3, dtype=dg.float64).dtype == dg.float64 and dg.rand((2, 2)).shape == (2, 2)
    i = dg.randint(0, 5, (100,))
    assert i.dtype == dg.int64 and set(i.tolist()) == {0, 1, 2, 3, 4}
    assert dg.randint(3, (4, 2)).shape == (4, 2) and dg.randint(3, (50,)).max().item() <= 2
    assert dg.randint(-2, 2, (3,), dtype=dg.int32).dtype == dg.int32
    assert sorted(dg.randperm(6).tolist()) == list(range(6))
    like = dg.zeros(3, 2, dtype=dg.float64)
    assert dg.rand_like(like).shape == (3, 2) and dg.randn_like(like).dtype == dg.float64
    assert dg.randint_like(dg.zeros(4, dtype=dg.int64), 10).dtype == dg.int64


def test_manual_seed_makes_runs_reproducible():
    def draw():
        dg.manual_seed(1234)
        return dg.rand(5).tolist(), dg.randn(2, 2).tolist(), dg.randint(0, 100, (4,)).tolist(), dg.randperm(5).tolist()

    assert draw() == draw()
    dg.manual_seed(1)
    first = dg.rand(3).tolist()
    dg.manual_seed(2)
    assert dg.rand(3).tolist() != first
    state = dg.get_rng_state()
    a = dg.randn(4).tolist()
    dg.set_rng_state(state)
    assert dg.randn(4).tolist() == a
    x = dg.zeros(3)
    dg.manual_seed(5)
    x.uniform_(-1, 1)
    dg.manual_seed(5)
    y = dg.zeros(3).uniform_(-1, 1)
    assert x.tolist() == y.tolist() and all(-1 <= v < 1 for v in x.tolist())


def test_default_dtype_switch():
    dg.set_default_dtype(dg.float64)
    try:
        assert dg.tensor([1.0]).dtype == dg.float64 and dg.zeros(2).dtype == dg.float64
        assert dg.rand(2).dtype == dg.float64 and (dg.tensor([1, 2]) * 0.5).dtype == dg.float64
    finally:
        dg.set_default_dtype(dg.float32)
    assert dg.tensor([1.0]).dtype == dg.float32
    with pytest.raises(TypeError, match="floating"):
        dg.set_default_dtype(dg.int64)


# ----------------------------------------------------------------------------- DLPack
def test_dlpack_zero_copy_both_ways_with_torch():
    mine = dg.tensor([1.0, 2.0, 3.0])
    theirs = torch.from_dlpack(mine)
    theirs[0] = 100.0
    assert mine.tolist()[0] == 100.0
    mine.array[1] = -5.0
    assert theirs[1].item() == -5.0

    source = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    imported = dg.from_dlpack(source)
    assert imported.shape == (2, 3) and imported.dtype == dg.float32
    source[1, 2] = 42.0
    assert imported.tolist()[1][2] == 42.0
    imported.array[0, 0] = -1.0
    assert source[0, 0].item() == -1.0

    ints = dg.from_dlpack(torch.tensor([1, 2], dtype=torch.int64))
    assert ints.dtype == dg.int64 and ints.tolist() == [1, 2]
    assert dg.from_dlpack(np.arange(3.0)).tolist() == [0.0, 1.0, 2.0]
    roundtrip = dg.from_dlpack(torch.from_dlpack(dg.tensor([[1.0, 2.0]]).T))  # strided views travel too
    assert roundtrip.shape == (2, 1) and roundtrip.tolist() == [[1.0], [2.0]]
