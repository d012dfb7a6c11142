"""Saving and loading weights as safetensors files: atomic writes, no code execution on load.

A state dict saved here loads into the same PyTorch model (``safetensors.torch.load_file``)
and the reverse: the keys and tensor layouts are torch's.

>>> deepgrad.save(model.state_dict(), "lenet.safetensors")
>>> model.load_state_dict(deepgrad.load("lenet.safetensors"))
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import zlib
from collections import OrderedDict

import numpy as np
from safetensors.numpy import load_file
from safetensors.numpy import save as safetensors_bytes

from .backend import Device, array_module, move_to
from .tensor import Tensor


def host_array(value, key: str = "value") -> np.ndarray:
    """``value`` (Tensor, NumPy or CuPy array, array-like) as a C-contiguous host array, 0-d kept 0-d."""
    if isinstance(value, Tensor):
        value = value.data
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


_TMP_PREFIX = ".tmp-"


def _host_tag() -> str:
    """A short tag of this machine: a process id is only meaningful on the host that issued it (a shared
    file system may hold temporaries of processes on other machines, which are never touched)."""
    return f"{zlib.crc32(socket.gethostname().encode()):08x}"


def _temporary_name(target_name: str) -> str:
    return f"{_TMP_PREFIX}{_host_tag()}-{os.getpid()}-{secrets.token_hex(4)}-{target_name}"


def _process_alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # Windows' os.kill(pid, 0) would terminate the process
        return True  # our own temporaries may belong to another thread's write in progress
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: the process exists but belongs to someone else
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[str]:
    """Delete the temporaries that interrupted :func:`atomic_write_bytes` calls for ``path`` left behind
    (a process killed mid-write cannot clean up); returns the paths removed.

    Only ``path``'s own temporaries are candidates, and only those whose writer (named in the file name:
    host tag and process id) is a process of this machine that no longer runs, so a write in progress in
    another process is never disturbed.

    >>> remove_stale_temporaries("runs/a/last.ckpt")
    []
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    suffix, ours = "-" + os.path.basename(path), _TMP_PREFIX + _host_tag() + "-"
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    removed = []
    for entry in entries:
        if not (entry.startswith(ours) and entry.endswith(suffix)):
            continue
        pid, _, rest = entry[len(ours):].partition("-")
        token = rest[:-len(suffix)] if rest.endswith(suffix) else ""
        if not (pid.isdigit() and len(token) == 8) or _process_alive(int(pid)):
            continue
        stale = os.path.join(directory, entry)
        try:
            os.unlink(stale)
        except FileNotFoundError:  # another process cleaned it up first
            continue
        removed.append(stale)
    return removed


def _write_error(error: OSError, path: str) -> OSError:
    """``error`` restated against the file the caller asked for, not the temporary's name; the errno is
    kept, so ``PermissionError``, ENOSPC, EROFS ... stay recognisable."""
    return OSError(error.errno, error.strerror, path)


def atomic_write_bytes(path: str | os.PathLike, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that a crash leaves either the old file or the new one,
    never a truncated file: write a temporary file in the same directory, fsync, rename.

    The file gets the usual permissions (``0o666`` less the umask: 0644 under umask 022), like a file
    opened with ``open(path, "wb")``. Stale temporaries of ``path`` left by a killed writer are removed
    first (:func:`remove_stale_temporaries`). An ``OSError`` (disk full, read-only or unwritable directory)
    names ``path`` and keeps its errno.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        os.makedirs(directory, exist_ok=True)
        remove_stale_temporaries(path)
        while True:
            tmp = os.path.join(directory, _temporary_name(os.path.basename(path)))
            try:
                # mode 0o666 filtered by the umask, as open() does; tempfile.mkstemp would make it 0600
                fd = os.open(tmp, flags, 0o666)
                break
            except FileExistsError:  # a random-token collision: draw another name
                continue
    except OSError as e:
        if e.errno is None:
            raise
        raise _write_error(e, path) from e
    try:
        try:
            view = memoryview(payload).cast("B")
            while view:  # os.write may write less than asked (large payloads, signals)
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError) and e.errno is not None:
            raise _write_error(e, path) from e
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def save(state_dict, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """Write a ``{name: tensor}`` dict to a safetensors file, atomically."""
    if not hasattr(state_dict, "items"):
        raise TypeError(f"save: expected a dict of name -> tensor, got {type(state_dict).__name__}")
    if metadata is not None:
        bad = {k: type(v).__name__ for k, v in metadata.items() if not isinstance(v, str)}
        if bad:
            raise TypeError(f"save: safetensors metadata values must be strings, got {bad}")
    arrays = {str(k): host_array(v, k) for k, v in state_dict.items()}
    atomic_write_bytes(path, safetensors_bytes(arrays, metadata=metadata))


def _not_safetensors(path: str, why: str) -> ValueError:
    return ValueError(
        f"{path!r} is not a safetensors file ({why}): deepgrad reads weights only from safetensors files and "
        f"never unpickles (unpickling a .pt/.pth file can run arbitrary code). Export a PyTorch model with: "
        f"safetensors.torch.save_file(model.state_dict(), 'weights.safetensors')")


def read_header(path: str | os.PathLike) -> dict:
    """The JSON header of a safetensors file, after checking that the file is one (an 8-byte header
    length, then a JSON object); a pickle, a torch zip archive or anything else is refused with a message."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file {path!r}")
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
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
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise _not_safetensors(path, "its header is not JSON") from None
    if not isinstance(header, dict):
        raise _not_safetensors(path, "its header is not a JSON object")
    return header


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


def load(path: str | os.PathLike, device=None) -> OrderedDict:
    """Read a safetensors file into ``{name: Tensor}`` (on ``device``, CPU by default)."""
    dev = Device(device) if device is not None else None
    return OrderedDict((k, Tensor._make(move_to(v, dev) if dev is not None else v, None))
                       for k, v in load_arrays(path).items())
