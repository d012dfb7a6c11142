"""The result stream from the sandbox, read by a parent that trusts none of it.

Frames of ``kind (1 byte) | length (u32 LE) | payload`` (written by :mod:`._child`): ``W`` who runs the
candidate (written before any of its code runs), ``P`` the case now
running, ``R`` one case's result (u32 header length, a JSON header, then the raw bytes of each array the
header lists), ``I`` an error of the file as a whole, ``S`` a sandbox failure, ``E`` the end. Uncompressed
and bounded: every length, dtype and shape is checked against what was actually sent, and against caps,
before anything is allocated; anything malformed raises :class:`BadStream` with the reason, which the judge
turns into a FAILED verdict.

>>> parse_stream(b"E\\x00\\x00\\x00\\x00")["ended"]
True
"""

from __future__ import annotations

import json
import re
from typing import Any

from .exercise import Unsupported

MAX_HEADER_BYTES = 1 << 20       # one case's JSON header
MAX_ARRAYS = 10_000
MAX_NDIM = 32
MAX_FRAMES = 100_000             # a case is two frames: far more than any exercise sends
DTYPES = {f"{o}{k}{n}" for o in "<>|" for k, n in [("b", 1), ("i", 1), ("u", 1), ("i", 2), ("u", 2), ("i", 4),
                                                    ("u", 4), ("i", 8), ("u", 8), ("f", 2), ("f", 4), ("f", 8),
                                                    ("c", 8), ("c", 16)]}

# ----------------------------------------------------------------------------- text from the child
_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
                      r"|\x1b.?|[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def sanitize(text: str) -> str:
    """Text a candidate controls, safe to show: no terminal control sequences, no bidi overrides."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\t", "    "))


# ----------------------------------------------------------------------------- the result stream
class BadStream(Exception):
    """The result stream is malformed (the candidate's doing: a FAILED verdict with this reason). ``partial``
    holds what was read before the fault (who ran, the case running)."""

    partial: dict | None = None


def parse_stream(buf: bytes) -> dict:
    """Frames -> {'results': {i: dict}, 'running': i|None, 'file_error': str|None, 'sandbox': str|None,
    'ended': bool, 'identity': str|None}; raises BadStream with the reason (and what came before it)."""
    out: dict[str, Any] = {"results": {}, "running": None, "file_error": None, "sandbox": None, "ended": False,
                           "identity": None}
    try:
        _frames(buf, out)
    except BadStream as exc:
        exc.partial = out
        raise
    return out


def _frames(buf: bytes, out: dict) -> None:
    pos, n, frames = 0, len(buf), 0
    while pos < n:
        frames += 1
        if frames > MAX_FRAMES:
            raise BadStream(f"more than {MAX_FRAMES} frames")
        if n - pos < 5:
            raise BadStream(f"a truncated frame header at byte {pos}")
        kind, length = buf[pos:pos + 1], int.from_bytes(buf[pos + 1:pos + 5], "little")
        if length > n - pos - 5:
            raise BadStream(f"a frame of {length} bytes with only {n - pos - 5} left")
        payload = buf[pos + 5:pos + 5 + length]
        pos += 5 + length
        if kind == b"P":
            if length != 4:
                raise BadStream("a progress frame of the wrong size")
            out["running"] = int.from_bytes(payload, "little")
        elif kind == b"R":
            index, result = _parse_result(payload)
            out["results"][index] = result
        elif kind in (b"I", b"S"):
            out["file_error" if kind == b"I" else "sandbox"] = sanitize(str(_json(payload).get("error", "?")))
        elif kind == b"W":  # the harness writes it before the candidate runs: a later one is forged
            if out["identity"] is None:
                out["identity"] = sanitize(payload[:400].decode("utf-8", "replace"))
        elif kind == b"E":
            out["ended"] = True
        else:
            raise BadStream(f"an unknown frame kind {kind!r}")


def _json(data: bytes) -> dict:
    if len(data) > MAX_HEADER_BYTES:
        raise BadStream(f"a header of {len(data)} bytes (the limit is {MAX_HEADER_BYTES})")
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadStream(f"an unreadable header ({type(exc).__name__})") from None
    if not isinstance(obj, dict):
        raise BadStream("a header that is not an object")
    return obj


def _parse_result(payload: bytes) -> tuple[int, dict]:
    import numpy as np

    if len(payload) < 4:
        raise BadStream("a result frame without its header length")
    hlen = int.from_bytes(payload[:4], "little")
    if hlen > len(payload) - 4:
        raise BadStream("a result header longer than its frame")
    head = _json(payload[4:4 + hlen])
    index = head.get("i")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 1_000_000:
        raise BadStream("a result without a valid case index")
    seconds = head.get("time", 0.0)
    seconds = float(seconds) if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) else 0.0
    if "error" in head:
        return index, {"error": sanitize(str(head["error"]))[-3000:], "time": seconds}
    metas = head.get("arrays")
    if not isinstance(metas, list) or len(metas) > MAX_ARRAYS:
        raise BadStream("a result with an invalid array list")
    body, pos, arrays = payload[4 + hlen:], 0, []
    for meta in metas:
        if not isinstance(meta, dict) or meta.get("dtype") not in DTYPES:
            what = str(meta.get("dtype") if isinstance(meta, dict) else meta)[:20]
            raise BadStream(f"an array of unsupported dtype {what!r}")
        shape = meta.get("shape")
        if (not isinstance(shape, list) or len(shape) > MAX_NDIM
                or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**40 for d in shape)):
            raise BadStream("an array with an invalid shape")
        dtype = np.dtype(meta["dtype"])
        nbytes = dtype.itemsize
        for d in shape:
            nbytes *= d
        if nbytes > len(body) - pos:  # checked before anything is allocated
            raise BadStream(f"an array of {nbytes} bytes with only {len(body) - pos} sent")
        arrays.append(np.frombuffer(body, dtype, count=nbytes // dtype.itemsize, offset=pos).reshape(shape).copy())
        pos += nbytes
    if pos != len(body):
        raise BadStream(f"{len(body) - pos} stray bytes after the arrays")
    counter = [0]
    return index, {"value": _decode(head.get("value"), arrays, 0, counter), "time": seconds}


def _decode(v: Any, arrays: list, depth: int, counter: list) -> Any:
    counter[0] += 1
    if depth > 20 or counter[0] > 100_000:
        raise BadStream("a value nested too deeply or with too many parts")
    if not isinstance(v, dict) or not isinstance(v.get("t"), str):
        raise BadStream("a malformed value")
    t, raw = v["t"], v.get("v")
    try:
        if t in ("nd", "np"):
            a = arrays[v["k"]] if isinstance(v.get("k"), int) and not isinstance(v["k"], bool) else None
            if a is None:
                raise BadStream("a value naming no array")
            return a if t == "nd" else a[()]
        if t == "bool" and isinstance(raw, bool):
            return raw
        if t == "int" and isinstance(raw, str) and len(raw) < 1300:
            return int(raw)
        if t == "float" and isinstance(raw, str) and len(raw) < 40:
            return float(raw)
        if t == "none":
            return None
        if t == "str" and isinstance(raw, str) and len(raw) <= 100_000:
            return raw
        if t in ("list", "tuple") and isinstance(raw, list):
            items = [_decode(e, arrays, depth + 1, counter) for e in raw]
            return items if t == "list" else tuple(items)
        if t == "dict" and isinstance(raw, list):
            out = {}
            for pair in raw:
                if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
                    raise BadStream("a malformed dict")
                out[sanitize(pair[0])[:200]] = _decode(pair[1], arrays, depth + 1, counter)
            return out
        if t == "bad":
            return Unsupported(sanitize(str(v.get("type", "?")))[:80])
    except (IndexError, ValueError, OverflowError):
        raise BadStream(f"a malformed value of type {t[:10]!r}") from None
    raise BadStream(f"a malformed value of type {t[:10]!r}")


