"""A pickle reader that cannot run code: it rebuilds only what an allow-list names.

A pickle is a program. Python's own unpickler runs it: ``GLOBAL`` imports any object by name and
``REDUCE`` calls it, which is how a ``.pt`` file can run ``os.system`` the moment it is loaded. This
module interprets the same opcodes on its own small stack machine instead. :mod:`pickletools` decodes
each opcode and its argument (it parses; it never imports or calls anything), and the machine gives
them meaning: ``GLOBAL``/``STACK_GLOBAL`` may only produce an entry of the allow-list the caller passes
(anything else is refused there, before a single call, with an error naming the global), ``REDUCE``
may only call that entry's own handler, ``BUILD`` may only set plain attributes on an ``OrderedDict``
(torch keeps a state dict's ``_metadata`` there), and the opcodes that build arbitrary objects
(``INST``, ``OBJ``, ``NEWOBJ``, ``NEWOBJ_EX``, ``EXT1/2/4``) or use out-of-band buffers are refused.

>>> import io, pickle
>>> RestrictedUnpickler(io.BytesIO(pickle.dumps({"a": (1, 2.5)})), {}).load()
{'a': (1, 2.5)}
"""

from __future__ import annotations

import _compat_pickle
import pickle
import pickletools
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from .tensor import Tensor

_REFUSED_OPCODES = {
    "INST": "builds an instance of any class",
    "OBJ": "builds an instance of any class",
    "NEWOBJ": "builds an instance of any class",
    "NEWOBJ_EX": "builds an instance of any class",
    "EXT1": "names a global through the copyreg extension registry",
    "EXT2": "names a global through the copyreg extension registry",
    "EXT4": "names a global through the copyreg extension registry",
    "NEXT_BUFFER": "reads an out-of-band buffer",
    "READONLY_BUFFER": "reads an out-of-band buffer",
}
# Opcodes whose decoded argument is the value itself (numbers, strings, bytes).
_CONSTANT_OPCODES = frozenset({
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT", "STRING", "BINSTRING",
    "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "BINBYTES", "SHORT_BINBYTES",
    "BINBYTES8"})


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle refused by :class:`RestrictedUnpickler`: a global or opcode outside the allow-list, or malformed
    data. Nothing from the pickle ran. (A subclass of ``pickle.UnpicklingError``, the type torch raises.)"""


@dataclass(frozen=True)
class Allowed:
    """An allow-listed global: ``call`` handles ``REDUCE`` on it (None: it cannot be called); a global that
    is only a marker (a tensor type, a storage type) is consumed by another handler and may not be a value."""

    name: str
    call: Callable[..., Any] | None = None

    def __repr__(self) -> str:
        return f"<allow-listed global {self.name}>"


class _Value:
    """An allow-listed global that stands for a plain value (e.g. ``torch.float32`` -> ``numpy.float32``)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


def value_global(value) -> _Value:
    """Allow-list entry for a global that the file may use as a plain value (a dtype)."""
    return _Value(value)


class _CappedReader:
    """A stream whose reads never ask for more than what is left: a pickle that declares a 2**60-byte string
    must not make the file object allocate a buffer that large before finding the file shorter."""

    def __init__(self, stream: BinaryIO):
        self.stream = stream
        here = stream.tell()
        self.end = stream.seek(0, 2)
        stream.seek(here)

    def read(self, n: int = -1) -> bytes:
        left = max(self.end - self.stream.tell(), 0)
        return self.stream.read(left if n is None or n < 0 else min(n, left))

    def readline(self) -> bytes:
        return self.stream.readline()

    def tell(self) -> int:
        return self.stream.tell()


class RestrictedUnpickler:
    """Rebuild one pickle from ``stream`` with only ``allowed[(module, name)]`` globals; ``persistent_load``
    resolves persistent ids (None refuses them). ``what`` names the file in errors.

    >>> import io
    >>> RestrictedUnpickler(io.BytesIO(b"\\x80\\x02K\\x07."), {}).load()
    7
    """

    def __init__(self, stream: BinaryIO, allowed: Mapping[tuple[str, str], Allowed | _Value],
                 persistent_load: Callable[[Any], Any] | None = None, what: str = "pickle"):
        self.stream = stream
        self.allowed = allowed
        self.persistent_load = persistent_load
        self.what = what

    def _refuse(self, message: str, pos: int | None = None) -> UnsafePickleError:
        where = f" (byte {pos})" if pos is not None else ""
        return UnsafePickleError(f"{self.what}{where}: {message}; nothing in the file was executed")

    def _global(self, module, name, pos) -> Any:
        if not isinstance(module, str) or not isinstance(name, str):
            raise self._refuse("STACK_GLOBAL with a non-string module or name", pos)
        written = f"{module}.{name}"
        if self.proto < 3:  # Python 2 names (__builtin__.set, commands.Popen) mean what Python 3 maps them to
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            else:
                module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        entry = self.allowed.get((module, name))
        if entry is None:
            alias = f" (written as '{written}')" if written != f"{module}.{name}" else ""
            raise self._refuse(
                f"refusing the global '{module}.{name}'{alias}: not on deepgrad's allow-list (tensors, storages, "
                f"OrderedDict, plain containers and scalars, as torch.load(weights_only=True))", pos)
        return entry.value if isinstance(entry, _Value) else entry

    def load(self) -> Any:
        """Interpret opcodes up to STOP and return the rebuilt object (the stream is left just after STOP)."""
        self.stack: list = []
        self.metastack: list[list] = []
        self.memo: dict[int, Any] = {}
        self.proto = 0
        ops = pickletools.genops(_CappedReader(self.stream))
        while True:
            try:
                opcode, arg, pos = next(ops)
            except StopIteration:
                raise self._refuse("truncated: no STOP opcode") from None
            except Exception as e:  # noqa: BLE001 - pickletools reports malformed bytes as ValueError and others
                raise self._refuse(f"malformed pickle data ({e})") from None
            name = opcode.name
            try:
                if name == "STOP":
                    if len(self.stack) != 1 or self.metastack:
                        raise self._refuse("malformed pickle data (stack not balanced at STOP)", pos)
                    result = self.stack.pop()
                    self._check_no_markers(result)
                    return result
                if name in _REFUSED_OPCODES:
                    if name == "INST":  # name the class first, as for GLOBAL
                        module, _, attr = arg.partition(" ")
                        self._global(module, attr, pos)
                    raise self._refuse(f"refusing opcode {name}: it {_REFUSED_OPCODES[name]}", pos)
                self._step(name, arg, pos)
            except UnsafePickleError:
                raise
            except (IndexError, KeyError, TypeError, ValueError, AttributeError, RecursionError) as e:
                raise self._refuse(f"malformed pickle data at opcode {name} ({type(e).__name__}: {e})", pos) from None

    def _pop_mark(self) -> list:
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def _step(self, name: str, arg, pos: int) -> None:
        """One opcode that may involve code in a normal unpickler: globals, calls, state, persistent ids."""
        stack = self.stack
        if name == "PROTO":
            if not 0 <= arg <= 5:
                raise self._refuse(f"unsupported pickle protocol {arg}", pos)
            self.proto = arg
        elif name == "MARK":
            self.metastack.append(self.stack)
            self.stack = []
        elif name == "GLOBAL":
            module, _, attr = arg.partition(" ")
            stack.append(self._global(module, attr, pos))
        elif name == "STACK_GLOBAL":
            attr = stack.pop()
            module = stack.pop()
            stack.append(self._global(module, attr, pos))
        elif name == "REDUCE":
            args = stack.pop()
            func = stack.pop()
            if not isinstance(func, Allowed) or func.call is None:
                what = func.name if isinstance(func, Allowed) else repr(func)[:60]
                raise self._refuse(f"refusing to call {what}: only allow-listed rebuild functions can be called", pos)
            if not isinstance(args, tuple):
                raise self._refuse(f"REDUCE on {func.name} with non-tuple arguments", pos)
            stack.append(func.call(*args))
        elif name == "BUILD":
            state = stack.pop()
            self._build(stack[-1], state, pos)
        elif name in ("PERSID", "BINPERSID"):
            pid = arg if name == "PERSID" else stack.pop()
            if self.persistent_load is None:
                raise self._refuse("persistent ids are not allowed here", pos)
            stack.append(self.persistent_load(pid))
        elif name != "FRAME":  # FRAME only announces how many bytes follow
            self._data_op(name, arg, pos)

    def _data_op(self, name: str, arg, pos: int) -> None:
        """Opcodes that only build plain data: constants, containers, the memo."""
        stack = self.stack
        if name in _CONSTANT_OPCODES:
            stack.append(arg)
        elif name == "BYTEARRAY8":
            stack.append(bytearray(arg))
        elif name == "NONE":
            stack.append(None)
        elif name in ("NEWTRUE", "NEWFALSE"):
            stack.append(name == "NEWTRUE")
        elif name == "EMPTY_LIST":
            stack.append([])
        elif name == "EMPTY_DICT":
            stack.append({})
        elif name == "EMPTY_TUPLE":
            stack.append(())
        elif name == "EMPTY_SET":
            stack.append(set())
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            if len(stack) < n:
                raise IndexError(f"{name} needs {n} items on the stack")
            items = tuple(stack[-n:])
            del stack[-n:]
            stack.append(items)
        elif name in ("TUPLE", "LIST", "DICT", "FROZENSET"):
            items = self._pop_mark()  # first: it swaps self.stack back to the list below the mark
            if name == "DICT":
                items = dict(zip(items[::2], items[1::2], strict=True))
            self.stack.append(items if name == "LIST" else tuple(items) if name == "TUPLE"
                              else items if name == "DICT" else frozenset(items))
        elif name == "APPEND":
            value = stack.pop()
            self._container(stack[-1], list, name, pos).append(value)
        elif name == "APPENDS":
            items = self._pop_mark()
            self._container(self.stack[-1], list, name, pos).extend(items)
        elif name == "SETITEM":
            value = stack.pop()
            key = stack.pop()
            self._container(stack[-1], dict, name, pos)[key] = value
        elif name == "SETITEMS":
            items = self._pop_mark()
            target = self._container(self.stack[-1], dict, name, pos)
            for key, value in zip(items[::2], items[1::2], strict=True):
                target[key] = value
        elif name == "ADDITEMS":
            items = self._pop_mark()
            self._container(self.stack[-1], set, name, pos).update(items)
        elif name == "POP":
            if stack:
                stack.pop()
            else:
                self._pop_mark()
        elif name == "POP_MARK":
            self._pop_mark()
        elif name == "DUP":
            stack.append(stack[-1])
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            if arg not in self.memo:
                raise self._refuse(f"memo entry {arg} read before it was written", pos)
            stack.append(self.memo[arg])
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            if arg < 0:
                raise self._refuse("negative memo index", pos)
            self.memo[arg] = stack[-1]
        elif name == "MEMOIZE":
            self.memo[len(self.memo)] = stack[-1]
        else:  # every opcode pickletools knows is handled above or refused
            raise self._refuse(f"unsupported opcode {name}", pos)

    def _container(self, target, kind: type, opcode: str, pos: int):
        # Only real containers: pickle would call .append/.extend/__setitem__ on *any* object here.
        if type(target) is not kind and not (kind is dict and type(target) is OrderedDict):
            raise self._refuse(f"{opcode} on a {type(target).__name__}, not a {kind.__name__}", pos)
        return target

    def _build(self, inst, state, pos: int) -> None:
        # torch stores a state dict's per-module versions as the OrderedDict's `_metadata` attribute.
        if type(inst) is not OrderedDict or type(state) is not dict:
            raise self._refuse(f"BUILD (setting the state of an object) is only allowed on an OrderedDict with a "
                               f"dict of attributes, not on a {type(inst).__name__} with a {type(state).__name__}",
                               pos)
        for key, value in state.items():
            if not isinstance(key, str) or not key.isidentifier() or key.startswith("__"):
                raise self._refuse(f"BUILD with attribute name {key!r} on an OrderedDict", pos)
            setattr(inst, key, value)

    def _check_no_markers(self, result) -> None:
        """Refuse a result that holds an allow-listed function or type itself rather than what it rebuilt."""
        seen: set[int] = set()
        todo = [result]
        while todo:
            obj = todo.pop()
            if isinstance(obj, Allowed):
                raise self._refuse(f"the global {obj.name} appears as a value; deepgrad only lets it rebuild data")
            if isinstance(obj, Tensor) or id(obj) in seen:
                continue
            if isinstance(obj, (list, tuple, set, frozenset)):
                seen.add(id(obj))
                todo.extend(obj)
            elif isinstance(obj, dict):
                seen.add(id(obj))
                todo.extend(obj.keys())
                todo.extend(obj.values())
                todo.extend(getattr(obj, "__dict__", {}).values())


# ----------------------------------------------------------------------------- plain-data globals
def _ordered_dict(items=()):
    if not isinstance(items, (list, tuple, dict)):
        raise TypeError(f"OrderedDict from a {type(items).__name__}")
    return OrderedDict(items)


def _container(kind):
    def build(items=()):
        if not isinstance(items, (list, tuple, set, frozenset)):
            raise TypeError(f"{kind.__name__} from a {type(items).__name__}")
        return kind(items)
    return build


def _latin1_encode(text, encoding="utf-8"):
    # Protocol 2 pickles bytes as _codecs.encode(text, "latin1"); nothing else is needed or allowed.
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise TypeError(f"_codecs.encode is only allowed as encode(str, 'latin1'), got {encoding!r}")
    return text.encode("latin-1")


def _bytearray(data=b"", encoding=None):
    if isinstance(data, str):
        return bytearray(_latin1_encode(data, encoding or ""))
    if not isinstance(data, bytes) or encoding is not None:
        raise TypeError(f"bytearray from a {type(data).__name__}")
    return bytearray(data)


def _complex(real=0.0, imag=0.0):
    if not all(type(v) in (int, float) for v in (real, imag)):
        raise TypeError("complex from non-numbers")
    return complex(real, imag)


# Globals any pickle of plain data may use (protocol 2 spells bytes, sets and OrderedDicts as calls).
PLAIN_GLOBALS = {
    ("collections", "OrderedDict"): Allowed("collections.OrderedDict", _ordered_dict),
    ("builtins", "set"): Allowed("builtins.set", _container(set)),
    ("builtins", "frozenset"): Allowed("builtins.frozenset", _container(frozenset)),
    ("builtins", "bytearray"): Allowed("builtins.bytearray", _bytearray),
    ("builtins", "complex"): Allowed("builtins.complex", _complex),
    ("_codecs", "encode"): Allowed("_codecs.encode", _latin1_encode),
}
