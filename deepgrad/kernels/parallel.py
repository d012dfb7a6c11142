"""Intra-op parallelism for the NumPy backend: deepgrad's own CPU threads, as torch has.

Every thread and BLAS-thread decision of deepgrad is made here; the kernels beside this module call it.

NumPy runs elementwise work on one thread, and a BLAS call on a small matrix scales poorly,
but both release the GIL: several Python threads, each running whole chunks of a batch with a
single-threaded BLAS, keep every core busy (measured on 2 cores: a 3x3 conv forward over
batch 64 goes from 14.1 ms to 7.5 ms this way, against 9.5 ms with a 2-thread BLAS).

So deepgrad owns the threads: on first use it takes NumPy's BLAS thread count
(``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` or the cores) as its own and runs the BLAS on
ONE thread from then on. Leaving the BLAS multi-threaded beside our threads was measured to
lose everything: after each threaded GEMM, OpenBLAS's idle workers spin for ~0.1 s and take the
cores our threads need (small-VGG step on 2 cores: 125 ms that way, 76 ms with a one-thread
BLAS, 131 ms on one core). Big GEMMs are split across the threads by :func:`matmul`. The
recurrent kernels' per-step GEMMs run on the one-thread BLAS too: lending the BLAS the threads for
their time loops (:func:`blas_threads`, still here for code that wants it) made every short call wait
for a descheduled BLAS worker whenever the other core was busy (see kernels/recurrent.py).
:func:`set_num_threads` changes the count, as in torch.

>>> out = numpy.empty((64, 10))
>>> _ = parallel_for(64, lambda lo, hi: numpy.copyto(out[lo:hi], 1.0))   # one range per thread
>>> float(out.sum())
640.0
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy

_lock = threading.Lock()
_state: dict = {"threads": None, "pool": None, "blas": None, "busy": False}


def _after_fork_in_child() -> None:
    """A forked child has none of the parent's worker threads: start from a fresh pool."""
    global _lock
    _lock = threading.Lock()
    _state.update(pool=None, busy=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def blas_controllers_of(package) -> tuple:
    """``(own, found)``: threadpoolctl handles of the BLAS libraries that ``package``'s wheel ships (in its
    directory or the ``<name>.libs`` beside it), and of every BLAS loaded in this process; both empty if
    threadpoolctl is missing or cannot drive them."""
    try:
        from threadpoolctl import ThreadpoolController

        found = list(ThreadpoolController().select(user_api="blas").lib_controllers)
    except Exception:  # no threadpoolctl, or a BLAS it cannot drive: threads still work
        return [], []
    home = os.path.dirname(os.path.abspath(package.__file__))
    own = [c for c in found if os.path.abspath(c.filepath).startswith((home + os.sep, home + ".libs" + os.sep))]
    return own, found


def _blas_controllers() -> list:
    """threadpoolctl handles of NumPy's own BLAS (not torch's or scipy's where they differ); of any BLAS found if
    NumPy links a shared one (empty if unavailable)."""
    if _state["blas"] is None:
        own, found = blas_controllers_of(numpy)
        _state["blas"] = own or found
    return _state["blas"]


def get_num_threads() -> int:
    """Threads deepgrad uses for CPU ops."""
    if _state["threads"] is None:
        controllers = _blas_controllers()
        counts = [c.num_threads for c in controllers if c.num_threads]
        if counts:
            threads = max(counts)
        else:
            threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        for c in controllers:  # from now on the BLAS runs on one thread, deepgrad's threads around it
            c.set_num_threads(1)
        _state["threads"] = threads
    return _state["threads"]


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for CPU ops, like ``torch.set_num_threads``."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    get_num_threads()  # take over the BLAS threads first, if not done yet
    with _lock:
        _state["threads"] = n
        if _state["pool"] is not None:
            _state["pool"].shutdown(wait=True)
            _state["pool"] = None


@contextmanager
def blas_threads():
    """Lend NumPy's BLAS deepgrad's threads inside the block (for GEMMs too short to split)."""
    threads = get_num_threads()
    lend = threads > 1 and not _state["busy"] and threading.current_thread() is threading.main_thread()
    controllers = _blas_controllers() if lend else []
    for c in controllers:
        c.set_num_threads(threads)
    _state["busy"] |= lend  # no parallel regions meanwhile: the BLAS has the threads
    try:
        yield
    finally:
        for c in controllers:
            c.set_num_threads(1)
        if lend:
            _state["busy"] = False


def _pool(workers: int) -> ThreadPoolExecutor:
    with _lock:
        pool = _state["pool"]
        if pool is None or pool._max_workers != workers:
            if pool is not None:
                pool.shutdown(wait=True)
            pool = _state["pool"] = ThreadPoolExecutor(workers, thread_name_prefix="deepgrad")
        return pool


def split(total: int, parts: int) -> list[tuple[int, int]]:
    """``total`` items as ``parts`` contiguous, near-equal ``(lo, hi)`` ranges (none empty)."""
    parts = max(1, min(parts, total))
    base, extra = divmod(total, parts)
    ranges, lo = [], 0
    for k in range(parts):
        hi = lo + base + (k < extra)
        ranges.append((lo, hi))
        lo = hi
    return ranges


def parallel_for(total: int, body: Callable[[int, int], object], min_items: int = 1) -> list:
    """Run ``body(lo, hi)`` over contiguous ranges covering ``range(total)``, one per thread.

    Each range gets at least ``min_items`` items; with one thread (or too little work, or from
    inside another parallel region, or off the main thread) the call is simply ``body(0, total)``.
    Returns the bodies' results in range order; the first exception raised is re-raised.
    """
    threads = get_num_threads()
    parts = min(threads, total // max(min_items, 1))
    if parts <= 1 or _state["busy"] or threading.current_thread() is not threading.main_thread():
        return [body(0, total)]
    ranges = split(total, parts)
    _state["busy"] = True
    try:
        futures = [_pool(threads - 1).submit(body, lo, hi) for lo, hi in ranges[1:]]
        try:
            first = body(*ranges[0])  # the calling thread takes the first range itself
        finally:
            errors = [e for e in (f.exception() for f in futures) if e is not None]  # waits for every range
        if errors:
            raise errors[0]
        return [first, *(f.result() for f in futures)]
    finally:
        _state["busy"] = False


# Split elementwise NumPy work over the batch only when each thread gets at least this many
# elements. Measured on 2 idle cores, 64x32x32x32 float32 split in two: pooling 1.6-1.8x faster,
# batch norm 1.4-1.5x, ReLU 1.3-1.5x; 64x6x28x28 (300K) split ran 0.5-1.0x (the hand-off costs more
# than the work saved). With the other core busy a split costs ~10%.
PARALLEL_MIN_ELEMENTS = 1 << 18


def over_batch(x, body) -> list:
    """Run ``body(lo, hi)`` over the batch (axis 0) of ``x``, split across threads when ``x`` is a
    NumPy array big enough to pay (NumPy's ufuncs release the GIL); returns the bodies' results."""
    n = x.shape[0]
    if type(x) is not numpy.ndarray:  # CuPy: one launch over the whole batch
        return [body(0, n)]
    per_item = max(1, x.size // max(n, 1))
    return parallel_for(n, body, min_items=-(-PARALLEL_MIN_ELEMENTS // per_item))


# A GEMM is split across threads from this many multiply-adds up (~0.4 ms on one core): below it the
# hand-off to another thread costs about what it saves. Measured on the 2-vCPU EPYC VM, where a sleeping
# thread takes 55-95 us to wake: (1024, 64) x (64, 192) (12.6M) ran 0.88x as fast split in two, (1024, 64) x
# (64, 256) and (1024, 256) x (256, 64) (16.8M) 1.17x and 0.98x, (4096, 64) x (64, 256) (67M) 1.66x; the
# encoder_t64_adam step on two threads took 0.92 of its time with this threshold instead of 1 << 22.
PARALLEL_MIN_MACS = 1 << 24


def matmul(a, b, out=None):
    """``a @ b`` for NumPy arrays, big products split across deepgrad's threads (rows of ``a``, or
    columns of ``b`` when ``a`` is short), each part a one-thread BLAS call into one output.

    2-D operands, and an N-D ``a`` times a 2-D ``b``; anything else is a plain ``a @ b``. ``out`` (a C-contiguous
    array of the result's shape and dtype) receives the product instead of a new array: the same calls, so the
    same bits (the replay of :mod:`deepgrad.jit` writes into buffers it allocated once).
    """
    if a.size * b.shape[-1] < PARALLEL_MIN_MACS or _state["threads"] == 1:  # most calls: out at once
        return a @ b if out is None else numpy.matmul(a, b, out=out)
    if (type(a) is not numpy.ndarray or type(b) is not numpy.ndarray or b.ndim != 2 or a.ndim < 2
            or a.shape[-1] != b.shape[0] or get_num_threads() == 1):
        return a @ b if out is None else numpy.matmul(a, b, out=out)  # (CuPy takes NumPy's ufunc call)
    lead = a.shape[:-1]
    m, (k, n) = math.prod(lead), b.shape
    a2 = a.reshape(m, k)  # a view when a's rows are contiguous, else one copy
    if out is None:
        out = numpy.empty(lead + (n,), dtype=numpy.result_type(a.dtype, b.dtype))
    o2 = out.reshape(m, n)
    if m >= n or m >= 64:
        parallel_for(m, lambda lo, hi: numpy.matmul(a2[lo:hi], b, out=o2[lo:hi]), min_items=16)
    else:
        parallel_for(n, lambda lo, hi: numpy.matmul(a2, b[:, lo:hi], out=o2[:, lo:hi]), min_items=16)
    return out
