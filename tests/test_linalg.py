"""deepgrad.linalg against torch.linalg: inv, det (also at singular matrices), slogdet/logdet, solve (batches,
vectors, broadcasting), cholesky (lower/upper), svdvals, vector/matrix norms, matrix_power, multi_dot,
cross, vecdot — values, gradients (float32 vs torch, float64 gradcheck) and LinAlgError."""

import numpy as np
import pytest
import torch
from core_parity import check, devices, randn

import deepgrad as dg
from deepgrad.autograd import gradcheck


def well_conditioned(shape, seed):
    """Random matrices plus a multiple of the identity: safely invertible."""
    a = randn(shape, seed)
    return (a + 3 * np.eye(shape[-1], dtype=np.float32)).astype(np.float32)


def spd(shape, seed):
    a = randn(shape, seed)
    return (a @ np.swapaxes(a, -1, -2) + shape[-1] * np.eye(shape[-1], dtype=np.float32)).astype(np.float32)


@pytest.mark.parametrize("device", devices)
def test_inverse_det_slogdet_logdet(device):
    for shape in ((3, 3), (2, 4, 4)):
        a = well_conditioned(shape, 1)
        for name in ("inv", "det", "slogdet"):
            check(getattr(dg.linalg, name), getattr(torch.linalg, name), a, device=device, grad_rtol=1e-3)
        check(dg.inverse, torch.inverse, a, device=device, grad_rtol=1e-3)
        check(lambda t: t.det() + t.logdet(), lambda t: t.det() + t.logdet(), a, device=device, grad_rtol=1e-3)
    singular = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]], np.float32)
    check(dg.linalg.det, torch.linalg.det, singular)  # torch's gradient there is 0 (not the cofactor matrix)
    near = singular + np.float32(1e-3) * np.eye(3, dtype=np.float32)
    check(dg.linalg.det, torch.linalg.det, near, grad_rtol=1e-3, grad_atol=1e-4)
    check(dg.logdet, torch.logdet, -np.eye(3, dtype=np.float32), backward=False)  # negative det: nan


def test_matrix_gradchecks():
    a = dg.tensor(well_conditioned((3, 3), 2).astype(np.float64), requires_grad=True)
    b = dg.tensor(randn((3, 2), 3).astype(np.float64), requires_grad=True)
    s = dg.tensor(spd((3, 3), 4).astype(np.float64), requires_grad=True)
    assert gradcheck(dg.linalg.inv, [a])
    assert gradcheck(dg.linalg.det, [a])
    assert gradcheck(lambda t: dg.linalg.slogdet(t).logabsdet, [a])
    assert gradcheck(dg.linalg.solve, [a, b])
    assert gradcheck(lambda t: dg.linalg.cholesky((t + t.mT) / 2), [s])
    assert gradcheck(dg.linalg.svdvals, [b])
    assert gradcheck(lambda t: dg.linalg.matrix_norm(t, "nuc"), [b])
    nearly_singular = dg.tensor(np.array([[1.0, 2.0], [2.0, 4.0 + 1e-6]]), requires_grad=True)
    assert gradcheck(dg.linalg.det, [nearly_singular])


@pytest.mark.parametrize("device", devices)
def test_solve_batches_and_vectors(device):
    a = well_conditioned((2, 3, 3), 1)
    for b in (randn((2, 3, 4), 2), randn((3, 4), 3), randn((2, 3), 4), randn((3,), 5)):
        check(dg.linalg.solve, torch.linalg.solve, a, b, device=device, grad_rtol=1e-3)
    check(lambda x, y: dg.linalg.solve(x, y, left=False), lambda x, y: torch.linalg.solve(x, y, left=False),
          a[0], randn((4, 3), 6))
    with pytest.raises(RuntimeError):
        dg.linalg.solve(dg.eye(3), dg.ones(4))


@pytest.mark.parametrize("device", devices)
def test_cholesky_and_singular_values(device):
    for upper in (False, True):

        def fn(lib, t, upper=upper):
            return lib.linalg.cholesky((t + t.mT) / 2, upper=upper)

        check(lambda t, fn=fn: fn(dg, t), lambda t, fn=fn: fn(torch, t), spd((2, 3, 3), 1), device=device,
              grad_rtol=1e-3)
    check(lambda t: t.cholesky(), lambda t: torch.linalg.cholesky(t), spd((3, 3), 2), requires_grad=[False])
    check(dg.linalg.svdvals, torch.linalg.svdvals, randn((2, 4, 3), 3), device=device, grad_rtol=1e-3)
    for error_case in (lambda L: L.linalg.cholesky(L.tensor([[1.0, 2.0], [2.0, 1.0]])),
                       lambda L: L.linalg.inv(L.zeros(2, 2))):
        with pytest.raises(RuntimeError):
            error_case(torch)
        with pytest.raises(dg.linalg.LinAlgError):
            error_case(dg)


def test_norms():
    x = randn((3, 4), 1)
    x[0, 1] = 0.0
    for ord in (2, 1, 3, 0.5, float("inf"), -float("inf"), 0, -1):
        check(lambda t, o=ord: dg.linalg.vector_norm(t, o), lambda t, o=ord: torch.linalg.vector_norm(t, o), x,
              grad_rtol=1e-3)
        check(lambda t, o=ord: dg.linalg.vector_norm(t, o, dim=1, keepdim=True),
              lambda t, o=ord: torch.linalg.vector_norm(t, o, dim=1, keepdim=True), x, grad_rtol=1e-3)
    for ord in ("fro", "nuc", 1, -1, 2, -2, float("inf"), -float("inf")):
        check(lambda t, o=ord: dg.linalg.matrix_norm(t, o), lambda t, o=ord: torch.linalg.matrix_norm(t, o),
              randn((2, 3, 4), 2), grad_rtol=1e-3)
        check(lambda t, o=ord: dg.linalg.matrix_norm(t, o, dim=(0, 2), keepdim=True),
              lambda t, o=ord: torch.linalg.matrix_norm(t, o, dim=(0, 2), keepdim=True), randn((2, 3, 4), 3),
              grad_rtol=1e-3)
    for kw in ({}, {"ord": 1}, {"ord": "fro"}, {"dim": 1}, {"dim": (0, 1)}, {"ord": 3, "dim": 0}):
        check(lambda t, kw=kw: dg.linalg.norm(t, **kw), lambda t, kw=kw: torch.linalg.norm(t, **kw), x,
              grad_rtol=1e-3)


def test_matrix_power_multi_dot_cross_vecdot():
    a = well_conditioned((2, 3, 3), 1) / 3
    for n in (0, 1, 2, 5, -1, -3):
        check(lambda t, n=n: dg.linalg.matrix_power(t, n), lambda t, n=n: torch.linalg.matrix_power(t, n), a,
              grad_rtol=1e-3)
    check(lambda t: t.matrix_power(3), lambda t: t.matrix_power(3), a[0])
    mats = (randn((2, 3), 1), randn((3, 4), 2), randn((4,), 3))
    check(lambda *m: dg.linalg.multi_dot(m), lambda *m: torch.linalg.multi_dot(m), *mats)
    check(lambda u, v: dg.linalg.cross(u, v), lambda u, v: torch.linalg.cross(u, v), randn((4, 3), 4), randn((1, 3), 5))
    check(lambda u, v: dg.linalg.vecdot(u, v, dim=0), lambda u, v: torch.linalg.vecdot(u, v, dim=0),
          randn((3, 2), 6), randn((3, 2), 7))
    check(lambda t: dg.linalg.diagonal(t, offset=1), lambda t: torch.linalg.diagonal(t, offset=1), a)
