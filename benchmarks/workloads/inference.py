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
        lambda lib, device: _lenet5_model(lib, device, batch))


def _register_lstm(batch: int) -> None:
    workload(f"lstm_infer_b{batch}",
             f"nn.LSTM(32, 128) + Linear head on the last step, seq 50, batch {batch}: eval(), no_grad, forward "
             "only (seeded weights: the timing does not depend on training)", samples=batch)(
        lambda lib, device: _lstm_infer(lib, device, batch))


for _batch in BATCHES:
    _register_lenet5(_batch)
for _batch in BATCHES:
    _register_lstm(_batch)


# Batch-1 replay (issue 23): deepgrad runs the same forward through ``dg.jit.trace`` (recorded once, replayed on raw
# arrays); torch runs it eagerly under no_grad, as in the rows above, so the ratio says what the replay path buys
# against torch's ordinary inference.
def _traced(lib, build):
    def make(_, device):
        step = build(lib, device)
        model, x = step.model, step.x
        if lib.__name__ == "deepgrad":
            traced = lib.jit.trace(model, x)
            return lambda: traced(x)
        return step
    return make


def _lenet5_model(lib, device, batch: int):
    gen = rng(20)
    model = lenet5(lib.nn).to(device)
    load_seeded_weights(lib, model, gen)
    model.eval()
    x = to_lib(lib, device, randn(gen, batch, 1, 28, 28))

    def step():
        with lib.no_grad():
            return model(x)

    step.model, step.x = model, x
    return step


def _lstm_model(lib, device, batch: int):
    gen = rng(21)
    rnn, head = seeded_rnn_and_head(lib, device, "LSTM", gen)
    model = _LastStep(lib)(rnn, head).eval()
    x = to_lib(lib, device, randn(gen, SEQ, batch, INPUT))

    def step():
        with lib.no_grad():
            return model(x)

    step.model, step.x = model, x
    return step


def _LastStep(lib):  # noqa: N802  (a class per library: nn.Module is the library's own)
    class LastStep(lib.nn.Module):
        def __init__(self, rnn, head):
            super().__init__()
            self.rnn, self.head = rnn, head

        def forward(self, x):
            return self.head(self.rnn(x)[0][-1])

    return LastStep


def _lenet5_model_b1(lib, device):
    return _lenet5_model(lib, device, 1)


def _lstm_model_b1(lib, device):
    return _lstm_model(lib, device, 1)


workload("lenet5_replay_b1", "LeNet-5 inference on 1x28x28, batch 1: deepgrad dg.jit.trace replay vs torch eager "
         "(no_grad), seeded weights", samples=1)(lambda lib, device: _traced(lib, _lenet5_model_b1)(lib, device))
workload("lstm_replay_b1", "nn.LSTM(32, 128) + Linear head on the last step, seq 50, batch 1: deepgrad dg.jit.trace "
         "replay vs torch eager (no_grad), seeded weights", samples=1)(
    lambda lib, device: _traced(lib, _lstm_model_b1)(lib, device))
