"""The LSTM's time loops compiled with numba (optional): a whole padded float32 sequence, forward or backward
through time, in one call, instead of ~10 NumPy calls per step.

Why. A NumPy step is one GEMM plus ~10 elementwise calls of ~1 us each on arrays of a few hundred values: at
batch 1 (hidden 128) the calls cost more than the arithmetic, and at every batch each call makes one more pass
over the gates. Here each step is one GEMM (``np.dot``, which numba hands to SciPy's BLAS) and one fused loop
that reads a gate value once, so the step does the gate math in one pass. :mod:`.recurrent` calls these loops
for float32 padded sequences without projection when numba imports; every other case, and every machine without
numba (``pip install deepgrad[fast]`` adds it) or with ``DEEPGRAD_NUMBA=0`` in the environment, runs the NumPy
loops there, which these must equal (to float32 rounding: the tanh below is not NumPy's).

tanh. numba compiles ``math.tanh`` to a scalar libm call per value, slower than NumPy's SIMD tanh (measured in an
earlier probe of a whole batch-1 sequence loop: 0.48 ms that way against 0.25 ms with a vectorised float32 rational;
the float64-evaluated rational here costs ~0.85 ns per value against NumPy's ~0.42). So the loops use a rational
approximation ``tanh(x) = x P(x^2) / Q(x^2)`` (degrees 6 and 4 in x^2), which LLVM vectorises. Its coefficients
were fitted for this file by ``scripts/fit_tanh.py`` (iteratively reweighted least squares towards the minimax
relative error on [0, 9.1]: 1.0e-10), and it is evaluated in float64, so the float32 result is the correctly
rounded tanh except for ~1 value in 10 000, which is 1 ulp off (NumPy's own float32 tanh: 1 ulp off on ~3%);
``tests/test_kernels_recurrent_compiled.py`` holds it to that over a sweep of float32 values. Beyond |x| = 9.1
float32's tanh is +-1, so x is clamped there (NaN passes through: both comparisons are false). The sigmoid gates
use ``sigmoid(a) = 0.5 tanh(a/2) + 0.5`` as in :mod:`.recurrent`: the halving is in the weights.

The loops are compiled with ``error_model='numpy'`` (a division that Python's error model would check per value
blocks vectorisation: 19 vs 3 ms for 4M tanh) and without ``fastmath`` (which would let LLVM assume no NaN).
They are compiled on first use (a few seconds) and cached beside this file by numba.

Threads. The loops release the GIL and take a range of batch rows, so :mod:`.recurrent` runs blocks of rows on
deepgrad's threads. ``np.dot`` runs in SciPy's BLAS, a library apart from NumPy's; importing this module pins it
to one thread as :func:`.parallel.get_num_threads` pins NumPy's (the per-step GEMMs are too short to split).
"""

from __future__ import annotations

import numba
import numpy as np
import scipy
import scipy.linalg.cython_blas  # noqa: F401  numba's np.dot calls it; imported here so it can be pinned

from .parallel import blas_controllers_of

# tanh(x) ~ x P(x^2) / Q(x^2) on |x| <= 9.1: scripts/fit_tanh.py prints these.
P0, P1, P2, P3, P4, P5, P6 = (0.9999999998997573, 0.1385251063752831, 0.004089894271707234, 3.2906094497352644e-05,
                              4.543488730241216e-08, -3.134638653097862e-11, 2.5238766849245837e-14)
Q0, Q1, Q2, Q3, Q4 = (1.0, 0.4718584386290704, 0.028042709078216634, 0.00043426974539375853, 1.6624540756082297e-06)
TANH_CLAMP = 9.1


for _blas in blas_controllers_of(scipy)[0]:  # SciPy's BLAS (numba's np.dot) on one thread, like NumPy's
    _blas.set_num_threads(1)
# fastmath's "contract" only: a * b + c may become one FMA (fewer roundings, -25% time for the tanh); no
# assumption that values are finite.
_jit = numba.njit(error_model="numpy", fastmath={"contract"}, cache=True, nogil=True)


@numba.njit(error_model="numpy", fastmath={"contract"}, inline="always")
def _tanh(x):
    """tanh of a float32 value through the rational above, evaluated in float64."""
    v = np.float64(x)
    if v > TANH_CLAMP:
        v = TANH_CLAMP
    elif v < -TANH_CLAMP:
        v = -TANH_CLAMP
    t = v * v
    num = v * (P0 + t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * (P5 + t * P6))))))
    return num / (Q0 + t * (Q1 + t * (Q2 + t * (Q3 + t * Q4))))


@_jit
def tanh_into(x, out):
    """``out[k] = tanh(x[k])`` over flat arrays (what the tests sweep)."""
    for k in range(x.shape[0]):
        out[k] = _tanh(x[k])


@_jit
def lstm_sequence(acts, w_hh_st, h0, c0, out, cells, tanh_c, scale, offset, tmp, reverse, keep, lo, hi):
    """The LSTM forward of :func:`.recurrent.lstm_forward` over a padded sequence, in place, for batch rows
    ``lo:hi`` (the rows never meet, so threads can each take a share: the loop holds no GIL).

    acts (T, B, 4H): the scaled input projections with the biases; they become the gate activations.
    w_hh_st (H, 4H): the scaled W_hh transposed, C order (at batch 1 too: numba's matrix-vector product on the
    untransposed W_hh took 5.0 us against 3.3 us for this (1, H) x (H, 4H) product, more than the copy saves).
    h0, c0 (B, H): the initial state.
    out (T, B, H): every step's h. With ``keep``, cells and tanh_c (T, B, H) get every step's c and tanh(c) (what
    the backward reads); without, cells (2, B, H) holds the running c, step s writing cells[s % 2] (reading and
    writing one buffer would defeat vectorisation: LLVM's overlap check fails and it takes the scalar loop, +13%
    at batch 32), and tanh_c (1, B, H) is scratch. tmp (B, 4H): scratch.
    """
    steps, gates = acts.shape[0], acts.shape[2]
    hidden = gates // 4
    for s in range(steps):
        t = steps - 1 - s if reverse else s
        if s == 0:
            h, c_prev = h0, c0
        else:
            tp = t + 1 if reverse else t - 1
            h, c_prev = out[tp], cells[tp if keep else (s - 1) % 2]
        np.dot(h[lo:hi], w_hh_st, tmp[lo:hi])
        k, kt = (t, t) if keep else (s % 2, 0)
        for b in range(lo, hi):
            g, pre = acts[t, b], tmp[b]
            for j in range(gates):
                g[j] = _tanh(g[j] + pre[j]) * scale[j] + offset[j]
            cp, c, tc, y = c_prev[b], cells[k, b], tanh_c[kt, b], out[t, b]
            for j in range(hidden):
                cell = g[hidden + j] * cp[j] + g[j] * g[2 * hidden + j]
                c[j] = cell
                th = _tanh(cell)
                tc[j] = th
                y[j] = g[3 * hidden + j] * th


@_jit
def lstm_sequence_backward(acts, tanh_c, c_prev, dy, w_hh, dh, dc, dgates, reverse, lo, hi):
    """Backward through time of :func:`lstm_sequence` (kept states), in place, for batch rows ``lo:hi``.

    acts, tanh_c, c_prev: the forward's gate activations, tanh(c) and the c each step read. dy (T, B, H): the
    gradient of every step's h. dh, dc (B, H): the gradients of the last states; they end as those of h0, c0.
    dgates (T, B, 4H): the gradients of the gate pre-activations, filled here.
    """
    steps, gates = acts.shape[0], acts.shape[2]
    hidden = gates // 4
    for s in range(steps):
        t = s if reverse else steps - 1 - s
        for b in range(lo, hi):
            a, th, cp, d, gy = acts[t, b], tanh_c[t, b], c_prev[t, b], dgates[t, b], dy[t, b]
            dhb, dcb = dh[b], dc[b]
            for j in range(hidden):
                i, f, g, o = a[j], a[hidden + j], a[2 * hidden + j], a[3 * hidden + j]
                dm = gy[j] + dhb[j]
                tcj = th[j]
                dcell = dm * (o * (1 - tcj * tcj)) + dcb[j]
                d[j] = dcell * (g * i * (1 - i))
                d[hidden + j] = dcell * (cp[j] * f * (1 - f))
                d[2 * hidden + j] = dcell * (i * (1 - g * g))
                d[3 * hidden + j] = dm * (tcj * o * (1 - o))
                dcb[j] = dcell * f
        np.dot(dgates[t, lo:hi], w_hh, dh[lo:hi])
