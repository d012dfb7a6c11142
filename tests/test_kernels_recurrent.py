"""The fused recurrent kernels (deepgrad.kernels.recurrent) against their plain step-by-step references
(deepgrad.kernels.recurrent_reference): outputs, final states and every gradient, in float64, for padded and
packed schedules in both directions, with and without biases, initial states and projections. (Thread-count
invariance of the kernels is in test_rnn_fastpaths.py; parity with torch in test_rnn.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from deepgrad.kernels import recurrent as K
from deepgrad.kernels import recurrent_reference as R

I, H, P = 3, 5, 2  # noqa: E741  (input size, hidden size, projection size)
LENGTHS = [4, 4, 3, 1]  # a packed batch: sorted lengths, the active batch shrinks over time


def _schedule(kind: str, reverse: bool) -> tuple:
    """(steps, batch, packed, rows): the (row offset, active batch) schedule the ops build."""
    if kind == "padded":
        t, batch = 4, 3
        steps = [(k * batch, batch) for k in range(t)]
        rows, packed = t * batch, False
    else:
        sizes = [sum(n > k for n in LENGTHS) for k in range(max(LENGTHS))]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        steps = [(int(o), b) for o, b in zip(offsets, sizes)]
        batch, rows, packed = sizes[0], sum(sizes), True
    return (steps[::-1] if reverse else steps), batch, packed, rows


def _close(got, want, what):
    if want is None:
        assert got is None, what
        return
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=what)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("kind", ["padded", "packed"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("mode", ["rnn_tanh", "rnn_relu", "lstm", "lstm_proj", "gru"])
def test_kernel_matches_the_step_by_step_reference(mode, bias, kind, reverse):
    rng = np.random.default_rng(hash((mode, bias, kind, reverse)) % 2**32)
    steps, batch, packed, rows = _schedule(kind, reverse)
    gates = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "lstm_proj": 4, "gru": 3}[mode]
    proj = mode == "lstm_proj"
    width = P if proj else H
    x2 = rng.standard_normal((rows, I))
    w_ih, w_hh = rng.standard_normal((gates * H, I)) * 0.6, rng.standard_normal((gates * H, width)) * 0.6
    b_ih, b_hh = (rng.standard_normal(gates * H), rng.standard_normal(gates * H)) if bias else (None, None)
    h0 = rng.standard_normal((batch, width)) if kind == "padded" else None  # both: given and zero
    g, g_h = rng.standard_normal((rows, width)), rng.standard_normal((batch, width))
    if mode.startswith("rnn"):
        relu = mode == "rnn_relu"
        out, h_n, saved = K.rnn_forward(x2, h0, w_ih, w_hh, b_ih, b_hh, steps, batch, reverse, packed, relu)
        grads = K.rnn_backward(g, g_h, saved, (True,) * 6)
        r_out, r_h, cache = R.rnn_forward_reference(x2, h0, w_ih, w_hh, b_ih, b_hh, steps, batch, relu)
        r_grads = R.rnn_backward_reference(g, g_h, x2, w_ih, w_hh, bias, cache, batch, relu)
        outs, r_outs = (out, h_n), (r_out, r_h)
    elif mode == "gru":
        out, h_n, saved = K.gru_forward(x2, h0, w_ih, w_hh, b_ih, b_hh, steps, batch, reverse, packed)
        grads = K.gru_backward(g, g_h, saved, (True,) * 6)
        r_out, r_h, cache = R.gru_forward_reference(x2, h0, w_ih, w_hh, b_ih, b_hh, steps, batch)
        r_grads = R.gru_backward_reference(g, g_h, x2, w_ih, w_hh, bias, cache, batch)
        outs, r_outs = (out, h_n), (r_out, r_h)
    else:
        w_hr = rng.standard_normal((P, H)) * 0.6 if proj else None
        c0 = rng.standard_normal((batch, H)) if h0 is not None else None
        g_c = rng.standard_normal((batch, H))
        out, h_n, c_n, saved = K.lstm_forward(x2, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, steps, batch, reverse, packed)
        grads = K.lstm_backward(g, g_h, g_c, saved, (True,) * 7 + (proj,))
        r_out, r_h, r_c, cache = R.lstm_forward_reference(x2, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, steps, batch)
        r_grads = R.lstm_backward_reference(g, g_h, g_c, x2, w_ih, w_hh, w_hr, bias, cache, batch)
        outs, r_outs = (out, h_n, c_n), (r_out, r_h, r_c)
    for k, (a, b) in enumerate(zip(outs, r_outs)):
        _close(a, b, f"output {k}")
    assert len(grads) == len(r_grads)
    for k, (a, b) in enumerate(zip(grads, r_grads)):
        _close(a, b, f"gradient of input {k}")


def test_the_kernels_compute_only_the_gradients_asked_for():
    rng = np.random.default_rng(0)
    steps, batch, packed, rows = _schedule("padded", False)
    x2, w_ih, w_hh = rng.standard_normal((rows, I)), rng.standard_normal((4 * H, I)), rng.standard_normal((4 * H, H))
    *_, saved = K.lstm_forward(x2, None, None, w_ih, w_hh, None, None, None, steps, batch, False, packed)
    need = (False, False, False, False, True, False, False, False)  # W_hh only, no upstream h_n / c_n grads
    grads = K.lstm_backward(rng.standard_normal((rows, H)), None, None, saved, need)
    assert [k for k, gr in enumerate(grads) if gr is not None] == [4]


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("kind", ["padded", "packed"])
@pytest.mark.parametrize("variant", ["bias", "nobias", "proj"])
def test_lstm_inference_kernel_matches_the_reference_and_keeps_nothing(variant, kind, reverse):
    rng = np.random.default_rng(hash((variant, kind, reverse)) % 2**32)
    steps, batch, packed, rows = _schedule(kind, reverse)
    width = P if variant == "proj" else H
    x2 = rng.standard_normal((rows, I))
    w_ih, w_hh = rng.standard_normal((4 * H, I)) * 0.6, rng.standard_normal((4 * H, width)) * 0.6
    b_ih, b_hh = (None, None) if variant == "nobias" else (rng.standard_normal(4 * H), rng.standard_normal(4 * H))
    w_hr = rng.standard_normal((P, H)) * 0.6 if variant == "proj" else None
    for given in (False, True):  # zero and given initial states (packed: the reverse pass starts later rows late)
        h0 = rng.standard_normal((batch, width)) if given else None
        c0 = rng.standard_normal((batch, H)) if given else None
        got = K.lstm_infer(x2, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, steps, batch, reverse, packed)
        want = R.lstm_forward_reference(x2, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, steps, batch)[:3]
        assert len(got) == 3  # (out, h_n, c_n): no saved state
        for k, (a, b) in enumerate(zip(got, want)):
            _close(a, b, f"output {k}")
        training = K.lstm_forward(x2, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, steps, batch, reverse, packed)[:3]
        for k, (a, b) in enumerate(zip(got, training)):
            np.testing.assert_array_equal(a, b, err_msg=f"output {k} against the training kernel")
