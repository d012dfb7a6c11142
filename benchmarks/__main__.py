"""``python -m benchmarks``: time deepgrad against PyTorch, print the tables, write the JSON.

Examples::

    python -m benchmarks                              # CPU suite, default threads and 1 thread
    python -m benchmarks --threads 1 --only mlp_tiny  # one workload, single thread
    python -m benchmarks --device cuda                # GPU suite (skips when there is no GPU)
    python -m benchmarks --quick --json /tmp/r.json   # a fast smoke run
"""

from __future__ import annotations

import argparse
import sys

from . import runner
from .registry import list_workloads


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description="deepgrad vs PyTorch, side by side.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="which suite to run")
    p.add_argument("--only", metavar="NAME[,NAME]", help="run only these workloads")
    p.add_argument("--list", action="store_true", help="list the workloads and exit")
    p.add_argument("--rotations", type=int, help="timed rotations (one block per library each); default 21")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--block-steps", type=int, help="steps per timed block (same for both libraries)")
    group.add_argument("--block-time", type=float, help="target seconds per timed block; default 0.2")
    p.add_argument("--warmup-steps", type=int, help="minimum untimed warm-up steps; default 3")
    p.add_argument("--settle", type=float,
                   help="pause in seconds before each block; default 0.15 with thread pools, 0 single-threaded")
    p.add_argument("--threads", choices=("default", "1", "both"), default="both",
                   help="worker thread setting: the machine default, single thread, or both")
    p.add_argument("--json", metavar="PATH", help="results file (default benchmarks/results/<suite>-<timestamp>.json)")
    p.add_argument("--quick", action="store_true", help="a few short rotations: a smoke test, not figures to quote")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for w in list_workloads():
            print(f"{w.name:20s} {w.description}  [{', '.join(w.devices)}]")
        return 0
    settings = runner.Settings.quick(args.device) if args.quick else runner.Settings(device=args.device)
    for option, field in (("rotations", "rotations"), ("block_steps", "block_steps"), ("block_time", "block_time"),
                          ("warmup_steps", "warmup_steps"), ("settle", "settle")):
        value = getattr(args, option)
        if value is not None:
            if value < 0 or (value == 0 and option in ("rotations", "block_steps", "block_time")):
                raise SystemExit(f"--{option.replace('_', '-')} must be positive, got {value}")
            setattr(settings, field, value)
    workloads = runner.select_workloads(args.only, args.device)
    thread_settings = {"default": [None], "1": [1], "both": [None, 1]}[args.threads]
    try:
        result = runner.run_suite(workloads, thread_settings, settings)
    except runner.DeviceUnavailable as e:
        print(f"GPU suite skipped: no usable CUDA device ({e})")
        return 0
    print()
    print(runner.report(result, thread_settings, settings))
    path = runner.write_json(result, args.json or runner.default_json_path(args.device))
    print(f"\nresults written to {path}")
    failed = [r["workload"] for r in result["results"] if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
