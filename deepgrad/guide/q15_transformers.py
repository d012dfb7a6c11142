"""Question 15: why did transformers replace RNNs for sequences? Three measurements and a look inside.

1. Distance: a recall task whose answer is one marked token anywhere in the sequence. An LSTM and a one-layer
   transformer get the same training budget as the sequence grows; the LSTM must carry the token through every
   later step of its state, attention reads it directly.
2. Parallelism: the longest chain of dependent operations from the first token to the output (what no amount
   of hardware can run side by side), and the CPU time of one training step as T grows. The LSTM's chain grows
   with T; the transformer's is the same at every length, all positions going through each op at once.
3. The price: attention keeps a T x T matrix of weights per head for the backward pass, so its memory grows as
   T squared; the LSTM's grows as T.
4. What attention looks at: the trained transformer's weights from the query to every position.

Everything runs on one CPU thread: the comparison is of the work each model must do in sequence, not of how a
shared machine schedules threads.
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np

import deepgrad as dg
from deepgrad import nn, optim
from deepgrad.data.datasets import make_recall_task
from deepgrad.models import SequenceClassifier, TransformerClassifier
from deepgrad.ops.attention import ScaledDotProductAttention

NUMBER = 15
QUESTION = "Why did transformers replace RNNs for sequences?"
ANSWER = (
    "An RNN reads a sequence one step at a time through a fixed-size hidden state: information from an early token "
    "must survive every later update to reach the output, and its gradient must flow back through all of them "
    "(vanishing gradients, a bottleneck), and the T steps cannot run in parallel. Self-attention lets every "
    "position look at every other position directly (a path of length 1), and computes all positions at once with "
    "matrix products that GPUs run fast, so transformers learn long-range dependencies better and train on far "
    "more data per hour; positional encodings supply the order. The price is attention's cost, which grows as T "
    "squared in time and memory (hence efficient-attention variants), and the need for lots of data."
)

SYMBOLS, BATCH, LR = 8, 32, 3e-3


def transformer() -> TransformerClassifier:
    """One attention layer over the tokens, read at the query (the last position)."""
    return TransformerClassifier(SYMBOLS, 2 * SYMBOLS + 1, d_model=32, nhead=2, num_layers=1, dim_feedforward=64,
                                 dropout=0.0, max_len=1024, positional="none", pool="last")


def lstm() -> SequenceClassifier:
    """An LSTM over the tokens, classified from its final hidden state."""
    return SequenceClassifier(SYMBOLS, vocab_size=2 * SYMBOLS + 1, embedding_dim=16, hidden_size=32, cell="lstm")


def train(model: nn.Module, length: int, steps: int, seed: int) -> float:
    """Adam on fresh recall sequences of ``length``; returns the accuracy on 500 held-out sequences."""
    x, y = make_recall_task(steps * BATCH, length, SYMBOLS, seed=seed).tensors
    opt = optim.Adam(model.parameters(), lr=LR)
    model.train()
    for i in range(steps):
        batch = slice(i * BATCH, (i + 1) * BATCH)
        loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return accuracy(model, length, seed + 10_000)


@dg.no_grad()
def accuracy(model: nn.Module, length: int, seed: int) -> float:
    x, y = make_recall_task(500, length, SYMBOLS, seed=seed).tensors
    model.eval()
    return float((model(x).argmax(dim=1) == y).float().mean().item())


def step_seconds(model: nn.Module, length: int, repeat: int) -> float:
    """Least CPU time of ``repeat`` training steps (forward, backward, Adam) on a batch of 16 sequences. CPU time of
    this process, on one thread: what the step costs, whatever else the machine is running."""
    x, y = make_recall_task(16, length, SYMBOLS, seed=0).tensors
    opt = optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for _ in range(repeat + 1):  # the first step also builds Adam's state: not timed
        start = time.process_time()
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.process_time() - start)
    return min(times[1:])


def graph_nodes(root) -> list:
    """The nodes of the autograd graph behind ``root``, each after every node that consumes its output."""
    order, seen, stack = [], {id(root)}, [(root, iter(root.next))]
    while stack:  # iterative depth-first search: an unrolled LSTM's graph is thousands of nodes deep
        node, children = stack[-1]
        for child in children:
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                stack.append((child, iter(getattr(child, "next", ()))))
                break
        else:
            stack.pop()
            order.append(node)
    return order[::-1]


def critical_path(output: dg.Tensor, source_type: type) -> int:
    """Operations on the longest chain from the node of type ``source_type`` (the token embedding) to
    ``output``: each must wait for the one before it."""
    longest = {}
    for node in reversed(graph_nodes(output.grad_fn)):  # inputs first
        if isinstance(node, source_type):
            longest[id(node)] = 1
            continue
        reach = [longest[id(c)] for c in getattr(node, "next", ()) if c is not None and id(c) in longest]
        if reach:
            longest[id(node)] = 1 + max(reach)
    return longest.get(id(output.grad_fn), 0)


def sequential_depth(kind: str, length: int) -> int:
    """The critical path of the LSTM (unrolled with ``nn.LSTMCell``, the step ``nn.LSTM`` repeats) or of the
    transformer, from the embedded tokens to the logits."""
    from deepgrad.ops.embedding import Embedding as EmbeddingOp

    x, _ = make_recall_task(2, length, SYMBOLS, seed=0).tensors
    if kind == "transformer":
        return critical_path(transformer()(x), EmbeddingOp)
    embedding, cell, head = nn.Embedding(2 * SYMBOLS + 1, 16), nn.LSTMCell(16, 32), nn.Linear(32, SYMBOLS)
    inputs, state = embedding(x), None
    for t in range(x.shape[1]):
        state = cell(inputs[:, t], state)
    return critical_path(head(state[0]), EmbeddingOp)


def saved_attention_bytes(loss: dg.Tensor) -> int:
    """Bytes of attention weights that the graph behind ``loss`` keeps for backward (every attention node)."""
    total, seen, stack = 0, set(), [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ScaledDotProductAttention):
            total += node.probs.nbytes
        stack.extend(getattr(node, "next", ()))
    return total


def peak_memory(model: nn.Module, tokens: int) -> tuple[int, int]:
    """(peak bytes allocated during a forward + backward on 16 sequences of ``tokens`` tokens, bytes of
    attention weights kept for backward)."""
    x, y = make_recall_task(16, tokens - 1, SYMBOLS, seed=0).tensors  # tokens - 1 symbols, then the query
    model.zero_grad()
    tracemalloc.start()
    try:
        loss = nn.functional.cross_entropy(model(x), y)
        kept = saved_attention_bytes(loss)
        loss.backward()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, kept


@dg.no_grad()
def query_attention(model: TransformerClassifier, tokens: dg.Tensor) -> np.ndarray:
    """The query's attention weights over every position (averaged over heads): (N, T + 1)."""
    model.eval()
    layer = model.encoder.layers[0]
    h = layer.norm1(model.embedding(tokens))  # what the pre-norm layer's attention reads
    _, weights = layer.self_attn(h, h, h, need_weights=True)
    return weights.numpy()[:, -1]


STYLES = {"LSTM": dict(marker="o", color="tab:orange"), "transformer": dict(marker="s", color="tab:blue")}


def stacked_figure(panels: list):
    """Panels stacked vertically (readable on a phone), each a dict with ``x``, ``series`` ({name: values}),
    ``xlabel``, ``ylabel``, ``title`` and ``logy``. Log axes are labelled 1, 2, 5, 10, ... in plain numbers."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    fig, axes = plt.subplots(len(panels), 1, figsize=(4.0, 2.8 * len(panels)))  # narrow: little shrinking on a phone
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    for ax, panel in zip(axes, panels):
        for name, values in panel["series"].items():
            ax.plot(panel["x"], values, label=name, **STYLES.get(name, dict(color="gray", ls=":")))
        ax.set(xlabel=panel["xlabel"], ylabel=panel["ylabel"], xscale="log")
        ax.set_title(panel["title"], fontsize=10)
        ax.set_xticks(panel["x"])
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_locator(NullLocator())
        if panel["logy"]:
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(plain)
            ax.yaxis.set_minor_locator(NullLocator())
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def panel(x, series, ylabel, title, logy=True, xlabel="sequence length T") -> dict:
    return {"x": x, "series": series, "xlabel": xlabel, "ylabel": ylabel, "title": title, "logy": logy}


def attention_figure(weights: np.ndarray, marked: np.ndarray):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.0, 3.0))
    image = ax.imshow(weights, aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    ax.scatter(marked, np.arange(len(marked)), s=60, facecolors="none", edgecolors="red", linewidths=1.5,
               label="the marked token")
    ax.set(xlabel="position attended to", ylabel="test sequence", yticks=range(len(marked)))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), fontsize=8, frameon=False)
    fig.colorbar(image, ax=ax, label="attention weight", fraction=0.05, pad=0.02)
    fig.tight_layout()
    return fig


def run(ctx) -> None:
    threads = dg.get_num_threads()
    dg.set_num_threads(1)
    try:
        experiment(ctx)
    finally:
        dg.set_num_threads(threads)


def experiment(ctx) -> None:
    ctx.say("Both models run on one CPU thread: the comparison is of the work each must do in sequence, not of how "
            "a shared machine schedules threads.")
    lengths, steps = ctx.pick([8, 64], [8, 32, 128]), ctx.pick(150, 300)
    acc, models = {"LSTM": [], "transformer": []}, {}
    for length in lengths:
        for name, build in (("LSTM", lstm), ("transformer", transformer)):
            dg.manual_seed(ctx.seed)
            models[name] = build()
            acc[name].append(train(models[name], length, steps, ctx.seed))
    ctx.table(f"Recall the marked token among T ({steps} Adam steps of {BATCH} sequences; chance {1 / SYMBOLS:.3f})",
              ["T", "LSTM accuracy", "transformer accuracy"],
              [[t, a, b] for t, a, b in zip(lengths, acc["LSTM"], acc["transformer"])])

    step_lengths = ctx.pick([16, 64, 512], [16, 64, 256, 512])
    depth, times = {"LSTM": [], "transformer": []}, {"LSTM": [], "transformer": []}
    for length in step_lengths:
        dg.manual_seed(0)
        for name, build in (("LSTM", lstm), ("transformer", transformer)):
            depth[name].append(sequential_depth(name, length))
            times[name].append(step_seconds(build(), length, ctx.pick(5, 7)))
    ctx.table("Dependent operations from the first token to the output, and CPU time of a training step (batch 16)",
              ["T", "LSTM chain", "transformer chain", "LSTM ms", "transformer ms"],
              [[t, d1, d2, 1e3 * a, 1e3 * b] for t, d1, d2, a, b in zip(
                  step_lengths, depth["LSTM"], depth["transformer"], times["LSTM"], times["transformer"])])
    ctx.figure(stacked_figure([
        panel(lengths, {**acc, "chance": [1 / SYMBOLS] * len(lengths)}, "test accuracy", "recall one marked token",
              logy=False),
        panel(step_lengths, depth, "ops in the longest chain", "dependent operations, first token to output")]),
        "distance", "Long-range recall and the path it travels",
        "Top: test accuracy on the recall task at each length T, same training budget. Bottom: the longest chain of "
        "operations that must run one after another between the first token and the output.")

    tokens = [64, 128, 256]
    peaks, kept = {"LSTM": [], "transformer": []}, []
    for n in tokens:
        dg.manual_seed(0)
        peaks["LSTM"].append(peak_memory(lstm(), n)[0])
        peak, attention_bytes = peak_memory(transformer(), n)
        peaks["transformer"].append(peak)
        kept.append(attention_bytes)
    ctx.table("Memory of a forward + backward, batch 16", ["tokens", "LSTM peak MiB", "transformer peak MiB",
              "attention weights kept, MiB"], [[t, a / 2**20, b / 2**20, k / 2**20] for t, a, b, k in zip(
                  tokens, peaks["LSTM"], peaks["transformer"], kept)])
    ctx.figure(stacked_figure([
        panel(step_lengths, {k: [1e3 * t for t in v] for k, v in times.items()}, "CPU ms per step",
              "training step, batch 16, one thread"),
        panel(tokens, {k: [p / 2**20 for p in v] for k, v in peaks.items()}, "peak MiB",
              "memory of forward + backward, batch 16", xlabel="tokens per sequence")]),
        "cost", "What each model costs as T grows",
        "Top: CPU time of one training step. Bottom: peak memory of a forward and backward pass. Log scales.")

    longest = lengths[-1]
    test_x, _ = make_recall_task(200, longest, SYMBOLS, seed=ctx.seed + 20_000).tensors
    marked = ((test_x.numpy() >= SYMBOLS) & (test_x.numpy() < 2 * SYMBOLS)).argmax(axis=1)
    weights = query_attention(models["transformer"], test_x)
    on_marked = weights[np.arange(len(marked)), marked]
    top_is_marked = float((weights.argmax(axis=1) == marked).mean())
    ctx.figure(attention_figure(weights[:6], marked[:6]), "attention", "Where the query looks",
               f"Attention weights (averaged over the two heads) from the query, the last position, to every "
               f"position of six test sequences of length {longest}, after training; red circles mark the token "
               f"that holds the answer.")
    ctx.claim(f"at T = {lengths[0]} both models learn the recall (>= 90% test accuracy)",
              min(acc["LSTM"][0], acc["transformer"][0]) >= 0.9,
              f"LSTM {acc['LSTM'][0]:.3f}, transformer {acc['transformer'][0]:.3f}")
    ctx.claim(f"at T = {longest}, with the same training budget, the transformer still recalls (>= 90%) while the "
              f"LSTM falls to <= 40% (chance {1 / SYMBOLS:.3f})",
              acc["transformer"][-1] >= 0.9 and acc["LSTM"][-1] <= 0.4,
              f"transformer {acc['transformer'][-1]:.3f}, LSTM {acc['LSTM'][-1]:.3f}")
    uniform = 1 / (longest + 1)
    ctx.claim(f"attention finds the marked token: the query's weight on it averages >= 10x the uniform share "
              f"1/{longest + 1}, and it is the query's most attended position in >= 75% of test sequences",
              float(on_marked.mean()) >= 10 * uniform and top_is_marked >= 0.75,
              f"T = {longest}: mean weight {on_marked.mean():.3f} ({on_marked.mean() / uniform:.0f}x uniform), most "
              f"attended in {100 * top_is_marked:.1f}% of 200 sequences")
    cost_claims(ctx, step_lengths, depth, times, tokens, peaks, kept)


def cost_claims(ctx, step_lengths, depth, times, tokens, peaks, kept) -> None:
    ctx.claim("the LSTM's chain of dependent operations grows with T (at least one per token) while the "
              "transformer's is the same at every length: all positions pass through each op at once",
              all(d > t for d, t in zip(depth["LSTM"], step_lengths)) and len(set(depth["transformer"])) == 1,
              f"LSTM {depth['LSTM']}, transformer {depth['transformer']} at T = {step_lengths}")
    (t0, t1), span = step_lengths[-2:], step_lengths[-1] / step_lengths[-2]
    growth = {name: t[-1] / t[-2] for name, t in times.items()}
    ctx.claim(f"on one CPU thread the LSTM's step time grows about in proportion to T, as its chain does: >= "
              f"{span / 2:g}x from T = {t0} to {t1} ({span:g}x the tokens)", growth["LSTM"] >= span / 2,
              f"x{growth['LSTM']:.1f}")
    ctx.claim(f"the transformer's step time grows faster than T at long lengths, its attention as T squared: > "
              f"{span:g}x from T = {t0} to {t1}", growth["transformer"] > span, f"x{growth['transformer']:.1f}")
    ratios = [b / a for a, b in zip(kept, kept[1:])]
    ctx.claim("the attention weights kept for backward grow as the square of the length: x4 for each doubling",
              all(abs(r - 4) < 1e-9 for r in ratios), ", ".join(f"x{r:.2f}" for r in ratios))
    memory_growth = {name: p[-1] / p[0] for name, p in peaks.items()}
    ctx.claim(f"so the transformer's peak memory grows faster with T than the LSTM's ({tokens[0]} to {tokens[-1]} "
              f"tokens)", memory_growth["transformer"] > memory_growth["LSTM"],
              f"transformer x{memory_growth['transformer']:.2f}, LSTM x{memory_growth['LSTM']:.2f}")
