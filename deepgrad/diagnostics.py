"""Gradient-flow diagnostics: per-layer gradient norms, update/weight ratios, saturated and dead units,
and a verdict (healthy / vanishing / exploding) — standalone or as a Trainer callback.

Standalone::

    monitor = GradientFlowMonitor(model)
    loss.backward(); monitor.step(); optimizer.step()      # every step you want recorded
    print(monitor.verdict())                               # e.g. vanishing: layers 0..16, first/last = 3e-12
    monitor.plot("gradient_flow.png")

As a callback: ``Trainer(..., callbacks=[GradientFlowMonitor(model)])``.

"Layers" are the modules that own parameters directly, in registration (depth) order. The verdict
compares the layers with a weight matrix/kernel (Linear, Conv, recurrent weights): the gradient norm
of the first such layer over that of the last, and each layer against the last.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from .autograd import is_grad_enabled
from .backend import array_module
from .creation import tensor
from .nn import ReLU, Sigmoid, Tanh
from .tensor import Tensor
from .train.callbacks import Callback


def _host_float(x) -> float:
    return float(x.get() if hasattr(x, "get") and not isinstance(x, np.ndarray) else x)


def _sq_norm(arrays) -> float:
    total = 0.0
    for a in arrays:
        xp = array_module(a)
        flat = a.reshape(-1).astype(np.float64)
        total += _host_float(xp.dot(flat, flat))
    return total


@dataclass
class Verdict:
    """The monitor's diagnosis: ``status`` is "healthy", "vanishing" or "exploding"."""

    status: str
    layers: list[str]
    first_last_ratio: float
    grad_norms: dict[str, float] = field(repr=False)
    message: str = ""

    def __str__(self) -> str:
        return self.message


class GradientFlowMonitor(Callback):
    """Record gradient flow through ``model``'s layers over training steps.

    ``saturation_tol``: a sigmoid output within ``tol`` of 0 or 1 (tanh: ``|y| > 1 - tol``) is saturated.
    ``vanishing_ratio`` / ``exploding_ratio``: a layer whose gradient norm is below ``vanishing_ratio``
    (above ``exploding_ratio``) times the last layer's is flagged; ``exploding_norm`` flags any layer
    norm above it. ``every_n_steps`` thins the recording when used as a callback.

    >>> model = deepgrad.nn.Sequential(deepgrad.nn.Linear(4, 8), deepgrad.nn.Tanh(), deepgrad.nn.Linear(8, 1))
    >>> x = deepgrad.randn(16, 4)
    >>> monitor = GradientFlowMonitor(model)
    >>> model(x).sum().backward(); monitor.step()
    >>> monitor.verdict().status
    'healthy'
    """

    def __init__(self, model, saturation_tol: float = 0.02, vanishing_ratio: float = 1e-2,
                 exploding_ratio: float = 1e2, exploding_norm: float = 1e4, every_n_steps: int = 1):
        self.model = model
        self.saturation_tol, self.every_n_steps = float(saturation_tol), max(1, int(every_n_steps))
        self.vanishing_ratio, self.exploding_ratio = float(vanishing_ratio), float(exploding_ratio)
        self.exploding_norm = float(exploding_norm)
        self.layers = [(name or type(m).__name__, m) for name, m in model.named_modules()
                       if any(p is not None for p in m._parameters.values())]
        if not self.layers:
            raise ValueError(f"GradientFlowMonitor: {type(model).__name__} has no parameters to monitor")
        self.layer_names = [n for n, _ in self.layers]
        self.weight_layers = [i for i, (_, m) in enumerate(self.layers)
                              if getattr(m, "_parameters", {}).get("weight") is not None and m.weight.ndim >= 2]
        self.activations = [(name, m) for name, m in model.named_modules() if isinstance(m, (Sigmoid, Tanh, ReLU))]
        self.steps: list[int] = []
        self.grad_norms: list[np.ndarray] = []      # one (layers,) array per recorded step
        self.update_ratios: list[np.ndarray] = []   # ||w_after - w_before|| / ||w_before||, NaN until known
        self.saturation: list[dict[str, float]] = []  # per recorded step: activation name -> fraction
        self.dead_relu: list[dict[str, float]] = []
        self._latest: dict[str, float] = {}
        self._snapshot: list[list] | None = None
        self._calls = 0
        self._recording = False
        self._handles = [m.register_forward_hook(self._activation_hook(name)) for name, m in self.activations]

    # ------------------------------------------------------------------ hooks and recording
    def _activation_hook(self, name: str):
        tol = self.saturation_tol

        def hook(module, inputs, output):
            if not is_grad_enabled() or not isinstance(output, Tensor):
                return None
            y = output.array
            xp = array_module(y)
            if isinstance(module, ReLU):  # a unit is dead when it is zero for every sample of the batch
                flat = y.reshape(y.shape[0], -1) if y.ndim > 1 else y.reshape(-1, 1)
                self._latest[name] = _host_float(xp.mean(xp.all(flat <= 0, axis=0)))
            elif isinstance(module, Sigmoid):
                self._latest[name] = _host_float(xp.mean((y < tol) | (y > 1 - tol)))
            else:
                self._latest[name] = _host_float(xp.mean(xp.abs(y) > 1 - tol))
            return None

        return hook

    def remove(self) -> None:
        """Detach the forward hooks."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> GradientFlowMonitor:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def _params(self, module) -> list:
        return [p for p in module._parameters.values() if p is not None]

    def record_gradients(self) -> None:
        """Store each layer's gradient norm and the activation statistics of the last forward pass."""
        norms = np.array([math.sqrt(_sq_norm([p.grad.array for p in self._params(m) if p.grad is not None]))
                          for _, m in self.layers])
        self.steps.append(self._calls)
        self.grad_norms.append(norms)
        self.update_ratios.append(np.full(len(self.layers), np.nan))
        self.saturation.append({k: v for k, v in self._latest.items()
                                if not isinstance(self._module(k), ReLU)})
        self.dead_relu.append({k: v for k, v in self._latest.items() if isinstance(self._module(k), ReLU)})

    def _module(self, name: str):
        return dict(self.activations)[name]

    def snapshot_weights(self) -> None:
        """Copy the weights before the optimizer step (for the update/weight ratio)."""
        self._snapshot = [[p.array.copy() for p in self._params(m)] for _, m in self.layers]

    def record_update(self) -> None:
        """Compare the weights with the last snapshot: the update-to-weight ratio of the latest record."""
        if self._snapshot is None or not self.update_ratios:
            return
        ratios = []
        for before, (_, m) in zip(self._snapshot, self.layers):
            after = [p.array for p in self._params(m)]
            delta = _sq_norm([a - b for a, b in zip(after, before)])
            ratios.append(math.sqrt(delta) / max(math.sqrt(_sq_norm(before)), 1e-30))
        self.update_ratios[-1] = np.array(ratios)
        self._snapshot = None

    def step(self) -> None:
        """Standalone use: call after ``loss.backward()`` and before ``optimizer.step()``.

        Records gradients and activation statistics, and (from the weights' change since the previous
        call) the previous step's update/weight ratios. Call :meth:`record_update` after the last step.
        """
        self.record_update()
        self.record_gradients()
        self.snapshot_weights()
        self._calls += 1

    # ------------------------------------------------------------------ callback hooks
    def on_after_backward(self, batch, logs):
        self._recording = self._calls % self.every_n_steps == 0
        if self._recording:
            self.record_gradients()

    def on_before_optimizer_step(self, batch, logs):
        if self._recording:
            self.snapshot_weights()

    def on_batch_end(self, batch, logs):
        if self._recording:
            self.record_update()
        self._calls += 1

    # ------------------------------------------------------------------ analysis
    def typical_grad_norms(self, last: int | None = None) -> np.ndarray:
        """Per-layer geometric mean of the gradient norm over the last ``last`` records (all by default)."""
        if not self.grad_norms:
            raise RuntimeError("GradientFlowMonitor: nothing recorded yet; call step() after loss.backward()")
        norms = np.stack(self.grad_norms[-last:] if last else self.grad_norms)
        if not np.all(np.isfinite(norms)):
            return np.where(np.isfinite(norms).all(axis=0), np.exp(np.log(np.maximum(norms, 1e-300)).mean(0)), np.inf)
        return np.exp(np.log(np.maximum(norms, 1e-300)).mean(axis=0))

    def verdict(self, last: int | None = None) -> Verdict:
        """"healthy", "vanishing" or "exploding", with the layers concerned and the first/last norm ratio."""
        norms = self.typical_grad_norms(last)
        idx = self.weight_layers or list(range(len(self.layers)))
        names = [self.layer_names[i] for i in idx]
        wn = norms[idx]
        first, final = wn[0], wn[-1]
        ratio = float(first / final) if final > 0 else math.inf
        per_layer = dict(zip(names, map(float, wn)))
        rel = wn / final if final > 0 else np.full_like(wn, np.inf)
        exploding = [n for n, r, v in zip(names, rel, wn) if not np.isfinite(v) or r > self.exploding_ratio
                     or v > self.exploding_norm]
        vanishing = [n for n, r in zip(names, rel) if r < self.vanishing_ratio]
        numbers = (f"gradient norm first layer {first:.3g} ({names[0]}), last layer {final:.3g} ({names[-1]}), "
                   f"first/last = {ratio:.3g}")
        if exploding:
            status, layers = "exploding", exploding
            msg = (f"exploding: {len(exploding)} of {len(names)} layers have gradient norms above "
                   f"{self.exploding_ratio:g}x the last layer's (or above {self.exploding_norm:g}): {_span(exploding)}")
        elif vanishing:
            status, layers = "vanishing", vanishing
            msg = (f"vanishing: {len(vanishing)} of {len(names)} layers have gradient norms below "
                   f"{self.vanishing_ratio:g}x the last layer's: {_span(vanishing)}")
        else:
            status, layers = "healthy", []
            msg = (f"healthy: every layer's gradient norm is within [{self.vanishing_ratio:g}, "
                   f"{self.exploding_ratio:g}]x the last layer's")
        extra = self._activation_summary()
        return Verdict(status, layers, ratio, per_layer, f"{msg}; {numbers}{'; ' + extra if extra else ''}")

    def _activation_summary(self) -> str:
        parts = []
        if self.saturation and self.saturation[-1]:
            sat = self.saturation[-1]
            parts.append(f"saturated sigmoid/tanh units: mean {np.mean(list(sat.values())):.0%}, "
                         f"max {max(sat.values()):.0%}")
        if self.dead_relu and self.dead_relu[-1]:
            dead = self.dead_relu[-1]
            parts.append(f"dead ReLUs: mean {np.mean(list(dead.values())):.0%}, max {max(dead.values()):.0%}")
        return "; ".join(parts)

    def summary(self) -> str:
        """A table: layer, typical gradient norm, last update/weight ratio."""
        norms = self.typical_grad_norms()
        ratios = self.update_ratios[-1] if self.update_ratios else np.full(len(norms), np.nan)
        known = [r for r in self.update_ratios if not np.all(np.isnan(r))]
        if known:
            ratios = known[-1]
        lines = [f"{'layer':<24}{'grad norm':>12}{'update/weight':>15}"]
        lines += [f"{n:<24}{g:>12.3e}{r:>15.3e}" for n, g, r in zip(self.layer_names, norms, ratios)]
        return "\n".join(lines + [str(self.verdict())])

    # ------------------------------------------------------------------ plotting
    def plot(self, path: str | os.PathLike, timestep_norms: np.ndarray | None = None) -> str:
        """PNG: gradient norm vs depth (log scale, first/last recorded step), update/weight ratio vs depth,
        saturated/dead fractions, and optionally gradient norm vs time step (see
        :func:`rnn_gradient_by_timestep`)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        norms = np.stack(self.grad_norms) if self.grad_norms else None
        if norms is None:
            raise RuntimeError("GradientFlowMonitor.plot: nothing recorded yet")
        panels = 2 + bool(self.activations) + (timestep_norms is not None)
        fig = Figure(figsize=(4.8 * panels, 3.8), dpi=100)
        FigureCanvasAgg(fig)
        depth = np.arange(len(self.layers))
        ax = fig.add_subplot(1, panels, 1)
        ax.semilogy(depth, norms[0], "-o", ms=3, label=f"step {self.steps[0]}")
        if len(norms) > 1:
            ax.semilogy(depth, norms[-1], "-s", ms=3, label=f"step {self.steps[-1]}")
        ax.set(title=f"gradient norm vs depth ({self.verdict().status})", xlabel="layer (input -> output)",
               ylabel="||grad||")
        ax.legend()
        ax.grid(alpha=0.3, which="both")
        ax = fig.add_subplot(1, panels, 2)
        known = [r for r in self.update_ratios if not np.all(np.isnan(r))]
        if known:
            ax.semilogy(depth, np.maximum(known[-1], 1e-300), "-o", ms=3)
        else:
            ax.text(0.5, 0.5, "no optimizer step recorded", ha="center", va="center", transform=ax.transAxes)
        ax.set(title="update / weight ratio (last step)", xlabel="layer", ylabel="||dW|| / ||W||")
        ax.grid(alpha=0.3, which="both")
        k = 3
        if self.activations:
            ax = fig.add_subplot(1, panels, k)
            k += 1
            last = {**(self.saturation[-1] if self.saturation else {}),
                    **(self.dead_relu[-1] if self.dead_relu else {})}
            names = [n for n, _ in self.activations]
            ax.plot(range(len(names)), [last.get(n, np.nan) for n in names], "o", color="tab:red")
            ax.set(title="saturated (sigmoid/tanh) or dead (ReLU) fraction", xlabel="activation layer", ylim=(0, 1))
        if timestep_norms is not None:
            ax = fig.add_subplot(1, panels, k)
            ax.semilogy(np.arange(len(timestep_norms)), np.maximum(timestep_norms, 1e-300), "-o", ms=3)
            ax.set(title="gradient norm vs time step", xlabel="time step t", ylabel="||dL/dx_t||")
            ax.grid(alpha=0.3, which="both")
        fig.tight_layout()
        path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, format="png")
        return path


def _span(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 6 else f"{', '.join(names[:3])}, ..., {', '.join(names[-2:])}"


def rnn_gradient_by_timestep(model, inputs, time_dim: int = 1, loss_fn=None) -> np.ndarray:
    """How strongly the loss at the last time step depends on each earlier input: ``||dL/dx_t||`` for every t.

    ``L`` is ``loss_fn(output)`` if given, else the sum of the output at the last time step (when the
    output is a sequence along ``time_dim``) or of the whole output. For a vanilla RNN the norm decays
    geometrically toward early time steps when gradients vanish through time.

    >>> rnn = deepgrad.nn.RNN(4, 16, batch_first=True)
    >>> norms = rnn_gradient_by_timestep(rnn, deepgrad.randn(8, 50, 4))   # batch_first input
    >>> norms.shape, bool(norms[0] / norms[-1] < 1e-6)   # 50 steps back, the gradient has vanished
    ((50,), True)
    """
    data = inputs.array if isinstance(inputs, Tensor) else np.asarray(inputs)
    x = tensor(data, requires_grad=True)  # a copy: the caller's array stays untouched
    out = model(x)
    if isinstance(out, (tuple, list)):
        out = out[0]
    if loss_fn is not None:
        loss = loss_fn(out)
    elif out.ndim == x.ndim:
        index = [slice(None)] * out.ndim
        index[time_dim] = -1
        loss = out[tuple(index)].sum()
    else:
        loss = out.sum()
    loss.backward()
    g = x.grad.array
    g = g.get() if hasattr(g, "get") and not isinstance(g, np.ndarray) else g
    g = np.moveaxis(np.asarray(g, dtype=np.float64), time_dim, 0)
    return np.sqrt((g.reshape(g.shape[0], -1) ** 2).sum(axis=1))
