"""The extra elementwise maths against torch: rounding (zero gradients), reciprocals, logs and exponentials
in other bases, trigonometric/hyperbolic functions and inverses, erf/erfinv/lgamma/digamma, and the binary
ones (atan2, hypot, logaddexp, xlogy, copysign, fmod, lerp, fmax/fmin, isclose...) — values, dtypes of
integer inputs, gradients (float32 vs torch, float64 gradcheck) and the errors torch raises."""

import numpy as np
import pytest
import torch
from core_parity import check, devices, randn

import deepgrad as dg
from deepgrad.autograd import gradcheck


def normal(shape, seed):
    return randn(shape, seed)


def unit(shape, seed):
    return randn(shape, seed, low=-0.9, high=0.9)


def positive(shape, seed):
    return randn(shape, seed, low=0.3, high=3.0)


def above_one(shape, seed):
    return randn(shape, seed, low=1.2, high=4.0)


def halves(shape, seed):
    """Values on and around .5 boundaries, negative and positive: where rounding rules differ."""
    return (np.random.default_rng(seed).integers(-8, 9, size=shape) * 0.5 + 0.125 * (seed % 2)).astype(np.float32)


UNARY = {  # name: (input maker, also run on float64 gradcheck)
    "floor": halves,
    "ceil": halves,
    "trunc": halves,
    "round": halves,
    "frac": halves,
    "fix": halves,
    "rsqrt": positive,
    "reciprocal": normal,
    "log2": positive,
    "log10": positive,
    "exp2": normal,
    "expm1": normal,
    "tan": unit,
    "asin": unit,
    "acos": unit,
    "atan": normal,
    "sinh": normal,
    "cosh": normal,
    "asinh": normal,
    "acosh": above_one,
    "atanh": unit,
    "erf": normal,
    "erfc": normal,
    "erfinv": unit,
    "lgamma": positive,
    "digamma": positive,
    "sinc": normal,
    "deg2rad": normal,
    "rad2deg": normal,
    "logit": lambda s, k: randn(s, k, low=0.05, high=0.95),
    "arcsin": unit,
    "arctanh": unit,
    "nan_to_num": normal,
    "positive": normal,
    "signbit": normal,
    "isposinf": normal,
    "isneginf": normal,
}


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("name", list(UNARY))
def test_unary_maths_match_torch(name, device):
    make = UNARY[name]
    for shape, seed in (((3, 4), 1), ((), 2), ((0, 2), 3)):
        check(getattr(dg, name), getattr(torch, name), make(shape, seed), device=device)
        check(lambda t: getattr(t, name)(), lambda t: getattr(t, name)(), make(shape, seed + 10), device=device)


@pytest.mark.parametrize(
    "name",
    [
        "rsqrt",
        "log2",
        "log10",
        "exp2",
        "expm1",
        "tan",
        "asin",
        "acos",
        "atan",
        "sinh",
        "cosh",
        "asinh",
        "acosh",
        "atanh",
        "erf",
        "erfc",
        "erfinv",
        "lgamma",
        "digamma",
        "sinc",
        "logit",
        "reciprocal",
        "frac",
    ],
)
def test_unary_maths_gradcheck(name):
    make = UNARY[name]
    x = dg.tensor(make((2, 3), 5).astype(np.float64), requires_grad=True)
    assert gradcheck(getattr(dg, name), [x])


def test_integer_inputs_compute_in_float_or_stay_integer_as_torch():
    ints, bools = np.array([1, 2, 3], np.int64), np.array([True, False, True])
    for name in ("rsqrt", "reciprocal", "log2", "exp2", "tan", "erf", "atan", "deg2rad", "lgamma"):
        for x in (ints, bools):
            check(getattr(dg, name), getattr(torch, name), x)
    for name in ("floor", "ceil", "trunc", "round", "nan_to_num"):
        check(getattr(dg, name), getattr(torch, name), ints)
    for name in ("floor", "frac"):
        with pytest.raises(NotImplementedError):
            getattr(dg, name)(dg.tensor([True]))
        with pytest.raises(NotImplementedError):
            getattr(torch, name)(torch.tensor([True]))
    with pytest.raises(NotImplementedError):
        dg.frac(dg.tensor([1, 2]))
    with pytest.raises(RuntimeError):
        dg.positive(dg.tensor([True]))


@pytest.mark.parametrize("decimals", [0, 1, 2, -1])
def test_round_to_decimals(decimals):
    x = np.array([1.2345, -2.675, 125.5, 0.5, 1.5, 2.5, -0.05, 99.95], np.float32)
    check(lambda t: dg.round(t, decimals=decimals), lambda t: torch.round(t, decimals=decimals), x)
    check(lambda t: t.round(decimals=decimals), lambda t: t.round(decimals=decimals), x)
    if decimals:
        with pytest.raises(NotImplementedError):
            dg.round(dg.tensor([125]), decimals=decimals)


def test_nan_to_num_and_logit_eps():
    x = np.array([np.nan, np.inf, -np.inf, 1.5, -2.0], np.float32)
    check(dg.nan_to_num, torch.nan_to_num, x)
    check(lambda t: t.nan_to_num(0.5, 7.0, -7.0), lambda t: t.nan_to_num(0.5, 7.0, -7.0), x)
    p = np.array([0.0, 0.05, 0.5, 0.97, 1.0], np.float32)
    check(lambda t: dg.logit(t, 0.1), lambda t: torch.logit(t, 0.1), p)


# ----------------------------------------------------------------------------- binary
BINARY = {
    "atan2": (normal, normal),
    "hypot": (normal, normal),
    "logaddexp": (normal, normal),
    "logaddexp2": (normal, normal),
    "xlogy": (normal, positive),
    "copysign": (normal, normal),
    "fmod": (normal, positive),
    "fmax": (normal, normal),
    "fmin": (normal, normal),
    "float_power": (positive, normal),
}


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("name", list(BINARY))
def test_binary_maths_match_torch_with_broadcasting(name, device):
    make_a, make_b = BINARY[name]
    for sa, sb in (((3, 4), (3, 4)), ((2, 1, 3), (4, 1)), ((), (3,)), ((2, 3), ())):
        check(getattr(dg, name), getattr(torch, name), make_a(sa, 1), make_b(sb, 2), device=device)
    check(
        lambda a, b: getattr(a, name)(b),
        lambda a, b: getattr(a, name)(b),
        make_a((3,), 3),
        make_b((3,), 4),
        device=device,
    )


@pytest.mark.parametrize("name", ["atan2", "hypot", "logaddexp", "logaddexp2", "xlogy", "copysign", "fmod", "fmax"])
def test_binary_maths_gradcheck(name):
    make_a, make_b = BINARY[name]
    a = dg.tensor(make_a((2, 3), 6).astype(np.float64), requires_grad=True)
    b = dg.tensor(make_b((3,), 7).astype(np.float64), requires_grad=True)
    assert gradcheck(getattr(dg, name), [a, b])


def test_binary_edge_values_ties_zeros_and_nan():
    a = np.array([0.0, -0.0, 1.0, np.nan, 2.0, 0.0], np.float32)
    b = np.array([-0.0, 1.0, 1.0, 3.0, np.nan, np.nan], np.float32)
    for name in ("copysign", "fmax", "fmin", "xlogy", "atan2", "hypot"):
        check(getattr(dg, name), getattr(torch, name), a, b)
    check(lambda x: dg.copysign(x, -1.0), lambda x: torch.copysign(x, -1.0), a)
    check(lambda x: dg.xlogy(2.0, x), lambda x: torch.xlogy(2.0, x), np.abs(b))
    check(lambda x: dg.fmod(x, 1.5), lambda x: torch.fmod(x, 1.5), randn((5,), 3) * 4)


def test_binary_integer_promotion_and_refusals():
    i = np.array([5, -7, 9], np.int64)
    j = np.array([2, 3, -4], np.int32)
    for name in ("atan2", "copysign", "xlogy", "fmod", "fmax", "gcd", "lcm", "float_power", "ldexp"):
        check(getattr(dg, name), getattr(torch, name), i, j)
    for name in ("hypot", "logaddexp", "logaddexp2"):
        with pytest.raises(NotImplementedError):
            getattr(torch, name)(torch.tensor(i), torch.tensor(j))
        with pytest.raises(NotImplementedError):
            getattr(dg, name)(dg.tensor(i), dg.tensor(j))
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        dg.fmod(dg.tensor([3]), 0)
    with pytest.raises(TypeError):
        dg.atan2(dg.tensor([1.0]), 2)
    with pytest.raises(RuntimeError):
        dg.hypot(dg.ones(2, 3), dg.ones(4))


def test_lerp_with_number_and_tensor_weights():
    s, e, w = randn((2, 3), 1), randn((2, 3), 2), randn((3,), 3, low=-0.5, high=1.5)
    check(lambda a, b: dg.lerp(a, b, 0.3), lambda a, b: torch.lerp(a, b, 0.3), s, e)
    check(lambda a, b: a.lerp(b, 0.8), lambda a, b: a.lerp(b, 0.8), s, e)
    check(dg.lerp, torch.lerp, s, e, w)
    args = [dg.tensor(x.astype(np.float64), requires_grad=True) for x in (s, e, w)]
    assert gradcheck(dg.lerp, args)
    with pytest.raises(RuntimeError, match="expected dtype"):
        dg.lerp(dg.ones(2), dg.ones(2, dtype=dg.float64), 0.5)


def test_clamp_min_max_addcmul_addcdiv():
    x, a, b = randn((2, 3), 1), randn((2, 3), 2), randn((3,), 3, low=0.5, high=2.0)
    check(lambda t: dg.clamp_min(t, 0.2), lambda t: torch.clamp_min(t, 0.2), x)
    check(lambda t: t.clamp_max(-0.1), lambda t: t.clamp_max(-0.1), x)
    check(lambda p, q, r: dg.addcmul(p, q, r, value=0.5), lambda p, q, r: torch.addcmul(p, q, r, value=0.5), x, a, b)
    check(lambda p, q, r: p.addcdiv(q, r, value=-2), lambda p, q, r: p.addcdiv(q, r, value=-2), x, a, b)

    def inplace(p, q, r):
        p = p * 1
        p.addcmul_(q, r, value=0.1).addcdiv_(q, r).clamp_min_(-0.5)
        return p

    check(inplace, inplace, x, a, b)


def test_isclose_allclose_equal():
    a = np.array([1.0, 2.0, np.inf, np.nan, -np.inf, 1e-9], np.float32)
    b = np.array([1.0 + 1e-6, 2.1, np.inf, np.nan, np.inf, 0.0], np.float32)
    for kw in ({}, {"equal_nan": True}, {"rtol": 0.1, "atol": 0.0}):
        check(lambda x, y, kw=kw: dg.isclose(x, y, **kw), lambda x, y, kw=kw: torch.isclose(x, y, **kw), a, b)
        assert dg.allclose(dg.tensor(a), dg.tensor(b), **kw) == torch.allclose(torch.tensor(a), torch.tensor(b), **kw)
        assert dg.tensor(a).allclose(dg.tensor(a), equal_nan=True)
    check(dg.isclose, torch.isclose, np.array([1, 5, 7]), np.array([1, 6, 7]))
    with pytest.raises(RuntimeError, match="Float did not match Double"):
        dg.isclose(dg.ones(2), dg.ones(2, dtype=dg.float64))
    with pytest.raises(RuntimeError):
        torch.isclose(torch.ones(2), torch.ones(2, dtype=torch.float64))
    assert dg.equal(dg.tensor([1, 2]), dg.tensor([1, 2])) and not dg.equal(dg.ones(2), dg.ones(3))
    assert dg.tensor([1.0, 2.0]).equal(dg.tensor([1.0, 2.0]))


def test_rounding_gradients_are_zero_and_recorded():
    for name in ("floor", "ceil", "trunc", "round"):
        x = dg.tensor([0.3, 1.7], requires_grad=True)
        y = getattr(dg, name)(x)
        assert y.requires_grad
        y.sum().backward()
        assert x.grad.tolist() == [0.0, 0.0]


def test_inplace_unary_forms():
    def chain(x):
        y = x * 1
        y.floor_()
        z = x * 2
        z.expm1_()  # saves its output: nothing may write z again before the backward
        w = x.abs() + 0.5
        w.log2_().rsqrt_()  # log2 saved its input: the in-place op keeps a private copy of it
        return y + z * 1 + w

    check(chain, chain, randn((3, 2), 4))
