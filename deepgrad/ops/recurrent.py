"""Recurrent layers as functions: one fused node per layer-direction for a whole sequence, and the
single-step cells.

Fused because a step-by-step graph costs a dozen nodes per time step: each node runs the whole time
loop of one layer-direction, forward and backward through time, in :mod:`deepgrad.kernels.recurrent`.

Inputs are time-major: ``(T, B, I)`` for a padded batch, or the ``(N, I)`` data of a packed
sequence together with its ``batch_sizes`` (number of active sequences at each step, sorted
lengths, as torch's PackedSequence). Weights have torch's shapes and gate order.

>>> x = deepgrad.randn(5, 3, 10)                       # (T, B, I)
>>> w_ih, w_hh = deepgrad.randn(80, 10), deepgrad.randn(80, 20)
>>> y, h_n, c_n = lstm_layer(x, None, w_ih, w_hh)      # y: (5, 3, 20), h_n, c_n: (3, 20)
"""

from __future__ import annotations

from ..autograd import OUT, Function
from ..autograd.core import state as autograd_state
from ..kernels import recurrent as K
from ..tensor import Tensor


# ----------------------------------------------------------------------------- fused sequence nodes
class _Recurrence(Function):
    """One fused layer-direction: outputs ``(output, h_n[, c_n])`` and gets one gradient per output
    (``None`` for an output nothing used) — a multi-output op of the engine."""

    multi_output = True

    def _needs(self) -> tuple:
        """One bool per input: does it need a gradient."""
        return tuple(n is not None for n in self.next)

    def _input_grad(self, dx2):
        return None if dx2 is None else dx2.reshape(self.x_shape)


class RNNSequence(_Recurrence):
    """h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act = tanh or relu."""

    # torch's RNN saves its inputs, not its output (changing the output in place is harmless there), so
    # the output handed out is a copy of the buffer backward reads.
    saved = ((0, 1, 2, 3, 4, 5),)

    def forward(self, x, h0, w_ih, w_hh, b_ih, b_hh, steps, batch, reverse, packed, relu):
        self.x_shape = x.shape
        out, h_n, self.state = K.rnn_forward(x.reshape(-1, x.shape[-1]), h0, w_ih, w_hh, b_ih, b_hh, steps, batch,
                                             reverse, packed, relu)
        return out.reshape(x.shape[:-1] + (w_hh.shape[0],)).copy(), h_n

    def backward(self, g, g_h):
        dx2, *grads = K.rnn_backward(g, g_h, self.state, self._needs())
        return (self._input_grad(dx2), *grads)


class LSTMSequence(_Recurrence):
    """torch's LSTM: gates (i, f, g, o); c_t = f*c + i*g; h_t = o*tanh(c_t) [@ W_hr^T]."""

    saved = ((0, 1, 2, 3, 4, 5, 6, 7, OUT),)  # torch's LSTM (oneDNN) saves its inputs and its output

    def forward(self, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, steps, batch, reverse, packed):
        self.x_shape = x.shape
        if not autograd_state.grad_enabled:  # no_grad / inference_mode: no backward will come, keep nothing
            out, h_n, c_n = K.lstm_infer(x.reshape(-1, x.shape[-1]), h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, steps,
                                         batch, reverse, packed)
            return out.reshape(x.shape[:-1] + (w_hh.shape[1],)), h_n, c_n
        out, h_n, c_n, self.state = K.lstm_forward(x.reshape(-1, x.shape[-1]), h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr,
                                                   steps, batch, reverse, packed)
        return out.reshape(x.shape[:-1] + (w_hh.shape[1],)), h_n, c_n

    def backward(self, g, g_h, g_c):
        dx2, *grads = K.lstm_backward(g, g_h, g_c, self.state, self._needs())
        return (self._input_grad(dx2), *grads)


class GRUSequence(_Recurrence):
    """torch's GRU: gates (r, z, n); n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); h_t = (1 - z) * n + z * h."""

    saved = ((0, 1, 2, 3, 4, 5),)  # inputs only, as torch's GRU: the output handed out is a copy

    def forward(self, x, h0, w_ih, w_hh, b_ih, b_hh, steps, batch, reverse, packed):
        self.x_shape = x.shape
        out, h_n, self.state = K.gru_forward(x.reshape(-1, x.shape[-1]), h0, w_ih, w_hh, b_ih, b_hh, steps, batch,
                                             reverse, packed)
        return out.reshape(x.shape[:-1] + (w_hh.shape[1],)).copy(), h_n

    def backward(self, g, g_h):
        dx2, *grads = K.gru_backward(g, g_h, self.state, self._needs())
        return (self._input_grad(dx2), *grads)


# ----------------------------------------------------------------------------- layer functions


def _schedule(op: str, x: Tensor, batch_sizes, reverse: bool) -> tuple[list, int, bool]:
    """``(steps, batch, packed)``: (row offset, active batch) per step in processing order."""
    if batch_sizes is None:
        if x.ndim != 3:
            raise RuntimeError(f"{op}: expected a (T, B, features) input, got shape {tuple(x.shape)}")
        seq_len, batch = x.shape[0], x.shape[1]
        if seq_len == 0:
            raise RuntimeError(f"{op}: expected sequence length to be larger than 0, got input {tuple(x.shape)}")
        steps = [(t * batch, batch) for t in range(seq_len)]
        packed = False
    else:
        sizes = [int(b) for b in (batch_sizes.tolist() if hasattr(batch_sizes, "tolist") else batch_sizes)]
        if x.ndim != 2 or not sizes or sum(sizes) != x.shape[0] or min(sizes) <= 0 or any(
            a < b for a, b in zip(sizes, sizes[1:])
        ):
            raise RuntimeError(
                f"{op}: packed data of shape {tuple(x.shape)} does not fit batch_sizes {sizes} "
                f"(expected 2-D data with sum(batch_sizes) rows and positive, non-increasing sizes)"
            )
        steps, offset = [], 0
        for b in sizes:
            steps.append((offset, b))
            offset += b
        batch, packed = sizes[0], True
    if reverse:
        steps.reverse()
    return steps, batch, packed


def _check(op: str, x: Tensor, weights: dict, gates: int, states: dict, batch: int) -> None:
    """Shapes, dtypes and devices of the operands, with an error naming the offender."""
    w_ih, w_hh = weights["weight_ih"], weights["weight_hh"]
    hidden = w_hh.shape[0] // gates
    if w_ih.ndim != 2 or w_hh.ndim != 2 or w_ih.shape[0] != gates * hidden or w_hh.shape[0] != gates * hidden:
        raise RuntimeError(
            f"{op}: weight_ih {tuple(w_ih.shape)} and weight_hh {tuple(w_hh.shape)} must both have "
            f"{gates} * hidden_size rows"
        )
    if x.shape[-1] != w_ih.shape[1]:
        raise RuntimeError(
            f"{op}: input of shape {tuple(x.shape)} has {x.shape[-1]} features but weight_ih of shape "
            f"{tuple(w_ih.shape)} expects {w_ih.shape[1]}"
        )
    for name, (t, width) in states.items():
        if t is not None and tuple(t.shape) != (batch, width):
            raise RuntimeError(f"{op}: expected {name} of shape {(batch, width)}, got {tuple(t.shape)}")
    for name, t in list(weights.items()) + [(k, v[0]) for k, v in states.items()]:
        if t is None:
            continue
        if t.array.dtype != x.array.dtype:
            raise RuntimeError(f"{op}: input has dtype {x.dtype} but {name} has dtype {t.dtype}; they must match")
        if type(t.array) is not type(x.array):
            raise RuntimeError(f"{op}: input is on {x.device} but {name} is on {t.device}")
    if x.array.dtype.kind != "f":
        raise RuntimeError(f"{op}: expected a floating-point input, got {x.dtype}")


def _biases(op: str, b_ih, b_hh) -> None:
    if (b_ih is None) != (b_hh is None):
        raise RuntimeError(f"{op}: pass both bias_ih and bias_hh, or neither")


def rnn_layer(input: Tensor, hx: Tensor | None, weight_ih: Tensor, weight_hh: Tensor,
              bias_ih: Tensor | None = None, bias_hh: Tensor | None = None, nonlinearity: str = "tanh",
              reverse: bool = False, batch_sizes=None) -> tuple[Tensor, Tensor]:
    """One Elman RNN layer-direction over a whole sequence: returns ``(output, h_n)``."""
    op = f"rnn_layer(nonlinearity={nonlinearity!r})"
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"rnn_layer: unknown nonlinearity {nonlinearity!r}; select from 'tanh' or 'relu'")
    _biases(op, bias_ih, bias_hh)
    steps, batch, packed = _schedule(op, input, batch_sizes, reverse)
    hidden = weight_hh.shape[0]
    _check(op, input, {"weight_ih": weight_ih, "weight_hh": weight_hh, "bias_ih": bias_ih, "bias_hh": bias_hh},
           1, {"h0": (hx, hidden)}, batch)
    return RNNSequence.apply(input, hx, weight_ih, weight_hh, bias_ih, bias_hh, steps=steps, batch=batch,
                             reverse=reverse, packed=packed, relu=nonlinearity == "relu")


def lstm_layer(input: Tensor, hx: tuple | None, weight_ih: Tensor, weight_hh: Tensor,
               bias_ih: Tensor | None = None, bias_hh: Tensor | None = None, weight_hr: Tensor | None = None,
               reverse: bool = False, batch_sizes=None) -> tuple[Tensor, Tensor, Tensor]:
    """One LSTM layer-direction over a whole sequence: returns ``(output, h_n, c_n)``.

    ``hx`` is ``(h0, c0)`` or None (zeros); ``weight_hr`` (proj_size, hidden) enables projections.
    """
    op = "lstm_layer"
    _biases(op, bias_ih, bias_hh)
    steps, batch, packed = _schedule(op, input, batch_sizes, reverse)
    hidden = weight_hh.shape[0] // 4
    width = hidden if weight_hr is None else weight_hr.shape[0]
    if weight_hr is not None and (weight_hr.ndim != 2 or weight_hr.shape[1] != hidden):
        raise RuntimeError(f"{op}: weight_hr of shape {tuple(weight_hr.shape)} must be (proj_size, {hidden})")
    if weight_hh.ndim == 2 and weight_hh.shape[1] != width:
        raise RuntimeError(f"{op}: weight_hh of shape {tuple(weight_hh.shape)} must have {width} columns")
    h0, c0 = (None, None) if hx is None else hx
    _check(op, input, {"weight_ih": weight_ih, "weight_hh": weight_hh, "bias_ih": bias_ih, "bias_hh": bias_hh,
                       "weight_hr": weight_hr}, 4, {"h0": (h0, width), "c0": (c0, hidden)}, batch)
    return LSTMSequence.apply(input, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr, steps=steps,
                              batch=batch, reverse=reverse, packed=packed)


def gru_layer(input: Tensor, hx: Tensor | None, weight_ih: Tensor, weight_hh: Tensor,
              bias_ih: Tensor | None = None, bias_hh: Tensor | None = None, reverse: bool = False,
              batch_sizes=None) -> tuple[Tensor, Tensor]:
    """One GRU layer-direction over a whole sequence: returns ``(output, h_n)``."""
    op = "gru_layer"
    _biases(op, bias_ih, bias_hh)
    steps, batch, packed = _schedule(op, input, batch_sizes, reverse)
    _check(op, input, {"weight_ih": weight_ih, "weight_hh": weight_hh, "bias_ih": bias_ih, "bias_hh": bias_hh},
           3, {"h0": (hx, weight_hh.shape[0] // 3)}, batch)
    return GRUSequence.apply(input, hx, weight_ih, weight_hh, bias_ih, bias_hh, steps=steps, batch=batch,
                             reverse=reverse, packed=packed)


# ----------------------------------------------------------------------------- cells
# A cell is the fused sequence kernel run for one step on a (B, I) input (one "packed" step).
def _cell_input(op: str, input: Tensor) -> None:
    if input.ndim != 2:
        raise RuntimeError(f"{op}: expected a 2-D (batch, features) input, got shape {tuple(input.shape)}")


def rnn_tanh_cell(input: Tensor, hx: Tensor | None, weight_ih: Tensor, weight_hh: Tensor,
                  bias_ih: Tensor | None = None, bias_hh: Tensor | None = None) -> Tensor:
    """One step ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` for a (B, I) input."""
    _cell_input("rnn_tanh_cell", input)
    return rnn_layer(input, hx, weight_ih, weight_hh, bias_ih, bias_hh, "tanh", batch_sizes=[input.shape[0]])[0]


def rnn_relu_cell(input: Tensor, hx: Tensor | None, weight_ih: Tensor, weight_hh: Tensor,
                  bias_ih: Tensor | None = None, bias_hh: Tensor | None = None) -> Tensor:
    """One step ``h' = relu(x W_ih^T + b_ih + h W_hh^T + b_hh)`` for a (B, I) input."""
    _cell_input("rnn_relu_cell", input)
    return rnn_layer(input, hx, weight_ih, weight_hh, bias_ih, bias_hh, "relu", batch_sizes=[input.shape[0]])[0]


def lstm_cell(input: Tensor, hx: tuple | None, weight_ih: Tensor, weight_hh: Tensor,
              bias_ih: Tensor | None = None, bias_hh: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """One LSTM step for a (B, I) input: returns ``(h', c')``."""
    _cell_input("lstm_cell", input)
    y, _, c = lstm_layer(input, hx, weight_ih, weight_hh, bias_ih, bias_hh, batch_sizes=[input.shape[0]])
    return y, c


def gru_cell(input: Tensor, hx: Tensor | None, weight_ih: Tensor, weight_hh: Tensor,
             bias_ih: Tensor | None = None, bias_hh: Tensor | None = None) -> Tensor:
    """One GRU step for a (B, I) input: returns ``h'``."""
    _cell_input("gru_cell", input)
    return gru_layer(input, hx, weight_ih, weight_hh, bias_ih, bias_hh, batch_sizes=[input.shape[0]])[0]
