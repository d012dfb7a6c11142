"""A benchmark worker: one process, one library, one workload, commands over a pipe.

Started by the runner as ``python -m benchmarks.worker --library {deepgrad,torch} --device D
[--threads N]`` with its thread settings already in the environment (they must be there
before NumPy or torch is imported). It speaks JSON lines: requests on stdin, one reply line
each on the original stdout; everything else the process prints is sent to stderr so that
library chatter cannot corrupt the protocol.

Requests: ``build`` (build the workload, run its first step, return a check value),
``warmup`` (untimed steps, returns a per-step estimate), ``run`` (N steps, returns elapsed
seconds, with a device synchronisation before and after on CUDA), ``memory`` (peak resident
memory), ``gemm_fraction`` (conv layers' FLOP rates, see :mod:`benchmarks.gemm_fraction`), ``quit``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import traceback


def _maxrss_bytes() -> int:
    # Linux reports ru_maxrss in KiB (macOS in bytes).
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def _threadpools() -> list[dict]:
    """Native thread pools loaded in this process (BLAS, OpenMP), when threadpoolctl is there."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keep = ("user_api", "internal_api", "num_threads", "version", "threading_layer", "architecture")
    return [{k: info.get(k) for k in keep if info.get(k) is not None} for info in threadpool_info()]


class Worker:
    """Imports its library, then serves one workload."""

    def __init__(self, library: str, device: str, threads: int | None):
        self.library, self.device = library, device
        import numpy

        info = {"library": library, "device": device, "numpy": numpy.__version__, "pid": os.getpid()}
        if library == "torch":
            import torch

            if threads:
                torch.set_num_threads(threads)
            self.lib = torch
            info.update(version=torch.__version__, threads=torch.get_num_threads(), blas=_torch_blas(torch))
            cuda_ok = torch.cuda.is_available()
            if device == "cuda" and not cuda_ok:
                info["unavailable"] = "torch.cuda.is_available() is False (a CPU-only torch build, or no GPU)"
            self._sync = torch.cuda.synchronize if device == "cuda" and cuda_ok else _no_sync
            self._gpu_bytes = torch.cuda.max_memory_reserved if device == "cuda" and cuda_ok else None
        elif library == "deepgrad":
            import deepgrad

            self.lib = deepgrad
            if threads:
                deepgrad.set_num_threads(threads)
            # deepgrad's own threads; it runs NumPy's BLAS on one thread beside them (deepgrad.kernels.parallel)
            info.update(version=deepgrad.__version__, threads=deepgrad.get_num_threads(), blas=_numpy_blas(numpy))
            cp = deepgrad.backend.cupy_module()
            if device == "cuda" and cp is None:
                info["unavailable"] = "deepgrad.cuda_is_available() is False (CuPy not installed, or no GPU)"
            gpu = device == "cuda" and cp is not None
            self._sync = (lambda: cp.cuda.Device().synchronize()) if gpu else _no_sync
            self._gpu_bytes = (lambda: cp.get_default_memory_pool().total_bytes()) if gpu else None
        else:
            raise ValueError(f"unknown library {library!r}")
        from . import registry

        registry.list_workloads()  # import the workload modules before the memory baseline
        info["threadpools"] = _threadpools()
        self.baseline_rss = _maxrss_bytes()
        info["baseline_rss"] = self.baseline_rss
        self.info = info
        self.step = None

    # ------------------------------------------------------------------ commands
    def build(self, workload: str) -> dict:
        from .registry import get_workload

        t0 = time.perf_counter()
        self.step = get_workload(workload).build(self.library, self.lib, self.device)
        out = self.step()  # the first step: also the value both libraries must agree on
        self._sync()
        seconds = time.perf_counter() - t0
        import numpy as np

        values = np.asarray(out.detach().cpu().numpy(), dtype=np.float64)
        return {"build_s": seconds, "check_sum": float(values.sum()), "check_abs_sum": float(np.abs(values).sum()),
                "check_shape": list(values.shape)}

    def warmup(self, min_steps: int, min_seconds: float, max_seconds: float) -> dict:
        times = []
        start = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            self.step()
            self._sync()
            times.append(time.perf_counter() - t0)
            elapsed = time.perf_counter() - start
            if len(times) >= min_steps and elapsed >= min_seconds:
                break
            if elapsed >= max_seconds:
                break
        tail = sorted(times[len(times) // 2:])  # later steps: past one-off costs (allocation, caches)
        return {"steps": len(times), "elapsed": elapsed, "step_s": tail[len(tail) // 2]}

    def run(self, steps: int) -> dict:
        step, sync = self.step, self._sync
        sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        return {"elapsed": time.perf_counter() - t0, "steps": steps}

    def gemm_fraction(self, quick: bool = False) -> dict:
        from . import gemm_fraction

        return gemm_fraction.measure(self.library, self.lib, quick=quick)

    def memory(self) -> dict:
        out = {"peak_rss": _maxrss_bytes(), "baseline_rss": self.baseline_rss}
        if self._gpu_bytes is not None:
            out["gpu_peak"] = int(self._gpu_bytes())
        return out


def _no_sync() -> None:
    pass


def _numpy_blas(numpy) -> str:
    try:
        blas = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"numpy {blas.get('name')} {blas.get('version')}"
    except Exception:  # older NumPy or an unusual build: the version is still worth reporting
        return "numpy BLAS unknown"


def _torch_blas(torch) -> str:
    config = torch.__config__.show()
    blas = next((part.split("=", 1)[1] for part in config.replace(",", " ").split() if part.startswith("BLAS_INFO=")),
                "unknown")
    parallel = next((line.split(":", 1)[1].strip() for line in torch.__config__.parallel_info().splitlines()
                     if line.startswith("ATen parallel backend")), "unknown")
    return f"torch BLAS={blas}, parallel backend={parallel}, mkldnn={torch.backends.mkldnn.is_available()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", required=True, choices=("deepgrad", "torch"))
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=0, help="0: the library default")
    args = parser.parse_args(argv)
    # Keep the original stdout for replies; route every other write to stderr.
    reply_stream = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def reply(obj: dict) -> None:
        reply_stream.write(json.dumps(obj) + "\n")
        reply_stream.flush()

    try:
        worker = Worker(args.library, args.device, args.threads or None)
    except Exception:
        reply({"error": traceback.format_exc()})
        return 1
    reply({"hello": worker.info})
    handlers = {"build": worker.build, "warmup": worker.warmup, "run": worker.run, "memory": worker.memory,
                "gemm_fraction": worker.gemm_fraction}
    for line in sys.stdin:
        request = json.loads(line)
        cmd = request.pop("cmd")
        if cmd == "quit":
            break
        try:
            reply(handlers[cmd](**request))
        except Exception:
            reply({"error": traceback.format_exc()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
