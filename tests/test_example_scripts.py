"""PyTorch-style training programs (tests/scripts/examples.py: mnist with Adadelta and StepLR, an LSTM word
language model with narrow-batched data and flatten_parameters, DCGAN with .data initialisation, regression
with manual .data updates) run on torch and on deepgrad from the same initial weights and data: the loss
trajectories agree to 1e-4 relative."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import deepgrad as dg
from scripts import examples

RTOL = 1e-4


def torch_weights(model):
    """A ``weights(lib)`` hook handing torch's initial parameters (and buffers) to either library."""
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return lambda lib: {k: lib.tensor(v) for k, v in state.items()}


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    images = (d.images / 16.0).astype(np.float32)
    return images, d.target.astype(np.int64)


def check_trajectories(torch_losses, dg_losses, what):
    assert len(torch_losses) == len(dg_losses), what
    np.testing.assert_allclose(dg_losses, torch_losses, rtol=RTOL, atol=1e-6, err_msg=what)
    assert all(np.isfinite(dg_losses)), what


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step")  # the 0-step run that builds the model
def test_mnist_cnn_with_adadelta_and_steplr(digits):
    images, labels = digits
    torch.manual_seed(0)
    _, model = examples.mnist(torch, images, labels, steps=0, dropout=0.0)  # torch's initial weights
    weights = torch_weights(model)
    t, _ = examples.mnist(torch, images, labels, steps=6, dropout=0.0, weights=weights)
    d, _ = examples.mnist(dg, images, labels, steps=6, dropout=0.0, weights=weights)
    check_trajectories(t, d, "mnist")
    # per epoch: 6 training losses, the test loss (summed), the test accuracy count
    assert d[5] < d[0]  # the training loss falls
    # with the example's dropout the random masks differ between the libraries: deepgrad must still learn
    dg.manual_seed(0)
    with_dropout, _ = examples.mnist(dg, images, labels, steps=6, dropout=0.5, weights=weights)
    assert np.isfinite(with_dropout).all() and not np.allclose(with_dropout[:6], d[:6])  # the masks were applied


def test_word_language_model_lstm():
    rng = np.random.default_rng(0)
    ntokens = 12
    # a corpus with structure to learn: a repeated pattern of words with some noise
    pattern = np.array([1, 4, 2, 7, 3, 9, 5, 0, 11, 6], np.int64)
    corpus = np.tile(pattern, 13)
    noise = rng.random(corpus.size) < 0.1
    corpus[noise] = rng.integers(0, ntokens, int(noise.sum()))
    torch.manual_seed(0)
    _, model = examples.word_language_model(torch, corpus, ntokens, steps=0)
    weights = torch_weights(model)
    t, _ = examples.word_language_model(torch, corpus, ntokens, steps=6, weights=weights)
    d, _ = examples.word_language_model(dg, corpus, ntokens, steps=6, weights=weights)
    check_trajectories(t, d, "word_language_model")


def test_dcgan_with_data_initialisation(digits):
    images, _ = digits
    real = images[:64] * 2 - 1
    noise = np.random.default_rng(1).standard_normal((4, 16, 8, 1, 1)).astype(np.float32)
    torch.manual_seed(0)
    _, (g, d) = examples.dcgan(torch, real, noise[:0])
    states = {"G": torch_weights(g), "D": torch_weights(d)}

    def weights(lib, which):
        return states[which](lib)

    t, _ = examples.dcgan(torch, real, noise, weights=weights)
    dd, (g_dg, _) = examples.dcgan(dg, real, noise, weights=weights)
    check_trajectories(t, dd, "dcgan")
    # the program's own weights_init wrote through .data: a fresh deepgrad generator has N(0, 0.02) convs
    dg.manual_seed(0)
    _, (fresh, _) = examples.dcgan(dg, real, noise[:0])
    w = fresh.main[0].weight.detach().numpy()
    assert abs(w.std() - 0.02) < 0.005 and abs(w.mean()) < 0.005


def test_regression_with_manual_data_updates():
    x = np.random.default_rng(2).standard_normal((8, 32)).astype(np.float32)
    torch.manual_seed(0)
    _, fc = examples.regression(torch, x, steps=0)
    weights = torch_weights(fc)
    t, _ = examples.regression(torch, x, steps=8, weights=weights)
    d, fitted = examples.regression(dg, x, steps=8, weights=weights)
    check_trajectories(t, d, "regression")
    assert d[-1] < d[0]
