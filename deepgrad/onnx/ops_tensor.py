"""Converters for the tensor-level ops: arithmetic, activations, reductions, matmul / linear, casts."""

from __future__ import annotations

import math

from ..ops import activation as A
from ..ops import arithmetic as AR
from ..ops import dropout as D
from ..ops import elementwise as E
from ..ops import linalg as L
from ..ops import reduce as R
from .graph import OpContext, converts, onnx_dtype
from .trace import _Alias

_BINARY = {AR.Add: "Add", AR.Sub: "Sub", AR.Mul: "Mul", AR.Div: "Div", AR.Pow: "Pow", E.Maximum: "Max",
           E.Minimum: "Min", L.MatMul: "MatMul"}
_UNARY = {E.Neg: "Neg", E.Abs: "Abs", E.Exp: "Exp", E.Log: "Log", E.Sqrt: "Sqrt", E.Sin: "Sin", E.Cos: "Cos",
          E.Tanh: "Tanh", A.Sigmoid: "Sigmoid", A.Relu: "Relu", E.Clone: "Identity", E.ToDevice: "Identity",
          E.Contiguous: "Identity", _Alias: "Identity", E.Sign: "Sign", AR.Reciprocal: "Reciprocal"}


@converts(*_BINARY)
def _binary(ctx: OpContext) -> None:
    dt = ctx.out_dtype()
    a = ctx.cast(ctx.input(0), ctx.dtype(0), dt) if ctx.rec.op is not AR.Pow else ctx.input(0)
    b = ctx.cast(ctx.input(1), ctx.dtype(1), dt) if ctx.rec.op is not AR.Pow else ctx.input(1)
    ctx.emit(_BINARY[ctx.rec.op], [a, b], ctx.out())


@converts(*_UNARY)
def _unary(ctx: OpContext) -> None:
    ctx.emit(_UNARY[ctx.rec.op], [ctx.input(0)], ctx.out())


@converts(AR.AddScalar, AR.MulScalar, AR.DivScalar, AR.RSubScalar, AR.PowScalar, AR.RPowScalar)
def _scalar(ctx: OpContext) -> None:
    op = ctx.rec.op
    c = ctx.same(lambda p: p["c"], "scalar operand")
    dt = ctx.out_dtype()
    x = ctx.cast(ctx.input(0), ctx.dtype(0), dt)
    k = ctx.scalar(c, dt)
    if op is AR.PowScalar and c == 2:  # x * x is exactly what NumPy computes for x ** 2
        ctx.emit("Mul", [x, x], ctx.out())
        return
    kind, operands = {AR.AddScalar: ("Add", [x, k]), AR.MulScalar: ("Mul", [x, k]), AR.DivScalar: ("Div", [x, k]),
                      AR.RSubScalar: ("Sub", [k, x]),
                      AR.PowScalar: ("Pow", [x, k]), AR.RPowScalar: ("Pow", [k, x])}[op]
    ctx.emit(kind, operands, ctx.out())


@converts(E.Log1p)
def _log1p(ctx: OpContext) -> None:
    one = ctx.scalar(1, ctx.dtype(0))
    ctx.emit("Log", [ctx.emit("Add", [ctx.input(0), one])], ctx.out())


@converts(E.Clamp)
def _clamp(ctx: OpContext) -> None:
    dt = ctx.dtype(0)
    lo, hi = ctx.same(lambda p: p["lo"], "lower bound"), ctx.same(lambda p: p["hi"], "upper bound")
    ctx.emit("Clip", [ctx.input(0), "" if lo is None else ctx.scalar(lo, dt), "" if hi is None else ctx.scalar(hi, dt)],
             ctx.out())


@converts(E.ClampTensor)
def _clamp_tensor(ctx: OpContext) -> None:
    which = ctx.params["which"]
    x, k = ctx.input(0), 1
    if which.startswith("lo"):
        last = which == "lo"
        x = ctx.emit("Max", [x, ctx.input(k)], ctx.out() if last else None)
        k += 1
    if which.endswith("hi"):
        ctx.emit("Min", [x, ctx.input(k)], ctx.out())


@converts(E.Where)
def _where(ctx: OpContext) -> None:
    ctx.emit("Where", [ctx.input(0), ctx.input(1), ctx.input(2)], ctx.out())


@converts(E.Cast)
def _cast(ctx: OpContext) -> None:
    ctx.emit("Cast", [ctx.input(0)], ctx.out(), to=onnx_dtype(ctx.params["dtype"]))


@converts(D.Noise)
def _noise(ctx: OpContext) -> None:
    raise ctx.fail("dropout with training=True draws a random mask at every call; export models in eval mode and "
                   "call F.dropout(x, p, training=self.training) (nn.Dropout does) so it becomes the identity")


# ----------------------------------------------------------------------------- activations
@converts(A.LeakyRelu)
def _leaky_relu(ctx: OpContext) -> None:
    ctx.emit("LeakyRelu", [ctx.input(0)], ctx.out(), alpha=float(ctx.params["negative_slope"]))


@converts(A.Elu)
def _elu(ctx: OpContext) -> None:
    ctx.emit("Elu", [ctx.input(0)], ctx.out(), alpha=float(ctx.params["alpha"]))


@converts(A.Gelu)
def _gelu(ctx: OpContext) -> None:
    # ONNX's Gelu op arrives in opset 20; the formula works in every opset.
    x, dt = ctx.input(0), ctx.dtype(0)
    if ctx.params["approximate"] == "tanh":
        cube = ctx.emit("Mul", [ctx.emit("Mul", [x, x]), x])
        inner = ctx.emit("Add", [x, ctx.emit("Mul", [cube, ctx.scalar(0.044715, dt)])])
        t = ctx.emit("Tanh", [ctx.emit("Mul", [inner, ctx.scalar(math.sqrt(2.0 / math.pi), dt)])])
    else:
        t = ctx.emit("Erf", [ctx.emit("Mul", [x, ctx.scalar(1 / math.sqrt(2.0), dt)])])
    half = ctx.emit("Mul", [x, ctx.scalar(0.5, dt)])
    ctx.emit("Mul", [half, ctx.emit("Add", [t, ctx.scalar(1.0, dt)])], ctx.out())


@converts(A.Softplus)
def _softplus(ctx: OpContext) -> None:
    x, dt = ctx.input(0), ctx.dtype(0)
    beta, threshold = float(ctx.params["beta"]), float(ctx.params["threshold"])
    bx = x if beta == 1 else ctx.emit("Mul", [x, ctx.scalar(beta, dt)])
    soft = ctx.emit("Softplus", [bx])
    if beta != 1:
        soft = ctx.emit("Div", [soft, ctx.scalar(beta, dt)])
    # torch's softplus is exactly x above the threshold
    ctx.emit("Where", [ctx.emit("Greater", [bx, ctx.scalar(threshold, dt)]), x, soft], ctx.out())


# ----------------------------------------------------------------------------- reductions
def _reduce(ctx: OpContext, op_type: str, x: str, axes, keepdim: bool, out=None) -> str:
    if len(axes) == 0:  # NumPy reduces over no axis: the identity
        return ctx.emit("Identity", [x], out)
    return ctx.axes_op(op_type, x, axes, out, keepdims=int(bool(keepdim)))


@converts(R.Sum, R.Mean)
def _sum_mean(ctx: OpContext) -> None:
    x = ctx.input(0)
    if ctx.rec.op is R.Sum:
        x = ctx.cast(x, ctx.dtype(0), ctx.out_dtype())
    op_type = "ReduceSum" if ctx.rec.op is R.Sum else "ReduceMean"
    _reduce(ctx, op_type, x, ctx.params["axes"], ctx.params["keepdim"], ctx.out())


@converts(R.Var, R.Std)
def _var_std(ctx: OpContext) -> None:
    x, dt = ctx.input(0), ctx.dtype(0)
    axes, keepdim, correction = ctx.params["axes"], ctx.params["keepdim"], ctx.params["correction"]
    count, count_b = (math.prod(s[a] for a in axes) for s in ctx.shapes(0))
    if count != count_b:
        raise ctx.fail(f"the variance runs over a dim that varies ({count} vs {count_b} elements)")
    d = ctx.emit("Sub", [x, _reduce(ctx, "ReduceMean", x, axes, True)])
    ss = _reduce(ctx, "ReduceSum", ctx.emit("Mul", [d, d]), axes, keepdim)
    denom = max(count - correction, 0)
    var_out = None if ctx.rec.op is R.Std else ctx.out()
    var = ctx.emit("Div", [ss, ctx.scalar(denom, dt)], var_out)
    if ctx.rec.op is R.Std:
        ctx.emit("Sqrt", [var], ctx.out())


@converts(R.Amax)
def _amax(ctx: OpContext) -> None:
    op_type = "ReduceMax" if ctx.params["largest"] else "ReduceMin"
    _reduce(ctx, op_type, ctx.input(0), ctx.params["axes"], ctx.params["keepdim"], ctx.out())


@converts(R.LogSumExp)
def _logsumexp(ctx: OpContext) -> None:
    _reduce(ctx, "ReduceLogSumExp", ctx.input(0), ctx.params["axes"], ctx.params["keepdim"], ctx.out())


@converts(R.Softmax, R.LogSoftmax)
def _softmax(ctx: OpContext) -> None:
    dim = ctx.params["dim"]
    ctx.emit("Softmax" if ctx.rec.op is R.Softmax else "LogSoftmax", [ctx.input(0)], ctx.out(), axis=int(dim))


@converts(R.Gather, R.SelectAlong)
def _gather(ctx: OpContext) -> None:
    x, dim = ctx.input(0), int(ctx.params["dim"])
    (xa, xb), (ia, ib) = ctx.shapes(0), ctx.shapes(1)
    axes = [i for i in range(len(xa)) if i != dim and (ia[i] != xa[i] or ib[i] != xb[i])]
    if axes:  # torch lets the index be smaller than the input in the other dims: slice the input first
        if any(ia[i] != ib[i] or xa[i] != xb[i] for i in axes):
            raise ctx.fail("gather with an index smaller than the input along a varying dim")
        x = ctx.emit("Slice", [x, ctx.ints([0] * len(axes)), ctx.ints([ia[a] for a in axes]), ctx.ints(axes)])
    ctx.emit("GatherElements", [x, ctx.input(1)], ctx.out(), axis=dim)


# ----------------------------------------------------------------------------- dense
@converts(L.Linear)
def _linear(ctx: OpContext) -> None:
    x, w = ctx.input(0), ctx.input(1)
    b = ctx.input(2) if ctx.n_inputs > 2 else ""
    if len(ctx.shape(0)) == 2:
        ctx.emit("Gemm", [x, w] + ([b] if b else []), ctx.out(), transB=1)
        return
    weight = ctx.value(1)
    wt = ctx.const(weight.T, "weight_t") if weight is not None else ctx.emit("Transpose", [w], perm=[1, 0])
    y = ctx.emit("MatMul", [x, wt], None if b else ctx.out())
    if b:
        ctx.emit("Add", [y, b], ctx.out())
