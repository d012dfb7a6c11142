"""The NumPy fast paths of pooling, batch norm and ReLU compute what their plain paths compute.

Each fast path is checked against the plain one forced on the same input (bit for bit where the
arithmetic is the same: pooling and ReLU; to float32 rounding for batch norm, whose sums are
ordered differently), and batch-split over two threads against one thread. Inputs carry the
cases the fast paths treat specially: ties, NaN, infinities, signed zeros, odd sizes.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepgrad as dg
import deepgrad.functional as F
from deepgrad.kernels import activation as KA
from deepgrad.kernels import norm as KN
from deepgrad.kernels import parallel
from deepgrad.kernels import pool as KP
from deepgrad.ops import norm as N
from deepgrad.ops import pool as P

RNG = np.random.default_rng(11)


@pytest.fixture
def split_small(monkeypatch):
    """Let tiny batches split across threads, so the threaded fast paths run on test-sized inputs."""
    monkeypatch.setattr(parallel, "PARALLEL_MIN_ELEMENTS", 1)


@pytest.fixture
def two_threads(split_small):
    before = dg.get_num_threads()
    dg.set_num_threads(2)
    yield
    dg.set_num_threads(before)


def _plain(monkeypatch):
    """Force the plain (xp-generic reference) paths, as CuPy takes them."""
    monkeypatch.setattr(KP, "_fast", lambda a: False)
    monkeypatch.setattr(KN, "_fast", lambda x: False)
    monkeypatch.setattr(KA, "_rows_fast", lambda x: False)


def _run(fn, x, up, **kw):
    """Output (and indices) and input gradient of ``fn`` under the upstream gradient ``up``."""
    X = dg.tensor(x, requires_grad=True)
    y = fn(X, **kw)
    idx = None
    if isinstance(y, tuple):
        y, idx = y[0], y[1].array.copy()
    y.backward(dg.tensor(up(y.shape)))
    return y.array.copy(), idx, X.grad.array.copy()


def _same_bits(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(a.view(f"i{a.dtype.itemsize}"), b.view(f"i{b.dtype.itemsize}"))


def _pool_input(shape, kind):
    x = RNG.standard_normal(shape).astype(np.float32)
    if kind == "ties":  # ReLU-like input: many windows of equal values (first maximum must win)
        x = np.maximum(np.round(x), 0).astype(np.float32)
    elif kind == "nan":  # NaN anywhere, several in one window, first in a window, beside -inf / +inf
        x.flat[RNG.choice(x.size, max(2, x.size // 20), replace=False)] = np.nan
        x[0, 0, :2, :2] = np.nan
        x[-1, -1, 0, :3] = [-np.inf, np.nan, np.inf]
    elif kind == "inf":
        x.flat[RNG.choice(x.size, x.size // 10, replace=False)] = -np.inf
        x[0, 0, :2, :2] = -np.inf
    return x


def _upstream(kind, seed=0):
    def make(shape):
        g = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
        if kind == "nan":  # a NaN / inf upstream must reach only the argmax position, like the plain path
            g.flat[:: max(1, g.size // 7)] = np.nan
            g.flat[1] = np.inf
        return g
    return make


POOLS = [
    (P.max_pool2d, dict(kernel_size=2)),
    (P.max_pool2d, dict(kernel_size=2, return_indices=True)),
    (P.max_pool2d, dict(kernel_size=(2, 3))),
    (P.max_pool2d, dict(kernel_size=3, stride=2, padding=1, return_indices=True)),  # overlapping, padded
    (P.max_pool2d, dict(kernel_size=2, stride=2, ceil_mode=True)),  # ceil overhang on odd sizes
    (P.max_pool2d, dict(kernel_size=2, dilation=2)),
    (P.avg_pool2d, dict(kernel_size=2)),
    (P.avg_pool2d, dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    (P.sum_pool2d, dict(kernel_size=2)),
]


@pytest.mark.parametrize("shape", [(4, 3, 8, 8), (3, 2, 9, 7)], ids=["even", "odd"])  # odd: floor mode crops
@pytest.mark.parametrize("kind", ["random", "ties", "nan", "inf"])
@pytest.mark.parametrize("fn,kw", POOLS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_pool_fast_path_matches_plain_path(monkeypatch, fn, kw, kind, shape):
    x = _pool_input(shape, kind)
    fast = _run(fn, x, _upstream(kind), **kw)
    with monkeypatch.context() as m:
        _plain(m)
        plain = _run(fn, x, _upstream(kind), **kw)
    for a, b in zip(fast, plain):
        if a is not None:
            _same_bits(a, b)


@pytest.mark.parametrize("kind", ["ties", "nan"])
def test_max_pool_fast_path_matches_torch(kind):
    """Tie rule (first maximum) and NaN rule (the last NaN is the index) as torch, on the fast path."""
    x = _pool_input((2, 3, 6, 8), kind)
    y, idx = P.max_pool2d(dg.tensor(x), 2, return_indices=True)
    ty, tidx = TF.max_pool2d(torch.tensor(x), 2, return_indices=True)
    np.testing.assert_array_equal(y.array, ty.numpy())  # equal_nan by default
    np.testing.assert_array_equal(idx.array, tidx.numpy())


@pytest.mark.parametrize("fn,kw", [POOLS[1], POOLS[3], POOLS[6], POOLS[7]], ids=["max2", "max3s2p1", "avg2", "avg3"])
def test_pool_threads_match_one_thread(two_threads, fn, kw):
    x = _pool_input((5, 3, 9, 8), "random")
    split = _run(fn, x, _upstream("random"), **kw)
    dg.set_num_threads(1)
    one = _run(fn, x, _upstream("random"), **kw)
    for a, b in zip(split, one):
        if a is not None:
            _same_bits(a, b)


# ----------------------------------------------------------------------------- ReLU
def _relu_input(shape):
    x = RNG.standard_normal(shape).astype(np.float32)
    x.flat[:8] = [np.nan, -0.0, 0.0, np.inf, -np.inf, 1e-45, -1e-45, 3.0]
    return x


@pytest.mark.parametrize("shape", [(8, 3, 16, 16), (64, 65), (3, 5)], ids=["4d", "2d", "tiny"])
def test_relu_fast_path_matches_plain_path(monkeypatch, shape):
    x = _relu_input(shape)
    up = RNG.standard_normal(shape).astype(np.float32)
    up.flat[1] = np.nan  # upstream NaN at a dead unit: both paths give NaN * 0, as before
    fast = _run(F.relu, x, lambda s: up)
    with monkeypatch.context() as m:
        _plain(m)
        plain = _run(F.relu, x, lambda s: up)
    _same_bits(fast[0], plain[0])
    np.testing.assert_array_equal(fast[2], plain[2])


def test_relu_threads_match_one_thread(two_threads):
    x = _relu_input((7, 4, 16, 16))
    up = RNG.standard_normal(x.shape).astype(np.float32)
    split = _run(F.relu, x, lambda s: up)
    dg.set_num_threads(1)
    one = _run(F.relu, x, lambda s: up)
    for a, b in zip(split, one):
        if a is not None:
            _same_bits(a, b)


# ----------------------------------------------------------------------------- batch norm
def _bn(x, training, affine=True, rm=None, rv=None, up=None, dtype=np.float32):
    c = x.shape[1]
    rng = np.random.default_rng(3)
    rm = dg.tensor(np.zeros(c, dtype) if rm is None else rm.copy())
    rv = dg.tensor(np.ones(c, dtype) if rv is None else rv.copy())
    X = dg.tensor(x, requires_grad=True)
    w = dg.tensor(rng.standard_normal(c).astype(dtype) + 1, requires_grad=True) if affine else None
    b = dg.tensor(rng.standard_normal(c).astype(dtype), requires_grad=True) if affine else None
    y = N.batch_norm(X, rm, rv, w, b, training=training, momentum=0.3)
    y.backward(dg.tensor(rng.standard_normal(x.shape).astype(dtype) if up is None else up))
    out = [y.array, X.grad.array, rm.array, rv.array]
    return out + ([w.grad.array, b.grad.array] if affine else [])


BN_CASES = [
    dict(shape=(6, 4, 5, 7), training=True, affine=True),
    dict(shape=(6, 4, 5, 7), training=True, affine=False),
    dict(shape=(6, 4, 5, 7), training=False, affine=True),
    dict(shape=(5, 3, 11), training=True, affine=True),
    dict(shape=(2, 3, 2, 2, 3), training=True, affine=True),
]


@pytest.mark.parametrize("case", BN_CASES, ids=str)
def test_batch_norm_fast_path_matches_plain_path(monkeypatch, case):
    x = (RNG.standard_normal(case["shape"]) * 3 + 2).astype(np.float32)
    c = x.shape[1]
    rm, rv = RNG.standard_normal(c).astype(np.float32), RNG.uniform(0.5, 2, c).astype(np.float32)
    fast = _bn(x, case["training"], case["affine"], rm, rv)
    with monkeypatch.context() as m:
        _plain(m)
        plain = _bn(x, case["training"], case["affine"], rm, rv)
    for i, (a, b) in enumerate(zip(fast, plain)):
        scale = max(1.0, float(np.abs(b).max()))
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=2e-6 * scale, err_msg=f"output #{i}")


def test_batch_norm_fast_path_is_accurate_on_a_large_mean(monkeypatch):
    """Mean 100, std 1: the statistics must not lose the signal to cancellation (two-pass variance,
    float64 partial sums). Against a float64 reference at the parity tolerances, and no less accurate
    than the plain path (whose float32 mean is off by ~1e-5 here)."""
    x = (RNG.standard_normal((16, 3, 12, 12)) + 100).astype(np.float32)
    up = RNG.standard_normal(x.shape).astype(np.float32)
    fast = _bn(x, True, up=up)
    ref = _bn(x.astype(np.float64), True, up=up.astype(np.float64), dtype=np.float64)
    with monkeypatch.context() as m:
        _plain(m)
        plain = _bn(x, True, up=up)
    for i, (f, p, r) in enumerate(zip(fast, plain, ref)):
        tol = 1e-5 if i != 1 else 1e-4  # forward / statistics, input gradient
        scale = max(1.0, float(np.abs(r).max()))
        np.testing.assert_allclose(f, r, rtol=tol, atol=tol * scale, err_msg=f"output #{i}")
        assert np.abs(f - r).max() <= np.abs(p - r).max() * 1.01 + 1e-7, f"output #{i} less accurate than plain"


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_threads_match_one_thread(two_threads, training):
    x = (RNG.standard_normal((7, 3, 6, 5)) * 2 - 1).astype(np.float32)
    split = _bn(x, training)
    dg.set_num_threads(1)
    one = _bn(x, training)
    for a, b in zip(split, one):
        np.testing.assert_array_equal(a, b)


def test_batch_norm_fast_path_gradcheck():
    """float64 gradcheck through the fast path (random upstream, as in the norm tests)."""
    from deepgrad.autograd import gradcheck

    rng = np.random.default_rng(5)
    x = dg.tensor(rng.standard_normal((3, 2, 3, 2)) * 2 + 1, requires_grad=True)
    w = dg.tensor(rng.standard_normal(2) + 1, requires_grad=True)
    b = dg.tensor(rng.standard_normal(2), requires_grad=True)
    assert KN._fast(x.array)
    assert gradcheck(lambda x, w, b: N.batch_norm(x, None, None, w, b, training=True), (x, w, b))


@pytest.mark.parametrize("slope", [0.2, 0.0, 1.0, 1.5, -0.5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_leaky_relu_slope_lookup_is_bitwise_torch(slope, dtype):
    x = RNG.standard_normal((4, 3, 5, 5)).astype(dtype)
    x.flat[:6] = [np.nan, -0.0, 0.0, np.inf, -np.inf, 1e-30]
    g = RNG.standard_normal(x.shape).astype(dtype)
    xd = dg.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    with np.errstate(invalid="ignore"):
        yd = F.leaky_relu(xd, slope)
        yd.backward(dg.tensor(g))
    yt = TF.leaky_relu(xt, slope)
    yt.backward(torch.tensor(g))
    bits = np.int32 if dtype == np.float32 else np.int64
    np.testing.assert_array_equal(yd.detach().numpy().view(bits), yt.detach().numpy().view(bits))
    np.testing.assert_array_equal(xd.grad.numpy().view(bits), xt.grad.numpy().view(bits))


# ----------------------------------------------------------------------------- kernels against the references
def _geometry(x, **kw):
    return P._pool_geometry("max_pool2d", dg.tensor(x), kw.pop("kernel_size"), kw.pop("stride", None),
                            kw.pop("padding", 0), kw.pop("dilation", 1), kw.pop("ceil_mode", False), 2)


WINDOWS = [dict(kernel_size=2), dict(kernel_size=(2, 3)), dict(kernel_size=3, stride=2, padding=1),
           dict(kernel_size=2, stride=2, ceil_mode=True), dict(kernel_size=2, dilation=2),
           dict(kernel_size=3, stride=1)]


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # inf - inf (worker threads: no errstate)
@pytest.mark.parametrize("kind", ["random", "ties", "nan", "inf"])
@pytest.mark.parametrize("window", WINDOWS, ids=str)
def test_pool_kernels_equal_their_references_bit_for_bit(split_small, window, kind):
    x = _pool_input((3, 2, 9, 7), kind)
    geom = _geometry(x, **dict(window))
    g = _upstream(kind)(geom.out_shape)
    best, arg = KP.max_pool2d_forward(x, geom)
    r_best, r_arg = KP.max_pool2d_forward_reference(x, geom)
    _same_bits(best, r_best)
    np.testing.assert_array_equal(arg, r_arg)
    _same_bits(KP.window_add_back(g, geom, argmax=arg), KP.window_add_back_reference(g, geom, argmax=arg))
    _same_bits(KP.window_add_back(g, geom), KP.window_add_back_reference(g, geom))
    for divisor in (None, 4.0, RNG.uniform(1, 9, geom.out_shape[2:]).astype(np.float32)):
        _same_bits(KP.window_sum_forward(x, geom, divisor), KP.window_sum_forward_reference(x, geom, divisor))


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", [(6, 8), (40, 33)])
def test_layer_norm_kernel_equals_the_plain_reference(affine, shape):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape) * 3 + 5
    w, b = (rng.standard_normal(shape[1]), rng.standard_normal(shape[1])) if affine else (None, None)
    g = rng.standard_normal(shape)
    out, saved = KN.layer_norm_forward(x, w, b, 1e-5)
    np.testing.assert_allclose(out, KN.layer_norm_forward_reference(x, w, b, 1e-5), rtol=1e-12, atol=1e-12)
    grads = KN.layer_norm_backward(g, saved, (True, True, True))
    for got, want in zip(grads, KN.layer_norm_backward_reference(g, x, w, 1e-5)):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)
    assert KN.layer_norm_backward(g, saved, (False, True, False))[::2] == (None, None)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_kernel_equals_the_plain_reference(training):
    """The fast kernel against the reference directly (float64: only the summation order differs)."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((5, 4, 6, 3)) * 2 + 3
    w, b, g = rng.standard_normal(4), rng.standard_normal(4), rng.standard_normal(x.shape)
    running = None if training else (rng.standard_normal(4), rng.uniform(0.5, 2, 4))
    assert KN._fast(x)
    out, saved, mean, var = KN.batch_norm_forward(x, w, b, 1e-5, running)
    r_out, r_saved, r_mean, r_var = KN.batch_norm_forward_reference(x, w, b, 1e-5, running)
    tol = dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out, r_out, **tol)
    if training:  # the batch statistics, for the running-stat update
        np.testing.assert_allclose(mean, r_mean.reshape(-1), **tol)
        np.testing.assert_allclose(var, r_var.reshape(-1), **tol)
    else:
        assert mean is var is r_mean is r_var is None
    for got, want in zip(KN.batch_norm_backward(g, saved, True), KN.batch_norm_backward(g, r_saved, True)):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("slope", [0.2, 0.0, -0.5])
def test_leaky_relu_slope_lookup_equals_the_plain_select(slope):
    x = _relu_input((8, 3, 16, 16))
    g = RNG.standard_normal(x.shape).astype(np.float32)
    with np.errstate(invalid="ignore"):
        out, factor = KA.leaky_relu_forward(x, slope)
        r_out, r_factor = KA.leaky_relu_forward_reference(x, slope)
        _same_bits(out, r_out)
        _same_bits(KA.leaky_relu_backward(g, factor), KA.leaky_relu_backward(g, r_factor))


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # inf * 0, which both then replace by 0
def test_relu_row_path_equals_the_plain_reference(split_small):
    x = _relu_input((8, 3, 16, 16))
    g = RNG.standard_normal(x.shape).astype(np.float32)
    g.flat[::97] = np.inf  # an inf upstream at a dead unit still gives 0 on both
    assert KA._rows_fast(x)
    out, mask = KA.relu_forward(x)
    r_out, r_mask = KA.relu_forward_reference(x)
    _same_bits(out, r_out)
    np.testing.assert_array_equal(mask, r_mask)
    _same_bits(KA.relu_backward(g, mask), KA.relu_backward_reference(g, r_mask))
