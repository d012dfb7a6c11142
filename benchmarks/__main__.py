"""``python -m benchmarks``: time deepgrad against PyTorch, print the tables, write the JSON.

Examples::

    python -m benchmarks                              # CPU suite, default threads and 1 thread
    python -m benchmarks --threads 1 --only mlp_tiny  # one workload, single thread
    python -m benchmarks --device cuda                # GPU suite (skips when there is no GPU)
    python -m benchmarks --quick --json /tmp/r.json   # a fast smoke run
    python -m benchmarks --gemm-fraction --threads 1  # only the conv layers vs GEMM rate report

The full CPU suite (no --only) ends with the conv-layers-vs-GEMM-rate report (--no-gemm-fraction skips it).
"""

from __future__ import annotations

import argparse
import sys

from . import gemm_fraction, runner
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
    report = p.add_mutually_exclusive_group()
    report.add_argument("--gemm-fraction", action="store_true",
                        help="run only the CPU report of the conv layers' GFLOP/s vs a large NumPy matmul")
    report.add_argument("--no-gemm-fraction", action="store_true",
                        help="skip that report at the end of the full CPU suite")
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
    thread_settings = {"default": [None], "1": [1], "both": [None, 1]}[args.threads]
    if args.gemm_fraction:
        return _gemm_fraction_only(args, thread_settings, settings)
    workloads = runner.select_workloads(args.only, args.device)
    try:
        result = runner.run_suite(workloads, thread_settings, settings)
    except runner.DeviceUnavailable as e:
        print(f"GPU suite skipped: no usable CUDA device ({e})")
        return 0
    gemm = None
    if args.device == "cpu" and not args.only and not args.no_gemm_fraction:
        gemm = result["gemm_fraction"] = gemm_fraction.run(thread_settings, quick=args.quick,
                                                           timeout=settings.timeout)
    print()
    print(runner.report(result, thread_settings, settings))
    if gemm is not None:
        print()
        print(gemm_fraction.format_report(gemm))
    path = runner.write_json(result, args.json or runner.default_json_path(args.device))
    print(f"\nresults written to {path}")
    failed = [r["workload"] for r in result["results"] if "error" in r]
    return 1 if failed or (gemm is not None and _gemm_failed(gemm)) else 0


def _gemm_failed(gemm: dict) -> bool:
    return any("error" in r or any(k.endswith("_error") for row in r["layers"] for k in row) for r in gemm["runs"])


def _gemm_fraction_only(args: argparse.Namespace, thread_settings: list[int | None], settings) -> int:
    if args.device != "cpu":
        raise SystemExit("--gemm-fraction is a CPU report: drop --device cuda")
    if args.only:
        raise SystemExit("--gemm-fraction runs its own fixed conv layers: drop --only")
    import datetime as dt

    started = dt.datetime.now()
    gemm = gemm_fraction.run(thread_settings, quick=args.quick, timeout=settings.timeout)
    result = {"suite": "gemm_fraction", "device": "cpu", "started": started.isoformat(timespec="seconds"),
              "command": sys.argv, "machine": runner.machine_info(), "gemm_fraction": gemm,
              "finished": dt.datetime.now().isoformat(timespec="seconds")}
    print()
    print(gemm_fraction.format_report(gemm))
    path = runner.write_json(result, args.json or runner.default_json_path("cpu-gemm-fraction", started))
    print(f"\nresults written to {path}")
    return 1 if _gemm_failed(gemm) else 0


if __name__ == "__main__":
    sys.exit(main())
