"""Fused recurrent kernels: the time loops of one layer-direction of an Elman RNN, an LSTM or a GRU, forward
and backward through time, on raw arrays.

Fused because a step-by-step graph costs a dozen nodes per time step; here the input projection of every
step is one GEMM up front, each step is one GEMM for all gates plus a few in-place elementwise calls, and
backward through time reuses the gate activations saved in forward, then forms dX, dW_ih and dW_hh with
one GEMM each over all steps. :mod:`deepgrad.kernels.recurrent_reference` computes the same plainly.

Layout. The input arrives flat and time-major, ``x2`` of shape (N, I): a padded (T, B, I) batch reshaped
to (T*B, I), or the ``data`` of a packed sequence. ``steps`` lists ``(row_offset, active_batch)`` in
processing order; with packed data the active batch shrinks over time (lengths sorted in decreasing order),
so padded steps are never computed.

State buffers. ``prev`` holds the state that each step read (for dW_hh in one GEMM). Without packing,
``prev`` and ``out`` are two shifted views of one buffer (no copy per step); with packing the state lives in
a (B, H) array whose first ``b`` rows are updated in place, so a sequence that has ended keeps its final
state and a reversed sequence starts from h0.

Sigmoid. ``sigmoid(a) = 0.5 * tanh(a / 2) + 0.5`` (stable, and NumPy's tanh is vectorised, several times
faster than scipy's expit). The halving is folded into the weight rows of the sigmoid gates (multiplying
by 0.5 is exact), so one tanh call serves all gates of a step.

Threads. The time loops stay on the calling thread with a one-thread BLAS: the per-step GEMMs, (B, 4H) at
most, are too short to split. They used to borrow deepgrad's threads for NumPy's BLAS (``blas_threads``), which
lost badly whenever the other core was busy (each short call then waits for a descheduled BLAS worker): on the
shared 2-vCPU machine, the LSTM forward at hidden 128, seq 50 took 26 vs 0.9 ms at batch 1 and 800 vs 26 ms at
batch 32 with the threads lent vs not, under load. The GEMMs over all steps (the input projection, dX, dW_ih,
dW_hh) are split across deepgrad's own threads instead (:func:`.parallel.matmul`). Splitting the batch rows
across Python threads, each running the whole time loop on its rows, was measured and lost on 2 cores: the LSTM
workload step (seq 50, batch 32, hidden 128) went from 6.4 to 9.7 ms, the tanh-RNN step 1.4-1.6x slower,
because every step makes ~10 short NumPy calls per thread and the threads then hand the GIL back and forth.
Keeping the LSTM's sigmoid gates side by side (order i, f, o, g) also lost (~3% slower forward): NumPy's scalar
ops on a strided (B, 3H) slice are slower than broadcast ops on the whole (B, 4H) row.

Per-step GEMMs. ``dot`` with ``out=`` (one BLAS call with less dispatch than ``matmul``: 3.8 vs 4.4 us for a
batch-1 LSTM step's (1, 128) x (128, 512)), on W_hh transposed once per call into C order: with OpenBLAS's own
AVX-512 kernels the (32, 128) x (128, 512) product took 62 us that way against 82 us on the transposed view
(measured on the 2-vCPU EPYC; the environment's older AVX2 kernels had preferred the view by ~4%).

Compiled LSTM loops. With numba installed (the ``fast`` extra), a float32 padded LSTM without projection runs
its whole time loop, forward or backward, as one call per block of batch rows into :mod:`.compiled`
(one GEMM and one fused pass over the gates per step); the NumPy loops here are the fallback and the reference
those loops must match (``tests/test_kernels_compiled.py``). float64 stays here: the compiled tanh is
exact to float32 only.
The compiled loops DO split the batch rows across threads (in fixed blocks, see ``ROW_BLOCK``): unlike the NumPy
loops above they hold no GIL, so the threads never hand it back and forth (batch 32, forward + backward of the
loops, in one process: 13.4 ms on one thread, 8.7 ms on two).

Each ``*_forward`` returns ``(outputs..., saved)``; its ``*_backward`` takes the output gradients (None where
none arrived), that ``saved`` and ``need`` (one bool per input, in the op's input order) and returns one
gradient per input (None where not needed).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy

from ..backend import array_module
from . import compiled_kernels
from .parallel import get_num_threads, parallel_for
from .parallel import matmul as pmatmul

# The compiled LSTM loops run the batch in blocks of 8 rows, each block its whole sequence: SciPy's OpenBLAS runs
# the per-step (8, H) x (H, 4H) products much faster than (16, H) or (32, H) ones (one thread, hidden 128, seq 50,
# forward + backward of the loops: 6.7 ms in blocks of 8 vs 10.0 ms whole at batch 32, 55 vs 60 ms at batch 256).
ROW_BLOCK = 8

def _compiled(xp, dtype, packed: bool, w_hr):
    """:mod:`.compiled` where its LSTM loops apply (NumPy, float32, padded, no projection) and numba imports
    (:func:`.compiled_kernels`); ``None`` otherwise, and the NumPy loops below run."""
    if xp is not numpy or dtype != numpy.float32 or packed or w_hr is not None:
        return None
    return compiled_kernels()


def _rows_in_parallel(batch: int, run) -> None:
    """``run(lo, hi)`` of a compiled loop on every block of ``ROW_BLOCK`` batch rows, the blocks split across
    deepgrad's threads: a sequence's rows never meet and the compiled loops hold no GIL, so each thread runs the
    whole time loop on its blocks. The blocks are the same on any thread count, so are the results, bit for bit."""
    def blocks(first: int, last: int) -> None:
        for k in range(first, last):
            run(k * ROW_BLOCK, min((k + 1) * ROW_BLOCK, batch))
    parallel_for(-(-batch // ROW_BLOCK), blocks)


# ----------------------------------------------------------------------------- shared pieces
def _state_buffers(xp, n: int, batch: int, width: int, dtype, init, packed: bool, reverse: bool):
    """(out, prev, state): per-step outputs, per-step previous states, and the running state
    (packed only; ``None`` otherwise)."""
    if packed:
        state = xp.zeros((batch, width), dtype) if init is None else init.astype(dtype, copy=True)
        return xp.empty((n, width), dtype), xp.empty((n, width), dtype), state
    full = xp.empty((n + batch, width), dtype)
    if reverse:  # step t reads step t+1's output; the last rows hold h0
        out, prev, first = full[:n], full[batch:], full[n:]
    else:  # step t reads step t-1's output; the first rows hold h0
        out, prev, first = full[batch:], full[:n], full[:batch]
    if init is None:
        first[...] = 0
    else:
        first[...] = init
    return out, prev, None


def _final(out, state, steps):
    """The last state of every sequence: the running state, or the last processed step."""
    if state is not None:
        return state
    o, b = steps[-1]
    return out[o:o + b].copy()


def _state_grads(xp, gy, n, width, batch, dtype, grad_state):
    """Upstream grads as (N, width) and a (B, width) running state grad."""
    dy = xp.zeros((n, width), dtype) if gy is None else gy.reshape(n, width)
    ds = xp.zeros((batch, width), dtype) if grad_state is None else grad_state.astype(dtype, copy=True)
    return dy, ds


def _scaled_transpose(xp, w_hh, scale):
    """``(w_hh * scale[:, None]).T`` in C order, made in one pass (see the module note on the per-step GEMMs)."""
    out = xp.empty((w_hh.shape[1], w_hh.shape[0]), dtype=w_hh.dtype)
    xp.multiply(w_hh.T, scale, out=out)
    return out


def _weight_grads(need: tuple, w_pos: int, dgx, dgh, x2, prev, w_ih, has_bias: bool) -> tuple:
    """dX, dW_ih, dW_hh, db_ih, db_hh from the stacked gate grads: one GEMM each over all steps.
    ``need[w_pos]`` is W_ih's entry (W_hh, b_ih, b_hh follow)."""
    dx = pmatmul(dgx, w_ih) if need[0] else None
    dw_ih = pmatmul(dgx.T, x2) if need[w_pos] else None
    dw_hh = pmatmul(dgh.T, prev) if need[w_pos + 1] else None
    db_ih = db_hh = None
    if has_bias:
        db_ih = dgx.sum(axis=0) if need[w_pos + 2] else None
        if need[w_pos + 3]:
            db_hh = db_ih if dgh is dgx and db_ih is not None else dgh.sum(axis=0)
    return dx, dw_ih, dw_hh, db_ih, db_hh


# ----------------------------------------------------------------------------- Elman RNN
class RNNSaved(NamedTuple):
    x2: object
    w_ih: object
    w_hh: object
    out: object  # (N, H): every step's output
    prev: object  # (N, H): the state every step read
    steps: list
    batch: int
    relu: bool
    has_bias: bool


def rnn_forward(x2, h0, w_ih, w_hh, b_ih, b_hh, steps, batch, reverse, packed, relu) -> tuple:
    """h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act = tanh or relu: ``(out (N, H), h_n, saved)``."""
    get_num_threads()  # NumPy's BLAS down to one thread (deepgrad's threads around it), if not done yet
    xp = array_module(x2)
    n, hidden, dtype = x2.shape[0], w_hh.shape[0], x2.dtype
    acts = pmatmul(x2, w_ih.T)
    if b_ih is not None:
        acts += b_ih + b_hh
    out, prev, state = _state_buffers(xp, n, batch, hidden, dtype, h0, packed, reverse)
    tmp = xp.empty((batch, hidden), dtype)
    w_hh_t = xp.ascontiguousarray(w_hh.T)  # C order: see the module note on the per-step GEMMs
    for o, b in steps:
        hp = prev[o:o + b]
        if packed:
            hp[...] = state[:b]
        y = out[o:o + b]
        xp.dot(hp, w_hh_t, out=tmp[:b])
        xp.add(acts[o:o + b], tmp[:b], out=y)
        if relu:
            xp.maximum(y, 0, out=y)
        else:
            xp.tanh(y, out=y)
        if packed:
            state[:b] = y
    return out, _final(out, state, steps), RNNSaved(x2, w_ih, w_hh, out, prev, steps, batch, relu, b_ih is not None)


def rnn_backward(g, g_h, saved: RNNSaved, need: tuple) -> tuple:
    """``(dx2, dh0, dW_ih, dW_hh, db_ih, db_hh)`` of :func:`rnn_forward`."""
    out, w_hh = saved.out, saved.w_hh
    get_num_threads()  # NumPy's BLAS down to one thread (deepgrad's threads around it), if not done yet
    xp = array_module(out)
    n, hidden = out.shape[0], w_hh.shape[0]
    dy, ds = _state_grads(xp, g, n, hidden, saved.batch, out.dtype, g_h)
    # Local derivative of the activation for every step at once, from the saved outputs.
    deriv = (out > 0).astype(out.dtype) if saved.relu else 1 - out * out
    dgates = xp.empty_like(out)
    for o, b in reversed(saved.steps):
        da = dgates[o:o + b]
        xp.add(dy[o:o + b], ds[:b], out=da)
        da *= deriv[o:o + b]
        xp.dot(da, w_hh, out=ds[:b])
    dx, dw_ih, dw_hh, db_ih, db_hh = _weight_grads(need, 2, dgates, dgates, saved.x2, saved.prev, saved.w_ih,
                                                   saved.has_bias)
    return dx, (ds if need[1] else None), dw_ih, dw_hh, db_ih, db_hh


# ----------------------------------------------------------------------------- LSTM
class LSTMSaved(NamedTuple):
    x2: object
    w_ih: object
    w_hh: object
    w_hr: object  # projection (proj_size, H), or None
    acts: object  # (N, 4H): gate activations i, f, g, o of every step
    prev: object  # (N, width): the hidden state every step read
    cprev: object  # (N, H): the cell state every step read
    tanh_c: object  # (N, H)
    m_all: object  # (N, H): o * tanh(c) before the projection (projections only)
    steps: list
    batch: int
    has_bias: bool
    packed: bool
    reverse: bool


def _lstm_gate_inputs(xp, x2, w_ih, w_hh, b_ih, b_hh, hidden: int, dtype) -> tuple:
    """``(scale, offset, acts, w_hh_st)``: the gates' scale and offset (sigmoid gates i, f, o are halved for the
    tanh trick), every step's input projection (one GEMM over all steps, split across deepgrad's threads) with the
    biases, and the scaled W_hh transposed, in C order (see the module note on the per-step GEMMs)."""
    scale = xp.full(4 * hidden, 0.5, dtype)
    scale[2 * hidden:3 * hidden] = 1
    offset = xp.where(scale == 0.5, 0.5, 0).astype(dtype)
    acts = pmatmul(x2, (w_ih * scale[:, None]).T)
    if b_ih is not None:
        acts += (b_ih + b_hh) * scale
    return scale, offset, acts, _scaled_transpose(xp, w_hh, scale)


def _lstm_step(xp, h, gates, c_prev, c, tanh_c, y, m, w_hh_st, scale, offset, w_hr_t, tmp, tmp_h) -> None:
    """One LSTM step of :func:`lstm_forward` and :func:`lstm_infer`, in place on (b, .) views: ``gates`` (the step's
    input projection) becomes the gate activations, ``c`` the new cell state (``c_prev`` may be ``c`` itself),
    ``tanh_c`` its tanh and ``y`` the output, through ``m = o * tanh(c)`` and ``W_hr`` when ``w_hr_t`` is given.
    ``tmp`` (b, 4H) and ``tmp_h`` (b, H) are scratch."""
    hidden = c.shape[-1]
    xp.dot(h, w_hh_st, out=tmp)
    gates += tmp
    xp.tanh(gates, out=gates)
    gates *= scale
    gates += offset
    xp.multiply(gates[:, hidden:2 * hidden], c_prev, out=c)
    xp.multiply(gates[:, :hidden], gates[:, 2 * hidden:3 * hidden], out=tmp_h)
    c += tmp_h
    xp.tanh(c, out=tanh_c)
    if w_hr_t is None:
        xp.multiply(gates[:, 3 * hidden:], tanh_c, out=y)
    else:
        xp.multiply(gates[:, 3 * hidden:], tanh_c, out=m)
        xp.dot(m, w_hr_t, out=y)


def lstm_forward(x2, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, steps, batch, reverse, packed) -> tuple:
    """torch's LSTM: gates (i, f, g, o); c_t = f*c + i*g; h_t = o*tanh(c_t) [@ W_hr^T].
    Returns ``(out (N, width), h_n, c_n, saved)``."""
    get_num_threads()  # NumPy's BLAS down to one thread (deepgrad's threads around it), if not done yet
    xp = array_module(x2)
    n, dtype = x2.shape[0], x2.dtype
    hidden, width = w_hh.shape[0] // 4, w_hh.shape[1]  # width = proj_size with projections
    compiled = _compiled(xp, dtype, packed, w_hr)
    scale, offset, acts, w_hh_st = _lstm_gate_inputs(xp, x2, w_ih, w_hh, b_ih, b_hh, hidden, dtype)
    out, prev, hstate = _state_buffers(xp, n, batch, width, dtype, h0, packed, reverse)
    cells, cprev, cstate = _state_buffers(xp, n, batch, hidden, dtype, c0, packed, reverse)
    tanh_c = xp.empty((n, hidden), dtype)
    m_all = xp.empty((n, hidden), dtype) if w_hr is not None else None
    tmp = xp.empty((batch, 4 * hidden), dtype)
    if compiled is not None:
        seq, first = len(steps), slice(n - batch, n) if reverse else slice(0, batch)  # rows of h0 / c0 in prev
        args = (acts.reshape(seq, batch, 4 * hidden), w_hh_st, prev[first], cprev[first],
                out.reshape(seq, batch, width), cells.reshape(seq, batch, hidden), tanh_c.reshape(seq, batch, hidden),
                scale, offset, tmp, reverse, True)
        _rows_in_parallel(batch, lambda lo, hi: compiled.lstm_sequence(*args, lo, hi))
    else:
        _lstm_forward_loop(xp, acts, out, prev, hstate, cells, cprev, cstate, tanh_c, m_all, w_hh_st, scale, offset,
                           w_hr, tmp, steps, packed)
    saved = LSTMSaved(x2, w_ih, w_hh, w_hr, acts, prev, cprev, tanh_c, m_all, steps, batch, b_ih is not None, packed,
                      reverse)
    return out, _final(out, hstate, steps), _final(cells, cstate, steps), saved


def _lstm_forward_loop(xp, acts, out, prev, hstate, cells, cprev, cstate, tanh_c, m_all, w_hh_st, scale, offset,
                       w_hr, tmp, steps, packed) -> None:
    """:func:`lstm_forward`'s loop through time in NumPy, one :func:`_lstm_step` per step."""
    tmp_h = xp.empty((tmp.shape[0], cells.shape[1]), tmp.dtype)
    w_hr_t = w_hr.T if w_hr is not None else None
    for o, b in steps:
        hp, cp = prev[o:o + b], cprev[o:o + b]
        if packed:
            hp[...] = hstate[:b]
            cp[...] = cstate[:b]
        c = cells[o:o + b]
        _lstm_step(xp, hp, acts[o:o + b], cp, c, tanh_c[o:o + b], out[o:o + b],
                   None if m_all is None else m_all[o:o + b], w_hh_st, scale, offset, w_hr_t, tmp[:b], tmp_h[:b])
        if packed:
            hstate[:b] = out[o:o + b]
            cstate[:b] = c


def lstm_backward(g, g_h, g_c, saved: LSTMSaved, need: tuple) -> tuple:
    """``(dx2, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh, dW_hr)`` of :func:`lstm_forward`."""
    acts, w_hh, w_hr = saved.acts, saved.w_hh, saved.w_hr
    get_num_threads()  # NumPy's BLAS down to one thread (deepgrad's threads around it), if not done yet
    xp = array_module(acts)
    n, dtype = acts.shape[0], acts.dtype
    hidden, width, batch = w_hh.shape[0] // 4, w_hh.shape[1], saved.batch
    dy, dh_state = _state_grads(xp, g, n, width, batch, dtype, g_h)
    _, dc_state = _state_grads(xp, None, n, hidden, batch, dtype, g_c)
    dgates, dh_all = xp.empty((n, 4 * hidden), dtype), None
    compiled = _compiled(xp, dtype, saved.packed, w_hr)
    if compiled is not None:
        seq = len(saved.steps)
        args = (acts.reshape(seq, batch, 4 * hidden), saved.tanh_c.reshape(seq, batch, hidden),
                saved.cprev.reshape(seq, batch, hidden), xp.ascontiguousarray(dy, dtype).reshape(seq, batch, hidden),
                xp.ascontiguousarray(w_hh), dh_state, dc_state, dgates.reshape(seq, batch, 4 * hidden), saved.reverse)
        _rows_in_parallel(batch, lambda lo, hi: compiled.lstm_sequence_backward(*args, lo, hi))
    else:
        dh_all = _lstm_backward_loop(xp, saved, dy, dh_state, dc_state, dgates)
    dx, dw_ih, dw_hh, db_ih, db_hh = _weight_grads(need, 3, dgates, dgates, saved.x2, saved.prev, saved.w_ih,
                                                   saved.has_bias)
    dw_hr = pmatmul(dh_all.T, saved.m_all) if w_hr is not None and need[7] else None
    return (dx, (dh_state if need[1] else None), (dc_state if need[2] else None), dw_ih, dw_hh, db_ih, db_hh,
            dw_hr)


def _lstm_backward_loop(xp, saved: LSTMSaved, dy, dh_state, dc_state, dgates):
    """:func:`lstm_backward`'s loop through time in NumPy: fills ``dgates`` (N, 4H) and updates the running state
    grads in place; returns the grads of the projected outputs (N, proj) with a projection, else ``None``."""
    acts, tanh_c, w_hh, w_hr = saved.acts, saved.tanh_c, saved.w_hh, saved.w_hr
    n, dtype = acts.shape[0], acts.dtype
    hidden, width = w_hh.shape[0] // 4, w_hh.shape[1]
    i, f = acts[:, :hidden], acts[:, hidden:2 * hidden]
    gg, og = acts[:, 2 * hidden:3 * hidden], acts[:, 3 * hidden:]
    # Every local derivative for all steps at once; the loop then only chains them.
    d_o = tanh_c * og * (1 - og)            # dL/d(o pre-act) = dm * d_o
    d_c = og * (1 - tanh_c * tanh_c)        # dL/dc += dm * d_c
    d_ifg = xp.empty((n, 3, hidden), dtype)  # dL/d(i, f, g pre-act) = dc * d_ifg
    xp.multiply(gg * i, 1 - i, out=d_ifg[:, 0])
    xp.multiply(saved.cprev * f, 1 - f, out=d_ifg[:, 1])
    xp.multiply(i, 1 - gg * gg, out=d_ifg[:, 2])
    dgates4 = dgates.reshape(n, 4, hidden)
    dh_all = xp.empty((n, width), dtype) if w_hr is not None else None
    dc = xp.empty((saved.batch, hidden), dtype)
    for o, b in reversed(saved.steps):
        if w_hr is None:
            dm = dy[o:o + b] + dh_state[:b]
        else:
            dh = dh_all[o:o + b]
            xp.add(dy[o:o + b], dh_state[:b], out=dh)
            dm = dh @ w_hr
        dcb = dc[:b]
        xp.multiply(dm, d_c[o:o + b], out=dcb)
        dcb += dc_state[:b]
        xp.multiply(dm, d_o[o:o + b], out=dgates4[o:o + b, 3])
        xp.multiply(dcb[:, None, :], d_ifg[o:o + b], out=dgates4[o:o + b, :3])
        xp.multiply(dcb, f[o:o + b], out=dc_state[:b])
        xp.dot(dgates[o:o + b], w_hh, out=dh_state[:b])
    return dh_all


def lstm_infer(x2, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, steps, batch, reverse, packed) -> tuple:
    """:func:`lstm_forward`'s ``(out, h_n, c_n)``, bit for bit, for a forward that will not be differentiated
    (``no_grad`` / ``inference_mode``): the same calls, but nothing kept for a backward. The gates of a step are
    computed in place in its rows of the input projection, the cell state and ``tanh(c)`` live in one (B, H)
    buffer each that every step reuses, and the hidden state is read back from the output; the training kernel
    instead writes every step's previous h and c, and tanh(c), into (N, H) arrays that its backward reads.
    (Putting the cell state beside the gates in one ``[i f o g c]`` row, to get ``(i*g, f*c)`` in one multiply,
    saved one call per step but lost 8-12% at batch 32-256 on the strided (B, 3H) slices it needs.)
    """
    get_num_threads()  # NumPy's BLAS down to one thread (deepgrad's threads around it), if not done yet
    xp = array_module(x2)
    n, dtype = x2.shape[0], x2.dtype
    hidden, width = w_hh.shape[0] // 4, w_hh.shape[1]
    compiled = _compiled(xp, dtype, packed, w_hr)
    scale, offset, acts, w_hh_st = _lstm_gate_inputs(xp, x2, w_ih, w_hh, b_ih, b_hh, hidden, dtype)
    out = xp.empty((n, width), dtype)
    hstate = None
    if packed:
        hstate = xp.zeros((batch, width), dtype) if h0 is None else h0.astype(dtype, copy=True)
    first = None if packed else (xp.zeros((batch, width), dtype) if h0 is None else h0)
    cell = xp.zeros((batch, hidden), dtype) if c0 is None else c0.astype(dtype, copy=True)
    tmp, tmp_h, tanh_c = xp.empty((batch, 4 * hidden), dtype), xp.empty((batch, hidden), dtype), \
        xp.empty((batch, hidden), dtype)
    m_buf = xp.empty((batch, hidden), dtype) if w_hr is not None else None
    w_hr_t = w_hr.T if w_hr is not None else None
    if compiled is not None:  # the running c in two (B, H) buffers, alternately; tanh(c) as scratch
        cells = xp.empty((2, batch, hidden), dtype)
        args = (acts.reshape(len(steps), batch, 4 * hidden), w_hh_st, xp.ascontiguousarray(first), cell,
                out.reshape(len(steps), batch, width), cells, tanh_c[None], scale, offset, tmp, reverse, False)
        _rows_in_parallel(batch, lambda lo, hi: compiled.lstm_sequence(*args, lo, hi))
        return out, _final(out, None, steps), cells[(len(steps) - 1) % 2]
    if not packed and w_hr is None:  # the common case: every step's views made up front, no slicing in the loop
        _lstm_infer_padded(xp, acts, out, first, cell, w_hh_st, scale, offset, tmp, tmp_h, tanh_c, steps, batch,
                           hidden)
        return out, _final(out, None, steps), cell
    previous = None
    for o, b in steps:
        hp = hstate[:b] if packed else (first if previous is None else out[previous:previous + b])
        y = out[o:o + b]
        _lstm_step(xp, hp, acts[o:o + b], cell[:b], cell[:b], tanh_c[:b], y, None if m_buf is None else m_buf[:b],
                   w_hh_st, scale, offset, w_hr_t, tmp[:b], tmp_h[:b])
        if packed:
            hstate[:b] = y
        previous = o
    return out, _final(out, hstate, steps), cell


def _lstm_infer_padded(xp, acts, out, h, cell, w_hh_st, scale, offset, tmp, tmp_h, tanh_c, steps, batch, hidden):
    """:func:`lstm_infer`'s loop for a padded batch without projection: the same calls in the same order, on
    per-step views that NumPy's iterator hands out (a step's gates, its four gate blocks, its output) instead of
    ~8 Python slicings per step, which cost ~15% of a batch-1 step."""
    seq = len(steps)
    acts3, out3 = acts.reshape(seq, batch, 4 * hidden), out.reshape(seq, batch, hidden)
    blocks = acts.reshape(seq, batch, 4, hidden).transpose(2, 0, 1, 3)  # (gate, step, batch, hidden) views
    views = zip(acts3, blocks[0], blocks[1], blocks[2], blocks[3], out3)
    if steps[0][0] != 0:  # reversed: the steps run from the last row block back
        views = zip(acts3[::-1], blocks[0][::-1], blocks[1][::-1], blocks[2][::-1], blocks[3][::-1], out3[::-1])
    for gates, i, f, g, o, y in views:
        xp.dot(h, w_hh_st, out=tmp)
        gates += tmp
        xp.tanh(gates, out=gates)
        gates *= scale
        gates += offset
        xp.multiply(f, cell, out=cell)
        xp.multiply(i, g, out=tmp_h)
        cell += tmp_h
        xp.tanh(cell, out=tanh_c)
        xp.multiply(o, tanh_c, out=y)
        h = y


# ----------------------------------------------------------------------------- GRU
class GRUSaved(NamedTuple):
    x2: object
    w_ih: object
    w_hh: object
    acts: object  # (N, 3H): gate activations r, z, n of every step
    prev: object  # (N, H): the state every step read
    hn_all: object  # (N, H): W_hn h + b_hn, needed for dr
    steps: list
    batch: int
    has_bias: bool


def gru_forward(x2, h0, w_ih, w_hh, b_ih, b_hh, steps, batch, reverse, packed) -> tuple:
    """torch's GRU: gates (r, z, n); n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); h_t = (1 - z) * n + z * h.
    Returns ``(out (N, H), h_n, saved)``."""
    get_num_threads()  # NumPy's BLAS down to one thread (deepgrad's threads around it), if not done yet
    xp = array_module(x2)
    n, dtype, hidden = x2.shape[0], x2.dtype, w_hh.shape[1]
    h2 = 2 * hidden
    scale = xp.ones(3 * hidden, dtype)
    scale[:h2] = 0.5  # r and z are sigmoids (tanh trick); n is a tanh
    acts = pmatmul(x2, (w_ih * scale[:, None]).T)
    b_hn = None
    if b_ih is not None:
        bias = b_ih.copy()
        bias[:h2] += b_hh[:h2]  # b_hr, b_hz add outside the reset gate; b_hn stays inside
        acts += bias * scale
        b_hn = b_hh[h2:]
    w_hh_st = _scaled_transpose(xp, w_hh, scale)
    out, prev, state = _state_buffers(xp, n, batch, hidden, dtype, h0, packed, reverse)
    hn_all = xp.empty((n, hidden), dtype)
    tmp = xp.empty((batch, 3 * hidden), dtype)
    tmp_h = xp.empty((batch, hidden), dtype)
    for o, b in steps:
        hp = prev[o:o + b]
        if packed:
            hp[...] = state[:b]
        a, t = acts[o:o + b], tmp[:b]
        xp.dot(hp, w_hh_st, out=t)
        rz = a[:, :h2]
        rz += t[:, :h2]
        xp.tanh(rz, out=rz)
        rz *= 0.5
        rz += 0.5
        hn = hn_all[o:o + b]
        if b_hn is None:
            hn[...] = t[:, h2:]
        else:
            xp.add(t[:, h2:], b_hn, out=hn)
        nn_ = a[:, h2:]
        xp.multiply(rz[:, :hidden], hn, out=tmp_h[:b])
        nn_ += tmp_h[:b]
        xp.tanh(nn_, out=nn_)
        y = out[o:o + b]
        xp.subtract(hp, nn_, out=y)  # h' = n + z * (h - n)
        y *= rz[:, hidden:]
        y += nn_
        if packed:
            state[:b] = y
    saved = GRUSaved(x2, w_ih, w_hh, acts, prev, hn_all, steps, batch, b_ih is not None)
    return out, _final(out, state, steps), saved


def gru_backward(g, g_h, saved: GRUSaved, need: tuple) -> tuple:
    """``(dx2, dh0, dW_ih, dW_hh, db_ih, db_hh)`` of :func:`gru_forward`."""
    acts, w_hh = saved.acts, saved.w_hh
    get_num_threads()  # NumPy's BLAS down to one thread (deepgrad's threads around it), if not done yet
    xp = array_module(acts)
    n, dtype, hidden, batch = acts.shape[0], acts.dtype, w_hh.shape[1], saved.batch
    dy, ds = _state_grads(xp, g, n, hidden, batch, dtype, g_h)
    r, z, nn_ = acts[:, :hidden], acts[:, hidden:2 * hidden], acts[:, 2 * hidden:]
    # Local derivatives for all steps at once (see gru_forward for the forward).
    k_n = (1 - z) * (1 - nn_ * nn_)                 # dL/d(n pre-act) = dh * k_n
    k_h = xp.empty((n, 3, hidden), dtype)           # dL/d(W_hh h + b_hh) = dh * k_h
    xp.multiply(k_n * saved.hn_all, r * (1 - r), out=k_h[:, 0])
    xp.multiply((saved.prev - nn_) * z, 1 - z, out=k_h[:, 1])
    xp.multiply(k_n, r, out=k_h[:, 2])
    dgh = xp.empty((n, 3 * hidden), dtype)
    dgh3 = dgh.reshape(n, 3, hidden)
    dh_all = xp.empty((n, hidden), dtype)
    tmp_h = xp.empty((batch, hidden), dtype)
    for o, b in reversed(saved.steps):
        dh = dh_all[o:o + b]
        xp.add(dy[o:o + b], ds[:b], out=dh)
        xp.multiply(dh[:, None, :], k_h[o:o + b], out=dgh3[o:o + b])
        xp.dot(dgh[o:o + b], w_hh, out=ds[:b])
        xp.multiply(dh, z[o:o + b], out=tmp_h[:b])
        ds[:b] += tmp_h[:b]
    dgx = xp.empty_like(dgh)  # input side: r, z as on the hidden side; n without the reset gate
    dgx[:, :2 * hidden] = dgh[:, :2 * hidden]
    xp.multiply(dh_all, k_n, out=dgx[:, 2 * hidden:])
    dx, dw_ih, dw_hh, db_ih, db_hh = _weight_grads(need, 2, dgx, dgh, saved.x2, saved.prev, saved.w_ih,
                                                   saved.has_bias)
    return dx, (ds if need[1] else None), dw_ih, dw_hh, db_ih, db_hh
