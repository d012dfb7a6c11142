"""Saving and loading, the way PyTorch users write it: ``deepgrad.save(obj, f)`` / ``deepgrad.load(f)``.

``save`` takes what ``torch.save`` users pass -- a state dict, an optimizer's state dict, or a checkpoint
such as ``{"epoch": 3, "model_state_dict": ..., "optimizer_state_dict": ..., "loss": 0.25}``: nested
dicts, lists, tuples and sets of tensors, arrays, numbers, strings, bytes and None -- and writes ONE
safetensors file, atomically, without pickle: every tensor goes into the safetensors table under its
dotted path (``model_state_dict.fc.weight``), and the structure around them goes into the header's
metadata as JSON (``deepgrad.structure``). So a flat state dict is a plain safetensors file that
``safetensors.torch.load_file`` reads straight into torch, and any checkpoint opens in any safetensors
reader. ``load`` gives the object back (tuples as tuples, int keys as ints, 0-d tensors 0-d, dtypes
and ``requires_grad`` kept) and also reads safetensors files from elsewhere and PyTorch's own
``.pt``/``.pth`` files (:mod:`deepgrad.io_torch`), never running anything from a file.

>>> model = deepgrad.nn.Linear(2, 1)
>>> deepgrad.save({"epoch": 3, "model_state_dict": model.state_dict()}, "ckpt.safetensors")
>>> model.load_state_dict(deepgrad.load("ckpt.safetensors")["model_state_dict"])
<All keys matched successfully>
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, BinaryIO

import numpy as np
import safetensors
from safetensors.numpy import load_file
from safetensors.numpy import save as safetensors_bytes

from .backend import Device, array_module
from .io_atomic import _host_tag, atomic_write_bytes, remove_stale_temporaries  # noqa: F401  (io's API)
from .io_torch import check_map_location, read_torch_legacy, read_torch_zip, target_device
from .tensor import Tensor

FORMAT = "deepgrad.save/1"
_FORMAT_KEY = "deepgrad.format"  # safetensors metadata keys that deepgrad.save reserves
_STRUCTURE_KEY = "deepgrad.structure"
# safetensors dtype names -> NumPy ("bfloat16": no NumPy dtype; widened exactly to float32 on load).
_SAFETENSORS_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": "bfloat16", "I64": np.int64, "I32": np.int32,
    "I16": np.int16, "I8": np.int8, "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8,
    "BOOL": np.bool_,
}


def host_array(value, key: str = "value") -> np.ndarray:
    """``value`` (Tensor, NumPy or CuPy array, array-like) as a C-contiguous host array, 0-d kept 0-d."""
    if isinstance(value, Tensor):
        value = value.array
    if array_module(value) is not np:
        value = value.get()
    if not isinstance(value, np.ndarray):
        try:
            value = np.asarray(value)
        except Exception as e:  # noqa: BLE001 - report which entry is not an array
            raise TypeError(f"save: entry {key!r} is not a tensor or array ({type(value).__name__})") from e
    if value.dtype == object:
        raise TypeError(f"save: entry {key!r} is not a numeric tensor (dtype object)")
    return value if value.flags.c_contiguous else np.ascontiguousarray(value)  # ascontiguousarray makes 0-d 1-d


# ----------------------------------------------------------------------------- save
def _parameter_type():
    from .nn.module import Parameter  # lazy: io sits beside nn (nn never imports io), and loads before it

    return Parameter


class _Packer:
    """Turns an object into a JSON skeleton, moving every tensor/array into ``arrays`` under its dotted path."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}
        self.names: dict[int, tuple[str, Any]] = {}  # id(tensor) -> (name, tensor): one entry per object
        self.open: set[int] = set()  # containers being packed (a container inside itself cannot be stored)
        self.parameter = _parameter_type()

    def _store(self, value, path: str, wrap) -> dict:
        if id(value) not in self.names:
            base = path or "tensor"
            name, i = base, 1
            while name in self.arrays:  # e.g. {"a.b": x, "a": {"b": y}}: both paths read "a.b"
                name, i = f"{base}#{i}", i + 1
            self.arrays[name] = host_array(value, path)
            self.names[id(value)] = (name, value)  # keep `value` alive so its id stays unique
        return wrap(self.names[id(value)][0])

    def pack(self, obj, path: str = ""):
        if isinstance(obj, Tensor):
            def wrap(name):
                out: dict[str, Any] = {"$tensor": name}
                if obj.requires_grad:
                    out["requires_grad"] = True
                if isinstance(obj, self.parameter):
                    out["parameter"] = True
                if obj.device.type != "cpu":
                    out["device"] = str(obj.device)
                return out
            return self._store(obj, path, wrap)
        if isinstance(obj, np.ndarray) or (hasattr(obj, "__cuda_array_interface__") and hasattr(obj, "dtype")):
            return self._store(obj, path, lambda name: {"$ndarray": name})
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, (int, float, complex, np.generic)):
            return _pack_number(obj, path)
        if isinstance(obj, (bytes, bytearray)):
            return {"$bytes": base64.b64encode(bytes(obj)).decode("ascii"), "bytearray": isinstance(obj, bytearray)}
        if isinstance(obj, Device):
            return {"$device": str(obj)}
        if isinstance(obj, np.dtype):
            return {"$dtype": obj.str}
        if isinstance(obj, (list, tuple, Mapping, set, frozenset)):
            if id(obj) in self.open:
                raise ValueError(f"save: the {type(obj).__name__} at {path or 'the top'!r} contains itself")
            self.open.add(id(obj))
            try:
                return self._pack_container(obj, path)
            finally:
                self.open.discard(id(obj))
        raise TypeError(f"save: cannot store a {type(obj).__name__} at {path or 'the top'!r}: deepgrad.save stores "
                        f"tensors, arrays, numbers, strings, bytes, None and lists/tuples/dicts/sets of them (it "
                        f"never pickles objects)")

    def _pack_container(self, obj, path: str):
        child = (lambda k: f"{path}.{k}") if path else str
        if isinstance(obj, list):
            return [self.pack(v, child(i)) for i, v in enumerate(obj)]
        if isinstance(obj, tuple):
            return {"$tuple": [self.pack(v, child(i)) for i, v in enumerate(obj)]}
        if isinstance(obj, (set, frozenset)):
            return {"$set": [_pack_key(v, path) for v in obj], "frozen": isinstance(obj, frozenset)}
        return {"$dict": [[_pack_key(k, path), self.pack(v, child(k))] for k, v in obj.items()],
                "ordered": isinstance(obj, OrderedDict)}


def _pack_number(value, path: str):
    if isinstance(value, np.generic):
        if value.dtype.kind not in "biuf":
            raise TypeError(f"save: cannot store a NumPy {value.dtype} scalar at {path!r}")
        return {"$scalar": value.dtype.str, "value": _pack_number(value.item(), path)}
    if isinstance(value, complex):
        return {"$complex": [_pack_number(value.real, path), _pack_number(value.imag, path)]}
    if isinstance(value, int):
        return int(value)  # an IntEnum and the like are stored as their number
    value = float(value)
    return value if math.isfinite(value) else {"$float": repr(value)}  # JSON has no nan/inf


def _pack_key(key, path: str):
    """A dict key or set member: a hashable scalar or a tuple of them (what JSON can give back exactly)."""
    if key is None or isinstance(key, (bool, str)):
        return key
    if isinstance(key, (int, float, complex, np.generic)):
        return _pack_number(key, path)
    if isinstance(key, (bytes, tuple)):
        if isinstance(key, bytes):
            return {"$bytes": base64.b64encode(key).decode("ascii")}
        return {"$tuple": [_pack_key(k, path) for k in key]}
    raise TypeError(f"save: cannot store a dict key or set member of type {type(key).__name__} at {path!r}")


def save(obj, f: str | os.PathLike | BinaryIO, metadata: dict[str, str] | None = None) -> None:
    """Write ``obj`` to ``f`` as ``torch.save`` does, as one safetensors file with no pickle in it.

    ``obj`` may nest dicts (any hashable scalar or tuple keys), lists, tuples and sets of Tensors, arrays,
    numbers, strings, bytes and None. A path is written atomically (a crash leaves the old file or the
    new one); a binary file object is written in place. ``metadata`` adds strings to the header.
    Tensors are copied to the host and saved one per object: the same Tensor twice is stored once and
    comes back as one object, but distinct tensors that view the same memory come back as copies.

    >>> model = deepgrad.nn.Linear(2, 1)
    >>> deepgrad.save({"epoch": 3, "model_state_dict": model.state_dict()}, "ckpt.safetensors")
    >>> deepgrad.load("ckpt.safetensors")["epoch"]
    3
    """
    meta = dict(metadata or {})
    bad = {k: type(v).__name__ for k, v in meta.items() if not isinstance(k, str) or not isinstance(v, str)}
    if bad:
        raise TypeError(f"save: safetensors metadata values must be strings, got {bad}")
    if _FORMAT_KEY in meta or _STRUCTURE_KEY in meta:
        raise ValueError(f"save: metadata keys {_FORMAT_KEY!r} and {_STRUCTURE_KEY!r} are deepgrad.save's own")
    packer = _Packer()
    skeleton = packer.pack(obj)
    meta[_FORMAT_KEY] = FORMAT
    meta[_STRUCTURE_KEY] = json.dumps(skeleton, allow_nan=False, separators=(",", ":"))
    payload = safetensors_bytes(packer.arrays, metadata=meta)
    if isinstance(f, (str, os.PathLike)):
        atomic_write_bytes(f, payload)
    elif hasattr(f, "write"):
        f.write(payload)
    else:
        raise TypeError(f"save: f must be a path or a binary file object, got {type(f).__name__}")


# ----------------------------------------------------------------------------- load
class _Unpacker:
    """The inverse of :class:`_Packer`, checking every node (the JSON comes from a file: it may be hostile)."""

    def __init__(self, arrays: dict[str, np.ndarray], map_location, what: str):
        self.arrays, self.map_location, self.what = arrays, map_location, what
        self.tensors: dict[str, Tensor] = {}

    def error(self, message: str) -> ValueError:
        return ValueError(f"{self.what}: malformed deepgrad.save structure: {message}")

    def unpack(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.unpack(v) for v in node]
        tag = next(iter(node), None) if isinstance(node, dict) else None
        if not isinstance(tag, str) or not tag.startswith("$"):
            raise self.error(f"unexpected node {str(node)[:80]}")
        value = node[tag]
        if tag == "$tensor":
            return self._tensor(value, node)
        if tag == "$ndarray":
            return self._array(value)
        if tag == "$tuple":
            return tuple(self.unpack(v) for v in self._list(value))
        if tag == "$dict":
            pairs = [self._list(p) for p in self._list(value)]
            if any(len(p) != 2 for p in pairs):
                raise self.error("a dict entry is not a [key, value] pair")
            kind = OrderedDict if node.get("ordered") is True else dict
            return kind((self._key(k), self.unpack(v)) for k, v in pairs)
        if tag == "$set":
            return (frozenset if node.get("frozen") is True else set)(self._key(v) for v in self._list(value))
        return self._scalar(tag, value, node)

    def _scalar(self, tag: str, value, node):
        try:
            if tag == "$float" and value in ("nan", "inf", "-inf"):
                return float(value)
            if tag == "$complex":
                real, imag = (self.unpack(v) for v in self._list(value))
                return complex(real, imag)
            if tag == "$bytes":
                data = base64.b64decode(value, validate=True)
                return bytearray(data) if node.get("bytearray") is True else data
            if tag == "$scalar":
                dtype = np.dtype(value)
                if dtype.kind not in "biuf":
                    raise ValueError(f"dtype {dtype}")
                return dtype.type(self.unpack(node.get("value")))
            if tag == "$device":
                return Device(value)
            if tag == "$dtype":
                dtype = np.dtype(value)
                if dtype.kind not in "biuf":
                    raise ValueError(f"dtype {dtype}")
                return dtype
        except (TypeError, ValueError, OverflowError) as e:
            raise self.error(f"bad {tag} node {str(node)[:80]} ({e})") from None
        raise self.error(f"unknown tag {tag!r}")

    def _list(self, value) -> list:
        if not isinstance(value, list):
            raise self.error(f"expected a list, got {str(value)[:80]}")
        return value

    def _key(self, node):
        key = self.unpack(node)
        if isinstance(key, (list, dict, set, bytearray, Tensor, np.ndarray)):
            raise self.error(f"unhashable dict key or set member {str(node)[:80]}")
        return key

    def _array(self, name) -> np.ndarray:
        if not isinstance(name, str) or name not in self.arrays:
            raise self.error(f"it refers to tensor {name!r}, which the file does not hold")
        return self.arrays[name]

    def _tensor(self, name, node) -> Tensor:
        array = self._array(name)
        if name not in self.tensors:
            requires_grad = node.get("requires_grad") is True and array.dtype.kind == "f"
            location = node.get("device", "cpu")
            if not isinstance(location, str):
                raise self.error(f"device {location!r}")
            device = target_device(self.map_location, location, lambda: Tensor(array))
            if node.get("parameter") is True:
                tensor = _parameter_type()(Tensor(array, device=device), requires_grad=requires_grad)
            else:
                tensor = Tensor(array, requires_grad=requires_grad, device=device)
            self.tensors[name] = tensor
        return self.tensors[name]


def _safetensors_arrays(data: bytes, header: dict, what: str) -> OrderedDict:
    """``{name: array}`` in file order from safetensors bytes (bfloat16 widened exactly to float32)."""
    try:
        entries = dict(safetensors.deserialize(data))
    except Exception as e:  # noqa: BLE001 - the Rust reader's error types are not public
        raise ValueError(f"cannot read {what!r}: {e}") from None
    arrays: OrderedDict = OrderedDict()
    for name in (k for k in header if k != "__metadata__"):
        entry = entries[name]
        dtype = _SAFETENSORS_DTYPES.get(entry["dtype"])
        if dtype is None:
            raise ValueError(f"cannot read {what!r}: tensor {name!r} has dtype {entry['dtype']}, which deepgrad "
                             f"(like NumPy) does not have")
        if dtype == "bfloat16":
            bits = np.frombuffer(entry["data"], dtype=np.uint16)
            arrays[name] = (bits.astype(np.uint32) << 16).view(np.float32).reshape(entry["shape"])
        else:
            arrays[name] = np.frombuffer(entry["data"], dtype=dtype).reshape(entry["shape"])  # writable: a bytearray
    widened = [name for name in header if isinstance(header[name], dict) and header[name].get("dtype") == "BF16"]
    if widened:
        warnings.warn(f"{what}: bfloat16 tensors {widened[:3]}{'...' if len(widened) > 3 else ''} were widened to "
                      f"float32 (exactly: every bfloat16 is a float32); deepgrad, like NumPy, has no bfloat16 dtype",
                      stacklevel=4)
    return arrays


def _read_safetensors(fh: BinaryIO, what: str, map_location):
    data = fh.read()
    header = _parse_header(data[:8], lambda n: data[8:8 + n], len(data), what)
    arrays = _safetensors_arrays(data, header, what)
    meta = header.get("__metadata__") or {}
    if _FORMAT_KEY not in meta:  # a plain safetensors file: a flat state dict
        return _Unpacker(arrays, map_location, what).unpack(
            {"$dict": [[k, {"$tensor": k}] for k in arrays], "ordered": True})
    if meta[_FORMAT_KEY] != FORMAT:
        raise ValueError(f"{what}: written by deepgrad.save format {meta[_FORMAT_KEY]!r}; this deepgrad reads "
                         f"{FORMAT!r} (a newer deepgrad wrote it?)")
    try:
        skeleton = json.loads(meta.get(_STRUCTURE_KEY, ""))
    except (json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"{what}: its {_STRUCTURE_KEY!r} metadata is not JSON ({e})") from None
    try:
        return _Unpacker(arrays, map_location, what).unpack(skeleton)
    except RecursionError:
        raise ValueError(f"{what}: its structure is nested too deeply") from None


@contextlib.contextmanager
def _opened(f):
    """``(binary file, name for messages)`` from a path or an open binary file object."""
    if isinstance(f, (str, os.PathLike)):
        path = os.fspath(f)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no such file {path!r}")
        with open(path, "rb") as fh:
            yield fh, path
    elif hasattr(f, "read") and hasattr(f, "seek") and hasattr(f, "tell"):
        yield f, str(getattr(f, "name", "<file object>"))
    else:
        raise TypeError(f"load: f must be a path or a seekable binary file object, got {type(f).__name__}")


def load(f: str | os.PathLike | BinaryIO, map_location=None, pickle_module=None, *, weights_only: bool | None = None,
         mmap: bool | None = None, device=None, **pickle_load_args) -> Any:
    """Read an object written by :func:`save`, a safetensors file, or a PyTorch ``torch.save`` file (``.pt``/``.pth``).

    ``f`` is a path or a seekable binary file object. ``map_location`` follows ``torch.load``: None puts
    each tensor where it was saved (CPU for safetensors files from elsewhere); ``'cpu'``, ``'cuda'``,
    ``'cuda:1'`` or a :class:`~deepgrad.Device` puts them all there; a dict maps saved location strings
    (``{'cuda:0': 'cpu'}``); a callable ``(storage, location)`` gets each storage as a CPU Tensor and its
    location string and returns None (keep the location), a Tensor (use its device) or a device. Other
    devices than 'cpu' and 'cuda' are an error. ``device=`` is deepgrad's older name for ``map_location``.

    Nothing in a file is ever executed: ``.pt`` files go through an allow-list reader that can only
    rebuild tensors, storages, OrderedDicts and plain containers and scalars (what
    ``torch.load(weights_only=True)`` allows) and refuses any other global by name. ``weights_only`` is
    accepted for torch's sake, and ``weights_only=False`` does NOT enable code execution: the same reader
    runs either way. ``pickle_module``, ``mmap=True`` and other pickle options are refused (no pickle runs).
    bfloat16 tensors come back as float32 (exact widening, with a warning): deepgrad has no bfloat16.

    >>> model = deepgrad.nn.Linear(2, 1)
    >>> deepgrad.save(model.state_dict(), "linear.safetensors")
    >>> model.load_state_dict(deepgrad.load("linear.safetensors", map_location="cpu"))
    <All keys matched successfully>
    """
    if pickle_load_args:
        raise TypeError(f"load: unsupported keyword argument(s) {sorted(pickle_load_args)}: deepgrad never runs "
                        f"pickle, so pickle options do not apply")
    if pickle_module is not None:
        raise TypeError("load: pickle_module is not supported: deepgrad reads .pt files with its own allow-list "
                        "reader and never hands a file to a pickle module")
    if weights_only not in (None, True, False):
        raise TypeError(f"load: weights_only must be a bool or None, got {weights_only!r}")
    if mmap:
        raise ValueError("load: mmap=True is not supported; deepgrad reads tensors into memory")
    if device is not None:
        if map_location is not None:
            raise TypeError("load: pass map_location or device (its older name), not both")
        map_location = device
    check_map_location(map_location)
    with _opened(f) as (fh, what):
        start = fh.tell()
        head = fh.read(262)
        size = fh.seek(0, os.SEEK_END) - start
        fh.seek(start)
        n = int.from_bytes(head[:8], "little") if len(head) >= 8 else 0
        if len(head) > 8 and 2 <= n <= size - 8 and head[8:9] == b"{":
            return _read_safetensors(fh, what, map_location)
        if head[:4] == b"PK\x03\x04":
            return read_torch_zip(fh, what, map_location)
        if head[:1] == b"\x80":  # a pickle: torch's legacy format (or something refused on its first global)
            return read_torch_legacy(fh, what, map_location)
        if head[257:262] == b"ustar":
            raise ValueError(f"{what!r}: a tar archive, as torch < 0.4 wrote; deepgrad.load does not read it")
        raise ValueError(f"{what!r} is not a file deepgrad.load reads: not safetensors (deepgrad.save), not a "
                         f"torch.save zip archive and not a legacy torch.save file ({size} bytes, starting "
                         f"{head[:8]!r})")


# ----------------------------------------------------------------------------- safetensors helpers
def _parse_header(head: bytes, read, size: int, path: str) -> dict:
    """The JSON header of a safetensors file, after checking that the file is one (an 8-byte header
    length, then a JSON object); a pickle, a torch zip archive or anything else is refused with a message."""
    if len(head) < 8:
        raise _not_safetensors(path, f"only {size} bytes")
    n = int.from_bytes(head, "little")
    if not 2 <= n <= size - 8:
        # Only now say what it looks like instead: a valid length may well start with byte 0x80.
        if head[:4] == b"PK\x03\x04":
            raise _not_safetensors(path, "it is a zip archive, as torch.save writes")
        if head[:1] == b"\x80":
            raise _not_safetensors(path, "it is a Python pickle")
        raise _not_safetensors(path, "no valid header length in its first 8 bytes")
    try:
        header = json.loads(read(n).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _not_safetensors(path, "its header is not JSON") from None
    except RecursionError:
        raise _not_safetensors(path, "its header is nested too deeply to be one") from None
    if not isinstance(header, dict):
        raise _not_safetensors(path, "its header is not a JSON object")
    return header


def _not_safetensors(path: str, why: str) -> ValueError:
    return ValueError(
        f"{path!r} is not a safetensors file ({why}): this reader takes safetensors files only and never "
        f"unpickles. deepgrad.load(path) reads torch.save .pt/.pth files through an allow-list reader that runs "
        f"no code; or export from PyTorch with safetensors.torch.save_file(model.state_dict(), 'w.safetensors')")


def read_header(path: str | os.PathLike) -> dict:
    """The JSON header of a safetensors file at ``path`` (see :func:`_parse_header` for the checks)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file {path!r}")
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        return _parse_header(f.read(8), f.read, size, path)


def metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``__metadata__`` strings of a safetensors file (empty when it has none)."""
    return dict(read_header(path).get("__metadata__") or {})


def load_arrays(path: str | os.PathLike) -> OrderedDict:
    """``{name: numpy array}`` from a safetensors file, after :func:`read_header`'s check."""
    read_header(path)
    try:
        return OrderedDict(load_file(os.fspath(path)))
    except Exception as e:  # noqa: BLE001 - e.g. bfloat16 (no NumPy dtype) or a truncated file
        raise ValueError(f"cannot read {os.fspath(path)!r}: {e}") from None
