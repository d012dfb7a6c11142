"""RNN / LSTM / GRU as ONNX's own recurrent ops.

ONNX orders the gates differently from torch (and deepgrad): LSTM i, o, f, c against torch's i, f, g, o;
GRU z, r, h against torch's r, z, n. torch's GRU applies the reset gate after the recurrent matmul
(``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``), which is ONNX's ``linear_before_reset=1``.

An ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` module becomes one ONNX op per layer (direction "bidirectional"
when it is), stacked, with Transposes for ``batch_first``. A direct call of the fused layer functions or a
cell (``LSTMCell`` ...) becomes one single-direction op.
"""

from __future__ import annotations

import numpy as np

from ..nn.recurrent import RNNBase
from ..nn.rnn_utils import PackedSequence
from ..ops import recurrent as RC
from .graph import OpContext, converts, converts_module, host
from .trace import ExportError

# torch's gate chunks, in ONNX's order
_GATE_ORDER = {"LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2), "RNN": (0,)}


def _reorder(w: np.ndarray, mode: str) -> np.ndarray:
    order = _GATE_ORDER[mode]
    chunks = np.split(w, len(order), axis=0)
    return np.concatenate([chunks[i] for i in order], axis=0)


def emit_recurrence(ctx: OpContext, mode: str, x: str, directions: list, h0: str, c0: str, relu: bool,
                    tag: str) -> tuple:
    """One ONNX RNN/LSTM/GRU over a time-major ``x`` (T, B, I). ``directions`` holds one dict of numpy weights
    (weight_ih, weight_hh, bias_ih, bias_hh; biases may be None) per direction, forward first.
    Returns the names of ``(Y (T, D, B, H), Y_h (D, B, H), Y_c or None)``."""
    hidden = directions[0]["weight_hh"].shape[1]
    w = np.stack([_reorder(d["weight_ih"], mode) for d in directions])
    r = np.stack([_reorder(d["weight_hh"], mode) for d in directions])
    inputs = [x, ctx.const(w, f"{tag}.W"), ctx.const(r, f"{tag}.R")]
    if directions[0]["bias_ih"] is not None:
        b = np.stack([np.concatenate([_reorder(d["bias_ih"], mode), _reorder(d["bias_hh"], mode)])
                      for d in directions])
        inputs.append(ctx.const(b, f"{tag}.B"))
    else:
        inputs.append("")
    inputs += ["", h0 or ""]  # no sequence_lens: every sequence runs the full length
    if mode == "LSTM":
        inputs.append(c0 or "")
    while inputs and inputs[-1] == "":
        inputs.pop()
    direction = "bidirectional" if len(directions) == 2 else ("reverse" if directions[0].get("reverse") else "forward")
    attrs = {"hidden_size": int(hidden), "direction": direction}
    if mode == "GRU":
        attrs["linear_before_reset"] = 1
    if mode == "RNN":
        attrs["activations"] = ["Relu" if relu else "Tanh"] * len(directions)
    outs = [ctx.tmp(f"{tag}.Y"), ctx.tmp(f"{tag}.Y_h")] + ([ctx.tmp(f"{tag}.Y_c")] if mode == "LSTM" else [])
    ctx.emit_multi(mode, inputs, outs, **attrs)
    return outs[0], outs[1], (outs[2] if mode == "LSTM" else None)


def _numpy_weight(ctx: OpContext, i: int, what: str):
    if ctx.rec.inputs[i] is None:
        return None
    value = ctx.value(i)
    if value is None:
        raise ctx.fail(f"its {what} is computed inside forward; recurrent weights must be parameters or constants")
    return value


# ----------------------------------------------------------------------------- fused layer functions and cells
@converts(RC.RNNSequence, RC.LSTMSequence, RC.GRUSequence)
def _sequence(ctx: OpContext) -> None:
    op = ctx.rec.op
    mode = {RC.RNNSequence: "RNN", RC.LSTMSequence: "LSTM", RC.GRUSequence: "GRU"}[op]
    n_states = 2 if mode == "LSTM" else 1
    first_w = 1 + n_states
    if mode == "LSTM" and ctx.rec.inputs[first_w + 4] is not None:
        raise ctx.fail("LSTM projections (proj_size > 0) have no ONNX LSTM equivalent")
    packed = ctx.params["packed"]
    if packed and len(ctx.params["steps"]) > 1:
        raise ctx.fail("packed sequences (PackedSequence) are not exportable: pass padded (T, B, F) tensors")
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    weights = {n: _numpy_weight(ctx, first_w + k, n) for k, n in enumerate(names)}
    weights["reverse"] = bool(ctx.params["reverse"])
    x = ctx.input(0)
    if packed:  # one step of a cell: (B, I) -> (1, B, I)
        x = ctx.axes_op("Unsqueeze", x, [0])
    states = [ctx.input(1 + k) for k in range(n_states)]
    states = [ctx.axes_op("Unsqueeze", s, [0]) if s else "" for s in states]
    y, y_h, y_c = emit_recurrence(ctx, mode, x, [weights], states[0], states[1] if mode == "LSTM" else "",
                                  bool(ctx.params.get("relu", False)), ctx.scope_name)
    ctx.axes_op("Squeeze", y, [0, 1] if packed else [1], ctx.out(0))
    ctx.axes_op("Squeeze", y_h, [0], ctx.out(1))
    if mode == "LSTM":
        ctx.axes_op("Squeeze", y_c, [0], ctx.out(2))


# ----------------------------------------------------------------------------- nn.RNN / nn.LSTM / nn.GRU modules
def _rnn_inputs(module, args, kwargs) -> list:
    """[input, h0, c0] of an RNN module call (None where absent)."""
    x = args[0] if args else kwargs.get("input")
    hx = args[1] if len(args) > 1 else kwargs.get("hx")
    if isinstance(x, PackedSequence):
        raise ExportError(f"deepgrad.onnx.export: cannot export {type(module).__name__}: packed sequences "
                          f"(PackedSequence) are not exportable; pass padded (T, B, F) tensors")
    if hx is None:
        return [x, None, None]
    return [x, hx[0], hx[1]] if module.mode == "LSTM" else [x, hx, None]


@converts_module(RNNBase, _rnn_inputs)
def _rnn_module(ctx: OpContext) -> None:
    m = ctx.rec.op
    mode = "RNN" if m.mode.startswith("RNN") else m.mode
    if m.proj_size:
        raise ctx.fail("LSTM projections (proj_size > 0) have no ONNX LSTM equivalent")
    dirs = 2 if m.bidirectional else 1
    batched = len(ctx.shape(0)) == 3
    x = ctx.input(0)
    if not batched:
        x = ctx.axes_op("Unsqueeze", x, [1])
    elif m.batch_first:
        x = ctx.emit("Transpose", [x], perm=[1, 0, 2])
    states = [ctx.input(1), ctx.input(2) if mode == "LSTM" else ""]
    if not batched:
        states = [ctx.axes_op("Unsqueeze", s, [1]) if s else "" for s in states]
    h_list, c_list = [], []
    for layer in range(m.num_layers):
        directions = []
        for d in range(dirs):
            names = m._layer_weights[layer * dirs + d]
            directions.append({k: (host(getattr(m, names[k]).array) if k in names else None)
                               for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
        layer_states = [ctx.emit("Slice", [s, ctx.ints([layer * dirs]), ctx.ints([(layer + 1) * dirs]),
                                           ctx.ints([0])]) if s else "" for s in states]
        y, y_h, y_c = emit_recurrence(ctx, mode, x, directions, layer_states[0], layer_states[1],
                                      m.mode == "RNN_RELU", f"{ctx.scope_name}.l{layer}")
        h_list.append(y_h)
        c_list.append(y_c)
        if dirs == 1:
            x = ctx.axes_op("Squeeze", y, [1])
        else:  # (T, 2, B, H) -> (T, B, 2H): forward and backward features side by side, as torch
            x = ctx.emit("Reshape", [ctx.emit("Transpose", [y], perm=[0, 2, 1, 3]), ctx.ints([0, 0, -1])])
    outs = [x, _join(ctx, h_list)] + ([_join(ctx, c_list)] if mode == "LSTM" else [])
    if not batched:
        outs = [ctx.axes_op("Squeeze", o, [1]) for o in outs]
    elif m.batch_first:
        outs[0] = ctx.emit("Transpose", [outs[0]], perm=[1, 0, 2])
    for k, o in enumerate(outs):
        ctx.emit("Identity", [o], ctx.out(k))


def _join(ctx: OpContext, parts: list) -> str:
    return parts[0] if len(parts) == 1 else ctx.emit("Concat", parts, axis=0)
