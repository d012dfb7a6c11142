"""Question 13: what is transfer learning? Measured with a small VGG (VGG-11 with batch norm, 1/8 width) on
digits: it is pretrained on the digits 0-4, then has to learn the digits 5-9 from only a few labelled
examples per class, four ways:

- from scratch: a fresh network, every layer trained on the few examples;
- feature extraction: the pretrained network frozen, a new output layer trained on top, either on its top
  conv features or on the features of its first two blocks (the generic ones, it turns out);
- fine-tuning, the VGG-16 recipe: train the new head on the frozen base first, then unfreeze the upper
  convolution block and train it with the head at a lower learning rate.
"""

from __future__ import annotations

import numpy as np

import deepgrad as dg
from deepgrad import nn
from deepgrad.models import vgg11_bn
from deepgrad.transfer import count_parameters, freeze, keep_frozen_bn_eval, set_submodule, unfreeze

from .common import accuracy, digits, fit  # fit: Adam skips frozen parameters (their grad is None)

NUMBER = 13
QUESTION = "What is transfer learning, and when do you freeze or fine-tune layers?"
ANSWER = (
    "Transfer learning reuses a network trained on a large source task as the starting point for a related "
    "target task with little data: its early layers learn generic features (edges, strokes, textures) that "
    "carry over. With very little data, freeze the pretrained base and train only a new head (feature "
    "extraction); with more data, or a target unlike the source, also unfreeze the upper layers and fine-tune them "
    "with a small learning rate (the VGG-16 recipe: train the head first, then unfreeze the top convolution "
    "block). Done well, both beat training from scratch when labelled data is scarce; how far up the layers stay "
    "generic depends on how close the source task is, which is worth measuring."
)

GENERIC = 8  # features[:8]: the first two conv blocks (conv, batch norm, ReLU, max pool) -> 16 x 2 x 2 features
UPPER = ["features.8", "features.11", "features.15", "features.18", "features.22", "features.25"]  # conv layers


def small_vgg() -> nn.Module:
    return vgg11_bn(num_classes=5, in_channels=1, input_size=8, width=1 / 8, hidden=64, dropout=0.2)


def pretrained_base(data, epochs: int, device: str) -> tuple[nn.Module, float]:
    """A small VGG trained on every training image of the digits 0-4; returns it and its test accuracy."""
    old_train, old_test = data.y_train < 5, data.y_test < 5
    base = small_vgg()
    fit(base, data.x_train[old_train], data.y_train[old_train], epochs, lr=3e-3, device=device)
    return base, accuracy(base, data.x_test[old_test], data.y_test[old_test], device)


def transferred(base: nn.Module) -> nn.Module:
    """A copy of the pretrained network, frozen, its classifier replaced by a fresh linear layer on the top conv
    features (the dense layers were specific to the digits 0-4)."""
    model = small_vgg()
    model.load_state_dict(base.state_dict())
    freeze(model)
    set_submodule(model, "classifier", nn.Linear(model.classifier[0].in_features, 5))
    keep_frozen_bn_eval(model)  # frozen batch norm keeps the source task's statistics
    return model


def generic_features(base: nn.Module) -> nn.Module:
    """The pretrained network cut after its first two conv blocks (frozen), with a fresh linear head."""
    model = transferred(base)
    return nn.Sequential(*model.features[:GENERIC], nn.Flatten(), nn.Linear(16 * 2 * 2, 5))


def run(ctx) -> None:
    data = digits(seed=ctx.seed)
    ctx.progress("pretraining a small VGG on the digits 0-4")
    base, base_acc = pretrained_base(data, ctx.pick(15, 30), ctx.device)
    ctx.say(f"pretrained on digits 0-4: test accuracy {base_acc:.3f}")
    shots_list = ctx.pick((5, 20), (2, 5, 10, 20, 50))
    epochs = ctx.pick(20, 60)
    # A few examples per class make one draw a noisy measurement (one draw's margins move by 10+ points
    # with the seed), so every accuracy is the mean over several draws of the examples and of the inits.
    draws = 5
    new_test = data.y_test >= 5
    x_test, y_test = data.x_test[new_test], data.y_test[new_test] - 5
    rows, acc = [], {}
    for shots in shots_list:
        ctx.progress(f"{shots} examples per class: four methods, {draws} draws")
        for draw in range(draws):
            rng = np.random.default_rng([ctx.seed, shots, draw])
            idx = np.concatenate([rng.choice(np.flatnonzero(data.y_train == c), shots, replace=False)
                                  for c in range(5, 10)])
            xs, ys = data.x_train[idx], data.y_train[idx] - 5
            # repeat the few examples so every method sees the same number of optimizer steps per epoch
            xs, ys = np.repeat(xs, 256 // len(xs) + 1, axis=0), np.repeat(ys, 256 // len(ys) + 1, axis=0)
            dg.manual_seed(ctx.seed * 1000 + draw)
            scratch = small_vgg()
            fit(scratch, xs, ys, epochs, lr=3e-3, device=ctx.device)
            top = transferred(base)
            fit(top, xs, ys, epochs, lr=3e-3, device=ctx.device)
            extract = generic_features(base)
            fit(extract, xs, ys, epochs, lr=3e-3, device=ctx.device)
            recipe = transferred(base)
            fit(recipe, xs, ys, epochs // 2, lr=3e-3, device=ctx.device)       # 1. the new head on the frozen base
            unfreeze(recipe, names=UPPER)                                      # 2. then the upper blocks with the head
            fit(recipe, xs, ys, epochs - epochs // 2, lr=1e-3, device=ctx.device)
            models = {"from scratch": scratch, "feature extraction (top features)": top,
                      "feature extraction (block-2 features)": extract, "fine-tune upper block (VGG recipe)": recipe}
            for name, model in models.items():
                acc[name, shots] = acc.get((name, shots), 0.0) + accuracy(model, x_test, y_test, ctx.device) / draws
        for name, model in models.items():
            trainable, total = count_parameters(model) if name != "from scratch" else (None, None)
            rows.append([shots, name, acc[name, shots], "all" if trainable is None or trainable == total
                         else f"{trainable} of {total}"])
    ctx.table(f"Digits 5-9 learned from a few examples per class: test accuracy (mean of {draws} draws)",
              ["examples / class", "method", "test accuracy", "parameters trained (last phase)"], rows)
    ctx.figure(shots_figure(acc, shots_list), "shots", "Accuracy vs labelled examples",
               "Transfer from digits 0-4 against training from scratch, as the number of labelled examples grows.")
    k, big = shots_list[0], shots_list[-1]
    top, low = "feature extraction (top features)", "feature extraction (block-2 features)"
    ctx.claim(f"early layers are generic, late layers specific: with {k} examples per class a new head on the "
              f"pretrained block-2 features reaches >= 75% on the new digits, >= 25 points above a head on the top "
              f"conv features", acc[low, k] >= 0.75 and acc[low, k] - acc[top, k] >= 0.25,
              f"block-2 features {acc[low, k]:.3f}, top features {acc[top, k]:.3f}")
    scratch = "from scratch"
    ctx.claim(f"when labelled data is scarce, transfer wins: with {k} examples per class, feature extraction from the "
              f"generic layers beats training the whole network from scratch by >= 5 points",
              acc[low, k] >= acc[scratch, k] + 0.05,
              ", ".join(f"{n}/class: feature extraction {acc[low, n]:.3f}, from scratch {acc[scratch, n]:.3f}"
                        for n in (k, big)))
    recipe = "fine-tune upper block (VGG recipe)"
    ctx.say("In this tiny network the top blocks see 1x1 maps and end up specific to the digits 0-4, so fine-tuning "
            "them from a few examples recovers only part of the way; cutting at the generic layers works best.")
    methods = list(dict.fromkeys(m for m, _ in acc))
    best = {n: max(methods, key=lambda m, n=n: acc[m, n]) for n in shots_list}
    ctx.claim("fine-tuning recovers only part of the way, and cutting at the generic layers works best: at every size "
              "feature extraction from block 2 scores highest of the four methods, above the fine-tuned network",
              all(best[n] == low and acc[recipe, n] < acc[low, n] for n in shots_list),
              ", ".join(f"{n}/class: best {best[n]} {acc[best[n], n]:.3f}, fine-tuned {acc[recipe, n]:.3f}"
                        for n in shots_list))
    ctx.claim("fine-tuning the unfrozen upper blocks (VGG recipe) repairs the too-specific top features: >= 10 points "
              "above the frozen top features, at every size", all(acc[recipe, n] >= acc[top, n] + 0.10 for n in
                                                                  shots_list),
              ", ".join(f"{n}/class: {acc[recipe, n]:.3f} vs {acc[top, n]:.3f}" for n in shots_list))


def shots_figure(acc: dict, shots_list):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4))
    for name in dict.fromkeys(m for m, _ in acc):
        ax.plot(shots_list, [acc[name, k] for k in shots_list], "-o", ms=3, label=name)
    ax.set(xscale="log", xlabel="labelled examples per class (log scale)", ylabel="test accuracy (digits 5-9)",
           ylim=(0, 1))
    ax.set_xticks(shots_list, [str(k) for k in shots_list])
    ax.minorticks_off()
    ax.legend(fontsize=9, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return fig
