"""Question 4: what are CNNs? Weight sharing and translation, measured on 28x28 digits.

1. A convolution is translation *equivariant*: shifting the input shifts the feature map, exactly.
2. Pooling turns that into *invariance*: after global max pooling a shifted digit gives the same features.
3. So a CNN trained on centred digits copes better with shifted ones than an MLP of similar accuracy.
4. Weight sharing: a conv layer needs a tiny fraction of the parameters of a dense layer with the same map.
"""

from __future__ import annotations

import numpy as np

import deepgrad as dg
from deepgrad import nn

from .common import accuracy, digits, fit, image_grid, n_params, shift

NUMBER = 4
QUESTION = "What are convolutional neural networks (CNNs), and why do they suit images?"
ANSWER = (
    "A CNN replaces dense layers with convolutions: small filters (e.g. 3x3 or 5x5) slid over the image, the "
    "same weights at every position. This local connectivity and weight sharing cut the parameter count by "
    "orders of magnitude and make a feature detector work wherever the pattern appears: convolution is "
    "translation-equivariant (shift the input, the feature map shifts), and pooling adds (approximate) "
    "translation invariance. Stacking conv, non-linearity and pooling builds a hierarchy from edges to parts to "
    "objects; a final dense layer classifies. CNNs dominate vision and also work on audio, text and time series."
)

SHIFTS = [(0, 1), (0, 2), (0, 3), (2, 2)]  # (rows, columns) the test digits are moved by


def cnn() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(16 * 7 * 7, 10))


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))


def relative_change(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over samples of |a - b| / |a| (features flattened per sample)."""
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return float(np.mean(np.linalg.norm(a - b, axis=1) / np.maximum(np.linalg.norm(a, axis=1), 1e-12)))


def _sci(value: float) -> str:
    """A small number in scientific notation, or "0 (exact)" for an exact zero (not "0.0e+00")."""
    return f"{value:.1e}" if value else "0 (exact)"


def run(ctx) -> None:
    data = digits(size=28, seed=ctx.seed)
    model, dense = cnn(), mlp()
    epochs = ctx.pick(6, 15)
    ctx.progress(f"training a CNN and an MLP on centred 28x28 digits ({epochs} epochs each)")
    fit(model, data.x_train, data.y_train, epochs=epochs, lr=3e-3, device=ctx.device)
    fit(dense, data.x_train, data.y_train, epochs=epochs, lr=3e-3, device=ctx.device)
    model.to("cpu")
    features = nn.Sequential(model[0], model[1])  # the trained first conv layer and its ReLU
    x = data.x_test[:200]

    # 1. equivariance: conv(shift(x)) == shift(conv(x)) away from the border (where padding differs)
    with dg.no_grad():
        f = features(dg.tensor(x)).numpy()
        f_of_shifted = features(dg.tensor(shift(x, 0, 2))).numpy()
    interior = (slice(None), slice(None), slice(3, -3), slice(5, -3))
    err = float(np.abs(f_of_shifted[interior] - shift(f, 0, 2)[interior]).max() / np.abs(f).max())
    ctx.claim("convolution is translation-equivariant: the feature map of a digit shifted 2 px equals the shifted "
              "feature map (max difference <= 1e-5 of the largest activation)", err <= 1e-5, _sci(err))
    ctx.figure(image_grid([x[0, 0], shift(x, 0, 2)[0, 0], f[0, 0], f_of_shifted[0, 0], f[0, 1], f_of_shifted[0, 1]],
                          ["digit", "shifted 2 px", "map 1", "map 1, shifted digit", "map 2", "map 2, shifted digit"],
                          ncols=2, size=1.6), "equivariance", "Shift the input, the feature maps shift",
               "Two trained first-layer filters' responses (maps 1 and 2) to a digit (left) and to the same digit "
               "moved 2 pixels right (right): each map moves with the digit.")

    # 2. pooling and invariance: how much do the features change when the digit moves?
    rows, change = [], {}
    for dy, dx in SHIFTS:
        with dg.no_grad():
            fs = features(dg.tensor(shift(x, dy, dx))).numpy()
        pooled = nn.MaxPool2d(2)
        with dg.no_grad():
            p0, ps = pooled(dg.tensor(f)).numpy(), pooled(dg.tensor(fs)).numpy()
        change[(dy, dx)] = c = {
            "pixels": relative_change(x, shift(x, dy, dx)),
            "feature map": relative_change(f, fs),
            "2x2 max pool": relative_change(p0, ps),
            "global max pool": relative_change(f.max(axis=(2, 3)), fs.max(axis=(2, 3))),
        }
        rows.append([f"({dy}, {dx})"] + list(c.values()))
    ctx.table("Relative change of the representation when the digit is shifted", ["shift (rows, cols)", "pixels",
              "conv feature map", "+ 2x2 max pool", "+ global max pool"], rows)
    c2 = change[(0, 2)]
    ctx.claim("pooling buys invariance: after global max pooling a 2-px shift changes the features by <= 1%, "
              "while the un-pooled feature map changes by >= 30%",
              c2["global max pool"] <= 0.01 and c2["feature map"] >= 0.30,
              f"{_sci(c2['global max pool'])} vs {c2['feature map']:.3f}")
    local = all(c["2x2 max pool"] < c["feature map"] for c in change.values())
    ctx.claim("even a local 2x2 max pool makes the features less sensitive to every tested shift",
              local, ", ".join(f"{c['2x2 max pool']:.3f} < {c['feature map']:.3f}" for c in change.values()))

    # 3. the trained networks on shifted test digits
    acc = {name: [accuracy(m, shift(data.x_test, dy, dx), data.y_test, device=ctx.device)
                  for dy, dx in [(0, 0)] + SHIFTS]
           for name, m in (("CNN", model), ("MLP", dense))}
    ctx.table("Test accuracy on shifted digits", ["model", "parameters", "no shift"] + [f"shift {s}" for s in SHIFTS],
              [[name, n_params(m)] + acc[name] for name, m in (("CNN", model), ("MLP", dense))])
    cnn_shifted, mlp_shifted = float(np.mean(acc["CNN"][1:])), float(np.mean(acc["MLP"][1:]))
    ctx.claim("trained on centred digits, the CNN is more robust to shifts than the MLP: >= 3 points higher mean "
              "accuracy over the shifted test sets", cnn_shifted >= mlp_shifted + 0.03,
              f"CNN {cnn_shifted:.3f} vs MLP {mlp_shifted:.3f} (unshifted {acc['CNN'][0]:.3f} vs {acc['MLP'][0]:.3f})")

    # 4. weight sharing: the same 6 x 24 x 24 output map from a conv layer and from a dense layer
    conv = nn.Conv2d(1, 6, 5)
    out_size = int(np.prod(conv(dg.zeros(1, 1, 28, 28)).shape[1:]))
    full = nn.Linear(28 * 28, out_size)
    ratio = n_params(full) / n_params(conv)
    ctx.table("Parameters to map a 1x28x28 image to a 6x24x24 feature map", ["layer", "parameters"],
              [["Conv2d(1, 6, 5)", n_params(conv)], [f"Linear(784, {out_size})", n_params(full)]])
    ctx.claim("weight sharing: the conv layer needs >= 10,000x fewer parameters than a dense layer producing the "
              "same map", ratio >= 10_000, f"{n_params(conv):,} vs {n_params(full):,} ({ratio:,.0f}x)")
