"""How much of the machine's float32 GEMM rate the conv layers reach (issue 9, CPU).

Reference: the best of a few large float32 NumPy matmuls (2048 x 2048 x 2048) measured in the
same run and at the same thread setting: the rate the machine's BLAS reaches on the work a
convolution lowers to. For every conv layer of LeNet-5 and of the small VGG (batch 64, the
shapes of ``lenet5_sgd`` and ``vgg_small_adam``), each library times, through its public API,

* forward: ``F.conv2d(x, w, stride=, padding=)`` with ``x`` and ``w`` requiring grad (a training
  forward: the graph is recorded), FLOPs ``2*N*O*C/g*kh*kw*Ho*Wo``;
* backward: ``y.backward(g)`` with a fixed upstream gradient, computing both the input and the
  weight gradient, FLOPs twice the forward's.

Each figure is the best (shortest) of several repetitions: the rate the code can reach, not the
rate a loaded host happens to give. deepgrad's fraction is its GFLOP/s over NumPy's GEMM rate;
torch's GFLOP/s are shown against the same reference (torch's own ``mm`` rate is printed too:
its BLAS may differ from NumPy's). A fraction above 1 is possible: torch's convolutions run
oneDNN kernels of their own, which can use wider vector units than the kernels NumPy's BLAS
picked for the CPU (the report names them, e.g. OpenBLAS "Haswell" = AVX2).

The measuring half (:func:`measure`) runs inside a benchmark worker (``gemm_fraction`` request),
so the thread setting is in the environment before NumPy or torch loads; :func:`run` drives it.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass

import numpy as np

GEMM_SIZE = 2048


@dataclass(frozen=True)
class ConvLayer:
    """One conv layer's shapes: input (batch, cin, h, w), cout filters of k x k, stride, padding."""

    name: str
    batch: int
    cin: int
    h: int
    w: int
    cout: int
    k: int
    stride: int = 1
    padding: int = 0

    @property
    def out_hw(self) -> tuple[int, int]:
        return tuple((n + 2 * self.padding - self.k) // self.stride + 1 for n in (self.h, self.w))

    @property
    def flops_fwd(self) -> int:
        """2 * N * O * C * kh * kw * Ho * Wo (groups = 1): one multiply and one add per weight use."""
        ho, wo = self.out_hw
        return 2 * self.batch * self.cout * self.cin * self.k * self.k * ho * wo

    @property
    def flops_bwd(self) -> int:
        """Input grad and weight grad: one forward's worth of FLOPs each."""
        return 2 * self.flops_fwd

    @property
    def shape(self) -> str:
        ho, wo = self.out_hw
        return (f"{self.batch}x{self.cin}x{self.h}x{self.w} -> {self.cout}x{ho}x{wo} "
                f"k{self.k} s{self.stride} p{self.padding}")


LAYERS = (
    ConvLayer("lenet5.conv1", 64, 1, 28, 28, 6, 5, padding=2),
    ConvLayer("lenet5.conv2", 64, 6, 14, 14, 16, 5),
    ConvLayer("vgg_small.conv1", 64, 3, 32, 32, 32, 3, padding=1),
    ConvLayer("vgg_small.conv2", 64, 32, 32, 32, 32, 3, padding=1),
    ConvLayer("vgg_small.conv3", 64, 32, 16, 16, 64, 3, padding=1),
    ConvLayer("vgg_small.conv4", 64, 64, 16, 16, 64, 3, padding=1),
)


@dataclass
class Effort:
    """How hard each figure is measured: GEMM repetitions; per conv direction, repetitions and seconds."""

    gemm_repeats: int = 5
    min_repeats: int = 3
    max_repeats: int = 50
    min_time: float = 0.3

    @classmethod
    def quick(cls) -> Effort:
        return cls(gemm_repeats=2, min_repeats=2, max_repeats=2, min_time=0.0)


def _best_time(fn, effort: Effort) -> float:
    """The shortest of repeated ``fn()`` timings (``fn`` returns its own elapsed seconds), after one untimed call."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < effort.max_repeats:
        times.append(fn())
        if len(times) >= effort.min_repeats and time.perf_counter() - start >= effort.min_time:
            break
    return min(times)


def _matmul_gflops(matmul, a, b, repeats: int) -> float:
    matmul(a, b)  # warm-up: thread pool start, page faults of the output

    def once() -> float:
        t0 = time.perf_counter()
        matmul(a, b)
        return time.perf_counter() - t0

    best = min(once() for _ in range(repeats))
    return 2 * GEMM_SIZE ** 3 / best / 1e9


def _conv_times(lib, layer: ConvLayer, effort: Effort, gen: np.random.Generator) -> dict:
    conv2d = lib.nn.functional.conv2d
    x = lib.tensor(gen.standard_normal((layer.batch, layer.cin, layer.h, layer.w), dtype=np.float32),
                   requires_grad=True)
    w = lib.tensor(gen.standard_normal((layer.cout, layer.cin, layer.k, layer.k), dtype=np.float32)
                   * np.float32((layer.cin * layer.k * layer.k) ** -0.5), requires_grad=True)
    g = lib.tensor(gen.standard_normal((layer.batch, layer.cout, *layer.out_hw), dtype=np.float32))

    def forward() -> float:
        t0 = time.perf_counter()
        conv2d(x, w, None, stride=layer.stride, padding=layer.padding)
        return time.perf_counter() - t0

    def backward() -> float:
        y = conv2d(x, w, None, stride=layer.stride, padding=layer.padding)
        t0 = time.perf_counter()
        y.backward(g)
        elapsed = time.perf_counter() - t0
        x.grad = w.grad = None
        return elapsed

    return {"fwd_s": _best_time(forward, effort), "bwd_s": _best_time(backward, effort)}


def measure(library: str, lib, quick: bool = False) -> dict:
    """Worker side: this library's conv timings per layer, plus the NumPy GEMM rate (deepgrad
    worker) or torch.mm's rate (torch worker). A layer that fails records its error."""
    effort = Effort.quick() if quick else Effort()
    gen = np.random.default_rng(0)
    a = gen.standard_normal((GEMM_SIZE, GEMM_SIZE), dtype=np.float32)
    b = gen.standard_normal((GEMM_SIZE, GEMM_SIZE), dtype=np.float32)
    if library == "deepgrad":
        key, c = "numpy_gemm_gflops", np.empty_like(a)

        def gemm() -> float:
            # deepgrad runs NumPy's BLAS on one thread beside its own threads; the machine's rate at this
            # thread setting is the BLAS with those threads lent to it.
            with lib.kernels.parallel.blas_threads():
                return _matmul_gflops(lambda p, q: np.matmul(p, q, out=c), a, b, effort.gemm_repeats)
    else:
        key, ta, tb = "torch_mm_gflops", lib.from_numpy(a), lib.from_numpy(b)

        def gemm() -> float:
            return _matmul_gflops(lib.mm, ta, tb, effort.gemm_repeats)

    # The reference is measured before and after the layers and the best kept: on a shared host a
    # busy spell during one of the two would otherwise understate the machine's rate.
    before = gemm()
    layers = {}
    for layer in LAYERS:
        try:
            layers[layer.name] = _conv_times(lib, layer, effort, gen)
        except Exception:  # one broken layer should not hide the others' figures
            layers[layer.name] = {"error": traceback.format_exc()}
    after = gemm()
    return {"library": library, key: max(before, after), f"{key}_before_after": [before, after], "layers": layers}


def combine(threads: int | None, replies: dict[str, dict]) -> dict:
    """One thread setting's report from the two workers' replies: GFLOP/s and fractions of the GEMM rate."""
    gemm = replies["deepgrad"]["numpy_gemm_gflops"]
    rows = []
    for layer in LAYERS:
        row = {"layer": layer.name, "shape": layer.shape, **asdict(layer),
               "flops_fwd": layer.flops_fwd, "flops_bwd": layer.flops_bwd}
        for library, reply in replies.items():
            timing = reply["layers"][layer.name]
            if "error" in timing:
                row[f"{library}_error"] = timing["error"]
                continue
            for direction, flops in (("fwd", layer.flops_fwd), ("bwd", layer.flops_bwd)):
                seconds = timing[f"{direction}_s"]
                rate = flops / seconds / 1e9
                row[f"{library}_{direction}_s"] = seconds
                row[f"{library}_{direction}_gflops"] = rate
                row[f"{library}_{direction}_fraction"] = rate / gemm
        rows.append(row)
    return {"threads": threads or "default", "gemm_size": GEMM_SIZE, "numpy_gemm_gflops": gemm,
            "numpy_gemm_gflops_before_after": replies["deepgrad"]["numpy_gemm_gflops_before_after"],
            "torch_mm_gflops": replies["torch"]["torch_mm_gflops"],
            "numpy_blas": replies["deepgrad"].get("blas"),
            "threads_used": {lib: reply.get("threads") for lib, reply in replies.items()}, "layers": rows}


def run(thread_settings: list[int | None], quick: bool = False, timeout: float = 600.0, log=print) -> dict:
    """Controller side: measure every thread setting, one worker at a time (they would share the cores)."""
    from .runner import WorkerError, WorkerProcess

    runs = []
    for threads in thread_settings:
        log(f"[threads={threads or 'default'}] conv layers vs the GEMM rate ...", end=" ", flush=True)
        replies = {}
        try:
            for library in ("deepgrad", "torch"):
                worker = WorkerProcess(library, "cpu", threads, timeout)
                try:
                    info = worker.hello()
                    replies[library] = worker.request("gemm_fraction", quick=quick)
                    replies[library]["threads"] = info.get("threads")
                    replies[library]["blas"] = _blas_text(info)
                finally:
                    worker.close()
        except WorkerError as e:
            log("FAILED")
            log(str(e))
            runs.append({"threads": threads or "default", "error": str(e)})
            continue
        runs.append(combine(threads, replies))
        log(f"NumPy GEMM {runs[-1]['numpy_gemm_gflops']:.1f} GFLOP/s")
    return {"method": __doc__.split("\n\n")[1].replace("\n", " "), "quick": quick, "runs": runs}


def _blas_text(info: dict) -> str:
    """"openblas 0.3.x, Haswell kernels": the reference's BLAS and the kernels it picked for this CPU."""
    pools = [p for p in info.get("threadpools", []) if p.get("user_api") == "blas"]
    if not pools:
        return info.get("blas", "unknown")
    p = pools[0]
    arch = f", {p['architecture']} kernels" if p.get("architecture") else ""
    return f"{p.get('internal_api', '?')} {p.get('version', '?')}{arch}"


def _cell(row: dict, library: str, direction: str) -> str:
    if f"{library}_error" in row:
        return "FAILED"
    return f"{row[f'{library}_{direction}_gflops']:.1f} ({row[f'{library}_{direction}_fraction']:.2f})"


def format_report(gemm: dict) -> str:
    """The printed tables: one per thread setting, a row per conv layer."""
    header = ["layer", "input -> output, kernel", "MFLOP fwd", "deepgrad fwd", "deepgrad bwd", "torch fwd",
              "torch bwd"]
    parts = []
    for run_ in gemm["runs"]:
        title = f"conv layers vs the float32 GEMM rate, threads = {run_['threads']}"
        if "error" in run_:
            parts.append(f"{title}: FAILED: {run_['error'].strip().splitlines()[-1]}")
            continue
        used = run_["threads_used"]
        lines = [[r["layer"], r["shape"], f"{r['flops_fwd'] / 1e6:.0f}",
                  *(_cell(r, lib, d) for lib in ("deepgrad", "torch") for d in ("fwd", "bwd"))]
                 for r in run_["layers"]]
        widths = [max(len(header[i]), *(len(x[i]) for x in lines)) for i in range(len(header))]

        def fmt(cells, widths=widths):
            return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        rule = "-" * len(fmt(header))
        errors = [f"  {r['layer']} ({lib}): {r[f'{lib}_error'].strip().splitlines()[-1]}"
                  for r in run_["layers"] for lib in ("deepgrad", "torch") if f"{lib}_error" in r]
        parts.append("\n".join([
            f"{title} (deepgrad threads: {used.get('deepgrad')}, torch threads: {used.get('torch')})",
            f"reference: NumPy float32 matmul {run_['gemm_size']}^3 on {run_['numpy_blas']}, best of several: "
            f"{run_['numpy_gemm_gflops']:.1f} GFLOP/s (torch.mm: {run_['torch_mm_gflops']:.1f} GFLOP/s)",
            "cells: GFLOP/s (fraction of the NumPy GEMM rate), best of several repetitions; fwd = F.conv2d with "
            "grad recording, bwd = input + weight grads (2x the forward FLOPs)",
            rule, fmt(header), rule, *(fmt(x) for x in lines), rule,
            *(["failed layers:", *errors] if errors else []),
        ]))
    return "\n\n".join(parts)
