"""Transfer learning: freeze and unfreeze parts of a model, replace its classifier head, pull named
intermediate activations, give shallower layers smaller learning rates, and load pretrained weights with
a readable report of what did and did not fit.

>>> from deepgrad.models.pretrained import weights_path
>>> model = deepgrad.models.vgg11_bn(num_classes=10, width=1 / 8, hidden=64, input_size=8, in_channels=1)
>>> report = load_pretrained(model, weights_path("vgg11_bn_digits"))   # -> LoadReport (missing/unexpected/...)
>>> report.ok
True
>>> len(freeze(model))                  # everything frozen (38 tensors) ...
38
>>> head = replace_head(model, 5)       # ... except a fresh 5-way head
>>> unfreeze(model, names=["features.25"])   # fine-tune the top conv block too
['features.25.weight', 'features.25.bias']
>>> handles = keep_frozen_bn_eval(model)     # frozen BatchNorm keeps its running statistics
>>> [name for name, p in model.named_parameters() if p.requires_grad]
['features.25.weight', 'features.25.bias', 'classifier.6.weight', 'classifier.6.bias']

The measured few-shot experiment (:func:`few_shot_experiment`) lives here too. Loading weights
(:func:`load_pretrained`, :class:`LoadReport`) lives in :mod:`deepgrad.models.loading` and is re-exported here.
"""

from __future__ import annotations

import difflib
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from . import nn
from .autograd import RemovableHandle
from .models.loading import LoadReport, PretrainedLoadError, load_pretrained, read_safetensors, safetensors_metadata
from .tensor import Tensor

__all__ = [
    "parameter_units", "freeze", "unfreeze", "trainable_parameters", "count_parameters", "keep_frozen_bn_eval",
    "find_head", "set_submodule", "replace_head", "FeatureExtractor", "feature_extractor",
    "discriminative_param_groups", "PretrainedLoadError", "LoadReport", "read_safetensors", "safetensors_metadata",
    "load_pretrained", "METHODS", "FewShotResult", "few_shot_experiment",
]

# ----------------------------------------------------------------------------- model anatomy
def parameter_units(model: nn.Module) -> list[tuple[str, list[tuple[str, nn.Parameter]]]]:
    """The modules that own parameters directly (conv, linear, norm ...), input to output in registration
    order, each with its ``(qualified name, parameter)`` pairs: the "layers" that ``freeze``/``unfreeze``
    count."""
    units = []
    for name, module in model.named_modules():
        own = [(f"{name}.{n}" if name else n, p) for n, p in module.named_parameters(recurse=False)]
        if own:
            units.append((name, own))
    return units


def _unknown_module(model: nn.Module, name: str, where: str) -> ValueError:
    names = [n for n, _ in model.named_modules() if n]
    close = difflib.get_close_matches(name, names, n=5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    tops = ", ".join(n for n, _ in model.named_children())
    return ValueError(f"{where}: {type(model).__name__} has no submodule or parameter {name!r}{hint} "
                      f"(top-level children: {tops})")


def _matches(qualified: str, prefix: str) -> bool:
    return qualified == prefix or qualified.startswith(prefix + ".")


def _set_trainable(params: Iterable[tuple[str, nn.Parameter]], flag: bool) -> list[str]:
    names = []
    for n, p in params:
        p.requires_grad_(flag)
        if not flag:
            p.grad = None  # a stale gradient would still move the weight in the next optimizer step
        names.append(n)
    return names


def freeze(model: nn.Module, up_to: int | str | None = None) -> list[str]:
    """Stop training parameters; returns the names of the parameters frozen.

    ``up_to=None`` freezes everything; an int freezes the first ``up_to`` parameter-owning layers (see
    :func:`parameter_units`); a module name (``"features.7"``, ``"layer2"``) freezes every layer up to and
    including that module. Frozen parameters get ``requires_grad=False`` and their ``.grad`` is dropped,
    so backward computes no gradient for them and optimizers leave them unchanged.
    """
    units = parameter_units(model)
    if up_to is None:
        chosen = units
    elif isinstance(up_to, bool) or not isinstance(up_to, (int, str)):
        raise TypeError(f"freeze: up_to must be an int, a module name or None, got {type(up_to).__name__}")
    elif isinstance(up_to, int):
        if not 0 <= up_to <= len(units):
            raise ValueError(f"freeze: up_to={up_to} is out of range; {type(model).__name__} has {len(units)} "
                             f"parameter-owning layers")
        chosen = units[:up_to]
    else:
        order = [n for n, _ in model.named_modules()]
        hits = [i for i, n in enumerate(order) if _matches(n, up_to)]
        if not hits:
            raise _unknown_module(model, up_to, "freeze")
        last = hits[-1]
        position = {n: i for i, n in enumerate(order)}
        chosen = [u for u in units if position[u[0]] <= last]
    return _set_trainable([pair for _, pairs in chosen for pair in pairs], False)


def unfreeze(model: nn.Module, last_n: int | None = None, names: Sequence[str] | None = None) -> list[str]:
    """Make parameters trainable again; returns their names.

    With no argument, every parameter; ``last_n``: the last ``last_n`` parameter-owning layers (the top of
    the network, the usual fine-tuning choice); ``names``: modules or parameters by qualified name
    (``["layer4", "fc"]``, ``["classifier.0.weight"]``).
    """
    if last_n is not None and names is not None:
        raise ValueError("unfreeze: give last_n or names, not both")
    units = parameter_units(model)
    if last_n is not None:
        if isinstance(last_n, bool) or not isinstance(last_n, int) or not 0 <= last_n <= len(units):
            raise ValueError(f"unfreeze: last_n must be an int in [0, {len(units)}], got {last_n!r}")
        chosen = [pair for _, pairs in units[len(units) - last_n:] for pair in pairs]
    elif names is not None:
        if isinstance(names, str):
            names = [names]
        all_params = list(model.named_parameters())
        chosen = []
        for prefix in names:
            hits = [(n, p) for n, p in all_params if _matches(n, prefix)]
            if not hits:
                raise _unknown_module(model, prefix, "unfreeze")
            chosen += [h for h in hits if all(h[1] is not c[1] for c in chosen)]
    else:
        chosen = list(model.named_parameters())
    return _set_trainable(chosen, True)


def trainable_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """``(name, parameter)`` for every parameter that requires grad."""
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts."""
    total = trainable = 0
    for p in model.parameters():
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total


def keep_frozen_bn_eval(model: nn.Module) -> list[RemovableHandle]:
    """Keep frozen BatchNorm layers in eval mode even while the model trains.

    A BatchNorm layer whose affine parameters are all frozen then normalises with its stored running
    statistics and does not update them, whatever ``model.train()`` says (a pre-forward hook switches it to
    eval just before it runs; once unfrozen it follows the model's mode again from the next ``train()``).
    Returns the hook handles (``handle.remove()`` undoes it). BatchNorm without affine parameters is left
    alone.
    """
    handles = []
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.weight is not None:
            if m.__dict__.get("_frozen_bn_hook") is not None:
                handles.append(m.__dict__["_frozen_bn_hook"])
                continue
            handle = m.register_forward_pre_hook(_frozen_bn_to_eval)
            m.__dict__["_frozen_bn_hook"] = handle
            handles.append(handle)
    return handles


def _frozen_bn_to_eval(module: nn.Module, args) -> None:
    if all(not p.requires_grad for p in module.parameters(recurse=False)):
        module.__dict__["training"] = False


# ----------------------------------------------------------------------------- heads and features
def find_head(model: nn.Module) -> tuple[str, nn.Linear]:
    """``(name, module)`` of the classifier head: the last ``Linear`` in registration order
    (``fc`` in ResNet, ``classifier.6`` in VGG, ``classifier.4`` in LeNet5, the last layer of an MLP)."""
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not found:
        raise ValueError(f"find_head: {type(model).__name__} has no Linear layer to use as its head")
    return found[-1]


def set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    """Replace the submodule at dotted ``name`` in place, keeping its position among its siblings
    (so a Sequential still runs its layers in order)."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name)
    if child not in parent._modules:
        raise _unknown_module(model, name, "set_submodule")
    # Writing the registry entry directly keeps the OrderedDict position; setattr would move it last.
    parent._modules[child] = module
    parent.__dict__[child] = module


def replace_head(model: nn.Module, num_classes: int, name: str | None = None) -> nn.Linear:
    """Swap the classifier head (see :func:`find_head`, or the Linear at ``name``) for a freshly
    initialised ``Linear(in_features, num_classes)`` on the same device and dtype; returns it.

    The new head is trainable even when the rest of the model is frozen.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"replace_head: num_classes must be a positive int, got {num_classes!r}")
    if name is None:
        name, old = find_head(model)
    else:
        try:
            old = model.get_submodule(name)
        except AttributeError:
            raise _unknown_module(model, name, "replace_head") from None
        if not isinstance(old, nn.Linear):
            raise ValueError(f"replace_head: {name!r} is a {type(old).__name__}, not a Linear layer")
    new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None, device=old.weight.device,
                    dtype=old.weight.dtype)
    set_submodule(model, name, new)
    if hasattr(model, "num_classes"):
        model.num_classes = num_classes
    return new


class _Collected(Exception):
    """Raised inside forward once every requested activation is in hand (skips the rest of the network)."""


class FeatureExtractor(nn.Module):
    """Wraps ``model`` so that calling it returns ``{output_name: activation}`` for the requested submodules
    (the first output each produces), in the order requested. The forward stops as soon as all are
    collected. The wrapped model is ``self.model`` and shares its parameters."""

    def __init__(self, model: nn.Module, layers: Sequence[str] | Mapping[str, str]):
        super().__init__()
        mapping = dict(layers) if isinstance(layers, Mapping) else {n: n for n in layers}
        if not mapping:
            raise ValueError("feature_extractor: layers is empty")
        for n in mapping:
            try:
                model.get_submodule(n)
            except AttributeError:
                raise _unknown_module(model, n, "feature_extractor") from None
        self.model = model
        self.layers = mapping

    def forward(self, *args, **kwargs) -> OrderedDict:
        captured: dict[str, Tensor] = {}
        handles = []

        def make_hook(module_name: str):
            def hook(module, inputs, output):
                if module_name not in captured:
                    captured[module_name] = output
                    if len(captured) == len(self.layers):
                        raise _Collected

            return hook

        for n in self.layers:
            handles.append(self.model.get_submodule(n).register_forward_hook(make_hook(n)))
        try:
            self.model(*args, **kwargs)
        except _Collected:
            pass
        finally:
            for h in handles:
                h.remove()
        missing = [n for n in self.layers if n not in captured]
        if missing:
            raise RuntimeError(f"feature_extractor: the forward pass never called {missing}")
        return OrderedDict((out, captured[n]) for n, out in self.layers.items())


def feature_extractor(model: nn.Module, layers: Sequence[str] | Mapping[str, str]) -> FeatureExtractor:
    """A module returning the named intermediate activations of ``model``: a list of submodule names, or
    ``{submodule name: output name}`` (torchvision's ``return_nodes`` style).

    >>> from deepgrad.models import resnet18
    >>> feats = feature_extractor(resnet18(), ["layer1", "layer4"])(deepgrad.randn(1, 3, 64, 64))
    >>> feats["layer4"].shape
    (1, 512, 2, 2)
    """
    return FeatureExtractor(model, layers)


# ----------------------------------------------------------------------------- learning rates by depth
def discriminative_param_groups(model: nn.Module, lr: float, decay: float = 0.5,
                                groups: int | Sequence[str] | None = None) -> list[dict]:
    """Optimizer parameter groups whose learning rate shrinks with distance from the output:
    group ``i`` of ``G`` (input to output) gets ``lr * decay ** (G - 1 - i)``.

    ``groups``: module-name prefixes from input to output (``["layer1", "layer2", "layer3", "layer4",
    "fc"]``); an int splits the parameter-owning layers into that many contiguous chunks; ``None`` uses
    the top-level children. Frozen parameters are left out. Each group carries a ``"name"``.

    >>> from deepgrad import nn, optim
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> opt = optim.SGD(discriminative_param_groups(model, lr=1e-2, decay=0.3), lr=1e-2, momentum=0.9)
    >>> [(group["name"], round(group["lr"], 6)) for group in opt.param_groups]   # input to output
    [('0', 0.0009), ('2', 0.003), ('4', 0.01)]
    """
    if not 0 < decay <= 1:
        raise ValueError(f"discriminative_param_groups: decay must be in (0, 1], got {decay}")
    trainable = trainable_parameters(model)
    if not trainable:
        raise ValueError(f"discriminative_param_groups: {type(model).__name__} has no trainable parameters")
    named: list[tuple[str, list[tuple[str, nn.Parameter]]]] = []
    if isinstance(groups, int) and not isinstance(groups, bool):
        units = [(n, [(q, p) for q, p in pairs if p.requires_grad]) for n, pairs in parameter_units(model)]
        units = [u for u in units if u[1]]
        if not 1 <= groups <= len(units):
            raise ValueError(f"discriminative_param_groups: groups={groups} must be in [1, {len(units)}] "
                             f"(trainable layers)")
        for chunk in np.array_split(np.arange(len(units)), groups):
            pairs = [pair for i in chunk for pair in units[i][1]]
            named.append((f"{units[chunk[0]][0]}..{units[chunk[-1]][0]}", pairs))
    else:
        prefixes = [n for n, _ in model.named_children()] if groups is None else list(groups)
        taken: set[int] = set()
        for prefix in prefixes:
            pairs = [(n, p) for n, p in trainable if _matches(n, prefix) and id(p) not in taken]
            if groups is not None and not any(_matches(n, prefix) for n, _ in model.named_parameters()):
                raise _unknown_module(model, prefix, "discriminative_param_groups")
            taken.update(id(p) for _, p in pairs)
            named.append((prefix, pairs))
        left = [n for n, p in trainable if id(p) not in taken]
        if left:
            raise ValueError(f"discriminative_param_groups: trainable parameters {left[:5]} belong to none of the "
                             f"groups {prefixes}")
    named = [(n, pairs) for n, pairs in named if pairs]
    count = len(named)
    return [{"params": [p for _, p in pairs], "lr": lr * decay ** (count - 1 - i), "name": n}
            for i, (n, pairs) in enumerate(named)]


# ----------------------------------------------------------------------------- the measured experiment
METHODS = ("scratch", "frozen_features", "fine_tune_upper")


@dataclass
class FewShotResult:
    """Test accuracies of :func:`few_shot_experiment`: ``runs[method][shots]`` lists one value per seed."""

    shots: tuple[int, ...]
    seeds: tuple[int, ...]
    runs: dict[str, dict[int, list[float]]]
    pretrain_accuracy: float  # the pretrained network on held-out digits 0-4

    def mean(self, method: str, shots: int) -> float:
        return float(np.mean(self.runs[method][shots]))

    def table(self) -> str:
        """A Markdown table of mean (min-max) test accuracy per method and labelled examples per class."""
        head = "| method | " + " | ".join(f"{k}/class" for k in self.shots) + " |"
        rows = [head, "|" + "---|" * (len(self.shots) + 1)]
        for m in METHODS:
            cells = [f"{100 * self.mean(m, k):.1f}% ({100 * min(self.runs[m][k]):.0f}-{100 * max(self.runs[m][k]):.0f})"
                     for k in self.shots]
            rows.append(f"| {m} | " + " | ".join(cells) + " |")
        return "\n".join(rows)


def few_shot_experiment(shots: Sequence[int] = (5, 10, 20), seeds: Sequence[int] = (0, 1, 2, 3, 4),
                        pretrain_epochs: int = 10, steps: int = 300, lr: float = 5e-3) -> FewShotResult:
    """Transfer learning, measured: pretrain LeNet-5 on digits 0-4 (28x28 view of scikit-learn's digits, the
    training split), then learn digits 5-9 from ``shots`` labelled examples per class three ways, each with
    Adam (``lr``) for ``steps`` full-batch steps in total:

    - ``scratch``: a fresh LeNet-5, every layer trained;
    - ``frozen_features``: the pretrained conv stack frozen, its classifier replaced by a new linear head
      on the 400 conv features, only the head trained;
    - ``fine_tune_upper``: the same for two thirds of the steps, then the upper conv layer unfrozen and
      trained with the head (at a tenth of the learning rate) for the rest: "train the head, then
      fine-tune the top layers", the first conv layer staying frozen.

    Each seed draws its own examples and initialisation; accuracy is measured on every 5-9 image not
    used for training (about 900).
    """
    from .creation import manual_seed
    from .data.datasets import load_digits
    from .models import LeNet5
    from .models._fit import fit_classifier
    from .train.metrics import model_accuracy as accuracy

    train, test = load_digits(size=28, test_size=0.2, seed=0)
    x = np.concatenate([train.tensors[0].numpy(), test.tensors[0].numpy()])
    y = np.concatenate([train.tensors[1].numpy(), test.tensors[1].numpy()])
    n_train = len(train)
    old_train = np.flatnonzero(y[:n_train] < 5)
    old_test = n_train + np.flatnonzero(y[n_train:] < 5)
    manual_seed(1234)
    base = LeNet5(num_classes=5)
    fit_classifier(base, x[old_train], y[old_train], pretrain_epochs, lr=2e-3, seed=1234, shift=2, cosine=True)
    pretrain_acc = accuracy(base, x[old_test], y[old_test])
    features_out = base.classifier[0].in_features
    new = np.flatnonzero(y >= 5)
    probe_steps = (2 * steps) // 3
    runs: dict[str, dict[int, list[float]]] = {m: {k: [] for k in shots} for m in METHODS}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        for k in shots:
            idx = np.concatenate([rng.choice(new[y[new] == c], size=k, replace=False) for c in range(5, 10)])
            rest = np.setdiff1d(new, idx)
            xs, ys = x[idx], y[idx] - 5
            for method in METHODS:
                manual_seed(seed)
                model = LeNet5(num_classes=5)
                if method == "scratch":
                    fit_classifier(model, xs, ys, epochs=steps, lr=lr, batch_size=len(ys), seed=seed)
                else:
                    load_pretrained(model, base.state_dict())
                    freeze(model)
                    set_submodule(model, "classifier", nn.Linear(features_out, 5))
                    first = steps if method == "frozen_features" else probe_steps
                    fit_classifier(model, xs, ys, epochs=first, lr=lr, batch_size=len(ys), seed=seed)
                    if method == "fine_tune_upper":
                        unfreeze(model, names=["features.3"])
                        groups = discriminative_param_groups(model, lr, decay=0.1, groups=["features", "classifier"])
                        fit_classifier(model, xs, ys, epochs=steps - probe_steps, lr=lr, batch_size=len(ys),
                                       seed=seed + 1, param_groups=groups)
                runs[method][k].append(accuracy(model, x[rest], y[rest] - 5))
    return FewShotResult(tuple(shots), tuple(seeds), runs, pretrain_acc)
