"""deepgrad.cuda.graphs: a training step captured as a CUDA graph replays exactly as the eager step (GPU), and
what a replay would silently freeze is refused up front (CPU)."""

from __future__ import annotations

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import nn, optim
from deepgrad.cuda_graphs import _host_step_dependent

needs_cuda = pytest.mark.skipif(not dg.cuda_is_available(), reason="no CUDA device (CuPy)")


def test_optimizers_with_host_step_counts_are_named():
    p = [dg.ones(2, requires_grad=True)]
    for opt in (optim.Adam(p), optim.AdamW(p), optim.NAdam(p), optim.Adagrad(p, lr_decay=0.1)):
        assert type(opt).__name__ in _host_step_dependent(opt)
    for opt in (optim.SGD(p, lr=0.1, momentum=0.9), optim.RMSprop(p), optim.Adagrad(p)):
        assert _host_step_dependent(opt) is None


@pytest.mark.skipif(dg.cuda_is_available(), reason="a GPU is present")
def test_without_a_gpu_capture_is_refused():
    with pytest.raises(RuntimeError, match="cuda.graphs.CapturedStep: no CUDA device"):
        dg.cuda.graphs.capture_step(lambda: None)


def _setup(batches):
    dg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2)).to("cuda")
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)

    def step(x, y):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return model, opt, step


@needs_cuda
def test_captured_step_replays_like_the_eager_step_cuda():
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((8, 4)).astype(np.float32), rng.standard_normal((8, 2)).astype(np.float32))
               for _ in range(6)]
    model, _, step = _setup(batches)
    x0, y0 = (dg.tensor(a, device="cuda") for a in batches[0])
    step(x0, y0)
    step(x0, y0)  # the two warm-up steps the capture runs
    eager = [step(*(dg.tensor(a, device="cuda") for a in b)).item() for b in batches[1:]]

    model2, opt2, step2 = _setup(batches)
    sx, sy = (dg.tensor(a, device="cuda") for a in batches[0])
    captured = dg.cuda.graphs.capture_step(step2, sx, sy, warmup=2, optimizers=[opt2])
    replayed = []
    for b in batches[1:]:
        captured.load(*b)
        replayed.append(captured.replay().item())
    np.testing.assert_allclose(replayed, eager, rtol=1e-6)
    for p, q in zip(model.parameters(), model2.parameters()):
        np.testing.assert_allclose(q.detach().cpu().numpy(), p.detach().cpu().numpy(), rtol=1e-6, atol=1e-7)


@needs_cuda
def test_capture_refuses_adam_and_host_syncs_cuda():
    model = nn.Linear(3, 1).to("cuda")
    x = dg.ones(2, 3, device="cuda")
    with pytest.raises(ValueError, match="Adam computes its bias corrections"):
        dg.cuda.graphs.capture_step(lambda x: model(x).sum(), x, optimizers=[optim.Adam(model.parameters())])

    def syncing(x):
        loss = model(x).sum()
        if loss.item() > 1e9:  # a host round trip: cannot be recorded
            pass
        return loss

    with pytest.raises(RuntimeError, match="may not synchronize with the host"):
        dg.cuda.graphs.capture_step(syncing, x)
