"""Fused recurrent ops (float64 gradcheck), the cells, packed-sequence utilities, weights moving
through safetensors files in both directions, and the errors that bad input raises."""

import numpy as np
import pytest

import deepgrad as dg
from deepgrad.autograd import gradcheck
from deepgrad.nn.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from deepgrad.nn.rnn_utils import (
    PackedSequence,
    pack_padded_sequence,
    pack_sequence,
    pad_packed_sequence,
    pad_sequence,
    unpack_sequence,
)
from deepgrad.ops import recurrent as R

torch = pytest.importorskip("torch")
tutils = torch.nn.utils.rnn


def rand64(rng, *shape, scale=0.5):
    return dg.tensor(rng.standard_normal(shape) * scale, dtype=dg.float64, requires_grad=True)


# ----------------------------------------------------------------------------- gradcheck
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("kind", ["tanh", "relu", "lstm", "lstm_proj", "gru"])
def test_gradcheck_fused_layer(kind, packed, reverse):
    rng = np.random.default_rng(7)
    i, h, t, b = 2, 3, 3, 3
    gates = {"tanh": 1, "relu": 1, "lstm": 4, "lstm_proj": 4, "gru": 3}[kind]
    width = 2 if kind == "lstm_proj" else h
    sizes = [3, 2, 1] if packed else None
    x = rand64(rng, sum(sizes), i) if packed else rand64(rng, t, b, i)
    h0, c0 = rand64(rng, b, width), rand64(rng, b, h)
    w = [rand64(rng, gates * h, i), rand64(rng, gates * h, width), rand64(rng, gates * h), rand64(rng, gates * h)]
    w_hr = rand64(rng, width, h)
    if kind in ("tanh", "relu"):
        def fn(x, h0, *w):
            return R.rnn_layer(x, h0, *w, nonlinearity=kind, reverse=reverse, batch_sizes=sizes)
        inputs = [x, h0, *w]
    elif kind == "gru":
        def fn(x, h0, *w):
            return R.gru_layer(x, h0, *w, reverse=reverse, batch_sizes=sizes)
        inputs = [x, h0, *w]
    else:
        proj = kind == "lstm_proj"
        def fn(x, h0, c0, *w):
            return R.lstm_layer(x, (h0, c0), *w[:4], weight_hr=w[4] if proj else None,
                                reverse=reverse, batch_sizes=sizes)
        inputs = [x, h0, c0, *w] + ([w_hr] if proj else [])
    assert gradcheck(fn, inputs)


@pytest.mark.parametrize("kind", ["tanh", "lstm", "gru"])
def test_gradcheck_cells(kind):
    rng = np.random.default_rng(8)
    gates = {"tanh": 1, "lstm": 4, "gru": 3}[kind]
    x, h, c = rand64(rng, 2, 3), rand64(rng, 2, 4), rand64(rng, 2, 4)
    w = [rand64(rng, gates * 4, 3), rand64(rng, gates * 4, 4), rand64(rng, gates * 4), rand64(rng, gates * 4)]
    if kind == "lstm":
        assert gradcheck(lambda x, h, c, *w: R.lstm_cell(x, (h, c), *w), [x, h, c, *w])
    else:
        cell = R.rnn_tanh_cell if kind == "tanh" else R.gru_cell
        assert gradcheck(lambda x, h, *w: cell(x, h, *w), [x, h, *w])


# ----------------------------------------------------------------------------- cells
@pytest.mark.parametrize("name", ["RNNCell", "RNNCell_relu", "LSTMCell", "GRUCell"])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("with_state", [True, False])
def test_cell_parity(name, batched, with_state):
    cls_name, _, act = name.partition("_")
    kwargs = {"nonlinearity": act} if act else {}
    dg.manual_seed(1)
    m = {"RNNCell": RNNCell, "LSTMCell": LSTMCell, "GRUCell": GRUCell}[cls_name](3, 5, **kwargs)
    tm = getattr(torch.nn, cls_name)(3, 5, **kwargs)
    tm.load_state_dict({k: torch.tensor(np.array(v.numpy())) for k, v in m.state_dict().items()})
    rng = np.random.default_rng(2)
    lead = (4,) if batched else ()
    x = rng.standard_normal(lead + (3,)).astype(np.float32)
    states = [rng.standard_normal(lead + (5,)).astype(np.float32) for _ in range(2 if cls_name == "LSTMCell" else 1)]
    xd, xt = dg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    sd = [dg.tensor(s, requires_grad=True) for s in states]
    st = [torch.tensor(s, requires_grad=True) for s in states]
    arg_d = (tuple(sd) if len(sd) == 2 else sd[0]) if with_state else None
    arg_t = (tuple(st) if len(st) == 2 else st[0]) if with_state else None
    # Two steps, so the second consumes the first's outputs (the usual unrolled loop).
    od, ot = m(xd, arg_d), tm(xt, arg_t)
    od, ot = m(xd, od), tm(xt, ot)
    od, ot = (od if isinstance(od, tuple) else (od,)), (ot if isinstance(ot, tuple) else (ot,))
    loss_d = sum((a * dg.tensor(np.full(a.shape, k + 0.5, np.float32))).sum() for k, a in enumerate(od))
    loss_t = sum((a * (k + 0.5)).sum() for k, a in enumerate(ot))
    loss_d.backward()
    loss_t.backward()
    for a, b in zip(od, ot):
        np.testing.assert_allclose(a.array, b.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(xd.grad.array, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    if with_state:
        for a, b in zip(sd, st):
            np.testing.assert_allclose(a.grad.array, b.grad.numpy(), rtol=1e-4, atol=1e-5)
    tp = dict(tm.named_parameters())
    for k, p in m.named_parameters():
        np.testing.assert_allclose(p.grad.array, tp[k].grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=k)


# ----------------------------------------------------------------------------- packing
def test_pack_pad_roundtrip_matches_torch():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 4, 2)).astype(np.float32)
    lengths = [3, 5, 1, 4]
    for batch_first in (False, True):
        xb = x.transpose(1, 0, 2).copy() if batch_first else x
        xd, xt = dg.tensor(xb, requires_grad=True), torch.tensor(xb, requires_grad=True)
        pd = pack_padded_sequence(xd, lengths, batch_first=batch_first, enforce_sorted=False)
        pt = tutils.pack_padded_sequence(xt, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
        np.testing.assert_array_equal(pd.data.array, pt.data.detach().numpy())
        assert pd.batch_sizes.tolist() == pt.batch_sizes.tolist()
        assert pd.sorted_indices.tolist() == pt.sorted_indices.tolist()
        assert pd.unsorted_indices.tolist() == pt.unsorted_indices.tolist()
        (padded_d, len_d), (padded_t, len_t) = (pad_packed_sequence(pd, batch_first, -1.0, 6),
                                                tutils.pad_packed_sequence(pt, batch_first, -1.0, 6))
        np.testing.assert_array_equal(padded_d.array, padded_t.detach().numpy())
        assert len_d.tolist() == len_t.tolist() == lengths
        g = rng.standard_normal(padded_t.shape).astype(np.float32)
        (padded_d * dg.tensor(g)).sum().backward()
        (padded_t * torch.tensor(g)).sum().backward()
        np.testing.assert_array_equal(xd.grad.array, xt.grad.numpy())  # zero grad at padded steps


def test_pad_sequence_pack_sequence_and_unpack():
    rng = np.random.default_rng(4)
    seqs = [rng.standard_normal((n, 2)).astype(np.float32) for n in (2, 4, 3)]
    for batch_first in (False, True):
        for side in ("right", "left"):
            a = pad_sequence([dg.tensor(s) for s in seqs], batch_first, 9.0, side)
            b = tutils.pad_sequence([torch.tensor(s) for s in seqs], batch_first, 9.0, side)
            np.testing.assert_array_equal(a.array, b.numpy())
    packed = pack_sequence([dg.tensor(s) for s in seqs], enforce_sorted=False)
    tpacked = tutils.pack_sequence([torch.tensor(s) for s in seqs], enforce_sorted=False)
    np.testing.assert_array_equal(packed.data.array, tpacked.data.numpy())
    for s, u in zip(seqs, unpack_sequence(packed)):
        np.testing.assert_array_equal(s, u.array)
    with pytest.raises(RuntimeError, match="sorted in decreasing order"):
        pack_sequence([dg.tensor(s) for s in seqs])
    with pytest.raises(ValueError, match="total_length"):
        pad_packed_sequence(packed, total_length=2)
    assert isinstance(packed, PackedSequence) and isinstance(packed.to(dg.float64).data.dtype, np.dtype)


@pytest.mark.parametrize("cls", [LSTM, GRU, RNN])
def test_padded_steps_do_not_change_final_state(cls):
    """h_n of a short sequence equals running it alone; its padded outputs are zero."""
    dg.manual_seed(3)
    m = cls(2, 4, bidirectional=True, num_layers=2)
    x = dg.randn(6, 3, 2)
    x.array[4:, 1] = 100.0  # garbage in the padding of sequence 1 (length 4)
    out, hx = m(pack_padded_sequence(x, [6, 4, 5], enforce_sorted=False))
    h = hx[0] if isinstance(hx, tuple) else hx
    alone_out, alone_hx = m(x[:4, 1:2])
    alone_h = alone_hx[0] if isinstance(alone_hx, tuple) else alone_hx
    np.testing.assert_allclose(h.array[:, 1], alone_h.array[:, 0], rtol=1e-5, atol=1e-6)
    padded, lengths = pad_packed_sequence(out)
    np.testing.assert_allclose(padded.array[:4, 1], alone_out.array[:, 0], rtol=1e-5, atol=1e-6)
    assert np.all(padded.array[4:, 1] == 0) and lengths.tolist() == [6, 4, 5]


# ----------------------------------------------------------------------------- state dicts
@pytest.mark.parametrize("cls", ["LSTM", "GRU", "RNN"])
def test_state_dict_through_safetensors_both_ways(cls, tmp_path):
    from safetensors.torch import load_file, save_file

    kwargs = {"num_layers": 2, "bidirectional": True, "batch_first": True}
    if cls == "LSTM":
        kwargs["proj_size"] = 3
    tm = getattr(torch.nn, cls)(4, 6, **kwargs)
    ours = {"LSTM": LSTM, "GRU": GRU, "RNN": RNN}[cls](4, 6, **kwargs)
    x = np.random.default_rng(5).standard_normal((2, 5, 4)).astype(np.float32)
    save_file({k: v.contiguous() for k, v in tm.state_dict().items()}, tmp_path / "t.safetensors")
    ours.load_state_dict(dg.load(tmp_path / "t.safetensors"))
    np.testing.assert_allclose(ours(dg.tensor(x))[0].data, tm(torch.tensor(x))[0].detach().numpy(), rtol=1e-5,
                               atol=1e-6)
    # ... and back: perturb ours, save with deepgrad, load into a fresh torch module.
    with dg.no_grad():
        for p in ours.parameters():
            p.array *= 1.5
    dg.save(ours.state_dict(), tmp_path / "d.safetensors")
    tm2 = getattr(torch.nn, cls)(4, 6, **kwargs)
    tm2.load_state_dict(load_file(tmp_path / "d.safetensors"))
    np.testing.assert_allclose(ours(dg.tensor(x))[0].data, tm2(torch.tensor(x))[0].detach().numpy(), rtol=1e-5,
                               atol=1e-6)


# ----------------------------------------------------------------------------- errors
def test_wrong_feature_size_names_layer_and_shapes():
    with pytest.raises(RuntimeError, match=r"LSTM\(10, 20.*Expected 10, got 5.*\(7, 3, 5\)"):
        LSTM(10, 20, num_layers=2)(dg.randn(7, 3, 5))
    with pytest.raises(RuntimeError, match=r"GRUCell\(10, 20\).*got 5, expected 10.*\(3, 5\)"):
        GRUCell(10, 20)(dg.randn(3, 5))


def test_wrong_state_shapes_name_layer_and_shapes():
    m = LSTM(10, 20, num_layers=2)
    x = dg.randn(7, 3, 10)
    with pytest.raises(RuntimeError, match=r"LSTM\(10, 20, num_layers=2\).*h0 of shape \(2, 3, 20\).*\(7, 3, 10\).*"
                                           r"got \(1, 3, 20\)"):
        m(x, (dg.zeros(1, 3, 20), dg.zeros(2, 3, 20)))
    with pytest.raises(RuntimeError, match=r"c0 of shape \(2, 3, 20\).*got \(2, 4, 20\)"):
        m(x, (dg.zeros(2, 3, 20), dg.zeros(2, 4, 20)))
    with pytest.raises(RuntimeError, match=r"GRU\(10, 20\).*h0 of shape \(1, 3, 20\).*got \(1, 3, 21\)"):
        GRU(10, 20)(x, dg.zeros(1, 3, 21))
    with pytest.raises(RuntimeError, match=r"LSTMCell\(10, 20\).*c of shape \(3, 20\).*got \(3, 2\)"):
        LSTMCell(10, 20)(dg.randn(3, 10), (dg.zeros(3, 20), dg.zeros(3, 2)))


def test_2d_input_with_batched_states_names_both_shapes():
    with pytest.raises(RuntimeError, match=r"RNN\(10, 20\).*unbatched 2-D input of shape \(7, 10\).*"
                                           r"h0 should be 2-D.*\(1, 3, 20\)"):
        RNN(10, 20)(dg.randn(7, 10), dg.zeros(1, 3, 20))
    with pytest.raises(RuntimeError, match=r"batched 3-D input of shape \(7, 3, 10\).*h0 of shape \(1, 20\)"):
        GRU(10, 20)(dg.randn(7, 3, 10), dg.zeros(1, 20))
    with pytest.raises(ValueError, match=r"LSTM\(10, 20\).*2-D or 3-D.*\(10,\)"):
        LSTM(10, 20)(dg.randn(10))


def test_dtype_mismatch_and_op_level_errors():
    # torch: the RNN modules raise ValueError ("RNN input dtype ... does not match weight dtype"), cells RuntimeError
    for module in (LSTM(4, 5), GRU(4, 5), dg.nn.RNN(4, 5)):
        with pytest.raises(ValueError, match=r"input dtype \(float64\) does not match weight dtype \(float32\)"):
            module(dg.randn(3, 2, 4, dtype=dg.float64))
    with pytest.raises(RuntimeError, match="float64.*float32"):
        dg.nn.LSTMCell(4, 5)(dg.randn(2, 4, dtype=dg.float64))
    with pytest.raises(RuntimeError, match=r"gru_layer.*\(3, 2, 4\).*weight_ih of shape \(15, 6\)"):
        R.gru_layer(dg.randn(3, 2, 4), None, dg.randn(15, 6), dg.randn(15, 5))
    with pytest.raises(RuntimeError, match="batch_sizes"):
        R.rnn_layer(dg.randn(5, 4), None, dg.randn(3, 4), dg.randn(3, 3), batch_sizes=[2, 2])
