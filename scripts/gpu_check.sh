#!/usr/bin/env bash
# scripts/gpu_check.sh OUT_DIR [--dry-run]: the one prepared GPU check of deepgrad (issue 22).
#
# Run from anywhere; it works on the working tree it lives in (PYTHONPATH=<repo>). Stages, each
# under its own `timeout` so one hang cannot eat the others, each logged to OUT_DIR:
#   probe       refuses quickly (exit 2) when CuPy is missing, sees no GPU or hangs, or deepgrad does not import
#   env         nvidia-smi, Python/NumPy/CuPy/torch versions, device count, which deps import
#   tests       python -m pytest -k "cuda or nccl" (junit xml + log)
#   bench       python -m benchmarks --device cuda on the issue's workloads -> OUT_DIR/bench.json
#   tests_fused the GPU tests again with DEEPGRAD_CUDA_FUSED=1 (the fused kernels, unverified until this runs)
#   bench_extra the remaining GPU workloads -> OUT_DIR/bench_extra.json (only while time is left)
#   nccl2       a 2-rank NCCL data-parallel check when >= 2 GPUs and mpiexec exist (else skipped, logged)
# then OUT_DIR/summary.txt: one line per stage (ok / failed rc=N / timed out / skipped) and the test counts.
# A failing stage never stops the next. The whole run stays under GPU_CHECK_BUDGET seconds (default 420).
# Exit status: 0 all stages ok, 1 some stage failed or timed out, 2 no usable GPU (nothing run), 64 usage.
#
# Environment: PYTHON (default: python3, else python), GPU_CHECK_BUDGET (seconds), DEEPGRAD_GPU_DEPS (a folder of
# packages made by scripts/gpu_deps.sh, put on PYTHONPATH after the repo when pytest/safetensors/cupy is missing),
# BENCH_ARGS (replaces the default timing options of the bench stages), GPU_CHECK_PROBE_TIMEOUT (default 60 s).
set -u

usage() { echo "usage: scripts/gpu_check.sh OUT_DIR [--dry-run]" >&2; exit 64; }
OUT="" DRY=0 ENV_ONLY=0
for arg in "$@"; do
    case "$arg" in
        --dry-run) DRY=1 ;;
        --env-report) ENV_ONLY=1 ;;  # internal: the env stage runs this script again under `timeout`
        -h|--help) usage ;;
        -*) echo "gpu_check: unknown option $arg" >&2; usage ;;
        *) [ -z "$OUT" ] || usage; OUT="$arg" ;;
    esac
done
[ -n "$OUT" ] || [ "$ENV_ONLY" = 1 ] || usage

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 64
PY="${PYTHON:-$(command -v python3 || command -v python)}"
export PYTHONPATH="$ROOT"
# carried packages (scripts/gpu_deps.sh) only where the machine lacks one: installed versions win otherwise
if [ -n "${DEEPGRAD_GPU_DEPS:-}" ] && ! timeout 60 "$PY" -c "import pytest, safetensors, cupy" >/dev/null 2>&1; then
    export PYTHONPATH="$ROOT:$DEEPGRAD_GPU_DEPS"
fi
export PYTHONDONTWRITEBYTECODE=1
export DEEPGRAD_GPU_CHECK=1   # tests/test_gpu_check.py skips itself inside this run (no recursion)
BUDGET="${GPU_CHECK_BUDGET:-420}"
START=$(date +%s)
BENCH_TIMING="${BENCH_ARGS:---threads default --rotations 5 --block-time 0.05 --warmup-steps 3}"
MAIN_WORKLOADS="lenet5_sgd,vgg_small_adam,vgg_small_adam_b512,lstm_train_step,gru_train_step,rnn_tanh_train_step"
MAIN_WORKLOADS="$MAIN_WORKLOADS,mlp_tiny_nn,dcgan_step"
EXTRA_WORKLOADS="op_overhead,mlp_tiny,elementwise_4m,matmul_1024,softmax_256x1000,lenet5_infer_b1,lenet5_infer_b256"
EXTRA_WORKLOADS="$EXTRA_WORKLOADS,lstm_infer_b1,lstm_infer_b256,encoder_t64_adam,encoder_t256_adam"
PYTEST=(-m pytest -q -rs -p no:cacheprovider --continue-on-collection-errors)
FUSED_SELECTION="cuda and (fused or graphs or rnn or lstm or gru or norm or loss or optim or softmax or trainer)"

# name : timeout seconds : command (as it is run)
STAGES=(
    "probe:${GPU_CHECK_PROBE_TIMEOUT:-60}:$PY: import cupy, count devices, launch a kernel, import deepgrad (or exit 2)"
    "env:60:environment report (versions, nvidia-smi, missing packages) -> env.txt"
    "tests:180:$PY ${PYTEST[*]} -k 'cuda or nccl' --junitxml=OUT/tests.xml -> tests.log"
    "bench:120:$PY -m benchmarks --device cuda --only $MAIN_WORKLOADS $BENCH_TIMING --json OUT/bench.json"
    "tests_fused:75:DEEPGRAD_CUDA_FUSED=1 $PY ${PYTEST[*]} -k '$FUSED_SELECTION' --junitxml=OUT/tests_fused.xml"
    "bench_extra:60:$PY -m benchmarks --device cuda --only $EXTRA_WORKLOADS $BENCH_TIMING --json OUT/bench_extra.json"
    "nccl2:60:mpiexec -n 2 $PY -m mpi4py tests/distributed_scripts/nccl_check.py (>= 2 GPUs only)"
)
stage_timeout() {
    local s
    for s in "${STAGES[@]}"; do [ "${s%%:*}" = "$1" ] && { s="${s#*:}"; echo "${s%%:*}"; }; done
}

env_report() {
    echo "date: $(date -u +%FT%TZ)"
    echo "git: $(git rev-parse HEAD 2>/dev/null) $(git status --short 2>/dev/null | wc -l) changed files"
    echo "python: $PY ($("$PY" --version 2>&1))"
    if command -v nvidia-smi >/dev/null; then timeout 20 nvidia-smi; else echo "nvidia-smi: not found"; fi
    "$PY" - <<'EOF'
import importlib
for name in ("numpy", "cupy", "torch", "scipy", "safetensors", "sklearn", "tqdm", "matplotlib", "fsrs",
             "threadpoolctl", "pytest", "hypothesis", "mpi4py", "onnx", "onnxruntime"):
    try:
        mod = importlib.import_module(name)
        print(f"{name}: {getattr(mod, '__version__', 'imported')}")
    except Exception as e:  # report every missing dependency, not only the first
        print(f"{name}: MISSING ({type(e).__name__}: {e})")
try:
    import cupy
    print("cupy devices:", cupy.cuda.runtime.getDeviceCount(), "runtime", cupy.cuda.runtime.runtimeGetVersion(),
          "driver", cupy.cuda.runtime.driverGetVersion())
    try:
        import cupy.cuda.cudnn  # noqa: F401
        print("cupy.cuda.cudnn: present")
    except Exception as e:
        print(f"cupy.cuda.cudnn: absent ({type(e).__name__})")
    from cupy.cuda import nccl
    print("nccl:", nccl.get_version() if getattr(nccl, "available", True) else "unavailable")
except Exception as e:
    print(f"cupy probe failed: {type(e).__name__}: {e}")
try:
    import torch
    print("torch.cuda:", torch.cuda.is_available(), torch.cuda.device_count(), torch.version.cuda)
except Exception as e:
    print(f"torch probe failed: {type(e).__name__}: {e}")
EOF
}

if [ "$ENV_ONLY" = 1 ]; then
    env_report
    exit 0
fi
if [ "$DRY" = 1 ]; then
    echo "gpu_check (dry run): OUT_DIR=$OUT, python=$PY, budget ${BUDGET}s; stages (timeout s):"
    for s in "${STAGES[@]}"; do
        name="${s%%:*}"; rest="${s#*:}"
        printf '  %-12s %4ss  %s\n' "$name" "${rest%%:*}" "${rest#*:}"
    done
    exit 0
fi

mkdir -p "$OUT" || { echo "gpu_check: cannot create $OUT" >&2; exit 64; }
OUT="$(cd "$OUT" && pwd)"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
FAILED=0

# Run one stage: run_stage NAME LOGFILE cmd... ; its timeout is min(stage's, what is left of the budget).
run_stage() {
    local name="$1" log="$2"; shift 2
    local t left begin rc status
    t=$(stage_timeout "$name")
    left=$(( BUDGET - ($(date +%s) - START) ))
    if [ "$left" -lt 15 ]; then
        echo "$name: skipped (budget of ${BUDGET}s spent)" | tee -a "$SUMMARY"
        return 0
    fi
    [ "$t" -gt "$left" ] && t=$left
    begin=$(date +%s)
    echo "== $name (timeout ${t}s): $*" | tee -a "$log" >&2
    timeout -k 10 "$t" "$@" >> "$log" 2>&1
    rc=$?
    case $rc in
        0) status="ok" ;;
        124|137) status="timed out after ${t}s"; FAILED=1 ;;
        *) status="failed rc=$rc"; FAILED=1 ;;
    esac
    echo "$name: $status ($(( $(date +%s) - begin ))s) log=$(basename "$log")" | tee -a "$SUMMARY"
    return $rc
}



# The probe: without a GPU nothing below can mean anything; say so in one line and stop.
PROBE="$OUT/probe.txt"
NGPU=$(timeout -k 5 "$(stage_timeout probe)" "$PY" - 2>"$PROBE" <<'EOF'
import sys
try:
    import cupy
except Exception as e:
    sys.exit(f"CuPy does not import ({type(e).__name__}: {e})")
try:
    n = cupy.cuda.runtime.getDeviceCount()
except Exception as e:
    sys.exit(f"CuPy sees no CUDA device ({type(e).__name__}: {e})")
if n < 1:
    sys.exit("CuPy sees no CUDA device (device count 0)")
cupy.arange(4).sum().item()  # a real kernel launch: a broken driver fails here, not mid-test
try:
    import deepgrad
except Exception as e:
    sys.exit(f"deepgrad does not import ({type(e).__name__}: {e}); see env.txt for missing packages")
if not deepgrad.cuda.is_available():
    sys.exit("deepgrad.cuda.is_available() is False although CuPy sees a device")
print(n)
EOF
)
PROBE_RC=$?
if [ "$PROBE_RC" != 0 ] || [ -z "$NGPU" ]; then
    REASON="$(tail -n 1 "$PROBE" 2>/dev/null)"
    if [ "$PROBE_RC" = 124 ] || [ "$PROBE_RC" = 137 ]; then
        REASON="the CuPy probe hung (no answer in $(stage_timeout probe)s)"
    fi
    MSG="gpu_check: no usable CUDA GPU: ${REASON:-unknown reason} -- nothing was run"
    echo "probe: failed: $MSG" >> "$SUMMARY"
    case "$REASON" in  # the GPU works but deepgrad does not import: env.txt names the missing packages
        deepgrad*) run_stage env "$OUT/env.txt" bash "$ROOT/scripts/gpu_check.sh" --env-report >/dev/null ;;
    esac
    echo "$MSG" >&2
    exit 2
fi
echo "probe: ok ($NGPU CUDA device(s))" | tee -a "$SUMMARY"

run_stage env "$OUT/env.txt" bash "$ROOT/scripts/gpu_check.sh" --env-report

run_stage tests "$OUT/tests.log" "$PY" "${PYTEST[@]}" -k "cuda or nccl" --junitxml="$OUT/tests.xml"
# shellcheck disable=SC2086  # BENCH_TIMING is a list of options
run_stage bench "$OUT/bench.log" "$PY" -m benchmarks --device cuda --only "$MAIN_WORKLOADS" $BENCH_TIMING \
    --json "$OUT/bench.json"
DEEPGRAD_CUDA_FUSED=1 run_stage tests_fused "$OUT/tests_fused.log" "$PY" "${PYTEST[@]}" -k "$FUSED_SELECTION" \
    --junitxml="$OUT/tests_fused.xml"
# shellcheck disable=SC2086
run_stage bench_extra "$OUT/bench_extra.log" "$PY" -m benchmarks --device cuda --only "$EXTRA_WORKLOADS" \
    $BENCH_TIMING --json "$OUT/bench_extra.json"

MPIEXEC=$("$PY" -c "from deepgrad.distributed.launch import find_mpiexec; print(find_mpiexec() or '')" 2>/dev/null)
if [ "$NGPU" -ge 2 ] && [ -n "$MPIEXEC" ]; then
    run_stage nccl2 "$OUT/nccl2.log" "$MPIEXEC" -n 2 "$PY" -m mpi4py tests/distributed_scripts/nccl_check.py
    if ! grep -q "OK nccl rank 1/2" "$OUT/nccl2.log"; then
        echo "nccl2: failed (rank 1 did not report OK)" | tee -a "$SUMMARY"; FAILED=1
    fi
else
    WHY="$NGPU GPU(s) visible"; [ -z "$MPIEXEC" ] && WHY="$WHY, no mpiexec"
    echo "nccl2: skipped: a 2-rank NCCL run needs 2 GPUs and mpiexec ($WHY); NCCL cannot put 2 ranks on one GPU" \
        | tee -a "$SUMMARY" "$OUT/nccl2.log"
fi

# Test counts from the junit files (pass/fail/error/skip), so the summary says what ran.
"$PY" - "$OUT" >> "$SUMMARY" 2>&1 <<'EOF'
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
for path in sorted(Path(sys.argv[1]).glob("tests*.xml")):
    try:
        suites = ET.parse(path).getroot()
    except ET.ParseError as e:
        print(f"{path.name}: unreadable ({e})")
        continue
    counts = {k: 0 for k in ("tests", "failures", "errors", "skipped")}
    for suite in suites.iter("testsuite"):
        for k in counts:
            counts[k] += int(suite.get(k, 0))
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    print(f"{path.name}: {passed} passed, {counts['failures']} failed, {counts['errors']} errors, "
          f"{counts['skipped']} skipped")
EOF
echo "total: $(( $(date +%s) - START ))s, $([ "$FAILED" = 0 ] && echo "all stages ok" || echo "SOME STAGES FAILED")" \
    | tee -a "$SUMMARY"
exit "$FAILED"
