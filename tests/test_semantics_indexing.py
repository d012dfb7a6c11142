"""Indexing follows torch, not NumPy, where they differ: getitem and setitem, forward and backward.

torch applies ints (and 0-d integer tensors) as selections before it indexes with tensors, so
``x[1, :, idx]`` on a (2, 3, 4) tensor is (3, len(idx)) where NumPy gives (len(idx), 3). Random index
expressions over every kind of item are compared with torch 2.13: values, shapes, gradients (with
repeated indices accumulating), and the exception type where torch refuses.
"""

from __future__ import annotations

import numpy as np
import pytest

import deepgrad as dg

torch = pytest.importorskip("torch")

SHAPE = (3, 4, 5)


class _TensorIndex:
    """An index tensor to build in each library (a plain tuple would read as a multi-dim index)."""

    def __init__(self, value):
        self.value = value

    def __repr__(self) -> str:
        return f"tensor({self.value.tolist()!r})"


def _item(rng, size):
    """One random index item for a dim of ``size`` (``None`` items are added separately)."""
    kind = rng.integers(0, 7)
    if kind == 0:
        return int(rng.integers(-size, size))
    if kind == 1:
        lo, hi = sorted(rng.integers(-size - 1, size + 2, size=2))
        return slice(int(lo), int(hi), int(rng.integers(1, 3)))
    if kind == 2:
        return slice(None)
    if kind == 3:
        return [int(v) for v in rng.integers(-size, size, size=rng.integers(1, 4))]  # may repeat
    if kind == 4:
        return _TensorIndex(rng.integers(0, size, size=tuple(rng.integers(1, 3, size=rng.integers(1, 3)))))
    if kind == 5:
        return _TensorIndex(rng.random(size) > 0.4)
    return _TensorIndex(np.int64(rng.integers(0, size)))  # 0-d: torch selects with it like an int


def _random_index(rng):
    items, dims = [], list(SHAPE)
    n = int(rng.integers(1, 4))
    for d in range(n):
        items.append(_item(rng, dims[d]))
        if rng.random() < 0.15:
            items.append(None)
    if rng.random() < 0.2:
        items.insert(int(rng.integers(0, len(items) + 1)), Ellipsis)
    return tuple(items) if len(items) > 1 or rng.random() < 0.5 else items[0]


def _convert(index, lib):
    def one(it):
        return lib.tensor(it.value) if isinstance(it, _TensorIndex) else it

    return tuple(one(i) for i in index) if isinstance(index, tuple) else one(index)


def _outcome(fn, *args):
    try:
        return fn(*args), None
    except Exception as e:  # noqa: BLE001 - the exception type is what is compared
        return None, e


def _same_error(te, de, what):
    assert te is not None and de is not None, f"{what}: torch raised {te!r}, deepgrad raised {de!r}"
    kinds = {IndexError, ValueError, RuntimeError, TypeError}
    t = next(k for k in kinds if isinstance(te, k))
    assert isinstance(de, t), f"{what}: torch raised {type(te).__name__} ({te}), deepgrad {type(de).__name__} ({de})"


@pytest.mark.parametrize("seed", range(6))
def test_random_getitem_matches_torch_values_shapes_and_gradients(seed):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal(SHAPE).astype(np.float32)
    for _ in range(60):
        index = _random_index(rng)
        xt = torch.tensor(base, requires_grad=True)
        xd = dg.tensor(base, requires_grad=True)
        yt, te = _outcome(xt.__getitem__, _convert(index, torch))
        yd, de = _outcome(xd.__getitem__, _convert(index, dg))
        if te is not None or de is not None:
            _same_error(te, de, f"x[{index!r}]")
            continue
        assert tuple(yd.shape) == tuple(yt.shape), f"x[{index!r}]: shape {tuple(yd.shape)} vs torch {tuple(yt.shape)}"
        np.testing.assert_array_equal(yd.detach().numpy(), yt.detach().numpy(), err_msg=repr(index))
        g = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
        yt.backward(torch.tensor(g))
        yd.backward(dg.tensor(g))
        np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-6, atol=1e-6, err_msg=repr(index))


def _assign(x, v, index):
    y = x * 2.0
    y[index] = v
    return y


@pytest.mark.parametrize("seed", range(6))
def test_random_setitem_matches_torch_values_and_gradients(seed):
    rng = np.random.default_rng(100 + seed)
    base = rng.standard_normal(SHAPE).astype(np.float32)
    for _ in range(50):
        index = _random_index(rng)
        probe, err = _outcome(torch.zeros(SHAPE).__getitem__, _convert(index, torch))
        target = tuple(probe.shape) if err is None else (2,)
        vshape = target[int(rng.integers(0, len(target) + 1)):]  # a suffix of the target's shape broadcasts
        value = rng.standard_normal(vshape).astype(np.float32)
        xt = torch.tensor(base, requires_grad=True)
        xd = dg.tensor(base, requires_grad=True)
        vt = torch.tensor(value, requires_grad=True)
        vd = dg.tensor(value, requires_grad=True)

        yt, te = _outcome(_assign, xt, vt, _convert(index, torch))
        yd, de = _outcome(_assign, xd, vd, _convert(index, dg))
        if te is not None or de is not None:
            _same_error(te, de, f"y[{index!r}] = value{vshape}")
            continue
        np.testing.assert_array_equal(yd.detach().numpy(), yt.detach().numpy(), err_msg=repr(index))
        g = rng.standard_normal(SHAPE).astype(np.float32)
        yt.backward(torch.tensor(g))
        yd.backward(dg.tensor(g))
        np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-6, atol=1e-6, err_msg=repr(index))
        if vt.grad is not None or vd.grad is not None:
            np.testing.assert_allclose(vd.grad.numpy(), vt.grad.numpy(), rtol=1e-5, atol=1e-5, err_msg=repr(index))


def test_int_then_tensor_index_follows_torch_not_numpy():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    idx = [0, 2]
    dgv, tv = dg.tensor(x)[1, :, idx], torch.tensor(x)[1, :, idx]
    assert tuple(dgv.shape) == tuple(tv.shape) == (3, 2)
    assert x[1, :, idx].shape == (2, 3)  # NumPy's answer, which deepgrad must not give
    np.testing.assert_array_equal(dgv.numpy(), tv.numpy())


def test_basic_index_is_a_view_and_advanced_a_copy():
    x = dg.zeros(3, 4)
    v = x[1]
    v.fill_(7.0)
    assert float(x[1, 0]) == 7.0 and x._version == v._version == 1
    c = x[[1]]
    c.fill_(-1.0)
    assert float(x[1, 0]) == 7.0
    s = x[0, 0]  # an all-int index is a 0-d view, not a copy
    s.fill_(3.0)
    assert float(x[0, 0]) == 3.0


def test_negative_step_and_float_index_are_refused_like_torch():
    x, t = dg.zeros(5), torch.zeros(5)
    for index in (slice(None, None, -1), 1.5):
        te = _outcome(t.__getitem__, index)[1]
        de = _outcome(x.__getitem__, index)[1]
        _same_error(te, de, repr(index))
    with pytest.raises(IndexError):
        x[dg.tensor([0.5])]
