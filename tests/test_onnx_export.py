"""ONNX export: each model is traced at one batch size, checked with onnx.checker, run in onnxruntime at
other batch sizes, and compared with deepgrad's own output (max |diff| / max |deepgrad| <= 1e-5)."""

import numpy as np
import pytest

import deepgrad
import deepgrad.nn as nn
import deepgrad.nn.functional as F

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from deepgrad.onnx import ExportError, compare_with_onnxruntime, export, run_onnxruntime  # noqa: E402

TOL = 1e-5
BATCH = {"input": {0: "batch"}, "output": {0: "batch"}}


def _roundtrip(model, make_input, tmp_path, traced=2, others=(1, 3), dynamic_axes=BATCH, opset=17, **kw):
    """Export at batch ``traced``, check the file, compare with deepgrad at each of ``others``."""
    model.eval()
    path = tmp_path / "model.onnx"
    proto = export(model, make_input(traced), path, dynamic_axes=dynamic_axes, opset=opset, **kw)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    for n in others:
        x = make_input(n)
        err = compare_with_onnxruntime(model, str(path), *(x if isinstance(x, tuple) else (x,)))
        assert err <= TOL, f"batch {n}: max normalised error {err:.3g}"
    return proto


def _ops(proto) -> list:
    return [n.op_type for n in proto.graph.node]


# ----------------------------------------------------------------------------- the models of the issue
class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Dropout(0.5),
                                        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))

    def forward(self, x):
        return self.classifier(self.features(x).view(x.shape[0], -1))


def small_vgg_bn():
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    return nn.Sequential(*block(3, 8), *block(8, 8), nn.MaxPool2d(2), *block(8, 16), nn.MaxPool2d(2),
                         nn.AdaptiveAvgPool2d((3, 3)),  # 4x4 -> 3x3: torch's overlapping windows
                         nn.Flatten(), nn.Linear(16 * 9, 32), nn.ReLU(True), nn.Dropout(0.3), nn.Linear(32, 5))


class Block(nn.Module):
    def __init__(self, cin, cout, stride, inplace_add):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.down = None if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.inplace_add = inplace_add

    def forward(self, x):
        identity = x if self.down is None else self.down(x)
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.inplace_add:
            out += identity  # recorded out of place by the tracer, not lost
        else:
            out = out + identity
        return F.relu(out)


class SmallResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.layer1 = Block(8, 8, 1, inplace_add=True)
        self.layer2 = Block(8, 16, 2, inplace_add=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc(self.pool(self.layer2(self.layer1(self.stem(x)))).flatten(1))


class LSTMClassifier(nn.Module):
    def __init__(self, vocab=20):
        super().__init__()
        self.embedding = nn.Embedding(vocab, 8, padding_idx=0)
        self.rnn = nn.LSTM(8, 6, num_layers=2, batch_first=True, bidirectional=True, dropout=0.2)
        self.fc = nn.Linear(12, 3)

    def forward(self, tokens):
        _, (h_n, _) = self.rnn(self.embedding(tokens))
        return self.fc(deepgrad.cat([h_n[-2], h_n[-1]], dim=-1))


class GRUClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(5, 7, num_layers=2, bidirectional=True)  # time-major
        self.fc = nn.Linear(14, 3)

    def forward(self, x):
        out, _ = self.rnn(x)
        return F.log_softmax(self.fc(out[-1]), dim=-1)


class Generator(nn.Module):
    def __init__(self, nz=12):
        super().__init__()
        self.nz = nz
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, 16, 4, 1, 0, bias=False), nn.BatchNorm2d(16), nn.ReLU(True),
            nn.ConvTranspose2d(16, 8, 4, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU(True),
            nn.ConvTranspose2d(8, 1, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, z):
        return self.main(z.reshape(z.shape[0], self.nz, 1, 1))


def _randomise_bn(model, seed=0):
    """Non-trivial running statistics and affine parameters, so eval-mode BN is really exercised."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = m.num_features
            if m.running_mean is not None:
                m.running_mean.array[...] = rng.normal(0, 0.5, c)
                m.running_var.array[...] = rng.uniform(0.5, 2.0, c)
            m.weight.array[...] = rng.uniform(0.5, 1.5, c)
            m.bias.array[...] = rng.normal(0, 0.2, c)
    return model


def _images(c, s, seed=1):
    return lambda n: deepgrad.tensor(np.random.default_rng(seed + n).standard_normal((n, c, s, s), dtype=np.float32))


def _tokens(vocab, t, seed=1):
    return lambda n: deepgrad.tensor(np.random.default_rng(seed + n).integers(0, vocab, (n, t)))


def test_lenet5(tmp_path):
    deepgrad.manual_seed(0)
    proto = _roundtrip(LeNet5(), _images(1, 28), tmp_path)
    assert _ops(proto).count("Conv") == 2 and _ops(proto).count("Gemm") == 3 and "Dropout" not in _ops(proto)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [1, 28, 28]


def test_vgg_with_batch_norm(tmp_path):
    deepgrad.manual_seed(0)
    model = _randomise_bn(small_vgg_bn())
    proto = _roundtrip(model, _images(3, 16), tmp_path)
    assert _ops(proto).count("BatchNormalization") == 3


def test_resnet_residual_additions(tmp_path):
    deepgrad.manual_seed(0)
    model = _randomise_bn(SmallResNet())
    proto = _roundtrip(model, _images(3, 8), tmp_path)
    assert _ops(proto).count("Add") == 2 and "GlobalAveragePool" in _ops(proto)


def test_lstm_classifier_bidirectional_two_layers(tmp_path):
    deepgrad.manual_seed(0)
    model = LSTMClassifier()
    proto = _roundtrip(model, _tokens(20, 7), tmp_path)
    lstms = [n for n in proto.graph.node if n.op_type == "LSTM"]
    assert len(lstms) == 2
    assert all(a.s == b"bidirectional" for n in lstms for a in n.attribute if a.name == "direction")
    assert "Gather" in _ops(proto)  # the embedding


def test_gru_classifier_dynamic_batch_and_time(tmp_path):
    deepgrad.manual_seed(0)
    model = GRUClassifier()
    rng = np.random.default_rng(0)
    axes = {"input": {0: "time", 1: "batch"}, "output": {0: "batch"}}
    path = tmp_path / "gru.onnx"
    proto = export(model, deepgrad.tensor(rng.standard_normal((6, 2, 5), dtype=np.float32)), path, dynamic_axes=axes)
    assert [n.op_type for n in proto.graph.node].count("GRU") == 2
    for t, b in ((6, 3), (9, 1), (4, 5)):
        x = rng.standard_normal((t, b, 5), dtype=np.float32)
        assert compare_with_onnxruntime(model, str(path), x) <= TOL


def test_dcgan_generator(tmp_path):
    deepgrad.manual_seed(0)
    model = _randomise_bn(Generator())
    rng = np.random.default_rng(0)
    proto = _roundtrip(model, lambda n: deepgrad.tensor(rng.standard_normal((n, 12), dtype=np.float32)), tmp_path)
    assert _ops(proto).count("ConvTranspose") == 3 and _ops(proto)[-1] == "Tanh"
    out_dims = proto.graph.output[0].type.tensor_type.shape.dim
    assert out_dims[0].dim_param == "batch" and [d.dim_value for d in out_dims[1:]] == [1, 16, 16]


def test_training_mode_is_restored_and_input_untouched(tmp_path):
    model = SmallResNet()
    model.train()
    model.layer1.bn1.eval()
    x = _images(3, 8)(2)
    before = x.numpy().copy()
    stats = model.stem[1].running_mean.numpy().copy()
    export(model, x, tmp_path / "m.onnx")
    assert model.training and model.stem[1].training and not model.layer1.bn1.training
    np.testing.assert_array_equal(x.numpy(), before)
    np.testing.assert_array_equal(model.stem[1].running_mean.numpy(), stats)  # traced in eval: no update


def test_static_shapes_without_dynamic_axes(tmp_path):
    model = LeNet5().eval()
    proto = export(model, _images(1, 28)(2), tmp_path / "m.onnx")
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == [2, 1, 28, 28]
    assert [d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim] == [2, 10]
    (got,) = run_onnxruntime(proto, _images(1, 28)(2))
    assert got.shape == (2, 10)


# ----------------------------------------------------------------------------- every other layer and tensor op
class Conv1dNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(4, 8, 3, padding="same", dilation=2)
        self.bn = nn.BatchNorm1d(8)
        self.conv2 = nn.Conv1d(8, 8, 3, stride=2, groups=2)
        self.pool1 = nn.MaxPool1d(2, ceil_mode=True)
        self.pool2 = nn.AvgPool1d(3, stride=1, padding=1, count_include_pad=False)
        self.pool3 = nn.SumPool1d(2)
        self.norm = nn.LayerNorm(8)
        self.wt = nn.Parameter(deepgrad.randn(8, 3, 3) * 0.3)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = F.gelu(self.bn(self.conv1(x)))
        x = self.pool3(self.pool2(self.pool1(self.conv2(x))))  # (N, 8, 2)
        x = F.elu(self.norm(x.permute(0, 2, 1)), alpha=0.7)  # (N, 2, 8)
        y = F.conv_transpose1d(x.transpose(1, 2), self.wt, stride=2, output_padding=1)  # (N, 3, 6)
        return self.fc(x).sum(dim=1) + y.mean(dim=(1, 2), keepdim=True).squeeze(-1)


class PoolingNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.sum = nn.SumPool2d(2, stride=1)
        self.avg = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True)  # a divisor that varies by position
        self.avg_div = nn.AvgPool2d(2, divisor_override=3)
        self.conv = nn.Conv2d(3, 6, 1)
        self.gn = nn.GroupNorm(2, 6)
        self.amax = nn.AdaptiveMaxPool2d(1)
        self.adaptive = nn.AdaptiveAvgPool2d((2, None))

    def forward(self, x):  # (N, 3, 9, 9)
        x = self.avg(self.sum(x))  # (N, 3, 5, 5)
        x = self.gn(self.conv(x))
        a = F.leaky_relu(x, 0.1) + F.softplus(x, beta=2.0, threshold=1.0) - F.sigmoid(x) * F.tanh(x)
        b = self.adaptive(self.avg_div(a))  # (N, 6, 2, 2)
        return deepgrad.cat([self.amax(a).flatten(1), b.flatten(1)], dim=1)


class TensorOpsNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(deepgrad.randn(6, 6) * 0.5)
        self.register_buffer("mask", deepgrad.tensor(np.arange(6) % 2 == 0))

    def forward(self, x):  # (N, 4, 6)
        y = (x * 2 + 1) / 3 - (1 - x) + 2 / (x.abs() + 1) + x ** 2 + 2 ** x.clamp(-1, 1)
        y = deepgrad.where(self.mask, y, x.exp().sqrt().log1p())
        y = F.pad(y, (1, 2, 0, -1), value=0.5)  # (N, 3, 9): negative padding crops
        z = deepgrad.stack([x, x.neg()], dim=1).reshape(x.shape[0], 8, 6) @ self.w  # (N, 8, 6)
        z = z[..., 1::2, ::2] + z[:, ::2, None, 0:3].squeeze(2).repeat(1, 1, 1)  # basic indexing, steps, None
        e = x[:, :1, :].expand(x.shape[0], 4, 6) * deepgrad.tensor(np.arange(1.0, 7.0, dtype=np.float32))
        r = deepgrad.cat([z.var(dim=2), z.std(dim=1, keepdim=True).squeeze(1)[:, :4], z.amax(dim=-1),
                          z.logsumexp(dim=2), y.mean(dim=(1, 2), keepdim=True)[:, 0], e.amin(dim=(1,)),
                          F.softmax(y, dim=-1).sum(dim=1), e.gather(2, deepgrad.tensor(np.zeros((1, 4, 1),
                                                                                       dtype=np.int64)).expand(
                              x.shape[0], 4, 1)).flatten(1)], dim=1)
        return r.maximum(deepgrad.tensor(-50.0)).minimum(deepgrad.tensor(50.0)), x[:, [2, 0]].transpose(1, 2)


class CellsNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTMCell(3, 4)
        self.gru = nn.GRUCell(4, 5, bias=False)
        self.rnn = nn.RNNCell(5, 2, nonlinearity="relu")

    def forward(self, x):  # (N, T, 3)
        h = c = g = r = None
        for t in range(x.shape[1]):
            h, c = self.lstm(x[:, t], None if h is None else (h, c))
            g = self.gru(h, g)
            r = self.rnn(g, r)
        return r


class StatefulRNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 4, num_layers=2)
        self.rnn = nn.RNN(4, 3, nonlinearity="relu", bias=False, bidirectional=True)

    def forward(self, x, h0, c0):  # unbatched: (T, 3), (2, 4), (2, 4)
        out, (h, c) = self.lstm(x, (h0, c0))
        y, _ = self.rnn(out)
        return y, h, c


def test_conv1d_pooling1d_layernorm_and_transposed_conv1d(tmp_path):
    deepgrad.manual_seed(0)
    rng = np.random.default_rng(0)
    model = _randomise_bn(Conv1dNet())
    _roundtrip(model, lambda n: deepgrad.tensor(rng.standard_normal((n, 4, 16), dtype=np.float32)), tmp_path)


def test_sum_average_adaptive_pooling_groupnorm_activations(tmp_path):
    deepgrad.manual_seed(0)
    proto = _roundtrip(PoolingNet(), _images(3, 9), tmp_path)
    assert "AveragePool" in _ops(proto) and "MaxPool" in _ops(proto)


@pytest.mark.parametrize("opset", [17, 18, 21])
def test_tensor_ops_multiple_outputs(tmp_path, opset):
    deepgrad.manual_seed(0)
    rng = np.random.default_rng(0)
    model = TensorOpsNet()
    axes = {"input": {0: "batch"}}
    proto = _roundtrip(model, lambda n: deepgrad.tensor(rng.standard_normal((n, 4, 6), dtype=np.float32)), tmp_path,
                       dynamic_axes=axes, opset=opset, output_names=["stats", "picked"])
    assert [o.name for o in proto.graph.output] == ["stats", "picked"]
    for out in proto.graph.output:  # output batch axes follow the input's, named after it
        assert out.type.tensor_type.shape.dim[0].dim_param == "batch"


def test_rnn_cells_unrolled(tmp_path):
    deepgrad.manual_seed(0)
    rng = np.random.default_rng(0)
    proto = _roundtrip(CellsNet(), lambda n: deepgrad.tensor(rng.standard_normal((n, 3, 3), dtype=np.float32)),
                       tmp_path)
    assert [_ops(proto).count(k) for k in ("LSTM", "GRU", "RNN")] == [3, 3, 3]


def test_unbatched_rnn_with_initial_states_and_dynamic_time(tmp_path):
    deepgrad.manual_seed(0)
    rng = np.random.default_rng(0)
    model = StatefulRNN()
    names = ["x", "h0", "c0"]
    args = [rng.standard_normal(s, dtype=np.float32) for s in ((5, 3), (2, 4), (2, 4))]
    path = tmp_path / "rnn.onnx"
    export(model, tuple(deepgrad.tensor(a) for a in args), path, input_names=names,
           output_names=["y", "h_n", "c_n"], dynamic_axes={"x": {0: "time"}})
    for t in (2, 7):
        feeds = [rng.standard_normal((t, 3), dtype=np.float32)] + [rng.standard_normal((2, 4), dtype=np.float32)
                                                                   for _ in range(2)]
        assert compare_with_onnxruntime(model, str(path), *feeds) <= TOL


# ----------------------------------------------------------------------------- what cannot be exported
class _Wrap(nn.Module):
    def __init__(self, fn, *children):
        super().__init__()
        self.body = nn.Sequential(*children) if children else nn.Identity()
        self.fn = fn

    def forward(self, x):
        return self.fn(self, x)


@pytest.mark.parametrize("fn, children, message", [
    (lambda m, x: m.body(x)[0], [nn.MaxPool2d(2, return_indices=True)], r"MaxPool in module 'body.0' .*return_indices"),
    (lambda m, x: deepgrad.where(x > 0, x, 0.0), [], r"Where in the model's forward .*computed outside"),
    (lambda m, x: F.mse_loss(x, x * 2), [], r"op PointwiseLoss .* no ONNX converter"),
    (lambda m, x: F.dropout(x, 0.5, training=True), [], r"Noise .*dropout with training=True"),
    (lambda m, x: x + deepgrad.zeros(x.shape[0], 1, 4, 4), [], r"Add .*changes with the input"),
    (lambda m, x: x.reshape(x.shape[0] * 3, -1).reshape(x.shape[0], 3, 16), [], None),  # exportable
])
def test_unexportable_ops_raise_a_clear_error(tmp_path, fn, children, message):
    model = _Wrap(fn, *children)
    x = _images(3, 4)(2)
    if message is None:
        export(model, x, tmp_path / "ok.onnx", dynamic_axes=BATCH)
        assert compare_with_onnxruntime(model, str(tmp_path / "ok.onnx"), _images(3, 4)(5)) == 0
        return
    with pytest.raises(ExportError, match=message):
        export(model, x, tmp_path / "bad.onnx", dynamic_axes=BATCH)


def test_packed_sequences_and_bad_arguments_are_rejected(tmp_path):
    lstm = nn.LSTM(3, 4)

    class Packed(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = lstm

        def forward(self, x):
            packed = nn.rnn_utils.pack_padded_sequence(x, [x.shape[0]] * x.shape[1])
            return self.lstm(packed)[1][0]

    x = deepgrad.randn(4, 2, 3)
    with pytest.raises(ExportError, match="packed sequences"):
        export(Packed(), x, tmp_path / "p.onnx")
    with pytest.raises(ValueError, match="neither an input nor an output"):
        export(lstm, x, tmp_path / "p.onnx", dynamic_axes={"inputs": [0]})
    with pytest.raises(ValueError, match="opset 9 is not supported"):
        export(lstm, x, tmp_path / "p.onnx", opset=9)
    with pytest.raises(ExportError, match="fails on an input grown"):  # the Linear fixes the flattened size
        export(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), deepgrad.randn(2, 3, 4), tmp_path / "p.onnx",
               dynamic_axes={"input": [0, 1]})


class MiscNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn_batch = nn.BatchNorm2d(2, track_running_stats=False)  # batch statistics even in eval
        self.unflatten = nn.Unflatten(1, (2, 4, 4))
        self.mlp = nn.Sequential(nn.Linear(32, 6), nn.BatchNorm1d(6), nn.GELU(approximate="tanh"), nn.Linear(6, 4),
                                 nn.LogSoftmax(dim=1))

    def forward(self, x):  # (N, 32)
        y = self.bn_batch(self.unflatten(x))
        return self.mlp(y.flatten(1)), F.softmax(y.mean(dim=1), dim=-1).max(dim=-1, keepdim=False)[0].detach()


def test_batch_statistics_bn_unflatten_bn1d_gelu_tanh(tmp_path):
    deepgrad.manual_seed(0)
    model = _randomise_bn(MiscNet())
    rng = np.random.default_rng(0)
    with pytest.raises(ExportError, match="(Gather|SelectAlong) in the model's forward .*argmax"):  # max(dim): argmax
        export(model, deepgrad.tensor(rng.standard_normal((3, 32), dtype=np.float32)), tmp_path / "m.onnx",
               dynamic_axes={"input": [0]})
    model.forward = lambda x: model.mlp(model.bn_batch(model.unflatten(x)).flatten(1))
    _roundtrip(model, lambda n: deepgrad.tensor(rng.standard_normal((n, 32), dtype=np.float32)), tmp_path,
               others=(2, 5))
