"""The ONNX graph under construction, and the per-op context that converters write through.

Two traces of the model (the example input, and one grown along every dynamic axis) run the same ops;
a converter sees both versions of each shape and parameter, so it can tell a batch-dependent size from a
constant one: a reshape target becomes ``0`` (copy the input dim) or ``-1`` where it varies, and a
parameter that must be fixed (a kernel size, a slice bound) raises :class:`ExportError` when it varies.
"""

from __future__ import annotations

import numpy as np

from .trace import ExportError, Record

FUNCTION_CONVERTERS: dict = {}  # Function subclass -> convert(ctx)
MODULE_CONVERTERS: dict = {}  # Module subclass -> (inputs picker, convert(ctx))


def converts(*ops):
    """Decorator registering ``convert(ctx)`` for the given Function subclasses."""

    def register(fn):
        for op in ops:
            FUNCTION_CONVERTERS[op] = fn
        return fn

    return register


def converts_module(module_cls, picker):
    """Decorator registering a module-level converter; ``picker(module, args, kwargs)`` lists its inputs."""

    def register(fn):
        MODULE_CONVERTERS[module_cls] = (picker, fn)
        return fn

    return register


def host(array) -> np.ndarray:
    """A NumPy copy of a CuPy array (NumPy arrays pass through)."""
    return array if isinstance(array, np.ndarray) else (array.get() if hasattr(array, "get") else np.asarray(array))


def onnx_dtype(dtype) -> int:
    from onnx import helper

    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


class GraphBuilder:
    """Nodes, initializers and value names of the graph being written."""

    def __init__(self, opset: int, param_names: dict):
        self.opset = opset
        self.param_names = param_names  # id(array) -> state_dict key, for parameters and buffers
        self.nodes: list = []
        self.initializers: dict = {}  # name -> numpy array
        self.values: dict = {}  # id(array of trace A) -> ONNX value name
        self.keep: list = []  # arrays whose id is a key above: keep them alive
        self.const_ids: dict = {}  # id(array) -> initializer name (parameters, buffers, baked constants)
        self.used: set = set()
        self.input_dims: dict = {}  # (size in trace A, size in trace B) -> (graph input, axis), varying axes
        self.dim_tensors: dict = {}  # (graph input, axis) -> name of its 1-element size tensor

    def fresh(self, hint: str) -> str:
        hint = hint.replace("/", ".") or "v"
        name, k = hint, 1
        while name in self.used:
            name, k = f"{hint}_{k}", k + 1
        self.used.add(name)
        return name

    def node(self, op_type: str, inputs: list, outputs: list, scope: str, **attrs) -> None:
        from onnx import helper

        attrs = {k: v for k, v in attrs.items() if v is not None}
        name = self.fresh(f"{scope}/{op_type}" if scope else op_type)
        self.nodes.append(helper.make_node(op_type, list(inputs), list(outputs), name=name, **attrs))

    def initializer(self, array, hint: str) -> str:
        """A named constant (the array is copied as it is now)."""
        name = self.fresh(hint)
        self.initializers[name] = np.ascontiguousarray(host(array))
        return name

    def const_for(self, array) -> str:
        """The initializer for a parameter/buffer array or a baked constant array (one per array)."""
        key = id(array)
        if key not in self.const_ids:
            self.keep.append(array)
            self.const_ids[key] = self.initializer(array, self.param_names.get(key, "const"))
        return self.const_ids[key]

    def constant_value(self, name: str):
        return self.initializers.get(name)


class OpContext:
    """What a converter sees of one recorded op: input names, both traces' shapes and parameters, and
    helpers that emit nodes. ``out(k)`` is the name the converter must give to the op's output ``k``."""

    def __init__(self, builder: GraphBuilder, rec: Record, rec_b: Record, out_names: list):
        self.b, self.rec, self.rec_b = builder, rec, rec_b
        self.params, self.params_b = rec.params, rec_b.params
        self._out = out_names
        self.scope_name = _scope_tag(rec.scope)

    # ------------------------------------------------------------------ reading the op
    @property
    def opset(self) -> int:
        return self.b.opset

    @property
    def n_inputs(self) -> int:
        return len(self.rec.inputs)

    def fail(self, why: str) -> ExportError:
        return ExportError(f"deepgrad.onnx.export: cannot export {self.rec.op_name} in {self.rec.scope}: {why}")

    def resolve(self, arr, arr_b, what: str) -> str:
        """The ONNX name of a raw array seen by this op: a traced value, a parameter/buffer, or a
        constant computed outside the traced ops (allowed only when both traces agree on it)."""
        if arr is None:
            return ""
        name = self.b.values.get(id(arr))
        if name is not None:
            return name
        if id(arr) in self.b.param_names:
            return self.b.const_for(arr)
        same = arr_b is not None and getattr(arr_b, "shape", None) == arr.shape and np.array_equal(
            host(arr), host(arr_b), equal_nan=arr.dtype.kind == "f")
        if not same:
            raise self.fail(
                f"its {what} (shape {tuple(arr.shape)}) was computed outside deepgrad's traced ops (a comparison, "
                f"argmax, .data, a creation function such as zeros(x.shape[0], ...)) and changes with the input, "
                f"so it is neither a weight nor a constant; compute it with differentiable tensor ops")
        return self.b.const_for(arr)

    def input(self, i: int) -> str:
        """Name of input ``i`` ("" when the optional input is absent)."""
        return self.resolve(self.rec.inputs[i], self.rec_b.inputs[i], f"input {i}")

    def value(self, i: int):
        """Input ``i`` as a numpy array when it is a weight or a constant (for folding), else None."""
        arr = self.rec.inputs[i]
        if arr is None or id(arr) in self.b.values:
            return None
        return self.b.constant_value(self.input(i))

    def shape(self, i: int) -> tuple:
        return tuple(self.rec.inputs[i].shape)

    def shapes(self, i: int) -> tuple:
        """Input ``i``'s shape in both traces."""
        return tuple(self.rec.inputs[i].shape), tuple(self.rec_b.inputs[i].shape)

    def dtype(self, i: int):
        return self.rec.inputs[i].dtype

    def out_shapes(self, k: int = 0) -> tuple:
        return tuple(self.rec.outputs[k].shape), tuple(self.rec_b.outputs[k].shape)

    def out_dtype(self, k: int = 0):
        return self.rec.outputs[k].dtype

    def out(self, k: int = 0) -> str:
        return self._out[k]

    def same(self, pick, what: str):
        """``pick(params)``, which must not change with the dynamic axes (else a clear error)."""
        a, b = pick(self.params), pick(self.params_b)
        if not _equal(a, b):
            raise self.fail(f"its {what} depends on the dynamic axes ({a!r} vs {b!r} on two input sizes), "
                            f"and ONNX needs it fixed")
        return a

    # ------------------------------------------------------------------ emitting
    def tmp(self, hint: str = "") -> str:
        return self.b.fresh(f"{self.scope_name}.{hint or self.rec.op_name}")

    def emit(self, op_type: str, inputs: list, out: str | None = None, **attrs) -> str:
        """One node with one output (a fresh name unless ``out`` is given); returns the output name."""
        out = out or self.tmp(op_type)
        self.b.node(op_type, inputs, [out], self.scope_name, **attrs)
        return out

    def emit_multi(self, op_type: str, inputs: list, outs: list, **attrs) -> list:
        self.b.node(op_type, inputs, outs, self.scope_name, **attrs)
        return outs

    def const(self, array, hint: str = "c") -> str:
        return self.b.initializer(array, f"{self.scope_name}.{hint}")

    def scalar(self, value, dtype) -> str:
        return self.const(np.asarray(value, dtype=dtype), "scalar")

    def ints(self, values) -> str:
        return self.const(np.asarray(list(values), dtype=np.int64), "shape")

    def axes_op(self, op_type: str, x: str, axes, out: str | None = None, **attrs) -> str:
        """Reduce*/Squeeze/Unsqueeze with ``axes`` as an input or an attribute, per the opset."""
        axes = [int(a) for a in axes]
        as_input = op_type in ("Squeeze", "Unsqueeze", "ReduceSum") or self.opset >= 18
        if as_input:
            return self.emit(op_type, [x, self.ints(axes)], out, **attrs)
        return self.emit(op_type, [x], out, axes=axes, **attrs)

    def dim_of(self, a: int, b: int) -> str | None:
        """A 1-element int64 tensor holding a size that varies with the input (``a`` in the first trace,
        ``b`` in the second), read from the graph input axis of that size; None if no input axis has it."""
        source = self.b.input_dims.get((a, b))
        if source is None:
            return None
        if source not in self.b.dim_tensors:
            name, axis = source
            self.b.dim_tensors[source] = out = self.b.fresh(f"{name}.size{axis}")
            self.b.node("Shape", [name], [out], "", start=axis, end=axis + 1)
        return self.b.dim_tensors[source]

    def shape_tensor(self, entries: list) -> str:
        """An int64 shape from ints and names of 1-element size tensors (see :meth:`dim_of`)."""
        if all(isinstance(e, int) for e in entries):
            return self.ints(entries)
        parts, run = [], []
        for e in entries:
            if isinstance(e, int):
                run.append(e)
                continue
            if run:
                parts.append(self.ints(run))
                run = []
            parts.append(e)
        if run:
            parts.append(self.ints(run))
        return self.emit("Concat", parts, axis=0)

    def reshape(self, x: str, in_shapes: tuple, out_shapes: tuple, out: str | None = None) -> str:
        """Reshape between shapes given in both traces. A dim that varies is copied (0) when it stays in
        place, read from the graph input that has that size, or else inferred (-1, at most once)."""
        (ia, ib), (oa, ob) = in_shapes, out_shapes
        if ia == oa and ib == ob:
            return self.emit("Identity", [x], out) if out else x
        target, free = [], []
        for i, (a, b) in enumerate(zip(oa, ob)):
            if a == b:
                if a == 0:
                    raise self.fail("reshaping to a zero-size dim is not exportable")
                target.append(int(a))
            elif i < len(ia) and ia[i] == a and ib[i] == b:
                target.append(0)
            else:
                target.append(-1)
                free.append(i)
        if len(free) > 1:  # at most one -1: the others must be sizes read from a graph input
            unknown = []
            for i in free:
                source = self.dim_of(oa[i], ob[i])
                if source is None:
                    unknown.append(i)
                else:
                    target[i] = source
            if len(unknown) > 1:
                raise self.fail(f"a reshape from {ia} to {oa} has {len(unknown)} varying dims that match no input dim")
            if not unknown:
                target[free[-1]] = -1
        return self.emit("Reshape", [x, self.shape_tensor(target)], out)

    def cast(self, x: str, src, dst) -> str:
        if np.dtype(src) == np.dtype(dst):
            return x
        return self.emit("Cast", [x], to=onnx_dtype(dst))


def _equal(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape and bool(
            np.array_equal(a, b))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


def _scope_tag(scope: str) -> str:
    """'module 'features.0' (Conv2d)' -> 'features.0'; the model's own forward -> 'model'."""
    if scope.startswith("module '"):
        name = scope[len("module '"):].split("'", 1)[0]
        return "model" if name == "<root>" else name
    return "model"
