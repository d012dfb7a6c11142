"""A recorded forward pass as a program on raw arrays: numbered slots, steps that fill them, and the buffers some
steps write into.

The program is what a replay runs and what a later CUDA-graph capture would run once under capture (the GPU
issue's ``dg.cuda.graphs``): every step is a kernel call on arrays, bound to its parameters when the program is
built, so a replay pays one Python call per op and nothing of the Tensor layer (no Tensor objects, no argument
checks, no module calls, no graph). Steps of ops listed in :data:`INTO` write into buffers allocated once
(static addresses, as a captured graph needs); the others return fresh arrays.

Slots. Slot 0 holds ``None`` (an absent optional input); then the inputs, the externals (parameters and buffers
read live through their Tensors at every replay, and constants the forward made outside the ops) and every
value a step computes, in the order the trace met them.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

from ..backend import array_module
from ..kernels.parallel import matmul as pmatmul
from ..kernels.pool import max_pool2d_values
from ..ops.linalg import Linear, MatMul
from ..ops.pool import MaxPool


class Step(NamedTuple):
    """One recorded op: ``op`` (a Function class, or None for the copy of an in-place write), its keyword
    parameters, the slots it reads, the slot (tuple of slots for a multi-output op) it fills, and where it ran."""

    op: object
    params: dict
    ins: tuple
    outs: object
    scope: str

    @property
    def name(self) -> str:
        return "copy_" if self.op is None else self.op.__name__


# ----------------------------------------------------------------------------- ops that write into a buffer
def _linear_into(buf):
    def run(x, weight, bias=None):  # Linear.forward's calls, into ``buf``: the same bits
        out = pmatmul(x, weight.T, out=buf)
        if bias is not None:
            out += bias
        return out
    return run


def _matmul_into(buf):
    def run(a, b):
        return pmatmul(a, b, out=buf)
    return run


def _matmul_fits(arrays: list) -> bool:  # MatMul.forward goes through the plain path only for these
    a, b = arrays
    return a.ndim >= 2 and b.ndim == 2


# op -> (make(buffer) -> kernel(*inputs), which traced inputs it fits)
INTO = {Linear: (_linear_into, lambda arrays: arrays[0].ndim >= 1),
        MatMul: (_matmul_into, _matmul_fits)}


# ----------------------------------------------------------------------------- ops replayed by another kernel
# A forward that computes something only its backward needs gets a kernel that skips it (the same output values,
# bit for bit; each is tested against the op's forward): op -> make(params) -> kernel(*inputs), or None to keep
# the op's forward.
def _max_pool_values(params: dict):
    if params.get("sink") is not None:  # return_indices=True: the winning offsets are an output
        return None
    geom = params["geom"]
    return lambda x: max_pool2d_values(x.reshape(geom.x_shape), geom).reshape(geom.public_out_shape)


LOWER = {MaxPool: _max_pool_values}


# ----------------------------------------------------------------------------- the program
class Program:
    """Slots and steps of one traced forward (see the module docstring); :meth:`run` replays it."""

    def __init__(self, arrays: list, kinds: list, input_slots: list, tensors: dict, snapshots: dict, steps: list,
                 tree, out_slots: list, owners: dict | None = None):
        self.size = len(arrays)
        self.steps = steps
        self.input_slots = input_slots
        self.input_specs = [(tuple(arrays[s].shape), arrays[s].dtype, type(arrays[s])) for s in input_slots]
        self.externals = [(s, tensors[s]) for s in range(self.size) if kinds[s] in ("state", "const")]
        owners = owners or {}
        # Constants are read through the tensor the trace met; parameters and buffers through their module's
        # registry: [slot, registry, key, qualified name, tensor, traced shape, traced dtype, array type].
        self.consts = [(s, t) for s, t in self.externals if s not in owners]
        self.state = [[s, *owners[s], t, tuple(arrays[s].shape), arrays[s].dtype, type(arrays[s])]
                      for s, t in self.externals if s in owners]
        self.snapshots = snapshots
        self.tree, self.out_slots = tree, out_slots
        written = [arrays[step.outs] for step in steps if step.op is None]
        shares = array_module(arrays[input_slots[0]]).may_share_memory if input_slots else None
        # A constant that a step writes into (through a view, say) starts every replay from its traced value.
        self.restores = [(s, snapshots[s]) for s in snapshots if any(shares(arrays[s], w) for w in written)]
        self.buffers = {}
        self._calls = [self._compile(step, arrays) for step in steps]
        # An output that shares memory with a buffer or an external is copied out: the next replay (or the
        # caller's own in-place update) would change it under the caller's feet.
        # Judged on the traced arrays, whose aliasing the replay repeats (a view there is a view here): the value a
        # buffered step computed at trace time stands for its buffer.
        fixed = [arrays[s] for s in self.buffers] + [arrays[s] for s, _ in self.externals] + \
            [arrays[s] for s in input_slots]
        self.copy_out = [any(shares(arrays[s], f) for f in fixed) for s in out_slots]

    def _compile(self, step: Step, arrays: list) -> tuple:
        """``(kind, call, ins, outs)``: kind 0 one output, 1 several, 2 a copy into an existing array."""
        if step.op is None:
            return 2, None, step.ins, step.outs
        fn = step.op()
        call = functools.partial(fn.forward, **step.params) if step.params else fn.forward
        lower = LOWER.get(step.op)
        if lower is not None:
            kernel = lower(step.params)
            if kernel is not None:
                return (1 if type(step.outs) is tuple else 0), kernel, step.ins, step.outs
        into = INTO.get(step.op)
        if into is not None and type(step.outs) is int and into[1]([arrays[i] for i in step.ins]):
            out = arrays[step.outs]
            buf = self.buffers[step.outs] = array_module(out).empty(out.shape, out.dtype)
            call = into[0](buf)
            if step.params:
                call = functools.partial(call, **step.params)
        return (1 if type(step.outs) is tuple else 0), call, step.ins, step.outs

    def run(self, arrays: list) -> list:
        """Replay on ``arrays`` (one per traced input, already checked): the output arrays, in slot order."""
        v = [None] * self.size
        for s, a in zip(self.input_slots, arrays):
            v[s] = a
        for s, t in self.consts:
            v[s] = t.array
        for entry in self.state:
            s, registry, key, _, t, shape, dtype, kind = entry
            now = registry.get(key)
            if now is not t:  # replaced after tracing: read the new one (checked below), or refuse if removed
                if now is None:
                    raise RuntimeError(f"jit.trace: '{entry[3]}' was removed from the model after tracing; "
                                       f"trace again")
                entry[4] = t = now
            a = t.array
            if a.shape != shape or a.dtype != dtype or type(a) is not kind:
                raise RuntimeError(
                    f"jit.trace: '{entry[3]}' has shape {tuple(a.shape)} and dtype {a.dtype} now, but was traced "
                    f"with shape {shape} and dtype {dtype}: the recording (and its buffers) no longer fit; "
                    f"trace again")
            v[s] = a
        for s, snapshot in self.restores:
            v[s][...] = snapshot
        for kind, call, ins, outs in self._calls:
            if kind == 0:
                v[outs] = call(*[v[i] for i in ins])
            elif kind == 1:
                for s, a in zip(outs, call(*[v[i] for i in ins])):
                    v[s] = a
            else:
                v[outs][...] = v[ins[0]]
        return [v[s].copy() if c else v[s] for s, c in zip(self.out_slots, self.copy_out)]

    def describe(self) -> str:
        """One line per step: ``%5 = Linear(%1, %2, %3)``."""
        lines = []
        for step in self.steps:
            outs = step.outs if type(step.outs) is tuple else (step.outs,)
            lhs = ", ".join(f"%{s}" for s in outs)
            args = ", ".join("None" if i == 0 else f"%{i}" for i in step.ins)
            into = "  [into buffer]" if type(step.outs) is int and step.outs in self.buffers else ""
            lines.append(f"{lhs} = {step.name}({args}){into}    # {step.scope}")
        return "\n".join(lines)
