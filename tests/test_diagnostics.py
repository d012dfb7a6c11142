"""GradientFlowMonitor: verdicts on constructed networks, per-layer numbers, activation statistics, plots."""

from __future__ import annotations

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import nn, optim
from deepgrad.data import DataLoader, TensorDataset
from deepgrad.diagnostics import GradientFlowMonitor, rnn_gradient_by_timestep
from deepgrad.train import Trainer

DEPTH, WIDTH = 20, 32


def _mlp(act, batch_norm: bool = False, init=None, seed: int = 0):
    dg.manual_seed(seed)
    layers, fan_in = [], 16
    for _ in range(DEPTH - 1):
        layers.append(nn.Linear(fan_in, WIDTH))
        if batch_norm:
            layers.append(nn.BatchNorm1d(WIDTH))
        if act is not None:
            layers.append(act())
        fan_in = WIDTH
    layers.append(nn.Linear(fan_in, 10))
    model = nn.Sequential(*layers)
    if init is not None:
        for m in model.modules():
            if isinstance(m, nn.Linear):
                init(m)
    return model


def _kaiming(layer):
    nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
    nn.init.zeros_(layer.bias)


def _large(layer):  # twice the variance-preserving scale: every layer doubles the signal
    nn.init.normal_(layer.weight, 0.0, 2.0 / np.sqrt(layer.weight.shape[1]))
    nn.init.zeros_(layer.bias)


def _one_step(model, batch: int = 64):
    rng = np.random.default_rng(1)
    x = dg.tensor(rng.normal(size=(batch, 16)).astype(np.float32))
    y = dg.tensor(rng.integers(0, 10, batch))
    monitor = GradientFlowMonitor(model)
    nn.CrossEntropyLoss()(model(x), y).backward()
    monitor.step()
    return monitor


def test_sigmoid_mlp_vanishes_at_init():
    monitor = _one_step(_mlp(nn.Sigmoid))
    v = monitor.verdict()
    assert v.status == "vanishing", v.message
    norms = monitor.typical_grad_norms()[monitor.weight_layers]
    assert len(norms) == DEPTH
    assert v.first_last_ratio < 1e-10  # measured: ~1e-16 (0.25 x 0.58 per layer, 19 layers)
    assert norms[0] < 1e-10 * norms[-1]
    assert np.all(np.diff(np.log(norms[:-1])) > 0)  # the norm grows monotonically toward the output
    assert v.layers[0] == "0" and "vanishing" in str(v) and "first/last" in str(v)


@pytest.mark.parametrize("make", [
    lambda: _mlp(nn.ReLU, init=_kaiming),        # ReLU + He init
    lambda: _mlp(nn.Sigmoid, batch_norm=True),   # the vanishing sigmoid net, fixed by batch norm
    lambda: _mlp(nn.ReLU, batch_norm=True),
], ids=["relu-kaiming", "sigmoid-batchnorm", "relu-batchnorm"])
def test_healthy_networks(make):
    v = _one_step(make()).verdict()
    assert v.status == "healthy", v.message
    assert 1e-2 < v.first_last_ratio < 1e2
    assert v.layers == []


def test_large_init_linear_net_explodes():
    v = _one_step(_mlp(None, init=_large)).verdict()
    assert v.status == "exploding", v.message
    assert max(v.grad_norms.values()) > 1e4  # 2**19 times the unit scale
    assert len(v.layers) == DEPTH


def test_relative_explosion_is_flagged():
    monitor = GradientFlowMonitor(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)))
    monitor.grad_norms, monitor.steps = [np.array([500.0, 1.0])], [0]
    assert monitor.verdict().status == "exploding" and monitor.verdict().layers == ["0"]
    monitor.grad_norms = [np.array([0.005, 1.0])]
    assert monitor.verdict().status == "vanishing"


def test_saturation_and_dead_relu_fractions():
    dg.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.Sigmoid(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 32),
                          nn.ReLU(), nn.Linear(32, 2))
    x = dg.tensor(np.random.default_rng(0).normal(size=(50, 16)).astype(np.float32))
    with GradientFlowMonitor(model, saturation_tol=0.02) as monitor:
        model(x).sum().backward()
        monitor.step()
        small = (monitor.saturation[-1], monitor.dead_relu[-1])
        with dg.no_grad():
            model[0].weight.array *= 100.0    # sigmoid pre-activations ~ +-50: saturated
            model[2].weight.array *= 100.0
            model[4].bias.array[:16] = -1e3   # half of the ReLUs never fire
        model.zero_grad()
        model(x).sum().backward()
        monitor.step()
    sat, dead = monitor.saturation[-1], monitor.dead_relu[-1]
    assert small[0]["1"] < 0.05 and small[0]["3"] < 0.05
    assert sat["1"] > 0.9 and sat["3"] > 0.9
    with dg.no_grad():
        h = model[4](model[3](model[2](model[1](model[0](x))))).numpy()
    expected_dead = np.mean(np.all(h <= 0, axis=0))
    assert dead["5"] == pytest.approx(expected_dead) and dead["5"] >= 0.5
    assert not monitor._handles  # the context manager detached its hooks


def test_update_to_weight_ratio_matches_sgd_step():
    dg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 1))
    opt = optim.SGD(model.parameters(), lr=0.1)
    monitor = GradientFlowMonitor(model)
    x = dg.randn(8, 4)
    model(x).pow(2).mean().backward()
    monitor.step()
    expected = []
    for layer in (model[0], model[2]):
        g = np.concatenate([layer.weight.grad.array.ravel(), layer.bias.grad.array.ravel()])
        w = np.concatenate([layer.weight.array.ravel(), layer.bias.array.ravel()]).astype(np.float64)
        expected.append(0.1 * np.linalg.norm(g) / np.linalg.norm(w))
    opt.step()
    monitor.record_update()
    np.testing.assert_allclose(monitor.update_ratios[-1], expected, rtol=1e-5)


def test_as_trainer_callback(tmp_path):
    dg.manual_seed(0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 16)).astype(np.float32), rng.integers(0, 10, 40)
    model = _mlp(nn.Sigmoid)
    monitor = GradientFlowMonitor(model, every_n_steps=2)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), callbacks=[monitor],
                      progress=False)
    trainer.fit(DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True), epochs=2)
    assert monitor.steps == [0, 2, 4, 6, 8]
    ratios = np.stack(monitor.update_ratios)
    assert np.all(np.isfinite(ratios)) and np.all(ratios[:, -1] > 1e-4)
    assert np.all(ratios[:, 0] < 1e-7)  # the first layer's update is lost below float32 resolution
    assert monitor.verdict().status == "vanishing"
    assert "grad norm" in monitor.summary()
    path = monitor.plot(tmp_path / "flow.png", timestep_norms=np.array([1e-3, 1e-2, 1.0]))
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


class _TinyRNN(nn.Module):
    """h_t = tanh(W_ih x_t + W_hh h_{t-1}); batch-first input, returns all hidden states."""

    def __init__(self, recurrent_gain: float):
        super().__init__()
        self.ih, self.hh = nn.Linear(3, 16), nn.Linear(16, 16, bias=False)
        nn.init.orthogonal_(self.hh.weight, gain=recurrent_gain)
        nn.init.normal_(self.ih.weight, 0.0, 0.1)

    def forward(self, x):
        h, outs = dg.zeros(x.shape[0], 16), []
        for t in range(x.shape[1]):
            h = (self.ih(x[:, t]) + self.hh(h)).tanh()
            outs.append(h)
        return dg.stack(outs, 1)


def test_rnn_gradient_by_timestep_decays_with_small_recurrent_weights():
    dg.manual_seed(0)
    x = dg.randn(4, 30, 3)
    small = rnn_gradient_by_timestep(_TinyRNN(0.5), x)
    unit = rnn_gradient_by_timestep(_TinyRNN(1.0), x)
    assert small.shape == (30,)
    assert small[0] < 1e-6 * small[-1]       # ~0.5**29 through the recurrence
    assert unit[0] > 1e-3 * unit[-1]         # an orthogonal recurrence keeps far more of it (measured ~5e-3)
    assert unit[0] / unit[-1] > 1e3 * small[0] / small[-1]
    assert np.all(np.diff(np.log(small)) > 0)
