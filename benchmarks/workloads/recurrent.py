"""Recurrent workloads (issue 4): one training step of RNN / LSTM / GRU.

Input 32 features, hidden 128, 1 layer, sequence 50, batch 32, a linear head on the last step,
MSE, Adam. Both libraries get the same seeded weights (loaded by state-dict key, the keys being
identical), so the runner's first-step agreement check compares like with like.
"""

from __future__ import annotations

import importlib

from ..registry import workload
from .common import randn, rng, to_lib

INPUT, HIDDEN, SEQ, BATCH = 32, 128, 50, 32


def _layer_class(lib, name: str):
    found = getattr(lib.nn, name, None)
    if found is None:  # deepgrad before nn/__init__ exports the recurrent layers
        found = getattr(importlib.import_module(lib.__name__ + ".nn.recurrent"), name)
    return found


def seeded_rnn_and_head(lib, device, name: str, gen):
    """``nn.<name>(32, 128)`` and a ``Linear(128, 1)`` head with seeded weights, identical on both sides."""
    rnn = _layer_class(lib, name)(INPUT, HIDDEN).to(device)
    head = lib.nn.Linear(HIDDEN, 1).to(device)
    for module in (rnn, head):  # U(-1/sqrt(H), 1/sqrt(H))-sized weights
        module.load_state_dict({k: to_lib(lib, device, randn(gen, *v.shape, scale=HIDDEN ** -0.5 / 1.7))
                                for k, v in module.state_dict().items()})
    return rnn, head


def _build(lib, device, name: str, seed: int):
    gen = rng(seed)
    rnn, head = seeded_rnn_and_head(lib, device, name, gen)
    x = to_lib(lib, device, randn(gen, SEQ, BATCH, INPUT))
    target = to_lib(lib, device, randn(gen, BATCH, 1))
    opt = lib.optim.Adam(list(rnn.parameters()) + list(head.parameters()), lr=1e-3)

    def step():
        opt.zero_grad()
        out = rnn(x)[0]
        loss = ((head(out[-1]) - target) ** 2).mean()
        loss.backward()
        opt.step()
        return loss

    return step


@workload("rnn_tanh_train_step", "nn.RNN(32, 128) tanh, seq 50, batch 32, head on last step, MSE, Adam step")
def build_rnn(lib, device):
    return _build(lib, device, "RNN", 41)


@workload("lstm_train_step", "nn.LSTM(32, 128), seq 50, batch 32, head on last step, MSE, Adam step")
def build_lstm(lib, device):
    return _build(lib, device, "LSTM", 42)


@workload("gru_train_step", "nn.GRU(32, 128), seq 50, batch 32, head on last step, MSE, Adam step")
def build_gru(lib, device):
    return _build(lib, device, "GRU", 43)
