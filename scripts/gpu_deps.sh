#!/usr/bin/env bash
# scripts/gpu_deps.sh [DIR]: the small packages scripts/gpu_check.sh needs besides NumPy, CuPy and torch, installed
# into DIR (default .gpu_deps, git-ignored) for a GPU machine that has no package registry: pytest (with pluggy,
# iniconfig, packaging, pygments; exceptiongroup and tomli for Python 3.10) to run the tests, safetensors because
# `import deepgrad` needs it, and the pure-Python packages some modules import. Run it HERE (with a registry),
# carry DIR to the GPU machine, then run
#   DEEPGRAD_GPU_DEPS=$PWD/.gpu_deps scripts/gpu_check.sh OUT_DIR
# gpu_check.sh puts DIR on the path only when pytest, safetensors or cupy is missing there. Wheels are pure Python
# or abi3 (safetensors: any CPython >= 3.8) for this machine's platform (x86_64 Linux): check `uname -m` there.
set -eu
DIR="${1:-.gpu_deps}"
PY="${PYTHON:-python3}"
"$PY" -m pip install --quiet --disable-pip-version-check --no-deps --only-binary=:all: --target "$DIR" \
    pytest pluggy iniconfig packaging pygments exceptiongroup tomli safetensors tqdm threadpoolctl fsrs
du -sh "$DIR"
