"""Recurrent layers: RNN, LSTM, GRU and their single-step cells, with torch's parameter names,
shapes, gate order and initialisation, so a ``state_dict`` moves between the two libraries.

Each layer-direction runs as one fused node over the whole sequence (see ops/recurrent.py and kernels/recurrent.py).

>>> lstm = LSTM(10, 20, num_layers=2, batch_first=True)
>>> out, (h_n, c_n) = lstm(deepgrad.randn(3, 5, 10))     # out: (3, 5, 20), h_n: (2, 3, 20)
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..backend import module_for_device
from ..creation import empty
from ..functional import cat, stack
from ..ops import recurrent as R
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module, Parameter
from .rnn_utils import PackedSequence

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _shape(t) -> tuple:
    return tuple(t.shape)


class RNNBase(Module):
    """Shared machinery of :class:`RNN`, :class:`LSTM` and :class:`GRU`."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device=None, dtype=None):
        super().__init__()
        if mode not in _GATES:
            raise ValueError(f"Unrecognized RNN mode: {mode!r}")
        if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
            raise ValueError(
                "dropout should be a number in range [0, 1] representing the probability of an element being "
                f"zeroed, got {dropout!r}"
            )
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero dropout expects "
                f"num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                stacklevel=2,
            )
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
        if hidden_size <= 0:
            raise ValueError(f"hidden_size must be greater than zero, got {hidden_size}")
        if num_layers <= 0:
            raise ValueError(f"num_layers must be greater than zero, got {num_layers}")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError(f"proj_size has to be smaller than hidden_size, got {proj_size} >= {hidden_size}")
        self.mode, self.input_size, self.hidden_size, self.num_layers = mode, input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size = bidirectional, proj_size
        directions = 2 if bidirectional else 1
        gate_size = _GATES[mode] * hidden_size
        real_hidden = proj_size if proj_size > 0 else hidden_size
        self._flat_weights_names = []
        self._layer_weights = []  # per (layer, direction): the names of w_ih, w_hh, b_ih, b_hh, w_hr
        for layer in range(num_layers):
            for direction in range(directions):
                layer_input = input_size if layer == 0 else real_hidden * directions
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes = {"weight_ih": (gate_size, layer_input), "weight_hh": (gate_size, real_hidden)}
                if bias:
                    shapes.update({"bias_ih": (gate_size,), "bias_hh": (gate_size,)})
                if proj_size > 0:
                    shapes["weight_hr"] = (proj_size, hidden_size)
                names = {}
                for kind, shape in shapes.items():
                    setattr(self, kind + suffix, Parameter(empty(*shape, dtype=dtype, device=device)))
                    names[kind] = kind + suffix
                    self._flat_weights_names.append(kind + suffix)
                self._layer_weights.append(names)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight and bias from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as torch."""
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def flatten_parameters(self) -> None:
        """A no-op, accepted so torch scripts run unchanged. In torch it packs the weights into the one
        contiguous buffer cuDNN wants (and warns when they are not); deepgrad's kernels read each weight
        where it is, so there is nothing to pack.

        >>> LSTM(4, 8).flatten_parameters()
        """

    @property
    def all_weights(self) -> list[list[Parameter]]:
        return [[getattr(self, n) for n in names.values()] for names in self._layer_weights]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    def _name(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    # ------------------------------------------------------------------ forward
    def _states(self, hx, batch: int, is_batched: bool, input_shape: tuple, sorted_indices):
        """Validated initial states (h0[, c0]) as 3-D tensors in the sorted batch order, or None."""
        if hx is None:
            return None
        lstm = self.mode == "LSTM"
        directions = 2 if self.bidirectional else 1
        real_hidden = self.proj_size if self.proj_size > 0 else self.hidden_size
        if lstm and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"{self._name()}: hx must be a tuple (h0, c0), got {type(hx).__name__}")
        states = list(hx) if lstm else [hx]
        names = ("h0", "c0") if lstm else ("h0",)
        widths = (real_hidden, self.hidden_size)
        out = []
        for name, t, width in zip(names, states, widths):
            if not isinstance(t, Tensor):
                raise TypeError(f"{self._name()}: {name} must be a Tensor, got {type(t).__name__}")
            want_dims = 3 if is_batched else 2
            if t.ndim != want_dims:
                kind = "batched 3-D" if is_batched else "unbatched 2-D"
                raise RuntimeError(
                    f"{self._name()}: for {kind} input of shape {input_shape}, {name} should be {want_dims}-D, "
                    f"but got {name} of shape {_shape(t)}"
                )
            if not is_batched:
                t = t.unsqueeze(1)
            expected = (self.num_layers * directions, batch, width)
            if _shape(t) != expected:
                shown = expected if is_batched else (expected[0], expected[2])
                raise RuntimeError(
                    f"{self._name()}: expected {name} of shape {shown} for input of shape {input_shape}, "
                    f"got {_shape(t) if is_batched else _shape(t)[::2]}"
                )
            if sorted_indices is not None:
                t = t[:, _device_index(sorted_indices, t)]
            out.append(t)
        return out

    def forward(self, input, hx=None):
        """``(output, h_n)`` for RNN/GRU, ``(output, (h_n, c_n))`` for LSTM, as torch."""
        name = self._name()
        packed = isinstance(input, PackedSequence)
        if packed:
            x, batch_sizes, sorted_indices, unsorted_indices = input
            sizes = [int(b) for b in batch_sizes.tolist()]
            if x.ndim != 2:
                raise RuntimeError(f"{name}: packed input data must be 2-D, got shape {_shape(x)}")
            batch, is_batched, shown_shape = sizes[0], True, _shape(x)
        else:
            if not isinstance(input, Tensor):
                raise TypeError(f"{name}: input must be a Tensor or PackedSequence, got {type(input).__name__}")
            if input.ndim not in (2, 3):
                raise ValueError(f"{name}: expected input to be 2-D or 3-D, got shape {_shape(input)}")
            sizes = sorted_indices = unsorted_indices = None
            is_batched, shown_shape = input.ndim == 3, _shape(input)
            x = input if is_batched else input.unsqueeze(1)  # unbatched (T, I) is time-major
            if is_batched and self.batch_first:
                x = x.transpose(0, 1)
            batch = x.shape[1]
        if x.shape[-1] != self.input_size:
            raise RuntimeError(
                f"{name}: input.size(-1) must be equal to input_size. Expected {self.input_size}, got "
                f"{x.shape[-1]} (input shape {shown_shape})"
            )
        first = getattr(self, self._layer_weights[0]["weight_ih"])
        if x.dtype != first.dtype:
            raise ValueError(  # torch's RNN modules raise a ValueError here (their cells a RuntimeError)
                f"{name}: input dtype ({x.dtype}) does not match weight dtype ({first.dtype}). Convert input: "
                f"input.to({first.dtype}), or convert model: model.to({x.dtype})"
            )
        if x.device != first.device:
            raise RuntimeError(f"{name}: input is on {x.device} but the parameters are on {first.device}")
        states = self._states(hx, batch, is_batched, shown_shape, sorted_indices)
        output, h_n, c_n = self._run(x, states, sizes)
        if packed:
            output = PackedSequence(output, batch_sizes, sorted_indices, unsorted_indices)
            if unsorted_indices is not None:
                h_n = h_n[:, _device_index(unsorted_indices, h_n)]
                c_n = c_n[:, _device_index(unsorted_indices, c_n)] if c_n is not None else None
        elif not is_batched:
            output, h_n = output.squeeze(1), h_n.squeeze(1)
            c_n = c_n.squeeze(1) if c_n is not None else None
        elif self.batch_first:
            output = output.transpose(0, 1)
        return (output, (h_n, c_n)) if self.mode == "LSTM" else (output, h_n)

    def _run(self, x: Tensor, states, sizes):
        """All layers and directions: the fused op per layer-direction, dropout between layers."""
        directions = 2 if self.bidirectional else 1
        h_list, c_list = [], []
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                k = layer * directions + direction
                w = {kind: getattr(self, n) for kind, n in self._layer_weights[k].items()}
                h0 = states[0][k] if states is not None else None
                args = (w["weight_ih"], w["weight_hh"], w.get("bias_ih"), w.get("bias_hh"))
                if self.mode == "LSTM":
                    hx = (h0, states[1][k]) if states is not None else None
                    y, h, c = R.lstm_layer(layer_input, hx, *args, weight_hr=w.get("weight_hr"),
                                           reverse=direction == 1, batch_sizes=sizes)
                    c_list.append(c)
                elif self.mode == "GRU":
                    y, h = R.gru_layer(layer_input, h0, *args, reverse=direction == 1, batch_sizes=sizes)
                else:
                    y, h = R.rnn_layer(layer_input, h0, *args, nonlinearity="relu" if self.mode == "RNN_RELU"
                                       else "tanh", reverse=direction == 1, batch_sizes=sizes)
                outputs.append(y)
                h_list.append(h)
            layer_input = outputs[0] if directions == 1 else cat(outputs, dim=-1)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout)
        return layer_input, stack(h_list, 0), (stack(c_list, 0) if c_list else None)


def _device_index(indices, like: Tensor):
    index = np.asarray(indices.tolist() if isinstance(indices, Tensor) else indices, dtype=np.int64)
    return module_for_device(like.device).asarray(index)


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (or relu).

    >>> out, h_n = RNN(10, 20, num_layers=2)(deepgrad.randn(5, 3, 10))   # (5, 3, 20), (2, 3, 20)
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size, num_layers,
                         bias, batch_first, dropout, bidirectional, 0, device, dtype)
        self.nonlinearity = nonlinearity

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s + (f", nonlinearity={self.nonlinearity!r}" if self.nonlinearity != "tanh" else "")


class LSTM(RNNBase):
    """Long short-term memory, gates (i, f, g, o); ``proj_size > 0`` adds torch's projection.

    >>> out, (h_n, c_n) = LSTM(10, 20)(deepgrad.randn(5, 3, 10))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, device, dtype)


class GRU(RNNBase):
    """Gated recurrent unit, gates (r, z, n) with torch's ``n = tanh(W_in x + b_in + r*(W_hn h + b_hn))``.

    >>> out, h_n = GRU(10, 20, bidirectional=True)(deepgrad.randn(5, 3, 10))  # (5, 3, 40), (2, 3, 20)
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, 0,
                         device, dtype)


# ----------------------------------------------------------------------------- cells
class RNNCellBase(Module):
    """Shared machinery of the single-step cells: weight_ih, weight_hh, bias_ih, bias_hh."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int, device=None, dtype=None):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.weight_ih = Parameter(empty(num_chunks * hidden_size, input_size, dtype=dtype, device=device))
        self.weight_hh = Parameter(empty(num_chunks * hidden_size, hidden_size, dtype=dtype, device=device))
        if bias:
            self.bias_ih = Parameter(empty(num_chunks * hidden_size, dtype=dtype, device=device))
            self.bias_hh = Parameter(empty(num_chunks * hidden_size, dtype=dtype, device=device))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        return s

    def _prepare(self, input: Tensor, states: list, names: list[str]):
        """(2-D input, 2-D states or None, is_batched), validated with errors naming both shapes."""
        name = f"{type(self).__name__}({self.extra_repr()})"
        if not isinstance(input, Tensor) or input.ndim not in (1, 2):
            got = _shape(input) if isinstance(input, Tensor) else type(input).__name__
            raise ValueError(f"{name}: expected input to be 1-D or 2-D, got {got}")
        is_batched = input.ndim == 2
        x = input if is_batched else input.unsqueeze(0)
        if x.shape[1] != self.input_size:
            raise RuntimeError(
                f"{name}: input has inconsistent input_size: got {x.shape[1]}, expected {self.input_size} "
                f"(input shape {_shape(input)})"
            )
        if x.dtype != self.weight_ih.dtype:
            raise RuntimeError(
                f"{name}: input has dtype {x.dtype} but the parameters have dtype {self.weight_ih.dtype}"
            )
        out = []
        for state_name, t in zip(names, states):
            if t is None:
                out.append(None)
                continue
            if t.ndim != input.ndim:
                raise RuntimeError(
                    f"{name}: {state_name} of shape {_shape(t)} must have as many dims as the input of shape "
                    f"{_shape(input)}"
                )
            t = t if is_batched else t.unsqueeze(0)
            if _shape(t) != (x.shape[0], self.hidden_size):
                raise RuntimeError(
                    f"{name}: expected {state_name} of shape {(x.shape[0], self.hidden_size)[2 - input.ndim:]} "
                    f"for input of shape {_shape(input)}, got {_shape(t)[2 - input.ndim:]}"
                )
            out.append(t)
        return x, out, is_batched


class RNNCell(RNNCellBase):
    """One Elman step: ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or relu)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}")
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, (h,), batched = self._prepare(input, [hx], ["hx"])
        cell = R.rnn_tanh_cell if self.nonlinearity == "tanh" else R.rnn_relu_cell
        out = cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return out if batched else out.squeeze(0)


class LSTMCell(RNNCellBase):
    """One LSTM step; ``hx = (h, c)`` (zeros when omitted); returns ``(h', c')``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input: Tensor, hx: tuple | None = None) -> tuple[Tensor, Tensor]:
        if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"LSTMCell: hx must be a tuple (h, c), got {type(hx).__name__}")
        x, (h, c), batched = self._prepare(input, list(hx) if hx is not None else [None, None], ["h", "c"])
        states = None if h is None and c is None else (h, c)
        h_new, c_new = R.lstm_cell(x, states, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return (h_new, c_new) if batched else (h_new.squeeze(0), c_new.squeeze(0))


class GRUCell(RNNCellBase):
    """One GRU step: returns ``h'``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, (h,), batched = self._prepare(input, [hx], ["hx"])
        out = R.gru_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return out if batched else out.squeeze(0)
