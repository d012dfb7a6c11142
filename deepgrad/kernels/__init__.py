"""Array routines that exist for speed, each beside the plain function it must equal.

The layer between :mod:`deepgrad.backend` and :mod:`deepgrad.ops`: plain functions on raw NumPy/CuPy
arrays, no Tensors, no autograd (this package imports only ``backend``, NumPy and threadpoolctl). An op
in ``ops/`` holds the maths and the autograd wiring and calls into here for the heavy lifting.

=================  ====================================================================================
``arrays``         helpers shared with the ops: ``unbroadcast``, ``masked``
``parallel``       deepgrad's CPU threads: ``parallel_for``, ``over_batch``, threaded ``matmul``, the
                   BLAS thread count (``blas_threads``) and ``get/set_num_threads``
``im2col``         sliding windows: padding, strided window views, im2col / col2im
``conv``           convolution kernels: whole-batch im2col + GEMM, the batch-chunked threaded CPU path
                   (conv and transposed conv share it), and a direct per-offset reference
``pool``           max / window-sum pooling and their add-back backward
``norm``           batch norm (CPU fast path + the plain path) and layer norm
``activation``     ReLU's row-wise threaded path, leaky ReLU's slope lookup, the masked gradient
``attention``      scaled dot-product attention over batch slices (threaded), with a plain reference
``recurrent``      the fused RNN / LSTM / GRU time loops (forward and backward through time);
                   their step-by-step references are in ``recurrent_reference``
``softmax``        softmax / log-softmax over the last axis and attention's masked softmax, rows threaded
``compiled``       the kernels compiled with numba (optional, :func:`compiled_kernels`): the LSTM's time
                   loops and the softmax rows, for float32 NumPy arrays
=================  ====================================================================================

How a kernel is laid out. Each family exposes a dispatcher (``max_pool2d_forward``) that picks an
implementation from the array type; the NumPy fast path beside it (``_max_pool2d_forward_cpu``); and a
``*_reference`` function: the plain, xp-generic computation, which is also what runs on CuPy today.
``tests/test_kernels_*.py`` compare every fast path with its reference (bit for bit where the fast path is
designed to be, e.g. across thread counts). A CuPy fused kernel (``cupy.RawKernel`` / ``ElementwiseKernel``)
or a CPU compiled kernel is added the same way: a new module (e.g. ``kernels/cuda.py``) holding the
function, one branch in the family's dispatcher, and a test against the reference.
"""

from __future__ import annotations

import os
import threading
import warnings
from contextlib import contextmanager

import numpy

from ..backend import array_module

_compiled_state: dict = {"module": None}
_compiled_lock = threading.Lock()


def is_numpy(array) -> bool:
    """True for a NumPy array: the arrays the CPU fast paths take (CuPy arrays take the reference path).

    >>> import numpy
    >>> is_numpy(numpy.zeros(2))
    True
    """
    return array_module(array) is numpy


def compiled_kernels():
    """The module :mod:`.compiled` when numba imports and ``DEEPGRAD_NUMBA`` (read at first use) is not ``0``;
    ``None`` otherwise, and the callers run their NumPy code (``pip install deepgrad[fast]`` adds numba). A numba
    that imports but cannot serve (its on-disk cache has no writable place) also gives ``None``, with a warning."""
    if _compiled_state["module"] is None:
        with _compiled_lock:  # the first call may come from several of deepgrad's threads at once
            if _compiled_state["module"] is None:
                module = False
                if os.environ.get("DEEPGRAD_NUMBA", "1") != "0":
                    try:
                        from . import compiled as module
                    except ImportError:  # no numba: the NumPy code
                        pass
                    except Exception as exc:  # numba is there but cannot serve (e.g. nowhere to write its cache)
                        warnings.warn(f"deepgrad: the numba-compiled kernels are off in this process, the NumPy "
                                      f"code runs instead ({type(exc).__name__}: {exc}); where numba finds no "
                                      f"writable cache directory, set NUMBA_CACHE_DIR to one", RuntimeWarning,
                                      stacklevel=2)
                _compiled_state["module"] = module
    return _compiled_state["module"] or None


@contextmanager
def numpy_code_only():
    """Inside the block (or the function it decorates) the callers of :func:`compiled_kernels` run their NumPy code,
    in every thread: numba is not imported and no compiled kernel is loaded from numba's on-disk cache. The
    practice judge draws and grades inside it, so that nothing is loaded from disk after a candidate's code ran."""
    saved = _compiled_state["module"]
    _compiled_state["module"] = False
    try:
        yield
    finally:
        _compiled_state["module"] = saved
