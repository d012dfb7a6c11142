"""Elementwise ops against torch: arithmetic (with broadcasting, reflected and in-place forms),
unary maths, activations, selection (where / clamp / maximum / minimum), comparisons, dtype
promotion and the errors of mismatched operands."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from core_parity import SETTINGS, broadcast_pairs, check, devices, host, randn, seeds, shapes
from hypothesis import given
from hypothesis.extra import numpy as hnp

import deepgrad as dg
import deepgrad.functional as F


def normal(shape, seed):
    return randn(shape, seed)


def positive(shape, seed):
    return randn(shape, seed, low=0.5, high=2.0)


def nonzero(shape, seed):
    rng = np.random.default_rng(seed)
    return (rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.5, 2.0, size=shape)).astype(np.float32)


def with_zeros(shape, seed):
    """Normal data where every third element is exactly 0 (kinks of abs, relu, ...)."""
    x = randn(shape, seed)
    x.reshape(-1)[::3] = 0.0
    return x


def small_ints(shape, seed):
    """Integer-valued floats in [-2, 2]: many exact ties and boundary hits."""
    return np.random.default_rng(seed).integers(-2, 3, size=shape).astype(np.float32)


# ----------------------------------------------------------------------------- binary
BINARY = {
    "add": (lambda a, b: a + b, normal, normal),
    "sub": (lambda a, b: a - b, normal, normal),
    "mul": (lambda a, b: a * b, normal, normal),
    "div": (lambda a, b: a / b, normal, nonzero),
    "pow": (lambda a, b: a**b, positive, normal),
    "add_alpha": (lambda a, b: a.add(b, alpha=2.5), normal, normal),
    "sub_alpha": (lambda a, b: a.sub(b, alpha=-0.5), normal, normal),
    "maximum": (lambda a, b: a.maximum(b), small_ints, small_ints),
    "minimum": (lambda a, b: a.minimum(b), small_ints, small_ints),
}


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("name", list(BINARY))
@SETTINGS
@given(pair=broadcast_pairs, seed=seeds)
def test_binary_parity(name, device, pair, seed):
    fn, make_a, make_b = BINARY[name]
    sa, sb = pair.input_shapes
    check(fn, fn, make_a(sa, seed), make_b(sb, seed + 7), device=device)


@pytest.mark.parametrize("device", devices)
def test_binary_one_side_requires_grad(device):
    a, b = randn((3, 1), 1), nonzero((4,), 2)
    for fn in (lambda x, y: x * y, lambda x, y: x / y, lambda x, y: y.abs() ** x, lambda x, y: x - y):
        check(fn, fn, a, b, device=device, requires_grad=[True, False])
        check(fn, fn, a, b, device=device, requires_grad=[False, True])


def test_maximum_ties_split_gradient_evenly():
    check(lambda a, b: a.maximum(b), lambda a, b: a.maximum(b),
          np.array([1.0, 2.0, 3.0], np.float32), np.array([1.0, 5.0, 3.0], np.float32))
    a = dg.tensor([2.0, 1.0], requires_grad=True)
    b = dg.tensor([2.0, 2.0], requires_grad=True)
    F.minimum(a, b).sum().backward()
    assert a.grad.tolist() == [0.5, 1.0] and b.grad.tolist() == [0.5, 0.0]


# ----------------------------------------------------------------------------- scalar and reflected forms
SCALAR_FORMS = {
    "x+2": (lambda x: x + 2, normal), "2+x": (lambda x: 2 + x, normal),
    "x-1.5": (lambda x: x - 1.5, normal), "1.5-x": (lambda x: 1.5 - x, normal),
    "x*3": (lambda x: x * 3, normal), "-0.5*x": (lambda x: -0.5 * x, normal),
    "x/4": (lambda x: x / 4, normal), "4/x": (lambda x: 4 / x, nonzero),
    "x**2": (lambda x: x**2, normal), "x**3": (lambda x: x**3, normal),
    "x**0.5": (lambda x: x**0.5, positive), "x**-1": (lambda x: x**-1, nonzero),
    "x**0": (lambda x: x**0, normal), "x**1": (lambda x: x**1, normal),
    "2**x": (lambda x: 2**x, normal), "0.5**x": (lambda x: 0.5**x, normal),
    "0**x": (lambda x: 0.0**x, lambda s, seed: np.abs(small_ints(s, seed))),
    "x/0": (lambda x: x / 0.0, nonzero),
    "square": (lambda x: x.square(), normal),
    "pos": (lambda x: +x, normal),
}


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("name", list(SCALAR_FORMS))
def test_scalar_and_reflected_forms(name, device):
    fn, make = SCALAR_FORMS[name]
    check(fn, fn, make((2, 3), 3), device=device)
    check(fn, fn, make((), 4), device=device)


@pytest.mark.parametrize("device", devices)
def test_inplace_forms_on_non_leaves_record_the_graph(device):
    def chain(x, y):
        h = x * 1.0
        h += y
        h *= y
        h -= x
        h /= y * y + 1.0
        h.add_(x, alpha=0.5).mul_(2.0).sub_(0.25)
        h.pow_(2)
        h.clamp_(-1.0, 1.5)
        h.div_(2.0)
        return h

    check(chain, chain, randn((3, 4), 6), randn((4,), 7), device=device)


def test_inplace_on_a_tensor_without_grad_from_a_tensor_with_grad():
    def fn(x, y):
        z = y * 0.0  # requires grad only through y
        base = torch.zeros(3) if isinstance(x, torch.Tensor) else dg.zeros(3)
        base += x  # base does not require grad, x does: base joins the graph
        return base * z + base

    check(fn, fn, randn((3,), 8), randn((3,), 9))


# ----------------------------------------------------------------------------- unary
UNARY = {
    "neg": (lambda x: -x, lambda x: -x, normal),
    "neg_fn": (dg.neg, torch.neg, normal),
    "abs": (F.abs, torch.abs, with_zeros),
    "exp": (F.exp, torch.exp, normal),
    "log": (F.log, torch.log, positive),
    "log1p": (F.log1p, torch.log1p, lambda s, seed: randn(s, seed, low=-0.9, high=3.0)),
    "sqrt": (F.sqrt, torch.sqrt, positive),
    "sin": (F.sin, torch.sin, normal),
    "cos": (F.cos, torch.cos, normal),
    "tanh": (F.tanh, torch.tanh, normal),
    "sigmoid": (F.sigmoid, torch.sigmoid, normal),
    "relu": (F.relu, torch.relu, with_zeros),
    "leaky_relu": (F.leaky_relu, TF.leaky_relu, with_zeros),
    "leaky_relu_0.2": (lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2), with_zeros),
    "elu": (F.elu, TF.elu, with_zeros),
    "elu_0.5": (lambda x: F.elu(x, alpha=0.5), lambda x: TF.elu(x, alpha=0.5), with_zeros),
    "gelu": (F.gelu, TF.gelu, normal),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh"), normal),
    "softplus": (F.softplus, TF.softplus, normal),
    "softplus_beta": (lambda x: F.softplus(x, beta=2.0, threshold=3.0),
                      lambda x: TF.softplus(x, beta=2.0, threshold=3.0), lambda s, seed: 3 * randn(s, seed)),
    "method_exp": (lambda x: x.exp(), lambda x: x.exp(), normal),
    "method_sigmoid": (lambda x: x.sigmoid(), lambda x: x.sigmoid(), normal),
    "method_tanh": (lambda x: x.tanh(), lambda x: x.tanh(), normal),
}


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("name", list(UNARY))
@SETTINGS
@given(shape=shapes, seed=seeds)
def test_unary_parity(name, device, shape, seed):
    dg_fn, torch_fn, make = UNARY[name]
    check(dg_fn, torch_fn, make(shape, seed), device=device)


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize(
    "dg_fn, torch_fn",
    [(F.sigmoid, torch.sigmoid), (F.tanh, torch.tanh), (F.softplus, TF.softplus),
     (lambda x: F.softplus(x, beta=0.5, threshold=50.0), lambda x: TF.softplus(x, beta=0.5, threshold=50.0)),
     (F.elu, TF.elu), (F.gelu, TF.gelu), (lambda x: F.gelu(x, approximate="tanh"),
                                          lambda x: TF.gelu(x, approximate="tanh"))],
)
def test_activations_are_stable_at_extremes(dg_fn, torch_fn):
    x = np.array([-1000.0, -100.0, -30.0, -1.0, 0.0, 1.0, 30.0, 100.0, 1000.0], np.float32)
    out, _ = check(dg_fn, torch_fn, x)
    assert np.isfinite(host(out)).all()


def test_integer_inputs_of_transcendental_functions_become_float():
    x = np.array([1, 2, 3], np.int64)
    for dg_fn, torch_fn in [(F.exp, torch.exp), (F.sqrt, torch.sqrt), (F.sigmoid, torch.sigmoid), (F.log, torch.log)]:
        check(dg_fn, torch_fn, x)
    for fn in (lambda t: -t, lambda t: t.abs(), lambda t: t.relu()):
        check(fn, fn, x)  # stay integer


# ----------------------------------------------------------------------------- selection
@pytest.mark.parametrize("device", devices)
@SETTINGS
@given(triple=hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, min_side=0, max_side=3),
       seed=seeds)
def test_where_parity(device, triple, seed):
    sc, sa, sb = triple.input_shapes
    cond = np.random.default_rng(seed).random(sc) > 0.5
    check(lambda c, a, b: dg.where(c, a, b), torch.where, cond, randn(sa, seed), randn(sb, seed + 1), device=device)


def test_where_with_scalars_and_method_form():
    x, c = randn((2, 3), 1), randn((2, 3), 2) > 0
    check(lambda c, x: dg.where(c, x, 0.0), lambda c, x: torch.where(c, x, 0.0), c, x)
    check(lambda c, x: dg.where(c, 1.5, x), lambda c, x: torch.where(c, 1.5, x), c, x)
    check(lambda c, x: x.where(c, -x), lambda c, x: x.where(c, -x), c, x)
    check(lambda c, x: x.masked_fill(c, 2.0), lambda c, x: x.masked_fill(c, 2.0), c, x)


CLAMPS = {
    "both": lambda x: x.clamp(-1.0, 1.0),
    "min": lambda x: x.clamp(min=0.0),
    "max": lambda x: x.clamp(max=0.5),
    "min_gt_max": lambda x: x.clamp(min=1.0, max=-1.0),
    "clip": lambda x: x.clip(-0.5, 1.0),
    "int_bounds": lambda x: x.clamp(-1, 1),
}


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("name", list(CLAMPS))
def test_clamp_gradient_passes_at_the_boundary_like_torch(name, device):
    x = np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0], np.float32)  # exact boundary hits
    check(CLAMPS[name], CLAMPS[name], x, device=device)
    check(CLAMPS[name], CLAMPS[name], small_ints((3, 4), 5), device=device)


def test_clamp_with_tensor_bounds_and_integer_input():
    x, lo, hi = small_ints((3, 4), 1), small_ints((4,), 2) - 1, small_ints((3, 1), 3) + 1
    check(lambda x, lo, hi: x.clamp(lo, hi), lambda x, lo, hi: x.clamp(lo, hi), x, lo, hi)
    ints = np.array([-3, 0, 3], np.int64)
    check(lambda t: t.clamp(-1, 1), lambda t: t.clamp(-1, 1), ints)
    check(lambda t: t.clamp(min=0.5), lambda t: t.clamp(min=0.5), ints)
    with pytest.raises(ValueError, match="clamp"):
        dg.clamp(dg.ones(2))


COMPARISONS = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
    "eq_m": lambda a, b: a.eq(b), "lt_m": lambda a, b: a.lt(b), "ge_m": lambda a, b: a.ge(b),
    "scalar": lambda a, b: a > 0.0, "rscalar": lambda a, b: 0.0 < a,
}


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("name", list(COMPARISONS))
def test_comparisons_give_bool_without_grad(name, device):
    out, _ = check(COMPARISONS[name], COMPARISONS[name], small_ints((3, 1), 1), small_ints((4,), 2), device=device)
    assert out.dtype == dg.bool and out.grad_fn is None


def test_casts_are_differentiable_between_floats():
    x = randn((2, 3), 1)
    check(lambda t: t.double() * 2, lambda t: t.double() * 2, x)
    check(lambda t: t.to(dg.float64).float() * 3, lambda t: t.to(torch.float64).float() * 3, x)
    check(lambda t: t.long(), lambda t: t.long(), x)


# ----------------------------------------------------------------------------- dtype promotion
def _t(values, dtype):
    return np.array(values, dtype=dtype)


PROMOTION = {
    "f32+f64": (_t([1.5, 2.0], np.float32), _t([0.25, 1.0], np.float64)),
    "f32 dims + f64 0-d": (_t([1.5, 2.0], np.float32), _t(0.25, np.float64)),
    "f64 0-d + f32 dims": (_t(0.25, np.float64), _t([1.5, 2.0], np.float32)),
    "int + float": (_t([1, 2], np.int64), _t([0.5, 1.5], np.float32)),
    "float + int 0-d": (_t([0.5, 1.5], np.float32), _t(3, np.int64)),
    "int dims + f64 0-d": (_t([1, 2], np.int64), _t(0.5, np.float64)),
    "int32 + int64 0-d": (_t([1, 2], np.int32), _t(3, np.int64)),
    "bool + int": (_t([True, False], np.bool_), _t([3, 4], np.int64)),
    "uint8 + int8": (_t([1, 2], np.uint8), _t([3, -4], np.int8)),
    "f16 + f32 0-d": (_t([1.5, 2.0], np.float16), _t(0.5, np.float32)),
}


@pytest.mark.parametrize("name", list(PROMOTION))
@pytest.mark.parametrize("op", ["add", "mul", "div", "maximum"])
def test_dtype_promotion_matches_torch(name, op):
    a, b = PROMOTION[name]
    fn = {"add": lambda x, y: x + y, "mul": lambda x, y: x * y, "div": lambda x, y: x / y,
          "maximum": lambda x, y: x.maximum(y)}[op]
    if op == "maximum" and a.dtype.kind != b.dtype.kind and "b" in a.dtype.kind + b.dtype.kind:
        pytest.skip("torch.maximum rejects bool mixed with numbers")
    check(fn, fn, a, b, rtol=1e-3 if np.float16 in (a.dtype, b.dtype) else 1e-5)


@pytest.mark.parametrize(
    "fn",
    [lambda t: t * 2.5, lambda t: 2.5 * t, lambda t: t + 1.5, lambda t: t / 2, lambda t: t * 2, lambda t: t + True,
     lambda t: t ** 2, lambda t: t ** 0.5, lambda t: 2.0 ** t, lambda t: t - 1, lambda t: t // 2, lambda t: t % 3],
)
def test_integer_tensor_with_python_scalars(fn):
    check(fn, fn, np.array([1, 2, 3], np.int64))
    check(fn, fn, np.array([1, 2, 3], np.int32))


def test_float16_with_python_float_stays_float16():
    check(lambda t: t * 1.5 + 0.25, lambda t: t * 1.5 + 0.25, np.array([1.0, 2.0], np.float16))


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "name, fn",
    [("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
     ("div", lambda a, b: a / b), ("pow", lambda a, b: a**b), ("maximum", lambda a, b: a.maximum(b)),
     ("minimum", lambda a, b: a.minimum(b))],
)
def test_broadcast_mismatch_names_the_op_and_both_shapes(name, fn):
    a, b = dg.ones(2, 3), dg.ones(4, 1, 5)
    with pytest.raises(RuntimeError, match=rf"{name}.*\(2, 3\).*\(4, 1, 5\)"):
        fn(a, b)
    with pytest.raises(RuntimeError):  # torch agrees these do not broadcast
        fn(torch.ones(2, 3), torch.ones(4, 1, 5))


def test_where_broadcast_mismatch_names_all_shapes():
    with pytest.raises(ValueError, match=r"where.*\(2,\).*\(3,\).*\(4,\)"):
        dg.where(dg.ones(2) > 0, dg.ones(3), dg.ones(4))


def test_moving_to_cuda_without_a_gpu_is_explained():
    if dg.cuda_is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="CuPy"):
        dg.ones(2).to("cuda")
    with pytest.raises(RuntimeError, match="CuPy"):
        dg.zeros(2, device="cuda")


@pytest.mark.skipif(not dg.cuda_is_available(), reason="no CUDA device (CuPy)")
def test_device_mismatch_names_the_op_and_devices():
    a, b = dg.ones(2), dg.ones(2, device="cuda")
    for fn, name in [(lambda: a + b, "add"), (lambda: a * b, "mul"), (lambda: a @ b, "matmul")]:
        with pytest.raises(RuntimeError, match=rf"{name}.*cpu.*cuda"):
            fn()


@pytest.mark.parametrize(
    "fn",
    [lambda t: 7 // t, lambda t: 7 % t, lambda t: t // 2, lambda t: t % -3, lambda t: 6 | t, lambda t: 6 & t,
     lambda t: 6 ^ t, lambda t: ~t, lambda t: t.div(2, rounding_mode="floor"),
     lambda t: t.div(-2, rounding_mode="trunc")],
)
def test_integer_only_operators_and_reflections(fn):
    check(fn, fn, np.array([-5, -1, 2, 3, 9], np.int64))


@pytest.mark.parametrize("mode", ["floor", "trunc"])
def test_rounding_division_of_floats(mode):
    x, y = randn((2, 3), 1) * 4, nonzero((3,), 2)
    fn = lambda a, b: a.div(b, rounding_mode=mode)  # noqa: E731
    check(fn, fn, x, y, requires_grad=[False, False])
