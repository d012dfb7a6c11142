"""deepgrad.jit.trace: the replay equals the eager forward bit for bit, refuses what it cannot replay, and never
runs on stale weights."""

import numpy as np
import pytest

import deepgrad as dg
from deepgrad import nn, optim
from deepgrad.jit import TraceError
from deepgrad.models.lenet import LeNet5


class LSTMRegressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(6, 16, num_layers=2)
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        out, (h, c) = self.rnn(x)
        return self.head(out[-1]), h


def _models():
    dg.manual_seed(0)
    conv_bn = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(8, 4, 3), nn.BatchNorm2d(4), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 2 * 2, 5))
    for m in conv_bn:  # running statistics that are not the initial 0 / 1, so eval mode really uses them
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.array[...] = np.random.default_rng(1).normal(size=m.num_features)
            m.running_var.array[...] = np.random.default_rng(2).uniform(0.5, 2, size=m.num_features)
    mlp = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 32), nn.GELU(),
                        nn.Dropout(0.2), nn.Linear(32, 3), nn.LogSoftmax(dim=1))
    return {
        "lenet5": (LeNet5(), (1, 1, 28, 28)),
        "mlp_dropout": (mlp, (4, 10)),
        "lstm": (LSTMRegressor(), (7, 3, 6)),
        "conv_bn": (conv_bn, (2, 3, 8, 8)),
    }


def _leaves(out):
    return [t.array for t in (out if isinstance(out, tuple) else (out,))]


@pytest.mark.parametrize("name", ["lenet5", "mlp_dropout", "lstm", "conv_bn"])
def test_replay_equals_eager_bit_for_bit(name):
    model, shape = _models()[name]
    model.eval()
    example = dg.randn(*shape)
    traced = dg.jit.trace(model, example)
    for seed in range(3):  # the example and fresh values of the traced shape
        x = example if seed == 0 else dg.randn(*shape, generator=dg.Generator().manual_seed(seed))
        with dg.no_grad():
            eager = model(x)
        replayed = traced(x)
        for a, b in zip(_leaves(eager), _leaves(replayed), strict=True):
            assert a.dtype == b.dtype and a.shape == b.shape
            assert np.array_equal(a, b), f"{name}: replay differs from eager by {np.abs(a - b).max()}"


def test_replayed_outputs_are_not_overwritten_by_the_next_replay():
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3)).eval()
    traced = dg.jit.trace(model, dg.randn(2, 5))
    x1, x2 = dg.randn(2, 5), dg.randn(2, 5)
    first = traced(x1)
    kept = first.array.copy()
    traced(x2)
    assert np.array_equal(first.array, kept)


def test_trace_leaves_the_example_and_parameters_untouched():
    model = LeNet5().eval()
    x = dg.randn(1, 1, 28, 28)
    before = x.array.copy()
    state = {k: v.array.copy() for k, v in model.state_dict().items()}
    dg.jit.trace(model, x)
    assert np.array_equal(x.array, before)
    assert all(np.array_equal(v.array, state[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("bad, what", [((3, 1, 28, 28), r"shape \(3, 1, 28, 28\)"),
                                       ((1, 1, 32, 32), r"shape \(1, 1, 32, 32\)")])
def test_another_shape_is_refused_naming_jit_and_both_shapes(bad, what):
    traced = dg.jit.trace(LeNet5().eval(), dg.randn(1, 1, 28, 28))
    with pytest.raises(RuntimeError, match=rf"jit\.trace: input 0 has {what}.*traced for shape \(1, 1, 28, 28\)"):
        traced(dg.randn(*bad))


def test_another_dtype_and_a_wrong_arity_are_refused():
    traced = dg.jit.trace(nn.Linear(3, 2).eval(), dg.randn(4, 3))
    with pytest.raises(RuntimeError, match=r"jit\.trace: .*dtype float64.*traced .*dtype float32"):
        traced(dg.randn(4, 3, dtype=dg.float64))
    with pytest.raises(TypeError, match=r"jit\.trace: the traced forward takes 1 input\(s\), got 2"):
        traced(dg.randn(4, 3), dg.randn(4, 3))


class BranchOnValue(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        y = self.fc(x)
        if y.sum() > 0:  # data-dependent control flow through a Python bool
            return y.relu()
        return -y


class BranchOnRawArray(nn.Module):
    """Data-dependent control flow the conversion hooks cannot see (reading ``.array`` directly)."""

    def forward(self, x):
        keep = int(np.argmax(x.array.reshape(-1))) + 1  # how much to keep depends on where the maximum is
        return x.reshape(-1)[:keep] * 2


def test_data_dependent_control_flow_is_refused():
    with pytest.raises(TraceError, match=r"jit\.trace: Tensor.__bool__\(\) in the model's forward \(BranchOnValue\)"):
        dg.jit.trace(BranchOnValue(), dg.randn(2, 4))
    x = dg.tensor([[1.0, -2.0, 3.0], [-4.0, -5.0, 6.0]])  # the shuffled copy has its maximum elsewhere
    with pytest.raises(TraceError, match=r"jit\.trace\(BranchOnRawArray\): .*shuffled copy"):
        dg.jit.trace(BranchOnRawArray(), x)


def test_dropout_in_training_mode_is_refused():
    model = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.5))  # train mode: random masks
    with pytest.raises(TraceError, match=r"dropout in training mode: call model\.eval\(\)"):
        dg.jit.trace(model, dg.randn(16, 8))


def _assert_replay_matches(model, traced, x):
    with dg.no_grad():
        eager = model(x)
    assert np.array_equal(traced(x).array, eager.array)
    return eager


def test_parameter_updates_after_tracing_are_seen():
    dg.manual_seed(3)
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    x = dg.randn(5, 6)
    model.eval()
    traced = dg.jit.trace(model, x)
    before = traced(x).array.copy()
    # An optimizer step (an in-place write into every parameter).
    model.train()
    opt = optim.SGD(model.parameters(), lr=0.5)
    nn.functional.mse_loss(model(dg.randn(5, 6)), dg.randn(5, 2)).backward()
    opt.step()
    model.eval()
    after_step = _assert_replay_matches(model, traced, x)
    assert not np.array_equal(after_step.array, before)
    # load_state_dict with other weights and running statistics.
    other = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    other.state_dict()["1.running_mean"].array[...] = 0.7
    model.load_state_dict(other.state_dict())
    loaded = _assert_replay_matches(model, traced, x)
    assert not np.array_equal(loaded.array, after_step.array)
    # A parameter replaced by a new Parameter object, and one whose memory is replaced through .data.
    model[3].weight = nn.Parameter(dg.randn(2, 8))
    model[0].bias.data = dg.randn(8)
    _assert_replay_matches(model, traced, x)


def test_parameters_that_no_longer_fit_or_a_mode_switch_are_refused():
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 2)).eval()
    traced = dg.jit.trace(model, dg.randn(2, 3))
    model.train()
    with pytest.raises(RuntimeError, match=r"jit\.trace: module 'Sequential' of Sequential was traced in eval mode"):
        traced(dg.randn(2, 3))
    model.eval()
    model.double()
    with pytest.raises(RuntimeError, match=r"jit\.trace: '0\.weight' has shape \(4, 3\) and dtype float64 now"):
        traced(dg.randn(2, 3))
    model.float()
    model[2].weight = nn.Parameter(dg.randn(2, 5))
    with pytest.raises(RuntimeError, match=r"'2\.weight' has shape \(2, 5\).*traced with shape \(2, 4\)"):
        traced(dg.randn(2, 3))


def test_replay_records_no_graph():
    model = nn.Linear(3, 2).train()  # parameters require grad
    traced = dg.jit.trace(model, dg.randn(4, 3))
    out = traced(dg.randn(4, 3, requires_grad=True))
    assert not out.requires_grad and out.grad_fn is None


@pytest.mark.parametrize("kwargs", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                    dict(kernel_size=(2, 3), stride=(1, 2), dilation=2, ceil_mode=True)])
def test_max_pool_replay_kernel_equals_the_forward_with_nans_and_infinities(kwargs):
    """The replay swaps max pooling's forward for a values-only kernel (kernels.pool.max_pool2d_values)."""
    from deepgrad.jit.program import LOWER
    from deepgrad.ops.pool import MaxPool

    model = nn.Sequential(nn.MaxPool2d(**kwargs), nn.ReLU()).eval()
    x = dg.randn(3, 2, 9, 11)
    x.array[0, 0, ::3, ::2], x.array[1, 1, 4, 5], x.array[2, 0, 0, 0] = np.nan, np.inf, -np.inf
    traced = dg.jit.trace(model, x, check=False)  # NaN positions move in a shuffled copy: compare directly
    assert any(step.op is MaxPool for step in traced.program.steps) and MaxPool in LOWER
    with dg.no_grad():
        eager = model(x)
    np.testing.assert_array_equal(traced(x).array, eager.array)  # NaN where eager has NaN, values equal elsewhere
    assert np.isnan(eager.array).any()


def test_max_pool_indices_are_refused_not_replayed_wrong():
    """max_pool2d's indices come out beside the op (not as an op output): the trace says it cannot replay them."""
    class WithIndices(nn.Module):
        def forward(self, x):
            return nn.functional.max_pool2d(x, 2, return_indices=True)

    with pytest.raises(TraceError, match=r"output of shape \(1, 2, 3, 3\) was not computed by deepgrad ops"):
        dg.jit.trace(WithIndices(), dg.randn(1, 2, 6, 6))


def test_replays_from_several_threads_each_get_their_own_result():
    from concurrent.futures import ThreadPoolExecutor

    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 8)).eval()
    traced = dg.jit.trace(model, dg.randn(4, 16))
    inputs = [dg.randn(4, 16, generator=dg.Generator().manual_seed(k)) for k in range(8)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda x: [traced(x).array for _ in range(20)], inputs))
    for x, outs in zip(inputs, results):
        with dg.no_grad():
            want = model(x).array
        assert all(np.array_equal(o, want) for o in outs)


def test_only_modules_are_traced():
    with pytest.raises(TypeError, match=r"jit\.trace: model must be a deepgrad\.nn\.Module, got function"):
        dg.jit.trace(lambda x: x * 2, dg.randn(2))
    with pytest.raises(TypeError, match=r"jit\.trace: example must be a Tensor or a tuple of Tensors"):
        dg.jit.trace(nn.Linear(2, 2), np.zeros((1, 2), np.float32))
