"""Tracing for ONNX export: run the model's forward pass while recording every op it applies.

Recording works by temporarily wrapping two entry points, only for the duration of one traced call
and only in the tracing thread, so the engine's hot path carries no check when nothing is exported:

- ``Function.apply``: every differentiable op (conv, add, reshape, softmax, the fused multi-output
  recurrences, ...) becomes a :class:`Record` with its input and output arrays and its keyword parameters;
- ``Module.__call__``: a module whose class has a module-level converter (RNN / LSTM / GRU: ONNX has
  its own bidirectional multi-layer ops) is recorded as one node, with the ops inside it silenced.

Values are identified by their *array* (``id(tensor.array)``), not by the Tensor object (``detach()``
shares the array). An in-place op writes its result into the tensor's array, so it is recorded as the op
(with its own output array) followed by an alias record: from then on that array names the new value.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ..autograd import Function, enable_grad
from ..creation import as_tensor
from ..nn.module import Module
from ..ops import inplace as _inplace
from ..ops.elementwise import Clone
from ..tensor import Tensor

_active: Tracer | None = None


class _Alias:
    """The record of an in-place write: the written array takes the op's result as its new value."""


class ExportError(RuntimeError):
    """The model (or one of its ops) cannot be written as ONNX; the message names the op and module."""


@dataclass
class Record:
    """One recorded op: ``kind`` is "function" or "module"; arrays are raw numpy arrays."""

    kind: str  # "function" or "module"
    op: object  # a Function subclass, or the Module instance for kind "module"
    inputs: list  # input arrays (None for an absent optional input), in call order
    params: dict
    outputs: list  # output arrays
    scope: str  # qualified name and class of the innermost module being called

    @property
    def op_name(self) -> str:
        return type(self.op).__name__ if self.kind == "module" else self.op.__name__


def flatten_tensors(obj) -> list:
    """The Tensors in a nested tuple / list / dict, in order (None entries are skipped)."""
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for item in obj for t in flatten_tensors(item)]
    if isinstance(obj, dict):
        return [t for item in obj.values() for t in flatten_tensors(item)]
    return []


class Tracer:
    """Context manager that records the ops of one forward pass (see the module docstring).

    ``module_inputs`` maps a Module class to a function ``(module, args, kwargs) -> [Tensor | None]``
    naming the inputs of a module-level converter in a fixed order.
    """

    def __init__(self, model: Module, module_inputs: dict):
        self.names = {id(m): name for name, m in model.named_modules()}
        self.root = type(model).__name__
        self.module_inputs = module_inputs
        self.records: list[Record] = []
        self.stack: list[Module] = []
        self.silent = 0
        self.thread = threading.get_ident()

    def scope(self) -> str:
        name = self.names.get(id(self.stack[-1]), "?") if self.stack else ""
        if not name:
            return f"the model's forward ({self.root})"
        return f"module '{name}' ({type(self.stack[-1]).__name__})"

    def recording(self) -> bool:
        return self.silent == 0 and threading.get_ident() == self.thread

    def add(self, kind, op, inputs, params, outputs) -> None:
        arrays = [None if t is None else t.array for t in inputs]
        self.records.append(Record(kind, op, arrays, params, [t.array for t in outputs], self.scope()))

    def _module_converter_inputs(self, module):
        for cls in type(module).__mro__:
            if cls in self.module_inputs:
                return self.module_inputs[cls]
        return None

    def __enter__(self) -> Tracer:
        global _active
        if _active is not None:
            raise ExportError("deepgrad.onnx: an export is already tracing (export is not re-entrant)")
        orig_apply = Function.__dict__["apply"]
        orig_call = Module.__dict__["__call__"]
        self._saved = (orig_apply, orig_call)
        tracer = self

        def apply(cls, *inputs, **params):
            out = orig_apply.__func__(cls, *inputs, **params)
            if tracer.recording():
                tracer.add("function", cls, inputs, params, list(out) if type(out) is tuple else [out])
            return out

        def call(module, *args, **kwargs):
            if threading.get_ident() != tracer.thread:
                return orig_call(module, *args, **kwargs)
            tracer.stack.append(module)
            try:
                picker = tracer._module_converter_inputs(module) if tracer.silent == 0 else None
                if picker is None:
                    return orig_call(module, *args, **kwargs)
                inputs = picker(module, args, kwargs)
                tracer.silent += 1
                try:
                    out = orig_call(module, *args, **kwargs)
                finally:
                    tracer.silent -= 1
                tracer.add("module", module, inputs, {"args": args, "kwargs": kwargs}, flatten_tensors(out))
                return out
            finally:
                tracer.stack.pop()

        def wrote(t, out):  # an in-place op: from here on t's array holds out's value
            if not tracer.recording():
                return
            if out is None or t._view is not None:
                what = "a view of a tensor" if out is not None else "a tensor (x[index] = value)"
                raise ExportError(f"deepgrad.onnx: an in-place write into {what} in {tracer.scope()} is not "
                                  f"exportable; build the value out of place (cat / where)")
            tracer.add("function", _Alias, [out], {}, [t])

        Function.apply = classmethod(apply)
        Module.__call__ = call
        _inplace.observers.append(wrote)
        self._wrote = wrote
        _active = self
        return self

    def __exit__(self, *exc) -> bool:
        global _active
        orig_apply, orig_call = self._saved
        Function.apply = orig_apply
        Module.__call__ = orig_call
        _inplace.observers.remove(self._wrote)
        _active = None
        return False


def trace(model: Module, inputs: list, module_inputs: dict) -> tuple[list[Record], list, object]:
    """Run ``model(*inputs)`` once while recording: ``(records, input arrays, output)``.

    Floating inputs enter as non-leaf tensors that require grad, so in-place ops in the forward pass
    (``out += identity``) are recorded out of place instead of silently mutating traced arrays.
    """
    fed = []
    with enable_grad():
        for x in inputs:
            t = as_tensor(x)
            if x.dtype.kind == "f":
                t = Clone.apply(t.requires_grad_(True))  # a fresh array: the caller's example stays untouched
            fed.append(t)
        with Tracer(model, module_inputs) as tracer:
            out = model(*fed)
    return tracer.records, [t.array for t in fed], out
