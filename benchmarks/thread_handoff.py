"""What a parallel region costs deepgrad on this machine, and how much a second thread gains (issue 23).

deepgrad's CPU threads are Python threads (:mod:`deepgrad.kernels.parallel`): a region hands ranges to a pool
thread that sleeps between regions, and every NumPy call inside a range gives the GIL up and takes it back.
torch's OpenMP threads never touch the GIL and spin between regions. This report times, in one process:

* ``threading.Event`` ping-pong between two threads (one wake-up each way) and an empty ``parallel_for``:
  the fixed price of a region. On a virtual machine, waking a thread whose virtual CPU went idle costs a
  hypervisor exit; the same ping-pong with the other core kept busy by a low-priority spinning process
  (``--busy``) shows how much of the price is that wake-up;
* the LeNet-5 (``lenet5_sgd``), small-VGG (``vgg_small_adam``) and softmax (``softmax_256x1000``) steps of the
  benchmark suite with deepgrad at 1 and at 2 threads, alternated so the host's slow spells hit both.

    python -m benchmarks.thread_handoff [--busy] [--rounds 9]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time


def _per_call_us(fn, calls: int = 300, rounds: int = 7) -> float:
    fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times) * 1e6


def handoff_us() -> dict:
    """Median microseconds of an Event ping-pong round trip and of an empty 2-thread ``parallel_for``."""
    import deepgrad as dg
    from deepgrad.kernels import parallel

    go, back = threading.Event(), threading.Event()

    def echo():
        while True:
            go.wait()
            go.clear()
            back.set()

    threading.Thread(target=echo, daemon=True).start()

    def ping():
        go.set()
        back.wait()
        back.clear()

    before = dg.get_num_threads()
    dg.set_num_threads(2)
    try:
        region = _per_call_us(lambda: parallel.parallel_for(2, lambda lo, hi: None))
    finally:
        dg.set_num_threads(before)
    return {"event ping-pong": _per_call_us(ping), "empty parallel_for": region}


def scaling(rounds: int) -> dict:
    """Median ms per step of each workload at 1 and at 2 deepgrad threads, alternated in one process."""
    import deepgrad as dg

    from .interleaved import alternate, block_of
    from .registry import get_workload

    before = dg.get_num_threads()
    out = {}
    try:
        for name in ("lenet5_sgd", "vgg_small_adam", "softmax_256x1000"):
            step = get_workload(name).build("deepgrad", dg, "cpu")
            blocks = {threads: block_of(step, dg.set_num_threads, threads, 0.25) for threads in (1, 2)}
            for block in blocks.values():
                block()
            out[name] = {t: statistics.median(v) for t, v in alternate(blocks, rounds).items()}
    finally:
        dg.set_num_threads(before)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--busy", action="store_true", help="also time the hand-off with the other core kept busy")
    parser.add_argument("--rounds", type=int, default=9, help="alternations of 1 and 2 threads per workload")
    args = parser.parse_args(argv)
    for name, us in handoff_us().items():
        print(f"{name:24s} {us:7.1f} us")
    if args.busy:
        spinner = subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.5)
            for name, us in handoff_us().items():
                print(f"{name + ', other core busy':40s} {us:7.1f} us")
        finally:
            spinner.kill()
            spinner.wait()
    for name, t in scaling(args.rounds).items():
        print(f"{name:18s} deepgrad 1 thread {t[1]:8.2f} ms, 2 threads {t[2]:8.2f} ms: x{t[1] / t[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
