"""einsum (explicit and implicit output, ellipsis, repeated labels / diagonals, broadcasting, sublists),
tensordot, the named products (mm, bmm, mv, dot, outer, addmm, baddbmm, addbmm, addmv, addr, inner, kron,
cdist, cross) and diagonals/triangles (diagonal as a writable view, diag, diag_embed, trace, tril/triu)
against torch, with float64 gradchecks and torch's errors."""

import numpy as np
import pytest
import torch
from core_parity import SETTINGS, check, devices, randn
from hypothesis import given
from hypothesis import strategies as st

import deepgrad as dg
from deepgrad.autograd import gradcheck

EINSUM = [  # (equation, operand shapes)
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 4)]),
    ("i,i->", [(5,), (5,)]),
    ("i,i", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ij->ji", [(2, 3)]),
    ("ij->", [(2, 3)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("iij->j", [(2, 2, 4)]),
    ("ijj->ij", [(2, 3, 3)]),
    ("...ij,...jk->...ik", [(5, 2, 3), (3, 4)]),
    ("...ij,...jk", [(2, 1, 2, 3), (4, 3, 2)]),
    ("b...,b...->b", [(2, 3, 4), (2, 3, 4)]),
    ("ij,kj->ik", [(2, 1), (3, 4)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("iJ", [(2, 3)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("ab,cd,bd->ac", [(2, 3), (4, 5), (3, 5)]),
    ("ijk,ikl->jl", [(2, 3, 4), (2, 4, 2)]),
    (" i j , j k -> i k ", [(2, 3), (3, 4)]),
    ("...", [(2, 3)]),
    ("ij,ij->ij", [(2, 3), (1, 3)]),
    ("i,j,k->ijk", [(2,), (3,), (1,)]),
    ("ii->", [(1, 1)]),
]


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("equation, shapes", EINSUM, ids=[e for e, _ in EINSUM])
def test_einsum_matches_torch(equation, shapes, device):
    arrays = [randn(s, i + 1) for i, s in enumerate(shapes)]
    check(lambda *ts: dg.einsum(equation, *ts), lambda *ts: torch.einsum(equation, *ts), *arrays, device=device)


@SETTINGS
@given(b=st.integers(1, 3), i=st.integers(1, 4), j=st.integers(1, 4), k=st.integers(0, 3), seed=st.integers(0, 99))
def test_einsum_random_sizes_and_gradcheck(b, i, j, k, seed):
    a, c = randn((b, i, j), seed), randn((j, k), seed + 1)
    check(lambda x, y: dg.einsum("bij,jk->bki", x, y), lambda x, y: torch.einsum("bij,jk->bki", x, y), a, c)
    xs = [dg.tensor(v.astype(np.float64), requires_grad=True) for v in (randn((i, i, j), seed), randn((j,), seed))]
    assert gradcheck(lambda x, y: dg.einsum("iij,j->i", x, y), xs)


def test_einsum_sublists_integers_and_errors():
    a, v = randn((2, 3), 1), randn((3,), 2)
    check(lambda x, y: dg.einsum(x, [0, 1], y, [1], [0]), lambda x, y: torch.einsum(x, [0, 1], y, [1], [0]), a, v)
    check(lambda x, y: dg.einsum("ij,j", [x, y]), lambda x, y: torch.einsum("ij,j", [x, y]), a, v)
    check(lambda x: dg.einsum("ij->", x), lambda x: torch.einsum("ij->", x), np.ones((2, 3), np.int64))
    bad = [
        ("ij,j->i", [(2, 3), (3,)], "float64"),
        ("ii->i", [(2, 3)], None),
        ("i,i", [(2,), (3,)], None),
        ("ij->ji->", [(2, 3)], None),
        ("i1", [(2, 3)], None),
        ("ij", [(2, 3, 4)], None),
        ("i->j", [(2,)], None),
        ("ij,jk", [(2, 3)], None),
        ("i->ii", [(2,)], None),
    ]
    for eq, shapes, dtype in bad:
        ops_d = [dg.ones(*s, dtype=dg.float64 if dtype and k else dg.float32) for k, s in enumerate(shapes)]
        ops_t = [torch.ones(*s, dtype=torch.float64 if dtype and k else torch.float32) for k, s in enumerate(shapes)]
        with pytest.raises((RuntimeError, ValueError)) as torch_err:
            torch.einsum(eq, *ops_t)
        with pytest.raises(torch_err.type):
            dg.einsum(eq, *ops_d)


def test_tensordot():
    a, b = randn((2, 3, 4), 1), randn((3, 4, 5), 2)
    check(dg.tensordot, torch.tensordot, a, b)
    check(lambda x, y: dg.tensordot(x, y, 1), lambda x, y: torch.tensordot(x, y, 1), a, randn((4, 2), 3))
    check(
        lambda x, y: dg.tensordot(x, y, ([0, 2], [0, 1])),
        lambda x, y: torch.tensordot(x, y, ([0, 2], [0, 1])),
        a,
        randn((2, 4, 3), 4),
    )
    check(lambda x, y: dg.tensordot(x, y, 0), lambda x, y: torch.tensordot(x, y, 0), randn((2,), 5), randn((3,), 6))
    with pytest.raises(RuntimeError):
        dg.tensordot(dg.ones(2, 3), dg.ones(2, 3), 1)


@pytest.mark.filterwarnings("ignore:Using torch.cross without specifying the dim")
@pytest.mark.parametrize("device", devices)
def test_named_products(device):
    m, n, v, w = randn((2, 3), 1), randn((3, 4), 2), randn((3,), 3), randn((2,), 4)
    b1, b2 = randn((2, 2, 3), 5), randn((2, 3, 4), 6)
    cases = [
        ("mm", (m, n)),
        ("bmm", (b1, b2)),
        ("mv", (m, v)),
        ("dot", (v, v * 2)),
        ("vdot", (v, v)),
        ("outer", (w, v)),
        ("ger", (w, v)),
        ("inner", (m, randn((4, 3), 7))),
        ("kron", (m, randn((2, 2), 8))),
        ("kron", (v, m)),
        ("addmm", (randn((4,), 9), m, n)),
        ("baddbmm", (randn((2, 1, 4), 10), b1, b2)),
        ("addbmm", (randn((2, 4), 11), b1, b2)),
        ("addmv", (w, m, v)),
        ("addr", (randn((2, 3), 12), w, v)),
        ("cross", (randn((4, 3), 13), randn((4, 3), 14))),
    ]
    for name, args in cases:
        check(getattr(dg, name), getattr(torch, name), *args, device=device)
        check(
            lambda *a, name=name: getattr(a[0], name)(*a[1:]),
            lambda *a, name=name: getattr(a[0], name)(*a[1:]),
            *args,
            device=device,
        )
    for beta, alpha in ((0.5, 2.0), (0, 1.5)):
        nan_input = np.full((2, 4), np.nan, np.float32) if beta == 0 else randn((2, 4), 15)
        check(
            lambda i, a, b, alpha=alpha, beta=beta: dg.addmm(i, a, b, beta=beta, alpha=alpha),
            lambda i, a, b, alpha=alpha, beta=beta: torch.addmm(i, a, b, beta=beta, alpha=alpha),
            nan_input,
            m,
            n,
            device=device,
        )


def test_named_products_refuse_what_torch_refuses():
    cases = [
        lambda L: L.bmm(L.ones(2, 3, 4), L.ones(2, 4)),
        lambda L: L.bmm(L.ones(2, 3, 4), L.ones(3, 4, 5)),
        lambda L: L.mm(L.ones(2, 3), L.ones(4, 5)),
        lambda L: L.mm(L.ones(2, 3), L.ones(3)),
        lambda L: L.mv(L.ones(2, 3), L.ones(4)),
        lambda L: L.dot(L.ones(3), L.ones(4)),
        lambda L: L.dot(L.ones(3), L.ones(3, dtype=L.float64)),
        lambda L: L.outer(L.ones(3, 1), L.ones(2)),
        lambda L: L.addmm(L.ones(4), L.ones(2, 3), L.ones(3, 3)),
        lambda L: L.cdist(L.ones(2, 3), L.ones(4, 2)),
    ]
    for case in cases:
        with pytest.raises(RuntimeError):
            case(torch)
        with pytest.raises(RuntimeError):
            case(dg)


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, float("inf"), 0.0])
def test_cdist(p):
    x1, x2 = randn((2, 5, 3), 1), randn((2, 4, 3), 2)
    x2[0, 0] = x1[0, 0]  # a zero distance: gradient 0 there, as torch's
    check(lambda a, b: dg.cdist(a, b, p), lambda a, b: torch.cdist(a, b, p), x1, x2)


@pytest.mark.parametrize("device", devices)
def test_diagonals_and_triangles(device):
    x = randn((3, 4), 1)
    for offset in (0, 1, -2, 5):
        check(
            lambda t, offset=offset: dg.diagonal(t, offset),
            lambda t, offset=offset: torch.diagonal(t, offset),
            x,
            device=device,
        )
        check(
            lambda t, offset=offset: dg.diag(t, offset),
            lambda t, offset=offset: torch.diag(t, offset),
            x,
            device=device,
        )
        check(lambda t, offset=offset: t.tril(offset), lambda t, offset=offset: t.tril(offset), x, device=device)
        check(
            lambda t, offset=offset: dg.triu(t, offset),
            lambda t, offset=offset: torch.triu(t, offset),
            randn((2, 3, 3), 2),
            device=device,
        )
    y = randn((2, 3, 4), 3)
    check(lambda t: t.diagonal(1, 0, 2), lambda t: t.diagonal(1, 0, 2), y, device=device)
    check(lambda t: dg.diag(t, -1), lambda t: torch.diag(t, -1), randn((3,), 4), device=device)
    check(lambda t: dg.diag_embed(t, 1, 0, 2), lambda t: torch.diag_embed(t, 1, 0, 2), randn((2, 3), 5), device=device)
    check(dg.diagflat, torch.diagflat, randn((2, 2), 6), device=device)
    check(dg.trace, torch.trace, x, device=device)
    check(dg.trace, torch.trace, np.arange(9).reshape(3, 3))
    check(lambda: dg.tril_indices(3, 4, 1), lambda: torch.tril_indices(3, 4, 1))
    check(lambda: dg.triu_indices(4, 3, -1), lambda: torch.triu_indices(4, 3, -1))
    with pytest.raises(RuntimeError):
        dg.tril(dg.ones(3))


def test_diagonal_is_a_writable_view_like_torchs():
    def fn(x):
        y = x * 1
        y.diagonal().mul_(3)  # writes y's diagonal through the view
        z = x.clone()
        z.fill_diagonal_(0.5)
        return y + z

    check(fn, fn, randn((3, 3), 1))
    t = dg.zeros(3, 3)
    t.diagonal().fill_(1)
    assert t.tolist() == dg.eye(3).tolist()
    tall = np.zeros((7, 3), np.float32)
    check(lambda a: a.clone().fill_diagonal_(2.0, wrap=True), lambda a: a.clone().fill_diagonal_(2.0, wrap=True), tall)
    check(lambda a: a.clone().fill_diagonal_(2.0), lambda a: a.clone().fill_diagonal_(2.0), tall)
