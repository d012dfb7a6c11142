"""Fused CUDA kernels for the launch-bound parts of a training step, each beside the NumPy reference it must equal.

CuPy costs ~10-20 us of Python per kernel launch, so a small model on a GPU is bound by the number of launches,
not by arithmetic. These kernels do in one launch what the array code does in five to ten: an LSTM or GRU cell
step (forward and backward), softmax + cross-entropy, batch norm (statistics + normalize, gradient sums + input
gradient) and one multi-tensor SGD / Adam update over every parameter. Sources: :mod:`.cuda_fused_sources`.

UNVERIFIED UNTIL A GPU RUN: these kernels have been compiled (``nvcc --ptx``) but never executed, so they are
off unless ``DEEPGRAD_CUDA_FUSED=1`` is set; :func:`enabled` is the switch every caller checks. The ``*_reference``
functions are the specification (array code, any backend; tests/test_gpu_fused.py checks them against torch on
the CPU and compares each kernel with its reference on a GPU).

Wired in so far: batch norm (kernels/norm.py's dispatcher) and the SGD/Adam/AdamW group updates
(optim/fused_step.py). Not wired yet, because a wiring that cannot be run is a guess: the recurrences and the
loss. Once the kernels pass on a GPU, the hooks are: ``kernels/recurrent.py`` ``lstm_forward`` (no projection,
``applies(x)``: skip the 0.5 scale trick and replace each step's gate math from ``tanh(gates)`` to the write of
``out`` with ``lstm_cell_forward(gates, c_prev, out=(out rows, cell rows, tanh_c rows))``); ``lstm_backward``
(per step ``lstm_cell_backward(dh, dc_state, acts, tanh_c, c_prev, out=(dgates rows, dc_state))`` before the
existing matmul); the GRU the same way (unscaled gate activations; the hidden gate's bias added to its
recurrent part; backward adds ``dgh @ w_hh`` to the direct ``dh``); ``ops/loss_classification.py``'s class-index
cross-entropy for 2-D CuPy input without weights or label smoothing (``cross_entropy_forward`` /
``cross_entropy_backward``).

>>> import numpy as np
>>> h, c, acts, tanh_c = lstm_cell_forward_reference(np.zeros((2, 8), np.float32), np.ones((2, 2), np.float32))
>>> c.tolist()  # f = sigmoid(0) = 0.5 keeps half of c; i * g = 0.5 * tanh(0) adds nothing
[[0.5, 0.5], [0.5, 0.5]]
"""

from __future__ import annotations

import os

import numpy as np

from ..backend import array_module, cupy_module
from . import cuda_fused_sources

ENV_FLAG = "DEEPGRAD_CUDA_FUSED"
_BLOCK = 256
_kernels: dict = {}
_pointer_tables: dict = {}


def enabled() -> bool:
    """True when ``DEEPGRAD_CUDA_FUSED=1`` and CuPy sees a GPU (read at each call: tests switch it)."""
    return cupy_module() is not None and os.environ.get(ENV_FLAG) == "1"  # no GPU: one cached lookup


def applies(*arrays) -> bool:
    """The fused path is on and every array is a C-contiguous float32/float64 CuPy array of one dtype."""
    if not enabled():
        return False
    cp = cupy_module()
    first = arrays[0].dtype
    return all(isinstance(a, cp.ndarray) and a.flags.c_contiguous and a.dtype == first for a in arrays) and \
        first in (np.float32, np.float64)


def _kernel(name: str, dtype):
    key = (name, np.dtype(dtype).name)
    if key not in _kernels:
        cp = cupy_module()
        _kernels[key] = cp.RawKernel(cuda_fused_sources.source(name, key[1]), name)
    return _kernels[key]


def _grid(n: int) -> tuple:
    return (max(1, min((n + _BLOCK - 1) // _BLOCK, 65535)),)


def _launch(name: str, dtype, n: int, args: tuple, blocks: int | None = None) -> None:
    grid = _grid(n) if blocks is None else (max(1, min(blocks, 65535)),)
    _kernel(name, dtype)(grid, (_BLOCK,), args)


# ----------------------------------------------------------------------------- references (any backend)
def _sigmoid(a):
    xp = array_module(a)
    e = xp.exp(-abs(a))
    return xp.where(a >= 0, 1 / (1 + e), e / (1 + e))


def lstm_cell_forward_reference(gates, c_prev) -> tuple:
    """``(h, c, acts, tanh_c)`` of torch's LSTM cell from pre-activations ``gates`` (B, 4H), order (i, f, g, o)."""
    hidden = c_prev.shape[1]
    acts = _sigmoid(gates)
    acts[:, 2 * hidden:3 * hidden] = array_module(gates).tanh(gates[:, 2 * hidden:3 * hidden])
    i, f, g, o = (acts[:, k * hidden:(k + 1) * hidden] for k in range(4))
    c = f * c_prev + i * g
    tanh_c = array_module(c).tanh(c)
    return o * tanh_c, c, acts, tanh_c


def lstm_cell_backward_reference(dh, dc_next, acts, tanh_c, c_prev) -> tuple:
    """``(dgates, dc_prev)``: gradients of the pre-activations and of c_{t-1}, given dL/dh_t and dL/dc_t (from t+1)."""
    hidden = c_prev.shape[1]
    i, f, g, o = (acts[:, k * hidden:(k + 1) * hidden] for k in range(4))
    dc = dh * o * (1 - tanh_c * tanh_c) + dc_next
    dgates = array_module(acts).concatenate(
        [dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g * g), dh * tanh_c * o * (1 - o)], axis=1)
    return dgates, dc * f


def gru_cell_forward_reference(gi, gh, h_prev) -> tuple:
    """``(h, acts, hn)`` of torch's GRU cell: gi = x W_ih^T + b_ih, gh = h W_hh^T + b_hh (B, 3H), gates (r, z, n)."""
    xp, hidden = array_module(gi), h_prev.shape[1]
    r = _sigmoid(gi[:, :hidden] + gh[:, :hidden])
    z = _sigmoid(gi[:, hidden:2 * hidden] + gh[:, hidden:2 * hidden])
    hn = gh[:, 2 * hidden:].copy()
    n = xp.tanh(gi[:, 2 * hidden:] + r * hn)
    return (1 - z) * n + z * h_prev, xp.concatenate([r, z, n], axis=1), hn


def gru_cell_backward_reference(dh, acts, hn, h_prev) -> tuple:
    """``(dgi, dgh, dh_direct)``: pre-activation gradients and the z * dh part of dL/dh_{t-1} (add dgh @ W_hh)."""
    xp, hidden = array_module(dh), h_prev.shape[1]
    r, z, n = acts[:, :hidden], acts[:, hidden:2 * hidden], acts[:, 2 * hidden:]
    dnp = dh * (1 - z) * (1 - n * n)
    drp = dnp * hn * r * (1 - r)
    dzp = dh * (h_prev - n) * z * (1 - z)
    return xp.concatenate([drp, dzp, dnp], axis=1), xp.concatenate([drp, dzp, dnp * r], axis=1), dh * z


def cross_entropy_forward_reference(logits, target, ignore_index: int = -100) -> tuple:
    """``(loss per row, log-sum-exp per row)`` of softmax cross-entropy; 0 loss on ``ignore_index`` rows."""
    xp = array_module(logits)
    m = logits.max(axis=1, keepdims=True)
    lse = (m + xp.log(xp.exp(logits - m).sum(axis=1, keepdims=True)))[:, 0]
    valid = target != ignore_index
    picked = xp.take_along_axis(logits, xp.where(valid, target, 0)[:, None], axis=1)[:, 0]
    return xp.where(valid, lse - picked, 0).astype(logits.dtype), lse.astype(logits.dtype)


def cross_entropy_backward_reference(logits, target, lse, grad_rows):
    """d logits = grad_rows[:, None] * (softmax(logits) - onehot(target)) (grad_rows is 0 on ignored rows)."""
    xp = array_module(logits)
    d = xp.exp(logits - lse[:, None])
    rows = xp.arange(logits.shape[0])
    hit = (target >= 0) & (target < logits.shape[1])
    d[rows[hit], target[hit]] -= 1
    return d * grad_rows[:, None]


def cross_entropy_row_grads(target, upstream, reduction: str, ignore_index: int = -100, dtype=np.float32):
    """Per-row gradient factor for :func:`cross_entropy_backward`: upstream / (valid rows) for 'mean',
    upstream for 'sum', the per-row upstream for 'none'; 0 on ignored rows."""
    xp = array_module(target)
    valid = (target != ignore_index).astype(dtype)
    if reduction == "mean":
        return valid * (upstream / xp.maximum(valid.sum(), 1))
    return valid * upstream


def batch_norm_train_forward_reference(x3, weight, bias, eps: float) -> tuple:
    """``(out, xhat, mean, var, invstd)`` of training-mode batch norm on a (N, C, L) input (per-channel stats)."""
    xp = array_module(x3)
    mean = x3.mean(axis=(0, 2))
    var = ((x3 - mean[:, None]) ** 2).mean(axis=(0, 2))
    invstd = (1 / xp.sqrt(var + eps)).astype(x3.dtype)
    xhat = (x3 - mean[:, None]) * invstd[:, None]
    out = xhat * (1 if weight is None else weight[:, None]) + (0 if bias is None else bias[:, None])
    return out.astype(x3.dtype), xhat, mean, var, invstd


def batch_norm_train_backward_reference(g3, xhat, invstd, weight) -> tuple:
    """``(dx, dweight = sum(g * xhat), dbias = sum(g))`` per channel, for batch statistics."""
    m = g3.shape[0] * g3.shape[2]
    gsum, gxsum = g3.sum(axis=(0, 2)), (g3 * xhat).sum(axis=(0, 2))
    scale = invstd if weight is None else invstd * weight
    dx = scale[:, None] * (g3 - gsum[:, None] / m - xhat * (gxsum[:, None] / m))
    return dx.astype(g3.dtype), gxsum, gsum


def adam_reference(params, grads, exp_avgs, exp_avg_sqs, *, lr, beta1, beta2, eps, weight_decay, step_size,
                   bias2_sqrt, decoupled=False, maximize=False) -> None:
    """torch.optim.Adam (amsgrad off) on lists of arrays, in place; step_size = lr / (1 - beta1**t)."""
    for p, g, m, v in zip(params, grads, exp_avgs, exp_avg_sqs):
        g = -g if maximize else g
        if weight_decay:
            if decoupled:
                p *= p.dtype.type(1 - lr * weight_decay)
            else:
                g = g + p * weight_decay
        v *= beta2
        v += (1 - beta2) * g * g
        m += (1 - beta1) * (g - m)
        p -= step_size * (m / (array_module(v).sqrt(v) / bias2_sqrt + eps))


def sgd_reference(params, grads, bufs, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                  maximize=False, first_step=False) -> None:
    """torch.optim.SGD on lists of arrays, in place (``bufs`` unused when momentum is 0)."""
    for k, (p, g) in enumerate(zip(params, grads)):
        g = -g if maximize else g
        if weight_decay:
            g = g + p * weight_decay
        if momentum:
            b = bufs[k]
            b[...] = g if first_step else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        p -= lr * g


# ----------------------------------------------------------------------------- fused kernels (CuPy arrays)
def _outputs(what: str, out, likes) -> tuple:
    """Preallocated outputs (e.g. row slices of a sequence's buffers, so a step writes in place), or new ones."""
    cp = cupy_module()
    if out is None:
        return tuple(cp.empty_like(a) for a in likes)
    if len(out) != len(likes):
        raise ValueError(f"{what}: out needs {len(likes)} arrays, got {len(out)}")
    for a, like in zip(out, likes):
        if a.shape != like.shape or a.dtype != like.dtype or not a.flags.c_contiguous:
            raise ValueError(f"{what}: out array {a.shape} {a.dtype} must be C-contiguous {like.shape} {like.dtype}")
    return tuple(out)


def lstm_cell_forward(gates, c_prev, out=None) -> tuple:
    """:func:`lstm_cell_forward_reference` in one launch; ``gates`` (C-contiguous) becomes ``acts`` in place.
    ``out`` = (h, c, tanh_c) to write into (c may alias c_prev)."""
    cp = cupy_module()
    if not gates.flags.c_contiguous:
        raise ValueError("lstm_cell_forward: gates must be C-contiguous (they are overwritten in place)")
    c_prev = cp.ascontiguousarray(c_prev)
    n, hidden = c_prev.size, c_prev.shape[1]
    h, c, tanh_c = _outputs("lstm_cell_forward", out, (c_prev,) * 3)
    _launch("lstm_cell_forward", gates.dtype, n, (gates, c_prev, c, tanh_c, h, np.int64(n), np.int64(hidden)))
    return h, c, gates, tanh_c


def lstm_cell_backward(dh, dc_next, acts, tanh_c, c_prev, out=None) -> tuple:
    """``out`` = (dgates, dc_prev) to write into (dc_prev may alias dc_next)."""
    cp = cupy_module()
    dh, dc_next, acts, tanh_c, c_prev = map(cp.ascontiguousarray, (dh, dc_next, acts, tanh_c, c_prev))
    n, hidden = c_prev.size, c_prev.shape[1]
    dgates, dc_prev = _outputs("lstm_cell_backward", out, (acts, c_prev))
    _launch("lstm_cell_backward", acts.dtype, n,
            (dh, dc_next, acts, tanh_c, c_prev, dgates, dc_prev, np.int64(n), np.int64(hidden)))
    return dgates, dc_prev


def gru_cell_forward(gi, gh, h_prev, out=None) -> tuple:
    """``out`` = (h, acts, hn) to write into (h may alias h_prev)."""
    cp = cupy_module()
    gi, gh, h_prev = map(cp.ascontiguousarray, (gi, gh, h_prev))
    n, hidden = h_prev.size, h_prev.shape[1]
    h, acts, hn = _outputs("gru_cell_forward", out, (h_prev, gi, h_prev))
    _launch("gru_cell_forward", gi.dtype, n, (gi, gh, h_prev, acts, hn, h, np.int64(n), np.int64(hidden)))
    return h, acts, hn


def gru_cell_backward(dh, acts, hn, h_prev, out=None) -> tuple:
    """``out`` = (dgi, dgh, dh_direct) to write into (dh_direct may alias dh)."""
    cp = cupy_module()
    dh, acts, hn, h_prev = map(cp.ascontiguousarray, (dh, acts, hn, h_prev))
    n, hidden = h_prev.size, h_prev.shape[1]
    dgi, dgh, dh_direct = _outputs("gru_cell_backward", out, (acts, acts, h_prev))
    _launch("gru_cell_backward", acts.dtype, n,
            (dh, acts, hn, h_prev, dgi, dgh, dh_direct, np.int64(n), np.int64(hidden)))
    return dgi, dgh, dh_direct


def cross_entropy_forward(logits, target, ignore_index: int = -100) -> tuple:
    cp = cupy_module()
    rows, classes = logits.shape
    logits, target = cp.ascontiguousarray(logits), cp.ascontiguousarray(target, dtype=cp.int64)
    loss, lse = cp.empty(rows, logits.dtype), cp.empty(rows, logits.dtype)
    _launch("cross_entropy_forward", logits.dtype, rows,
            (logits, target, loss, lse, np.int64(rows), np.int64(classes), np.int64(ignore_index)), blocks=rows)
    return loss, lse


def cross_entropy_backward(logits, target, lse, grad_rows):
    cp = cupy_module()
    logits, lse = cp.ascontiguousarray(logits), cp.ascontiguousarray(lse)
    target = cp.ascontiguousarray(target, dtype=cp.int64)
    grad_rows = cp.ascontiguousarray(grad_rows, dtype=logits.dtype)
    d = cp.empty_like(logits)
    _launch("cross_entropy_backward", logits.dtype, logits.size,
            (logits, target, lse, grad_rows, d, np.int64(logits.size), np.int64(logits.shape[1])))
    return d


def batch_norm_train_forward(x3, weight, bias, eps: float) -> tuple:
    """:func:`batch_norm_train_forward_reference` in two launches (per-channel statistics, then normalize)."""
    cp = cupy_module()
    x3 = cp.ascontiguousarray(x3)
    weight = None if weight is None else cp.ascontiguousarray(weight)
    bias = None if bias is None else cp.ascontiguousarray(bias)
    n, c, length = x3.shape
    mean, var, invstd = (cp.empty(c, x3.dtype) for _ in range(3))
    _launch("batch_norm_stats", x3.dtype, c,
            (x3, mean, var, invstd, np.int64(n), np.int64(c), np.int64(length), np.float64(eps)), blocks=c)
    xhat, out = cp.empty_like(x3), cp.empty_like(x3)
    dummy = mean  # never read when the flag is 0
    _launch("batch_norm_apply", x3.dtype, x3.size,
            (x3, mean, invstd, dummy if weight is None else weight, dummy if bias is None else bias, xhat, out,
             np.int64(x3.size), np.int64(c), np.int64(length), np.int32(weight is not None),
             np.int32(bias is not None)))
    return out, xhat, mean, var, invstd


def batch_norm_train_backward(g3, xhat, invstd, weight) -> tuple:
    cp = cupy_module()
    g3, xhat = cp.ascontiguousarray(g3), cp.ascontiguousarray(xhat)
    n, c, length = g3.shape
    gsum, gxsum = cp.empty(c, g3.dtype), cp.empty(c, g3.dtype)
    _launch("batch_norm_grad_sums", g3.dtype, c,
            (g3, xhat, gsum, gxsum, np.int64(n), np.int64(c), np.int64(length)), blocks=c)
    scale = cp.ascontiguousarray(invstd if weight is None else invstd * weight)
    dx = cp.empty_like(g3)
    _launch("batch_norm_backward_input", g3.dtype, g3.size,
            (g3, xhat, scale, gsum, gxsum, dx, np.int64(g3.size), np.int64(c), np.int64(length),
             np.int64(n * length)))
    return dx, gxsum, gsum


def _device_table(kind: str, values: tuple, dtype):
    """``values`` as a small device array, cached: the same parameters (pointers, sizes) come back every step.
    A table holds values, not references, so a reused address simply finds its own correct table."""
    key = (kind,) + values
    table = _pointer_tables.get(key)
    if table is None:
        if len(_pointer_tables) > 256:  # gradients are fresh arrays each step: keep the cache bounded
            _pointer_tables.clear()
        table = _pointer_tables[key] = cupy_module().asarray(np.array(values, dtype=dtype))
    return table


def _pointers(arrays):
    return _device_table("ptr", tuple(a.data.ptr for a in arrays), np.uint64)


def _offsets(params) -> tuple:
    offsets = np.cumsum([0] + [p.size for p in params]).tolist()
    return _device_table("offsets", tuple(offsets), np.int64), int(offsets[-1])


def _check_multi(what: str, *lists) -> None:
    first = lists[0][0]
    for arrays in lists:
        for a in arrays:
            if a.dtype != first.dtype or not a.flags.c_contiguous:
                raise ValueError(f"{what}: every tensor must be C-contiguous {first.dtype}, got {a.dtype} "
                                 f"(contiguous={a.flags.c_contiguous})")


def adam_multi_tensor(params, grads, exp_avgs, exp_avg_sqs, *, lr, beta1, beta2, eps, weight_decay, step_size,
                      bias2_sqrt, decoupled=False, maximize=False) -> None:
    """:func:`adam_reference` over every tensor in one launch (all of one dtype, contiguous)."""
    _check_multi("adam_multi_tensor", params, grads, exp_avgs, exp_avg_sqs)
    offsets, total = _offsets(params)
    _launch("adam_multi_tensor", params[0].dtype, total,
            (_pointers(params), _pointers(grads), _pointers(exp_avgs), _pointers(exp_avg_sqs), offsets,
             np.int32(len(params)), np.int64(total), np.float64(lr), np.float64(beta1), np.float64(beta2),
             np.float64(eps), np.float64(weight_decay), np.float64(step_size), np.float64(bias2_sqrt),
             np.int32(decoupled), np.int32(maximize)))


def sgd_multi_tensor(params, grads, bufs, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                     maximize=False, first_step=False) -> None:
    """:func:`sgd_reference` over every tensor in one launch (``bufs`` may be None when momentum is 0)."""
    _check_multi("sgd_multi_tensor", params, grads, *([bufs] if momentum else []))
    offsets, total = _offsets(params)
    buf_table = _pointers(bufs) if momentum else _pointers(params)  # never dereferenced without momentum
    _launch("sgd_multi_tensor", params[0].dtype, total,
            (_pointers(params), _pointers(grads), buf_table, offsets, np.int32(len(params)), np.int64(total),
             np.float64(lr), np.float64(momentum), np.float64(dampening), np.float64(weight_decay),
             np.int32(nesterov), np.int32(maximize), np.int32(first_step)))
