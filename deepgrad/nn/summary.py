"""``summary(model, input_shape)``: per-layer output shapes, parameter counts and, for conv and
pool layers, the output-size arithmetic floor((n + 2p - d(k - 1) - 1) / s) + 1 worked out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..autograd import no_grad
from ..creation import zeros
from ..tensor import Tensor
from .conv import ConvTranspose2d, _ConvNd
from .module import Module
from .pool import AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d, SumPool1d, SumPool2d


@dataclass
class LayerRow:
    name: str
    kind: str
    output_shape: tuple
    trainable: int
    frozen: int
    arithmetic: str = ""


@dataclass
class ModelSummary:
    """The table :func:`summary` builds; ``str()`` renders it."""

    model_name: str
    input_shape: tuple
    rows: list = field(default_factory=list)
    trainable_params: int = 0
    frozen_params: int = 0

    @property
    def total_params(self) -> int:
        return self.trainable_params + self.frozen_params

    def __str__(self) -> str:
        headers = ("Layer", "Type", "Output shape", "Params", "Frozen", "Output size arithmetic")
        table = [headers] + [
            (r.name, r.kind, str(r.output_shape), f"{r.trainable:,}", f"{r.frozen:,}", r.arithmetic)
            for r in self.rows
        ]
        widths = [max(len(row[i]) for row in table) for i in range(len(headers))]

        def line(row):
            return "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()

        rule = "-" * len(line(headers))
        out = [f"{self.model_name} on input {self.input_shape}", rule, line(headers), rule]
        out += [line(r) for r in table[1:]]
        out += [
            rule,
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Frozen params: {self.frozen_params:,}",
        ]
        return "\n".join(out)

    __repr__ = __str__


def _pairs(value, n):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _arithmetic(module: Module, in_shape: tuple, out_shape: tuple) -> str:
    """The output-size formula with this layer's numbers, one term per spatial dim."""
    if isinstance(module, _ConvNd):
        n = module._dims
        k, s, d = module.kernel_size, module.stride, module.dilation
        if isinstance(module.padding, str):
            return f"padding={module.padding!r}: " + ", ".join(
                str(o) for o in out_shape[-n:]
            )
        p = module.padding
        if isinstance(module, ConvTranspose2d):
            op = module.output_padding
            return ", ".join(
                f"({i}-1)*{s_}-2*{p_}+{d_}*({k_}-1)+{o_}+1 = {o}"
                for i, s_, p_, d_, k_, o_, o in zip(in_shape[-n:], s, p, d, k, op, out_shape[-n:])
            )
        return ", ".join(
            f"floor(({i}+2*{p_}-{d_}*({k_}-1)-1)/{s_})+1 = {o}"
            for i, p_, d_, k_, s_, o in zip(in_shape[-n:], p, d, k, s, out_shape[-n:])
        )
    if isinstance(module, (MaxPool2d, AvgPool2d, SumPool2d, MaxPool1d, AvgPool1d, SumPool1d)):
        n = module._dims
        k, s, p = _pairs(module.kernel_size, n), _pairs(module.stride, n), _pairs(module.padding, n)
        d = _pairs(getattr(module, "dilation", 1), n)
        rnd = "ceil" if module.ceil_mode else "floor"
        return ", ".join(
            f"{rnd}(({i}+2*{p_}-{d_}*({k_}-1)-1)/{s_})+1 = {o}"
            for i, p_, d_, k_, s_, o in zip(in_shape[-n:], p, d, k, s, out_shape[-n:])
        )
    return ""


def summary(model: Module, input_shape: tuple, batch_size: int = 1, dtype=None, device=None) -> ModelSummary:
    """Run one forward pass on zeros of shape ``(batch_size, *input_shape)`` and tabulate
    every leaf layer: output shape, trainable / frozen parameter counts, size arithmetic.

    >>> nn = deepgrad.nn
    >>> print(summary(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 10)), (1, 8, 8)))
    Sequential on input (1, 1, 8, 8)
    --------------------------------------------------------------------
    Layer  Type     Output shape  Params  Frozen  Output size arithmetic
    --------------------------------------------------------------------
    0      Conv2d   (1, 4, 6, 6)  40      0       floor((8+2*0-1*(3-1)-1)/1)+1 = 6, floor((8+2*0-1*(3-1)-1)/1)+1 = 6
    1      ReLU     (1, 4, 6, 6)  0       0
    2      Flatten  (1, 144)      0       0
    3      Linear   (1, 10)       1,450   0
    --------------------------------------------------------------------
    Total params: 1,490
    Trainable params: 1,490
    Frozen params: 0
    """
    input_shape = tuple(input_shape)
    result = ModelSummary(type(model).__name__, (batch_size,) + input_shape)
    handles = []

    def record(name):
        def hook(module, inputs, output):
            out = output[0] if isinstance(output, tuple) else output
            x = inputs[0] if inputs and isinstance(inputs[0], Tensor) else None
            trainable = sum(p.numel() for p in module.parameters(recurse=False) if p.requires_grad)
            frozen = sum(p.numel() for p in module.parameters(recurse=False) if not p.requires_grad)
            in_shape = tuple(x.shape) if x is not None else ()
            out_shape = tuple(out.shape) if isinstance(out, Tensor) else ()
            result.rows.append(
                LayerRow(name, type(module).__name__, out_shape, trainable, frozen,
                         _arithmetic(module, in_shape, out_shape) if in_shape else "")
            )

        return hook

    for name, module in model.named_modules():
        is_leaf = not any(True for _ in module.children())
        own_params = any(True for _ in module.parameters(recurse=False))
        if module is not model and (is_leaf or own_params) or (module is model and is_leaf):
            handles.append(module.register_forward_hook(record(name or type(module).__name__)))
    was_training = [(m, m.training) for m in model.modules()]
    model.eval()  # batch norm on a batch of one needs running statistics
    try:
        with no_grad():
            model(zeros(*result.input_shape, dtype=dtype, device=device))
    finally:
        for h in handles:
            h.remove()
        for m, mode in was_training:
            m.__dict__["training"] = mode
    for p in model.parameters():
        if p.requires_grad:
            result.trainable_params += p.numel()
        else:
            result.frozen_params += p.numel()
    return result

