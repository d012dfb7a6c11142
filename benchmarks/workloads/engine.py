"""Engine-only workloads: tensors, ops, autograd and a manual SGD step (no nn / optim).

Every builder is written once against the API deepgrad shares with torch, so both libraries
run literally the same code on the same seeded data.
"""

from __future__ import annotations

from ..registry import workload
from .common import randn, rng, sgd_update, to_lib, zero_grads


@workload("op_overhead", "12 elementwise ops + mean on 8x16 tensors, forward+backward (per-op cost)")
def build_op_overhead(lib, device):
    gen = rng(1)
    x = to_lib(lib, device, randn(gen, 8, 16), requires_grad=True)
    w = to_lib(lib, device, randn(gen, 16), requires_grad=True)
    b = to_lib(lib, device, randn(gen, 16), requires_grad=True)
    params = (x, w, b)

    def step():
        y = x * w + b
        y = y.tanh() * 0.5 + x
        y = y.relu() - 0.1 * y
        y = y.sigmoid() * y.exp().clamp(max=10.0)
        loss = (y * y).mean()
        loss.backward()
        zero_grads(params)
        return loss

    return step


@workload("mlp_tiny", "MLP 2-16-16-1 tanh, batch 8, MSE, manual SGD step (engine per-op overhead)")
def build_mlp_tiny(lib, device):
    gen = rng(2)
    x = to_lib(lib, device, randn(gen, 8, 2))
    target = to_lib(lib, device, randn(gen, 8, 1))
    sizes = [(2, 16), (16, 16), (16, 1)]
    params = []
    for fan_in, fan_out in sizes:
        params.append(to_lib(lib, device, randn(gen, fan_in, fan_out, scale=fan_in ** -0.5), requires_grad=True))
        params.append(to_lib(lib, device, randn(gen, fan_out, scale=0.1), requires_grad=True))
    w1, b1, w2, b2, w3, b3 = params

    def step():
        h = (x @ w1 + b1).tanh()
        h = (h @ w2 + b2).tanh()
        out = h @ w3 + b3
        loss = ((out - target) ** 2).mean()
        loss.backward()
        sgd_update(lib, params, lr=0.05)
        return loss

    return step


@workload("elementwise_4m", "tanh(a*b + c).mean() on 2048x2048 (4M elements), forward+backward")
def build_elementwise_large(lib, device):
    gen = rng(3)
    a = to_lib(lib, device, randn(gen, 2048, 2048), requires_grad=True)
    b = to_lib(lib, device, randn(gen, 2048, 2048), requires_grad=True)
    c = to_lib(lib, device, randn(gen, 2048, 2048) + 0.5, requires_grad=True)  # offset: a mean far from 0
    params = (a, b, c)

    def step():
        loss = (a * b + c).tanh().mean()
        loss.backward()
        zero_grads(params)
        return loss

    return step


@workload("matmul_1024", "1024x1024 @ 1024x1024, forward+backward with a fixed upstream gradient (3 GEMMs)")
def build_matmul_large(lib, device):
    gen = rng(4)
    a = to_lib(lib, device, randn(gen, 1024, 1024), requires_grad=True)
    b = to_lib(lib, device, randn(gen, 1024, 1024), requires_grad=True)
    # A random upstream gradient, not .sum(): the backward is then exactly two plain GEMMs.
    upstream = to_lib(lib, device, randn(gen, 1024, 1024))

    def step():
        out = a @ b
        out.backward(upstream)
        zero_grads((a, b))
        return out

    return step


@workload("softmax_256x1000", "softmax, log_softmax, gather-NLL, entropy, logsumexp on 256x1000, fwd+bwd")
def build_softmax(lib, device):
    gen = rng(5)
    x = to_lib(lib, device, randn(gen, 256, 1000, scale=3.0), requires_grad=True)
    target = lib.tensor(gen.integers(0, 1000, size=(256, 1)), device=device)

    def step():
        logp = x.log_softmax(dim=1)
        p = x.softmax(dim=1)
        nll = -logp.gather(1, target).mean()
        entropy = -(p * logp).sum(dim=1).mean()
        loss = nll + 0.1 * entropy + 0.01 * x.logsumexp(dim=1).mean()
        loss.backward()
        x.grad = None
        return loss

    return step
