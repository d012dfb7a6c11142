"""A registry of small weights that deepgrad trained itself and ships (no download, ever), model building
by architecture name, and saving/loading models with their architecture in the file's metadata.

>>> list_pretrained()
['lenet5_digits', 'vgg11_bn_digits']
>>> model = load_model("lenet5_digits")          # built and loaded, strict
>>> info = pretrained_info("lenet5_digits")
>>> save_model(model, "runs/lenet/model.safetensors", info.arch, info.config)
'runs/lenet/model.safetensors'
>>> model = load_model("runs/lenet/model.safetensors")   # any file written by save_model / `deepgrad train`
>>> type(model).__name__, model.training
('LeNet5', False)

Every shipped file is re-made from scratch, seeded, by ``python scripts/train_pretrained.py`` (which calls
:func:`reproduce`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import nn
from ..creation import manual_seed
from ..io import save
from ..kernels.parallel import get_num_threads, set_num_threads
from .alexnet import alexnet
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .gan2d import MLPDiscriminator, MLPGenerator
from .googlenet import googlenet
from .inception import inception_v3
from .lenet import LeNet5
from .loading import PretrainedLoadError, load_pretrained, safetensors_metadata
from .mlp import MLP
from .resnet import resnet18, resnet34, resnet50, resnet_cifar
from .sequence import CharLanguageModel, Forecaster, SequenceClassifier
from .transformer import TransformerClassifier, TransformerLanguageModel
from .vgg import VGG, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "mlp": MLP, "lenet5": LeNet5, "vgg": VGG,
    "vgg11": vgg11, "vgg11_bn": vgg11_bn, "vgg13": vgg13, "vgg13_bn": vgg13_bn,
    "vgg16": vgg16, "vgg16_bn": vgg16_bn, "vgg19": vgg19, "vgg19_bn": vgg19_bn,
    "resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50, "resnet_cifar": resnet_cifar,
    "alexnet": alexnet, "googlenet": googlenet, "inception_v3": inception_v3,
    "sequence_classifier": SequenceClassifier, "forecaster": Forecaster, "char_lm": CharLanguageModel,
    "transformer_classifier": TransformerClassifier, "transformer_lm": TransformerLanguageModel,
    "dcgan_generator": DCGANGenerator, "dcgan_discriminator": DCGANDiscriminator,
    "mlp_generator": MLPGenerator, "mlp_discriminator": MLPDiscriminator,
}


def build_model(arch: str, **config: Any) -> nn.Module:
    """A freshly initialised model by architecture name (see :data:`ARCHITECTURES`) and keyword config."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"build_model: unknown architecture {arch!r}; available: {', '.join(sorted(ARCHITECTURES))}")
    return ARCHITECTURES[arch](**config)


@dataclass(frozen=True)
class PretrainedEntry:
    """One shipped weight file: how to build the model, the data it expects, how it was trained and the
    test accuracy recorded when it was made."""

    name: str
    arch: str
    config: dict
    filename: str
    description: str
    data: dict = field(default_factory=dict)      # load_digits(**data): split, size and normalisation
    recipe: dict = field(default_factory=dict)    # fit_classifier settings: epochs, lr, batch_size, seed, ...
    test_accuracy: float = 0.0

    @property
    def path(self) -> str:
        return os.path.join(WEIGHTS_DIR, self.filename)


PRETRAINED: dict[str, PretrainedEntry] = {
    "lenet5_digits": PretrainedEntry(
        name="lenet5_digits", arch="lenet5", config={"num_classes": 10, "in_channels": 1, "input_size": 28},
        filename="lenet5_digits.safetensors",
        description="LeNet-5 (ReLU, max pool) on scikit-learn's digits, 28x28 view, standardised with the "
                    "training pixels' mean and std: load_digits(size=28, test_size=0.2, seed=0)",
        data={"size": 28, "test_size": 0.2, "seed": 0},
        recipe={"epochs": 20, "lr": 2e-3, "batch_size": 64, "seed": 0, "shift": 2, "cosine": True},
        test_accuracy=0.9749,
    ),
    "vgg11_bn_digits": PretrainedEntry(
        name="vgg11_bn_digits", arch="vgg11_bn",
        config={"num_classes": 10, "in_channels": 1, "width": 0.125, "hidden": 64, "input_size": 8, "dropout": 0.3},
        filename="vgg11_bn_digits.safetensors",
        description="VGG-11 with batch norm at 1/8 width (8..64 channels, 64-unit classifier) on scikit-learn's "
                    "8x8 digits, standardised: load_digits(size=8, test_size=0.2, seed=0)",
        data={"size": 8, "test_size": 0.2, "seed": 0},
        recipe={"epochs": 20, "lr": 2e-3, "batch_size": 64, "seed": 0, "shift": 0, "cosine": True},
        test_accuracy=0.9582,
    ),
}


def list_pretrained() -> list[str]:
    """Names of the shipped weights."""
    return sorted(PRETRAINED)


def pretrained_info(name: str) -> PretrainedEntry:
    """The registry entry for ``name``."""
    if name not in PRETRAINED:
        raise ValueError(f"unknown pretrained weights {name!r}; shipped: {', '.join(list_pretrained())}")
    return PRETRAINED[name]


def weights_path(name: str) -> str:
    """Path of a shipped weights file."""
    return pretrained_info(name).path


def save_model(model: nn.Module, path: str | os.PathLike, arch: str, config: dict | None = None,
               metadata: dict[str, str] | None = None) -> str:
    """Write ``model``'s state dict to a safetensors file with its architecture and config in the metadata,
    so :func:`load_model` can rebuild it from the path alone. Returns the path."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"save_model: unknown architecture {arch!r}; available: {', '.join(sorted(ARCHITECTURES))}")
    meta = {"format": "pt", "deepgrad.arch": arch, "deepgrad.config": json.dumps(config or {}, sort_keys=True)}
    meta.update(metadata or {})
    save(model.state_dict(), path, metadata=meta)
    return os.fspath(path)


def load_model(name_or_path: str | os.PathLike) -> nn.Module:
    """A model with weights: a shipped name (:func:`list_pretrained`) or a safetensors file written by
    :func:`save_model` (or ``deepgrad train``). Keys and shapes must match exactly; for other files build
    the model yourself and call :func:`deepgrad.transfer.load_pretrained`."""
    key = os.fspath(name_or_path)
    if key in PRETRAINED:
        entry = PRETRAINED[key]
        model = build_model(entry.arch, **entry.config)
        load_pretrained(model, entry.path, strict=True)
        return model.eval()
    if not os.path.exists(key):
        raise PretrainedLoadError(f"load_model: {key!r} is neither a shipped weights name "
                                  f"({', '.join(list_pretrained())}) nor an existing file")
    meta = safetensors_metadata(key)
    if "deepgrad.arch" not in meta:
        raise PretrainedLoadError(
            f"load_model: {key!r} carries no deepgrad architecture metadata (it was not written by save_model); "
            f"build the model and call deepgrad.transfer.load_pretrained(model, {key!r})")
    model = build_model(meta["deepgrad.arch"], **json.loads(meta.get("deepgrad.config", "{}")))
    load_pretrained(model, key, strict=True)
    return model.eval()


def load_entry_data(entry: PretrainedEntry):
    """``(x_train, y_train, x_test, y_test)`` arrays of the dataset ``entry`` was trained on."""
    from ..data.datasets import load_digits

    train, test = load_digits(**entry.data)
    return (train.tensors[0].numpy(), train.tensors[1].numpy(), test.tensors[0].numpy(), test.tensors[1].numpy())


def reproduce(name: str, path: str | os.PathLike | None = None, epochs: int | None = None) -> tuple[nn.Module, float]:
    """Train ``name``'s model from scratch with its seeded recipe and write it to ``path`` (default: the
    shipped file). Returns ``(model, test accuracy)``. ``epochs`` overrides the recipe (quick checks).

    Runs on one thread: OpenBLAS rounds a GEMM differently with more threads, and over a training
    run that drift grows, so a pinned thread count makes the result the same on every machine
    with the same BLAS, whatever its cores."""
    from ..train.metrics import model_accuracy
    from ._fit import fit_classifier

    threads = get_num_threads()
    set_num_threads(1)
    try:
        entry = pretrained_info(name)
        recipe = dict(entry.recipe)
        if epochs is not None:
            recipe["epochs"] = epochs
        manual_seed(recipe["seed"])  # initial weights and dropout masks
        model = build_model(entry.arch, **entry.config)
        xtr, ytr, xte, yte = load_entry_data(entry)
        fit_classifier(model, xtr, ytr, recipe.pop("epochs"), **recipe)
        acc = model_accuracy(model, xte, yte)
        save_model(model.eval(), entry.path if path is None else path, entry.arch, entry.config,
                   {"deepgrad.name": name, "deepgrad.test_accuracy": f"{acc:.4f}",
                    "deepgrad.description": entry.description})
        return model, acc
    finally:
        set_num_threads(threads)
