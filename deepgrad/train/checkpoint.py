"""Checkpoint files: one safetensors file holding every array, plus the rest as JSON in its metadata.

A training state is a nest of dicts/lists holding arrays (weights, optimizer moments, metric
accumulators) and plain values (epoch, learning rates, RNG states, history). :func:`save_checkpoint`
moves each array into the safetensors tensor table under its path (``model.fc.weight``,
``optimizer.state.0.exp_avg``) and leaves ``{"__array__": path}`` in its place; the skeleton goes into
the header metadata as JSON. The file is written to a temporary name, fsynced and renamed, so a crash
(even SIGKILL) leaves the previous checkpoint or the new one, never half of one. Loading parses JSON
and raw tensors only: no pickle, no code runs.

>>> model = deepgrad.nn.Linear(2, 1)
>>> save_checkpoint("run/last.ckpt", {"epoch": 3, "model": model.state_dict()})
>>> load_checkpoint("run/last.ckpt")["epoch"]
3
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from safetensors.numpy import save as safetensors_bytes

from ..io import atomic_write_bytes, host_array, load_arrays, metadata, remove_stale_temporaries
from ..tensor import Tensor

FORMAT = "deepgrad.checkpoint/1"
_META_KEY = "deepgrad_checkpoint"


class CheckpointError(RuntimeError):
    """A checkpoint file that is missing, not a deepgrad checkpoint, or does not fit what loads it."""


def _is_array(value) -> bool:
    return isinstance(value, (np.ndarray, Tensor)) or (
        hasattr(value, "__cuda_array_interface__") and hasattr(value, "dtype"))


def _to_host(value) -> np.ndarray:
    return host_array(value)


def split_arrays(obj: Any, path: str, arrays: dict[str, np.ndarray]) -> Any:
    """A JSON-able copy of ``obj`` with each array moved into ``arrays`` under its dotted path."""
    if _is_array(obj):
        if path in arrays:
            raise CheckpointError(f"save_checkpoint: two arrays map to the key {path!r}")
        arrays[path] = _to_host(obj)
        return {"__array__": path}
    if isinstance(obj, np.generic):  # keep the dtype: float32 arithmetic must stay float32 after resume
        return {"__scalar__": obj.dtype.str, "value": obj.item()}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and "__array__" not in obj and "__scalar__" not in obj:
            return {k: split_arrays(v, f"{path}.{k}", arrays) for k, v in obj.items()}
        return {"__items__": [[_key(k), split_arrays(v, f"{path}.{k}", arrays)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [split_arrays(v, f"{path}.{i}", arrays) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [split_arrays(v, f"{path}.{i}", arrays) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise CheckpointError(f"save_checkpoint: cannot store {type(obj).__name__} at {path!r} "
                          f"(only arrays, numbers, strings, None, lists, tuples and dicts; no pickling)")


def _key(k):
    if isinstance(k, (bool, int, float, str)) or k is None:
        return k
    if isinstance(k, np.integer):
        return int(k)
    raise CheckpointError(f"save_checkpoint: cannot store a dict key of type {type(k).__name__}")


def join_arrays(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    """The inverse of :func:`split_arrays`."""
    if isinstance(obj, dict):
        if "__array__" in obj:
            return arrays[obj["__array__"]]
        if "__scalar__" in obj:
            return np.dtype(obj["__scalar__"]).type(obj["value"])
        if "__tuple__" in obj:
            return tuple(join_arrays(v, arrays) for v in obj["__tuple__"])
        if "__items__" in obj:
            return {k: join_arrays(v, arrays) for k, v in obj["__items__"]}
        return {k: join_arrays(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [join_arrays(v, arrays) for v in obj]
    return obj


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` (a dict of arrays and plain values) to ``path`` atomically."""
    arrays: dict[str, np.ndarray] = {}
    skeleton = {k: split_arrays(v, k, arrays) for k, v in state.items()}
    meta = {"format": FORMAT, _META_KEY: json.dumps(skeleton)}
    atomic_write_bytes(path, safetensors_bytes(arrays, metadata=meta))


MAX_NESTING = 64  # a training state nests about 8 levels deep; a deeper skeleton is malformed or hostile


def nesting_depth(obj: Any, limit: int = MAX_NESTING) -> int:
    """How deeply dicts/lists nest in ``obj`` (a scalar is 0), counted without recursion; stops counting
    once past ``limit``.

    >>> nesting_depth({"a": [1, {"b": 2}]})
    3
    """
    deepest, stack = 0, [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, (dict, list)):
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            break
        stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (arrays come back as NumPy arrays).

    Stale temporaries of ``path`` (left by a save that was killed) are removed first. A file that is not a
    readable checkpoint (not safetensors, JSON that does not parse, nesting past :data:`MAX_NESTING`,
    references to arrays it does not hold) raises :class:`CheckpointError` naming the file and the fault.
    """
    path = os.fspath(path)
    remove_stale_temporaries(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"load_checkpoint: no checkpoint file at {path!r}")
    try:  # io checks the format first: a pickle or a torch zip is refused, never unpickled
        meta = metadata(path)
        arrays = load_arrays(path)
    except ValueError as e:
        raise CheckpointError(f"load_checkpoint: not a readable safetensors checkpoint: {e}") from None
    except RecursionError:
        raise CheckpointError(f"load_checkpoint: {path!r} has a safetensors header nested too deeply to be one "
                              f"(a corrupt or hostile file)") from None
    if meta.get("format") != FORMAT or _META_KEY not in meta:
        raise CheckpointError(f"load_checkpoint: {path!r} is a safetensors file but not a deepgrad training "
                              f"checkpoint (format {meta.get('format')!r}; expected {FORMAT!r})")

    def malformed(what: str) -> CheckpointError:
        return CheckpointError(f"load_checkpoint: {path!r} is a damaged checkpoint: {what}")

    try:
        skeleton = json.loads(meta[_META_KEY])
    except json.JSONDecodeError as e:
        raise malformed(f"its training state is not valid JSON ({e})") from None
    except RecursionError:
        raise malformed(f"its training state nests deeper than {MAX_NESTING} levels") from None
    if not isinstance(skeleton, dict):
        raise malformed(f"its training state is a JSON {type(skeleton).__name__}, not an object")
    depth = nesting_depth(skeleton)
    if depth > MAX_NESTING:
        raise malformed(f"its training state nests deeper than {MAX_NESTING} levels")
    try:
        return {k: join_arrays(v, arrays) for k, v in skeleton.items()}
    except KeyError as e:
        raise malformed(f"it refers to an array {e.args[0]!r} that it does not hold") from None
    except (TypeError, ValueError) as e:
        raise malformed(f"an entry has the wrong structure ({e})") from None


_STATE_LAYOUT = {"model": dict, "optimizer": dict, "trainer": dict, "history": dict, "callbacks": dict,
                 "rng": dict, "data": dict}
_TRAINER_LAYOUT = {"epoch": int, "global_step": int, "epoch_state": dict, "metrics": list}


def check_training_state(state: dict[str, Any], path: str) -> None:
    """Refuse, naming the file and the entry, a checkpoint whose layout is not Trainer.state_dict()'s."""
    def wrong(what: str) -> CheckpointError:
        return CheckpointError(f"Trainer: {path!r} is not a training checkpoint of deepgrad's Trainer: {what}; "
                               f"use a file written by Trainer.save_checkpoint (e.g. last.ckpt of a run)")

    for layout, where, node in ((_STATE_LAYOUT, "", state), (_TRAINER_LAYOUT, "trainer.", state.get("trainer"))):
        for key, kind in layout.items():
            if key not in node:
                raise wrong(f"it has no '{where}{key}' entry")
            if not isinstance(node[key], kind) or isinstance(node[key], bool):
                raise wrong(f"its '{where}{key}' entry is a {type(node[key]).__name__}, expected {kind.__name__}")
    if "scheduler" not in state or not isinstance(state["scheduler"], (dict, type(None))):
        raise wrong("its 'scheduler' entry is missing or not a dict/null")
    missing = {"deepgrad", "numpy", "python"} - set(state["rng"])
    if missing:
        raise wrong(f"its 'rng' entry lacks {sorted(missing)}")
