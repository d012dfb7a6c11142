"""``deepgrad export CHECKPOINT --model NAME --format onnx``: a trained model as an ONNX file.

    deepgrad export runs/lenet.safetensors --model lenet5                     # -> runs/lenet.onnx
    deepgrad export clf.safetensors --model sequence_classifier \\
        --config '{"num_classes": 2, "vocab_size": 50, "bidirectional": true}' --input-shape 1,20 --input-dtype int64
    deepgrad export model.safetensors                                         # written by save_model: arch inside
    deepgrad export net.safetensors --model mypackage.nets:build_net --input-shape 1,3,32,32 --verify

``--model`` names an architecture of :data:`deepgrad.models.ARCHITECTURES`, one added with
:func:`register_model`, or any ``package.module:callable`` returning a Module. The checkpoint is a
safetensors state dict (``deepgrad.save(model.state_dict(), path)`` or ``save_model``), loaded strictly.
The batch axis stays dynamic unless ``--dynamic-axes none``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable

import numpy as np

EXTRA_MODELS: dict[str, Callable] = {}


def register_model(name: str, factory: Callable) -> None:
    """Make ``factory(**config)`` available to ``deepgrad export --model name``."""
    EXTRA_MODELS[_key(name)] = factory


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def available_models() -> dict[str, Callable]:
    """Architecture name -> constructor: the model zoo's registry plus :func:`register_model`'s."""
    try:
        from .models import ARCHITECTURES
    except ImportError:  # the zoo is optional for this command
        ARCHITECTURES = {}
    return {**{_key(k): v for k, v in ARCHITECTURES.items()}, **EXTRA_MODELS}


def resolve_model(name: str) -> Callable:
    """The constructor named ``name``: a registered architecture, or ``package.module:callable``."""
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"--model {name!r}: cannot import {attr!r} from {module_name!r} ({e})") from e
        if not callable(factory):
            raise ValueError(f"--model {name!r} is not callable")
        return factory
    models = available_models()
    if _key(name) not in models:
        raise ValueError(f"--model {name!r} is not a known architecture; available: {', '.join(sorted(models))} "
                         f"(or give package.module:callable)")
    return models[_key(name)]


def _checkpoint_arch(path: str) -> tuple[str | None, dict]:
    """(architecture, config) stored by ``save_model`` in the safetensors metadata, if any."""
    from safetensors import safe_open

    with safe_open(path, "np") as f:
        meta = f.metadata() or {}
    return meta.get("deepgrad.arch"), json.loads(meta.get("deepgrad.config", "{}"))


def example_input_spec(model) -> tuple[tuple, str]:
    """(shape, dtype) of a batch-1 example input, read from the attributes the zoo models keep."""
    from .nn import Embedding

    if isinstance(getattr(model, "embedding", None), Embedding):
        raise ValueError(f"{type(model).__name__} reads token ids: give --input-shape 1,T and --input-dtype int64")
    if hasattr(model, "latent_dim"):
        return (1, int(model.latent_dim)), "float32"
    for channels, size in (("in_channels", "input_size"), ("channels", "image_size")):
        if hasattr(model, channels) and hasattr(model, size):
            s = int(getattr(model, size))
            return (1, int(getattr(model, channels)), s, s), "float32"
    if hasattr(model, "in_features"):
        return (1, int(model.in_features)), "float32"
    raise ValueError(f"cannot infer an example input for {type(model).__name__}: give --input-shape (e.g. 1,3,32,32)")


def add_export_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``export`` command to a ``deepgrad`` subparsers object; its handler is ``run_export``."""
    p = subparsers.add_parser(
        "export", help="write a trained model as an ONNX file (checked, optionally verified in onnxruntime)",
        description="Load a safetensors checkpoint into a model and export it to ONNX.",
    )
    p.add_argument("checkpoint", help="safetensors state dict (deepgrad.save(model.state_dict(), ...) or save_model)")
    p.add_argument("--model", default=None,
                   help="architecture name (deepgrad.models.ARCHITECTURES: lenet5, vgg11_bn, resnet_cifar, "
                        "sequence_classifier, dcgan_generator, ...) or package.module:callable; optional when the "
                        "checkpoint was written by save_model")
    p.add_argument("--config", default=None, help="JSON keyword arguments of the model constructor")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="output format (onnx)")
    p.add_argument("-o", "--output", default=None, help="output path (default: the checkpoint's with .onnx)")
    p.add_argument("--input-shape", default=None,
                   help="example input shape, comma-separated (default: read from the model, e.g. 1,1,28,28)")
    p.add_argument("--input-dtype", default=None, help="example input dtype: float32 (default) or int64 (token ids)")
    p.add_argument("--dynamic-axes", default="0",
                   help="comma-separated input axes that may vary (default 0, the batch); 'none' for fixed shapes")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (17 to 21; default 17)")
    p.add_argument("--verify", action="store_true", help="run the file in onnxruntime on a batch of 2 and compare")
    p.set_defaults(handler=run_export)
    return p


def _build(args) -> tuple:
    arch, config = args.model, {}
    if arch is None:
        arch, config = _checkpoint_arch(args.checkpoint)
        if arch is None:
            raise ValueError(f"{args.checkpoint} carries no architecture (it was not written by save_model): give "
                             f"--model")
    if args.config:
        config.update(json.loads(args.config))
    model = resolve_model(arch)(**config)
    from .io import load

    model.load_state_dict(load(args.checkpoint), strict=True)
    return arch, model.eval()


def _example(model, args) -> np.ndarray:
    if args.input_shape:
        shape = tuple(int(s) for s in args.input_shape.replace("x", ",").split(",") if s.strip())
        dtype = args.input_dtype or "float32"
    else:
        shape, dtype = example_input_spec(model)
        dtype = args.input_dtype or dtype
    rng = np.random.default_rng(0)
    if np.dtype(dtype).kind in "iu":
        return np.zeros(shape, dtype=dtype)  # token id 0 exists in every vocabulary
    return rng.standard_normal(shape).astype(dtype)


def run_export(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    """Handler of ``deepgrad export``; returns the exit status."""
    from .onnx import ExportError, compare_with_onnxruntime, export

    if not os.path.exists(args.checkpoint):
        print(f"deepgrad export: no such checkpoint {args.checkpoint!r}", file=sys.stderr)
        return 2
    try:
        arch, model = _build(args)
        x = _example(model, args)
        axes = [] if args.dynamic_axes.strip().lower() == "none" else [
            int(a) for a in args.dynamic_axes.split(",") if a.strip()]
        names = {a % x.ndim: ("batch" if a % x.ndim == 0 else f"dim{a % x.ndim}") for a in axes}
        out = args.output or os.path.splitext(args.checkpoint)[0] + ".onnx"
        proto = export(model, x, out, dynamic_axes={"input": names} if names else None, opset=args.opset)
    except (ValueError, TypeError, RuntimeError, ImportError) as e:  # ExportError is a RuntimeError
        kind = "" if isinstance(e, ExportError) else f"{type(e).__name__}: "
        print(f"deepgrad export: {kind}{e}", file=sys.stderr)
        return 1
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    print(f"wrote {out}: {arch} as ONNX opset {args.opset}, {len(proto.graph.node)} nodes, input {dims} "
          f"{x.dtype}")
    if args.verify:
        check = x if not names or 0 not in names else np.concatenate([x, x], axis=0)
        err = compare_with_onnxruntime(model, out, check)
        ok = err <= 1e-4
        print(f"onnxruntime vs deepgrad on input {list(check.shape)}: max normalised error {err:.2e} "
              f"({'OK' if ok else 'MISMATCH'})")
        return 0 if ok else 1
    return 0
