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

from .cli_common import CommandError, handles_errors

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
            factory = getattr(_import_from_cwd(module_name), attr)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"--model {name!r}: cannot import {attr!r} from {module_name!r} ({e}); the module must "
                             f"be importable from the current directory or the Python path") from e
        if not callable(factory):
            raise ValueError(f"--model {name!r} is not callable")
        return factory
    models = available_models()
    if _key(name) not in models:
        raise ValueError(f"--model {name!r} is not a known architecture; available: {', '.join(sorted(models))} "
                         f"(or give package.module:callable)")
    return models[_key(name)]


def _import_from_cwd(module_name: str):
    """Import ``module_name`` the way ``python -m`` would: the current directory first. The ``deepgrad``
    console script's sys.path starts with its own bin directory instead, so ``--model mynet:Net`` would
    otherwise not find ``./mynet.py``."""
    cwd = os.getcwd()
    added = "" not in sys.path and cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    finally:
        if added:
            sys.path.remove(cwd)


def _checkpoint_arch(path: str) -> tuple[str | None, dict]:
    """(architecture, config) stored by ``save_model`` in the safetensors metadata, if any."""
    from .io import metadata

    meta = metadata(path)
    try:
        config = json.loads(meta.get("deepgrad.config", "{}"))
    except (json.JSONDecodeError, RecursionError):
        raise ValueError(f"{path}: its 'deepgrad.config' metadata is not valid JSON; give --model and "
                         f"--config") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: its 'deepgrad.config' metadata is not a JSON object; give --model and --config")
    return meta.get("deepgrad.arch"), config


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
        try:
            given = json.loads(args.config)
        except (json.JSONDecodeError, RecursionError) as e:
            raise ValueError(f"--config is not valid JSON ({e}): give an object such as '{{\"num_classes\": 10}}'"
                             ) from None
        if not isinstance(given, dict):
            raise ValueError(f"--config must be a JSON object of constructor arguments, got a {type(given).__name__}")
        config.update(given)
    factory = resolve_model(arch)
    try:
        model = factory(**config)
    except TypeError as e:
        raise ValueError(f"--model {arch} does not accept the config {config} ({e}): check --config") from None
    from .io import load

    _load_strict(model, load(args.checkpoint), args.checkpoint, arch)
    return arch, model.eval()


def _load_strict(model, state: dict, path: str, arch: str) -> None:
    """Load every tensor or refuse with a one-line summary (not one line per key)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        parts = [f"{len(keys)} {what} (e.g. {keys[0]})" for what, keys in
                 (("missing", missing), ("unexpected", unexpected), ("with another shape", shapes)) if keys]
        raise ValueError(f"the tensors in {path} do not fit --model {arch}: {', '.join(parts)}; give the --model "
                         f"and --config the weights were trained with")
    model.load_state_dict(state, strict=True)


def _example(model, args, batch: int | None = None, seed: int = 0) -> np.ndarray:
    if args.input_shape:
        shape = tuple(int(s) for s in args.input_shape.replace("x", ",").split(",") if s.strip())
        dtype = args.input_dtype or "float32"
    else:
        shape, dtype = example_input_spec(model)
        dtype = args.input_dtype or dtype
    if batch is not None:
        shape = (batch, *shape[1:])
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind in "iu":
        # varied token ids (all zeros would hide a wrong gather or a mixed-up axis), each valid for every
        # embedding table of the model
        return rng.integers(0, _token_bound(model), size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _token_bound(model) -> int:
    """The smallest ``num_embeddings`` of the model's embedding tables (ids below it are valid), else 2."""
    from .nn import Embedding

    sizes = [int(m.num_embeddings) for m in model.modules() if isinstance(m, Embedding)]
    return min(sizes) if sizes else 2


def _refuse_training_checkpoint(path: str) -> None:
    """A ``Trainer`` checkpoint (``best.ckpt``/``last.ckpt``) holds optimizer and trainer state besides the
    weights: say so and point to the weights file instead of listing every key that does not fit."""
    from .io import metadata
    from .train.checkpoint import FORMAT

    try:
        meta = metadata(path)
    except ValueError as e:
        raise CommandError(f"{e}", 1) from None
    if meta.get("format") != FORMAT:
        return
    weights = os.path.join(os.path.dirname(path), "model.safetensors")
    if os.path.exists(weights):
        hint = f"export the model weights {weights} instead (deepgrad train writes them next to the checkpoints)"
    else:
        hint = ("load it with Trainer.load_checkpoint and save the weights with deepgrad.models.save_model "
                "(or deepgrad.save(model.state_dict(), 'model.safetensors')), then export that file")
    raise CommandError(f"{path} is a training checkpoint (weights plus optimizer and trainer state), not model "
                       f"weights: {hint}")


@handles_errors("export", "-o")
def run_export(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    """Handler of ``deepgrad export``; returns the exit status."""
    if not os.path.exists(args.checkpoint):
        raise CommandError(f"no such checkpoint {args.checkpoint!r}: give the path of a safetensors weights file")
    if args.verify:
        try:
            import onnxruntime  # noqa: F401 - only checked here, before the export's work
        except ImportError:
            raise CommandError("--verify needs onnxruntime, which is not installed: pip install 'deepgrad[onnx]' "
                               "(or pip install onnxruntime), or drop --verify", 1) from None
    _refuse_training_checkpoint(args.checkpoint)
    try:
        from .onnx import ExportError, compare_with_onnxruntime, export
    except ImportError as e:
        raise CommandError(str(e), 1) from None
    try:
        arch, model = _build(args)
        x = _example(model, args)
        axes = [] if args.dynamic_axes.strip().lower() == "none" else [
            int(a) for a in args.dynamic_axes.split(",") if a.strip()]
        names = {a % x.ndim: ("batch" if a % x.ndim == 0 else f"dim{a % x.ndim}") for a in axes}
        out = args.output or os.path.splitext(args.checkpoint)[0] + ".onnx"
        proto = export(model, x, out, dynamic_axes={"input": names} if names else None, opset=args.opset)
    except (ValueError, TypeError, RuntimeError, ImportError) as e:  # ExportError is a RuntimeError
        kind = "" if isinstance(e, (ExportError, ValueError, ImportError)) else f"{type(e).__name__}: "
        raise CommandError(f"{kind}{e}", 1) from None
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    print(f"wrote {out}: {arch} as ONNX opset {args.opset}, {len(proto.graph.node)} nodes, input {dims} "
          f"{x.dtype}")
    if args.verify:
        check = x if not names or 0 not in names else _example(model, args, batch=2, seed=1)  # another batch size
        err = compare_with_onnxruntime(model, out, check)
        ok = err <= 1e-4
        print(f"onnxruntime vs deepgrad on input {list(check.shape)}: max normalised error {err:.2e} "
              f"({'OK' if ok else 'MISMATCH'})")
        if not ok:
            raise CommandError(f"the ONNX file {out} computes other numbers than the model (max normalised error "
                               f"{err:.2e} > 1e-4): please report this with the model", 1)
    return 0
