"""Data-parallel scaling on this machine: 1 vs 2 ranks (one thread each), communication apart from compute.

    python benchmarks/distributed_scaling.py                   # LeNet-5, MNIST-sized inputs
    python benchmarks/distributed_scaling.py --steps 30 --batch 128

Runs itself under ``mpiexec -n 1`` and ``mpiexec -n 2`` (OMP/BLAS threads = 1 per rank) and prints, per
configuration, the median step time split into compute (forward + backward + optimizer, minus the time
blocked on all-reduces) and exposed communication (time the last rank to finish backward stays blocked
on the gradient all-reduces); "rank skew" is the extra time the faster rank waits for the slower one
(load imbalance, a shared machine), plus the cost of the same all-reduces run alone (blocking, no overlap). Strong
scaling keeps the global batch fixed (each of 2 ranks takes half); weak scaling keeps the per-rank batch.
Then an estimate for many machines: bytes all-reduced per step for zoo models vs network bandwidth.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a file from a checkout: import this tree's deepgrad
    sys.path.insert(0, str(ROOT))


def _worker(args: argparse.Namespace) -> None:
    import numpy as np

    import deepgrad as dg
    import deepgrad.distributed as dist
    from deepgrad import nn, optim
    from deepgrad.models import LeNet5

    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    per_rank = args.batch // world if args.mode == "strong" else args.batch
    dg.manual_seed(0)
    model = dist.DistributedDataParallel(LeNet5())
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(rank)
    x = dg.tensor(rng.standard_normal((per_rank, 1, 28, 28)).astype(np.float32))
    y = dg.tensor(rng.integers(0, 10, per_rank))
    steps, waits = [], []
    for i in range(args.warmup + args.steps):
        dist.barrier()  # start every step together: the timings are per step, not skewed by the last one
        wait0 = model.comm_wait_time
        t0 = time.perf_counter()
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        t1 = time.perf_counter()
        if i >= args.warmup:
            steps.append(t1 - t0)
            waits.append(model.comm_wait_time - wait0)
    # the same all-reduces alone (no compute to hide them behind)
    group = dist.collectives._default_group()
    buffers = [np.zeros(n // 4, dtype=np.float32) for n in model.bucket_sizes]
    alone = []
    for _ in range(args.steps):
        dist.barrier()
        t0 = time.perf_counter()
        for b in buffers:
            group.all_reduce(b)
        alone.append(time.perf_counter() - t0)
    # the slowest rank sets the pace: report the max over ranks of each median
    mine = [statistics.median(steps), statistics.median(waits), statistics.median(alone)]
    everyone = [None] * world
    dist.all_gather_object(everyone, mine)
    if rank == 0:
        step, wait_max, solo = (max(v[i] for v in everyone) for i in range(3))
        # the rank that finishes backward last waits only for the transfer; the others also wait for it
        wait = min(v[1] for v in everyone)
        print("RESULT " + json.dumps({"world": world, "mode": args.mode, "per_rank": per_rank, "step": step,
                                      "wait": wait, "skew": wait_max - wait, "alone": solo,
                                      "bytes": sum(model.bucket_sizes), "buckets": len(model.bucket_sizes)}),
              flush=True)
    dist.destroy_process_group()


def _run(world: int, mode: str, args: argparse.Namespace) -> dict:
    from deepgrad.distributed.launch import find_mpiexec

    mpiexec = find_mpiexec()
    if mpiexec is None:
        raise SystemExit("distributed_scaling: no mpiexec found (pip install 'deepgrad[distributed]')")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    cmd = [mpiexec, "-n", str(world), sys.executable, "-m", "mpi4py", __file__, "--worker", "--mode", mode,
           "--batch", str(args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise SystemExit(f"distributed_scaling: the {world}-rank run failed:\n{out.stdout}\n{out.stderr}")


def _model_bytes() -> list[tuple[str, int]]:
    import numpy as np

    from deepgrad.models import LeNet5, resnet18, vgg11

    models = [("LeNet-5 (MNIST)", lambda: LeNet5()),
              ("small VGG-11 (CIFAR, width 1/4)", lambda: vgg11(num_classes=10, input_size=32, width=0.25)),
              ("ResNet-18 (ImageNet)", lambda: resnet18())]
    rows = []
    for name, build in models:
        n = sum(int(np.prod(p.shape)) for p in build().parameters())
        rows.append((name, n * 4))
    return rows


def _estimate(step_compute_s: float) -> None:
    print("\nEstimate for many machines (ring all-reduce: each rank sends and receives 2(K-1)/K x the gradient "
          "bytes per step; float32 gradients; latency and stragglers ignored):")
    print(f"  {'model':<34}{'grad MB':>9}{'10 Gb/s':>10}{'25 Gb/s':>10}{'100 Gb/s':>10}   (ms per step, K -> inf)")
    for name, nbytes in _model_bytes():
        times = [2 * nbytes * 8 / (gbps * 1e9) * 1e3 for gbps in (10, 25, 100)]
        print(f"  {name:<34}{nbytes / 2**20:>9.2f}" + "".join(f"{t:>10.2f}" for t in times))
    print(f"  (LeNet-5's measured compute here: {step_compute_s * 1e3:.1f} ms per step and rank)")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64, help="global batch (strong) / per-rank batch (weak)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="strong", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        _worker(args)
        return
    print(f"LeNet-5 data-parallel training step, batch {args.batch}, one thread per rank, "
          f"median of {args.steps} steps (max over ranks)")
    print(f"{'config':<16}{'ranks':>6}{'batch/rank':>11}{'step ms':>9}{'compute':>9}{'exposed comm':>13}"
          f"{'rank skew':>10}{'allreduce alone':>16}{'samples/s':>11}{'speedup':>9}")
    base_rate = None
    compute_1 = None
    for mode in ("strong", "weak"):
        for world in (1, 2):
            r = _run(world, mode, args)
            rate = r["per_rank"] * world / r["step"]
            if world == 1:
                base_rate = rate
                compute_1 = compute_1 or r["step"] - r["wait"]
            print(f"{mode + ' scaling':<16}{world:>6}{r['per_rank']:>11}{r['step'] * 1e3:>9.1f}"
                  f"{(r['step'] - r['wait'] - r['skew']) * 1e3:>9.1f}{r['wait'] * 1e3:>13.2f}{r['skew'] * 1e3:>10.2f}"
                  f"{r['alone'] * 1e3:>16.2f}"
                  f"{rate:>11.0f}{rate / base_rate:>9.2f}")
    print(f"gradient all-reduce per step: {r['bytes'] / 1024:.1f} KiB in {r['buckets']} bucket(s)")
    _estimate(compute_1)


if __name__ == "__main__":
    main()
