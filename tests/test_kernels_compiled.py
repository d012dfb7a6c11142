"""The kernels compiled with numba (deepgrad.kernels.compiled): their tanh and exp against the correctly rounded
ones, and the LSTM loops (compiled forward, inference and backward) against the NumPy loops they replace and
against the float64 step-by-step reference, in both directions. The fallback (no numba, or DEEPGRAD_NUMBA=0) and
the cases the compiled loops leave to NumPy (float64, packed, projections) are checked too. The compiled softmax
rows are tested with their family, in test_kernels_softmax.py."""

from __future__ import annotations

import os
import subprocess
import sys
import types

import numpy as np
import pytest

from deepgrad import kernels
from deepgrad.kernels import recurrent as K
from deepgrad.kernels import recurrent_reference as R

numba = pytest.importorskip("numba")
C = pytest.importorskip("deepgrad.kernels.compiled")


def _ulps(got, want):
    """Distance in float32 units in the last place (same-sign values)."""
    return np.abs(got.view(np.int32).astype(np.int64) - want.view(np.int32).astype(np.int64))


def test_tanh_is_within_one_ulp_of_the_correctly_rounded_tanh():
    # every 97th float32 from 0 to 12 (both signs): 11 million values, through the fitted range and past the clamp
    pos = np.arange(0, np.float32(12).view(np.int32), 97, dtype=np.int32).view(np.float32)
    x = np.concatenate([pos, -pos])
    got = np.empty_like(x)
    C.tanh_into(x, got)
    want = np.tanh(x.astype(np.float64)).astype(np.float32)
    ulps = _ulps(got, want)
    assert ulps.max() <= 1, x[np.argmax(ulps)]
    assert (ulps > 0).mean() < 1e-3  # measured: ~1.2e-4 of the values are 1 ulp off
    np.testing.assert_array_equal(got[: pos.size], -got[pos.size:])  # odd


def test_tanh_special_values():
    x = np.float32([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30, 9.2, 50.0, -1e30, 1e-7])
    got = np.empty_like(x)
    C.tanh_into(x, got)
    assert np.isnan(got[0])
    np.testing.assert_array_equal(got[1:], np.float32([1, -1, 0, -0.0, 1e-30, -1e-30, 1, 1, -1, 1e-7]))
    assert np.signbit(got[4])  # tanh(-0) = -0


def test_exp_is_the_correctly_rounded_exp_over_float32():
    # every 211th float32 of the range where exp is neither 0 nor inf in float32, both signs, and past both ends
    top = np.arange(0, np.float32(110).view(np.int32), 211, dtype=np.int32).view(np.float32)
    x = np.concatenate([top, -top, -np.linspace(110, 160, 1001, dtype=np.float32)])
    got = np.empty_like(x)
    C.exp_into(x, got)
    with np.errstate(over="ignore"):
        want = np.exp(x.astype(np.float64)).astype(np.float32)
    ulps = _ulps(got, want)
    assert ulps.max() <= 1, x[np.argmax(ulps)]
    assert (ulps > 0).mean() < 1e-6  # measured: none off in this sweep


def test_exp_special_values():
    x = np.float32([np.nan, np.inf, -np.inf, 0.0, -0.0, 88.72, 88.73, -103.0, -104.5, -200.0, 1e-30])
    got = np.empty_like(x)
    C.exp_into(x, got)
    assert np.isnan(got[0])
    with np.errstate(over="ignore"):
        want = np.exp(x[1:].astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(got[1:], want)
    assert got[1] == np.inf and got[2] == 0 and got[6] == np.inf and 0 < got[7] < 1e-44 and got[9] == 0


def _lstm_case(rng, batch, steps_n, reverse, dtype=np.float32, states=True, bias=True, i=6, h=16):
    w_ih = (rng.standard_normal((4 * h, i)) * 0.5).astype(dtype)
    w_hh = (rng.standard_normal((4 * h, h)) * 0.5).astype(dtype)
    b = [(rng.standard_normal(4 * h) * 0.3).astype(dtype) for _ in range(2)] if bias else [None, None]
    x2 = rng.standard_normal((steps_n * batch, i)).astype(dtype)
    h0 = rng.standard_normal((batch, h)).astype(dtype) if states else None
    c0 = rng.standard_normal((batch, h)).astype(dtype) if states else None
    steps = [(t * batch, batch) for t in range(steps_n)]
    return x2, h0, c0, w_ih, w_hh, b[0], b[1], None, (steps[::-1] if reverse else steps), batch, reverse, False


@pytest.fixture
def loops(monkeypatch):
    """Run the LSTM kernels with the compiled loops (counted) or with the NumPy loops."""
    calls = {"forward": 0, "backward": 0}

    def forward(*a):
        calls["forward"] += 1
        return C.lstm_sequence(*a)

    def backward(*a):
        calls["backward"] += 1
        return C.lstm_sequence_backward(*a)

    spy = types.SimpleNamespace(lstm_sequence=forward, lstm_sequence_backward=backward)  # counts what reaches it

    def use(compiled: bool):
        monkeypatch.setitem(kernels._compiled_state, "module", spy if compiled else False)
        return calls
    return use


@pytest.mark.parametrize("batch", [1, 3, 20])  # 20: row blocks of 8, 8 and 4
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("states", [True, False], ids=["h0c0", "zeros"])
def test_compiled_loops_match_the_numpy_loops_and_the_reference(loops, batch, reverse, states):
    rng = np.random.default_rng(batch * 4 + reverse * 2 + states)
    case = _lstm_case(rng, batch, 7, reverse, states=states)
    x2, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, steps = case[:9]
    g = rng.standard_normal((x2.shape[0], 16)).astype(np.float32)
    g_h, g_c = rng.standard_normal((2, batch, 16)).astype(np.float32)
    results = {}
    for compiled in (False, True):
        calls = loops(compiled)
        out, h_n, c_n, saved = K.lstm_forward(*case)
        infer = K.lstm_infer(*case)
        grads = K.lstm_backward(g, g_h, g_c, saved, (True,) * 8)
        results[compiled] = (out, h_n, c_n, infer, grads)
    blocks = -(-batch // K.ROW_BLOCK)
    assert calls == {"forward": 2 * blocks, "backward": blocks}  # the compiled run went through the compiled loops
    (out0, h0n, c0n, _, grads0), (out1, h1n, c1n, infer1, grads1) = results[False], results[True]
    # inference and training forward run the same compiled loop: identical outputs
    for a, b in zip(infer1, (out1, h1n, c1n)):
        np.testing.assert_array_equal(a, b)
    # compiled vs NumPy loops: float32 rounding apart (the tanh differs by <= 1 ulp)
    for a, b in zip((out0, h0n, c0n), (out1, h1n, c1n)):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=2e-6)
    for k, (a, b) in enumerate(zip(grads0, grads1)):
        if a is None:
            assert b is None, k
        else:
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5, err_msg=f"grad {k}")
    # and against the float64 step-by-step reference
    f64 = [None if v is None else v.astype(np.float64) for v in (x2, h0, c0, w_ih, w_hh, b_ih, b_hh)]
    r_out, r_h, r_c, cache = R.lstm_forward_reference(*f64, None, steps, batch)
    np.testing.assert_allclose(out1, r_out, rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(c1n, r_c, rtol=1e-5, atol=2e-6)
    r_grads = R.lstm_backward_reference(g.astype(np.float64), g_h.astype(np.float64), g_c.astype(np.float64), f64[0],
                                        f64[3], f64[4], None, True, cache, batch)
    for k, (got, want) in enumerate(zip(grads1, r_grads)):
        if want is None or (k in (1, 2) and not states):  # no dh0 / dc0 to compare without initial states
            continue
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-5, err_msg=f"grad {k}")


def test_nan_propagates_as_in_the_numpy_loops(loops):
    rng = np.random.default_rng(7)
    case = list(_lstm_case(rng, 2, 6, False))
    case[0][2 * 2 + 1, 3] = np.nan  # step 2, second sequence
    nan_at = {}
    for compiled in (False, True):
        loops(compiled)
        out, h_n, c_n = K.lstm_infer(*case)
        nan_at[compiled] = (np.isnan(out), np.isnan(c_n))
        assert not np.isnan(out[:4]).any() and np.isnan(out[5]).all() and not np.isnan(out[4]).any()
    for a, b in zip(nan_at[False], nan_at[True]):
        np.testing.assert_array_equal(a, b)


def test_the_compiled_loops_take_only_their_cases():
    f32 = np.float32
    assert K._compiled(np, f32, False, None) is C  # numba imports here: the float32 padded case is compiled
    assert K._compiled(np, np.float64, False, None) is None  # float64 (gradcheck) keeps NumPy's exact tanh
    assert K._compiled(np, f32, True, None) is None  # packed
    assert K._compiled(np, f32, False, np.zeros((2, 3), f32)) is None  # projection


def test_deepgrad_numba_0_falls_back_to_the_numpy_code():
    code = (
        "import numpy as np, sys\n"
        "from deepgrad.kernels import recurrent as K\n"
        "x = np.ones((6, 2), np.float32); w = np.full((8, 2), .1, np.float32)\n"
        "out = K.lstm_infer(x, None, None, w, w, None, None, None, [(0, 3), (3, 3)], 3, False, False)[0]\n"
        "from deepgrad.kernels import softmax as S\n"
        "S.softmax_forward(x, 1); S.masked_softmax_(x.copy()); S.log_softmax_forward(x, 1)\n"
        "assert K._compiled(np, np.float32, False, None) is None\n"
        "assert 'deepgrad.kernels.compiled' not in sys.modules and 'numba' not in sys.modules\n"
        "print(out.shape)\n"
    )
    env = dict(os.environ, DEEPGRAD_NUMBA="0")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(6, 2)"


@pytest.mark.parametrize("batch", [16, 21])
def test_compiled_loops_give_the_same_bits_on_one_and_two_threads(batch):
    import deepgrad as dg

    rng = np.random.default_rng(batch)
    case = _lstm_case(rng, batch, 5, False, i=32, h=128)  # hidden 128: OpenBLAS's GEMM rounds M=8 and M=16 apart
    g = rng.standard_normal((case[0].shape[0], 128)).astype(np.float32)
    before = dg.get_num_threads()
    results = {}
    try:
        for n in (1, 2):
            dg.set_num_threads(n)
            out, h_n, c_n, saved = K.lstm_forward(*case)
            results[n] = (out, c_n, *K.lstm_infer(*case), *(v for v in K.lstm_backward(g, None, None, saved,
                                                                                      (True,) * 8) if v is not None))
    finally:
        dg.set_num_threads(before)
    for a, b in zip(results[1], results[2]):
        np.testing.assert_array_equal(a, b)


def test_a_numba_that_cannot_cache_falls_back_to_the_numpy_code_with_a_warning():
    # numba raises at import time ("cannot cache function ...: no locator available") where neither the package's
    # __pycache__ nor a user cache directory is writable (a read-only install run by a user without a home):
    # the kernels must then run their NumPy code, not fail every float32 softmax or LSTM.
    code = (
        "import warnings, numpy as np\n"
        "from numba.core import caching\n"
        "caching.CacheImpl._locator_classes = []  # no place to cache\n"
        "from deepgrad import kernels\n"
        "from deepgrad.kernels import softmax as S\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    out = S.softmax_forward(np.zeros((2, 4), np.float32), 1)\n"
        "assert kernels.compiled_kernels() is None\n"
        "assert any('NUMBA_CACHE_DIR' in str(w.message) and 'no locator' in str(w.message) for w in caught), caught\n"
        "print(out.tolist())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str([[0.25] * 4] * 2)
