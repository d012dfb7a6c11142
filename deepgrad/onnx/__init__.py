"""Export deepgrad models to ONNX (the ``onnx`` package is needed: ``pip install deepgrad[onnx]``).

>>> model = deepgrad.models.LeNet5()
>>> proto = deepgrad.onnx.export(model, deepgrad.randn(1, 1, 28, 28), "lenet.onnx",
...                              dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
>>> [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
['batch', 1, 28, 28]

The model runs one forward pass in eval mode while every op is recorded (see :mod:`deepgrad.onnx.trace`),
then a second pass on the example grown by one along each dynamic axis tells which sizes vary: those
become symbolic in the file, and anything that would silently bake a batch size into the graph is an
error that names the op and the module. Opset 17 by default (17 to 21 accepted).

Exportable: Linear, Conv1d/Conv2d (stride, padding incl. "same", dilation, groups), ConvTranspose1d/2d,
max / average / sum pooling (1-D and 2-D, ceil mode), adaptive average pooling (any size), adaptive max
pooling (sizes that divide evenly, or 1x1), BatchNorm1d/2d (eval: running statistics; batch statistics when
it keeps none), LayerNorm, GroupNorm, Dropout (the identity in eval), ReLU, LeakyReLU, ELU, GELU (exact and
tanh), Sigmoid, Tanh, Softplus, Softmax, LogSoftmax, Flatten / Unflatten / reshape / view / squeeze /
unsqueeze / permute / transpose / expand / repeat / basic indexing and one integer index array / cat /
stack / pad, elementwise arithmetic (residual additions...), clamp, where, reductions (sum, mean, var,
std, amax/amin, logsumexp, gather), matmul, Embedding, RNN / LSTM / GRU (multi-layer, bidirectional,
batch_first, initial states) and the RNN / LSTM / GRU cells, scaled_dot_product_attention (masks, causal; the
sequence lengths may be dynamic axes), MultiheadAttention and the Transformer encoder / decoder layers.

Not exportable (clear :class:`ExportError`): PackedSequence inputs, LSTM ``proj_size > 0``, pooling with
``return_indices=True`` and max unpooling, adaptive max pooling with unequal windows, dropout forced on
with ``training=True`` (and attention with ``dropout_p > 0``), item assignment in forward,
``max(dim)``/``argmax`` results used as values, and losses.
"""

from __future__ import annotations

import os

import numpy as np

from ..backend import array_module, move_to
from ..nn.module import Module
from ..tensor import Tensor
from . import ops_attention, ops_extra, ops_nn, ops_recurrent, ops_shape, ops_tensor  # noqa: F401  (register them)
from .graph import FUNCTION_CONVERTERS, MODULE_CONVERTERS, GraphBuilder, OpContext, _scope_tag, host, onnx_dtype
from .trace import ExportError, Record, flatten_tensors, trace

DEFAULT_OPSET = 17
SUPPORTED_OPSETS = range(17, 22)

__all__ = ["export", "ExportError", "DEFAULT_OPSET", "SUPPORTED_OPSETS", "run_onnxruntime", "compare_with_onnxruntime"]


def _import_onnx():
    try:
        import onnx
    except ImportError as e:  # an optional dependency
        raise ImportError("deepgrad.onnx needs the 'onnx' package: pip install 'deepgrad[onnx]' (or pip install onnx)"
                          ) from e
    return onnx


def _example_arrays(example_input, model: Module) -> list:
    items = list(example_input) if isinstance(example_input, (tuple, list)) else [example_input]
    if not items:
        raise ValueError("deepgrad.onnx.export: example_input is empty")
    first = next(iter(model.parameters()), None)
    arrays = []
    for x in items:
        arr = x.array if isinstance(x, Tensor) else np.asarray(x)
        if first is not None and array_module(arr) is not array_module(first.array):
            arr = move_to(arr, first.device)
        arrays.append(arr)
    return arrays


def _normalize_axes(dynamic_axes, names: list) -> dict:
    out = {}
    for name, axes in (dynamic_axes or {}).items():
        if name not in names:
            raise ValueError(f"deepgrad.onnx.export: dynamic_axes names {name!r}, which is neither an input nor an "
                             f"output name ({', '.join(names)})")
        if isinstance(axes, dict):
            out[name] = {int(a): str(n) for a, n in axes.items()}
        else:
            out[name] = {int(a): f"{name}_dim{int(a)}" for a in axes}
    return out


def _grow(arr, axes) -> np.ndarray:
    """The example one larger along each dynamic axis (the first slice repeated), and rolled along axis 0
    so that a constant computed from the data outside the traced ops shows up as changing."""
    xp = array_module(arr)
    for ax in axes:
        arr = xp.concatenate([arr, xp.take(arr, [0], axis=ax)], axis=ax)
    return xp.roll(arr, 1, axis=0) if arr.ndim else arr


def _module_inputs() -> dict:
    return {cls: picker for cls, (picker, _) in MODULE_CONVERTERS.items()}


def _converter(rec: Record):
    if rec.kind == "module":
        for cls in type(rec.op).__mro__:
            if cls in MODULE_CONVERTERS:
                return MODULE_CONVERTERS[cls][1]
    fn = FUNCTION_CONVERTERS.get(rec.op)
    if fn is None:
        raise ExportError(f"deepgrad.onnx.export: op {rec.op_name} ({rec.op.__module__}) in {rec.scope} has no ONNX "
                          f"converter, so this model cannot be exported (see deepgrad.onnx's docstring for the "
                          f"exportable layers)")
    return fn


def _align(recs_a: list, recs_b: list) -> None:
    for i, (a, b) in enumerate(zip(recs_a, recs_b)):
        if a.kind != b.kind or a.op is not b.op:
            raise ExportError(f"deepgrad.onnx.export: the model ran different ops on two input sizes (op #{i}: "
                              f"{a.op_name} in {a.scope} vs {b.op_name} in {b.scope}); shape- or data-dependent "
                              f"control flow cannot be captured by one trace")
    if len(recs_a) != len(recs_b):
        raise ExportError(f"deepgrad.onnx.export: the model ran {len(recs_a)} ops on the example but {len(recs_b)} "
                          f"on an input grown along the dynamic axes; control flow that depends on the input "
                          f"size cannot be captured by one trace")


def _dims(shape_a: tuple, shape_b: tuple, named: dict, fallback) -> list:
    dims = []
    for axis, (a, b) in enumerate(zip(shape_a, shape_b)):
        if axis in named:
            dims.append(named[axis])
        elif a != b:
            dims.append(fallback(axis, a, b))
        else:
            dims.append(int(a))
    return dims


def export(model: Module, example_input, path: str | os.PathLike | None = None, input_names=None,
           output_names=None, dynamic_axes: dict | None = None, opset: int = DEFAULT_OPSET, check: bool = True):
    """Trace ``model(*example_input)`` and write it as an ONNX file; returns the ``onnx.ModelProto``.

    ``example_input``: a Tensor (or array), or a tuple of them for several inputs. ``input_names`` /
    ``output_names`` default to "input"/"output" (``input_0``, ... when there are several).
    ``dynamic_axes`` as torch: ``{"input": {0: "batch"}, "output": {0: "batch"}}`` or ``{"input": [0]}``;
    output axes that follow a dynamic input axis become symbolic even when not listed. The model is
    traced in eval mode (Dropout removed, BatchNorm on running statistics) and restored afterwards.

    >>> proto = export(deepgrad.nn.Linear(3, 2), deepgrad.randn(4, 3), "linear.onnx", dynamic_axes={"input": [0]})
    >>> [node.op_type for node in proto.graph.node]
    ['Gemm']
    """
    onnx = _import_onnx()
    from onnx import helper, numpy_helper

    if opset not in SUPPORTED_OPSETS:
        raise ValueError(f"deepgrad.onnx.export: opset {opset} is not supported; use one of "
                         f"{SUPPORTED_OPSETS.start}..{SUPPORTED_OPSETS.stop - 1}")
    if not isinstance(model, Module):
        raise TypeError(f"deepgrad.onnx.export: expected a deepgrad.nn.Module, got {type(model).__name__}")
    arrays = _example_arrays(example_input, model)
    input_names = list(input_names) if input_names else (
        ["input"] if len(arrays) == 1 else [f"input_{i}" for i in range(len(arrays))])
    if len(input_names) != len(arrays):
        raise ValueError(f"deepgrad.onnx.export: {len(input_names)} input names for {len(arrays)} inputs")

    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        recs_a, ins_a, out_a = trace(model, arrays, _module_inputs())
        outs_a = flatten_tensors(out_a)
        if output_names is None:
            output_names = ["output"] if len(outs_a) == 1 else [f"output_{i}" for i in range(len(outs_a))]
        output_names = list(output_names)
        if len(output_names) != len(outs_a):
            raise ValueError(f"deepgrad.onnx.export: {len(output_names)} output names for {len(outs_a)} outputs")
        axes = _normalize_axes(dynamic_axes, input_names + output_names)
        grown = [_grow(a, sorted(axes.get(n, {}))) for n, a in zip(input_names, arrays)]
        try:
            recs_b, ins_b, out_b = trace(model, grown, _module_inputs())
        except ExportError:
            raise
        except Exception as e:
            raise ExportError(f"deepgrad.onnx.export: the model fails on an input grown along its dynamic axes "
                              f"{ {n: list(a) for n, a in axes.items()} } ({type(e).__name__}: {e}); declare only "
                              f"axes that can vary") from e
    finally:
        for m, mode in modes:
            m.training = mode
    outs_b = flatten_tensors(out_b)
    _align(recs_a, recs_b)

    param_names = {}
    for prefix_items in (model.named_parameters(), model.named_buffers()):
        for name, t in prefix_items:
            if t is not None:
                param_names.setdefault(id(t.array), name)
    builder = GraphBuilder(opset, param_names)
    builder.used.update(input_names + output_names)
    for name, arr, arr_b in zip(input_names, ins_a, ins_b):
        builder.values[id(arr)] = name
        for axis, (a, b) in enumerate(zip(arr.shape, arr_b.shape)):
            if a != b:
                builder.input_dims.setdefault((a, b), (name, axis))
    claim = {}
    for name, t in zip(output_names, outs_a):
        claim.setdefault(id(t.array), name)
    last = {id(arr): i for i, rec in enumerate(recs_a) for arr in rec.outputs}  # in-place ops rewrite an array

    for i, (rec, rec_b) in enumerate(zip(recs_a, recs_b)):
        tag = f"{_scope_tag(rec.scope)}.{rec.op_name}"
        names = [(claim.pop(id(arr), None) if last[id(arr)] == i else None) or
                 builder.fresh(tag if k == 0 else f"{tag}_{k}") for k, arr in enumerate(rec.outputs)]
        _converter(rec)(OpContext(builder, rec, rec_b, names))
        for arr, name in zip(rec.outputs, names):
            builder.values[id(arr)] = name

    input_dims = {}
    inputs_vi = []
    for name, arr_a, arr_b in zip(input_names, ins_a, ins_b):
        dims = _dims(arr_a.shape, arr_b.shape, axes.get(name, {}), lambda ax, a, b, n=name: f"{n}_dim{ax}")
        for ax, d in enumerate(dims):
            if isinstance(d, str):
                input_dims.setdefault((arr_a.shape[ax], arr_b.shape[ax]), d)
        inputs_vi.append(helper.make_tensor_value_info(name, onnx_dtype(arr_a.dtype), dims))
    outputs_vi = []
    final = OpContext(builder, Record("function", Module, [t.array for t in outs_a], {}, [], "the model's outputs"),
                      Record("function", Module, [t.array for t in outs_b], {}, [], ""), [])
    for k, (name, ta, tb) in enumerate(zip(output_names, outs_a, outs_b)):
        src = final.input(k)
        if src != name:
            builder.node("Identity", [src], [name], "output")
        dims = _dims(ta.shape, tb.shape, axes.get(name, {}),
                     lambda ax, a, b, n=name: input_dims.get((a, b), f"{n}_dim{ax}"))
        outputs_vi.append(helper.make_tensor_value_info(name, onnx_dtype(ta.dtype), dims))

    nodes, inits = _prune(_drop_identities(builder.nodes, set(input_names), set(output_names),
                                           set(builder.initializers)), output_names, builder.initializers)
    graph = helper.make_graph(nodes, type(model).__name__, inputs_vi, outputs_vi,
                              initializer=[numpy_helper.from_array(host(a), n) for n, a in inits.items()])
    from .. import __version__

    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="deepgrad",
                              producer_version=__version__)
    proto.ir_version = helper.find_min_ir_version_for(list(proto.opset_import))
    if check:
        onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        from ..io import atomic_write_bytes

        atomic_write_bytes(path, proto.SerializeToString())
    return proto


def _prune(nodes: list, outputs: list, initializers: dict) -> tuple[list, dict]:
    """Only the nodes and initializers the outputs depend on (a module's unused h_n, for one)."""
    needed, kept = set(outputs), []
    for node in reversed(nodes):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(i for i in node.input if i)
    inits = {n: a for n, a in initializers.items() if n in needed}
    return kept[::-1], inits


def _drop_identities(nodes: list, inputs: set, outputs: set, initializers: set) -> list:
    """Fold the Identity nodes that converters use to land a value on its assigned name."""
    producer = {o: node for node in nodes for o in node.output}
    rename, kept = {}, []
    for node in nodes:
        for k, name in enumerate(node.input):
            node.input[k] = rename.get(name, name)
        if node.op_type != "Identity":
            kept.append(node)
            continue
        src, dst = node.input[0], node.output[0]
        if dst not in outputs:
            rename[dst] = src  # consumers read the source directly
        elif src in producer and src not in outputs | inputs | initializers and _single_use(src, nodes):
            out = producer[src].output
            out[list(out).index(src)] = dst  # the producer writes the output name itself
        else:
            kept.append(node)
    return kept


def _single_use(name: str, nodes: list) -> bool:
    return sum(list(n.input).count(name) for n in nodes) == 1


# ----------------------------------------------------------------------------- checking in onnxruntime
def run_onnxruntime(model_or_path, *inputs) -> list:
    """Run an exported model in onnxruntime (CPU) on numpy/Tensor inputs; returns the list of outputs."""
    import onnxruntime as ort

    if not isinstance(model_or_path, (str, os.PathLike)):
        model_or_path = model_or_path.SerializeToString()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model_or_path, options, providers=["CPUExecutionProvider"])
    feeds = {i.name: host(x.array if isinstance(x, Tensor) else np.asarray(x))
             for i, x in zip(session.get_inputs(), inputs)}
    return session.run(None, feeds)


def compare_with_onnxruntime(model: Module, model_or_path, *inputs) -> float:
    """Largest |onnxruntime - deepgrad| over every output, divided by the largest |deepgrad| (eval mode)."""
    from ..autograd import no_grad

    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with no_grad():
            expected = [host(t.array) for t in flatten_tensors(model(*[x if isinstance(x, Tensor) else Tensor(x)
                                                                      for x in inputs]))]
    finally:
        for m, mode in modes:
            m.training = mode
    got = run_onnxruntime(model_or_path, *inputs)
    if len(got) != len(expected):
        raise AssertionError(f"onnxruntime gave {len(got)} outputs, deepgrad {len(expected)}")
    worst = 0.0
    for e, g in zip(expected, got):
        if e.shape != g.shape:
            raise AssertionError(f"onnxruntime output shape {g.shape} != deepgrad's {e.shape}")
        scale = max(float(np.abs(e).max()) if e.size else 0.0, 1e-30)
        worst = max(worst, float(np.abs(g.astype(np.float64) - e.astype(np.float64)).max()) / scale if e.size else 0)
    return worst
