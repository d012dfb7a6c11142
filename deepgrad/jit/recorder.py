"""Recording one forward pass as a :class:`~deepgrad.jit.program.Program`: every ``Function.apply`` call with its
parameters, every in-place write, and where each array came from.

Recording wraps three entry points for the duration of one traced call, in the tracing thread only (the engine's
hot path carries no check when nothing is traced), as :mod:`deepgrad.onnx.trace` does for export:

- ``Function.apply``: each op becomes a step (the op, its parameters, which slots its inputs read, which slots
  its outputs fill);
- ``ops.inplace.observers``: an in-place op is computed out of place and copied in, so it becomes that op's step
  followed by a copy step into the written array (views share memory in replay as in eager, so a write through a
  view reaches its base there too);
- ``Tensor``'s conversions to Python (``bool``, ``item``, ``tolist``, ``numpy``, ``__array__``) on a value the
  forward computed: that is how data-dependent control flow shows itself, and it raises :class:`TraceError`.

Values are named by their array (``id(tensor.array)``, every array kept alive until the recording ends so that
an id is never reused). An array no recorded op produced is an *external*: the example input, a parameter or
buffer of the model (read live at every replay through its Tensor), or a constant the forward made outside the
ops (``zeros`` for an initial state, a mask), whose value at first use is kept to be checked and, where a later
step writes into its memory, restored before every replay.
"""

from __future__ import annotations

import threading

from ..autograd import Function
from ..backend import array_module
from ..nn.module import Module
from ..ops import inplace as _inplace
from ..tensor import Tensor
from .program import Program, Step

_active: list = [None]


class TraceError(RuntimeError):
    """The forward pass cannot be traced into a replayable program; the message says what and where."""


def flatten(obj, leaves: list) -> object:
    """The structure of a model's output with every Tensor replaced by its index in ``leaves`` (appended)."""
    if isinstance(obj, Tensor):
        leaves.append(obj)
        return ("tensor", len(leaves) - 1)
    if isinstance(obj, (tuple, list)):
        return (type(obj), [flatten(item, leaves) for item in obj])
    if isinstance(obj, dict):
        return (dict, {k: flatten(v, leaves) for k, v in obj.items()})
    return ("value", obj)


class Recorder:
    """Context manager recording the ops of one forward pass into slots (see the module docstring)."""

    def __init__(self, model: Module, inputs: list[Tensor]):
        self.names = {id(m): name for name, m in model.named_modules()}
        self.root = type(model).__name__
        self.state_arrays = [t.array for t in list(model.parameters()) + list(model.buffers()) if t is not None]
        self.state = {id(a) for a in self.state_arrays}
        # Where each parameter and buffer lives (its module's registry and key), so that the replay reads the
        # tensor registered there *now*: a parameter replaced after tracing (``m.weight = Parameter(...)``) is
        # seen, and one of another shape or dtype is refused (see Program.run).
        self.owners: dict[int, tuple] = {}
        for prefix, module in model.named_modules():
            for registry in ("_parameters", "_buffers"):
                for key, t in module.__dict__[registry].items():
                    if t is not None:
                        self.owners.setdefault(id(t.array), (module.__dict__[registry], key,
                                                             f"{prefix}.{key}" if prefix else key))
        self.slot_of: dict[int, int] = {}
        self.arrays: list = [None]  # slot -> array at trace time; slot 0 always holds None (an absent input)
        self.kinds: list = ["none"]  # "input", "state", "const", "computed"
        self.tensors: dict[int, Tensor] = {}  # external slot -> its Tensor (read live at replay)
        self.snapshots: dict[int, object] = {}  # const slot -> its value at first use
        self.steps: list[Step] = []
        self.stack: list[Module] = []
        self.thread = threading.get_ident()
        self.input_slots = [self._new(t.array, "input") for t in inputs]
        for s, t in zip(self.input_slots, inputs):
            self.tensors[s] = t

    # ------------------------------------------------------------------ slots
    def _new(self, array, kind: str) -> int:
        self.arrays.append(array)
        self.kinds.append(kind)
        slot = len(self.arrays) - 1
        self.slot_of.setdefault(id(array), slot)  # an op that hands back an input's array keeps its first name
        return slot

    def ref(self, t: Tensor | None) -> int:
        """The slot an op input reads (registering an external on first sight)."""
        if t is None:
            return 0
        a = t.array
        slot = self.slot_of.get(id(a))
        if slot is None:
            kind = "state" if id(a) in self.state else "const"
            slot = self._new(a, kind)
            self.tensors[slot] = t
            if kind == "const":
                self.snapshots[slot] = a.copy()
        return slot

    def scope(self) -> str:
        name = self.names.get(id(self.stack[-1]), "?") if self.stack else ""
        if not name:
            return f"the model's forward ({self.root})"
        return f"module '{name}' ({type(self.stack[-1]).__name__})"

    def here(self) -> bool:
        return threading.get_ident() == self.thread

    # ------------------------------------------------------------------ events
    def on_apply(self, cls, inputs, params, out) -> None:
        ins = tuple(self.ref(t) for t in inputs)
        outs = out if type(out) is tuple else (out,)
        slots = tuple(self._new(o.array, "computed") for o in outs)
        self.steps.append(Step(cls, params, ins, slots if type(out) is tuple else slots[0], self.scope()))

    def on_write(self, t: Tensor, out: Tensor | None) -> None:
        if out is None:  # a raw write (x[i] = v with no graph): no op computed the value, so it cannot be replayed
            shares = array_module(t.array).may_share_memory
            known = [a for k, a in zip(self.kinds, self.arrays) if k != "none"] + self.state_arrays
            if any(shares(t.array, a) for a in known if type(a) is type(t.array)):
                raise TraceError(
                    f"jit.trace: an indexed assignment (x[index] = value) in {self.scope()} writes into a tensor "
                    f"of shape {tuple(t.shape)} that the traced ops already use; the replay cannot repeat a raw "
                    f"write: build the value out of place (torch.where / cat) or index_put")
            return
        self.steps.append(Step(None, {}, (self.ref(out),), self.ref(t), self.scope()))

    def on_python_value(self, t: Tensor, what: str) -> None:
        slot = self.slot_of.get(id(t.array))
        # An array no recorded op made and no parameter, buffer or known constant holds came from an op the trace
        # does not see (a comparison, argmax: they build no graph node), possibly from the input: refused too.
        if slot is None or self.kinds[slot] in ("computed", "input"):
            raise TraceError(
                f"jit.trace: {what} in {self.scope()} turns a value the forward computed (shape {tuple(t.shape)}) "
                f"into a Python value: the replay would freeze whatever branch or number it gave at trace time "
                f"(data-dependent control flow). Keep the computation in tensor ops (torch.where, masks), or run "
                f"that model eagerly")

    # ------------------------------------------------------------------ install / remove the hooks
    def __enter__(self) -> Recorder:
        if _active[0] is not None:
            raise TraceError("jit.trace: a trace is already recording (tracing is not re-entrant)")
        rec = self
        orig_apply = Function.__dict__["apply"]
        orig_call = Module.__dict__["__call__"]
        originals = {name: Tensor.__dict__[name] for name in ("__bool__", "item", "tolist", "numpy", "__array__")}
        self._saved = (orig_apply, orig_call, originals)

        def apply(cls, *inputs, **params):
            out = orig_apply.__func__(cls, *inputs, **params)
            if rec.here():
                rec.on_apply(cls, inputs, params, out)
            return out

        def call(module, *args, **kwargs):
            if not rec.here():
                return orig_call(module, *args, **kwargs)
            rec.stack.append(module)
            try:
                return orig_call(module, *args, **kwargs)
            finally:
                rec.stack.pop()

        def guarded(name, method):
            def conversion(t, *args, **kwargs):
                if rec.here():
                    rec.on_python_value(t, f"Tensor.{name}()")
                return method(t, *args, **kwargs)
            return conversion

        def wrote(t, out):
            if rec.here():
                rec.on_write(t, out)

        Function.apply = classmethod(apply)
        Module.__call__ = call
        for name, method in originals.items():
            setattr(Tensor, name, guarded(name, method))
        _inplace.observers.append(wrote)
        self._wrote = wrote
        _active[0] = self
        return self

    def __exit__(self, *exc) -> bool:
        orig_apply, orig_call, originals = self._saved
        Function.apply = orig_apply
        Module.__call__ = orig_call
        for name, method in originals.items():
            setattr(Tensor, name, method)
        _inplace.observers.remove(self._wrote)
        _active[0] = None
        return False

    # ------------------------------------------------------------------ result
    def program(self, output) -> Program:
        """The recorded program whose outputs are the Tensors in ``output`` (any nesting of tuple/list/dict)."""
        leaves: list[Tensor] = []
        tree = flatten(output, leaves)
        out_slots = []
        for t in leaves:
            slot = self.slot_of.get(id(t.array))
            if slot is None:
                raise TraceError(
                    f"jit.trace: the model's output of shape {tuple(t.shape)} was not computed by deepgrad ops "
                    f"from the input (a tensor made outside the ops, e.g. from NumPy): it cannot be replayed")
            out_slots.append(slot)
        owners = {s: self.owners[id(a)] for s, (a, k) in enumerate(zip(self.arrays, self.kinds)) if k == "state"}
        return Program(self.arrays, self.kinds, self.input_slots, self.tensors, self.snapshots, self.steps,
                       tree, out_slots, owners)
