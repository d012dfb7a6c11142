"""Trace and replay: record a fixed-shape forward pass once, then run it on raw arrays.

``deepgrad.jit.trace(model, example)`` runs ``model(example)`` under :func:`deepgrad.inference_mode` while recording
every op (``Function.apply``) with its parameters and every in-place write, and returns a :class:`TracedModule`.
Calling it replays the recorded ops straight on arrays (:class:`~deepgrad.jit.program.Program`): no Tensor
objects, module calls, argument checks or graph per op; the dense layers write into buffers allocated once, and
ops whose forward computes something only a backward needs run a kernel that skips it (max pooling's winning
offsets; the LSTM runs its no-save kernel under inference mode anyway). Replayed outputs are identical (bit for
bit) to ``model(x)`` under ``inference_mode`` for inputs of the traced shape and dtype; another shape or dtype is
refused with an error naming both (trace again). Like ``torch.jit.trace``, a trace records one path through the
forward; unlike it, deepgrad refuses the paths it can see would not replay instead of warning.

What tracing detects, and raises :class:`TraceError` for:

- a value the forward computed from the input turned into a Python value (``if x.sum() > 0``, ``.item()``,
  ``.tolist()``, ``.numpy()``): the replay could not follow the branch it chooses;
- with ``check=True`` (the default), a second trace on the example's values shuffled: a different op sequence,
  different op parameters or a different constant (a value made outside the ops from the input's values, or from
  randomness) means the forward depends on the input in a way the recording cannot replay; the replay on that
  second input must also equal the eager forward bit for bit. Ops that build no graph node (comparisons,
  ``argmax``, max pooling's ``return_indices``) are not recorded: their results are such constants, so a forward
  that feeds them from the input is refused here (unless the shuffled copy happens to give them the same values), or,
  for an output, because no recorded op computed it;
- an indexed assignment (``x[i] = v``) with no graph into a value the ops already use, and an output the ops did
  not compute.

What it cannot detect: control flow on Python state that is not a tensor (a counter, ``self.training`` flipped
after tracing, a module swapped), a branch on the input's values that the shuffled input happens to take the same
way, and state written outside the ops (raw NumPy writes into a tensor's array, a new array assigned to an
attribute that is not a parameter or buffer). Parameters and buffers are read live at every replay from their
module's registry (an optimizer step, ``load_state_dict`` or a replaced ``Parameter`` is seen; one of another
shape or dtype is refused); a module switched between ``train()`` and ``eval()`` since tracing is refused; the
rest of the model's structure is frozen. Randomness inside an op (dropout in
training mode) is drawn afresh at every replay, but the check refuses it since the two runs differ: trace models
in ``eval()`` mode (or pass ``check=False``).

>>> import deepgrad as dg
>>> model = dg.nn.Sequential(dg.nn.Linear(4, 8), dg.nn.ReLU(), dg.nn.Linear(8, 2)).eval()
>>> x = dg.randn(1, 4)
>>> traced = dg.jit.trace(model, x)
>>> bool((traced(x) == model(x)).all())
True
"""

from __future__ import annotations

import threading

import numpy as np

from ..autograd.grad_mode import inference_mode
from ..backend import array_module
from ..creation import as_tensor, from_numpy
from ..nn.module import Module
from ..tensor import Tensor
from .program import Program
from .recorder import Recorder, TraceError, flatten

__all__ = ["TraceError", "TracedModule", "trace"]


def _wrap(array) -> Tensor:
    """A tensor sharing ``array``'s memory (NumPy or CuPy), with no graph."""
    return from_numpy(array) if type(array) is np.ndarray else as_tensor(array)


def _inputs(example) -> list[Tensor]:
    examples = list(example) if isinstance(example, (tuple, list)) else [example]
    if not examples or not all(isinstance(t, Tensor) for t in examples):
        kinds = [type(t).__name__ for t in examples]
        raise TypeError(f"jit.trace: example must be a Tensor or a tuple of Tensors, got {kinds or 'nothing'}")
    return examples


def _record(model, arrays: list) -> tuple[Program, object]:
    """Run ``model`` on fresh tensors holding ``arrays`` while recording: (program, eager output)."""
    fed = [_wrap(a) for a in arrays]
    with inference_mode(), Recorder(model, fed) as rec:
        out = model(*fed)
    return rec.program(out), out


def _shuffled(array, seed: int):
    """The same values in another order (valid indices stay valid indices, masks stay masks)."""
    xp = array_module(array)
    order = np.random.default_rng(seed).permutation(array.size)
    return array.reshape(-1)[xp.asarray(order)].reshape(array.shape).copy()


def _same(a, b) -> bool:
    """Recursive equality of recorded parameters (arrays by value)."""
    if type(a) is not type(b):
        return False
    if hasattr(a, "shape") and hasattr(a, "dtype") and not isinstance(a, (int, float)):
        return a.shape == b.shape and a.dtype == b.dtype and bool(array_module(a).array_equal(a, b, equal_nan=True)
                                                                   if a.dtype.kind in "fc" else (a == b).all())
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - an object without a usable ==: compare identity
        return a is b


def _difference(p: Program, q: Program) -> str | None:
    """Where two recordings of the same model on different inputs differ, or None."""
    if len(p.steps) != len(q.steps):
        return f"the forward ran {len(p.steps)} ops on the example and {len(q.steps)} on a shuffled copy"
    for k, (s, t) in enumerate(zip(p.steps, q.steps)):
        if s.op is not t.op or s.ins != t.ins or s.outs != t.outs:
            return f"op {k} is {s.name} in {s.scope} on the example but {t.name} in {t.scope} on a shuffled copy"
        if not _same(s.params, t.params):
            return f"op {k} ({s.name} in {s.scope}) got other parameters on a shuffled copy of the example"
    ext_p, ext_q = dict(p.externals), dict(q.externals)
    if ext_p.keys() != ext_q.keys():
        return "the forward read other tensors on a shuffled copy of the example"
    for s, t in ext_p.items():
        if s in p.snapshots:
            if s not in q.snapshots or not _same(p.snapshots[s], q.snapshots[s]):
                return (f"a tensor of shape {tuple(t.shape)} made outside the ops (not a parameter or buffer) had "
                        f"other values on a shuffled copy of the example: it depends on the input's values or on "
                        f"randomness")
        elif ext_q[s] is not t:
            return "the forward read other parameters on a shuffled copy of the example"
    return None


def _unflatten(tree, leaves: list):
    kind, body = tree
    if kind == "tensor":
        return leaves[body]
    if kind == "value":
        return body
    if kind is dict:
        return {k: _unflatten(v, leaves) for k, v in body.items()}
    items = [_unflatten(v, leaves) for v in body]
    return kind(items) if kind in (tuple, list) else kind(*items)  # a namedtuple takes its fields


class TracedModule:
    """A traced forward: call it with tensors of the traced shapes and dtypes; ``program`` is the recording."""

    def __init__(self, model: Module, program: Program):
        self.model, self.program = model, program
        self._lock = threading.Lock()  # one replay at a time: the buffers and the ops' instances are shared
        # train()/eval() changes what a forward computes (dropout, batch norm's statistics): the recording holds
        # the mode it was traced in, so a module switched since is refused rather than run the old way.
        self.modes = [(name, m, m.training) for name, m in model.named_modules()]

    def __call__(self, *inputs: Tensor):
        specs = self.program.input_specs
        if len(inputs) != len(specs):
            raise TypeError(f"jit.trace: the traced forward takes {len(specs)} input(s), got {len(inputs)}")
        arrays = []
        for k, (t, (shape, dtype, kind)) in enumerate(zip(inputs, specs)):
            if not isinstance(t, Tensor):
                raise TypeError(f"jit.trace: input {k} must be a Tensor, got {type(t).__name__}")
            a = t.array
            if a.shape != shape or a.dtype != dtype or type(a) is not kind:
                where = "cuda" if kind is not np.ndarray else "cpu"
                raise RuntimeError(
                    f"jit.trace: input {k} has shape {tuple(a.shape)} and dtype {a.dtype} on {t.device}, but "
                    f"{type(self.model).__name__} was traced for shape {shape} and dtype {dtype} on {where}: "
                    f"trace again with an example of the new shape")
            arrays.append(a)
        for name, m, training in self.modes:
            if m.training is not training:
                raise RuntimeError(
                    f"jit.trace: module '{name or type(m).__name__}' of {type(self.model).__name__} was traced in "
                    f"{'train' if training else 'eval'} mode but is in {'train' if m.training else 'eval'} mode "
                    f"now: trace again in the mode you want to run")
        with self._lock, inference_mode():
            outs = self.program.run(arrays)
        return _unflatten(self.program.tree, [_wrap(a) for a in outs])

    forward = __call__

    def __repr__(self) -> str:
        return f"TracedModule({type(self.model).__name__}, {len(self.program.steps)} ops)"


def trace(model: Module, example, *, check: bool = True) -> TracedModule:
    """Record ``model(example)`` once (see the module docstring); ``example`` is a Tensor or a tuple of Tensors.

    >>> import deepgrad as dg
    >>> net = dg.nn.Sequential(dg.nn.Conv2d(1, 2, 3), dg.nn.ReLU()).eval()
    >>> dg.jit.trace(net, dg.randn(1, 1, 5, 5))
    TracedModule(Sequential, 2 ops)
    """
    if not isinstance(model, Module):  # a Module: its parameters are what the replay reads live (see above)
        raise TypeError(f"jit.trace: model must be a deepgrad.nn.Module, got {type(model).__name__} (wrap a function "
                        f"in a Module whose parameters it uses)")
    examples = _inputs(example)
    arrays = [t.array.copy() for t in examples]  # the caller's example is never written by the trace
    program, _ = _record(model, arrays)
    traced = TracedModule(model, program)
    if check:
        second = [_shuffled(a, seed=k) for k, a in enumerate(arrays)]
        other, eager = _record(model, [a.copy() for a in second])
        why = _difference(program, other)
        if why is None:
            leaves: list = []
            flatten(eager, leaves)
            replayed = program.run(second)
            for a, t in zip(replayed, leaves):
                if a.shape != t.array.shape or not _same(a, t.array):
                    why = "the replay on a shuffled copy of the example differs from the eager forward"
                    break
        if why is not None:
            raise TraceError(f"jit.trace({type(model).__name__}): {why}. The forward depends on the input's values "
                             f"or on randomness in a way a recording cannot replay (data-dependent control flow, "
                             f"dropout in training mode: call model.eval()); pass check=False to trace anyway")
    return traced
