"""nn.MultiheadAttention and the transformer layers against torch 2.13: parameter names, shapes and state_dict
keys, forward outputs and every gradient (inputs and parameters) for each option and mask, dropout, errors,
and a torch-trained encoder whose weights load into deepgrad (and back) with identical outputs."""

import warnings

import numpy as np
import pytest
import torch

import deepgrad as dg
from deepgrad import nn

RTOL, ATOL = 1e-4, 2e-5

# torch's own notices about the comparisons made here (a float mask with a bool padding mask, nested tensors),
# and NumPy's about the NaN rows that torch also returns: expected, so kept out of the test output.
pytestmark = [pytest.mark.filterwarnings("ignore:Support for mismatched"),
              pytest.mark.filterwarnings("ignore:enable_nested_tensor is True"),
              pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors"),
              pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")]


def _arr(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _copy_weights(t_module, d_module):
    assert list(d_module.state_dict()) == list(t_module.state_dict())
    for (k, a), b in zip(t_module.state_dict().items(), d_module.state_dict().values()):
        assert tuple(a.shape) == tuple(b.shape), k
    d_module.load_state_dict({k: v.numpy() for k, v in t_module.state_dict().items()})


def _to_torch(x):
    if isinstance(x, np.ndarray):
        return torch.tensor(x, requires_grad=x.dtype.kind == "f")
    return x


def _to_dg(x):
    if isinstance(x, np.ndarray):
        return dg.tensor(x, requires_grad=x.dtype.kind == "f")
    return x


def _compare(t_module, d_module, inputs, kwargs=None, seed=0):
    """Same weights, same inputs: outputs (and attention weights), input and parameter gradients agree."""
    kwargs = kwargs or {}
    _copy_weights(t_module, d_module)
    t_in, d_in = [_to_torch(a) for a in inputs], [_to_dg(a) for a in inputs]
    t_kw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    d_kw = {k: dg.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    out_t, out_d = t_module(*t_in, **t_kw), d_module(*d_in, **d_kw)
    weights_t = weights_d = None
    if isinstance(out_t, tuple):
        (out_t, weights_t), (out_d, weights_d) = out_t, out_d
        assert (weights_t is None) == (weights_d is None)
    np.testing.assert_allclose(out_d.detach().numpy(), out_t.detach().numpy(), RTOL, ATOL)
    if weights_t is not None:
        np.testing.assert_allclose(weights_d.detach().numpy(), weights_t.detach().numpy(), RTOL, ATOL)
    up = np.random.default_rng(seed).standard_normal(out_t.shape).astype(np.float32)
    out_t.backward(torch.tensor(up))
    out_d.backward(dg.tensor(up))
    for a, b in zip(t_in, d_in):
        if isinstance(a, torch.Tensor) and a.requires_grad:
            np.testing.assert_allclose(b.grad.numpy(), a.grad.numpy(), RTOL, ATOL)
    t_params = dict(t_module.named_parameters())
    for name, p in d_module.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), t_params[name].grad.numpy(), RTOL, ATOL, err_msg=name)
    return out_d


# ----------------------------------------------------------------------------- MultiheadAttention
MHA_CONFIGS = [dict(), dict(bias=False), dict(add_bias_kv=True), dict(add_zero_attn=True), dict(kdim=5, vdim=3),
               dict(batch_first=True), dict(add_bias_kv=True, add_zero_attn=True, kdim=6, batch_first=True)]


@pytest.mark.parametrize("config", MHA_CONFIGS, ids=lambda c: ",".join(c) or "default")
def test_multihead_attention_matches_torch(config):
    rng = np.random.default_rng(0)
    e, h, n, length, source = 8, 2, 3, 4, 5
    torch.manual_seed(0)
    t_mha, d_mha = torch.nn.MultiheadAttention(e, h, **config), nn.MultiheadAttention(e, h, **config)
    assert repr(d_mha) == repr(t_mha)
    assert {k: tuple(v.shape) for k, v in d_mha.state_dict().items()} == {
        k: tuple(v.shape) for k, v in t_mha.state_dict().items()}

    def shaped(t, d):
        return _arr(rng, n, t, d) if config.get("batch_first") else _arr(rng, t, n, d)

    padding = rng.random((n, source)) < 0.3
    padding[:, 0] = False
    blocked = rng.random((length, source)) < 0.3
    blocked[:, 1] = False
    calls = [dict(), dict(need_weights=False, key_padding_mask=padding),
             dict(attn_mask=blocked, key_padding_mask=padding, average_attn_weights=False),
             dict(attn_mask=_arr(rng, n * h, length, source), need_weights=False)]
    for kwargs in calls:
        inputs = [shaped(length, e), shaped(source, config.get("kdim", e)), shaped(source, config.get("vdim", e))]
        _compare(t_mha, d_mha, inputs, kwargs)


def test_multihead_self_attention_unbatched_float_masks_and_causal_hint():
    rng = np.random.default_rng(1)
    t_mha, d_mha = torch.nn.MultiheadAttention(8, 4), nn.MultiheadAttention(8, 4)
    x = _arr(rng, 5, 8)
    _compare(t_mha, d_mha, [x, x, x], dict(key_padding_mask=np.array([False, True, False, False, False])))
    _compare(t_mha, d_mha, [x, x, x], dict(attn_mask=_arr(rng, 4, 5, 5), average_attn_weights=False))
    causal = torch.nn.Transformer.generate_square_subsequent_mask(5).numpy()
    x3 = _arr(rng, 5, 2, 8)
    for need_weights in (False, True):  # the hint path (no mask tensor) and the explicit-mask path
        _compare(t_mha, d_mha, [x3, x3, x3], dict(attn_mask=causal, is_causal=True, need_weights=need_weights))
    _compare(t_mha, d_mha, [x3, x3, x3], dict(key_padding_mask=_arr(rng, 2, 5)))  # a float padding mask is added


def test_fully_masked_query_nan_with_weights_zero_without_like_torch():
    x = np.random.default_rng(2).standard_normal((4, 2, 8)).astype(np.float32)
    padding = np.zeros((2, 4), bool)
    padding[1] = True
    t_mha, d_mha = torch.nn.MultiheadAttention(8, 2), nn.MultiheadAttention(8, 2)
    _copy_weights(t_mha, d_mha)
    for need_weights in (True, False):
        out_t = t_mha(*[torch.tensor(x)] * 3, key_padding_mask=torch.tensor(padding), need_weights=need_weights)[0]
        out_d = d_mha(*[dg.tensor(x)] * 3, key_padding_mask=dg.tensor(padding), need_weights=need_weights)[0]
        out_d = out_d.detach()
        np.testing.assert_allclose(out_d.numpy(), out_t.detach().numpy(), RTOL, ATOL)  # NaN == NaN here
        assert np.isnan(out_d.numpy()[:, 1]).all() == need_weights


def test_multihead_attention_dropout_statistics_train_and_eval():
    dg.manual_seed(0)
    mha = nn.MultiheadAttention(16, 2, dropout=0.25, batch_first=True)
    x = dg.randn(64, 12, 16)
    _, weights = mha(x, x, x, average_attn_weights=False)
    w = weights.detach().numpy()
    assert abs((w == 0).mean() - 0.25) < 0.015  # 18432 weights
    np.testing.assert_allclose(w.sum(-1).mean(), 1.0, atol=0.02)  # rescaled by 1 / (1 - p): unbiased
    mha.eval()
    with dg.no_grad():
        a, wa = mha(x, x, x)
        b, wb = mha(x, x, x)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_allclose(wa.numpy().sum(-1), 1.0, rtol=1e-5)


def test_multihead_attention_initialisation_and_errors():
    dg.manual_seed(0)
    mha = nn.MultiheadAttention(64, 8, add_bias_kv=True)
    bound = np.sqrt(6 / (64 + 3 * 64))  # xavier_uniform on (3E, E)
    w = mha.in_proj_weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert not mha.in_proj_bias.detach().numpy().any() and not mha.out_proj.bias.detach().numpy().any()
    assert mha.bias_k.shape == (1, 1, 64) and mha.bias_k.detach().numpy().std() > 0
    with pytest.raises(AssertionError, match="divisible by num_heads"):
        nn.MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match="greater than 0"):
        nn.MultiheadAttention(0, 1)
    m, x = nn.MultiheadAttention(8, 2), dg.randn(4, 2, 8)
    bad = [(dict(is_causal=True), RuntimeError, "Need attn_mask"),
           (dict(attn_mask=dg.zeros(3, 4)), RuntimeError, "2D attn_mask"),
           (dict(attn_mask=dg.zeros(5, 4, 4)), RuntimeError, "3D attn_mask"),
           (dict(attn_mask=dg.zeros(4, 4, dtype=dg.int64)), AssertionError, "only bool and floating"),
           (dict(key_padding_mask=dg.zeros(2, 5, dtype=dg.bool_)), AssertionError, "key_padded_mask.shape"),
           (dict(key_padding_mask=dg.zeros(2, dtype=dg.bool_)), AssertionError, "key_padding_mask")]
    for kwargs, error, message in bad:
        with pytest.raises(error, match=message):
            m(x, x, x, **kwargs)
    with pytest.raises(AssertionError, match="embedding dimension of 8"):
        m(dg.randn(4, 2, 7), x, x)
    with pytest.raises(AssertionError, match="does not match value shape"):
        m(x, dg.randn(5, 2, 8), x)
    with pytest.raises(AssertionError, match="unbatched"):
        m(x[0], x, x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m(x, x, x, attn_mask=dg.zeros(4, 4, dtype=dg.bool_), key_padding_mask=dg.zeros(2, 4))
    assert any("mismatched key_padding_mask and attn_mask" in str(w.message) for w in caught)


# ----------------------------------------------------------------------------- the transformer layers
LAYER_CONFIGS = [dict(), dict(norm_first=True, activation="gelu"), dict(batch_first=True, bias=False),
                 dict(batch_first=True, norm_first=True, activation="callable")]


def _layer_kwargs(config, lib):
    config = dict(config)
    if config.get("activation") == "callable":
        config["activation"] = torch.nn.functional.gelu if lib is torch else dg.nn.functional.gelu
    return config


@pytest.mark.parametrize("config", LAYER_CONFIGS, ids=lambda c: ",".join(c) or "default")
def test_encoder_and_decoder_layers_match_torch(config):
    rng = np.random.default_rng(3)
    e, h, ff, length, source, n = 8, 2, 16, 5, 6, 3
    bf = config.get("batch_first", False)

    def seq(t):
        return _arr(rng, n, t, e) if bf else _arr(rng, t, n, e)

    causal = torch.nn.Transformer.generate_square_subsequent_mask(length).numpy()
    padding = rng.random((n, length)) < 0.3
    padding[:, 0] = False
    memory_padding = rng.random((n, source)) < 0.3
    memory_padding[:, 0] = False
    t_enc = torch.nn.TransformerEncoderLayer(e, h, ff, 0.0, **_layer_kwargs(config, torch))
    d_enc = nn.TransformerEncoderLayer(e, h, ff, 0.0, **_layer_kwargs(config, dg))
    _compare(t_enc, d_enc, [seq(length)])
    _compare(t_enc, d_enc, [seq(length)], dict(src_key_padding_mask=padding))
    _compare(t_enc, d_enc, [seq(length)], dict(src_mask=causal, is_causal=True))
    t_dec = torch.nn.TransformerDecoderLayer(e, h, ff, 0.0, **_layer_kwargs(config, torch))
    d_dec = nn.TransformerDecoderLayer(e, h, ff, 0.0, **_layer_kwargs(config, dg))
    _compare(t_dec, d_dec, [seq(length), seq(source)],
             dict(tgt_mask=causal, tgt_is_causal=True, tgt_key_padding_mask=padding,
                  memory_key_padding_mask=memory_padding))


@pytest.mark.parametrize("batch_first", [False, True])
def test_full_transformer_matches_torch(batch_first):
    rng = np.random.default_rng(4)
    torch.manual_seed(0)
    dg.manual_seed(0)
    t_model = torch.nn.Transformer(8, 2, 2, 2, 16, dropout=0.0, batch_first=batch_first)
    d_model = nn.Transformer(8, 2, 2, 2, 16, dropout=0.0, batch_first=batch_first)
    for p in d_model.parameters():  # torch's _reset_parameters: Xavier-uniform on every matrix
        if p.ndim > 1:
            fan_out, fan_in = p.shape
            assert np.abs(p.detach().numpy()).max() <= np.sqrt(6 / (fan_in + fan_out))
    src = _arr(rng, 3, 6, 8) if batch_first else _arr(rng, 6, 3, 8)
    tgt = _arr(rng, 3, 5, 8) if batch_first else _arr(rng, 5, 3, 8)
    mask = nn.Transformer.generate_square_subsequent_mask(5).numpy()
    np.testing.assert_array_equal(mask, torch.nn.Transformer.generate_square_subsequent_mask(5).numpy())
    padding = np.zeros((3, 6), bool)
    padding[1, 4:] = True
    _compare(t_model, d_model, [src, tgt], dict(tgt_mask=mask, src_key_padding_mask=padding,
                                                memory_key_padding_mask=padding))
    with pytest.raises(RuntimeError, match="batch number of src and tgt"):
        d_model(dg.tensor(src), dg.tensor(tgt[:2] if batch_first else tgt[:, :2]))
    with pytest.raises(RuntimeError, match="feature number"):
        d_model(dg.tensor(src), dg.tensor(tgt[..., :4]))


def test_stack_copies_are_independent_and_dropout_trains_only():
    dg.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.5, batch_first=True)
    encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=True)
    a, b = encoder.layers[0].linear1.weight, encoder.layers[1].linear1.weight
    assert a is not b and np.array_equal(a.detach().numpy(), b.detach().numpy())
    assert a is not layer.linear1.weight
    x = dg.randn(2, 5, 8)
    assert not np.allclose(encoder(x).detach().numpy(), encoder(x).detach().numpy())  # dropout draws differ
    encoder.eval()
    np.testing.assert_array_equal(encoder(x).detach().numpy(), encoder(x).detach().numpy())
    with pytest.raises(RuntimeError, match="relu/gelu"):
        nn.TransformerEncoderLayer(8, 2, activation="tanh")


def test_torch_trained_encoder_loads_both_ways(tmp_path):
    """Train a small torch encoder, save it with safetensors.torch, load it into deepgrad: same outputs (eval,
    with a padding mask, compared on unpadded positions where torch's nested fast path zeroes the rest).
    Then deepgrad saves it and torch loads that file: the same outputs again."""
    safetensors_torch = pytest.importorskip("safetensors.torch")
    rng = np.random.default_rng(5)
    torch.manual_seed(0)

    def build(lib):
        layer = lib.nn.TransformerEncoderLayer(16, 4, 32, dropout=0.1, batch_first=True)
        return lib.nn.TransformerEncoder(layer, 2, lib.nn.LayerNorm(16))

    t_model = build(torch)
    opt = torch.optim.Adam(t_model.parameters(), lr=1e-2)
    x, y = torch.tensor(_arr(rng, 16, 7, 16)), torch.tensor(_arr(rng, 16, 7, 16))
    for _ in range(5):
        opt.zero_grad()
        torch.nn.functional.mse_loss(t_model(x), y).backward()
        opt.step()
    t_model.eval()
    path = tmp_path / "encoder.safetensors"
    safetensors_torch.save_file(t_model.state_dict(), str(path))
    d_model = build(dg).eval()
    d_model.load_state_dict(dg.load(path))
    padding = np.zeros((16, 7), bool)
    padding[::3, 5:] = True
    with torch.no_grad():
        expected = t_model(x, src_key_padding_mask=torch.tensor(padding)).numpy()
    got = d_model(dg.tensor(x.numpy()), src_key_padding_mask=dg.tensor(padding)).detach().numpy()
    np.testing.assert_allclose(got[~padding], expected[~padding], RTOL, ATOL)
    back = tmp_path / "from_deepgrad.safetensors"
    dg.save(d_model.state_dict(), back)
    t_again = build(torch).eval()
    t_again.load_state_dict(safetensors_torch.load_file(str(back)))
    with torch.no_grad():
        np.testing.assert_allclose(t_again(x).numpy(), d_model(dg.tensor(x.numpy())).detach().numpy(), RTOL, ATOL)
