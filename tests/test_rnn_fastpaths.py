"""The fused recurrent kernels give the same outputs, final states and gradients whatever the
thread count (deepgrad.set_num_threads: NumPy's BLAS threads for the per-step and weight GEMMs),
for uneven batch sizes, projections, both directions, given initial states and packed batches."""

from __future__ import annotations

import numpy as np
import pytest

import deepgrad as dg
from deepgrad.nn.recurrent import GRU, LSTM, RNN
from deepgrad.nn.rnn_utils import pack_padded_sequence, pad_packed_sequence

I, H, T = 4, 6, 5  # noqa: E741  (input size, as in the docs)


@pytest.fixture
def threads():
    """Set the thread count for one test, restoring the previous setting afterwards."""
    before = dg.get_num_threads()
    yield dg.set_num_threads
    dg.set_num_threads(before)


def run(cls, kwargs, batch, seed, init_state, lengths, bidirectional):
    """Outputs, final states and every gradient of one float64 forward/backward, as arrays."""
    dg.manual_seed(seed)
    layer = cls(I, H, num_layers=2, bidirectional=bidirectional, **kwargs).to(dg.float64)
    rng = np.random.default_rng(seed)
    x = dg.tensor(rng.standard_normal((T, batch, I)), requires_grad=True)
    dirs = 2 * 2 if bidirectional else 2
    width = kwargs.get("proj_size") or H
    state = None
    leaves = [x]
    if init_state:
        h0 = dg.tensor(rng.standard_normal((dirs, batch, width)), requires_grad=True)
        leaves.append(h0)
        state = h0
        if cls is LSTM:
            c0 = dg.tensor(rng.standard_normal((dirs, batch, H)), requires_grad=True)
            leaves.append(c0)
            state = (h0, c0)
    inp = x if lengths is None else pack_padded_sequence(x, lengths, enforce_sorted=False)
    out, final = layer(inp, state)
    if lengths is not None:
        out = pad_packed_sequence(out)[0]
    finals = list(final) if isinstance(final, tuple) else [final]
    weights = [dg.tensor(rng.standard_normal(t.shape)) for t in [out, *finals]]
    loss = sum((t * w).sum() for t, w in zip([out, *finals], weights))
    loss.backward()
    grads = [t.grad.numpy() for t in leaves] + [p.grad.numpy() for p in layer.parameters()]
    return [t.detach().numpy() for t in [out, *finals]] + grads


CASES = {
    "lstm": (LSTM, {}),
    "lstm_proj": (LSTM, {"proj_size": 3}),
    "gru": (GRU, {}),
    "rnn_tanh": (RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (RNN, {"nonlinearity": "relu"}),
}


@pytest.mark.parametrize("mode", list(CASES))
@pytest.mark.parametrize("batch,init_state,bidirectional", [(9, True, True), (17, False, False), (16, True, False)])
def test_same_results_on_one_and_two_threads(threads, mode, batch, init_state, bidirectional):
    cls, kwargs = CASES[mode]
    results = {}
    for n in (1, 2):
        threads(n)
        results[n] = run(cls, kwargs, batch, 3, init_state, None, bidirectional)
    assert len(results[1]) == len(results[2])
    for k, (a, b) in enumerate(zip(results[1], results[2])):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"{mode}: result {k}")


@pytest.mark.parametrize("mode", ["lstm", "lstm_proj", "gru", "rnn_tanh"])
def test_packed_same_results_on_one_and_two_threads(threads, mode):
    cls, kwargs = CASES[mode]
    lengths = [5, 2, 4, 5, 1, 3, 5, 2, 4, 1, 3, 5, 2, 4, 4, 3, 5]  # 17 sequences, unsorted
    results = {}
    for n in (1, 2):
        threads(n)
        results[n] = run(cls, kwargs, len(lengths), 5, True, lengths, True)
    for k, (a, b) in enumerate(zip(results[1], results[2])):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"{mode} packed: result {k}")


def test_forward_leaves_the_weights_untouched():
    """The kernels scale (sigmoid rows) and transpose private copies, never the parameters."""
    dg.manual_seed(0)
    layer = LSTM(I, H).to(dg.float64)
    before = {k: v.numpy().copy() for k, v in layer.state_dict().items()}
    layer(dg.tensor(np.random.default_rng(0).standard_normal((T, 3, I))))
    for k, v in layer.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=k)
