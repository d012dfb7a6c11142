"""ONNX export of the model zoo's own classes, and the ``deepgrad export`` command."""

import argparse

import numpy as np
import pytest

import deepgrad
import deepgrad.nn as nn

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
models = pytest.importorskip("deepgrad.models")

from deepgrad.cli_export import add_export_parser, register_model, resolve_model  # noqa: E402
from deepgrad.onnx import compare_with_onnxruntime, export  # noqa: E402

TOL = 1e-5
BATCH = {"input": {0: "batch"}, "output": {0: "batch"}}


def _randomise_bn(model, seed=0):
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = m.num_features
            m.running_mean.array[...] = rng.normal(0, 0.5, c)
            m.running_var.array[...] = rng.uniform(0.5, 2.0, c)
    return model


def _check(model, make, tmp_path, traced=2, others=(1, 4)):
    model.eval()
    path = str(tmp_path / "zoo.onnx")
    export(model, make(traced), path, dynamic_axes=BATCH)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    for n in others:
        assert compare_with_onnxruntime(model, path, make(n)) <= TOL


def _floats(*shape):
    return lambda n: np.random.default_rng(n).standard_normal((n, *shape)).astype(np.float32)


@pytest.mark.parametrize("build, shape", [
    (lambda: models.LeNet5(), (1, 28, 28)),
    (lambda: models.vgg11_bn(num_classes=10, width=1 / 8, hidden=16, input_size=8, in_channels=1), (1, 8, 8)),
    (lambda: models.resnet_cifar(depth=8, num_classes=10, in_channels=1, width=4), (1, 8, 8)),
    (lambda: models.DCGANGenerator(latent_dim=16, image_size=16, base_width=8), (16,)),
])
def test_zoo_image_models(tmp_path, build, shape):
    deepgrad.manual_seed(0)
    _check(_randomise_bn(build()), _floats(*shape), tmp_path)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_zoo_sequence_classifier_bidirectional_two_layers(tmp_path, cell):
    deepgrad.manual_seed(0)
    model = models.SequenceClassifier(num_classes=3, vocab_size=20, hidden_size=8, num_layers=2, cell=cell,
                                      bidirectional=True, embedding_dim=6, dropout=0.3)
    _check(model, lambda n: np.random.default_rng(n).integers(0, 20, (n, 7)), tmp_path)


# ----------------------------------------------------------------------------- the CLI
def tiny_cnn(num_classes: int = 3) -> nn.Module:
    """A test model reachable as ``--model <this module>:tiny_cnn``."""
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.SumPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 3 * 3, num_classes))


def _cli(argv):
    parser = argparse.ArgumentParser(prog="deepgrad")
    add_export_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args, parser)


def test_cli_exports_a_checkpoint_by_import_path(tmp_path, capsys):
    deepgrad.manual_seed(0)
    model = tiny_cnn(num_classes=5)
    ckpt = tmp_path / "tiny.safetensors"
    deepgrad.save(model.state_dict(), ckpt)
    argv = ["export", str(ckpt), "--model", f"{__name__}:tiny_cnn", "--config", '{"num_classes": 5}',
            "--input-shape", "1,1,8,8", "--format", "onnx", "--verify"]
    assert _cli(argv) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "OK" in out
    path = tmp_path / "tiny.onnx"
    proto = onnx.load(str(path))
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 8)).astype(np.float32)
    assert compare_with_onnxruntime(model, str(path), x) <= TOL  # the checkpoint's weights, not fresh ones


def test_cli_zoo_names_registry_and_save_model_metadata(tmp_path, capsys):
    deepgrad.manual_seed(0)
    lenet = models.LeNet5()
    ckpt = tmp_path / "lenet.safetensors"
    deepgrad.save(lenet.state_dict(), ckpt)
    assert _cli(["export", str(ckpt), "--model", "lenet5", "-o", str(tmp_path / "a.onnx")]) == 0  # shape inferred
    x = np.random.default_rng(1).standard_normal((2, 1, 28, 28)).astype(np.float32)
    assert compare_with_onnxruntime(lenet, str(tmp_path / "a.onnx"), x) <= TOL

    gen = models.DCGANGenerator(latent_dim=8, image_size=8, base_width=4)
    meta_ckpt = tmp_path / "gen.safetensors"
    models.save_model(gen, meta_ckpt, "dcgan_generator", {"latent_dim": 8, "image_size": 8, "base_width": 4})
    assert _cli(["export", str(meta_ckpt), "--dynamic-axes", "none"]) == 0  # no --model: the file says
    proto = onnx.load(str(tmp_path / "gen.onnx"))
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == [1, 8]

    register_model("tiny-cnn", tiny_cnn)
    assert resolve_model("TINY_CNN") is tiny_cnn
    capsys.readouterr()
    assert _cli(["export", str(ckpt), "--model", "no_such_model"]) == 1
    assert "not a known architecture" in capsys.readouterr().err
    assert _cli(["export", str(ckpt), "--model", "resnet18"]) == 1  # wrong weights: strict load fails clearly
    assert "resnet18" not in capsys.readouterr().out
    assert _cli(["export", str(tmp_path / "missing.safetensors"), "--model", "lenet5"]) == 2
