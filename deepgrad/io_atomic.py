"""Atomic file writes: a crash, a full disk or a kill mid-write leaves either the old file or the new one,
never a truncated file (write a temporary in the same directory, fsync, rename), and the temporaries a
killed writer left behind are cleaned up without disturbing a write in progress in another process.

Every file deepgrad writes (checkpoints, ``deepgrad.save``, histories, plots, reports, ONNX) goes through
:func:`atomic_write_bytes`.

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "note.txt")
>>> atomic_write_bytes(path, b"whole")
>>> open(path, "rb").read()
b'whole'
"""

from __future__ import annotations

import os
import secrets
import socket
import zlib

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
