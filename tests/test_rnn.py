"""RNN, LSTM, GRU against torch.nn: outputs, final states and every gradient (input, initial
states, each weight and bias) across layers, directions, layouts, initial states, packed
variable-length batches and projections; plus dropout, unbatched inputs and no-grad use."""

import itertools

import numpy as np
import pytest

import deepgrad as dg
from deepgrad.nn.recurrent import GRU, LSTM, RNN
from deepgrad.nn.rnn_utils import pack_padded_sequence, pad_packed_sequence

torch = pytest.importorskip("torch")

RTOL, ATOL = 1e-4, 1e-5
I, H, T, B = 3, 5, 6, 4  # noqa: E741  (input size, as in the docs)

MODES = {
    "rnn_tanh": (RNN, torch.nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (LSTM, torch.nn.LSTM, {}),
    "lstm_proj": (LSTM, torch.nn.LSTM, {"proj_size": 2}),
    "gru": (GRU, torch.nn.GRU, {}),
}
# (batch_first, initial state, packed lengths): each combination of layers x direction runs all four.
VARIANTS = [(False, False, None), (True, True, None), (False, True, [6, 2, 5, 3]), (True, False, [4, 6, 1, 6])]


def torch_state(module):
    return {k: torch.tensor(np.array(v.numpy())) for k, v in module.state_dict().items()}


def close(a, b, what):
    a = a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)
    b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=what)


def make_pair(mode, seed=0, **kwargs):
    dg_cls, t_cls, extra = MODES[mode]
    dg.manual_seed(seed)
    m = dg_cls(I, H, **extra, **kwargs)
    tm = t_cls(I, H, **extra, **kwargs)
    tm.load_state_dict(torch_state(m))
    return m, tm


def run(module, lib, x, lengths, states, batch_first):
    """Forward through ``module`` with the library's own packing utilities; padded output."""
    if lengths is not None:
        pack = pack_padded_sequence if lib is dg else torch.nn.utils.rnn.pack_padded_sequence
        unpack = pad_packed_sequence if lib is dg else torch.nn.utils.rnn.pad_packed_sequence
        out, hx = module(pack(x, lengths, batch_first=batch_first, enforce_sorted=False), states)
        out = unpack(out, batch_first=batch_first, total_length=T)[0]
    else:
        out, hx = module(x, states)
    return out, (hx if isinstance(hx, tuple) else (hx,))


CASES = [(m, L, bi, v) for m, L, bi, v in itertools.product(MODES, (1, 2, 3), (False, True), range(len(VARIANTS)))]


@pytest.mark.parametrize("mode,layers,bidirectional,variant", CASES)
def test_module_parity(mode, layers, bidirectional, variant):
    batch_first, with_state, lengths = VARIANTS[variant]
    m, tm = make_pair(mode, seed=layers, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first)
    rng = np.random.default_rng(variant)
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I)).astype(np.float32)
    dirs = 2 if bidirectional else 1
    width = m.proj_size or H
    state_shapes = [(layers * dirs, B, width)] + ([(layers * dirs, B, H)] if mode.startswith("lstm") else [])
    states = [rng.standard_normal(s).astype(np.float32) for s in state_shapes] if with_state else []

    xd, xt = dg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    sd = [dg.tensor(s, requires_grad=True) for s in states]
    st = [torch.tensor(s, requires_grad=True) for s in states]
    def pack_states(s):
        return (None if not s else (tuple(s) if len(s) == 2 else s[0]))
    out_d, hx_d = run(m, dg, xd, lengths, pack_states(sd), batch_first)
    out_t, hx_t = run(tm, torch, xt, lengths, pack_states(st), batch_first)
    close(out_d, out_t, "output")
    for k, (a, b) in enumerate(zip(hx_d, hx_t)):
        close(a, b, f"final state {k}")

    upstream = [rng.standard_normal(t.shape).astype(np.float32) for t in (out_t, *hx_t)]
    loss_d = sum((a * dg.tensor(g)).sum() for a, g in zip((out_d, *hx_d), upstream))
    loss_t = sum((a * torch.tensor(g)).sum() for a, g in zip((out_t, *hx_t), upstream))
    loss_d.backward()
    loss_t.backward()
    close(xd.grad, xt.grad, "input grad")
    for k, (a, b) in enumerate(zip(sd, st)):
        close(a.grad, b.grad, f"initial state {k} grad")
    t_params = dict(tm.named_parameters())
    names = [n for n, _ in m.named_parameters()]
    assert names == list(t_params), "parameter names and order match torch"
    for name, p in m.named_parameters():
        close(p.grad, t_params[name].grad, f"grad of {name}")


@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh"])
def test_only_final_state_used_and_no_bias(mode):
    """A classifier that reads h_n only (the output gets no grad), with bias=False."""
    m, tm = make_pair(mode, bias=False, num_layers=2)
    x = np.random.default_rng(1).standard_normal((T, B, I)).astype(np.float32)
    xd, xt = dg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    hd, ht = m(xd)[1], tm(xt)[1]
    hd, ht = (hd[0], ht[0]) if mode == "lstm" else (hd, ht)
    (hd * hd).sum().backward()
    (ht * ht).sum().backward()
    close(xd.grad, xt.grad, "input grad")
    t_params = dict(tm.named_parameters())
    for name, p in m.named_parameters():
        close(p.grad, t_params[name].grad, f"grad of {name}")


@pytest.mark.parametrize("mode", ["rnn_tanh", "lstm", "gru"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_unbatched_input(mode, batch_first):
    m, tm = make_pair(mode, batch_first=batch_first, bidirectional=True)
    x = np.random.default_rng(2).standard_normal((T, I)).astype(np.float32)
    shape = (2, H)
    h0 = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    sd = (dg.tensor(h0), dg.tensor(h0)) if mode == "lstm" else dg.tensor(h0)
    st = (torch.tensor(h0), torch.tensor(h0)) if mode == "lstm" else torch.tensor(h0)
    (od, hd), (ot, ht) = m(dg.tensor(x), sd), tm(torch.tensor(x), st)
    close(od, ot, "output")
    assert od.shape == (T, 2 * H)
    for a, b in zip(hd if mode == "lstm" else (hd,), ht if mode == "lstm" else (ht,)):
        close(a, b, "state")


def test_state_dict_names_shapes_and_init_range():
    m = LSTM(7, 11, num_layers=2, bidirectional=True, proj_size=4)
    tm = torch.nn.LSTM(7, 11, num_layers=2, bidirectional=True, proj_size=4)
    ours = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in tm.state_dict().items()}
    assert list(ours.items()) == list(theirs.items())
    bound = 1 / np.sqrt(11)
    values = np.concatenate([p.array.ravel() for p in m.parameters()])
    assert values.min() >= -bound and values.max() <= bound and values.std() > 0.5 * bound / np.sqrt(3)
    assert str(m) == str(tm)


def test_no_grad_and_eval_dropout():
    dg.manual_seed(0)
    m = GRU(I, H, num_layers=2, dropout=0.5)
    x = dg.randn(T, B, I)
    with dg.no_grad():
        out, h = m(x)
    assert not out.requires_grad and not h.requires_grad
    m.eval()
    a, b = m(x)[0], m(x)[0]
    np.testing.assert_array_equal(a.array, b.array)  # dropout off in eval
    m.train()
    dg.manual_seed(5)
    c = m(x)[0]
    dg.manual_seed(5)
    d = m(x)[0]
    np.testing.assert_array_equal(c.array, d.array)  # seeded by the global generator
    assert not np.allclose(c.array, a.array)  # dropout active in training
    m2 = GRU(I, H, num_layers=2, dropout=0.0)
    m2.load_state_dict(m.state_dict())
    close(m2(x)[0], a, "dropout=0 equals eval")


def test_dropout_warning_and_bad_config():
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        LSTM(3, 4, dropout=0.3)
    with pytest.raises(ValueError, match="dropout"):
        LSTM(3, 4, num_layers=2, dropout=1.5)
    with pytest.raises(ValueError, match="proj_size"):
        LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="nonlinearity"):
        RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="hidden_size"):
        GRU(3, 0)


def test_backward_twice_with_retain_graph_and_hooks():
    m = LSTM(I, H)
    x = dg.randn(T, B, I, requires_grad=True)
    out, (h, c) = m(x)
    seen = []
    h.register_hook(lambda g: seen.append(g.shape))
    loss = out.sum() + h.sum() + c.sum()
    loss.backward(retain_graph=True)
    first = x.grad.array.copy()
    x.grad = None
    loss.backward()
    np.testing.assert_allclose(x.grad.array, first, rtol=1e-6)
    assert seen == [(1, B, H), (1, B, H)]
    # Only the final state used, twice through a retained graph: same grads both times.
    out, (h, c) = m(x)
    x.grad = None
    h.sum().backward(retain_graph=True)
    first = x.grad.array.copy()
    x.grad = None
    h.sum().backward()
    np.testing.assert_allclose(x.grad.array, first, rtol=1e-6)
    assert np.abs(first).sum() > 0


LSTM_CASES = [(m, L, bi, v) for m, L, bi, v in CASES if m.startswith("lstm") and L < 3]


@pytest.mark.parametrize("mode,layers,bidirectional,variant", LSTM_CASES)
def test_lstm_inference_path_parity(mode, layers, bidirectional, variant):
    """Under no_grad / inference_mode the LSTM runs its inference kernel (nothing saved): torch's numbers."""
    batch_first, with_state, lengths = VARIANTS[variant]
    m, tm = make_pair(mode, seed=layers, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first)
    rng = np.random.default_rng(10 + variant)
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I)).astype(np.float32)
    dirs, width = (2 if bidirectional else 1), (m.proj_size or H)
    states = [rng.standard_normal(s).astype(np.float32) for s in [(layers * dirs, B, width), (layers * dirs, B, H)]]
    with torch.no_grad():
        out_t, hx_t = run(tm, torch, torch.tensor(x), lengths,
                          tuple(torch.tensor(s) for s in states) if with_state else None, batch_first)
    for mode_ctx in (dg.no_grad, dg.inference_mode):
        with mode_ctx():
            out_d, hx_d = run(m, dg, dg.tensor(x), lengths,
                              tuple(dg.tensor(s) for s in states) if with_state else None, batch_first)
        assert not out_d.requires_grad
        close(out_d, out_t, f"{mode_ctx.__name__}: output")
        for k, (a, b) in enumerate(zip(hx_d, hx_t)):
            close(a, b, f"{mode_ctx.__name__}: final state {k}")
