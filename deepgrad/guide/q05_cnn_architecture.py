"""Question 5: the architecture of a CNN, shown on LeNet-5 trained on 28x28 digits.

``deepgrad.nn.summary`` walks the layers (shapes, parameters, output-size arithmetic); the first-layer
filters and the feature maps of one digit are drawn; the features the conv stack learned are compared
with the same stack's random initial features through a linear classifier on top of each.
"""

from __future__ import annotations

import copy

import deepgrad as dg
from deepgrad import nn
from deepgrad.models import LeNet5

from .common import accuracy, digits, fit, image_grid

NUMBER = 5
QUESTION = "What is the architecture of a CNN? Walk through LeNet-5."
ANSWER = (
    "A CNN is a feature extractor followed by a classifier. The extractor repeats blocks of convolution "
    "(learned filters producing feature maps), a non-linearity (ReLU) and pooling (downsampling), so maps get "
    "smaller and more numerous with depth: LeNet-5 goes 1x28x28 -> 6x28x28 -> 6x14x14 -> 16x10x10 -> 16x5x5. "
    "The maps are flattened and fully connected layers (120 -> 84 -> 10) produce class scores, turned into "
    "probabilities by softmax and trained with cross-entropy. First-layer filters learn edge- and stroke-like "
    "detectors; deeper layers combine them into parts of digits."
)

# The feature-map sizes of LeNet-5 (LeCun et al., 1998) for a 28x28 input padded to 32x32.
EXPECTED_SHAPES = [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120,), (84,), (10,)]
EXPECTED_PARAMS = 61_706


def linear_probe(extractor: nn.Module, data, epochs: int, device: str) -> float:
    """Test accuracy of a linear classifier trained on the frozen ``extractor``'s flattened features."""
    with dg.no_grad():
        extractor.eval()
        f_train = extractor(dg.tensor(data.x_train)).flatten(1).numpy()
        f_test = extractor(dg.tensor(data.x_test)).flatten(1).numpy()
    probe = nn.Linear(f_train.shape[1], 10)
    fit(probe, f_train, data.y_train, epochs=epochs, lr=3e-3, device=device)
    return accuracy(probe, f_test, data.y_test, device=device)


def run(ctx) -> None:
    data = digits(size=28, seed=ctx.seed)
    model = LeNet5()
    untrained = copy.deepcopy(model.features)  # kept to compare learned features with random ones
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

    # what the first layer learned: its six 5x5 filters, and what they do to one digit
    filters = model.features[0].weight.detach().numpy()[:, 0]
    ctx.figure(image_grid(filters, [f"filter {i}" for i in range(len(filters))], ncols=6, cmap="RdBu_r",
                          symmetric=True, size=1.4), "filters", "First-layer filters (5x5)",
               "The six trained filters of conv1 (red positive, blue negative weights): oriented stroke and edge "
               "detectors.")
    digit = data.x_test[:1]
    with dg.no_grad():
        maps1 = model.features[:2](dg.tensor(digit)).numpy()[0]   # conv1 + ReLU: 6 maps of 28x28
        maps2 = model.features[:5](dg.tensor(digit)).numpy()[0]   # ... + pool + conv2 + ReLU: 16 maps of 10x10
    ctx.figure(image_grid([digit[0, 0]] + list(maps1), ["input"] + [f"conv1 map {i}" for i in range(6)], ncols=7,
                          cmap="viridis", size=1.5), "feature-maps-1",
               "Feature maps after conv1 + ReLU", f"A test digit (label {data.y_test[0]}) and the six 28x28 maps "
               "the trained first layer computes from it: each highlights the strokes of one orientation.")
    ctx.figure(image_grid(list(maps2), [f"conv2 map {i}" for i in range(16)], ncols=8, cmap="viridis", size=1.2),
               "feature-maps-2", "Feature maps after conv2 + ReLU",
               "The sixteen 10x10 maps of the second conv layer: coarser, combined features (parts of the digit).")

    # learned vs random features, both read out by a linear classifier
    probe_epochs = ctx.pick(15, 30)
    learned, random = linear_probe(model.features, data, probe_epochs, ctx.device), linear_probe(
        untrained, data, probe_epochs, ctx.device)
    ctx.table("Linear classifier on the conv stack's 16x5x5 features", ["features", "test accuracy"],
              [["random (untrained conv layers)", random], ["learned (trained LeNet-5)", learned]])
    ctx.claim("the conv layers learn useful features: a linear classifier on the trained features beats one on the "
              "random initial features by >= 2 points", learned >= random + 0.02,
              f"{learned:.3f} vs {random:.3f}")
