"""Writing and reading by index against torch: scatter (tensor and number sources), scatter_add,
scatter_reduce (every mode, include_self both ways, repeated indices), index_select/add/copy/fill,
masked_select/scatter, take, take_along_dim, index_put (accumulate), nonzero/argwhere/count_nonzero, and
the in-place forms (version counters, graph recording) — values, gradients and torch's errors."""

import numpy as np
import pytest
import torch
from core_parity import check, devices, randn

import deepgrad as dg
from deepgrad.autograd import gradcheck


def idx(*rows):
    return np.array(rows, np.int64)


@pytest.mark.parametrize("device", devices)
def test_scatter_and_scatter_add(device):
    x, src = randn((3, 5), 1), randn((2, 4), 2)
    index = idx([0, 1, 2, 0], [2, 0, 0, 1])  # dim 0: repeated rows
    check(
        lambda a, i, s: dg.scatter(a, 0, i, s),
        lambda a, i, s: torch.scatter(a, 0, i, s),
        x,
        idx([0, 1, 2, 0], [2, 0, 1, 1]),
        src,
        device=device,
    )
    check(lambda a, i, s: a.scatter_add(0, i, s), lambda a, i, s: a.scatter_add(0, i, s), x, index, src, device=device)
    col = idx([4, 0], [1, 3], [2, 2])  # dim 1 on a (3, 5) tensor
    check(lambda a, i: a.scatter(1, i, 2.5), lambda a, i: a.scatter(1, i, 2.5), x, col, device=device)
    check(
        lambda a, i: dg.scatter(a, 1, i, value=-1.0),
        lambda a, i: torch.scatter(a, 1, i, value=-1.0),
        x,
        col,
        device=device,
    )
    check(
        lambda a, i, s: a.scatter_add(1, i, s),
        lambda a, i, s: a.scatter_add(1, i, s),
        x,
        col,
        randn((3, 2), 3),
        device=device,
    )
    ints = np.arange(12).reshape(3, 4)
    check(lambda a, i: a.scatter(1, i, 7), lambda a, i: a.scatter(1, i, 7), ints, col[:, :1] % 4)


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_every_mode(reduce, include_self, device):
    x = randn((4, 3), 1)
    src = np.random.default_rng(2).integers(-2, 3, size=(5, 3)).astype(np.float32)  # ties for amax/amin
    src[1, 1] = 0.0  # a zero for prod
    index = idx([0, 1, 0], [2, 1, 0], [0, 1, 3], [2, 2, 0], [0, 0, 0])

    def fn(lib):
        return lambda a, i, s: lib.scatter_reduce(a, 0, i, s, reduce, include_self=include_self)

    check(fn(dg), fn(torch), x, index, src, device=device)
    x0 = x.copy()
    x0[0, 0] = 0.0  # a zero in self for prod
    check(
        lambda a, i, s: a.scatter_reduce(0, i, s, reduce, include_self=include_self),
        lambda a, i, s: a.scatter_reduce(0, i, s, reduce, include_self=include_self),
        x0,
        index,
        src,
        device=device,
    )
    ints = np.arange(12).reshape(4, 3) - 5
    check(fn(dg), fn(torch), ints, index, src.astype(np.int64), device=device)


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax"])
def test_scatter_reduce_gradcheck(reduce):
    x = dg.tensor(randn((4, 3), 3).astype(np.float64), requires_grad=True)
    src = dg.tensor(randn((2, 3), 4).astype(np.float64), requires_grad=True)
    index = dg.tensor(idx([0, 1, 0], [2, 1, 0]))
    for include_self in (True, False):
        assert dg.allclose(
            dg.scatter_reduce(x, 0, index, src, {"amax": "max"}.get(reduce, reduce)),
            dg.scatter_reduce(x, 0, index, src, reduce),
        )
        assert gradcheck(
            lambda a, s, include_self=include_self: dg.scatter_reduce(
                a, 0, index, s, reduce, include_self=include_self
            ),
            [x, src],
        )


def test_scatter_errors_match_torch():
    cases = [
        lambda L: L.zeros(3).scatter(0, L.tensor([5]), 1.0),
        lambda L: L.zeros(3).scatter(0, L.tensor([1.0]), 1.0),
        lambda L: L.zeros(3).scatter(0, L.tensor([1]), L.ones(3, dtype=L.float64)),
        lambda L: L.zeros(3, 2).scatter(0, L.tensor([1]), L.ones(3)),
        lambda L: L.zeros(3, 2).scatter_add(1, L.tensor([[0, 1, 1]]), L.ones(1, 2)),
        lambda L: L.zeros(3).scatter_reduce(0, L.tensor([1]), L.ones(1), "add"),
    ]
    for case in cases:
        with pytest.raises(RuntimeError):
            case(torch)
        with pytest.raises(RuntimeError):
            case(dg)


@pytest.mark.parametrize("device", devices)
def test_index_select_add_copy_fill(device):
    x = randn((4, 3), 1)
    for dim, index in ((0, idx(3, 0, 3)), (1, idx(2, 0)), (-1, np.array(1))):
        check(
            lambda a, i, dim=dim: dg.index_select(a, dim, i),
            lambda a, i, dim=dim: torch.index_select(a, dim, i),
            x,
            index,
            device=device,
        )
    rows = idx(0, 2, 0)
    check(
        lambda a, i, s: a.index_add(0, i, s, alpha=2.0),
        lambda a, i, s: a.index_add(0, i, s, alpha=2.0),
        x,
        rows,
        randn((3, 3), 2),
        device=device,
    )
    check(
        lambda a, i, s: dg.index_copy(a, 1, i, s),
        lambda a, i, s: torch.index_copy(a, 1, i, s),
        x,
        idx(2, 0),
        randn((4, 2), 3),
        device=device,
    )
    check(lambda a, i: a.index_fill(1, i, -3.0), lambda a, i: a.index_fill(1, i, -3.0), x, idx(0, 2), device=device)
    check(
        lambda a, i, v: a.index_fill(0, i, v),
        lambda a, i, v: a.index_fill(0, i, v),
        x,
        idx(1, 1, 3),
        np.float32(0.5),
        device=device,
    )
    for case in (
        lambda L: L.zeros(2, 3).index_add(1, L.tensor([0, 0]), L.ones(2, 3)),
        lambda L: L.zeros(2, 3).index_select(1, L.tensor([3])),
    ):
        with pytest.raises((RuntimeError, IndexError)):
            case(torch)
        with pytest.raises(RuntimeError):
            case(dg)
    with pytest.raises(IndexError):
        dg.zeros(2, 3).index_select(1, dg.tensor([[0, 0]]))


@pytest.mark.parametrize("device", devices)
def test_masked_select_scatter_take(device):
    x = randn((3, 4), 1)
    mask = np.random.default_rng(2).random((3, 4)) > 0.5
    check(dg.masked_select, torch.masked_select, x, mask, device=device)
    check(lambda a, m: a.masked_select(m), lambda a, m: a.masked_select(m), x, mask[0], device=device)
    check(
        lambda a, m, s: a.masked_scatter(m, s),
        lambda a, m, s: a.masked_scatter(m, s),
        x,
        mask,
        randn((13,), 3),
        device=device,
    )
    check(lambda a, i: dg.take(a, i), lambda a, i: torch.take(a, i), x, idx([0, 11], [5, 5]), device=device)
    check(
        lambda a, i: dg.take_along_dim(a, i, 1),
        lambda a, i: torch.take_along_dim(a, i, 1),
        x,
        idx([0, 3], [1, 1], [2, 0]),
    )
    check(lambda a, i: a.take_along_dim(i), lambda a, i: a.take_along_dim(i), x, idx(3, 7))
    check(lambda a, i: a.take_along_dim(i, 0), lambda a, i: a.take_along_dim(i, 0), x, idx([0], [2]))
    with pytest.raises(RuntimeError):
        dg.zeros(2, 3).masked_select(dg.tensor([1, 0, 1]))
    with pytest.raises(RuntimeError, match="Number of elements of source"):
        dg.zeros(2, 3).masked_scatter(dg.tensor([True, False, True]), dg.arange(3.0))


def test_index_put_and_nonzero():
    x = randn((3, 4), 1)
    rows, cols = idx(0, 2, 0), idx(1, 3, 1)
    for acc in (False, True):
        check(
            lambda a, r, c, v, acc=acc: a.index_put((r, c), v, accumulate=acc),
            lambda a, r, c, v, acc=acc: a.index_put((r, c), v, accumulate=acc),
            x,
            rows,
            cols,
            randn((3,), 2),
        )
        check(
            lambda a, r, v, acc=acc: dg.index_put(a, (r,), v, acc),
            lambda a, r, v, acc=acc: torch.index_put(a, (r,), v, acc),
            x,
            rows,
            randn((4,), 3),
        )
    z = np.array([[0, 1, 0], [2, 0, 3]])
    check(dg.nonzero, torch.nonzero, z)
    check(dg.argwhere, torch.argwhere, z)
    check(lambda t: t.nonzero(as_tuple=True), lambda t: t.nonzero(as_tuple=True), z)
    check(lambda t: dg.count_nonzero(t, 1), lambda t: torch.count_nonzero(t, 1), z)
    check(lambda t: t.count_nonzero(), lambda t: t.count_nonzero(), z)


def test_inplace_forms_write_memory_bump_versions_and_record_the_graph():
    def chain(x, s):
        y = x * 1
        y.scatter_(0, idx_t(y, [[1, 0, 2]]), s[:1])
        y.scatter_add_(1, idx_t(y, [[0], [0], [1]]), s[:, :1])
        y.index_add_(0, idx_t(y, [2, 2]), s[:2], alpha=0.5)
        y.masked_fill_(y > 1.0, 0.0)
        y.index_fill_(1, idx_t(y, [2]), 3.0)
        y.masked_scatter_(y < 0, s.reshape(-1))
        y.index_put_((idx_t(y, [0, 1]),), s[0, :3] * 2, accumulate=True)
        y.scatter_reduce_(0, idx_t(y, [[0, 0, 0]]), s[:1], "amax")  # saves its result: the last write
        return y

    def idx_t(like, rows):
        return (torch.tensor if isinstance(like, torch.Tensor) else dg.tensor)(rows)

    check(chain, chain, randn((3, 3), 1), randn((3, 3), 2))
    x = dg.zeros(3)
    before = x._version
    assert x.masked_fill_(dg.tensor([True, False, True]), 1.0) is x and x.tolist() == [1.0, 0.0, 1.0]
    assert x._version == before + 1
    leaf = dg.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        leaf.scatter_(0, dg.tensor([0]), 1.0)


def test_gather_accepts_sparse_grad():
    check(
        lambda a, i: a.gather(1, i, sparse_grad=False),
        lambda a, i: a.gather(1, i, sparse_grad=False),
        randn((2, 3), 1),
        idx([0, 0], [2, 1]),
    )
    # torch's sparse_grad gives a sparse .grad with the same values; deepgrad's is dense
    check(
        lambda a, i: dg.gather(a, 1, i, sparse_grad=True),
        lambda a, i: torch.gather(a, 1, i),
        randn((2, 3), 1),
        idx([0, 0], [2, 1]),
    )
