"""The sandboxed side of the judge: run a candidate's file on the inputs the judge sent.

Run as a script (``python -I -B _child.py WORKDIR CANDIDATE``) under the resource limits the
judge set. Standalone on purpose: it imports only the standard library and NumPy, never
deepgrad, and it never sees a seed or an expected output (the judge draws the cases and only
computes the expected outputs after this process has exited). It writes back, per call, the
returned value in a pickle-free format (a JSON header plus an ``.npz`` of the arrays), which
the judge reads with ``allow_pickle=False``: a candidate cannot make the judge run code.
"""

import faulthandler
import importlib.abc
import importlib.util
import io
import json
import os
import pickle
import sys
import time
import traceback

RNG = ("__deepgrad_practice_rng__",)
BLOCKED = ("deepgrad", "torch", "tensorflow", "jax", "keras")
MAX_ITEMS = 100_000


class _Blocker(importlib.abc.MetaPathFinder):
    """The exercises ask for an implementation from scratch: the frameworks are not importable."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"importing {name!r} is not allowed in a practice solution: implement it with NumPy")
        return None


def _encode(v, arrays, np, depth=0):
    if depth > 20:
        return {"t": "bad", "type": "a structure nested too deeply"}
    if isinstance(v, np.ndarray) or isinstance(v, np.generic):
        a = np.asarray(v)
        if a.dtype.kind not in "biufc":
            return {"t": "bad", "type": f"array of dtype {a.dtype}"}
        key = f"a{len(arrays)}"
        arrays[key] = a
        return {"t": "nd" if isinstance(v, np.ndarray) else "np", "k": key}
    if isinstance(v, bool):
        return {"t": "bool", "v": v}
    if isinstance(v, int):
        return {"t": "int", "v": str(v)}
    if isinstance(v, float):
        return {"t": "float", "v": repr(v)}
    if v is None:
        return {"t": "none"}
    if isinstance(v, (list, tuple)):
        if len(v) > MAX_ITEMS:
            return {"t": "bad", "type": f"{type(v).__name__} of {len(v)} items"}
        return {"t": "tuple" if isinstance(v, tuple) else "list", "v": [_encode(e, arrays, np, depth + 1) for e in v]}
    if isinstance(v, dict):
        if len(v) > MAX_ITEMS:
            return {"t": "bad", "type": f"dict of {len(v)} items"}
        return {"t": "dict", "v": [[str(k), _encode(e, arrays, np, depth + 1)] for k, e in v.items()]}
    return {"t": "bad", "type": type(v).__name__}


def _candidate_traceback(exc: BaseException, path: str) -> str:
    """The traceback from the first frame of the candidate's file on (the harness is noise)."""
    frames = traceback.extract_tb(exc.__traceback__)
    for i, fr in enumerate(frames):
        if fr.filename == path:
            frames = frames[i:]
            break
    else:
        frames = []
    text = "".join(traceback.format_list(frames)) + "".join(traceback.format_exception_only(type(exc), exc))
    return text[-3000:]


def _rngs(v, np):
    if isinstance(v, tuple) and v == RNG:
        return np.random.default_rng()
    return v


def main() -> int:
    faulthandler.enable()
    work, path = sys.argv[1], os.path.abspath(sys.argv[2])
    with open(os.path.join(work, "inputs.pkl"), "rb") as f:
        calls = pickle.load(f)  # written by the judge: trusted
    os.remove(os.path.join(work, "inputs.pkl"))
    import numpy as np

    out = os.open(os.path.join(work, "result.bin"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    progress = os.open(os.path.join(work, "progress"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    sandbox = os.path.join(work, "sandbox")
    os.makedirs(sandbox, exist_ok=True)
    os.chdir(sandbox)
    sys.meta_path.insert(0, _Blocker())
    sys.path.insert(0, os.path.dirname(path))
    header = {"import_error": None, "results": []}
    arrays: dict = {}
    try:
        spec = importlib.util.spec_from_file_location("solution", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["solution"] = module
        spec.loader.exec_module(module)
    except BaseException as exc:  # noqa: BLE001 - report anything, SystemExit included
        header["import_error"] = _candidate_traceback(exc, path) or "".join(traceback.format_exception_only(exc))
        calls = []
    for i, (func, args) in enumerate(calls):
        os.pwrite(progress, f"{i:8d}".encode(), 0)
        fn = getattr(module, func, None)
        if not callable(fn):
            header["results"].append({"error": f"your file defines no function {func!r}", "time": 0.0})
            continue
        args = {k: _rngs(v, np) for k, v in args.items()}
        t0 = time.perf_counter()
        try:
            value = fn(**args)
        except BaseException as exc:  # noqa: BLE001
            header["results"].append({"error": _candidate_traceback(exc, path), "time": time.perf_counter() - t0})
            continue
        elapsed = time.perf_counter() - t0
        header["results"].append({"value": _encode(value, arrays, np), "time": elapsed})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = memoryview(json.dumps(header).encode() + b"\n" + buf.getvalue())
    while data:
        data = data[os.write(out, data):]
    os.close(out)
    os.pwrite(progress, b"    done", 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
