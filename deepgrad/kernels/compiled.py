"""Kernels compiled with numba (optional): the LSTM's time loops and row-wise softmax / log-softmax, each a
whole loop in one call instead of several NumPy calls over the same values.

Why. A NumPy LSTM step is one GEMM plus ~10 elementwise calls of ~1 us each on arrays of a few hundred values: at
batch 1 (hidden 128) the calls cost more than the arithmetic, and at every batch each call makes one more pass
over the gates. Here each step is one GEMM (``np.dot``, which numba hands to SciPy's BLAS) and one fused loop
that reads a gate value once. A NumPy softmax over rows is five passes over the whole array (max, subtract, exp,
sum, divide; attention's (B*heads, T, T) weights at T = 256 are 16 MiB a layer, each pass a trip to memory);
here each row is read once for its max and once for its exponentials, which stay in a float64 row in L1 until
they are normalised. :mod:`.recurrent`, :mod:`.softmax` and :mod:`.attention` call these for float32 NumPy arrays
when numba imports (:func:`deepgrad.kernels.compiled_kernels`); every other case, every machine without numba
(``pip install deepgrad[fast]`` adds it) and ``DEEPGRAD_NUMBA=0`` in the environment run the NumPy code there,
which these must equal to float32 rounding (``tests/test_kernels_compiled.py``). float64 (gradcheck) never
comes here: the functions below are float32-accurate, not float64-accurate.

Everything compiled lives in this one file on purpose: numba's on-disk cache (``cache=True``, beside this file)
is invalidated by a change to the file a function is in, not to the files of the functions it calls.

tanh. numba compiles ``math.tanh`` to a scalar libm call per value, slower than NumPy's SIMD tanh (measured in an
earlier probe of a whole batch-1 sequence loop: 0.48 ms that way against 0.25 ms with a vectorised float32 rational;
the float64-evaluated rational here costs ~0.85 ns per value against NumPy's ~0.42). So the loops use a rational
approximation ``tanh(x) = x P(x^2) / Q(x^2)`` (degrees 6 and 4 in x^2), which LLVM vectorises. Its coefficients
were fitted for this file by ``scripts/fit_tanh.py`` (iteratively reweighted least squares towards the minimax
relative error on [0, 9.1]: 1.0e-10), and it is evaluated in float64, so the float32 result is the correctly
rounded tanh except for ~1 value in 10 000, which is 1 ulp off (NumPy's own float32 tanh: 1 ulp off on ~3%).
Beyond |x| = 9.1 float32's tanh is +-1, so x is clamped there (NaN passes through: both comparisons are false).
The sigmoid gates use ``sigmoid(a) = 0.5 tanh(a/2) + 0.5`` as in :mod:`.recurrent`: the halving is in the weights.

exp. The same holds for ``math.exp``; :func:`_exp` reduces ``x = k ln2 + r`` (|r| <= ln2 / 2, ``k`` rounded by
the 1.5 * 2^52 shift), takes ``e^r`` from its Taylor polynomial of degree 10 (truncation error < 1e-12 relative)
and builds ``2^k`` from its bits; in float64, so the float32 result is the correctly rounded exp but for rare
ties (none in the tests' sweep of float32 values). The result is exactly 0 below x = -150 and inf from where
float32's exp overflows (x is clamped to 100 first, keeping ``2^k`` a normal float64), so float64 sums of these
values see the same zeros and infinities as float32 ones. NaN passes through.

The kernels are compiled with ``error_model='numpy'`` (a division that Python's error model would check per value
blocks vectorisation: 19 vs 3 ms for 4M tanh) and with ``fastmath`` limited to ``contract`` (FMA), never the
flags that let LLVM assume no NaN or inf. Row sums alone (:func:`_row_sum`) may be reassociated, so that they
vectorise; each row's result is the same on any thread count. They are compiled on first use (a few seconds)
and cached beside this file by numba.

Threads. Every kernel releases the GIL and takes a range of rows (batch rows of the LSTM, rows of a softmax), so
its callers run ranges on deepgrad's threads. ``np.dot`` runs in SciPy's BLAS, a library apart from NumPy's;
importing this module pins it to one thread as :func:`.parallel.get_num_threads` pins NumPy's (the per-step
GEMMs are too short to split).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import scipy
import scipy.linalg.cython_blas  # noqa: F401  numba's np.dot calls it; imported here so it can be pinned
from llvmlite import ir
from numba.extending import intrinsic

from .parallel import blas_controllers_of

# tanh(x) ~ x P(x^2) / Q(x^2) on |x| <= 9.1: scripts/fit_tanh.py prints these.
P0, P1, P2, P3, P4, P5, P6 = (0.9999999998997573, 0.1385251063752831, 0.004089894271707234, 3.2906094497352644e-05,
                              4.543488730241216e-08, -3.134638653097862e-11, 2.5238766849245837e-14)
Q0, Q1, Q2, Q3, Q4 = (1.0, 0.4718584386290704, 0.028042709078216634, 0.00043426974539375853, 1.6624540756082297e-06)
TANH_CLAMP = 9.1
# exp: x = k ln2 + r with ln2 split in two parts (k ln2_hi exact for the k that occur), e^r by Taylor to degree 10.
LOG2E, LN2_HI, LN2_LO = 1.4426950408889634, 0.6931471803691238, 1.9082149292705877e-10
ROUND_SHIFT = 6755399441055744.0  # 1.5 * 2^52: (y + shift) - shift is y rounded to the nearest integer
E2, E3, E4, E5, E6, E7, E8, E9, E10 = (1.0 / math.factorial(k) for k in range(2, 11))
EXP_LOW, EXP_HIGH = -150.0, 100.0
FLOAT32_OVERFLOW = 3.4028235677973366e38  # float32's largest value plus half its last ulp: rounds to inf


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


@intrinsic
def _float64_from_bits(typingctx, bits):
    """The float64 whose IEEE bits are the int64 ``bits`` (a register move, which LLVM vectorises)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return numba.types.float64(numba.types.int64), codegen


@numba.njit(error_model="numpy", fastmath={"contract"}, inline="always")
def _exp(x):
    """exp of a float64 value, accurate for float32 results (see the module note); exactly 0 below ``EXP_LOW``
    and inf where float32's exp overflows (a softmax row sums these float64 values before rounding them)."""
    zero = x < EXP_LOW
    if zero:
        x = EXP_LOW
    elif x > EXP_HIGH:
        x = EXP_HIGH
    k = (x * LOG2E + ROUND_SHIFT) - ROUND_SHIFT
    r = x - k * LN2_HI - k * LN2_LO
    p = E6 + r * (E7 + r * (E8 + r * (E9 + r * E10)))
    p = 1.0 + r * (1.0 + r * (E2 + r * (E3 + r * (E4 + r * (E5 + r * p)))))
    bits = (np.int64(k) + 1023) << 52 if k == k else np.int64(0)  # NaN: p is NaN already, and the cast undefined
    y = p * _float64_from_bits(bits)
    if y >= FLOAT32_OVERFLOW:
        y = np.inf
    return 0.0 if zero else y


@numba.njit(error_model="numpy")
def _row_max(a):
    """The largest value of a 1-d float32 array, NaN ignored (-inf if none): eight running maxima, which LLVM
    keeps in one vector register (a single running maximum is a chain of dependent compares, 8x slower)."""
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = np.float32(-np.inf)
    n = a.shape[0]
    full = n - n % 8
    for j in range(0, full, 8):
        m0 = a[j] if a[j] > m0 else m0
        m1 = a[j + 1] if a[j + 1] > m1 else m1
        m2 = a[j + 2] if a[j + 2] > m2 else m2
        m3 = a[j + 3] if a[j + 3] > m3 else m3
        m4 = a[j + 4] if a[j + 4] > m4 else m4
        m5 = a[j + 5] if a[j + 5] > m5 else m5
        m6 = a[j + 6] if a[j + 6] > m6 else m6
        m7 = a[j + 7] if a[j + 7] > m7 else m7
    for j in range(full, n):
        m0 = a[j] if a[j] > m0 else m0
    m0, m2, m4, m6 = max(m0, m1), max(m2, m3), max(m4, m5), max(m6, m7)
    return max(max(m0, m2), max(m4, m6))


@numba.njit(error_model="numpy", fastmath={"contract", "reassoc"})
def _row_sum(a):
    """The float64 sum of a 1-d float64 array, in whatever order LLVM vectorises it (the same on every call)."""
    total = 0.0
    for j in range(a.shape[0]):
        total += a[j]
    return total


@_jit
def tanh_into(x, out):
    """``out[k] = tanh(x[k])`` over flat arrays (what the tests sweep)."""
    for k in range(x.shape[0]):
        out[k] = _tanh(x[k])


@_jit
def exp_into(x, out):
    """``out[k] = exp(x[k])`` over flat float32 arrays (what the tests sweep)."""
    for k in range(x.shape[0]):
        out[k] = _exp(np.float64(x[k]))


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


# ----------------------------------------------------------------------------- softmax rows
# Each takes 2-d C-contiguous float32 arrays (rows, n), works on rows lo:hi, and may write in place (out is x, or
# g): every row is first computed into a float64 row of scratch and then stored, so the loops never read and
# write one buffer (LLVM's overlap check would send them to the scalar loop).
@numba.njit(error_model="numpy", inline="always")
def _store(row64, out):
    """``out[:] = row64`` rounded to ``out``'s float32 (the last pass of a row kept in float64)."""
    for j in range(row64.shape[0]):
        out[j] = row64[j]


@_jit
def softmax_rows(x, out, lo, hi, masked):
    """``out[i] = softmax(x[i])``. With ``masked`` (attention), a row with no finite maximum is shifted by 0,
    not by its maximum, so an all ``-inf`` row gives weights 0 instead of NaN (an inf in a row gives NaN either
    way, as in the NumPy code)."""
    e = np.empty(x.shape[1], np.float64)
    for i in range(lo, hi):
        row, o = x[i], out[i]
        m = np.float64(_row_max(row))
        if masked and not np.isfinite(m):
            m = 0.0
        for j in range(e.shape[0]):
            e[j] = _exp(np.float64(row[j]) - m)
        total = _row_sum(e)
        if masked and total == 0:
            total = 1.0
        inv = 1.0 / total
        for j in range(e.shape[0]):
            o[j] = e[j] * inv


@_jit
def softmax_backward_rows(g, s, out, lo, hi):
    """``out[i] = s[i] * (g[i] - sum(g[i] * s[i]))``: softmax's input gradient from its output ``s``."""
    t = np.empty(g.shape[1], np.float64)
    for i in range(lo, hi):
        gi, si, o = g[i], s[i], out[i]
        for j in range(t.shape[0]):
            t[j] = np.float64(gi[j]) * si[j]
        d = _row_sum(t)
        for j in range(t.shape[0]):
            t[j] = si[j] * (gi[j] - d)
        _store(t, o)


@_jit
def log_softmax_rows(x, out, lo, hi):
    """``out[i] = x[i] - max - log(sum(exp(x[i] - max)))``."""
    e = np.empty(x.shape[1], np.float64)
    for i in range(lo, hi):
        row, o = x[i], out[i]
        m = np.float64(_row_max(row))
        for j in range(e.shape[0]):
            e[j] = _exp(np.float64(row[j]) - m)
        shift = m + math.log(_row_sum(e))
        for j in range(e.shape[0]):
            e[j] = row[j] - shift
        _store(e, o)


@_jit
def log_softmax_backward_rows(g, out_fwd, out, lo, hi):
    """``out[i] = g[i] - exp(out_fwd[i]) * sum(g[i])``: log-softmax's input gradient from its output."""
    t = np.empty(g.shape[1], np.float64)
    for i in range(lo, hi):
        gi, yi, o = g[i], out_fwd[i], out[i]
        for j in range(t.shape[0]):
            t[j] = gi[j]
        total = _row_sum(t)
        for j in range(t.shape[0]):
            t[j] = gi[j] - _exp(np.float64(yi[j])) * total
        _store(t, o)
