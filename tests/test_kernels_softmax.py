"""Softmax / log-softmax kernels (deepgrad.kernels.softmax): the compiled rows (numba) against the NumPy formulas
and against float64, on ordinary rows, on rows holding NaN, +-inf or nothing but -inf, in place (attention's
masked softmax and its backward), and across thread counts; which arrays take the compiled rows."""

from __future__ import annotations

import numpy as np
import pytest

from deepgrad import kernels
from deepgrad.kernels import softmax as S

pytest.importorskip("numba")
C = pytest.importorskip("deepgrad.kernels.compiled")


@pytest.fixture
def numpy_only(monkeypatch):
    """Run the kernels without the compiled rows (as on a machine without numba)."""
    def use(compiled: bool):
        monkeypatch.setitem(kernels._compiled_state, "module", C if compiled else False)
    return use


def _both(numpy_only, fn, *args):
    """``fn(*args)`` with the NumPy formulas, then with the compiled rows (inputs copied: some work in place)."""
    out = {}
    for compiled in (False, True):
        numpy_only(compiled)
        out[compiled] = fn(*(a.copy() if isinstance(a, np.ndarray) else a for a in args))
    return out[False], out[True]


def _f64_softmax(x):
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


SHAPES = [(7, 5), (3, 4, 300), (64, 1000), (2, 3, 1), (5, 17)]


@pytest.mark.parametrize("shape", SHAPES)
def test_softmax_and_its_backward_match_numpy_and_float64(numpy_only, shape):
    rng = np.random.default_rng(len(shape) * 100 + shape[-1])
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    plain, fast = _both(numpy_only, S.softmax_forward, x, x.ndim - 1)
    want = _f64_softmax(x)
    np.testing.assert_allclose(fast, want, rtol=2.5e-7, atol=1e-30)  # float64 inside, rounded once
    np.testing.assert_allclose(plain, want, rtol=2e-6, atol=1e-30)
    s = want.astype(np.float32)
    plain, fast = _both(numpy_only, S.softmax_backward, g, s, x.ndim - 1)
    s64 = s.astype(np.float64)
    want = s64 * (g - (g * s64).sum(axis=-1, keepdims=True))
    np.testing.assert_allclose(fast, want, rtol=1e-6, atol=1e-7 * np.abs(want).max())
    np.testing.assert_allclose(plain, fast, rtol=1e-5, atol=1e-6 * np.abs(want).max())


@pytest.mark.parametrize("shape", SHAPES)
def test_log_softmax_and_its_backward_match_numpy_and_float64(numpy_only, shape):
    rng = np.random.default_rng(len(shape) * 10 + shape[-1])
    x = (rng.standard_normal(shape) * 4 + 30).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    plain, fast = _both(numpy_only, S.log_softmax_forward, x, x.ndim - 1)
    want = np.log(_f64_softmax(x))
    np.testing.assert_allclose(fast, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(plain, fast, rtol=1e-5, atol=1e-5)
    y = want.astype(np.float32)
    plain, fast = _both(numpy_only, S.log_softmax_backward, g, y, x.ndim - 1)
    want = g - np.exp(y.astype(np.float64)) * g.astype(np.float64).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(fast, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(plain, fast, rtol=1e-5, atol=1e-5)


def _special_rows():
    inf, nan = np.inf, np.nan
    return np.float32([
        [1.0, 2.0, 3.0, -inf, 0.5, -1.0, 2.0, 0.0, 1.0],  # a masked-out key among finite ones
        [1.0, nan, 3.0, 0.0, 0.5, -1.0, 2.0, 0.0, 1.0],  # NaN: the whole row NaN
        [1.0, inf, 3.0, 0.0, 0.5, -1.0, 2.0, 0.0, 1.0],  # +inf: NaN (inf - inf); masked: NaN at the inf only
        [-inf] * 9,  # nothing left: NaN, or 0 in attention's masked softmax
        [88.0, 87.0, -80.0, 0.0, 50.0, -200.0, 88.5, 10.0, -1e30],  # huge and tiny exponentials
        [500.0, 501.0, 502.0, 503.0, 504.0, 505.0, 506.0, 507.0, 508.0],  # the max in the tail of a row
        [500.0, 500.0, 500.0, 600.0, 500.0, 500.0, 500.0, 500.0, 500.0],  # in one of the running maxima
    ])


def test_special_rows_as_the_numpy_formulas_give_them(numpy_only):
    x = _special_rows()
    g = np.linspace(-1, 1, x.size, dtype=np.float32).reshape(x.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        for fn, args in ((S.softmax_forward, (x, 1)), (S.log_softmax_forward, (x, 1)), (S.masked_softmax_, (x,))):
            plain, fast = _both(numpy_only, fn, *args)
            np.testing.assert_array_equal(np.isnan(fast), np.isnan(plain), err_msg=fn.__name__)
            np.testing.assert_allclose(fast, plain, rtol=2e-6, atol=1e-30, err_msg=fn.__name__)
        masked = S.masked_softmax_(x.copy())
    assert (masked[3] == 0).all() and masked[0, 3] == 0 and masked[4, 5] == 0 and masked[4, 8] == 0
    assert np.isnan(masked[1]).all()  # NaN anywhere: the whole row
    assert np.isnan(masked[2, 1]) and (masked[2, [0, *range(2, 9)]] == 0).all()  # +inf: inf / inf there, 0 elsewhere
    probs = masked[[0, 4]]
    for fn, args in ((S.softmax_backward, (g[[0, 4]], probs, 1)), (S.softmax_backward_, (g[[0, 4]], probs))):
        plain, fast = _both(numpy_only, fn, *args)
        np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-7, err_msg=fn.__name__)


def test_in_place_attention_kernels_write_where_they_are_told(numpy_only):
    rng = np.random.default_rng(3)
    scores = rng.standard_normal((4, 6, 33)).astype(np.float32)
    numpy_only(True)
    probs = scores.copy()
    assert S.masked_softmax_(probs) is probs
    np.testing.assert_allclose(probs, _f64_softmax(scores), rtol=2.5e-7)
    part = scores.copy()
    S.masked_softmax_(part[1:3])  # a slice of the batch: the rest untouched
    np.testing.assert_array_equal(part[[0, 3]], scores[[0, 3]])
    np.testing.assert_array_equal(part[1:3], probs[1:3])
    g = rng.standard_normal(scores.shape).astype(np.float32)
    grad = g.copy()
    assert S.softmax_backward_(grad, probs) is grad
    np.testing.assert_allclose(grad, S.softmax_backward_reference(g, probs, 2), rtol=1e-5, atol=1e-7)


def test_rows_split_across_threads_give_the_same_bits():
    import deepgrad as dg

    rng = np.random.default_rng(5)
    x = (rng.standard_normal((1024, 1000)) * 3).astype(np.float32)  # 1M values: split on two threads
    g = rng.standard_normal(x.shape).astype(np.float32)
    before, results = dg.get_num_threads(), {}
    try:
        for n in (1, 2):
            dg.set_num_threads(n)
            s = S.softmax_forward(x, 1)
            y = S.log_softmax_forward(x, 1)
            results[n] = (s, y, S.softmax_backward(g, s, 1), S.log_softmax_backward(g, y, 1),
                          S.masked_softmax_(x.copy()))
    finally:
        dg.set_num_threads(before)
    for a, b in zip(results[1], results[2]):
        np.testing.assert_array_equal(a, b)


def test_only_float32_numpy_arrays_over_their_last_axis_take_the_compiled_rows(monkeypatch):
    calls = []

    def count(name):
        def run(*args):
            calls.append(name)
            return getattr(C, name)(*args)
        return run

    spy = type("Spy", (), {n: staticmethod(count(n)) for n in
                           ("softmax_rows", "softmax_backward_rows", "log_softmax_rows", "log_softmax_backward_rows")})
    monkeypatch.setitem(kernels._compiled_state, "module", spy)
    x32 = np.ones((3, 4), np.float32)
    S.softmax_forward(x32, 1)
    S.log_softmax_forward(x32, 1)
    S.softmax_backward(x32, x32, 1)
    S.log_softmax_backward(x32, x32, 1)
    S.masked_softmax_(x32.copy())
    S.softmax_backward_(x32.copy(), x32)
    assert calls == ["softmax_rows", "log_softmax_rows", "softmax_backward_rows", "log_softmax_backward_rows",
                     "softmax_rows", "softmax_backward_rows"]
    calls.clear()
    S.softmax_forward(x32, 0)  # not the last axis
    S.softmax_forward(x32.astype(np.float64), 1)  # float64: the reference (exact to float64)
    S.log_softmax_backward(x32, x32.astype(np.float64), 1)  # mixed dtypes
    S.masked_softmax_(np.ones((4, 3), np.float32).T)  # not C-contiguous: in place needs the array itself
    S.softmax_backward_(x32.copy(), np.asfortranarray(x32))
    assert calls == []
    with kernels.numpy_code_only():  # the practice judge's grading: no compiled kernel at all
        S.softmax_forward(x32, 1)
        S.masked_softmax_(x32.copy())
    assert calls == []
    S.softmax_forward(x32, 1)  # and back after the block
    assert calls == ["softmax_rows"]


def test_the_first_call_from_several_threads_gives_them_all_the_compiled_kernels(monkeypatch):
    import sys
    import threading

    # A fresh first use, with the module's import re-run (tens of ms): every thread waits for it, none takes the
    # NumPy code meanwhile (which would make one parallel op compute its rows two ways).
    monkeypatch.setitem(kernels._compiled_state, "module", None)
    monkeypatch.delitem(sys.modules, "deepgrad.kernels.compiled")
    monkeypatch.delattr(kernels, "compiled", raising=False)
    start, got = threading.Barrier(6), []

    def first_use():
        start.wait()
        got.append(kernels.compiled_kernels())

    threads = [threading.Thread(target=first_use) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 6 and got[0] is not None and all(m is got[0] for m in got)
