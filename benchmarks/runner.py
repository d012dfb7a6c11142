"""The controller: two workers (deepgrad, torch), rotated timed blocks, median ratios, a table.

Method. Each library runs in its own long-lived worker process (their native thread pools
interfere inside one process), started fresh for every workload so that its peak resident
memory belongs to that workload alone. After untimed warm-up steps, the controller asks for
short timed blocks in turn, deepgrad then torch, ``rotations`` times: a slow spell of the
shared host hits both sides of a rotation alike. Each rotation gives one ratio
``deepgrad_time_per_step / torch_time_per_step``; the report is the median of those ratios
(lower is better for deepgrad) and the median ms/step of each side.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import select
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .registry import LIBRARIES, Workload, list_workloads

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
CHECK_RTOL = 1e-4  # float32 results from different kernels agree to ~1e-6 relative; 1e-4 flags real differences


class WorkerError(RuntimeError):
    """A worker failed: its traceback, or a description of how it died."""


class DeviceUnavailable(RuntimeError):
    """The requested device is missing for at least one library."""


@dataclass
class Settings:
    """How a suite is timed."""

    device: str = "cpu"
    rotations: int = 21
    block_time: float = 0.2  # seconds per timed block (each side), when block_steps is None
    block_steps: int | None = None
    warmup_steps: int = 3
    warmup_time: float = 0.3
    # Pause before each block, seconds; None: 0.15 s with thread pools, 0 single-threaded. An idle
    # pool keeps spinning after its work (OpenBLAS for ~2**28 cycles, ~0.1 s): without a pause, the
    # block that follows shares the cores with it (measured: torch matmul 40 ms/step vs 29 ms).
    settle: float | None = None
    timeout: float = 600.0  # longest wait for one worker reply, seconds

    @classmethod
    def quick(cls, device: str = "cpu") -> Settings:
        """A few short rotations: enough to exercise the machinery, not to quote."""
        return cls(device=device, rotations=3, block_time=0.02, warmup_steps=1, warmup_time=0.0, settle=0.0)

    def settle_for(self, threads: int | None) -> float:
        """The pause before each block under this thread setting."""
        if self.settle is not None:
            return self.settle
        return 0.0 if threads == 1 else 0.15


# ----------------------------------------------------------------------------- workers
class WorkerProcess:
    """The controller's handle on one worker: JSON requests in, one JSON reply line out."""

    def __init__(self, library: str, device: str, threads: int | None, timeout: float):
        env = dict(os.environ)
        for var in THREAD_VARS:  # "default" means the machine's default, whatever this shell set
            env.pop(var, None)
        if threads:
            env.update({var: str(threads) for var in THREAD_VARS})  # before NumPy/torch load
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        args = [sys.executable, "-m", "benchmarks.worker", "--library", library, "--device", device]
        if threads:
            args += ["--threads", str(threads)]
        self.library, self.timeout = library, timeout
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=str(ROOT), env=env)
        self._buffer = b""
        self.info: dict = {}

    def hello(self) -> dict:
        self.info = self._receive()["hello"]
        return self.info

    def request(self, cmd: str, **params) -> dict:
        try:
            self.proc.stdin.write((json.dumps({"cmd": cmd, **params}) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise WorkerError(f"{self.library} worker exited (code {self.proc.poll()}) before {cmd!r}") from None
        return self._receive()

    def _receive(self) -> dict:
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + self.timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise WorkerError(f"{self.library} worker gave no reply within {self.timeout:.0f} s")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise WorkerError(f"{self.library} worker exited (code {self.proc.wait()}); see its stderr above")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        reply = json.loads(line)
        if "error" in reply:
            raise WorkerError(f"{self.library} worker failed:\n{reply['error']}")
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b'{"cmd": "quit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            stream.close()


# ----------------------------------------------------------------------------- statistics
def summarize(blocks: dict[str, list[tuple[float, int]]]) -> dict:
    """Per-rotation ratios and medians from ``{library: [(elapsed_s, steps), ...]}`` (same length).

    >>> summarize({"deepgrad": [(2.0, 10), (3.0, 10)], "torch": [(1.0, 10), (1.0, 10)]})["ratio"]
    2.5
    """
    per_step = {lib: [t / n for t, n in blocks[lib]] for lib in LIBRARIES}
    ratios = [d / t for d, t in zip(per_step["deepgrad"], per_step["torch"])]
    if len(ratios) >= 2:
        q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    else:
        q1 = q3 = ratios[0]
    return {
        "ratio": statistics.median(ratios),
        "ratio_q1": q1,
        "ratio_q3": q3,
        "ratios": ratios,
        **{f"{lib}_ms": 1e3 * statistics.median(per_step[lib]) for lib in LIBRARIES},
        **{f"{lib}_block_ms": [1e3 * s for s in per_step[lib]] for lib in LIBRARIES},
    }


def check_agreement(checks: dict[str, dict]) -> tuple[bool, float]:
    """Whether both first-step values agree: |a - b| <= rtol * (sum of |elements|), and the error."""
    a, b = checks["deepgrad"], checks["torch"]
    if a["check_shape"] != b["check_shape"]:
        return False, float("inf")
    scale = max(a["check_abs_sum"], b["check_abs_sum"], 1e-30)
    err = abs(a["check_sum"] - b["check_sum"]) / scale
    return err <= CHECK_RTOL, err


# ----------------------------------------------------------------------------- one workload
def run_workload(wl: Workload, threads: int | None, settings: Settings, log=print) -> dict:
    """Time ``wl`` on both libraries with rotated blocks; the result row (see :func:`summarize`)."""
    workers = {lib: WorkerProcess(lib, settings.device, threads, settings.timeout) for lib in LIBRARIES}
    try:
        infos = {lib: w.hello() for lib, w in workers.items()}  # both start (import) in parallel
        missing = {lib: info["unavailable"] for lib, info in infos.items() if "unavailable" in info}
        if missing:
            raise DeviceUnavailable("; ".join(f"{lib}: {why}" for lib, why in missing.items()))
        checks = {lib: w.request("build", workload=wl.name) for lib, w in workers.items()}
        agree, err = check_agreement(checks)
        if not agree:
            log(f"\nWARNING: {wl.name}: deepgrad and torch disagree on the first step "
                f"(deepgrad {checks['deepgrad']['check_sum']:.8g}, torch {checks['torch']['check_sum']:.8g}, "
                f"relative error {err:.2e} > {CHECK_RTOL:g}): the timings compare different computations")
        steps = {}
        for lib, w in workers.items():
            warm = w.request("warmup", min_steps=settings.warmup_steps, min_seconds=settings.warmup_time,
                             max_seconds=max(settings.warmup_time, 5 * settings.block_time))
            steps[lib] = settings.block_steps or max(1, round(settings.block_time / max(warm["step_s"], 1e-9)))
        blocks: dict[str, list[tuple[float, int]]] = {lib: [] for lib in LIBRARIES}
        settle = settings.settle_for(threads)
        for _ in range(settings.rotations):
            for lib, w in workers.items():  # deepgrad block, torch block: one rotation
                if settle:
                    time.sleep(settle)
                blocks[lib].append((w.request("run", steps=steps[lib])["elapsed"], steps[lib]))
        memory = {lib: w.request("memory") for lib, w in workers.items()}
    finally:
        for w in workers.values():
            w.close()
    row = {"workload": wl.name, "description": wl.description, "device": settings.device,
           "threads": threads or "default", "rotations": settings.rotations, "settle_s": settle,
           "block_steps": steps, "check": {"agree": agree, "relative_error": err, **checks},
           "libraries": infos}
    row.update(summarize(blocks))
    if wl.samples:  # throughput of a workload that declares its batch: samples per second of each library
        row["samples"] = wl.samples
        for lib in LIBRARIES:
            row[f"{lib}_samples_per_s"] = wl.samples / (row[f"{lib}_ms"] / 1e3)
    for lib in LIBRARIES:
        mem = memory[lib]
        row[f"{lib}_peak_rss_mib"] = mem["peak_rss"] / 2**20
        row[f"{lib}_peak_rss_increase_mib"] = (mem["peak_rss"] - mem["baseline_rss"]) / 2**20
        if "gpu_peak" in mem:
            row[f"{lib}_gpu_peak_mib"] = mem["gpu_peak"] / 2**20
    return row


# ----------------------------------------------------------------------------- report
def machine_info() -> dict:
    """CPU model, core counts, OS and load: the header of every report."""
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": model, "logical_cores": os.cpu_count(), "usable_cores": affinity,
            "platform": platform.platform(), "python": platform.python_version(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def _ms(x: float) -> str:
    return f"{x:.4f}" if x < 0.1 else f"{x:.3f}" if x < 10 else f"{x:.1f}"


def _rate(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}" if x >= 100 else f"{x:.1f}"


def _mem(row: dict, lib: str) -> str:
    return f"+{row[f'{lib}_peak_rss_increase_mib']:.1f} ({row[f'{lib}_peak_rss_mib']:.0f})"


def format_table(rows: list[dict], title: str) -> str:
    """The printed table of one thread setting."""
    gpu = any("deepgrad_gpu_peak_mib" in r for r in rows)
    throughput = any("samples" in r for r in rows)
    header = ["workload", "deepgrad ms/step", "torch ms/step", "ratio dg/torch", "ratio IQR",
              "deepgrad RSS MiB +peak (abs)", "torch RSS MiB +peak (abs)"]
    if throughput:
        header += ["deepgrad samples/s", "torch samples/s"]
    if gpu:
        header += ["deepgrad GPU MiB", "torch GPU MiB"]
    lines = []
    for r in rows:
        if "error" in r:
            lines.append([r["workload"], "FAILED: " + r["error"].strip().splitlines()[-1]])
            continue
        line = [r["workload"] + ("" if r["check"]["agree"] else " (!)"), _ms(r["deepgrad_ms"]), _ms(r["torch_ms"]),
                f"{r['ratio']:.2f}", f"{r['ratio_q1']:.2f}-{r['ratio_q3']:.2f}", _mem(r, "deepgrad"), _mem(r, "torch")]
        if throughput:
            line += [_rate(r.get(f"{lib}_samples_per_s")) for lib in LIBRARIES]
        if gpu:
            line += [f"{r.get('deepgrad_gpu_peak_mib', 0):.0f}", f"{r.get('torch_gpu_peak_mib', 0):.0f}"]
        lines.append(line)
    widths = [max([len(header[i])] + [len(x[i]) for x in lines if len(x) == len(header)]) for i in range(len(header))]

    def fmt(cells):
        if len(cells) != len(header):  # a failed row
            return "  ".join(cells)
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    rule = "-" * len(fmt(header))
    out = [title, rule, fmt(header), rule] + [fmt(x) for x in lines] + [rule]
    if any("error" not in r and not r["check"]["agree"] for r in rows):
        out.append("(!) the two libraries' first-step values disagree: see the warning above")
    return "\n".join(out)


def format_header(machine: dict, libraries: dict, settings: Settings) -> str:
    """Machine, library versions and method: printed above the tables."""
    dg, th = libraries.get("deepgrad", {}), libraries.get("torch", {})
    load = " ".join(f"{x:.2f}" for x in machine["load_average"]) if machine["load_average"] else "n/a"
    if settings.block_steps:
        block = f"{settings.block_steps} steps"
    else:
        block = f"~{settings.block_time:g} s"
    return "\n".join([
        f"deepgrad vs PyTorch: {settings.device} suite",
        f"machine : {machine['cpu']}, {machine['logical_cores']} logical cores ({machine['usable_cores']} usable), "
        f"{machine['platform']}, load average {load}",
        f"software: python {machine['python']}, numpy {dg.get('numpy', '?')}, deepgrad {dg.get('version', '?')}, "
        f"torch {th.get('version', '?')}",
        f"BLAS    : deepgrad: {dg.get('blas', '?')}; torch: {th.get('blas', '?')}",
        f"method  : one worker process per library, fresh per workload; {settings.rotations} rotations of one "
        f"timed block each (block {block}, deepgrad then torch)",
        f"          after >= {settings.warmup_steps} untimed warm-up steps / {settings.warmup_time:g} s; "
        f"{_settle_text(settings)}",
        "          ratio = median over rotations of (deepgrad / torch time per step): lower is better for deepgrad; "
        "IQR = its quartiles; ms/step = median over blocks",
        "          RSS = peak resident memory (ru_maxrss) above the worker's baseline after imports "
        "(absolute in brackets); samples/s = batch / median step time (inference workloads)",
    ])


def _settle_text(settings: Settings) -> str:
    if settings.settle is None:
        return "0.15 s pause before each block with thread pools (none single-threaded)"
    return f"{settings.settle:g} s pause before each block"


def _threads_title(threads: int | None, rows: list[dict]) -> str:
    ok = [r for r in rows if "libraries" in r]
    used = ""
    if ok:
        libs = ok[0]["libraries"]
        used = (f" (deepgrad threads: {libs['deepgrad'].get('threads')}, "
                f"torch threads: {libs['torch'].get('threads')})")
    if threads == 1:
        label = "single thread: the stable figures"
    else:
        label = f"{threads} threads" if threads else "the machine's default threads: noisier on a shared host"
    return f"threads = {threads or 'default'}, {label}{used}"


def run_suite(workloads: list[Workload], thread_settings: list[int | None], settings: Settings,
              log=print) -> dict:
    """Run every workload under every thread setting; the full result (what the JSON holds)."""
    started = _dt.datetime.now()
    result = {"suite": settings.device, "device": settings.device, "started": started.isoformat(timespec="seconds"),
              "command": sys.argv, "machine": machine_info(), "settings": settings.__dict__.copy(),
              "results": [], "libraries": {}}
    for threads in thread_settings:
        for wl in workloads:
            log(f"[threads={threads or 'default'}] {wl.name} ...", end=" ", flush=True)
            try:
                row = run_workload(wl, threads, settings, log=log)
            except DeviceUnavailable:
                log("")
                raise
            except WorkerError as e:
                log("FAILED")
                log(str(e))
                row = {"workload": wl.name, "description": wl.description, "device": settings.device,
                       "threads": threads or "default", "error": str(e)}
            else:
                log(f"deepgrad {_ms(row['deepgrad_ms'])} ms, torch {_ms(row['torch_ms'])} ms, ratio {row['ratio']:.2f}")
                result["libraries"].setdefault(str(threads or "default"), row["libraries"])
            result["results"].append(row)
    result["finished"] = _dt.datetime.now().isoformat(timespec="seconds")
    return result


def report(result: dict, thread_settings: list[int | None], settings: Settings) -> str:
    """Header plus one table per thread setting."""
    libraries = next(iter(result["libraries"].values()), {})
    parts = [format_header(result["machine"], libraries, settings)]
    for threads in thread_settings:
        rows = [r for r in result["results"] if r["threads"] == (threads or "default")]
        parts.append(format_table(rows, _threads_title(threads, rows)))
    return "\n\n".join(parts)


def default_json_path(device: str, when: _dt.datetime | None = None) -> Path:
    """``benchmarks/results/<suite>-<timestamp>.json``."""
    stamp = (when or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    return RESULTS_DIR / f"{device}-{stamp}.json"


def write_json(result: dict, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, default=str) + "\n")
    return path


def select_workloads(only: str | None, device: str) -> list[Workload]:
    """The workloads named in ``only`` (comma-separated), or all that run on ``device``."""
    available = list_workloads(device)
    if not only:
        return available
    by_name = {w.name: w for w in available}
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SystemExit(f"unknown workload(s) {', '.join(unknown)} for device {device!r}; "
                         f"available: {', '.join(by_name)}")
    return [by_name[n] for n in names]
