"""The transformer zoo: positional encodings, the classifier (pooling, padding), the causal language model
(causality, sampling), the recall task and shipped texts, and ``deepgrad train`` on them."""

import math

import numpy as np
import pytest

import deepgrad as dg
from deepgrad.cli import main
from deepgrad.data.datasets import load_text, make_recall_task, next_token_windows
from deepgrad.models import (
    ARCHITECTURES,
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    TransformerClassifier,
    TransformerLanguageModel,
    load_model,
)


def test_sinusoidal_codes_follow_the_formula_and_are_not_saved():
    pe = SinusoidalPositionalEncoding(6, max_len=50)
    table = pe.pe.numpy()
    for t, i in ((0, 0), (7, 1), (49, 2)):
        angle = t / 10000 ** (2 * i / 6)
        assert table[t, 2 * i] == pytest.approx(math.sin(angle), abs=1e-6)
        assert table[t, 2 * i + 1] == pytest.approx(math.cos(angle), abs=1e-6)
    assert len({tuple(np.round(row, 5)) for row in table}) == 50  # every position gets its own code
    assert "pe" not in pe.state_dict()
    x = dg.randn(2, 9, 6)
    np.testing.assert_allclose(pe(x).numpy(), x.numpy() + table[:9], rtol=1e-6)
    time_major = SinusoidalPositionalEncoding(6, max_len=50, batch_first=False)
    np.testing.assert_allclose(time_major(x.transpose(0, 1)).numpy(), pe(x).transpose(0, 1).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="longer than max_len"):
        pe(dg.randn(1, 51, 6))


def test_learned_codes_are_embedding_rows_and_train_only_the_used_positions():
    pe = LearnedPositionalEncoding(4, max_len=10)
    assert list(pe.state_dict()) == ["embedding.weight"]
    x = dg.randn(3, 6, 4, requires_grad=True)
    pe(x).sum().backward()
    grad = pe.embedding.weight.grad.numpy()
    np.testing.assert_allclose(grad[:6], 3.0)  # each used row: summed over the batch of 3
    assert not grad[6:].any()
    np.testing.assert_array_equal(x.grad.numpy(), 1.0)


@pytest.mark.parametrize("pool", ["mean", "first", "last"])
def test_classifier_ignores_whatever_sits_in_padding(pool):
    dg.manual_seed(0)
    model = TransformerClassifier(3, 12, d_model=16, nhead=2, num_layers=2, pool=pool, padding_idx=0,
                                  positional="learned").eval()
    tokens = np.random.default_rng(0).integers(1, 12, (4, 9))
    tokens[1, 6:] = 0
    other = tokens.copy()
    if pool == "last":  # the last position must be real for last-token pooling: pad at the front instead
        tokens[1], other[1] = np.roll(tokens[1], 3), np.roll(other[1], 3)
    with dg.no_grad():
        a = model(dg.tensor(tokens)).numpy()
        explicit = model(dg.tensor(np.where(tokens == 0, 5, tokens)), dg.tensor(tokens == 0)).numpy()
    np.testing.assert_allclose(explicit, a, rtol=1e-5, atol=1e-6)  # padded ids never reach the output
    assert a.shape == (4, 3)
    with pytest.raises(ValueError, match="integer token ids"):
        model(dg.randn(2, 5))
    with pytest.raises(ValueError, match="pool"):
        TransformerClassifier(3, 12, pool="max")


def test_language_model_is_causal_and_samples_reproducibly():
    dg.manual_seed(0)
    lm = TransformerLanguageModel(20, d_model=16, nhead=2, num_layers=2, max_len=12, dropout=0.0)
    tokens = np.random.default_rng(1).integers(0, 20, (2, 10))
    changed = tokens.copy()
    changed[:, 6] = (changed[:, 6] + 1) % 20
    with dg.no_grad():
        a, b = lm(dg.tensor(tokens)).numpy(), lm(dg.tensor(changed)).numpy()
    np.testing.assert_array_equal(a[:, :6], b[:, :6])  # the past never sees the future
    assert np.abs(a[:, 6:] - b[:, 6:]).max() > 1e-4
    first = lm.sample([1, 2, 3], 15, generator=7)
    assert first == lm.sample([1, 2, 3], 15, generator=7) and len(first) == 15 and max(first) < 20
    with dg.no_grad():  # top_k=1 is greedy decoding
        greedy = int(lm(dg.tensor([[1, 2, 3]]))[0, -1].numpy().argmax())
    assert lm.sample([1, 2, 3], 1, top_k=1, generator=0) == [greedy]
    assert lm.training  # sample() restores the mode
    with pytest.raises(ValueError, match="exceeds max_len"):
        lm(dg.tensor(np.zeros((1, 13), dtype=np.int64)))


def test_recall_task_texts_and_windows():
    ds = make_recall_task(200, seq_len=16, n_symbols=4, seed=3)
    tokens, labels = (t.numpy() for t in ds.tensors)
    assert tokens.shape == (200, 17) and (tokens[:, -1] == 8).all()
    marked = (tokens[:, :-1] >= 4) & (tokens[:, :-1] < 8)
    assert (marked.sum(1) == 1).all()
    np.testing.assert_array_equal(tokens[:, :-1][marked] - 4, labels)
    np.testing.assert_array_equal(make_recall_task(200, 16, 4, seed=3).tensors[0].numpy(), tokens)
    zen = load_text("zen")
    assert zen.startswith("The Zen of Python") and "Beautiful is better than ugly." in zen
    x, y = (t.numpy() for t in next_token_windows(np.arange(20), 5, stride=3).tensors)
    np.testing.assert_array_equal(x[1], [3, 4, 5, 6, 7])
    np.testing.assert_array_equal(y[1], [4, 5, 6, 7, 8])
    with pytest.raises(ValueError, match="unknown text"):
        load_text("shakespeare")
    assert ARCHITECTURES["transformer_classifier"] is TransformerClassifier
    assert ARCHITECTURES["transformer_lm"] is TransformerLanguageModel


def _train(capsys, *args) -> tuple[int, str, str]:
    """``deepgrad train ...`` in this process (no interpreter start-up): (exit status, stdout, stderr)."""
    status = main(["train", *args, "--no-progress"])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_deepgrad_train_learns_the_recall_task_and_the_weights_reload(tmp_path, capsys):
    status, out, err = _train(capsys, "transformer", "--data", "recall", "--epochs", "2", "--lr", "3e-3", "--out",
                              str(tmp_path))
    assert status == 0, err
    accuracy = float(out.split("accuracy ")[1].split("%")[0])
    assert accuracy >= 90.0, out  # chance is 12.5%
    model = load_model(tmp_path / "model.safetensors")
    test = make_recall_task(1000, 32, 8, seed=10_000)
    with dg.no_grad():
        predicted = model(test.tensors[0]).numpy().argmax(1)
    assert (predicted == test.tensors[1].numpy()).mean() * 100 == pytest.approx(accuracy, abs=0.01)
    status, _, err = _train(capsys, "transformer", "--data", "digits", "--out", str(tmp_path / "x"))
    assert status == 2 and "trains on --data recall" in err


def test_deepgrad_train_language_model_on_the_zen_of_python(tmp_path, capsys):
    status, _, err = _train(capsys, "transformer_lm", "--data", "zen", "--epochs", "3", "--lr", "3e-3", "--out",
                            str(tmp_path))
    assert status == 0, err
    lines = (tmp_path / "history.csv").read_text().splitlines()
    header, first, last = lines[0].split(","), lines[1].split(","), lines[-1].split(",")
    loss = header.index("loss")
    assert float(last[loss]) < float(first[loss]) < math.log(60)  # it learns from a near-uniform start
    model = load_model(tmp_path / "model.safetensors")
    assert isinstance(model, TransformerLanguageModel) and len(model.sample([0], 5, generator=0)) == 5
