"""Transformer workloads (issue 20): one training step of a small encoder at two sequence lengths.

Two ``TransformerEncoderLayer(d_model=64, nhead=4, dim_feedforward=256, batch_first=True)`` layers, batch 16,
mean-pooled into a ``Linear(64, 10)`` head, cross-entropy, Adam. Dropout is 0 so both libraries compute the same
numbers (their dropout masks could not be shared); the weights are seeded and loaded by state-dict key, the keys
being identical. T = 64 is dominated by the linear layers, T = 256 by attention's (T x T) weights.
"""

from __future__ import annotations

from ..registry import workload
from .cnn import load_seeded_weights
from .common import randn, rng, to_lib

D_MODEL, HEADS, FEEDFORWARD, LAYERS, BATCH, CLASSES = 64, 4, 256, 2, 16, 10


def _build(lib, device, length: int, seed: int):
    nn = lib.nn
    gen = rng(seed)
    layer = nn.TransformerEncoderLayer(D_MODEL, HEADS, FEEDFORWARD, dropout=0.0, batch_first=True)
    encoder = nn.TransformerEncoder(layer, LAYERS).to(device)
    head = nn.Linear(D_MODEL, CLASSES).to(device)
    for module in (encoder, head):
        load_seeded_weights(lib, module, gen)
    x = to_lib(lib, device, randn(gen, BATCH, length, D_MODEL))
    y = lib.tensor(gen.integers(0, CLASSES, BATCH), device=device)
    opt = lib.optim.Adam(list(encoder.parameters()) + list(head.parameters()), lr=1e-3)

    def step():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(head(encoder(x).mean(dim=1)), y)
        loss.backward()
        opt.step()
        return loss

    return step


@workload("encoder_t64_adam", "2 TransformerEncoderLayers (d 64, 4 heads, ff 256), batch 16, T 64, mean pool, "
          "cross-entropy, Adam step")
def build_t64(lib, device):
    return _build(lib, device, 64, 60)


@workload("encoder_t256_adam", "2 TransformerEncoderLayers (d 64, 4 heads, ff 256), batch 16, T 256, mean pool, "
          "cross-entropy, Adam step")
def build_t256(lib, device):
    return _build(lib, device, 256, 61)
