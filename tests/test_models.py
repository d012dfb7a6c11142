"""Model zoo: shapes, torchvision layouts (keys, shapes, strict loading of torchvision-shaped files),
forward parity against torch mirrors of torchvision's code, sequence models, DCGAN, the pretrained registry."""

import os

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import models
from deepgrad.models.loading import PretrainedLoadError, load_pretrained

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _bn(prefix, c):
    return {f"{prefix}.{k}": (() if k == "num_batches_tracked" else (c,)) for k in BN_KEYS}


def torchvision_vgg16_table(batch_norm: bool, num_classes: int = 1000) -> dict:
    """torchvision's vgg16 / vgg16_bn state_dict: key -> shape, written out from its published layout."""
    channels = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    if batch_norm:  # conv, bn, relu per conv; pool after blocks
        conv_idx = [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40]
    else:
        conv_idx = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    table, c_in = {}, 3
    for i, c in zip(conv_idx, channels):
        table[f"features.{i}.weight"] = (c, c_in, 3, 3)
        table[f"features.{i}.bias"] = (c,)
        if batch_norm:
            table.update(_bn(f"features.{i + 1}", c))
        c_in = c
    table.update({"classifier.0.weight": (4096, 25088), "classifier.0.bias": (4096,),
                  "classifier.3.weight": (4096, 4096), "classifier.3.bias": (4096,),
                  "classifier.6.weight": (num_classes, 4096), "classifier.6.bias": (num_classes,)})
    return table


def torchvision_resnet_table(blocks=(2, 2, 2, 2), num_classes=1000) -> dict:
    """torchvision's resnet18/34 (basic blocks) state_dict: key -> shape."""
    table = {"conv1.weight": (64, 3, 7, 7), **_bn("bn1", 64)}
    c_in = 64
    for stage, (n, c) in enumerate(zip(blocks, (64, 128, 256, 512))):
        for b in range(n):
            p = f"layer{stage + 1}.{b}"
            table[f"{p}.conv1.weight"] = (c, c_in if b == 0 else c, 3, 3)
            table.update(_bn(f"{p}.bn1", c))
            table[f"{p}.conv2.weight"] = (c, c, 3, 3)
            table.update(_bn(f"{p}.bn2", c))
            if b == 0 and stage > 0:
                table[f"{p}.downsample.0.weight"] = (c, c_in, 1, 1)
                table.update(_bn(f"{p}.downsample.1", c))
        c_in = c
    table.update({"fc.weight": (num_classes, 512), "fc.bias": (num_classes,)})
    return table


def _shapes(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _torch_file(table, path, seed=0):
    g = torch.Generator().manual_seed(seed)
    tensors = {k: (torch.randint(0, 100, s, generator=g) if k.endswith("num_batches_tracked")
                   else torch.randn(s, generator=g)) for k, s in table.items()}
    safetensors_torch.save_file(tensors, path)  # exactly the documented torchvision export
    return tensors


@pytest.fixture(scope="module")
def vgg16_model():
    dg.manual_seed(0)
    return models.vgg16()


def test_vgg16_layout_is_torchvision_and_loads_strict(vgg16_model, tmp_path):
    table = torchvision_vgg16_table(batch_norm=False)
    assert _shapes(vgg16_model) == table
    assert list(vgg16_model.state_dict()) == list(table)  # same order too
    assert vgg16_model.avgpool.output_size == (7, 7)
    path = str(tmp_path / "vgg16.safetensors")
    tensors = _torch_file(table, path)
    report = load_pretrained(vgg16_model, path, strict=True)
    assert report.ok and len(report.loaded) == 32
    for key in ("features.0.weight", "features.28.bias", "classifier.6.weight"):
        np.testing.assert_array_equal(vgg16_model.state_dict()[key].numpy(), tensors[key].numpy())


def test_resnet_layouts_are_torchvision(tmp_path):
    r18 = models.resnet18()
    table = torchvision_resnet_table()
    assert len(table) == 122 and _shapes(r18) == table
    path = str(tmp_path / "r18.safetensors")
    tensors = _torch_file(table, path, seed=1)
    assert load_pretrained(r18, path, strict=True).ok
    assert int(r18.bn1.num_batches_tracked.item()) == int(tensors["bn1.num_batches_tracked"])
    assert _shapes(models.resnet34()) == torchvision_resnet_table((3, 4, 6, 3))
    r50 = models.resnet50()
    assert len(r50.state_dict()) == 320  # torchvision's resnet50 state_dict size
    assert tuple(r50.layer1[0].downsample[0].weight.shape) == (256, 64, 1, 1)
    assert tuple(r50.fc.weight.shape) == (1000, 2048)


def test_vgg16_bn_layout():
    # built at 1/64 width only to keep the test light: the *indices* are what torchvision fixes
    small = models.vgg16_bn(width=1 / 64, hidden=16, input_size=32)
    table = torchvision_vgg16_table(batch_norm=True)
    assert list(small.state_dict()) == list(table)


# ----------------------------------------------------------------------------- forward parity with torch
def _torch_vgg(cfg, batch_norm, in_ch, pool_size, hidden, classes, input_size):
    tnn = torch.nn
    layers, c, side = [], in_ch, input_size
    for v in cfg:
        if v == "M":
            layers.append(tnn.MaxPool2d(2, 2) if side >= 2 else tnn.Identity())
            side = side // 2 if side >= 2 else side
        else:
            layers += [tnn.Conv2d(c, v, 3, padding=1)] + ([tnn.BatchNorm2d(v)] if batch_norm else []) + [tnn.ReLU()]
            c = v
    features = tnn.Sequential(*layers)
    classifier = tnn.Sequential(tnn.Linear(c * pool_size ** 2, hidden), tnn.ReLU(), tnn.Dropout(),
                                tnn.Linear(hidden, hidden), tnn.ReLU(), tnn.Dropout(), tnn.Linear(hidden, classes))

    class TorchVGG(tnn.Module):
        def __init__(self):
            super().__init__()
            self.features, self.avgpool, self.classifier = features, tnn.AdaptiveAvgPool2d(pool_size), classifier

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    return TorchVGG()


def _load_into_torch(tmodel, model):
    state = {k: torch.from_numpy(np.array(v.numpy())) for k, v in model.state_dict().items()}
    tmodel.load_state_dict(state, strict=True)
    return tmodel.eval()


@pytest.mark.parametrize("batch_norm,input_size", [(True, 8), (False, 32)])
def test_vgg_forward_matches_torch_mirror(batch_norm, input_size):
    dg.manual_seed(1)
    model = models.VGG(11, batch_norm, num_classes=7, in_channels=1, width=1 / 16, hidden=32, input_size=input_size)
    cfg = [max(1, round(v / 16)) if v != "M" else v for v in models.vgg.CFGS["A"]]
    pool = model.avgpool.output_size[0]
    tmodel = _load_into_torch(_torch_vgg(cfg, batch_norm, 1, pool, 32, 7, input_size), model)
    if batch_norm:  # non-trivial running statistics
        model.train()
        model(dg.randn(16, 1, input_size, input_size))
        tmodel = _load_into_torch(tmodel, model)
    x = np.random.default_rng(0).standard_normal((3, 1, input_size, input_size)).astype(np.float32)
    model.eval()
    with dg.no_grad():
        ours = model(dg.tensor(x)).numpy()
    np.testing.assert_allclose(ours, tmodel(torch.from_numpy(x)).detach().numpy(), rtol=1e-4, atol=1e-5)


def _torch_resnet(width, layers, classes, in_ch):
    tnn = torch.nn

    class Block(tnn.Module):
        def __init__(self, cin, c, stride):
            super().__init__()
            self.conv1, self.bn1 = tnn.Conv2d(cin, c, 3, stride, 1, bias=False), tnn.BatchNorm2d(c)
            self.conv2, self.bn2 = tnn.Conv2d(c, c, 3, 1, 1, bias=False), tnn.BatchNorm2d(c)
            self.downsample = (tnn.Sequential(tnn.Conv2d(cin, c, 1, stride, bias=False), tnn.BatchNorm2d(c))
                               if stride != 1 or cin != c else None)

        def forward(self, x):
            idt = x if self.downsample is None else self.downsample(x)
            return torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))) + idt)

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = tnn.Conv2d(in_ch, width, 7, 2, 3, bias=False), tnn.BatchNorm2d(width)
            self.maxpool = tnn.MaxPool2d(3, 2, 1)
            cin = width
            for i, n in enumerate(layers):
                c = width * 2 ** i
                blocks = [Block(cin, c, 1 if i == 0 else 2)] + [Block(c, c, 1) for _ in range(n - 1)]
                setattr(self, f"layer{i + 1}", tnn.Sequential(*blocks))
                cin = c
            self.fc = tnn.Linear(cin, classes)

        def forward(self, x):
            x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
            for i in range(len(layers)):
                x = getattr(self, f"layer{i + 1}")(x)
            return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))

    return Net()


def test_resnet_forward_matches_torch_mirror():
    dg.manual_seed(2)
    model = models.resnet18(num_classes=5, width=4, in_channels=2)
    model.train()
    model(dg.randn(8, 2, 32, 32))  # running statistics
    tmodel = _load_into_torch(_torch_resnet(4, [2, 2, 2, 2], 5, 2), model)
    x = np.random.default_rng(1).standard_normal((2, 2, 32, 32)).astype(np.float32)
    model.eval()
    with dg.no_grad():
        ours = model(dg.tensor(x)).numpy()
    np.testing.assert_allclose(ours, tmodel(torch.from_numpy(x)).detach().numpy(), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- shapes and errors
def test_small_models_forward_shapes():
    dg.manual_seed(0)
    assert models.MLP(64, [32, 16], 10)(dg.randn(4, 1, 8, 8)).shape == (4, 10)
    assert models.LeNet5()(dg.randn(2, 1, 28, 28)).shape == (2, 10)
    assert models.LeNet5(num_classes=3, in_channels=3, input_size=32)(dg.randn(2, 3, 32, 32)).shape == (2, 3)
    assert models.resnet_cifar(8, num_classes=4, in_channels=1, width=4)(dg.randn(2, 1, 8, 8)).shape == (2, 4)
    r20 = models.resnet_cifar(20, width=4)
    assert [len(getattr(r20, f"layer{i}")) for i in (1, 2, 3)] == [3, 3, 3] and not hasattr(r20, "layer4")
    v = models.vgg19_bn(num_classes=3, in_channels=1, width=1 / 32, hidden=8, input_size=8)
    assert v(dg.randn(2, 1, 8, 8)).shape == (2, 3)
    assert isinstance(v.features[-1], dg.nn.Identity)  # the 4th and 5th pools: identity on a 1x1 map
    with pytest.raises(ValueError, match="LeNet5: expected input"):
        models.LeNet5()(dg.randn(2, 1, 8, 8))
    with pytest.raises(ValueError, match="depth must be one of"):
        models.VGG(depth=12)
    with pytest.raises(ValueError, match="6n \\+ 2"):
        models.resnet_cifar(depth=10)


def test_dcgan_shapes_and_errors():
    dg.manual_seed(0)
    for size in (8, 16, 28, 32):
        g = models.DCGANGenerator(latent_dim=6, channels=1, image_size=size, base_width=4)
        d = models.DCGANDiscriminator(channels=1, image_size=size, base_width=4)
        img = g(dg.randn(3, 6))
        assert img.shape == (3, 1, size, size)
        assert float(np.abs(img.detach().numpy()).max()) <= 1.0  # tanh output
        assert d(img).shape == (3,)
    with pytest.raises(ValueError, match="image_size must be"):
        models.DCGANGenerator(image_size=12 * 3)
    with pytest.raises(ValueError, match="expected images"):
        models.DCGANDiscriminator(image_size=16)(dg.randn(2, 1, 8, 8))


def test_sequence_models():
    dg.manual_seed(0)
    clf = models.SequenceClassifier(num_classes=3, vocab_size=11, hidden_size=8, cell="gru", bidirectional=True)
    assert clf(dg.randint(0, 11, (4, 6))).shape == (4, 3)
    feat = models.SequenceClassifier(num_classes=2, input_size=5, hidden_size=8, num_layers=2, cell="lstm")
    assert feat(dg.randn(4, 7, 5)).shape == (4, 2)
    assert models.Forecaster(input_size=1, hidden_size=8, horizon=3)(dg.randn(4, 12, 1)).shape == (4, 3)
    assert models.Forecaster(input_size=2, hidden_size=8, horizon=3, cell="rnn")(dg.randn(4, 12, 2)).shape == (4, 3, 2)
    with pytest.raises(ValueError, match="exactly one of"):
        models.SequenceClassifier(num_classes=2)


def test_char_language_model_learns_and_samples():
    text = "abcabcabcabcabcabcabcabc" * 4
    vocab = models.CharVocab(text)
    assert vocab.decode(vocab.encode("cab")) == "cab"
    dg.manual_seed(0)
    lm = models.CharLanguageModel(len(vocab), embedding_dim=8, hidden_size=16)
    ids = vocab.encode(text)
    x, y = dg.tensor(ids[None, :-1]), dg.tensor(ids[None, 1:])
    opt = dg.optim.Adam(lm.parameters(), lr=0.05)
    for _ in range(60):
        logits, _ = lm(x)
        loss = dg.nn.functional.cross_entropy(logits.reshape(-1, len(vocab)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1
    out = vocab.decode(lm.sample(vocab.encode("ab"), 9, temperature=0.5, generator=0))
    assert out == "cabcabcab"
    assert lm.training  # sampling restores the mode
    with pytest.raises(ValueError, match="prefix"):
        lm.sample([], 3)


# ----------------------------------------------------------------------------- pretrained registry
def _digits_accuracy(name, model):
    from deepgrad.models.pretrained import load_entry_data
    from deepgrad.train import model_accuracy

    _, _, xte, yte = load_entry_data(models.pretrained_info(name))
    return model_accuracy(model, xte, yte)


@pytest.mark.parametrize("name", ["lenet5_digits", "vgg11_bn_digits"])
def test_shipped_weights_load_by_name_and_score(name):
    info = models.pretrained_info(name)
    assert os.path.getsize(info.path) < 700 * 1024
    model = models.load_model(name)
    acc = _digits_accuracy(name, model)
    assert acc >= 0.95
    assert abs(acc - info.test_accuracy) < 0.003  # what the registry recorded when the file was made


def test_load_model_from_user_path_and_errors(tmp_path):
    dg.manual_seed(3)
    model = models.MLP(4, [5], 2)
    path = models.save_model(model, tmp_path / "mlp.safetensors", "mlp",
                             {"in_features": 4, "hidden_features": [5], "out_features": 2})
    again = models.load_model(path)
    x = dg.randn(3, 4)
    np.testing.assert_array_equal(again(x).detach().numpy(), model.eval()(x).detach().numpy())
    dg.save(model.state_dict(), tmp_path / "bare.safetensors")
    with pytest.raises(PretrainedLoadError, match="no deepgrad architecture metadata"):
        models.load_model(tmp_path / "bare.safetensors")
    with pytest.raises(PretrainedLoadError, match="neither a shipped weights name"):
        models.load_model("resnet1000_imagenet")


def test_reproduce_lenet_weights_from_scratch(tmp_path):
    """The shipped weights come back bit for bit from their seeded recipe — with the BLAS kernels they were
    made with. OpenBLAS picks its GEMM kernels by CPU (AVX2 "Haswell" or AVX-512 "SkylakeX"...), and their
    different rounding grows over a training run, so the reproduction runs in a process pinned to the
    kernels of the shipped file (OPENBLAS_CORETYPE must be set before NumPy loads)."""
    import subprocess
    import sys

    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    if " avx2" not in flags:
        pytest.skip("the shipped weights were made with OpenBLAS's AVX2 (Haswell) kernels; this CPU has no AVX2")
    out = tmp_path / "lenet.safetensors"
    script = ("import sys; from deepgrad import models; "
              "model, acc = models.pretrained.reproduce('lenet5_digits', sys.argv[1]); print(acc)")
    env = dict(os.environ, OPENBLAS_CORETYPE="Haswell")
    done = subprocess.run([sys.executable, "-c", script, str(out)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    from deepgrad.models.loading import read_safetensors

    info = models.pretrained_info("lenet5_digits")
    assert abs(float(done.stdout.split()[-1]) - info.test_accuracy) <= 1e-4
    new, old = read_safetensors(out), read_safetensors(info.path)
    assert sorted(new) == sorted(old)
    for k in old:
        np.testing.assert_array_equal(new[k], old[k], err_msg=k)
