"""Type promotion follows torch 2.13 for every binary operator, dtype pair and operand kind.

For each operator, each pair of dtypes and each mix of a tensor with dimensions, a 0-d tensor and a
Python number, deepgrad must return torch's dtype and values — or raise torch's exception type (bool
subtraction, integer division by zero, bitwise ops on floats...). Nothing is silently upcast to float64.
"""

from __future__ import annotations

import itertools
import operator as op

import numpy as np
import pytest

import deepgrad as dg

torch = pytest.importorskip("torch")

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]
OPS = {"add": op.add, "sub": op.sub, "mul": op.mul, "truediv": op.truediv, "floordiv": op.floordiv,
       "mod": op.mod, "pow": op.pow, "lt": op.lt, "le": op.le, "eq": op.eq, "ne": op.ne, "and": op.and_,
       "or": op.or_, "xor": op.xor, "lshift": op.lshift, "rshift": op.rshift}
SCALARS = [2, -3, 2.5, True, 300]


def _make(lib, dtype, shape, seed):
    a = np.array([[1, 2, 3], [4, 5, 6]][: shape[0]] if shape else 3) + seed
    a = (a % 2 == 0) if dtype == "bool" else a.astype(dtype)
    return lib.tensor(a)


def _result(f, *args):
    try:
        r = f(*args)
    except Exception as e:  # noqa: BLE001 - the exception type is compared
        for kind in (NotImplementedError, RuntimeError, TypeError, ValueError, ZeroDivisionError):
            if isinstance(e, kind):
                return "error", kind
        return "error", type(e)
    return str(r.dtype).split(".")[-1], np.asarray(r.numpy(), dtype=np.float64)


def _check(name, f, t_args, d_args, failures):
    t, d = _result(f, *t_args), _result(f, *d_args)
    ok = t[0] == d[0] and (t[1] is d[1] if t[0] == "error" else
                           np.array_equal(t[1], d[1], equal_nan=True) or np.allclose(t[1], d[1], rtol=1e-3))
    if not ok:
        failures.append(f"{name}: torch {t[0]} {t[1]!r} vs deepgrad {d[0]} {d[1]!r}")


@pytest.mark.parametrize("name", list(OPS))
def test_tensor_tensor_promotion_matches_torch(name):
    f, failures = OPS[name], []
    for d1, d2 in itertools.product(DTYPES, DTYPES):
        for s1, s2 in [((2,), (2,)), ((2,), ()), ((), (2,))]:
            _check(f"{d1}{list(s1)} {name} {d2}{list(s2)}", f, (_make(torch, d1, s1, 0), _make(torch, d2, s2, 1)),
                   (_make(dg, d1, s1, 0), _make(dg, d2, s2, 1)), failures)
    assert not failures, f"{len(failures)} differences, e.g.\n" + "\n".join(failures[:15])


@pytest.mark.parametrize("name", list(OPS))
def test_tensor_scalar_promotion_matches_torch(name):
    f, failures = OPS[name], []
    for d1, c, s1, rev in itertools.product(DTYPES, SCALARS, [(2,), ()], (False, True)):
        g = (lambda a, b: f(b, a)) if rev else f
        _check(f"{'rev ' if rev else ''}{d1}{list(s1)} {name} {c!r}", g, (_make(torch, d1, s1, 0), c),
               (_make(dg, d1, s1, 0), c), failures)
    assert not failures, f"{len(failures)} differences, e.g.\n" + "\n".join(failures[:15])


UNARY = {"exp": lambda t: t.exp(), "sqrt": lambda t: t.sqrt(), "neg": lambda t: -t, "abs": lambda t: t.abs(),
         "sum": lambda t: t.sum(), "sum_dim": lambda t: t.sum(dim=0), "mean": lambda t: t.mean(),
         "max": lambda t: t.max(), "clamp_float": lambda t: t.clamp(0.5, 2.5), "clamp_int": lambda t: t.clamp(1, 2),
         "where_scalars": lambda t: (dg if isinstance(t, dg.Tensor) else torch).where(t > 2, 1.5, 0),
         "where_ints": lambda t: (dg if isinstance(t, dg.Tensor) else torch).where(t > 2, 1, 0),
         "masked_fill": lambda t: t.masked_fill(t > 2, 1.5), "invert": lambda t: ~t, "sign": lambda t: t.sign(),
         "div_floor": lambda t: t.div(2, rounding_mode="floor"),
         "div_trunc": lambda t: t.div(-2.5, rounding_mode="trunc"),
         "norm": lambda t: t.norm()}


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_and_reduction_dtypes_match_torch(name):
    failures = []
    for d, s in itertools.product(DTYPES, [(2,), ()]):
        _check(f"{name}({d}{list(s)})", UNARY[name], (_make(torch, d, s, 0),), (_make(dg, d, s, 0),), failures)
    assert not failures, "\n".join(failures[:15])


@pytest.mark.parametrize("args,kwargs", [
    ((5,), {}), ((1, 4), {}), ((0, 1, 0.1), {}), ((0.5, 3), {}), ((10, 0, -3), {}), ((0, 2.5, 0.5), {"dtype": "int64"}),
    ((-1.5, 3, 1), {"dtype": "int32"}), ((0, 5), {"dtype": "float64"}), ((0, 5, 0), {}), ((5, 0, 1), {}),
])
def test_arange_matches_torch_value_for_value(args, kwargs):
    t = _result(lambda: torch.arange(*args, **{k: getattr(torch, v) for k, v in kwargs.items()}))
    d = _result(lambda: dg.arange(*args, **{k: getattr(dg, v) for k, v in kwargs.items()}))
    assert t[0] == d[0] and (t[1] is d[1] if t[0] == "error" else np.array_equal(t[1], d[1])), (t, d)


@pytest.mark.parametrize("args,dtype", [((0, 10, 5), None), ((0, 10, 5), "int64"), ((0, 1, 7), "int64"),
                                        ((-3, 7, 4), "int32"), ((10, 0, 6), "int64"), ((0, 100, 7), "uint8"),
                                        ((0.0, 1.0, 11), None), ((1, 1, 1), None), ((0, 1, 0), None)])
def test_linspace_matches_torch_value_for_value(args, dtype):
    t = _result(lambda: torch.linspace(*args, dtype=getattr(torch, dtype) if dtype else None))
    d = _result(lambda: dg.linspace(*args, dtype=getattr(dg, dtype) if dtype else None))
    assert t[0] == d[0] and np.array_equal(t[1], d[1]), (t, d)


def test_float32_stays_float32_through_a_training_expression():
    x = dg.randn(4, 3)
    w = dg.randn(3, 2, requires_grad=True)
    y = (x @ w * 0.5 + 1 - 2.0 / (1 + x.sum(dim=1, keepdim=True).abs()) ** 2) % 3
    assert y.dtype == dg.float32
    y.sum().backward()
    assert w.grad.dtype == dg.float32
