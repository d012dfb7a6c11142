"""Moving elements against torch: flip/fliplr/flipud, roll, rot90, narrow and select (views), movedim,
swapaxes, tile, broadcast_to/broadcast_tensors/broadcast_shapes, atleast_*d, the stacks, unflatten,
ravel, tensor_split and h/v/dsplit, repeat_interleave, meshgrid, cartesian_prod, Tensor.unfold (a view
of sliding windows) and view(dtype) (the same bits read as another dtype)."""

import numpy as np
import pytest
import torch
from core_parity import check, devices, randn

import deepgrad as dg


@pytest.mark.parametrize("device", devices)
def test_flip_roll_rot90(device):
    x = randn((2, 3, 4), 1)
    for dims in ((0,), (2,), (0, 2), (-1, 1)):
        check(lambda t, dims=dims: dg.flip(t, dims), lambda t, dims=dims: torch.flip(t, dims), x, device=device)
    check(lambda t: t.flip(1, 2), lambda t: t.flip(1, 2), x, device=device)
    check(dg.fliplr, torch.fliplr, x, device=device)
    check(dg.flipud, torch.flipud, x, device=device)
    for shifts, dims in ((1, None), (-5, None), (2, 1), ((1, -2), (0, 2)), (7, -1)):
        check(
            lambda t, dims=dims, shifts=shifts: dg.roll(t, shifts, dims),
            lambda t, dims=dims, shifts=shifts: torch.roll(t, shifts, dims),
            x,
            device=device,
        )
    for k in (0, 1, 2, 3, -1, 5):
        check(lambda t, k=k: dg.rot90(t, k, (1, 2)), lambda t, k=k: torch.rot90(t, k, (1, 2)), x, device=device)
    for case in (
        lambda L: L.flip(L.ones(2), 0),
        lambda L: L.fliplr(L.ones(3)),
        lambda L: L.rot90(L.ones(2, 2), 1, (0, 0)),
    ):
        with pytest.raises((RuntimeError, TypeError)) as err:
            case(torch)
        with pytest.raises(err.type):
            case(dg)


def test_narrow_select_are_views():
    x = randn((3, 6), 1)
    for dim, start, length in ((1, 2, 3), (1, -2, 2), (0, 0, 3), (0, 1, 0)):
        check(
            lambda t, dim=dim, length=length, start=start: dg.narrow(t, dim, start, length),
            lambda t, dim=dim, length=length, start=start: torch.narrow(t, dim, start, length),
            x,
        )
    check(
        lambda t: t.narrow(1, dg.tensor(1) if isinstance(t, dg.Tensor) else torch.tensor(1), 2),
        lambda t: t.narrow(1, torch.tensor(1), 2),
        x,
    )
    check(lambda t: t.select(1, -1), lambda t: t.select(1, -1), x)
    check(lambda t: dg.select(t, 0, 2), lambda t: torch.select(t, 0, 2), x)
    base = dg.zeros(3, 4)
    base.narrow(1, 1, 2).fill_(1.0)
    base.select(0, 2).add_(5.0)
    expected = torch.zeros(3, 4)
    expected.narrow(1, 1, 2).fill_(1.0)
    expected.select(0, 2).add_(5.0)
    assert base.tolist() == expected.tolist()
    with pytest.raises(RuntimeError, match="exceeds dimension size"):
        dg.narrow(dg.ones(3, 4), 1, 2, 3)
    with pytest.raises(IndexError):
        dg.ones(3, 4).select(0, 5)


def test_movedim_swapaxes_tile_broadcast():
    x = randn((2, 3, 4), 1)
    for src, dst in ((0, 2), ((0, 1), (2, 0)), (-1, 0)):
        check(
            lambda t, dst=dst, src=src: dg.movedim(t, src, dst),
            lambda t, dst=dst, src=src: torch.movedim(t, src, dst),
            x,
        )
        check(lambda t, dst=dst, src=src: t.moveaxis(src, dst), lambda t, dst=dst, src=src: t.moveaxis(src, dst), x)
    check(lambda t: dg.swapaxes(t, 0, 2), lambda t: torch.swapaxes(t, 0, 2), x)
    check(lambda t: t.swapdims(1, 2), lambda t: t.swapdims(1, 2), x)
    for reps in ((2,), (1, 2, 1), (2, 1, 1, 3)):
        check(lambda t, reps=reps: dg.tile(t, reps), lambda t, reps=reps: torch.tile(t, reps), x)
    check(lambda t: t.tile(2, 1), lambda t: t.tile(2, 1), x)
    check(lambda t: dg.broadcast_to(t, (5, 2, 3, 4)), lambda t: torch.broadcast_to(t, (5, 2, 3, 4)), x)
    check(
        lambda a, b: dg.broadcast_tensors(a, b),
        lambda a, b: torch.broadcast_tensors(a, b),
        randn((3, 1), 2),
        randn((4,), 3),
    )
    assert dg.broadcast_shapes((3, 1), (4,), (2, 1, 1)) == tuple(torch.broadcast_shapes((3, 1), (4,), (2, 1, 1)))
    with pytest.raises(RuntimeError):
        dg.broadcast_shapes((3,), (4,))


def test_atleast_stacks_unflatten_ravel():
    s, v, m = np.float32(2.0), randn((3,), 1), randn((2, 3), 2)
    for name in ("atleast_1d", "atleast_2d", "atleast_3d"):
        for a in (s, v, m):
            check(getattr(dg, name), getattr(torch, name), a)
        check(lambda a, b, name=name: getattr(dg, name)(a, b), lambda a, b, name=name: getattr(torch, name)(a, b), v, m)
    for name in ("hstack", "vstack", "dstack", "column_stack", "row_stack"):
        check(
            lambda a, b, name=name: getattr(dg, name)([a, b]),
            lambda a, b, name=name: getattr(torch, name)([a, b]),
            m,
            m * 2,
        )
    check(lambda a, b: dg.hstack((a, b)), lambda a, b: torch.hstack((a, b)), v, v)
    check(lambda a, b: dg.column_stack((a, b)), lambda a, b: torch.column_stack((a, b)), v, m.T.copy())
    x = randn((2, 12), 3)
    check(lambda t: dg.unflatten(t, 1, (3, -1)), lambda t: torch.unflatten(t, 1, (3, -1)), x)
    check(lambda t: t.unflatten(-1, (2, 2, 3)), lambda t: t.unflatten(-1, (2, 2, 3)), x)
    check(dg.ravel, torch.ravel, x.T.copy())
    check(lambda t: t.t().ravel(), lambda t: t.t().ravel(), x)


def test_tensor_split_and_hvdsplit():
    x = randn((4, 10, 6), 1)
    for arg, dim in ((3, 1), ((2, 5, 20), 1), ([1, 1], 0), (4, 2), (11, 1)):
        check(
            lambda t, arg=arg, dim=dim: dg.tensor_split(t, arg, dim),
            lambda t, arg=arg, dim=dim: torch.tensor_split(t, arg, dim),
            x,
        )
    check(lambda t: t.tensor_split(2), lambda t: t.tensor_split(2), x)
    for name, sections in (("hsplit", 5), ("vsplit", 2), ("dsplit", [1, 4]), ("hsplit", [3])):
        check(
            lambda t, name=name, sections=sections: getattr(dg, name)(t, sections),
            lambda t, name=name, sections=sections: getattr(torch, name)(t, sections),
            x,
        )
    with pytest.raises(RuntimeError, match="not divisible"):
        dg.hsplit(dg.arange(10), 3)


@pytest.mark.parametrize("device", devices)
def test_repeat_interleave(device):
    x = randn((3, 4), 1)
    check(lambda t: dg.repeat_interleave(t, 2), lambda t: torch.repeat_interleave(t, 2), x, device=device)
    check(lambda t: t.repeat_interleave(3, dim=1), lambda t: t.repeat_interleave(3, dim=1), x, device=device)
    check(
        lambda t, r: dg.repeat_interleave(t, r, dim=0),
        lambda t, r: torch.repeat_interleave(t, r, dim=0),
        x,
        np.array([1, 0, 3]),
        device=device,
    )
    check(lambda r: dg.repeat_interleave(r), lambda r: torch.repeat_interleave(r), np.array([2, 0, 1]))
    check(
        lambda t: t.repeat_interleave(dg.tensor([2]) if isinstance(t, dg.Tensor) else torch.tensor([2]), dim=1),
        lambda t: t.repeat_interleave(torch.tensor([2]), dim=1),
        x,
    )
    with pytest.raises(RuntimeError, match="repeats must have the same size"):
        dg.repeat_interleave(dg.ones(3, 4), dg.tensor([1, 2]), dim=0)


def test_meshgrid_and_cartesian_prod():
    a, b, c = randn((2,), 1), randn((3,), 2), randn((4,), 3)
    for indexing in ("ij", "xy"):
        check(
            lambda *t, indexing=indexing: dg.meshgrid(*t, indexing=indexing),
            lambda *t, indexing=indexing: torch.meshgrid(*t, indexing=indexing),
            a,
            b,
        )
        check(
            lambda *t, indexing=indexing: dg.meshgrid(t, indexing=indexing),
            lambda *t, indexing=indexing: torch.meshgrid(t, indexing=indexing),
            a,
            b,
            c,
        )
    check(lambda *t: dg.cartesian_prod(*t), lambda *t: torch.cartesian_prod(*t), a, b, c)


@pytest.mark.parametrize("device", devices)
def test_unfold_windows(device):
    x = randn((3, 7), 1)
    for dim, size, step in ((1, 3, 1), (1, 2, 2), (0, 2, 1), (1, 7, 3), (-1, 1, 4)):
        check(
            lambda t, dim=dim, size=size, step=step: t.unfold(dim, size, step),
            lambda t, dim=dim, size=size, step=step: t.unfold(dim, size, step),
            x,
            device=device,
        )
    check(lambda t: t.unfold(0, 1, 1), lambda t: t.unfold(0, 1, 1), np.float32(3.0))
    w = dg.zeros(6)
    w.unfold(0, 2, 2)[:, 0].fill_(1.0)  # the windows are a view
    assert w.tolist() == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    with pytest.raises(RuntimeError, match="maximum size"):
        dg.ones(3, 4).unfold(1, 5, 1)


def test_view_dtype_reinterprets_bits():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    for dtype in ("int32", "float16", "int64", "uint8", "bool"):
        check(
            lambda t, dtype=dtype: t.view(getattr(dg, dtype)),
            lambda t, dtype=dtype: t.view(getattr(torch, dtype)),
            x,
            requires_grad=[False],
        )
    check(lambda t: t.t().view(dg.int32), lambda t: t.t().view(torch.int32), x, requires_grad=[False])
    d = dg.tensor(x)
    v = d.view(dg.int32)
    v[0, 0] = 1065353216  # the bits of 1.0f: written through the view
    assert d[0, 0].item() == 1.0
    for case in (
        lambda L, t: t.t().view(L.int64),
        lambda L, t: t[:, :3].view(L.int64),
        lambda L, t: t[0, 0].view(L.int16),
    ):
        with pytest.raises(RuntimeError):
            case(torch, torch.tensor(x))
        with pytest.raises(RuntimeError):
            case(dg, dg.tensor(x))
    assert not dg.ones(2, requires_grad=True).view(dg.int32).requires_grad
