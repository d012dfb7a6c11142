"""Every exercise: its reference solution passes its own judge, and a typical wrong solution fails
with a message that names the mistake."""

from __future__ import annotations

import textwrap

import pytest

from deepgrad.practice import all_exercises, judge

# id -> (a typical wrong solution, a fragment the failure report must contain)
WRONG = {
    "relu": ("""
        import numpy as np
        def relu_forward(x): return np.maximum(x, 0)
        def relu_backward(x, grad_out): return grad_out * (x >= 0)
        """, "gradient at exactly 0 is 0"),
    "leaky-relu": ("""
        import numpy as np
        def leaky_relu_forward(x): return np.where(x > 0, 0.1 * x, x)
        def leaky_relu_backward(x, grad_out): return np.where(x > 0, grad_out, 0.1 * grad_out)
        """, "belongs to the negative side"),
    "sigmoid": ("""
        import numpy as np
        def sigmoid_forward(x): return 1 / (1 + np.exp(-x))
        def sigmoid_backward(x, grad_out): return grad_out * x * (1 - x)
        """, "backward receives x"),
    "tanh": ("""
        import numpy as np
        def tanh_forward(x): return np.tanh(x)
        def tanh_backward(x, grad_out): return grad_out * (1 - x ** 2)
        """, "1 - tanh(x)^2"),
    "softmax": ("""
        import numpy as np
        def softmax(x, dim):
            e = np.exp(x)
            return e / e.sum(axis=dim, keepdims=True)
        """, "subtract x.max"),
    "softmax-cross-entropy": ("""
        import numpy as np
        def cross_entropy(logits, target):
            n = len(target)
            z = logits - logits.max(1, keepdims=True)
            p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
            g = p.copy(); g[np.arange(n), target] -= 1
            return float(-np.log(p[np.arange(n), target]).sum()), g
        """, "you summed over the batch"),
    "linear-backward": ("""
        def linear_backward(x, weight, bias, grad_out):
            return grad_out @ weight, x.T @ grad_out, grad_out.sum(0)
        """, "transposed"),
    "mlp-backprop": ("""
        import numpy as np
        def mlp_backprop(x, y, w1, b1, w2, b2):
            n = len(y)
            h = np.maximum(x @ w1.T + b1, 0)
            z = h @ w2.T + b2
            z = z - z.max(1, keepdims=True)
            p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
            dz = p.copy(); dz[np.arange(n), y] -= 1; dz /= n
            dh = dz @ w2
            return float(-np.log(p[np.arange(n), y]).mean()), dh.T @ x, dh.sum(0), dz.T @ h, dz.sum(0)
        """, "ReLU mask"),
    "embedding-backward": ("""
        import numpy as np
        def embedding_backward(indices, weight, grad_out):
            dw = np.zeros_like(weight)
            dw[indices.reshape(-1)] += grad_out.reshape(-1, weight.shape[1])
            return dw
        """, "np.add.at"),
    "l1-l2-penalty": ("""
        import numpy as np
        def penalty(w, l1, l2):
            return float(l1 * np.abs(w).sum() + l2 * (w * w).sum()), l1 * np.sign(w) + l2 * w
        """, "factor 2"),
    "sgd-momentum": ("""
        def sgd_momentum_step(param, grad, buf, lr, momentum, weight_decay, nesterov):
            g = grad + weight_decay * param
            buf = lr * g if buf is None else momentum * buf + lr * g
            return param - buf, buf
        """, "lr inside the buffer"),
    "adam-step": ("""
        import numpy as np
        def adam_step(param, grad, m, v, t, lr, beta1, beta2, eps, weight_decay):
            g = grad + weight_decay * param
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g * g
            return param - lr * m / (np.sqrt(v) + eps), m, v
        """, "no bias correction"),
    "adamw-step": ("""
        import numpy as np
        def adamw_step(param, grad, m, v, t, lr, beta1, beta2, eps, weight_decay):
            g = grad + weight_decay * param
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g * g
            mh, vh = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
            return param - lr * mh / (np.sqrt(vh) + eps), m, v
        """, "Adam with L2"),
    "clip-grad-norm": ("""
        import numpy as np
        def clip_grad_norm(grads, max_norm):
            total = float(np.sqrt(sum((g * g).sum() for g in grads)))
            return [g * min(1.0, max_norm / (np.linalg.norm(g) + 1e-6)) for g in grads], total
        """, "one global norm"),
    "cosine-lr": ("""
        import math
        def cosine_lr(base_lr, eta_min, T_max, epoch):
            return eta_min + (base_lr - eta_min) * (1 + math.cos(2 * math.pi * epoch / T_max)) / 2
        """, "half a period"),
    "early-stopping": ("""
        import math
        def early_stopping(losses, patience, min_delta):
            best, best_epoch, wait = math.inf, -1, 0
            for epoch, loss in enumerate(losses):
                if loss <= best - min_delta:
                    best, best_epoch, wait = loss, epoch, 0
                    continue
                wait += 1
                if wait >= patience:
                    return epoch, best_epoch
            return -1, best_epoch
        """, "improvement is strict"),
    "conv-output-size": ("""
        def conv_output_size(h, w, kernel_size, stride, padding, dilation):
            return (h + 2 * padding - kernel_size) // stride + 1, (w + 2 * padding - kernel_size) // stride + 1
        """, "ignored the dilation"),
    "conv2d-forward": ("""
        import numpy as np
        def conv2d(x, weight, bias, stride, padding):
            weight = weight[:, :, ::-1, ::-1]
            n, c, h, w = x.shape
            o, _, kh, kw = weight.shape
            xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
            ho, wo = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
            out = np.zeros((n, o, ho, wo), dtype=x.dtype)
            for di in range(kh):
                for dj in range(kw):
                    patch = xp[:, :, di:di + stride * ho:stride, dj:dj + stride * wo:stride]
                    out += np.einsum("nchw,oc->nohw", patch, weight[:, :, di, dj])
            return out + bias.reshape(1, o, 1, 1)
        """, "kernel flipped"),
    "conv2d-backward": ("""
        import numpy as np
        def conv2d_backward(x, weight, bias, stride, padding, grad_out):
            n, c, h, w = x.shape
            o, _, kh, kw = weight.shape
            ho, wo = grad_out.shape[2:]
            p = padding
            xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
            dxp = np.zeros_like(xp)
            dw = np.zeros_like(weight)
            for di in range(kh):
                for dj in range(kw):
                    win = (slice(None), slice(None), slice(di, di + stride * ho, stride),
                           slice(dj, dj + stride * wo, stride))
                    dw[:, :, di, dj] = np.einsum("nohw,nchw->oc", grad_out, xp[win])
                    dxp[win] = np.einsum("nohw,oc->nchw", grad_out, weight[:, :, di, dj])  # = instead of +=
            return dxp[:, :, p:p + h, p:p + w], dw, grad_out.sum(axis=0)
        """, "forget to sum over the batch"),
    "maxpool2d-forward": ("""
        import numpy as np
        def max_pool2d(x, kernel_size, stride, padding):
            k, s, p = kernel_size, stride, padding
            n, c, h, w = x.shape
            ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
            return np.max([xp[:, :, i:i + s * ho:s, j:j + s * wo:s] for i in range(k) for j in range(k)], axis=0)
        """, "pad with -inf"),
    "maxpool2d-backward": ("""
        import numpy as np
        def max_pool2d_backward(x, kernel_size, stride, grad_out):
            k, s = kernel_size, stride
            dx = np.zeros_like(x)
            for a in range(grad_out.shape[2]):
                for b in range(grad_out.shape[3]):
                    win = x[:, :, a * s:a * s + k, b * s:b * s + k]
                    mask = win == win.max(axis=(2, 3), keepdims=True)
                    view = dx[:, :, a * s:a * s + k, b * s:b * s + k]
                    view[mask] = np.broadcast_to(grad_out[:, :, a:a + 1, b:b + 1], win.shape)[mask]
            return dx
        """, "accumulate with +="),
    "avgpool2d": ("""
        import numpy as np
        def _pool(x, k, s, p):
            n, c, h, w = x.shape
            ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
            ones = np.pad(np.ones_like(x), ((0, 0), (0, 0), (p, p), (p, p)))
            tot = sum(xp[:, :, i:i + s * ho:s, j:j + s * wo:s] for i in range(k) for j in range(k))
            cnt = sum(ones[:, :, i:i + s * ho:s, j:j + s * wo:s] for i in range(k) for j in range(k))
            return tot / cnt
        def avg_pool2d(x, kernel_size, stride, padding):
            return _pool(x, kernel_size, stride, padding)
        def avg_pool2d_backward(x, kernel_size, stride, padding, grad_out):
            return np.zeros_like(x)
        """, "count_include_pad"),
    "sumpool2d": ("""
        import numpy as np
        def sum_pool2d(x, kernel_size, stride):
            k, s = kernel_size, stride
            ho, wo = (x.shape[2] - k) // s + 1, (x.shape[3] - k) // s + 1
            return sum(x[:, :, i:i + s * ho:s, j:j + s * wo:s] for i in range(k) for j in range(k)) / (k * k)
        def sum_pool2d_backward(x, kernel_size, stride, grad_out):
            return np.zeros_like(x)
        """, "sum pooling does not divide"),
    "global-avg-pool": ("""
        import numpy as np
        def global_avg_pool(x): return x.mean(axis=(2, 3))
        def global_avg_pool_backward(x, grad_out):
            return np.broadcast_to(grad_out[:, :, None, None], x.shape).copy()
        """, "divides by H * W"),
    "flatten": ("""
        def flatten(x, start_dim): return x.reshape(-1)
        def flatten_backward(grad_out, input_shape): return grad_out.reshape(input_shape)
        """, "wrong shape"),
    "batchnorm-forward": ("""
        import numpy as np
        def batch_norm_train(x, gamma, beta, running_mean, running_var, momentum, eps):
            axes = (0,) + tuple(range(2, x.ndim)); shape = (1, -1) + (1,) * (x.ndim - 2)
            mean, var = x.mean(axis=axes), x.var(axis=axes)
            y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * gamma.reshape(shape) \\
                + beta.reshape(shape)
            return y, (1 - momentum) * running_mean + momentum * mean, (1 - momentum) * running_var + momentum * var
        """, "UNBIASED"),
    "batchnorm-eval": ("""
        import numpy as np
        def batch_norm_eval(x, gamma, beta, running_mean, running_var, eps):
            axes = (0,) + tuple(range(2, x.ndim)); shape = (1, -1) + (1,) * (x.ndim - 2)
            mean, var = x.mean(axis=axes), x.var(axis=axes)
            return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * gamma.reshape(shape) \\
                + beta.reshape(shape)
        """, "batch statistics"),
    "batchnorm-backward": ("""
        import numpy as np
        def batch_norm_backward(x, gamma, beta, eps, grad_out):
            axes = (0,) + tuple(range(2, x.ndim)); shape = (1, -1) + (1,) * (x.ndim - 2)
            mean = x.mean(axis=axes, keepdims=True)
            inv = 1 / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
            xh = (x - mean) * inv
            return grad_out * gamma.reshape(shape) * inv, (grad_out * xh).sum(axis=axes), grad_out.sum(axis=axes)
        """, "as constants"),
    "layernorm": ("""
        import numpy as np
        def layer_norm(x, gamma, beta, eps):
            return (x - x.mean(0, keepdims=True)) / np.sqrt(x.var(0, keepdims=True) + eps) * gamma + beta
        """, "over the batch"),
    "dropout": ("""
        import numpy as np
        def dropout(x, p, training, rng):
            if not training:
                return x
            return x * (rng.random(x.shape) >= p).astype(x.dtype)
        """, "missing 1/(1 - p) scaling"),
    "dropout-backward": ("""
        def dropout_backward(grad_out, mask, p): return grad_out * mask
        """, "missing 1/(1 - p) scaling"),
    "kaiming-init": ("""
        import math
        import numpy as np
        def kaiming_normal(shape, rng):
            fan_out = shape[0] * math.prod(shape[2:])
            return (rng.standard_normal(shape) * math.sqrt(2 / fan_out)).astype(np.float32)
        """, "fan_out"),
    "rnn-cell": ("""
        import numpy as np
        def rnn_cell(x, h, w_ih, w_hh, b_ih, b_hh): return np.tanh(x @ w_ih.T + b_ih + h @ w_hh.T)
        """, "b_hh is missing"),
    "lstm-cell": ("""
        import numpy as np
        def s(v): return 1 / (1 + np.exp(-v))
        def lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh):
            i, f, o, g = np.split(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh, 4, axis=1)
            c2 = s(f) * c + s(i) * np.tanh(g)
            return s(o) * np.tanh(c2), c2
        """, "i, f, o, g"),
    "lstm-cell-backward": ("""
        import numpy as np
        def s(v): return 1 / (1 + np.exp(-v))
        def lstm_cell_backward(x, h, c, w_ih, w_hh, b_ih, b_hh, grad_h, grad_c):
            ai, af, ag, ao = np.split(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh, 4, axis=1)
            i, f, g, o = s(ai), s(af), np.tanh(ag), s(ao)
            tc = np.tanh(f * c + i * g)
            dct = grad_h * o * (1 - tc * tc)
            da = np.concatenate([dct * g * i * (1 - i), dct * c * f * (1 - f), dct * i * (1 - g * g),
                                 grad_h * tc * o * (1 - o)], axis=1)
            return da @ w_ih, da @ w_hh, dct * f, da.T @ x, da.T @ h, da.sum(0), da.sum(0)
        """, "ignored grad_c"),
    "gru-cell": ("""
        import numpy as np
        def s(v): return 1 / (1 + np.exp(-v))
        def gru_cell(x, h, w_ih, w_hh, b_ih, b_hh):
            ir, iz, in_ = np.split(x @ w_ih.T + b_ih, 3, axis=1)
            whr, whz, whn = np.split(w_hh, 3); bhr, bhz, bhn = np.split(b_hh, 3)
            r, z = s(ir + h @ whr.T + bhr), s(iz + h @ whz.T + bhz)
            n = np.tanh(in_ + (r * h) @ whn.T + bhn)
            return (1 - z) * n + z * h
        """, "reset gate before"),
    "augment-crop-flip": ("""
        import numpy as np
        def crop_flip(img, padding, top, left, size, flip):
            p = padding
            out = np.pad(img, ((0, 0), (p, p), (p, p)))[:, top:top + size, left:left + size]
            return out[:, ::-1, :].copy() if flip else out.copy()
        """, "flipped top-bottom"),
    "freeze-layers": ("""
        def freeze_and_step(params, grads, frozen, lr, weight_decay):
            fz = lambda n: any(n == p or n.startswith(p + ".") for p in frozen)
            new = {n: p - lr * ((0 if fz(n) else grads[n]) + weight_decay * p) for n, p in params.items()}
            return new, sum(p.size for n, p in params.items() if not fz(n))
        """, "must not change at all"),
    "gan-d-loss": ("""
        import numpy as np
        def discriminator_loss(real_logits, fake_logits):
            s = lambda v: 1 / (1 + np.exp(-v))
            loss = np.logaddexp(0, -real_logits).mean() + np.logaddexp(0, -fake_logits).mean()
            return float(loss), (s(real_logits) - 1) / real_logits.size, (s(fake_logits) - 1) / fake_logits.size
        """, "target 1 for the fakes"),
    "gan-g-loss": ("""
        import numpy as np
        def generator_loss(fake_logits, non_saturating):
            s = 1 / (1 + np.exp(-fake_logits)); n = fake_logits.size
            if not non_saturating:
                return float(np.logaddexp(0, -fake_logits).mean()), (s - 1) / n
            return float(-np.logaddexp(0, fake_logits).mean()), -s / n
        """, "swapped the two losses"),
}

IDS = list(all_exercises())


def test_bank_covers_the_issue():
    bank = all_exercises()
    assert len(bank) >= 30
    assert set(WRONG) == set(bank), "every exercise needs a wrong solution in this file"
    for ex in bank.values():
        assert ex.statement and ex.starter and ex.solution and ex.hints, ex.id
        assert ex.difficulty in (1, 2, 3) and ex.topic and ex.question, ex.id
        assert (ex.reference is None) != (ex.judge_case is None), ex.id
    topics = {ex.topic for ex in bank.values()}
    assert {"backprop", "cnns", "pooling", "rnns", "overfitting", "transfer-learning", "gans"} <= topics


def _write(tmp_path, name, text):
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("ex_id", IDS)
def test_reference_solution_passes(ex_id, tmp_path):
    ex = all_exercises()[ex_id]
    v = judge(ex_id, _write(tmp_path, "solution", ex.solution))
    assert v.passed, v.report
    assert v.cases_passed == v.cases_total > 0


@pytest.mark.parametrize("ex_id", IDS)
def test_typical_mistake_fails_helpfully(ex_id, tmp_path):
    source, fragment = WRONG[ex_id]
    v = judge(ex_id, _write(tmp_path, "wrong", textwrap.dedent(source)))
    assert not v.passed
    assert v.status == "failed", v.report
    assert fragment in v.report, v.report
    assert "case " in v.report  # it says which case


@pytest.mark.parametrize("ex_id", ["relu", "conv2d-forward"])
def test_starter_file_fails_without_crashing(ex_id, tmp_path):
    from deepgrad.practice.cli import starter_file

    v = judge(ex_id, _write(tmp_path, "starter", starter_file(all_exercises()[ex_id])))
    assert not v.passed and v.status == "failed"
    assert "expected a NumPy array" in v.report
