"""Question 5: the architecture of a CNN, walked through on LeNet-5, then the four designs that followed it
measured side by side.

1. LeNet-5 layer by layer (``deepgrad.nn.summary``), trained on 28x28 digits; its first-layer filters and
   the feature maps of one digit.
2. LeNet-5, AlexNet, VGG-16, ResNet-18 and GoogLeNet as torchvision builds them (the zoo's modules, made with
   ``nn.utils.skip_init`` because only their shapes matter here): parameters, multiply-adds for one image
   (counted by forward hooks), depth (weight layers on the longest path of the autograd graph), and the idea
   each introduced.
3. Inception's 1x1 bottlenecks: the same GoogLeNet with the 1x1 reductions removed from its blocks.
4. ResNet's shortcuts: an 18-layer plain conv net and the same net with identity shortcuts, trained alike.
5. (full mode) the five, narrowed to digit size, trained alike on one small task (a few seconds per epoch
   each on a CPU, so not in quick mode).
"""

from __future__ import annotations

import time

import numpy as np

import deepgrad as dg
from deepgrad import models, nn
from deepgrad.models.googlenet import BLOCKS, BasicConv2d, Inception, InceptionAux
from deepgrad.nn.utils import skip_init

from .common import accuracy, digits, fit, image_grid

NUMBER = 5
QUESTION = ("What is the architecture of a CNN? Walk through LeNet-5, and what AlexNet, VGG, ResNet and "
            "Inception changed.")
ANSWER = (
    "A CNN is a feature extractor followed by a classifier. The extractor repeats blocks of convolution "
    "(learned filters producing feature maps), a non-linearity (ReLU) and pooling (downsampling), so maps get "
    "smaller and more numerous with depth: LeNet-5 goes 1x28x28 -> 6x28x28 -> 6x14x14 -> 16x10x10 -> 16x5x5. "
    "The maps are flattened and fully connected layers (120 -> 84 -> 10) produce class scores, trained with "
    "softmax cross-entropy. The architectures that followed kept that recipe and each changed one thing. AlexNet "
    "(2012) scaled it to ImageNet with a large strided first layer (11x11, stride 4), ReLU, dropout and GPUs. "
    "VGG (2014) used only stacks of 3x3 convolutions (two 3x3 see a 5x5 window with fewer weights) and went to "
    "16-19 layers; most of its 138M parameters sit in the fully connected layers. GoogLeNet/Inception (2014) runs "
    "1x1, 3x3, 5x5 and pooling branches in parallel and concatenates them, with 1x1 convolutions shrinking the "
    "channels first so the block stays cheap: 22 layers with 9x fewer parameters than AlexNet. ResNet (2015) adds "
    "identity shortcuts, y = x + F(x), so a deep network starts close to the identity and its gradients reach "
    "the first layers: 18 to 152 layers train where the same plain networks stall."
)

# The feature-map sizes of LeNet-5 (LeCun et al., 1998) for a 28x28 input padded to 32x32.
EXPECTED_SHAPES = [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120,), (84,), (10,)]
EXPECTED_PARAMS = 61_706


# ---------------------------------------------------------------------------------------------- measuring
def _layer_macs(module: nn.Module, out) -> int:
    """Multiply-adds of a convolution or linear layer for one image: ``weight.numel() / out_channels`` per
    output value (batch norm, activations and pooling are left out, the usual convention)."""
    return (out.numel() // out.shape[0]) * (module.weight.numel() // module.weight.shape[0])


def measure(model: nn.Module, input_shape: tuple) -> dict:
    """Parameters, multiply-adds for one image (forward hooks) and depth of ``model``, from one forward pass.

    Depth: the most weight layers (graph nodes fed by a >= 2-D parameter: convolutions and linear layers) on
    any path from input to output of the autograd graph.
    """
    counted = [0]

    def hook(module, inputs, out):
        counted[0] += _layer_macs(module, out)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.eval()
    try:
        out = model(dg.zeros(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
    weights = {id(p) for p in model.parameters() if p.ndim >= 2}
    return {"params": sum(p.numel() for p in model.parameters()), "macs": counted[0],
            "depth": _longest_weight_path(out, weights)}


def count_at_scale(model: nn.Module, input_shape: tuple) -> dict:
    """Parameters and multiply-adds of a full-size model without doing its arithmetic: for the count, each
    convolution and linear layer returns zeros of its output shape (a convolution's side is
    floor((n + 2p - d(k - 1) - 1) / s) + 1), so their weights are never read; everything else (pooling,
    batch norm, concatenation, the shortcuts) runs as written. A real VGG-16 forward pass is 15 billion
    multiply-adds: seconds on a CPU, for a number that does not depend on the weights."""
    counted = [0]

    def shapes_only(layer: nn.Module):
        def forward(x):
            if isinstance(layer, nn.Linear):
                shape = (*x.shape[:-1], layer.out_features)
            else:
                sides = [(n + 2 * p - d * (k - 1) - 1) // s + 1 for n, p, d, k, s in
                         zip(x.shape[2:], layer.padding, layer.dilation, layer.kernel_size, layer.stride)]
                shape = (x.shape[0], layer.out_channels, *sides)
            out = dg.zeros(*shape, dtype=x.dtype)
            counted[0] += _layer_macs(layer, out)
            return out
        return forward

    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for layer in layers:
        layer.forward = shapes_only(layer)  # an instance attribute: Module.__call__ finds it first
    model.eval()
    try:
        with dg.no_grad():
            model(dg.zeros(1, *input_shape))
    finally:
        for layer in layers:
            del layer.forward
    return {"params": sum(p.numel() for p in model.parameters()), "macs": counted[0]}


def _longest_weight_path(out, weights: set) -> int:
    """Longest chain of weight layers in the graph that produced ``out`` (iterative: graphs can be deep)."""
    depth: dict = {}
    keep = []  # the nodes stay referenced while their ids are keys
    stack = [(out.grad_fn, False)]
    while stack:
        node, expanded = stack.pop()
        if node is None or id(node) in depth:
            continue
        parents = [p for p in getattr(node, "next", ()) if p is not None]
        if not expanded:
            stack.append((node, True))
            stack.extend((p, False) for p in parents if id(p) not in depth)
            continue
        keep.append(node)
        if getattr(node, "tensor_ref", None) is not None:  # a parameter or an input: no layer yet
            depth[id(node)] = 0
            continue
        is_weight_layer = any(id(getattr(p, "tensor_ref", lambda: None)()) in weights for p in parents)
        depth[id(node)] = max((depth[id(p)] for p in parents), default=0) + int(is_weight_layer)
    return depth[id(out.grad_fn)]


def zeroed(model: nn.Module) -> nn.Module:
    """A skip_init model with its normalisation parameters set to 0: their memory is uninitialised and
    :func:`count_at_scale` reads them (it never reads a conv or linear weight, so those stay untouched)."""
    with dg.no_grad():
        for m in model.modules():
            if not isinstance(m, (nn.Conv2d, nn.Linear)):
                for p in m.parameters(recurse=False):
                    p.zero_()
    return model


class NaiveInception(nn.Module):
    """GoogLeNet's block without its 1x1 reductions: the 3x3 and "5x5" branches read all the input channels.
    Same arguments and the same output channels as :class:`deepgrad.models.googlenet.Inception`."""

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj, conv_block=None):
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        self.branch2 = BasicConv2d(in_channels, ch3x3, kernel_size=3, padding=1)
        self.branch3 = BasicConv2d(in_channels, ch5x5, kernel_size=3, padding=1)  # torchvision's "5x5" is 3x3
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     BasicConv2d(in_channels, pool_proj, kernel_size=1))

    def forward(self, x):
        return dg.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


# (name, year, torchvision-layout model, input, the idea it introduced)
ARCHITECTURES = [
    ("LeNet-5", 1998, lambda: skip_init(models.LeNet5), (1, 28, 28),
     "conv -> pool -> conv -> pool -> fully connected: the template"),
    ("AlexNet", 2012, lambda: skip_init(models.AlexNet), (3, 224, 224),
     "scale: large strided first layer (11x11/4), ReLU, dropout"),
    ("VGG-16", 2014, lambda: skip_init(models.VGG, depth=16), (3, 224, 224),
     "only 3x3 convolutions, stacked deep"),
    ("ResNet-18", 2015, lambda: skip_init(models.ResNet, models.BasicBlock, [2, 2, 2, 2]), (3, 224, 224),
     "identity shortcuts: y = x + F(x)"),
    ("GoogLeNet", 2014, lambda: skip_init(models.GoogLeNet, aux_logits=False), (3, 224, 224),
     "parallel 1x1/3x3/5x5/pool branches, 1x1 bottlenecks"),
]
NAMED_DEPTH = {"LeNet-5": 5, "AlexNet": 8, "VGG-16": 16, "ResNet-18": 18, "GoogLeNet": 22}


# ---------------------------------------------------------------------------------------------- the parts
def lenet_walkthrough(ctx) -> float:
    data = digits(size=28, seed=ctx.seed)
    model = models.LeNet5()
    report = nn.summary(model, (1, 28, 28))
    ctx.table("LeNet-5, layer by layer (deepgrad.nn.summary)",
              ["layer", "type", "output shape", "parameters", "output height (width is the same)"],
              [[r.name, r.kind, str(r.output_shape[1:]), r.trainable, r.arithmetic.split(", ")[0]]
               for r in report.rows])
    shapes = [r.output_shape[1:] for r in report.rows if r.kind in ("Conv2d", "MaxPool2d", "Linear")]
    ctx.claim("the feature maps follow LeNet-5: 6x28x28 -> 6x14x14 -> 16x10x10 -> 16x5x5 -> 120 -> 84 -> 10, "
              f"with {EXPECTED_PARAMS:,} parameters",
              shapes == EXPECTED_SHAPES and report.total_params == EXPECTED_PARAMS,
              f"{' -> '.join('x'.join(map(str, s)) for s in shapes)}; {report.total_params:,} parameters")

    epochs = ctx.pick(10, 25)
    history = fit(model, data.x_train, data.y_train, epochs=epochs, lr=3e-3, device=ctx.device, anneal=True)
    model.to("cpu")
    test_acc = accuracy(model, data.x_test, data.y_test)
    ctx.say(f"trained {epochs} epochs (Adam 3e-3 with cosine decay, batch 64): training loss "
            f"{history.history['loss'][0]:.3f} -> {history.history['loss'][-1]:.3f}")
    ctx.claim(f"LeNet-5 classifies held-out digits with >= {ctx.pick(95, 97)}% accuracy",
              test_acc >= ctx.pick(0.95, 0.97), f"{test_acc:.3f} on {len(data.y_test)} test images")

    filters = model.features[0].weight.detach().numpy()[:, 0]
    ctx.figure(image_grid(filters, [f"filter {i}" for i in range(len(filters))], ncols=6, cmap="RdBu_r",
                          symmetric=True, size=1.4), "filters", "First-layer filters (5x5)",
               "The six trained filters of conv1 (red positive, blue negative weights): oriented stroke and edge "
               "detectors.")
    digit = data.x_test[:1]
    with dg.no_grad():
        maps1 = model.features[:2](dg.tensor(digit)).numpy()[0]   # conv1 + ReLU: 6 maps of 28x28
        maps2 = model.features[:5](dg.tensor(digit)).numpy()[0]   # ... + pool + conv2 + ReLU: 16 maps of 10x10
    ctx.figure(image_grid([digit[0, 0]] + list(maps1) + list(maps2),
                          ["input"] + [f"conv1 map {i}" for i in range(6)] + [f"conv2 map {i}" for i in range(16)],
                          ncols=8, cmap="viridis", size=1.3), "feature-maps",
               "Feature maps of one digit",
               f"A test digit (label {data.y_test[0]}), the six 28x28 maps of the trained first layer (each "
               "highlights strokes of one orientation) and the sixteen 10x10 maps of the second: coarser, combined "
               "features (parts of the digit).")
    return test_acc


def _si(count: float) -> str:
    """A count in millions, or billions from 1e9 on."""
    return f"{count / 1e9:.2f}G" if count >= 1e9 else f"{count / 1e6:.2f}M"


def five_side_by_side(ctx) -> dict:
    rows, stats = [], {}
    narrow = dict(SMALL)
    for name, year, build, shape, idea in ARCHITECTURES:
        model = zeroed(build())
        stats[name] = count_at_scale(model, shape)
        if name == "VGG-16":
            stats[name]["fc_params"] = sum(p.numel() for p in model.classifier.parameters())
        del model
        # depth does not depend on width: read it off the graph of the narrow version, cheap to run for real
        stats[name]["depth"] = measure(narrow[name](), (1, 16, 16))["depth"]
        s = stats[name]
        rows.append([name, year, "x".join(map(str, shape)), _si(s["params"]), _si(s["macs"]), s["depth"], idea])
    ctx.table("Five architectures as torchvision builds them",
              ["architecture", "year", "input", "parameters", "multiply-adds / image", "depth (weight layers)",
               "the idea it introduced"], rows)
    depths = {n: s["depth"] for n, s in stats.items()}
    ctx.claim("depth, read off each autograd graph as the most conv/linear layers on one path, is the number in "
              "the name: LeNet-5 5, AlexNet 8, VGG-16 16, ResNet-18 18, GoogLeNet 22",
              depths == NAMED_DEPTH, ", ".join(f"{n} {d}" for n, d in depths.items()))
    vgg = stats["VGG-16"]
    fc_share = vgg["fc_params"] / vgg["params"]
    ctx.claim("VGG-16 has the most parameters and multiply-adds of the five, and over 85% of its parameters sit in "
              "its three fully connected layers",
              all(vgg[k] >= s[k] for s in stats.values() for k in ("params", "macs")) and fc_share > 0.85,
              f"{_si(vgg['params'])} parameters, {_si(vgg['macs'])} multiply-adds; "
              f"{fc_share:.1%} in the classifier")
    alex, goog = stats["AlexNet"], stats["GoogLeNet"]
    ctx.claim("GoogLeNet is almost 3x deeper than AlexNet with 9x fewer parameters",
              goog["depth"] >= 2.5 * alex["depth"] and alex["params"] >= 9 * goog["params"],
              f"{goog['depth']} vs {alex['depth']} layers; {alex['params'] / goog['params']:.1f}x fewer parameters")
    res = stats["ResNet-18"]
    ctx.claim("ResNet-18 is deeper than VGG-16 with 8x fewer multiply-adds and 10x fewer parameters",
              res["depth"] > vgg["depth"] and vgg["macs"] >= 8 * res["macs"] and vgg["params"] >= 10 * res["params"],
              f"{res['depth']} vs {vgg['depth']} layers; {vgg['macs'] / res['macs']:.1f}x fewer multiply-adds, "
              f"{vgg['params'] / res['params']:.1f}x fewer parameters")
    return stats


def bottlenecks(ctx, googlenet: dict) -> None:
    rows = []
    for block in ("inception3a", "inception5b"):
        cfg, side = BLOCKS[block], 28 if block == "inception3a" else 7
        with_1x1 = count_at_scale(zeroed(skip_init(Inception, *cfg)), (cfg[0], side, side))
        without = count_at_scale(zeroed(skip_init(NaiveInception, *cfg)), (cfg[0], side, side))
        rows.append([f"{block} ({cfg[0]} channels in, {side}x{side})", f"{with_1x1['macs'] / 1e6:.0f}M",
                     f"{without['macs'] / 1e6:.0f}M", f"{without['macs'] / with_1x1['macs']:.1f}x"])
    naive = count_at_scale(zeroed(skip_init(models.GoogLeNet, aux_logits=False,
                                            blocks=[BasicConv2d, NaiveInception, InceptionAux])), (3, 224, 224))
    factor, param_factor = naive["macs"] / googlenet["macs"], naive["params"] / googlenet["params"]
    rows.append(["GoogLeNet, all nine blocks", f"{googlenet['macs'] / 1e6:.0f}M", f"{naive['macs'] / 1e6:.0f}M",
                 f"{factor:.1f}x"])
    ctx.table("Multiply-adds of Inception blocks with and without their 1x1 reductions (same outputs)",
              ["block", "with 1x1 reductions", "without", "factor"], rows)
    ctx.claim("the 1x1 reductions keep GoogLeNet affordable: without them, with every block's outputs unchanged, "
              "the network needs over 2x the multiply-adds and 2x the parameters",
              factor > 2 and param_factor > 2, f"{factor:.2f}x multiply-adds, {param_factor:.2f}x parameters")


class ConvBlock(nn.Module):
    """Two 3x3 convolutions, with or without ResNet's identity shortcut (no batch norm, to show the shortcut
    alone)."""

    def __init__(self, channels: int, shortcut: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.shortcut = shortcut

    def forward(self, x):
        out = self.conv2(self.conv1(x).relu())
        return (out + x).relu() if self.shortcut else out.relu()


def conv_stack(blocks: int, channels: int, shortcut: bool) -> nn.Module:
    """A 3x3 stem, ``blocks`` two-conv blocks and a linear classifier on the flattened 8x8 maps."""
    return nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(),
                         *[ConvBlock(channels, shortcut) for _ in range(blocks)],
                         nn.Flatten(), nn.Linear(channels * 64, 10))


def shortcuts(ctx) -> None:
    data = digits(size=8, seed=ctx.seed, standardize=True)
    blocks, epochs = 8, ctx.pick(1, 3)
    rows, results = [], {}
    for shortcut in (False, True):
        dg.manual_seed(ctx.seed)
        model = conv_stack(blocks, 4, shortcut)
        history = fit(model, data.x_train, data.y_train, epochs=epochs, lr=1e-2, device=ctx.device)
        model.to("cpu")
        loss, acc = history.history["loss"][-1], accuracy(model, data.x_test, data.y_test)
        results[shortcut] = (loss, acc)
        rows.append(["residual (identity shortcuts)" if shortcut else "plain", 2 * blocks + 2, loss, acc])
    ctx.table(f"The same {2 * blocks + 2}-layer conv net on 8x8 digits, {epochs} epoch{'s' * (epochs > 1)} of Adam "
              "1e-2",
              ["network", "weight layers", "training loss (last epoch)", "test accuracy"], rows)
    (plain_loss, plain_acc), (res_loss, res_acc) = results[False], results[True]
    ctx.claim(f"with identity shortcuts the net trains (>= {ctx.pick(80, 90)}% test accuracy) where the same plain "
              "net stalls at chance (loss still >= 2.2, ln 10 = 2.30)",
              res_acc >= ctx.pick(0.80, 0.90) and plain_loss >= 2.2 and plain_acc <= 0.2,
              f"residual {res_acc:.3f} (loss {res_loss:.2f}); plain {plain_acc:.3f} (loss {plain_loss:.2f})")


# (name, narrow model for 16x16 digits): the same classes, fewer channels
SMALL = [
    ("LeNet-5", lambda: models.LeNet5(input_size=16)),
    ("AlexNet", lambda: models.alexnet(num_classes=10, in_channels=1, width=1 / 8, hidden=64, input_size=16,
                                       dropout=0.2)),
    ("VGG-16", lambda: models.vgg16_bn(num_classes=10, in_channels=1, width=1 / 16, hidden=64, input_size=16,
                                             dropout=0.2)),
    ("ResNet-18", lambda: models.resnet18(num_classes=10, in_channels=1, width=8)),
    ("GoogLeNet", lambda: models.googlenet(num_classes=10, in_channels=1, width=1 / 16, aux_logits=False,
                                           dropout=0.2)),
]


def small_task(ctx) -> None:
    """Full mode: the five narrowed and trained on the same task (a few seconds per epoch each on a CPU)."""
    data = digits(size=8, seed=ctx.seed, standardize=True)
    x_train, x_test = (np.repeat(np.repeat(x, 2, axis=2), 2, axis=3) for x in (data.x_train, data.x_test))
    epochs, rows, accs = 15, [], {}
    for name, build in SMALL:
        dg.manual_seed(ctx.seed)
        model = build()
        s = measure(model, (1, 16, 16))
        start = time.perf_counter()
        fit(model, x_train, data.y_train, epochs=epochs, lr=3e-3, device=ctx.device, anneal=True)
        seconds = time.perf_counter() - start
        model.to("cpu")
        accs[name] = accuracy(model, x_test, data.y_test)
        rows.append([name, s["params"], _si(s["macs"]), s["depth"], accs[name], f"{seconds / epochs:.2f}"])
    ctx.table(f"The five narrowed for 16x16 digits (8x8 pixels doubled; VGG-16 with batch norm), {epochs} epochs "
              "of Adam 3e-3",
              ["architecture", "parameters", "multiply-adds / image", "depth", "test accuracy", "seconds / epoch"],
              rows)
    best = max(accs, key=accs.get)
    ctx.claim(f"after the same {epochs} epochs on this small task the 5-layer LeNet-5 has the best test accuracy "
              "of the five (>= 95%): the ImageNet designs, narrowed, keep strides and pooling made for 224x224 "
              "images and learn more slowly",
              best == "LeNet-5" and accs["LeNet-5"] >= 0.95, ", ".join(f"{n} {a:.3f}" for n, a in accs.items()))


def run(ctx) -> None:
    ctx.say("Part 1: LeNet-5, layer by layer")
    lenet_walkthrough(ctx)
    ctx.say("Part 2: five architectures side by side")
    stats = five_side_by_side(ctx)
    ctx.say("Part 3: Inception's 1x1 bottlenecks")
    bottlenecks(ctx, stats["GoogLeNet"])
    ctx.say("Part 4: ResNet's identity shortcuts")
    shortcuts(ctx)
    if ctx.full:
        ctx.say("Part 5: the five trained on one small task")
        small_task(ctx)
