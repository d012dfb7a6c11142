"""ONNX export of the attention layers, verified in onnxruntime like the other exports (max |diff| / max
|deepgrad| <= 1e-5): the fused op with each mask kind and the causal pattern, MultiheadAttention with its
options and a key padding mask as a graph input, the encoder/decoder layers, and the zoo's transformer models
with dynamic batch and sequence length."""

import numpy as np
import pytest

import deepgrad as dg
import deepgrad.nn as nn
import deepgrad.nn.functional as F

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from deepgrad.models import TransformerClassifier, TransformerLanguageModel  # noqa: E402
from deepgrad.onnx import ExportError, compare_with_onnxruntime, export  # noqa: E402

TOL = 1e-5


def _f(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


class Attend(nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.kwargs = kwargs

    def forward(self, q, k, v, *mask):
        return F.scaled_dot_product_attention(q, k, v, *mask, **self.kwargs)


def _axes(n, lengths):
    """Inputs 0..n-1 with a dynamic batch (dim 0) and a dynamic length (dim -2 / the given dim)."""
    return {f"input_{i}": {0: "batch", d: f"len{i}"} for i, d in zip(range(n), lengths)}


def test_fused_attention_causal_and_masks_with_dynamic_lengths(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "sdpa.onnx"
    for kwargs in ({}, {"is_causal": True, "scale": 0.5}):
        model = Attend(**kwargs)
        proto = export(model, (_f(rng, 2, 3, 4, 8), _f(rng, 2, 3, 5, 8), _f(rng, 2, 3, 5, 6)), path,
                       dynamic_axes={"input_0": {0: "b", 2: "L"}, "input_1": {0: "b", 2: "S"},
                                     "input_2": {0: "b", 2: "S"}})
        assert ("Trilu" in [n.op_type for n in proto.graph.node]) == bool(kwargs)
        for b, length, source in ((1, 6, 9), (3, 9, 7)):
            inputs = (_f(rng, b, 3, length, 8), _f(rng, b, 3, source, 8), _f(rng, b, 3, source, 6))
            assert compare_with_onnxruntime(model, str(path), *inputs) <= TOL
    model = Attend()
    for kind in ("bool", "float"):
        def mask(b, kind=kind):
            keep = rng.random((b, 1, 4, 5)) > 0.3
            keep[0, 0, 1] = False  # a query with no key left: zero weights, not NaN
            return keep if kind == "bool" else np.where(keep, 0.0, -np.inf).astype(np.float32)

        export(model, (_f(rng, 2, 3, 4, 8), _f(rng, 2, 3, 5, 8), _f(rng, 2, 3, 5, 8), mask(2)), path,
               dynamic_axes={f"input_{i}": {0: "b"} for i in range(4)})
        inputs = (_f(rng, 3, 3, 4, 8), _f(rng, 3, 3, 5, 8), _f(rng, 3, 3, 5, 8), mask(3))
        assert compare_with_onnxruntime(model, str(path), *inputs) <= TOL


@pytest.mark.parametrize("config", [dict(batch_first=True), dict(add_bias_kv=True, add_zero_attn=True),
                                    dict(kdim=5, vdim=3, batch_first=True, bias=False)],
                         ids=["batch_first", "bias_kv_zero_attn", "kdim_vdim_nobias"])
def test_multihead_attention_with_key_padding_mask(tmp_path, config):
    dg.manual_seed(0)
    rng = np.random.default_rng(1)
    mha = nn.MultiheadAttention(8, 2, **config)
    bf = config.get("batch_first", False)
    kd, vd = config.get("kdim", 8), config.get("vdim", 8)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = mha

        def forward(self, q, k, v, padding):
            return self.mha(q, k, v, key_padding_mask=padding)  # (output, head-averaged weights)

    def inputs(b, length, source):
        shaped = (lambda t, d: _f(rng, b, t, d)) if bf else (lambda t, d: _f(rng, t, b, d))
        padding = rng.random((b, source)) < 0.3
        padding[:, 0] = False
        return shaped(length, 8), shaped(source, kd), shaped(source, vd), padding

    seq = 1 if bf else 0
    axes = {"input_0": {1 - seq: "batch", seq: "L"}, "input_1": {1 - seq: "batch", seq: "S"},
            "input_2": {1 - seq: "batch", seq: "S"}, "input_3": {0: "batch", 1: "S"}}
    path = tmp_path / "mha.onnx"
    proto = export(Net(), inputs(2, 4, 5), path, dynamic_axes=axes, output_names=["out", "weights"])
    assert len(proto.graph.output) == 2
    for size in ((3, 6, 7), (1, 2, 9)):
        assert compare_with_onnxruntime(Net(), str(path), *inputs(*size)) <= TOL


def test_encoder_decoder_layers_and_transformer(tmp_path):
    dg.manual_seed(0)
    rng = np.random.default_rng(2)
    model = nn.Transformer(8, 2, 2, 2, 16, batch_first=True, norm_first=True, activation="gelu")
    mask = nn.Transformer.generate_square_subsequent_mask(5)

    class Seq2Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, src, tgt):
            return self.model(src, tgt, tgt_mask=mask, tgt_is_causal=True)

    path = tmp_path / "transformer.onnx"
    export(Seq2Seq(), (_f(rng, 2, 6, 8), _f(rng, 2, 5, 8)), path,
           dynamic_axes={"input_0": {0: "batch", 1: "S"}, "input_1": {0: "batch"}})
    assert compare_with_onnxruntime(Seq2Seq(), str(path), _f(rng, 3, 9, 8), _f(rng, 3, 5, 8)) <= TOL
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 2)  # time-major
    export(encoder, _f(rng, 6, 2, 8), path, dynamic_axes={"input": {0: "time", 1: "batch"}})
    assert compare_with_onnxruntime(encoder, str(path), _f(rng, 9, 3, 8)) <= TOL


def test_zoo_models_with_dynamic_batch_and_length(tmp_path):
    dg.manual_seed(0)
    rng = np.random.default_rng(3)
    path = tmp_path / "zoo.onnx"
    for positional in ("sinusoidal", "learned"):
        clf = TransformerClassifier(5, 20, d_model=16, nhead=2, num_layers=2, positional=positional, padding_idx=0)
        tokens = rng.integers(1, 20, (2, 7))
        export(clf, (tokens, tokens == 0), path,
               dynamic_axes={"input_0": {0: "batch", 1: "time"}, "input_1": {0: "batch", 1: "time"}})
        x = rng.integers(1, 20, (3, 11))
        x[0, 8:] = 0
        assert compare_with_onnxruntime(clf, str(path), x, x == 0) <= TOL
    lm = TransformerLanguageModel(30, d_model=16, nhead=2, num_layers=2, max_len=32)
    export(lm, rng.integers(0, 30, (2, 7)), path, dynamic_axes={"input": {0: "batch", 1: "time"}})
    for shape in ((3, 13), (1, 32)):
        assert compare_with_onnxruntime(lm, str(path), rng.integers(0, 30, shape)) <= TOL


def test_dropout_inside_attention_is_refused(tmp_path):
    with pytest.raises(ExportError, match="dropout_p > 0"):
        export(Attend(dropout_p=0.1), tuple(dg.randn(1, 3, 4) for _ in range(3)), tmp_path / "x.onnx")
