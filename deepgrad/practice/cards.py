"""Concept cards for the guide's non-coding questions, and "predict the outcome" items whose answers
come from real computations with deepgrad (an output shape, a parameter count, the layer whose
gradient vanishes, the trainable parameters left after freezing).

A predict item's id encodes its parameters (``conv-shape:1,3,32,32,16,5,2,1``), so it can be
regenerated and graded later; nothing about it is hidden.

>>> card = predict("param-count", np.random.default_rng(0))
>>> card.grade(card.answer)
True
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class Card:
    id: str
    topic: str
    prompt: str
    answer: str
    explanation: str = ""
    checker: Callable[[str], bool] | None = None  # None: a concept card, self-graded

    @property
    def auto(self) -> bool:
        return self.checker is not None

    def grade(self, reply: str) -> bool:
        if self.checker is None:
            raise ValueError(f"card {self.id!r} is a concept card: it is self-graded")
        return bool(self.checker(reply))


CONCEPTS = [
    Card("concept:vanishing", "backprop", "Why do gradients vanish in deep sigmoid networks, and name two remedies.",
         "The sigmoid's derivative is at most 0.25, and backprop multiplies one such factor per layer, so early "
         "layers get exponentially small gradients. Remedies: ReLU-family activations, careful initialisation "
         "(He/Xavier), batch normalisation, residual connections."),
    Card("concept:pooling", "pooling", "What does pooling buy a CNN, and what does it cost?",
         "It downsamples (less compute, larger receptive field) and gives some translation invariance; it throws "
         "away exact positions, which hurts tasks that need them (segmentation, detection)."),
    Card("concept:param-sharing", "cnns", "Why does a conv layer have far fewer parameters than a dense layer on "
         "the same image?", "Its kernel is shared across all positions: (C_in * k * k + 1) * C_out parameters, "
         "independent of the image size, versus one weight per input pixel per unit."),
    Card("concept:dropout-test", "overfitting", "What happens to dropout at test time with inverted dropout?",
         "Nothing: it is the identity. The 1/(1-p) scaling during training already keeps the expected activation "
         "equal to the test-time one."),
    Card("concept:bn-test", "overfitting", "Which statistics does batch norm use at test time, and why?",
         "The running mean and (unbiased) variance accumulated in training, so a prediction does not depend on the "
         "other samples of the batch."),
    Card("concept:lstm", "rnns", "Why does an LSTM suffer less from vanishing gradients than a plain RNN?",
         "Its cell state is updated additively (c = f * c + i * g): with the forget gate near 1 the gradient flows "
         "through many steps without repeated multiplication by a weight matrix and a squashing derivative."),
    Card("concept:cnn-vs-rnn", "cnn-vs-rnn", "When would you choose a CNN over an RNN for a sequence?",
         "When local patterns matter and parallel training helps (1-D convolutions see fixed windows, all positions "
         "at once); an RNN carries state over arbitrary lengths but runs step by step."),
    Card("concept:transfer", "transfer-learning", "With a small dataset similar to ImageNet, what do you fine-tune?",
         "Freeze the pretrained backbone and train a new head; with more data, unfreeze the top blocks with a small "
         "learning rate."),
    Card("concept:gan-ns", "gans", "Why is the non-saturating generator loss preferred to the minimax one?",
         "Early on the discriminator rejects fakes confidently; log(1 - D(G(z))) is then flat (vanishing gradient), "
         "while -log D(G(z)) gives strong gradients exactly there."),
    Card("concept:overfitting", "overfitting", "Name four ways to fight overfitting.",
         "More data or augmentation, regularisation (L2/weight decay, L1), dropout, early stopping; also a smaller "
         "model."),
    Card("concept:backprop", "backprop", "What does backpropagation compute, and what does it cost?",
         "The gradient of the loss w.r.t. every parameter by the chain rule in reverse order; about the cost of one "
         "more forward pass, at the price of storing the forward activations."),
    Card("concept:stride", "conv-parameters", "What do stride and padding do to a convolution's output?",
         "out = floor((in + 2 * padding - dilation * (k - 1) - 1) / stride) + 1: stride downsamples, 'same' "
         "padding (k // 2 for odd k, stride 1) keeps the size."),
    Card("concept:attention-vs-rnn", "transformers", "Why did transformers replace RNNs for sequences?",
         "Attention connects every position to every other in one step (a path of length 1), so a far-back token "
         "is read directly instead of surviving every later state update, and all positions are computed at once "
         "with matrix products instead of T sequential steps. The price: time and memory grow as T squared."),
    Card("concept:attention-scale", "transformers", "Why does scaled dot-product attention divide the scores by "
         "sqrt(d_k)?", "A dot product of d_k roughly unit-variance terms has variance about d_k: without the scale the "
         "scores grow with the head size, the softmax saturates to nearly one-hot weights, and its gradients vanish."),
    Card("concept:positional", "transformers", "Why does a transformer need positional encodings?",
         "Self-attention treats its inputs as a set: permuting the tokens permutes the outputs the same way. "
         "Sinusoidal (or learned) position codes added to the embeddings make the order visible."),
    Card("concept:causal-mask", "transformers", "What does the causal mask in a decoder do, and why?",
         "It stops position i from attending to positions after i (their scores are -inf before the softmax), so "
         "a language model trained on whole sequences at once never sees the tokens it must predict."),
]


def _ints(text: str) -> list[int]:
    return [int(v) for v in re.findall(r"-?\d+", text)]


def _tuple_checker(expected: tuple[int, ...]) -> Callable[[str], bool]:
    return lambda reply: tuple(_ints(reply)) == tuple(expected)


def _int_checker(expected: int) -> Callable[[str], bool]:
    return lambda reply: _ints(reply.replace(",", "").replace("_", "")) == [expected]


# ----------------------------------------------------------------------------- predict items
def conv_shape(params: tuple[int, ...]) -> Card:
    from .. import zeros
    from ..nn import Conv2d

    n, c, h, w, o, k, s, p = params
    with _no_grad():
        y = Conv2d(c, o, k, stride=s, padding=p)(zeros(n, c, h, w))
    shape = tuple(int(d) for d in y.shape)
    return Card(f"conv-shape:{','.join(map(str, params))}", "conv-parameters",
                f"A Conv2d({c}, {o}, kernel_size={k}, stride={s}, padding={p}) gets an input of shape {(n, c, h, w)}. "
                f"What is the output shape?", str(shape),
                f"H_out = ({h} + 2*{p} - {k}) // {s} + 1 = {shape[2]}; channels = out_channels = {o}.",
                _tuple_checker(shape))


def param_count(params: tuple[int, ...]) -> Card:
    from ..nn import GRU, LSTM, BatchNorm2d, Conv2d, Linear

    kind, a, b, k = params
    layer, text = {
        0: (lambda: Linear(a, b), f"nn.Linear({a}, {b})"),
        1: (lambda: Conv2d(a, b, k), f"nn.Conv2d({a}, {b}, kernel_size={k})"),
        2: (lambda: Conv2d(a, b, k, bias=False), f"nn.Conv2d({a}, {b}, kernel_size={k}, bias=False)"),
        3: (lambda: LSTM(a, b), f"nn.LSTM(input_size={a}, hidden_size={b})"),
        4: (lambda: GRU(a, b), f"nn.GRU(input_size={a}, hidden_size={b})"),
        5: (lambda: BatchNorm2d(a), f"nn.BatchNorm2d({a})"),
    }[kind]
    count = sum(p.numel() for p in layer().parameters())
    return Card(f"param-count:{','.join(map(str, params))}", "conv-parameters",
                f"How many learnable parameters does {text} have?", str(count),
                "Weights plus biases (LSTM: 4 gates, GRU: 3, each with W_ih, W_hh, b_ih, b_hh; BatchNorm: gamma and "
                "beta; running statistics are buffers, not parameters).", _int_checker(count))


def vanishing_layer(params: tuple[int, ...]) -> Card:
    from .. import from_numpy
    from ..nn import Linear, Sequential, Sigmoid
    from ..nn import functional as F

    depth, width, seed = params
    from .. import manual_seed

    manual_seed(seed)
    rng = np.random.default_rng(seed)
    layers = []
    for _i in range(depth):
        layers += [Linear(width, width), Sigmoid()]
    net = Sequential(*layers[:-1])
    x = from_numpy(rng.standard_normal((32, width)).astype(np.float32))
    y = from_numpy(rng.integers(0, width, 32))
    F.cross_entropy(net(x), y).backward()
    norms = [float(np.linalg.norm(m.weight.grad.array)) for m in net if isinstance(m, Linear)]
    worst = int(np.argmin(norms)) + 1
    return Card(f"vanishing-layer:{depth},{width},{seed}", "backprop",
                f"A {depth}-layer MLP (width {width}, sigmoid between the Linear layers, default init) takes one "
                f"cross-entropy backward on a random batch. Which Linear layer (1 = closest to the input, {depth} = "
                f"output) gets the smallest weight-gradient norm?", str(worst),
                "Measured norms: " + ", ".join(f"{i + 1}: {v:.2e}" for i, v in enumerate(norms))
                + ". Each sigmoid multiplies the backward signal by at most 0.25.", _int_checker(worst))


def frozen_params(params: tuple[int, ...]) -> Card:
    from ..nn import Linear, Sequential

    *widths, frozen = params
    net = Sequential(*[Linear(widths[i], widths[i + 1]) for i in range(len(widths) - 1)])
    for layer in list(net)[:frozen]:
        for p in layer.parameters():
            p.requires_grad_(False)
    count = sum(p.numel() for p in net.parameters() if p.requires_grad)
    arch = " -> ".join(map(str, widths))
    return Card(f"frozen-params:{','.join(map(str, params))}", "transfer-learning",
                f"An MLP of Linear layers {arch} (with biases) has its first {frozen} layer(s) frozen. How many "
                f"trainable parameters remain?", str(count),
                "Only the unfrozen layers count: (in + 1) * out for each.", _int_checker(count))


KINDS: dict[str, Callable[[tuple[int, ...]], Card]] = {
    "conv-shape": conv_shape, "param-count": param_count, "vanishing-layer": vanishing_layer,
    "frozen-params": frozen_params,
}


def _draw(kind: str, rng: np.random.Generator) -> tuple[int, ...]:
    r = lambda lo, hi: int(rng.integers(lo, hi + 1))  # noqa: E731
    if kind == "conv-shape":
        k = r(1, 7)
        return (r(1, 8), r(1, 64), r(k + 2, 64), r(k + 2, 64), r(1, 128), k, r(1, 3), r(0, k // 2))
    if kind == "param-count":
        return (r(0, 5), r(1, 64), r(1, 64), r(1, 5))
    if kind == "vanishing-layer":
        return (r(4, 8), r(8, 16), r(0, 10_000))
    widths = [r(2, 64) for _ in range(r(3, 5))]
    return (*widths, r(1, len(widths) - 2))


def predict(kind: str, rng: np.random.Generator) -> Card:
    """A fresh predict-the-outcome item of ``kind``."""
    if kind not in KINDS:
        raise KeyError(f"no card kind {kind!r}; kinds: {', '.join(KINDS)}")
    return KINDS[kind](_draw(kind, rng))


def from_id(card_id: str) -> Card:
    """Rebuild a card from its id."""
    for c in CONCEPTS:
        if c.id == card_id:
            return c
    kind, _, params = card_id.partition(":")
    if kind not in KINDS or not params:
        raise KeyError(f"no card {card_id!r}")
    return KINDS[kind](tuple(int(v) for v in params.split(",")))


def _no_grad():
    from ..autograd import no_grad

    return no_grad()
