"""Question 6: the parameters of a conv layer — kernel size, stride, padding, activation, number of filters.

1. The output-size formula floor((n + 2p - d(k - 1) - 1) / s) + 1 is checked against real Conv2d layers.
2. The parameter count (k*k*C_in + 1) * C_out is checked against the layers' weights.
3. A one-factor-at-a-time sweep around a base CNN on 8x8 digits: accuracy, parameters and speed.
"""

from __future__ import annotations

import itertools

import numpy as np

import deepgrad as dg
from deepgrad import nn

from .common import accuracy, best_time, digits, fit, n_params

NUMBER = 6
QUESTION = "What are the parameters of a convolution layer, and how do they affect the network?"
ANSWER = (
    "Kernel size (the receptive field of each filter: larger sees more context, costs k^2 more weights and "
    "compute), stride (the step between positions: stride s shrinks the map about s times per side and cuts "
    "compute), padding (zeros around the border: 'same' padding keeps the size and lets border pixels count), "
    "dilation (gaps inside the kernel), the number of filters (output channels: more features, more parameters "
    "and compute) and the activation after it (ReLU is the default; without one stacked convs collapse into a "
    "single linear map). The output size is floor((n + 2p - d(k - 1) - 1) / s) + 1 and the layer has "
    "(k*k*C_in + 1) * C_out parameters."
)

BASE = {"kernel": 3, "stride": 1, "padding": 1, "activation": "relu", "filters": 16}
SWEEP = {  # one factor changed at a time around BASE
    "kernel": [1, 3, 5],
    "stride": [1, 2],
    "padding": [0, 1],
    "activation": ["relu", "tanh", "none"],
    "filters": [4, 16, 64],
}
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "none": nn.Identity}


def output_size(n: int, k: int, s: int, p: int, d: int) -> int:
    """The conv output-size formula."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def make_cnn(kernel: int, stride: int, padding: int, activation: str, filters: int) -> nn.Sequential:
    """Two conv layers with the given settings on 8x8 digits, then a linear classifier."""
    act = ACTIVATIONS[activation]
    body = nn.Sequential(nn.Conv2d(1, filters, kernel, stride, padding), act(),
                         nn.Conv2d(filters, filters, kernel, stride, padding), act(), nn.Flatten())
    with dg.no_grad():
        n_features = body(dg.zeros(1, 1, 8, 8)).shape[1]  # let the layers tell us the flattened size
    return nn.Sequential(*body, nn.Linear(n_features, 10))


def check_formulas(ctx) -> None:
    """Output sizes and parameter counts of a grid of real Conv2d layers vs the formulas."""
    configs = list(itertools.product([7, 8, 28], [1, 3, 5], [1, 2, 3], [0, 1, 2], [1, 2]))  # n, k, s, p, d
    shape_ok = params_ok = checked = 0
    rows = []
    for n, k, s, p, d in configs:
        if n + 2 * p < d * (k - 1) + 1:
            continue  # the kernel does not fit: the layer rejects it (as torch does)
        conv = nn.Conv2d(3, 4, k, stride=s, padding=p, dilation=d)
        with dg.no_grad():
            out = conv(dg.zeros(1, 3, n, n)).shape[-1]
        checked += 1
        shape_ok += out == output_size(n, k, s, p, d)
        params_ok += n_params(conv) == (k * k * 3 + 1) * 4
        if (n, s, d) in ((28, 1, 1), (28, 2, 1), (8, 1, 2)) and p in (0, 1):
            rows.append([n, k, s, p, d, output_size(n, k, s, p, d), out, n_params(conv)])
    ctx.table("Output size: formula vs the real layer (a sample; C_in=3, C_out=4)",
              ["n", "k", "stride", "padding", "dilation", "formula", "Conv2d", "parameters"], rows)
    ctx.claim(f"the output-size formula floor((n+2p-d(k-1)-1)/s)+1 matches the real Conv2d in all {checked} "
              "configurations tested", shape_ok == checked, f"{shape_ok}/{checked} match")
    ctx.claim("the parameter count (k*k*C_in + 1)*C_out matches the layer's weights in every configuration",
              params_ok == checked, f"{params_ok}/{checked} match")


def run(ctx) -> None:
    check_formulas(ctx)
    data = digits(seed=ctx.seed)
    epochs, repeats = ctx.pick(8, 30), ctx.pick(1, 3)
    ctx.say(f"sweep: base {BASE} on 8x8 digits, Adam 1e-2 with cosine decay, {epochs} epochs, mean of {repeats} runs; "
            "time = forward + backward of one batch of 256 (best of 5)")
    results, rows = {}, []
    x_batch, y_batch = dg.tensor(data.x_train[:256]), dg.tensor(data.y_train[:256])
    for factor, values in SWEEP.items():
        for value in values:
            settings = {**BASE, factor: value}
            key = tuple(settings.items())
            if key not in results:
                ctx.progress(f"{factor} = {value}: training")
                accs = []
                for _ in range(repeats):
                    model = make_cnn(**settings)
                    fit(model, data.x_train, data.y_train, epochs=epochs, lr=1e-2, device=ctx.device, anneal=True)
                    accs.append(accuracy(model, data.x_test, data.y_test, device=ctx.device))
                model.to("cpu")
                # the best of 5: on a busy machine one of 3 runs was not always left undisturbed
                ms = 1e3 * best_time(lambda m=model: nn.functional.cross_entropy(m(x_batch), y_batch).backward(),
                                     repeat=5)
                results[key] = (float(np.mean(accs)), n_params(model), ms)
            acc, params, ms = results[key]
            rows.append([factor, value, params, acc, ms])
    ctx.table("One factor at a time (others at the base setting)", ["factor", "value", "parameters",
              "test accuracy", "ms per batch step"], rows)

    def get(factor, value):
        return results[tuple({**BASE, factor: value}.items())]

    s1, s2 = get("stride", 1), get("stride", 2)
    ctx.claim("stride 2 is cheaper: the step on a batch runs >= 1.5x faster than with stride 1",
              s1[2] >= 1.5 * s2[2], f"{s1[2]:.2f} ms vs {s2[2]:.2f} ms ({s1[2] / s2[2]:.1f}x)")
    f4, f64 = get("filters", 4), get("filters", 64)
    ctx.claim("more filters cost more: 64 filters have >= 10x the parameters and take >= 3x the time of 4 filters",
              f64[1] >= 10 * f4[1] and f64[2] >= 3 * f4[2],
              f"{f64[1]:,} vs {f4[1]:,} parameters; {f64[2]:.2f} vs {f4[2]:.2f} ms")
    accs = [acc for acc, _, _ in results.values()]
    params, times = [p for _, p, _ in results.values()], [t for _, _, t in results.values()]
    ctx.say(f"accuracy spans {min(accs):.3f}-{max(accs):.3f}: on 8x8 digits every setting learns; the settings "
            "differ far more in cost (parameters, time) than in accuracy, which is why architecture choices are "
            "so often made for speed and memory.")
    ctx.claim("every setting learns (>= 90% test accuracy) and the settings differ far more in cost than in accuracy: "
              "best and worst accuracy within 6 points, while parameters differ >= 10x and time per step >= 5x",
              min(accs) >= 0.90 and max(accs) - min(accs) <= 0.06 and max(params) >= 10 * min(params)
              and max(times) >= 5 * min(times),
              f"accuracy {min(accs):.3f}-{max(accs):.3f}; parameters {min(params):,}-{max(params):,} "
              f"({max(params) / min(params):.0f}x); {min(times):.2f}-{max(times):.2f} ms per step "
              f"({max(times) / min(times):.0f}x)")
