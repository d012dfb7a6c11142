"""Plain references for the fused recurrent kernels of :mod:`deepgrad.kernels.recurrent`: one step at a time,
the textbook equations with a plain sigmoid, a running state of the whole batch and per-step caches for
backward through time. Same arguments (the flat time-major ``x2``, the ``(row_offset, active_batch)`` step
schedule) and the same gradients, in the same order, as the kernels.

>>> import numpy
>>> x2, w_ih, w_hh = numpy.ones((6, 2)), numpy.zeros((3, 2)), numpy.zeros((3, 3))
>>> out, h_n, _ = rnn_forward_reference(x2, None, w_ih, w_hh, None, None, [(0, 2), (2, 2), (4, 2)], 2, False)
>>> out.shape, h_n.shape
((6, 3), (2, 3))
"""

from __future__ import annotations

from ..backend import array_module


def _sigmoid(a):
    xp = array_module(a)
    e = xp.exp(-abs(a))
    return xp.where(a >= 0, 1 / (1 + e), e / (1 + e))


def _start(xp, init, batch: int, width: int, dtype):
    return xp.zeros((batch, width), dtype) if init is None else init.astype(dtype, copy=True)


def _affine(x, w, b):
    return x @ w.T if b is None else x @ w.T + b


# ----------------------------------------------------------------------------- Elman RNN
def rnn_forward_reference(x2, h0, w_ih, w_hh, b_ih, b_hh, steps, batch, relu) -> tuple:
    """``(out, h_n, cache)`` of h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)."""
    xp = array_module(x2)
    h = _start(xp, h0, batch, w_hh.shape[0], x2.dtype)
    out, cache = xp.empty((x2.shape[0], w_hh.shape[0]), x2.dtype), []
    for o, b in steps:
        a = _affine(x2[o:o + b], w_ih, b_ih) + _affine(h[:b], w_hh, b_hh)
        y = xp.maximum(a, 0) if relu else xp.tanh(a)
        cache.append((o, b, h[:b].copy(), y))
        h[:b] = out[o:o + b] = y
    return out, h, cache


def rnn_backward_reference(g, g_h, x2, w_ih, w_hh, has_bias: bool, cache, batch, relu) -> tuple:
    """``(dx2, dh0, dW_ih, dW_hh, db_ih, db_hh)`` through the steps of :func:`rnn_forward_reference`."""
    xp = array_module(x2)
    dh = _start(xp, g_h, batch, w_hh.shape[0], x2.dtype)
    dx, dw_ih, dw_hh = xp.zeros_like(x2), xp.zeros_like(w_ih), xp.zeros_like(w_hh)
    db = xp.zeros(w_hh.shape[0], x2.dtype)
    for o, b, h_prev, y in reversed(cache):
        d = dh[:b] + (0 if g is None else g[o:o + b])
        d = d * ((y > 0) if relu else (1 - y * y))
        dx[o:o + b] = d @ w_ih
        dw_ih += d.T @ x2[o:o + b]
        dw_hh += d.T @ h_prev
        db += d.sum(axis=0)
        dh[:b] = d @ w_hh
    return dx, dh, dw_ih, dw_hh, (db if has_bias else None), (db if has_bias else None)


# ----------------------------------------------------------------------------- LSTM
def lstm_forward_reference(x2, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, steps, batch) -> tuple:
    """``(out, h_n, c_n, cache)`` of torch's LSTM: gates (i, f, g, o), c' = f c + i g, h' = o tanh(c') [W_hr^T]."""
    xp = array_module(x2)
    hidden, width = w_hh.shape[0] // 4, w_hh.shape[1]
    h, c = _start(xp, h0, batch, width, x2.dtype), _start(xp, c0, batch, hidden, x2.dtype)
    out, cache = xp.empty((x2.shape[0], width), x2.dtype), []
    for o, b in steps:
        a = _affine(x2[o:o + b], w_ih, b_ih) + _affine(h[:b], w_hh, b_hh)
        i, f, gg, og = (a[:, k * hidden:(k + 1) * hidden] for k in range(4))
        i, f, gg, og = _sigmoid(i), _sigmoid(f), xp.tanh(gg), _sigmoid(og)
        c_new = f * c[:b] + i * gg
        m = og * xp.tanh(c_new)
        y = m if w_hr is None else m @ w_hr.T
        cache.append((o, b, h[:b].copy(), c[:b].copy(), (i, f, gg, og), c_new, m))
        h[:b], c[:b], out[o:o + b] = y, c_new, y
    return out, h, c, cache


def lstm_backward_reference(g, g_h, g_c, x2, w_ih, w_hh, w_hr, has_bias: bool, cache, batch) -> tuple:
    """``(dx2, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh, dW_hr)`` through the steps of :func:`lstm_forward_reference`."""
    xp = array_module(x2)
    hidden, width = w_hh.shape[0] // 4, w_hh.shape[1]
    dh, dc = _start(xp, g_h, batch, width, x2.dtype), _start(xp, g_c, batch, hidden, x2.dtype)
    dx, dw_ih, dw_hh = xp.zeros_like(x2), xp.zeros_like(w_ih), xp.zeros_like(w_hh)
    db = xp.zeros(4 * hidden, x2.dtype)
    dw_hr = None if w_hr is None else xp.zeros_like(w_hr)
    for o, b, h_prev, c_prev, (i, f, gg, og), c_new, m in reversed(cache):
        dy = dh[:b] + (0 if g is None else g[o:o + b])
        if w_hr is not None:
            dw_hr += dy.T @ m
            dy = dy @ w_hr
        tc = xp.tanh(c_new)
        dcb = dc[:b] + dy * og * (1 - tc * tc)
        da = xp.concatenate([dcb * gg * i * (1 - i), dcb * c_prev * f * (1 - f), dcb * i * (1 - gg * gg),
                             dy * tc * og * (1 - og)], axis=1)
        dx[o:o + b] = da @ w_ih
        dw_ih += da.T @ x2[o:o + b]
        dw_hh += da.T @ h_prev
        db += da.sum(axis=0)
        dh[:b] = da @ w_hh
        dc[:b] = dcb * f
    bias = db if has_bias else None
    return dx, dh, dc, dw_ih, dw_hh, bias, bias, dw_hr


# ----------------------------------------------------------------------------- GRU
def gru_forward_reference(x2, h0, w_ih, w_hh, b_ih, b_hh, steps, batch) -> tuple:
    """``(out, h_n, cache)`` of torch's GRU: r, z = sigmoid(...), n = tanh(W_in x + b_in + r (W_hn h + b_hn)),
    h' = (1 - z) n + z h."""
    xp = array_module(x2)
    hidden = w_hh.shape[1]
    h = _start(xp, h0, batch, hidden, x2.dtype)
    out, cache = xp.empty((x2.shape[0], hidden), x2.dtype), []
    for o, b in steps:
        gi, gh = _affine(x2[o:o + b], w_ih, b_ih), _affine(h[:b], w_hh, b_hh)
        r = _sigmoid(gi[:, :hidden] + gh[:, :hidden])
        z = _sigmoid(gi[:, hidden:2 * hidden] + gh[:, hidden:2 * hidden])
        n = xp.tanh(gi[:, 2 * hidden:] + r * gh[:, 2 * hidden:])
        y = (1 - z) * n + z * h[:b]
        cache.append((o, b, h[:b].copy(), r, z, n, gh[:, 2 * hidden:]))
        h[:b] = out[o:o + b] = y
    return out, h, cache


def gru_backward_reference(g, g_h, x2, w_ih, w_hh, has_bias: bool, cache, batch) -> tuple:
    """``(dx2, dh0, dW_ih, dW_hh, db_ih, db_hh)`` through the steps of :func:`gru_forward_reference`."""
    xp = array_module(x2)
    dh = _start(xp, g_h, batch, w_hh.shape[1], x2.dtype)
    dx, dw_ih, dw_hh = xp.zeros_like(x2), xp.zeros_like(w_ih), xp.zeros_like(w_hh)
    db_ih, db_hh = xp.zeros(w_ih.shape[0], x2.dtype), xp.zeros(w_hh.shape[0], x2.dtype)
    for o, b, h_prev, r, z, n, hn in reversed(cache):
        dy = dh[:b] + (0 if g is None else g[o:o + b])
        dan = dy * (1 - z) * (1 - n * n)
        dar = dan * hn * r * (1 - r)
        daz = dy * (h_prev - n) * z * (1 - z)
        dgi = xp.concatenate([dar, daz, dan], axis=1)
        dgh = xp.concatenate([dar, daz, dan * r], axis=1)
        dx[o:o + b] = dgi @ w_ih
        dw_ih += dgi.T @ x2[o:o + b]
        dw_hh += dgh.T @ h_prev
        db_ih += dgi.sum(axis=0)
        db_hh += dgh.sum(axis=0)
        dh[:b] = dgh @ w_hh + dy * z
    return dx, dh, dw_ih, dw_hh, (db_ih if has_bias else None), (db_hh if has_bias else None)
