"""ONNX export of the issue-19 ops models use: flip, roll, cumsum, tril/triu, pad reflect/replicate/circular,
interpolate (nearest, nearest-exact, bilinear, bicubic, with size or scale_factor) and the maths with an ONNX
op — exported at one batch size, checked, and run in onnxruntime at others against deepgrad's output."""

import pytest

import deepgrad
import deepgrad.nn as nn
import deepgrad.nn.functional as F

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from deepgrad.onnx import ExportError, compare_with_onnxruntime, export  # noqa: E402

BATCH = {"input": {0: "batch"}, "output": {0: "batch"}}


def _roundtrip(model, shape, tmp_path):
    path = tmp_path / "model.onnx"
    deepgrad.manual_seed(0)
    export(model, deepgrad.randn(2, *shape), path, dynamic_axes=BATCH)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    for n in (1, 3):
        err = compare_with_onnxruntime(model, str(path), deepgrad.randn(n, *shape))
        assert err <= 1e-5, f"batch {n}: max normalised error {err:.3g}"


class Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


CASES = {
    "flip_roll": lambda x: x.flip(-1, 2) + deepgrad.roll(x, (1, -2), (1, 3)),
    "cumsum_tril_triu": lambda x: x.cumsum(-1) + x.tril(1) - x.triu(-1) * 2,
    "maths": lambda x: x.floor() + x.ceil() + x.round() + x.erf() + (x * 0.5).atan() + x.sinh() + x.tan()
    + (x.abs() + 1).reciprocal() + (x * 0.3).asin(),
    "pad_reflect": lambda x: F.pad(x, (2, 1, 1, 2), mode="reflect"),
    "pad_replicate": lambda x: F.pad(x, (3, 0, 0, 1), mode="replicate"),
    "pad_circular": lambda x: F.pad(x, (1, 2, 2, 0), mode="circular"),
    "nearest_scale": lambda x: F.interpolate(x, scale_factor=2),
    "nearest_odd_scale": lambda x: F.interpolate(x, scale_factor=1.5),
    "nearest_size": lambda x: F.interpolate(x, size=(7, 5)),
    "nearest_exact": lambda x: F.interpolate(x, size=(3, 7), mode="nearest-exact"),
    "bilinear": lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"),
    "bilinear_size": lambda x: F.interpolate(x, size=(6, 9), mode="bilinear"),
    "bilinear_align": lambda x: F.interpolate(x, size=(7, 3), mode="bilinear", align_corners=True),
    "bicubic": lambda x: F.interpolate(x, scale_factor=2, mode="bicubic"),
    "upsample_module": nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Upsample(scale_factor=2, mode="bilinear"),
                                     nn.ReflectionPad2d(1), nn.Conv2d(4, 2, 3)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_issue19_ops_export_and_match_onnxruntime(name, tmp_path):
    fn = CASES[name]
    model = fn if isinstance(fn, nn.Module) else Lambda(fn)
    _roundtrip(model, (3, 4, 5), tmp_path)


def test_ops_without_a_converter_say_so(tmp_path):
    with pytest.raises(ExportError, match="cannot export SelectAlong"):  # sort: indices computed outside the graph
        export(Lambda(lambda x: x.sort(-1).values), deepgrad.randn(2, 3), tmp_path / "m.onnx",
               dynamic_axes=BATCH)
