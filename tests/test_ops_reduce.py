"""Reductions against torch: sum, mean, var/std, max/min (full and along a dim), amax/amin,
argmax/argmin, logsumexp, softmax / log_softmax (incl. large inputs) and gather."""

import numpy as np
import pytest
import torch
from core_parity import SETTINGS, check, devices, host, nonempty_shapes, randn, seeds, shapes
from hypothesis import given
from hypothesis import strategies as st

import deepgrad as dg
import deepgrad.functional as F


def small_ints(shape, seed):
    """Integer-valued floats: ties are frequent, which is where max/min gradients differ."""
    return np.random.default_rng(seed).integers(-2, 3, size=shape).astype(np.float32)


def draw_dims(data, ndim: int, allow_none=True, allow_tuple=True):
    """None, one dim (maybe negative) or a tuple of distinct dims of a tensor with ``ndim`` dims."""
    options = [st.integers(-ndim, ndim - 1)] if ndim else []
    if allow_none:
        options.append(st.none())
    if allow_tuple and ndim:
        options.append(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple))
    return data.draw(st.one_of(options))


REDUCTIONS = {
    "sum": lambda x, d, k: x.sum(dim=d, keepdim=k),
    "mean": lambda x, d, k: x.mean(dim=d, keepdim=k),
    "var": lambda x, d, k: x.var(dim=d, keepdim=k),
    "var_c0": lambda x, d, k: x.var(dim=d, keepdim=k, correction=0),
    "var_c2": lambda x, d, k: x.var(dim=d, keepdim=k, correction=2),
    "std": lambda x, d, k: x.std(dim=d, keepdim=k),
    "std_c0": lambda x, d, k: x.std(dim=d, keepdim=k, correction=0),
}


@pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning")  # empty / N <= correction
@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("name", list(REDUCTIONS))
@SETTINGS
@given(shape=shapes, seed=seeds, keepdim=st.booleans(), data=st.data())
def test_sum_mean_var_std_parity(name, device, shape, seed, keepdim, data):
    dim = draw_dims(data, len(shape))
    fn = REDUCTIONS[name]
    dims = range(len(shape)) if dim is None else [dim] if isinstance(dim, int) else dim
    n = int(np.prod([shape[d] for d in dims]))
    correction = {"var_c0": 0, "std_c0": 0, "var_c2": 2}.get(name, 1) if name[:3] in ("var", "std") else 0
    # With no more elements than the correction torch's own backward is inconsistent (inf or -0): forward only.
    check(lambda x: fn(x, dim, keepdim), lambda x: fn(x, dim, keepdim), randn(shape, seed), device=device,
          backward=n > correction)


@pytest.mark.parametrize("unbiased", [True, False])
def test_var_std_unbiased_positional_and_constant_input(unbiased):
    x = randn((3, 5), 1)
    check(lambda t: t.var(1, unbiased), lambda t: t.var(1, unbiased), x)
    check(lambda t: t.std(0, unbiased, True), lambda t: t.std(0, unbiased, True), x)
    check(lambda t: dg.var(t, unbiased=unbiased), lambda t: torch.var(t, unbiased=unbiased), x)
    # torch's std gradient is 0 (not nan) where every element equals the mean
    check(lambda t: t.std(dim=1), lambda t: t.std(dim=1), np.ones((2, 3), np.float32))


def test_sum_of_integers_and_dtype_argument():
    ints = np.array([[1, 2], [3, 4]], np.int32)
    check(lambda t: t.sum(), lambda t: t.sum(), ints)
    check(lambda t: t.sum(0), lambda t: t.sum(0), np.array([True, False, True]))
    check(lambda t: t.sum(dim=1, dtype=dg.float64), lambda t: t.sum(dim=1, dtype=torch.float64), randn((2, 3), 2))
    with pytest.raises(RuntimeError, match="mean"):
        dg.tensor([1, 2]).mean()


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("op", ["max", "min"])
@SETTINGS
@given(shape=nonempty_shapes, seed=seeds)
def test_full_max_min_share_ties_evenly(op, device, shape, seed):
    check(lambda x: getattr(x, op)(), lambda x: getattr(x, op)(), small_ints(shape, seed), device=device)


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("op", ["max", "min"])
@SETTINGS
@given(shape=nonempty_shapes, seed=seeds, keepdim=st.booleans(), data=st.data())
def test_max_min_along_dim_give_values_indices_and_grad_to_the_index(op, device, shape, seed, keepdim, data):
    dim = draw_dims(data, len(shape), allow_none=False, allow_tuple=False)
    fn = lambda x: getattr(x, op)(dim, keepdim)  # noqa: E731
    out, _ = check(fn, fn, small_ints(shape, seed), device=device)
    assert out.indices.dtype == dg.int64 and out.values is out[0]


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("op", ["amax", "amin"])
@SETTINGS
@given(shape=nonempty_shapes, seed=seeds, keepdim=st.booleans(), data=st.data())
def test_amax_amin_share_ties_evenly(op, device, shape, seed, keepdim, data):
    dim = draw_dims(data, len(shape), allow_none=False)
    fn = lambda x: getattr(x, op)(dim, keepdim)  # noqa: E731
    check(fn, fn, small_ints(shape, seed), device=device)
    check(lambda x: getattr(x, op)(), lambda x: getattr(x, op)(), small_ints(shape, seed), device=device)


def test_max_min_forms_and_errors():
    a, b = small_ints((3, 4), 1), small_ints((4,), 2)
    check(lambda x, y: dg.max(x, y), lambda x, y: torch.max(x, y), a, b)
    check(lambda x, y: dg.min(x, y), lambda x, y: torch.min(x, y), a, b)
    check(lambda x: x.max(dim=-1, keepdim=True), lambda x: x.max(dim=-1, keepdim=True), a)
    check(lambda x: x.max(0), lambda x: x.max(0), np.array(2.5, np.float32))  # 0-d with a dim
    check(lambda x: x.argmax(0), lambda x: x.argmax(0), np.array(2.5, np.float32))
    with pytest.raises(IndexError, match="max"):
        dg.zeros(0).max()
    with pytest.raises(IndexError, match="max"):
        dg.zeros(2, 0).max(1)
    with pytest.raises(IndexError, match=r"amax.*range"):
        dg.zeros(2, 3).amax(2)


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("op", ["argmax", "argmin"])
@SETTINGS
@given(shape=nonempty_shapes, seed=seeds, keepdim=st.booleans(), data=st.data())
def test_argmax_argmin(op, device, shape, seed, keepdim, data):
    dim = draw_dims(data, len(shape), allow_tuple=False)
    x = small_ints(shape, seed)  # ties: both libraries return the first occurrence
    check(lambda t: getattr(t, op)(dim, keepdim), lambda t: getattr(t, op)(dim, keepdim), x, device=device)
    check(lambda t: getattr(t, op)(), lambda t: getattr(t, op)(), x, device=device)


@pytest.mark.parametrize("device", devices)
@SETTINGS
@given(shape=nonempty_shapes, seed=seeds, keepdim=st.booleans(), data=st.data())
def test_logsumexp(device, shape, seed, keepdim, data):
    dim = draw_dims(data, len(shape), allow_none=False)
    fn = lambda t: t.logsumexp(dim, keepdim)  # noqa: E731
    check(fn, fn, randn(shape, seed), device=device)
    check(fn, fn, randn(shape, seed) * 50 + 1000, device=device)  # stable far from 0


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@SETTINGS
@given(shape=nonempty_shapes, seed=seeds, data=st.data())
def test_softmax_log_softmax(op, device, shape, seed, data):
    dim = draw_dims(data, len(shape), allow_none=False, allow_tuple=False)
    fn = lambda t: getattr(t, op)(dim)  # noqa: E731
    check(fn, fn, randn(shape, seed), device=device)


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("dim", [0, 1])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_log_softmax_stable_for_large_inputs(op, dim):
    x = np.array([[1000.0, 0.0, -1000.0], [1e4, 1e4 - 1, 1e4 + 2], [-1e4, -1e4, -1e4]], np.float32)
    out, _ = check(lambda t: getattr(F, op)(t, dim), lambda t: getattr(torch, op)(t, dim), x)
    assert np.isfinite(host(out)).all()
    check(lambda t: getattr(t, op)(0), lambda t: getattr(t, op)(0), np.array(3.0, np.float32))  # 0-d


def test_softmax_dtype_argument():
    check(lambda t: t.softmax(-1, dtype=dg.float64), lambda t: t.softmax(-1, dtype=torch.float64), randn((2, 3), 1))


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_gather_scatters_repeated_indices(dim, device):
    x = randn((3, 4), 1)
    rng = np.random.default_rng(dim + 5)
    index = rng.integers(0, x.shape[dim], size=(3, 4))  # repeats are likely: gradients must add up
    check(lambda t, i: t.gather(dim, i), lambda t, i: t.gather(dim, i), x, index, device=device)
    small = rng.integers(0, x.shape[dim], size=(2, 3))  # torch allows an index smaller than the input
    check(lambda t, i: dg.gather(t, dim, i), lambda t, i: torch.gather(t, dim, i), x, small, device=device)


def test_gather_errors():
    x = dg.zeros(2, 3)
    with pytest.raises(RuntimeError, match="gather"):
        x.gather(0, dg.tensor([0, 1]))
    with pytest.raises(RuntimeError, match="gather"):
        x.gather(1, dg.tensor([[0.0]]))
    with pytest.raises(RuntimeError, match="gather"):
        x.gather(1, dg.zeros(3, 1, dtype=dg.int64))


def test_all_any_and_norm():
    x = small_ints((3, 4), 3)
    check(lambda t: (t > 0).all(1), lambda t: (t > 0).all(1), x)
    check(lambda t: (t > 0).any(), lambda t: (t > 0).any(), x)
    check(lambda t: t.norm(), lambda t: t.norm(), randn((3, 4), 4))
    check(lambda t: t.norm(1, dim=1), lambda t: t.norm(1, dim=1), randn((3, 4), 5))


@pytest.mark.parametrize("dim", [0, 1])
def test_softmax_family_on_empty_tensors(dim):
    e = np.zeros((0, 3), np.float32)
    for fn in (lambda t: t.softmax(dim), lambda t: t.log_softmax(dim), lambda t: t.logsumexp(dim)):
        check(fn, fn, e)
    inf = np.full((2, 2), -np.inf, np.float32)
    check(lambda t: t.logsumexp(1), lambda t: t.logsumexp(1), inf, backward=False)
