"""Whole-step capture: record a training step once as a CUDA graph and replay it (``deepgrad.cuda.graphs``).

UNVERIFIED UNTIL A GPU RUN (off unless used explicitly). A small model on a GPU is bound by CuPy's ~10-20 us of
Python per kernel launch; a CUDA graph replays every kernel of a recorded step with one launch and no Python.
The pattern is torch.cuda.graphs': static input buffers that the caller refills, a few eager warm-up steps
(they create the optimizer state and compile the kernels), one step recorded on a side stream into a private
memory pool, then ``replay()``: the same kernels on the same addresses.

What a replay cannot change is baked in at capture: every Python number the step computes (a learning rate
from a scheduler, Adam's bias corrections from its host-side step count, a ``.item()`` branch) and the random
numbers drawn (a dropout mask repeats). So :class:`CapturedStep` refuses optimizers whose update depends on a
host-side step count (the Adam family, Adagrad with ``lr_decay``) and a step that talks to the host during
capture (``.item()``, a copy from NumPy, a data-dependent check) fails with an error that says so.

>>> import deepgrad as dg
>>> dg.cuda.graphs.CapturedStep.__name__
'CapturedStep'
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from . import backend
from .ops.inplace import write


def _host_step_dependent(optimizer) -> str | None:
    """Why ``optimizer``'s update cannot be replayed unchanged, or None."""
    for group in getattr(optimizer, "param_groups", ()):
        if "betas" in group:
            return f"{type(optimizer).__name__} computes its bias corrections from a host-side step count"
        if group.get("lr_decay"):
            return f"{type(optimizer).__name__}(lr_decay={group['lr_decay']}) decays lr by a host-side step count"
    return None


class CapturedStep:
    """A step function recorded once as a CUDA graph; :meth:`replay` runs it again on the static inputs.

    ``step_fn(*static_inputs)`` must only read its inputs from those CUDA tensors (refill them in place with
    :meth:`load` before each replay) and return the tensors to read afterwards (e.g. the loss), which the
    replays overwrite in place. ``optimizers`` are checked for host-side state that a replay would freeze.
    """

    def __init__(self, step_fn: Callable, *static_inputs, warmup: int = 2, optimizers: Iterable = ()):
        cp = backend.cupy_module()
        if cp is None:
            raise RuntimeError("cuda.graphs.CapturedStep: no CUDA device (CuPy is not installed or sees no GPU)")
        for i, t in enumerate(static_inputs):
            if backend.array_module(t.array) is not cp:
                raise ValueError(f"cuda.graphs.CapturedStep: static input {i} is on {t.device}, not on a GPU")
        for opt in optimizers:
            why = _host_step_dependent(opt)
            if why is not None:
                raise ValueError(f"cuda.graphs.CapturedStep: {why}, which a replay would freeze at its captured "
                                 f"value; use SGD/RMSprop or run that optimizer eagerly")
        if warmup < 1:
            raise ValueError(f"cuda.graphs.CapturedStep: warmup must be at least 1 (optimizer state must exist "
                             f"before capture), got {warmup}")
        self.static_inputs = static_inputs
        self._cp = cp
        self.stream = cp.cuda.Stream(non_blocking=True)
        self.pool = cp.cuda.MemoryPool()  # private: nothing outside the graph reuses its blocks
        self.stream.wait_event(cp.cuda.get_current_stream().record())  # the inputs are ready
        with self.stream, cp.cuda.using_allocator(self.pool.malloc):
            for _ in range(warmup):
                step_fn(*static_inputs)
            self.stream.synchronize()
            self.stream.begin_capture()
            try:
                self.outputs = step_fn(*static_inputs)
            except Exception as e:
                try:
                    self.stream.end_capture()
                finally:
                    raise RuntimeError(
                        f"cuda.graphs.CapturedStep: the step failed while being captured ({type(e).__name__}: {e}); "
                        f"a captured step may not synchronize with the host (.item(), .cpu(), tensors made from "
                        f"NumPy data, data-dependent checks)") from e
            self.graph = self.stream.end_capture()
        self.stream.synchronize()

    def load(self, *values) -> None:
        """Copy new data (tensors or arrays of the same shapes) into the static inputs, on the capture stream."""
        if len(values) != len(self.static_inputs):
            raise ValueError(f"cuda.graphs.CapturedStep.load: {len(values)} values for "
                             f"{len(self.static_inputs)} static inputs")
        with self.stream:
            for i, (dst, src) in enumerate(zip(self.static_inputs, values)):
                src = getattr(src, "array", src)
                if tuple(src.shape) != tuple(dst.shape):
                    raise ValueError(f"cuda.graphs.CapturedStep.load: input {i} has shape {tuple(src.shape)}, "
                                     f"the captured step reads {tuple(dst.shape)}")
                write(dst, self._cp.asarray(src, dtype=dst.array.dtype), "cuda.graphs.CapturedStep.load")

    def replay(self):
        """Run the recorded step once more; returns what ``step_fn`` returned (its arrays now hold new values)."""
        self.graph.launch(self.stream)
        self._cp.cuda.get_current_stream().wait_event(self.stream.record())  # later work sees the results
        return self.outputs


def capture_step(step_fn: Callable, *static_inputs, warmup: int = 2, optimizers: Iterable = ()) -> CapturedStep:
    """Record ``step_fn(*static_inputs)`` as a CUDA graph (see :class:`CapturedStep`)."""
    return CapturedStep(step_fn, *static_inputs, warmup=warmup, optimizers=optimizers)
