"""Ratios a drifting host moves less: every variant of a workload in ONE process, blocks alternated (issue 23).

The suite's runner (``python -m benchmarks``) times each library in a worker process of its own, in rotations. On
a virtual machine whose speed drifts by tens of percent within minutes, two runs can still disagree (LeNet-5 on one
thread gave 0.78 and 1.00 in two runs twenty minutes apart). Here each variant runs a block of steps in turn,
round after round, in one process, and a ratio is the median of the per-round ratios:

    python -m benchmarks.interleaved [--only lenet5_sgd,encoder_t256_adam] [--rounds 12] [--block-time 0.25]
    python -m benchmarks.interleaved --numba-vs-numpy --only encoder_t256_adam --threads 1

The variants are deepgrad and torch, each on every thread count of ``--threads`` (default 1,2); with
``--numba-vs-numpy``, deepgrad with its compiled kernels against deepgrad with its NumPy code only
(:func:`deepgrad.kernels.numpy_code_only`), which is how the changes of a compiled kernel are measured. The price of
one process: both libraries share the caches, and torch's OpenMP threads may spin a little after its blocks.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Callable

DEFAULT_WORKLOADS = "lenet5_sgd,vgg_small_adam,dcgan_step,encoder_t64_adam,encoder_t256_adam"


def time_block(step: Callable[[], object], block_time: float) -> float:
    """Milliseconds per step over a block of at least ``block_time`` seconds (and at least one step)."""
    start, steps = time.perf_counter(), 0
    while True:
        step()
        steps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= block_time:
            return elapsed / steps * 1e3


def alternate(variants: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """``{name: [ms per step of each round]}``: each round runs every variant's block once, in order."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, block in variants.items():
            times[name].append(block())
    return times


def ratio(times: dict[str, list[float]], over: str, under: str) -> float:
    """The median over rounds of ``over``'s time / ``under``'s time in the same round."""
    return statistics.median(a / b for a, b in zip(times[over], times[under]))


def block_of(step, set_threads, threads: int, block_time: float, context=contextlib.nullcontext):
    """A variant: on ``threads`` threads (``set_threads``) and inside ``context()``, one untimed step, then a
    timed block of ``step``; returns ms per step."""
    def block() -> float:
        set_threads(threads)
        with context():
            step()
            return time_block(step, block_time)
    return block


def variants_for(name: str, threads: list[int], block_time: float, numba_vs_numpy: bool) -> dict:
    """The blocks to alternate for workload ``name`` (built once per library)."""
    import deepgrad as dg
    from deepgrad.kernels import numpy_code_only

    from .registry import get_workload

    workload = get_workload(name)
    step = workload.build("deepgrad", dg, "cpu")
    out = {}
    if numba_vs_numpy:
        for t in threads:
            out[f"compiled, {t} thread(s)"] = block_of(step, dg.set_num_threads, t, block_time)
            out[f"numpy only, {t} thread(s)"] = block_of(step, dg.set_num_threads, t, block_time, numpy_code_only)
        return out
    import torch

    torch_step = workload.build("torch", torch, "cpu")
    for t in threads:
        out[f"deepgrad, {t} thread(s)"] = block_of(step, dg.set_num_threads, t, block_time)
        out[f"torch, {t} thread(s)"] = block_of(torch_step, torch.set_num_threads, t, block_time)
    return out


def report(name: str, times: dict[str, list[float]], threads: list[int], numba_vs_numpy: bool) -> list[str]:
    lines = [f"{name}: " + ", ".join(f"{v} {statistics.median(ms):.3g} ms" for v, ms in times.items())]
    pair = ("compiled", "numpy only") if numba_vs_numpy else ("deepgrad", "torch")
    for t in threads:
        lines.append(f"  {t} thread(s): {pair[0]} / {pair[1]} = "
                     f"{ratio(times, f'{pair[0]}, {t} thread(s)', f'{pair[1]}, {t} thread(s)'):.3f}")
    if not numba_vs_numpy and 1 in threads:
        for lib in pair:
            gains = [f"{t} threads x{ratio(times, f'{lib}, 1 thread(s)', f'{lib}, {t} thread(s)'):.2f}"
                     for t in threads if t != 1]
            if gains:
                lines.append(f"  {lib} speed-up over 1 thread: " + ", ".join(gains))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=DEFAULT_WORKLOADS, help="comma-separated workload names")
    parser.add_argument("--rounds", type=int, default=12, help="alternations of every variant")
    parser.add_argument("--block-time", type=float, default=0.25, help="seconds per timed block")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--numba-vs-numpy", action="store_true",
                        help="deepgrad's compiled kernels against its NumPy code, instead of against torch")
    args = parser.parse_args(argv)
    threads = [int(t) for t in args.threads.split(",")]
    if args.rounds < 1 or args.block_time <= 0 or not threads or min(threads) < 1:
        parser.error("--rounds and --threads need positive integers and --block-time a positive number")
    for name in args.only.split(","):
        variants = variants_for(name, threads, args.block_time, args.numba_vs_numpy)
        for block in variants.values():  # warm-up: caches, first-use compilation, thread pools
            block()
        print("\n".join(report(name, alternate(variants, args.rounds), threads, args.numba_vs_numpy)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
