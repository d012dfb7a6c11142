"""matmul (1-D vector rules, batched, broadcast batch dims, empty dims) and linear against torch."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from core_parity import check, devices, randn

import deepgrad as dg
import deepgrad.functional as F

MATMUL_SHAPES = [
    ((3,), (3,)),  # dot product: a 0-d result
    ((3,), (3, 4)),  # vector @ matrix
    ((2, 3), (3,)),  # matrix @ vector
    ((2, 3), (3, 4)),
    ((1, 3), (3, 1)),
    ((5, 2, 3), (5, 3, 4)),  # batched
    ((2, 1, 2, 3), (4, 3, 2)),  # broadcast batch dims
    ((4, 2, 3), (3, 2)),  # batch @ matrix: the matrix gradient sums over the batch
    ((2, 3), (4, 3, 2)),
    ((3,), (2, 3, 4)),  # vector @ batch
    ((2, 4, 3), (3,)),  # batch @ vector
    ((0, 3), (3, 2)),  # empty rows
    ((2, 0), (0, 3)),  # empty inner dim: zeros
    ((2, 3), (3, 0)),
]


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("shape_a, shape_b", MATMUL_SHAPES)
def test_matmul(shape_a, shape_b, device):
    a, b = randn(shape_a, 1), randn(shape_b, 2)
    check(lambda x, y: x @ y, lambda x, y: x @ y, a, b, device=device)
    check(lambda x, y: dg.matmul(x, y), lambda x, y: torch.matmul(x, y), a, b, device=device,
          requires_grad=[True, False])
    check(lambda x, y: x.matmul(y), lambda x, y: x.matmul(y), a, b, device=device, requires_grad=[False, True])


def test_mm_bmm_and_promotion():
    check(lambda x, y: x.mm(y), lambda x, y: x.mm(y), randn((2, 3), 1), randn((3, 4), 2))
    check(lambda x, y: x.bmm(y), lambda x, y: x.bmm(y), randn((2, 2, 3), 1), randn((2, 3, 4), 2))
    check(lambda x, y: x @ y, lambda x, y: x @ y, randn((2, 3), 1, np.float64), randn((3, 4), 2, np.float64))


@pytest.mark.parametrize(
    "shape_a, shape_b",
    [((2, 3), (4, 5)), ((3,), (4,)), ((2, 3), (2,)), ((2, 2, 3), (3, 3, 4))],
)
def test_matmul_shape_errors_name_both_shapes(shape_a, shape_b):
    with pytest.raises(RuntimeError, match="matmul") as info:
        dg.zeros(*shape_a) @ dg.zeros(*shape_b)
    assert str(shape_a) in str(info.value) and str(shape_b) in str(info.value)
    with pytest.raises(RuntimeError):
        torch.zeros(*shape_a) @ torch.zeros(*shape_b)


def test_matmul_rejects_0d():
    with pytest.raises(RuntimeError, match="matmul"):
        dg.tensor(2.0) @ dg.ones(2)


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("x_shape", [(4, 3), (3,), (2, 5, 3), (0, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear(x_shape, bias, device):
    arrays = [randn(x_shape, 1), randn((2, 3), 2)] + ([randn((2,), 3)] if bias else [])
    check(F.linear, TF.linear, *arrays, device=device)


def test_linear_shape_error():
    with pytest.raises(RuntimeError, match=r"linear.*\(4, 2\).*\(2, 3\)"):
        F.linear(dg.zeros(4, 2), dg.zeros(2, 3))
