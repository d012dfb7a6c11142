"""Question 11: where is deep learning used? One short, real example per family deepgrad covers, each with
the baseline it has to beat:

- image classification: a small CNN on digits, against chance and a linear classifier;
- text generation: a character-level GRU language model on the Zen of Python, against the letter frequencies;
- time-series forecasting: an LSTM forecasting noisy sine waves, against "next = last";
- recommendation: matrix factorisation with user and item embeddings on generated ratings, against the
  item-average rating.
"""

from __future__ import annotations

import codecs
import contextlib
import io

import numpy as np

import deepgrad as dg
from deepgrad import nn, optim
from deepgrad.data import DataLoader, TensorDataset
from deepgrad.data.datasets import make_sine_waves
from deepgrad.models import CharLanguageModel, CharVocab
from deepgrad.train import Trainer

from .common import accuracy, digits, fit

NUMBER = 11
QUESTION = "What are the main applications of deep learning?"
ANSWER = (
    "Computer vision (image classification, detection, segmentation, medical imaging) with CNNs; natural language "
    "and sequences (translation, text generation, speech recognition) with RNNs and now transformers; time-series "
    "forecasting (demand, finance, sensors); recommender systems, which learn embeddings of users and items; and "
    "generative models (GANs, diffusion) that synthesise images, audio and text. The common thread: learning "
    "features directly from raw, high-dimensional data where hand-made features fall short."
)


# ---------------------------------------------------------------- image classification
def image_classification(ctx) -> tuple[float, float]:
    data = digits(seed=ctx.seed)
    cnn = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(128, 10))
    linear = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    for model in (cnn, linear):
        fit(model, data.x_train, data.y_train, epochs=ctx.pick(15, 30), lr=5e-3, device=ctx.device)
    return accuracy(cnn, data.x_test, data.y_test, ctx.device), accuracy(linear, data.x_test, data.y_test, ctx.device)


# ---------------------------------------------------------------- text generation
def zen_of_python() -> str:
    with contextlib.redirect_stdout(io.StringIO()):  # importing `this` prints the poem; we only want the text
        import this
    return codecs.decode(this.s, "rot13")


def text_generation(ctx) -> tuple[float, float, str, float]:
    """Train on random 32-character chunks; returns (model loss, unigram entropy, sample, share of sampled
    words that occur in the text), losses in nats per character."""
    text = zen_of_python()
    vocab = CharVocab(text)
    ids = vocab.encode(text)
    rng = np.random.default_rng(ctx.seed)
    model = CharLanguageModel(len(vocab), embedding_dim=16, hidden_size=128, cell="gru").to(ctx.device)
    opt = optim.Adam(model.parameters(), lr=5e-3)
    chunk = 32
    for _ in range(ctx.pick(300, 1500)):
        starts = rng.integers(0, len(ids) - chunk - 1, size=32)
        window = np.stack([ids[s:s + chunk + 1] for s in starts])
        logits, _ = model(dg.tensor(window[:, :-1], device=ctx.device))
        loss = nn.functional.cross_entropy(logits.reshape(-1, len(vocab)),
                                           dg.tensor(window[:, 1:].reshape(-1), device=ctx.device))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with dg.no_grad():  # loss over the whole text, one pass
        logits, _ = model.eval()(dg.tensor(ids[None, :-1], device=ctx.device))
        model_loss = nn.functional.cross_entropy(logits.reshape(-1, len(vocab)),
                                                 dg.tensor(ids[1:], device=ctx.device)).item()
    freq = np.bincount(ids, minlength=len(vocab)) / len(ids)
    unigram = float(-(freq * np.log(freq)).sum())
    prefix = "Beautiful is "
    sample = prefix + vocab.decode(model.sample(vocab.encode(prefix), 160, temperature=0.5,
                                                generator=np.random.default_rng(ctx.seed)))
    words = [w.strip(".,!-*'\"") for w in sample.split()]
    known = set(w.strip(".,!-*'\"") for w in text.split())
    real = sum(w in known for w in words if w) / max(1, sum(1 for w in words if w))
    return model_loss, unigram, sample, real


# ---------------------------------------------------------------- time-series forecasting
def forecasting(ctx) -> tuple[float, float]:
    """One-step-ahead forecasts of noisy sine waves (targets are the clean next value): RMSE of the LSTM and of
    persistence on held-out waves."""
    train = make_sine_waves(n=ctx.pick(400, 2000), seq_len=40, noise=0.1, seed=ctx.seed)
    test = make_sine_waves(n=200, seq_len=40, noise=0.1, seed=10_000 + ctx.seed)

    class NextStep(nn.Module):  # an LSTM that emits a forecast after every step
        def __init__(self):
            super().__init__()
            self.lstm, self.head = nn.LSTM(1, 32, batch_first=True), nn.Linear(32, 1)

        def forward(self, x):
            return self.head(self.lstm(x)[0])

    model = NextStep()
    trainer = Trainer(model, nn.MSELoss(), optim.Adam(model.parameters(), lr=1e-2), device=ctx.device, progress=False)
    trainer.fit(DataLoader(train, batch_size=32, shuffle=True), epochs=ctx.pick(15, 40))
    x, y = (t.numpy() for t in test.tensors)
    pred = trainer.predict(DataLoader(test, batch_size=200))
    skip = 5  # the first steps have too little history for anyone
    rmse = float(np.sqrt(((pred - y)[:, skip:] ** 2).mean()))
    persistence = float(np.sqrt(((x - y)[:, skip:] ** 2).mean()))
    return rmse, persistence


# ---------------------------------------------------------------- recommendation
class MatrixFactorization(nn.Module):
    """rating(u, i) = <user_u, item_i> + user bias + item bias + global mean."""

    def __init__(self, n_users: int, n_items: int, dim: int, mean: float):
        super().__init__()
        self.users, self.items = nn.Embedding(n_users, dim), nn.Embedding(n_items, dim)
        self.user_bias, self.item_bias = nn.Embedding(n_users, 1), nn.Embedding(n_items, 1)
        for e in (self.users, self.items):
            nn.init.normal_(e.weight, std=0.1)
        for b in (self.user_bias, self.item_bias):
            nn.init.zeros_(b.weight)
        self.mean = mean

    def forward(self, pairs):
        u, i = pairs[:, 0], pairs[:, 1]
        dot = (self.users(u) * self.items(i)).sum(dim=1, keepdim=True)
        return dot + self.user_bias(u) + self.item_bias(i) + self.mean


def generated_ratings(seed: int, n_users: int = 300, n_items: int = 200, rank: int = 4, observed: float = 0.2):
    """Ratings 1-5 from hidden user tastes and item traits (rank 4) plus noise; 20% of the matrix observed,
    a fifth of those held out."""
    rng = np.random.default_rng(seed)
    taste, traits = rng.normal(size=(n_users, rank)), rng.normal(size=(n_items, rank))
    scores = taste @ traits.T / np.sqrt(rank) + rng.normal(0, 0.5, n_items) + rng.normal(0, 0.3, (n_users, n_items))
    ratings = np.clip(np.round(3 + scores), 1, 5).astype(np.float32)
    users, items = np.nonzero(rng.random((n_users, n_items)) < observed)
    order = rng.permutation(len(users))
    pairs, values = np.stack([users, items], 1)[order].astype(np.int64), ratings[users, items][order][:, None]
    n_test = len(pairs) // 5
    return (pairs[n_test:], values[n_test:]), (pairs[:n_test], values[:n_test]), (n_users, n_items)


def recommendation(ctx) -> tuple[float, float, float]:
    (p_tr, r_tr), (p_te, r_te), (n_users, n_items) = generated_ratings(ctx.seed)
    model = MatrixFactorization(n_users, n_items, dim=4, mean=float(r_tr.mean()))
    opt = optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)  # a little L2: few ratings per user
    trainer = Trainer(model, nn.MSELoss(), opt, device=ctx.device, progress=False)
    trainer.fit(DataLoader(TensorDataset(p_tr, r_tr), batch_size=256, shuffle=True), epochs=ctx.pick(30, 80))
    pred = trainer.predict(DataLoader(TensorDataset(p_te, r_te), batch_size=len(p_te)))
    item_sum = np.bincount(p_tr[:, 1], weights=r_tr[:, 0], minlength=n_items)
    item_n = np.bincount(p_tr[:, 1], minlength=n_items)
    item_mean = np.where(item_n > 0, item_sum / np.maximum(item_n, 1), r_tr.mean())
    rmse = float(np.sqrt(((pred - r_te) ** 2).mean()))
    item_rmse = float(np.sqrt(((item_mean[p_te[:, 1]][:, None] - r_te) ** 2).mean()))
    global_rmse = float(np.sqrt(((r_tr.mean() - r_te) ** 2).mean()))
    return rmse, item_rmse, global_rmse


def run(ctx) -> None:
    ctx.progress("image classification: training a CNN and a linear classifier")
    cnn_acc, linear_acc = image_classification(ctx)
    ctx.progress("text generation: training a character-level GRU")
    model_loss, unigram, sample, real = text_generation(ctx)
    ctx.progress("forecasting: training an LSTM on noisy sine waves")
    rmse, persistence = forecasting(ctx)
    ctx.progress("recommendation: training matrix factorisation")
    mf, item_avg, global_avg = recommendation(ctx)
    ctx.table("One example per family", ["application", "model", "metric", "model", "baseline", "baseline is"], [
        ["image classification", "2-layer CNN", "test accuracy", cnn_acc, linear_acc, "linear classifier"],
        ["text generation", "char GRU", "nats / char", model_loss, unigram, "letter frequencies"],
        ["forecasting", "LSTM", "RMSE", rmse, persistence, "next = last"],
        ["recommendation", "matrix factorisation", "test RMSE", mf, item_avg, "item average"],
    ])
    ctx.say(f"sampled text (temperature 0.5): {sample!r}")
    ctx.figure(sample_figure(sample), "sample", "Generated text", "Characters sampled from the GRU language model.")
    ctx.claim("image classification: the CNN reaches >= 95% test accuracy and beats the linear classifier",
              cnn_acc >= 0.95 and cnn_acc > linear_acc, f"CNN {cnn_acc:.3f}, linear {linear_acc:.3f}")
    ctx.claim("text generation: on its training text the character model's loss is <= half the letter-frequency "
              "entropy, and >= 70% of the words it samples are words of the text",
              model_loss <= 0.5 * unigram and real >= 0.7,
              f"{model_loss:.3f} vs {unigram:.3f} nats/char; real words {real:.0%}")
    ctx.claim("forecasting: the LSTM's one-step error is <= 0.7x that of persistence", rmse <= 0.7 * persistence,
              f"RMSE {rmse:.3f} vs {persistence:.3f}")
    ctx.claim("recommendation: matrix factorisation beats the item-average rating by >= 30% RMSE on held-out "
              "ratings", mf <= 0.7 * item_avg, f"RMSE {mf:.3f} vs item average {item_avg:.3f} (global mean "
              f"{global_avg:.3f})")


def sample_figure(sample: str):
    import textwrap

    import matplotlib.pyplot as plt

    lines = [w for line in sample.splitlines() for w in (textwrap.wrap(line, 44) or [""])]
    fig, ax = plt.subplots(figsize=(4.6, 0.2 * len(lines) + 0.2))
    ax.axis("off")
    ax.text(0, 1, "\n".join(lines), va="top", family="monospace", fontsize=10)
    return fig
