"""Running reductions and ordering ops against torch: cumsum/cumprod (gradient with zeros)/cummax/cummin
(ties, NaN)/logcumsumexp/diff, sort/argsort (stable, descending, NaN)/topk/kthvalue/median/mode/quantile,
unique, bincount, histc, searchsorted, and the extra reductions prod (zeros), nansum/nanmean, std_mean,
var_mean, aminmax."""

import numpy as np
import pytest
import torch
from core_parity import check, devices, randn

import deepgrad as dg
from deepgrad.autograd import gradcheck


def with_zeros(shape, seed, zeros=1):
    """Normal data with ``zeros`` exact zeros per row of the last dim (cumprod's and prod's hard case)."""
    x = randn(shape, seed)
    rng = np.random.default_rng(seed)
    flat = x.reshape(-1, shape[-1])
    for row in flat:
        row[rng.choice(shape[-1], size=zeros, replace=False)] = 0.0
    return x


def ties(shape, seed):
    return np.random.default_rng(seed).integers(-2, 3, size=shape).astype(np.float32)


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumsum_cumprod_logcumsumexp(dim, device):
    for make in (lambda: randn((3, 4), 1), lambda: with_zeros((3, 4), 2), lambda: with_zeros((3, 4), 3, zeros=2)):
        x = make()
        for name in ("cumsum", "cumprod", "logcumsumexp"):
            check(
                lambda t, name=name: getattr(dg, name)(t, dim),
                lambda t, name=name: getattr(torch, name)(t, dim),
                x,
                device=device,
            )
    check(lambda t: t.cumsum(dim, dtype=dg.float64), lambda t: t.cumsum(dim, dtype=torch.float64), randn((2, 3), 4))


def test_cumulative_gradchecks_with_zeros_and_large_values():
    for x in (with_zeros((2, 5), 5), with_zeros((2, 5), 6, zeros=2), randn((3, 4), 7)):
        t = dg.tensor(x.astype(np.float64), requires_grad=True)
        assert gradcheck(lambda a: dg.cumprod(a, 1), [t])
        assert gradcheck(lambda a: dg.prod(a, 1), [t])
        assert gradcheck(lambda a: dg.prod(a), [t])
    big = dg.tensor(np.array([[200.0, -300.0, 500.0, 1.0]]), requires_grad=True)  # exp would overflow
    assert gradcheck(lambda a: dg.logcumsumexp(a, 1), [big])
    check(
        lambda t: dg.logcumsumexp(t, 1),
        lambda t: torch.logcumsumexp(t, 1),
        np.array([[80.0, -90.0, 95.0, -np.inf]], np.float32),
    )


def test_cumulative_dtypes_and_scalars():
    for x in (np.array([[1, 2], [3, 4]], np.int32), np.array([True, False, True])):
        d = -1
        check(lambda t, d=d: dg.cumsum(t, d), lambda t, d=d: torch.cumsum(t, d), x)
        check(lambda t, d=d: dg.cumprod(t, d), lambda t, d=d: torch.cumprod(t, d), x)
    check(lambda t: dg.cumsum(t, 0), lambda t: torch.cumsum(t, 0), np.float32(2.5))
    with pytest.raises(NotImplementedError):
        dg.logcumsumexp(dg.tensor([1, 2]), 0)
    with pytest.raises(IndexError):
        dg.cumsum(dg.ones(2, 3), 2)


@pytest.mark.parametrize("device", devices)
def test_cummax_cummin_ties_and_nan(device):
    x = np.array(
        [[1.0, 3.0, 3.0, 2.0, np.nan, 5.0, np.nan, 1.0], [0.0, -1.0, -1.0, 4.0, 4.0, 2.0, 6.0, 6.0]], np.float32
    )
    for name in ("cummax", "cummin"):
        for dim in (0, 1):
            check(
                lambda t, dim=dim, name=name: getattr(dg, name)(t, dim),
                lambda t, dim=dim, name=name: getattr(torch, name)(t, dim),
                x,
                device=device,
            )
        check(
            lambda t, name=name: getattr(t, name)(1),
            lambda t, name=name: getattr(t, name)(1),
            ties((3, 5), 1),
            device=device,
        )
        check(
            lambda t, name=name: getattr(dg, name)(t, 0),
            lambda t, name=name: getattr(torch, name)(t, 0),
            np.array([3, 1, 3, 7]),
        )
    assert gradcheck(
        lambda a: dg.cummax(a, 1).values, [dg.tensor(randn((2, 5), 2).astype(np.float64), requires_grad=True)]
    )


def test_diff():
    x = randn((3, 5), 1)
    for kw in ({}, {"n": 2}, {"dim": 0}, {"n": 3, "dim": 1}):
        check(lambda t, kw=kw: dg.diff(t, **kw), lambda t, kw=kw: torch.diff(t, **kw), x)
    check(lambda t, p: dg.diff(t, prepend=p), lambda t, p: torch.diff(t, prepend=p), x, randn((3, 2), 2))
    check(lambda t: t.diff(), lambda t: t.diff(), np.array([True, False, False, True]))


@pytest.mark.parametrize("device", devices)
def test_sort_argsort_stable_descending_nan(device):
    x = np.array(
        [[3.0, 1.0, np.nan, 1.0, -2.0, 3.0, np.inf, -np.inf], [0.0, 0.0, -0.5, 7.0, np.nan, np.nan, 1.0, 0.0]],
        np.float32,
    )
    for desc in (False, True):
        for dim in (0, 1):
            check(
                lambda t, desc=desc, dim=dim: dg.sort(t, dim, desc),
                lambda t, desc=desc, dim=dim: torch.sort(t, dim=dim, descending=desc, stable=True),
                x,
                device=device,
            )
            check(
                lambda t, desc=desc, dim=dim: t.argsort(dim, desc),
                lambda t, desc=desc, dim=dim: t.argsort(dim=dim, descending=desc, stable=True),
                x,
                device=device,
            )
    check(
        lambda t: t.sort(descending=True),
        lambda t: t.sort(descending=True, stable=True),
        np.array([3, 1, 2, 3, 255], np.uint8),
    )
    check(dg.msort, torch.msort, randn((4, 3), 2), device=device)
    check(lambda t: dg.sort(t), lambda t: torch.sort(t), np.float32(1.5))


@pytest.mark.parametrize("device", devices)
def test_topk_kthvalue_median_mode(device):
    x = randn((4, 6), 3)
    for k, largest in ((1, True), (3, True), (2, False), (6, False)):
        check(
            lambda t, k=k, largest=largest: dg.topk(t, k, largest=largest),
            lambda t, k=k, largest=largest: torch.topk(t, k, largest=largest),
            x,
            device=device,
        )
        if k <= 4:
            check(
                lambda t, k=k, largest=largest: t.topk(k, 0, largest),
                lambda t, k=k, largest=largest: t.topk(k, 0, largest),
                x[:, :4] + 0,
                device=device,
            )
    for k in (1, 3, 6):
        check(lambda t, k=k: dg.kthvalue(t, k), lambda t, k=k: torch.kthvalue(t, k), x, device=device)
    check(lambda t: t.kthvalue(2, 0, True), lambda t: t.kthvalue(2, 0, True), x, device=device)
    for dim, keep in ((0, False), (1, True), (-1, False)):
        check(
            lambda t, dim=dim, keep=keep: dg.median(t, dim, keep),
            lambda t, dim=dim, keep=keep: torch.median(t, dim, keep),
            x,
            device=device,
        )
        check(
            lambda t, dim=dim, keep=keep: dg.nanmedian(t, dim, keep),
            lambda t, dim=dim, keep=keep: torch.nanmedian(t, dim, keep),
            x,
            device=device,
        )
    check(dg.median, torch.median, x, device=device)
    check(dg.median, torch.median, ties((3, 3), 4), device=device)  # ties share the gradient evenly
    nan = np.array([[1.0, np.nan, 2.0, 0.5], [3.0, 2.0, 1.0, 0.0]], np.float32)
    check(lambda t: dg.median(t, 1), lambda t: torch.median(t, 1), nan)
    check(lambda t: dg.nanmedian(t, 1), lambda t: torch.nanmedian(t, 1), nan)
    check(dg.nanmedian, torch.nanmedian, nan)
    check(dg.median, torch.median, nan)
    m = np.array([[1, 2, 2, 3, 3], [4, 4, 1, 1, 0], [5, 5, 5, 5, 5]])
    check(lambda t: dg.mode(t, 1), lambda t: torch.mode(t, 1), m)
    check(lambda t: t.mode(0), lambda t: t.mode(0), m.astype(np.float32))
    with pytest.raises(RuntimeError):
        dg.topk(dg.ones(3), 4)
    with pytest.raises(IndexError):
        dg.kthvalue(dg.ones(3), 0)


def test_quantile():
    x = randn((3, 7), 5)
    for q in (0.0, 0.25, 0.5, 1.0):
        for interp in ("linear", "lower", "higher", "midpoint", "nearest"):
            check(
                lambda t, interp=interp, q=q: dg.quantile(t, q, 1, interpolation=interp),
                lambda t, interp=interp, q=q: torch.quantile(t, q, 1, interpolation=interp),
                x,
            )
    check(
        lambda t: dg.quantile(t, dg.tensor([0.1, 0.9]), 0, True),
        lambda t: torch.quantile(t, torch.tensor([0.1, 0.9]), 0, True),
        x,
    )
    check(lambda t: t.quantile(0.3), lambda t: t.quantile(0.3), x)
    with pytest.raises(RuntimeError):
        dg.quantile(dg.tensor(x), 1.5)


def test_unique_and_friends():
    x = np.array([[3, 1, 3], [2, 1, 1]])
    for kw in (
        {},
        {"return_inverse": True},
        {"return_counts": True},
        {"return_inverse": True, "return_counts": True},
        {"dim": 0, "return_inverse": True, "return_counts": True},
        {"dim": 1, "return_inverse": True},
    ):
        check(lambda t, kw=kw: dg.unique(t, **kw), lambda t, kw=kw: torch.unique(t, **kw), x)
    check(lambda t: t.unique(), lambda t: t.unique(), randn((5,), 1).round(), backward=False)
    with pytest.raises(NotImplementedError, match="derivative for '_unique2'"):
        dg.unique(dg.tensor([1.0, 1.0], requires_grad=True)).sum().backward()
    c = np.array([1, 1, 2, 2, 3, 1, 1, 2])
    for kw in ({}, {"return_inverse": True, "return_counts": True}):
        check(lambda t, kw=kw: dg.unique_consecutive(t, **kw), lambda t, kw=kw: torch.unique_consecutive(t, **kw), c)
    check(
        lambda t: dg.unique_consecutive(t, dim=0),
        lambda t: torch.unique_consecutive(t, dim=0),
        np.array([[1, 2], [1, 2], [3, 4], [1, 2]]),
    )


def test_bincount_histc_searchsorted_bucketize():
    i = np.array([0, 1, 1, 3, 1, 5])
    w = randn((6,), 1)
    check(dg.bincount, torch.bincount, i)
    check(lambda a, b: dg.bincount(a, b, 8), lambda a, b: torch.bincount(a, b, 8), i, w, backward=False)
    check(lambda a, b: a.bincount(b), lambda a, b: a.bincount(b), i, w.astype(np.float64), backward=False)
    with pytest.raises(RuntimeError):
        dg.bincount(dg.tensor([-1, 2]))
    x = randn((50,), 2)
    for kw in ({}, {"bins": 7}, {"bins": 4, "min": -1, "max": 1}):
        check(lambda t, kw=kw: dg.histc(t, **kw), lambda t, kw=kw: torch.histc(t, **kw), x)
    with pytest.raises(NotImplementedError):
        dg.histc(dg.tensor([1, 2]))
    seq = np.array([[1.0, 3.0, 5.0, 7.0], [2.0, 4.0, 6.0, 8.0]], np.float32)
    vals = np.array([[3.0, 6.0], [1.0, 9.0]], np.float32)
    for right in (False, True):
        check(
            lambda s, v, right=right: dg.searchsorted(s, v, right=right),
            lambda s, v, right=right: torch.searchsorted(s, v, right=right),
            seq,
            vals,
        )
        check(
            lambda s, v, right=right: dg.searchsorted(s, v, side="right" if right else "left", out_int32=True),
            lambda s, v, right=right: torch.searchsorted(s, v, side="right" if right else "left", out_int32=True),
            seq[0],
            vals,
        )
        check(
            lambda v, b, right=right: dg.bucketize(v, b, right=right),
            lambda v, b, right=right: torch.bucketize(v, b, right=right),
            vals,
            seq[1],
        )


@pytest.mark.parametrize("device", devices)
def test_prod_nan_reductions_std_var_mean_aminmax(device):
    x = with_zeros((3, 4), 1)
    check(dg.prod, torch.prod, x, device=device)
    check(dg.prod, torch.prod, randn((3, 4), 2), device=device)
    for dim, keep in ((0, False), (1, True)):
        check(
            lambda t, dim=dim, keep=keep: dg.prod(t, dim, keep),
            lambda t, dim=dim, keep=keep: torch.prod(t, dim, keep),
            x,
            device=device,
        )
        check(
            lambda t, dim=dim: t.prod(dim),
            lambda t, dim=dim: t.prod(dim),
            with_zeros((3, 4), 3, zeros=2),
            device=device,
        )
    check(lambda t: t.prod(dtype=dg.float64), lambda t: t.prod(dtype=torch.float64), randn((3,), 4))
    check(dg.prod, torch.prod, np.array([[1, 2], [3, 4]], np.int32))
    nan = randn((3, 4), 5)
    nan[0, 1] = nan[2, 3] = np.nan
    for fn in ("nansum", "nanmean"):
        check(getattr(dg, fn), getattr(torch, fn), nan, device=device)
        check(
            lambda t, fn=fn: getattr(t, fn)(1, keepdim=True),
            lambda t, fn=fn: getattr(t, fn)(1, keepdim=True),
            nan,
            device=device,
        )
    check(dg.nansum, torch.nansum, np.array([1, 2, 3]))
    with pytest.raises(RuntimeError):
        dg.nanmean(dg.tensor([1, 2]))
    y = randn((3, 4), 6)
    check(lambda t: dg.std_mean(t, 1), lambda t: torch.std_mean(t, 1), y, device=device)
    check(lambda t: dg.var_mean(t, 0, correction=0), lambda t: torch.var_mean(t, 0, correction=0), y, device=device)
    check(dg.aminmax, torch.aminmax, ties((3, 4), 7), device=device)
    check(lambda t: t.aminmax(dim=1, keepdim=True), lambda t: t.aminmax(dim=1, keepdim=True), y, device=device)
    with pytest.raises(RuntimeError):
        dg.aminmax(dg.tensor([]))
