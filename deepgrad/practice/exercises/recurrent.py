"""Recurrent cells with PyTorch's layouts: RNN (tanh), LSTM forward and backward, GRU."""

from __future__ import annotations

import numpy as np

from ..exercise import Case, Exercise, Mistake, Mutant
from ._util import T, arr, autograd_reference, grad_case, normal, src


def _dims(rng):
    return int(rng.integers(1, 5)), int(rng.integers(1, 5)), int(rng.integers(1, 5))  # batch, input, hidden


def _cell_args(rng, gates: int, dtype=np.float64, cell_state: bool = False) -> dict:
    b, i, h = _dims(rng)
    args = {"x": normal(rng, (b, i), dtype), "h": normal(rng, (b, h), dtype, 0.5)}
    if cell_state:
        args["c"] = normal(rng, (b, h), dtype, 0.5)
    args.update({"w_ih": normal(rng, (gates * h, i), dtype, 0.6), "w_hh": normal(rng, (gates * h, h), dtype, 0.6),
                 "b_ih": normal(rng, (gates * h,), dtype, 0.3), "b_hh": normal(rng, (gates * h,), dtype, 0.3)})
    return args


def _tensors(a: dict) -> dict:
    return {k: (T(v) if isinstance(v, np.ndarray) else v) for k, v in a.items()}


def _sig(v):
    return 1 / (1 + np.exp(-v))


# ----------------------------------------------------------------------------- RNN
def _rnn(x, h, w_ih, w_hh, b_ih, b_hh, **_):
    from ...ops.recurrent import rnn_tanh_cell

    return rnn_tanh_cell(x, h, w_ih, w_hh, b_ih, b_hh)


rnn_cell = Exercise(
    id="rnn-cell", title="Elman RNN cell (tanh)", topic="rnns", difficulty=1,
    question="How does a recurrent neural network carry information across time steps?",
    statement=src("""
    Implement rnn_cell(x, h, w_ih, w_hh, b_ih, b_hh) -> h_new with NumPy, as torch.nn.RNNCell (tanh):
        h_new = tanh(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
    x (B, I), h (B, H), w_ih (H, I), w_hh (H, H), b_ih and b_hh (H,). Keep x's dtype.
    """),
    starter=src("""
    import numpy as np


    def rnn_cell(x, h, w_ih, w_hh, b_ih, b_hh):
        ...  # your code here
    """),
    hints=["PyTorch stores weights as (out_features, in_features): multiply by the transpose.",
           "Both biases are added."],
    solution=src("""
    import numpy as np


    def rnn_cell(x, h, w_ih, w_hh, b_ih, b_hh):
        return np.tanh(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
    """),
    outputs={"rnn_cell": ("h_new",)},
    cases=lambda rng: [Case("rnn_cell", _cell_args(rng, 1, np.float32 if i % 2 else np.float64)) for i in range(5)],
    reference=lambda c: arr(_rnn(**_tensors(c.args))),
    mistakes=[Mistake("the hidden-to-hidden bias b_hh is missing",
                      lambda c: np.tanh(c.args["x"] @ c.args["w_ih"].T + c.args["b_ih"]
                                        + c.args["h"] @ c.args["w_hh"].T))],
    mutants=[
        Mutant("no b_hh", (" + h @ w_hh.T + b_hh", " + h @ w_hh.T"), mentions="b_hh is missing"),
        Mutant("ReLU instead of tanh", ("np.tanh(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh)",
                                        "np.maximum(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh, 0)")),
        Mutant("the old state through w_ih", ("h @ w_hh.T", "h @ w_ih.T")),
    ],
)


# ----------------------------------------------------------------------------- LSTM
def _lstm(x, h, c, w_ih, w_hh, b_ih, b_hh, **_):
    from ...ops.recurrent import lstm_cell as dg_lstm_cell

    return dg_lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh)


def _lstm_np(a, order="ifgo"):
    gates = a["x"] @ a["w_ih"].T + a["b_ih"] + a["h"] @ a["w_hh"].T + a["b_hh"]
    parts = dict(zip(order, np.split(gates, 4, axis=1)))
    i, f, g, o = _sig(parts["i"]), _sig(parts["f"]), np.tanh(parts["g"]), _sig(parts["o"])
    c_new = f * a["c"] + i * g
    return o * np.tanh(c_new), c_new


_LSTM_EQUATIONS = """
        gates = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh        (B, 4H), split in this order:
        i = sigmoid(gates[:, 0:H])      input gate
        f = sigmoid(gates[:, H:2H])     forget gate
        g = tanh(gates[:, 2H:3H])       candidate
        o = sigmoid(gates[:, 3H:4H])    output gate
        c_new = f * c + i * g;  h_new = o * tanh(c_new)
"""

lstm_cell = Exercise(
    id="lstm-cell", title="LSTM cell forward (gate order i, f, g, o)", topic="rnns", difficulty=2,
    question="How does an LSTM avoid the vanishing gradients of a plain RNN?",
    statement=src("""
    Implement lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh) -> (h_new, c_new) with NumPy, as torch.nn.LSTMCell:
    x (B, I), h and c (B, H), w_ih (4H, I), w_hh (4H, H), b_ih and b_hh (4H,).
    """ + _LSTM_EQUATIONS + """
    Keep x's dtype.
    """),
    starter=src("""
    import numpy as np


    def lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh):
        ...  # your code here
    """),
    hints=["One matrix product per input gives all four gates at once: np.split(gates, 4, axis=1).",
           "PyTorch's order is input, forget, cell (g), output — not i, f, o, g as in some papers and Keras.",
           "The cell state is additive: c_new = f * c + i * g; the new hidden state squashes it: o * tanh(c_new)."],
    solution=src("""
    import numpy as np


    def _sigmoid(v):
        return 1 / (1 + np.exp(-v))


    def lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh):
        gates = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        i, f, g, o = np.split(gates, 4, axis=1)
        c_new = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        return _sigmoid(o) * np.tanh(c_new), c_new
    """),
    outputs={"lstm_cell": ("h_new", "c_new")},
    cases=lambda rng: [Case("lstm_cell", _cell_args(rng, 4, np.float32 if k % 2 else np.float64, True))
                       for k in range(5)],
    reference=lambda c: tuple(arr(t) for t in _lstm(**_tensors(c.args))),
    mistakes=[Mistake("your gates are in the order i, f, o, g: PyTorch's order is i, f, g, o",
                      lambda c: _lstm_np(c.args, "ifog")),
              Mistake("your gates are in the order i, g, f, o: PyTorch's order is i, f, g, o",
                      lambda c: _lstm_np(c.args, "igfo"))],
    mutants=[
        Mutant("gate order i, f, o, g", ("i, f, g, o = np.split", "i, f, o, g = np.split"), mentions="i, f, g, o"),
        Mutant("h from the old cell state", ("_sigmoid(o) * np.tanh(c_new), c_new", "_sigmoid(o) * np.tanh(c), c_new")),
        Mutant("input and forget gates swapped", ("_sigmoid(f) * c + _sigmoid(i) * np.tanh(g)",
                                                  "_sigmoid(i) * c + _sigmoid(f) * np.tanh(g)")),
    ],
)


def _lstm_bwd_fwd(**a):
    h_new, c_new = _lstm(**a)
    return h_new, c_new


def _lstm_bwd_cases(rng):
    cases = []
    for _ in range(4):
        args = _cell_args(rng, 4, np.float64, True)
        b, hid = args["h"].shape
        args["grad_h"] = normal(rng, (b, hid))
        args["grad_c"] = normal(rng, (b, hid))
        cases.append(grad_case("lstm_cell_backward", args, _lstm_bwd_fwd,
                               ("x", "h", "c", "w_ih", "w_hh", "b_ih", "b_hh"), ("grad_h", "grad_c")))
    return cases


def _lstm_bwd_no_gc(c):
    from ._util import _tensors as tens

    a = c.args
    ts = tens(a, c.fd.wrt)
    h_new, _ = _lstm(**ts)
    (h_new * T(a["grad_h"])).sum().backward()
    return tuple(arr(ts[n].grad) for n in c.fd.wrt)


lstm_backward = Exercise(
    id="lstm-cell-backward", title="LSTM cell backward", topic="rnns", difficulty=3,
    question="Why does the LSTM's cell state let gradients flow over many steps?",
    statement=src("""
    For (h_new, c_new) = lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh) (torch semantics, as in lstm-cell):
    """ + _LSTM_EQUATIONS + """
    implement lstm_cell_backward(x, h, c, w_ih, w_hh, b_ih, b_hh, grad_h, grad_c)
    -> (dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh) with NumPy, given grad_h = dL/dh_new and
    grad_c = dL/dc_new (the cell state also receives a gradient from the next step). float64;
    checked against float64 finite differences.
    """),
    starter=src("""
    import numpy as np


    def lstm_cell_backward(x, h, c, w_ih, w_hh, b_ih, b_hh, grad_h, grad_c):
        ...  # your code here
    """),
    hints=["Recompute the forward and keep i, f, g, o and tanh(c_new).",
           "dc_total = grad_c + grad_h * o * (1 - tanh(c_new)^2); do = grad_h * tanh(c_new); di = dc_total * g; "
           "df = dc_total * c; dg = dc_total * i; dc = dc_total * f.",
           "Through the nonlinearities: da_i = di * i * (1 - i) (same for f, o), da_g = dg * (1 - g^2). Stack "
           "dA = [da_i, da_f, da_g, da_o] (B, 4H): dw_ih = dA.T @ x, dw_hh = dA.T @ h, dx = dA @ w_ih, "
           "dh = dA @ w_hh, db_ih = db_hh = dA.sum(0)."],
    solution=src("""
    import numpy as np


    def _sigmoid(v):
        return 1 / (1 + np.exp(-v))


    def lstm_cell_backward(x, h, c, w_ih, w_hh, b_ih, b_hh, grad_h, grad_c):
        gates = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        ai, af, ag, ao = np.split(gates, 4, axis=1)
        i, f, g, o = _sigmoid(ai), _sigmoid(af), np.tanh(ag), _sigmoid(ao)
        c_new = f * c + i * g
        tc = np.tanh(c_new)
        dc_total = grad_c + grad_h * o * (1 - tc * tc)
        d_ao = grad_h * tc * o * (1 - o)
        d_ai = dc_total * g * i * (1 - i)
        d_af = dc_total * c * f * (1 - f)
        d_ag = dc_total * i * (1 - g * g)
        da = np.concatenate([d_ai, d_af, d_ag, d_ao], axis=1)
        db = da.sum(axis=0)
        return da @ w_ih, da @ w_hh, dc_total * f, da.T @ x, da.T @ h, db, db.copy()
    """),
    outputs={"lstm_cell_backward": ("dx", "dh", "dc", "dw_ih", "dw_hh", "db_ih", "db_hh")},
    cases=_lstm_bwd_cases, reference=autograd_reference,
    mistakes=[Mistake("you ignored grad_c: the cell state's own upstream gradient adds to "
                      "grad_h * o * (1 - tanh(c_new)^2)", _lstm_bwd_no_gc)],
    mutants=[
        Mutant("grad_c ignored", ("dc_total = grad_c + grad_h", "dc_total = grad_h"), mentions="ignored grad_c"),
        Mutant("dc without the forget gate", ("dc_total * f, da.T @ x", "dc_total, da.T @ x")),
        Mutant("h_t for h_{t-1} in dw_hh", ("da.T @ h,", "da.T @ (_sigmoid(ao) * tc),")),
    ],
)


# ----------------------------------------------------------------------------- GRU
def _gru(x, h, w_ih, w_hh, b_ih, b_hh, **_):
    from ...ops.recurrent import gru_cell as dg_gru_cell

    return dg_gru_cell(x, h, w_ih, w_hh, b_ih, b_hh)


def _gru_np(a, reset_after=True, swap_z=False, order="rzn"):
    gi = dict(zip(order, np.split(a["x"] @ a["w_ih"].T + a["b_ih"], 3, axis=1)))
    if reset_after:
        gh = dict(zip(order, np.split(a["h"] @ a["w_hh"].T + a["b_hh"], 3, axis=1)))
        r, z = _sig(gi["r"] + gh["r"]), _sig(gi["z"] + gh["z"])
        n = np.tanh(gi["n"] + r * gh["n"])
    else:
        whr, whz, whn = np.split(a["w_hh"], 3, axis=0)
        bhr, bhz, bhn = np.split(a["b_hh"], 3)
        r = _sig(gi["r"] + a["h"] @ whr.T + bhr)
        z = _sig(gi["z"] + a["h"] @ whz.T + bhz)
        n = np.tanh(gi["n"] + (r * a["h"]) @ whn.T + bhn)
    return z * n + (1 - z) * a["h"] if swap_z else (1 - z) * n + z * a["h"]


gru_cell = Exercise(
    id="gru-cell", title="GRU cell (gate order r, z, n)", topic="rnns", difficulty=2,
    question="How does a GRU simplify the LSTM?",
    statement=src("""
    Implement gru_cell(x, h, w_ih, w_hh, b_ih, b_hh) -> h_new with NumPy, as torch.nn.GRUCell:
    x (B, I), h (B, H), w_ih (3H, I), w_hh (3H, H), b_ih and b_hh (3H,), gates in the order r, z, n:
        gi = x @ w_ih.T + b_ih;   gh = h @ w_hh.T + b_hh     (both (B, 3H), split in thirds)
        r = sigmoid(gi_r + gh_r);  z = sigmoid(gi_z + gh_z)
        n = tanh(gi_n + r * gh_n)           (the reset gate multiplies gh_n, bias included)
        h_new = (1 - z) * n + z * h
    Keep x's dtype.
    """),
    starter=src("""
    import numpy as np


    def gru_cell(x, h, w_ih, w_hh, b_ih, b_hh):
        ...  # your code here
    """),
    hints=["Compute gi and gh once each and np.split them into 3 along axis 1.",
           "PyTorch applies r AFTER the hidden matmul and its bias: r * (h @ W_hn.T + b_hn), not (r * h) @ W_hn.T.",
           "z interpolates towards the OLD state: h_new = (1 - z) * n + z * h."],
    solution=src("""
    import numpy as np


    def _sigmoid(v):
        return 1 / (1 + np.exp(-v))


    def gru_cell(x, h, w_ih, w_hh, b_ih, b_hh):
        ir, iz, in_ = np.split(x @ w_ih.T + b_ih, 3, axis=1)
        hr, hz, hn = np.split(h @ w_hh.T + b_hh, 3, axis=1)
        r, z = _sigmoid(ir + hr), _sigmoid(iz + hz)
        n = np.tanh(in_ + r * hn)
        return (1 - z) * n + z * h
    """),
    outputs={"gru_cell": ("h_new",)},
    cases=lambda rng: [Case("gru_cell", _cell_args(rng, 3, np.float32 if k % 2 else np.float64)) for k in range(5)],
    reference=lambda c: arr(_gru(**_tensors(c.args))),
    mistakes=[Mistake("you applied the reset gate before the hidden matmul ((r * h) @ W_hn.T): PyTorch computes "
                      "r * (h @ W_hn.T + b_hn)", lambda c: _gru_np(c.args, reset_after=False)),
              Mistake("z and 1 - z are swapped: h_new = (1 - z) * n + z * h", lambda c: _gru_np(c.args, swap_z=True)),
              Mistake("your gates are in the order z, r, n: PyTorch's order is r, z, n",
                      lambda c: _gru_np(c.args, order="zrn"))],
    mutants=[
        Mutant("reset gate before the hidden matmul", source=src("""
            import numpy as np


            def _sigmoid(v):
                return 1 / (1 + np.exp(-v))


            def gru_cell(x, h, w_ih, w_hh, b_ih, b_hh):
                ir, iz, in_ = np.split(x @ w_ih.T + b_ih, 3, axis=1)
                whr, whz, whn = np.split(w_hh, 3)
                bhr, bhz, bhn = np.split(b_hh, 3)
                r, z = _sigmoid(ir + h @ whr.T + bhr), _sigmoid(iz + h @ whz.T + bhz)
                n = np.tanh(in_ + (r * h) @ whn.T + bhn)
                return (1 - z) * n + z * h
            """), mentions="reset gate before"),
        Mutant("z and 1 - z swapped", ("(1 - z) * n + z * h", "z * n + (1 - z) * h"), mentions="swapped"),
        Mutant("gate order z, r, n",
               ("r, z = _sigmoid(ir + hr), _sigmoid(iz + hz)", "z, r = _sigmoid(ir + hr), _sigmoid(iz + hz)"),
               mentions="order z, r, n"),
    ],
)

EXERCISES = [rnn_cell, lstm_cell, lstm_backward, gru_cell]
