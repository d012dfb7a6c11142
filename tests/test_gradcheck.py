"""float64 finite-difference gradcheck of every differentiable core op, and proof that gradcheck
fails (naming the worst element) when a backward is wrong."""

import numpy as np
import pytest

import deepgrad as dg
import deepgrad.functional as F
from deepgrad.autograd import Function, GradcheckError, gradcheck


def t(*shape, seed=0, low=None, high=None, requires_grad=True):
    """A float64 test input (normal, or uniform in [low, high))."""
    rng = np.random.default_rng(seed)
    data = rng.standard_normal(shape) if low is None else rng.uniform(low, high, shape)
    return dg.tensor(data, dtype=dg.float64, requires_grad=requires_grad)


def away_from_zero(*shape, seed=0):
    """Values with |x| in [0.2, 2): finite differences never straddle a kink at 0."""
    rng = np.random.default_rng(seed)
    data = rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.2, 2.0, shape)
    return dg.tensor(data, dtype=dg.float64, requires_grad=True)


def distinct(*shape, seed=0):
    """A permutation of well-separated values: max/min have a unique winner."""
    rng = np.random.default_rng(seed)
    data = rng.permutation(int(np.prod(shape))).reshape(shape) * 0.5 - 1.0
    return dg.tensor(data, dtype=dg.float64, requires_grad=True)


IDX = dg.tensor([[0, 2, 2], [1, 1, 0]])
MASK = dg.tensor([[True, False, True], [False, True, True]])

# name -> (function of the inputs, inputs factory)
CASES = {
    "add": (lambda a, b: a + b, lambda: [t(2, 3), t(3, seed=1)]),
    "sub": (lambda a, b: a - b, lambda: [t(2, 1), t(3, seed=1)]),
    "mul": (lambda a, b: a * b, lambda: [t(2, 3), t(2, 1, seed=1)]),
    "div": (lambda a, b: a / b, lambda: [t(2, 3), away_from_zero(3, seed=1)]),
    "pow": (lambda a, b: a**b, lambda: [t(2, 3, low=0.5, high=2.0), t(2, 3, seed=1)]),
    "scalar_forms": (lambda a: (2.0 - a) * 3.0 / 4.0 + 1.5 / (a * a + 1.0) - a / 2.0, lambda: [t(2, 3)]),
    "pow_scalar": (lambda a: a**3 + a**2 + (a * a + 0.5) ** 0.5 + (a * a + 1.0) ** -1.5, lambda: [t(2, 3)]),
    "rpow": (lambda a: 2.0**a + 0.5**a, lambda: [t(2, 3)]),
    "neg": (lambda a: -a, lambda: [t(2, 3)]),
    "abs": (F.abs, lambda: [away_from_zero(2, 3)]),
    "exp": (F.exp, lambda: [t(2, 3)]),
    "log": (F.log, lambda: [t(2, 3, low=0.5, high=2.0)]),
    "log1p": (F.log1p, lambda: [t(2, 3, low=-0.5, high=2.0)]),
    "sqrt": (F.sqrt, lambda: [t(2, 3, low=0.5, high=2.0)]),
    "sin": (F.sin, lambda: [t(2, 3)]),
    "cos": (F.cos, lambda: [t(2, 3)]),
    "tanh": (F.tanh, lambda: [t(2, 3)]),
    "sigmoid": (F.sigmoid, lambda: [t(2, 3)]),
    "relu": (F.relu, lambda: [away_from_zero(2, 3)]),
    "leaky_relu": (lambda a: F.leaky_relu(a, 0.1), lambda: [away_from_zero(2, 3)]),
    "elu": (lambda a: F.elu(a, 0.7), lambda: [away_from_zero(2, 3)]),
    "gelu": (F.gelu, lambda: [t(2, 3)]),
    "gelu_tanh": (lambda a: F.gelu(a, approximate="tanh"), lambda: [t(2, 3)]),
    "softplus": (lambda a: F.softplus(a, beta=2.0, threshold=1.0), lambda: [away_from_zero(2, 3)]),
    "softmax": (lambda a: F.softmax(a, 1), lambda: [t(2, 3)]),
    "log_softmax": (lambda a: F.log_softmax(a, 0), lambda: [t(2, 3)]),
    "matmul": (lambda a, b: a @ b, lambda: [t(2, 3), t(3, 2, seed=1)]),
    "matmul_batched_broadcast": (lambda a, b: a @ b, lambda: [t(2, 1, 2, 3), t(3, 3, 2, seed=1)]),
    "matmul_vectors": (lambda a, b, c: (a @ b) @ c * (b @ c).sum() + a @ (b @ c),
                       lambda: [t(3), t(3, 2, seed=1), t(2, seed=2)]),
    "linear": (F.linear, lambda: [t(4, 3), t(2, 3, seed=1), t(2, seed=2)]),
    "sum": (lambda a: a.sum(1) + a.sum() + a.sum((0, 1), keepdim=True).reshape(()), lambda: [t(2, 3)]),
    "mean": (lambda a: a.mean(0, keepdim=True) * a.mean(), lambda: [t(2, 3)]),
    "var": (lambda a: a.var(1) + a.var(0, correction=0).sum(), lambda: [t(2, 3)]),
    "std": (lambda a: a.std(1, keepdim=True) + a.std(), lambda: [t(2, 3)]),
    "max_min_full": (lambda a: a.max() - a.min(), lambda: [distinct(2, 3)]),
    "max_min_dim": (lambda a: a.max(1)[0] + a.min(0, keepdim=True)[0].sum(), lambda: [distinct(2, 3)]),
    "amax_amin": (lambda a: a.amax(1) + a.amin((0, 1)), lambda: [distinct(2, 3)]),
    "logsumexp": (lambda a: a.logsumexp(1) + a.logsumexp((0, 1)), lambda: [t(2, 3)]),
    "reshape_flatten": (lambda a: a.reshape(3, 2).flatten() * a.view(-1), lambda: [t(2, 3)]),
    "squeeze_unsqueeze": (lambda a: a.unsqueeze(1).squeeze(1).unsqueeze(-1), lambda: [t(2, 3)]),
    "transpose_permute": (lambda a: a.transpose(0, 2) + a.permute(2, 1, 0), lambda: [t(2, 3, 2)]),
    "expand_repeat": (lambda a: a.expand(2, 2, 3) * a.repeat(2, 1, 1), lambda: [t(2, 1)]),
    "getitem_basic": (lambda a: a[1:, ::2] * a[0, None, :2] + a[1:, -1:], lambda: [t(3, 4)]),
    "getitem_advanced": (lambda a: a[[0, 0, 2], 1:] + a[IDX, 1].sum(0), lambda: [t(3, 4)]),
    "getitem_mask": (lambda a: a[MASK] * a[MASK].sum(), lambda: [t(2, 3)]),
    "setitem": (lambda a, b: _setitem(a, b), lambda: [t(2, 3), t(3, seed=1)]),
    "cat_stack": (lambda a, b: dg.cat([a, b], 1).sum(0) + dg.stack([a, b], 0).sum((0, 1)).repeat(2),
                  lambda: [t(2, 3), t(2, 3, seed=1)]),
    "split_chunk_unbind": (lambda a: a.split([1, 3], 1)[1].sum() * a.chunk(2, 0)[0] + a.unbind(1)[2][:, None],
                           lambda: [t(2, 4)]),
    "pad": (lambda a: F.pad(a, (1, -1, -1, 2), value=0.5), lambda: [t(3, 4)]),
    "where": (lambda a, b: dg.where(MASK, a, b), lambda: [t(2, 3), t(3, seed=1)]),
    "masked_fill": (lambda a: a.masked_fill(MASK, 0.5), lambda: [t(2, 3)]),
    "clamp": (lambda a: a.clamp(-0.5, 0.5) + a.clamp(min=0.1) + a.clamp(max=-0.1), lambda: [t(2, 3)]),
    "clamp_tensor_bounds": (lambda a, lo, hi: a.clamp(lo, hi),
                            lambda: [distinct(2, 3), t(3, low=-1.2, high=-0.3, seed=1), t(2, 1, low=0.3, high=1.2)]),
    "maximum_minimum": (lambda a, b: a.maximum(b) * a.minimum(b), lambda: [t(2, 3), t(3, seed=1)]),
    "gather": (lambda a: a.gather(1, IDX), lambda: [t(2, 3)]),
    "norm": (lambda a: a.norm() + a.norm(1, dim=1).sum(), lambda: [away_from_zero(2, 3)]),
    "inplace_non_leaf": (lambda a, b: _inplace(a, b), lambda: [t(2, 3), away_from_zero(3, seed=1)]),
}


def _setitem(a, b):
    out = a * 1.0
    out[1] = b * 2.0
    out[0, ::2] = 0.0
    return out * a


def _inplace(a, b):
    h = a * 1.0
    h += b
    h *= a
    h /= b
    h.sub_(a, alpha=0.5)
    h.pow_(2)
    return h


@pytest.mark.parametrize("name", list(CASES))
def test_gradcheck(name):
    fn, make_inputs = CASES[name]
    assert gradcheck(fn, make_inputs())


def test_gradcheck_max_dim_returns_values_and_int_indices():
    # the integer indices of max(dim) carry no gradient and are ignored by gradcheck
    assert gradcheck(lambda a: a.max(1), [distinct(3, 2)])


class WrongMulBackward(Function):
    """x * y with a deliberately wrong gradient for y (it should be g * x)."""

    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, g):
        return g * self.y, g * self.x * 1.5


def test_gradcheck_fails_on_a_wrong_backward_and_names_the_worst_element():
    x = dg.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=dg.float64, requires_grad=True)
    y = dg.tensor([[0.1, 0.2], [0.3, 0.4]], dtype=dg.float64, requires_grad=True)
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda a, b: WrongMulBackward.apply(a, b), [x, y])
    message = str(info.value)
    # The error is 0.5 * |upstream * x|: the worst element is where that is largest.
    upstream = np.random.default_rng(0).standard_normal((2, 2))
    worst = np.unravel_index(np.argmax(np.abs(upstream * x.detach().numpy())), (2, 2))
    assert "input #1" in message and f"at index {tuple(int(i) for i in worst)}" in message
    assert "numerical=" in message and "analytic=" in message
    assert not gradcheck(lambda a, b: WrongMulBackward.apply(a, b), [x, y], raise_exception=False)
    assert x.grad is None and y.grad is None  # gradcheck leaves the inputs' grads alone


def test_gradcheck_requires_float64():
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda a: a * 2, [dg.ones(2, requires_grad=True)])
