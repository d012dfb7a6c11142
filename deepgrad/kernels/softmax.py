"""Softmax and log-softmax over an axis, attention's masked softmax, and their backwards.

Two implementations of each. The ``*_reference`` functions are the NumPy formulas on whole arrays (what CuPy,
float64, and an axis other than the last run). For float32 NumPy arrays over the last axis, with numba installed,
the rows of :mod:`.compiled` run instead: a NumPy softmax is five passes over the whole array (max, subtract, exp,
sum, divide), each a trip to memory once the array outgrows the cache (attention's weights at T = 256 are 16 MiB
a layer), where a compiled row is read once for its max and once for its exponentials, which stay in a float64 row
in L1 until they are normalised. They release the GIL, so rows are split across deepgrad's threads with no
hand-off of it; every row is computed alone, so any thread count gives the same bits.

Measured in one process on the 2-vCPU EPYC, one thread, float32 (64, 256, 256): the masked softmax 9.7-13 ms
with NumPy (1.2-2.8 ms a pass), 5.5 ms compiled. The two agree to float32 rounding: the compiled rows compute
in float64 and round once, so they are the more accurate (``tests/test_kernels_softmax.py``).
"""

from __future__ import annotations

import numpy as np

from ..backend import array_module
from . import compiled_kernels, is_numpy
from .parallel import parallel_for

# The compiled rows hold no GIL, so a split costs only the other thread's wake-up: each thread takes at least this
# many values (a quarter of what the NumPy kernels need, parallel.PARALLEL_MIN_ELEMENTS). Measured on the 2-vCPU
# EPYC, the softmax_256x1000 benchmark step on two threads: 3.18 ms at 1 << 18, 3.04 at 1 << 16, 3.02 at 1 << 15.
COMPILED_MIN_ELEMENTS = 1 << 16


def _compiled_for(axis: int, *arrays):
    """:mod:`.compiled` when every array is a non-empty float32 NumPy array and ``axis`` is their last; None
    otherwise (the reference runs)."""
    first = arrays[0]
    if axis != first.ndim - 1 or first.size == 0:
        return None
    if not all(is_numpy(a) and a.dtype == np.float32 and a.shape == first.shape for a in arrays):
        return None
    return compiled_kernels()


def _rows(a):
    """``a`` as a C-contiguous (rows, last axis) array (a view when it already is one)."""
    return np.ascontiguousarray(a).reshape(-1, a.shape[-1])


def _over_rows(run, rows: int, width: int) -> None:
    """``run(lo, hi)`` over ``rows`` rows of ``width`` values, split across deepgrad's threads when each gets
    enough work to pay a wake-up (the compiled rows hold no GIL)."""
    parallel_for(rows, run, min_items=-(-COMPILED_MIN_ELEMENTS // max(width, 1)))


def _by_rows(kernel: str, reference, axis: int, *arrays, extra: tuple = ()):
    """``reference(*arrays, axis)``, or the compiled ``kernel(*rows of arrays, out, lo, hi, *extra)`` over the rows
    of ``arrays`` (same shapes), across threads, into a new array of their shape."""
    compiled = _compiled_for(axis, *arrays)
    if compiled is None:
        return reference(*arrays, axis)
    rows = [_rows(a) for a in arrays]
    out = np.empty(rows[0].shape, dtype=rows[0].dtype)
    run = getattr(compiled, kernel)
    _over_rows(lambda lo, hi: run(*rows, out, lo, hi, *extra), *rows[0].shape)
    return out.reshape(arrays[0].shape)


# ----------------------------------------------------------------------------- softmax
def softmax_forward(x, axis: int):
    """``exp(x) / sum(exp(x))`` along ``axis``, shifted by the max (a row holding NaN or +inf gives NaN, an
    all ``-inf`` row too, as in torch). ``x`` must be non-empty."""
    return _by_rows("softmax_rows", softmax_forward_reference, axis, x, extra=(False,))


def softmax_backward(g, out, axis: int):
    """Softmax's input gradient ``out * (g - sum(g * out))`` along ``axis``, from its output ``out``."""
    return _by_rows("softmax_backward_rows", softmax_backward_reference, axis, g, out)


def softmax_forward_reference(x, axis: int):
    """:func:`softmax_forward` as the NumPy formula."""
    e = array_module(x).exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_backward_reference(g, out, axis: int):
    """:func:`softmax_backward` as the NumPy formula."""
    return out * (g - (g * out).sum(axis=axis, keepdims=True))


# ----------------------------------------------------------------------------- log-softmax
def log_softmax_forward(x, axis: int):
    """``x - max - log(sum(exp(x - max)))`` along ``axis``. ``x`` must be non-empty."""
    return _by_rows("log_softmax_rows", log_softmax_forward_reference, axis, x)


def log_softmax_backward(g, out, axis: int):
    """Log-softmax's input gradient ``g - exp(out) * sum(g)`` along ``axis``, from its output ``out``."""
    return _by_rows("log_softmax_backward_rows", log_softmax_backward_reference, axis, g, out)


def log_softmax_forward_reference(x, axis: int):
    """:func:`log_softmax_forward` as the NumPy formula."""
    xp = array_module(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


def log_softmax_backward_reference(g, out, axis: int):
    """:func:`log_softmax_backward` as the NumPy formula."""
    return g - array_module(out).exp(out) * g.sum(axis=axis, keepdims=True)


# ----------------------------------------------------------------------------- attention's softmax, in place
def masked_softmax_(scores):
    """Softmax over the last axis of ``scores``, in place, with fully masked (all ``-inf``) rows set to 0 instead
    of NaN (what torch's ``scaled_dot_product_attention`` gives them). Returns ``scores``."""
    if scores.shape[-1] == 0:
        return scores
    compiled = _compiled_for(scores.ndim - 1, scores) if scores.flags.c_contiguous else None
    if compiled is None:
        return masked_softmax_reference_(scores)
    s2 = scores.reshape(-1, scores.shape[-1])  # a view: scores is C-contiguous
    _over_rows(lambda lo, hi: compiled.softmax_rows(s2, s2, lo, hi, True), *s2.shape)
    return scores


def softmax_backward_(grad, probs):
    """``grad = probs * (grad - sum(grad * probs))`` over the last axis, in place (attention's backward through its
    softmax). Returns ``grad``."""
    compiled = None
    if grad.flags.c_contiguous and probs.flags.c_contiguous and grad.shape[-1]:
        compiled = _compiled_for(grad.ndim - 1, grad, probs)
    if compiled is None:
        grad -= array_module(grad).einsum("...ij,...ij->...i", grad, probs)[..., None]
        grad *= probs
        return grad
    g2, p2 = grad.reshape(-1, grad.shape[-1]), probs.reshape(-1, probs.shape[-1])
    _over_rows(lambda lo, hi: compiled.softmax_backward_rows(g2, p2, g2, lo, hi), *g2.shape)
    return grad


def masked_softmax_reference_(scores):
    """:func:`masked_softmax_` as NumPy passes over the whole array."""
    xp = array_module(scores)
    top = scores.max(axis=-1, keepdims=True)
    top[~xp.isfinite(top)] = 0  # an all -inf row: exp(-inf - 0) = 0 below, not exp(nan)
    scores -= top
    xp.exp(scores, out=scores)
    total = scores.sum(axis=-1, keepdims=True)
    total[total == 0] = 1  # the all-masked rows stay exactly 0
    scores /= total
    return scores
