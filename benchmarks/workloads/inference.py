"""Inference-throughput workloads (issue 9): LeNet-5 and the LSTM, forward only, at batch 1 and 256.

``model.eval()`` and ``lib.no_grad()``: no graph is recorded. The weights are seeded, not trained:
a forward pass costs the same whatever the values of its weights. Each workload declares its
batch as ``samples``, so the report adds samples/s beside ms/step.
"""

from __future__ import annotations

from ..registry import workload
from .cnn import lenet5, load_seeded_weights
from .common import randn, rng, to_lib
from .recurrent import INPUT, SEQ, seeded_rnn_and_head

BATCHES = (1, 256)


def _lenet5_infer(lib, device, batch: int):
    gen = rng(20)
    model = lenet5(lib.nn).to(device)
    load_seeded_weights(lib, model, gen)
    model.eval()
    x = to_lib(lib, device, randn(gen, batch, 1, 28, 28))

    def step():
        with lib.no_grad():
            return model(x)

    return step


def _lstm_infer(lib, device, batch: int):
    gen = rng(21)
    rnn, head = seeded_rnn_and_head(lib, device, "LSTM", gen)
    rnn.eval()
    head.eval()
    x = to_lib(lib, device, randn(gen, SEQ, batch, INPUT))

    def step():
        with lib.no_grad():
            return head(rnn(x)[0][-1])

    return step


def _register_lenet5(batch: int) -> None:
    workload(f"lenet5_infer_b{batch}",
             f"LeNet-5 inference on 1x28x28, batch {batch}: eval(), no_grad, forward only (seeded weights: "
             "the timing does not depend on training)", samples=batch)(
        lambda lib, device: _lenet5_infer(lib, device, batch))


def _register_lstm(batch: int) -> None:
    workload(f"lstm_infer_b{batch}",
             f"nn.LSTM(32, 128) + Linear head on the last step, seq 50, batch {batch}: eval(), no_grad, forward "
             "only (seeded weights: the timing does not depend on training)", samples=batch)(
        lambda lib, device: _lstm_infer(lib, device, batch))


for _batch in BATCHES:
    _register_lenet5(_batch)
for _batch in BATCHES:
    _register_lstm(_batch)
