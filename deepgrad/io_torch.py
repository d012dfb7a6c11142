"""Reading PyTorch's own ``.pt``/``.pth`` files (``torch.save``) without torch and without running the file.

``torch.save`` writes a zip archive: ``<name>/data.pkl`` is a pickle of the object in which every tensor
is a call to ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)``
and every storage a persistent id ``("storage", torch.FloatStorage, key, location, numel)`` whose bytes
are the record ``<name>/data/<key>``; ``byteorder`` and ``version`` records describe the rest. Before
torch 1.6 (and with ``_use_new_zipfile_serialization=False``) it wrote the *legacy* format instead: five
pickles in a row (magic number, protocol version, system info, the object, the storage keys), then each
storage's element count and bytes. Both are read here through :class:`~deepgrad.io_pickle.RestrictedUnpickler`
with an allow-list of what ``torch.load(weights_only=True)`` accepts: the tensor and parameter rebuild
functions, storage types, dtypes, ``torch.Size``, ``torch.device``, ``collections.OrderedDict``, sets,
bytes and plain containers and scalars. Those names are matched as strings and mapped to deepgrad's own
functions; nothing is imported from torch and nothing in the file runs.

Every declared extent is checked before memory is allocated or read: a storage record must exist, be
stored uncompressed (so a small file cannot inflate: no zip bombs) and hold exactly ``numel`` elements;
a tensor's offset, sizes and strides must stay inside its storage.

>>> read_torch_file("model.pt")["fc.weight"].shape   # doctest: +SKIP
(10, 84)
"""

from __future__ import annotations

import io
import os
import warnings
import zipfile
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np

from . import backend
from .backend import Device
from .io_pickle import PLAIN_GLOBALS, Allowed, RestrictedUnpickler, UnsafePickleError, value_global
from .tensor import Tensor

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # the magic number torch's legacy format starts with
LEGACY_PROTOCOL = 1001
MAX_FORMAT_VERSION = 10  # torch 2.13 writes 3; a much newer one may change the meaning of the records
_MAX_ELEMENTS = 2**62  # beyond what NumPy can index: a declared size this large is an attack or corruption


class TorchFileError(UnsafePickleError):
    """A ``.pt`` file deepgrad refuses or cannot read (bad structure, out-of-bounds tensor, unsupported dtype)."""


# torch storage class -> the NumPy dtype of its elements ("bfloat16": kept as uint16 bits, widened on load).
_STORAGE_DTYPES: dict[str, Any] = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_, "UntypedStorage": np.uint8,
}
# torch dtype attribute -> NumPy dtype (the ones NumPy and deepgrad can hold).
_TORCH_DTYPES = {
    "float32": np.float32, "float64": np.float64, "float16": np.float16, "int64": np.int64, "int32": np.int32,
    "int16": np.int16, "int8": np.int8, "uint8": np.uint8, "bool": np.bool_, "uint16": np.uint16,
    "uint32": np.uint32, "uint64": np.uint64,
}


def _bfloat16_to_float32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 is the top half of a float32, so widening is exact: shift the 16 bits into place."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


# ----------------------------------------------------------------------------- placement (map_location)
def check_map_location(map_location) -> None:
    """Refuse a ``map_location`` deepgrad does not support, before anything is read."""
    if map_location is None or isinstance(map_location, (str, Device)) or callable(map_location):
        return
    if isinstance(map_location, dict):
        bad = [v for v in map_location.values() if not isinstance(v, (str, Device))]
        if not bad and all(isinstance(k, str) for k in map_location):
            return
    raise TypeError(f"load: map_location must be None, a device string ('cpu', 'cuda', 'cuda:1'), a deepgrad "
                    f"Device, a dict of location strings or a callable(storage, location), got {map_location!r}")


def target_device(map_location, location: str, storage: Callable[[], Tensor] | None = None) -> Device:
    """Where a storage saved at ``location`` goes, as ``torch.load``'s ``map_location`` decides."""
    target = location
    if isinstance(map_location, (str, Device)):
        target = map_location
    elif isinstance(map_location, dict):
        target = map_location.get(location, location)
    elif callable(map_location):
        moved = map_location(storage() if storage is not None else None, location)
        if isinstance(moved, Tensor):
            target = moved.device
        elif isinstance(moved, (str, Device)):
            target = moved
        elif moved is not None:
            raise TypeError(f"load: map_location callable returned a {type(moved).__name__}; expected None, "
                            f"a Tensor (its device is used) or a device")
    try:
        device = Device(target)
    except ValueError:
        raise RuntimeError(f"load: tensors saved on device {str(target)!r} have no deepgrad device; "
                           f"pass map_location='cpu' (or 'cuda') to place them") from None
    if device.type == "cuda" and not backend.cuda_is_available():
        raise RuntimeError(f"Attempting to deserialize object on a CUDA device ({device}) but CUDA is not "
                           f"available to deepgrad (CuPy with a visible GPU). On a CPU-only machine, pass "
                           f"map_location='cpu' to deepgrad.load.")
    return device


# ----------------------------------------------------------------------------- storages and tensors
class _Storage:
    """One storage: its bytes (``raw``, allocated once its size is checked) and the typed elements over them."""

    def __init__(self, key: str, dtype, numel: int, location: str):
        self.key, self.location, self.numel = key, location, numel
        self.bfloat16 = dtype == "bfloat16"
        self.dtype = np.dtype(np.uint16 if self.bfloat16 else dtype)
        self.nbytes = numel * self.dtype.itemsize
        self.raw = np.empty(self.nbytes, dtype=np.uint8)
        self.filled = False
        self.big_endian = False
        self._widened: np.ndarray | None = None
        self._views: dict[np.dtype, np.ndarray] = {}  # an untyped storage read as other dtypes

    def finish(self, big_endian: bool) -> None:
        """After ``raw`` holds the file's bytes: native byte order, canonical booleans, widened bfloat16."""
        typed = self.raw.view(self.dtype)
        self.big_endian = big_endian
        if big_endian and self.dtype.itemsize > 1:
            typed.byteswap(inplace=True)
        if self.dtype == np.bool_:  # a byte other than 0/1 is not a valid bool; torch reads it as True
            np.not_equal(self.raw, 0, out=typed)
        if self.bfloat16:
            self._widened = _bfloat16_to_float32(typed)
        self.filled = True

    def elements(self, dtype=None) -> np.ndarray:
        """The storage as a 1-d array of ``dtype`` (its own by default; an untyped storage takes any)."""
        if self.bfloat16:
            return self._widened if self._widened is not None else np.empty(self.numel, np.float32)
        if dtype is None or np.dtype(dtype) == self.dtype:
            return self.raw.view(self.dtype)
        dtype = np.dtype(dtype)
        if self.dtype != np.uint8 or self.nbytes % dtype.itemsize:
            raise TorchFileError(f"storage {self.key!r} ({self.dtype}, {self.nbytes} bytes) cannot be read as {dtype}")
        if dtype not in self._views:
            view = self.raw.view(dtype)
            if self.big_endian and dtype.itemsize > 1:
                view = view.view(dtype.newbyteorder(">")).astype(dtype)  # a copy in native order
            elif dtype == np.bool_:
                view = self.raw != 0  # a copy with canonical booleans
            self._views[dtype] = view
        return self._views[dtype]


class _StorageRef:
    """What a persistent id resolves to: a storage, or (legacy format) an element range of one."""

    def __init__(self, storage: _Storage, offset: int, numel: int, device: Device):
        self.storage, self.offset, self.numel, self.device = storage, offset, numel, device

    def elements(self, dtype=None) -> np.ndarray:
        if self.offset == 0 and self.numel == self.storage.numel:
            return self.storage.elements(dtype)
        if dtype is not None:
            raise TorchFileError(f"a view of storage {self.storage.key!r} cannot be reinterpreted as {dtype}")
        return self.storage.elements()[self.offset:self.offset + self.numel]


def _int_tuple(value, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple) or not all(type(v) is int for v in value):
        raise TorchFileError(f"tensor {what} must be a tuple of ints, got {value!r}")
    return value


def _strided_view(elements: np.ndarray, offset, size, stride) -> np.ndarray:
    """``elements[offset:]`` seen with torch's ``size`` and ``stride`` (in elements), after a bounds check."""
    size, stride = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    if type(offset) is not int or offset < 0:
        raise TorchFileError(f"tensor storage offset must be a non-negative int, got {offset!r}")
    if len(size) != len(stride) or len(size) > 64:
        raise TorchFileError(f"tensor size {size} and stride {stride} do not describe a tensor of at most 64 dims")
    if any(s < 0 for s in size) or any(t < 0 for t in stride):
        raise TorchFileError(f"tensor size {size} / stride {stride} has a negative entry")
    count = 1
    for s in size:
        count *= s
    if count >= _MAX_ELEMENTS:
        raise TorchFileError(f"tensor size {size} declares {count} elements, more than can exist")
    if count == 0:
        return np.empty(size, dtype=elements.dtype)
    last = offset + sum((s - 1) * t for s, t in zip(size, stride))
    if last >= elements.size:
        raise TorchFileError(f"tensor of size {size}, stride {stride} at offset {offset} reaches element {last} "
                             f"of a storage of {elements.size} elements (out of bounds)")
    item = elements.itemsize
    return np.lib.stride_tricks.as_strided(elements[offset:], shape=size, strides=[t * item for t in stride])


class TorchReader:
    """The allow-list and handlers shared by the zip and legacy readers (one instance per file)."""

    def __init__(self, what: str, map_location, *, legacy: bool, check_size: Callable[[str, int], None],
                 fill: Callable[[_Storage], None] | None, storages: dict[str, _Storage] | None = None):
        self.what, self.map_location, self.legacy = what, map_location, legacy
        self.check_size = check_size  # raises unless the file can hold a storage of that many bytes
        self.fill = fill  # zip: reads a new storage's record at once; legacy: None (data follows the pickle)
        self.storages: dict[str, _Storage] = {} if storages is None else storages
        self.devices: dict[str, Device] = {}
        self.allowed = self._allow_list()

    def error(self, message: str) -> TorchFileError:
        return TorchFileError(f"{self.what}: {message}")

    def _allow_list(self) -> dict:
        rebuild = {"_rebuild_tensor": self._rebuild_tensor, "_rebuild_tensor_v2": self._rebuild_tensor_v2,
                   "_rebuild_tensor_v3": self._rebuild_tensor_v3, "_rebuild_parameter": self._rebuild_parameter,
                   "_rebuild_parameter_with_state": self._rebuild_parameter_with_state}
        allowed: dict = {("torch._utils", k): Allowed(f"torch._utils.{k}", f) for k, f in rebuild.items()}
        allowed[("torch._tensor", "_rebuild_from_type_v2")] = Allowed("torch._tensor._rebuild_from_type_v2",
                                                                      self._rebuild_from_type_v2)
        for name in (*_STORAGE_DTYPES, "ComplexFloatStorage", "ComplexDoubleStorage"):
            allowed[("torch", name)] = Allowed(f"torch.{name}")
        allowed[("torch.storage", "UntypedStorage")] = allowed[("torch", "UntypedStorage")]
        for name, dtype in _TORCH_DTYPES.items():
            allowed[("torch", name)] = value_global(np.dtype(dtype))
        for name in ("bfloat16", "complex64", "complex128", "float8_e4m3fn", "float8_e5m2"):
            allowed[("torch", name)] = Allowed(f"torch.{name}")  # only meaningful as _rebuild_tensor_v3's dtype
        for module, name in (("torch", "Tensor"), ("torch._tensor", "Tensor")):
            allowed[(module, name)] = Allowed("torch.Tensor")
        for module in ("torch.nn.parameter", "torch.nn"):
            allowed[(module, "Parameter")] = Allowed("torch.nn.Parameter")
        allowed[("torch", "Size")] = Allowed("torch.Size", self._size)
        allowed[("torch", "device")] = Allowed("torch.device", self._device)
        allowed.update(PLAIN_GLOBALS)
        return allowed

    # ---- persistent ids: storages
    def persistent_load(self, pid) -> _StorageRef:
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            kind = pid[0] if isinstance(pid, tuple) and pid else pid
            raise self.error(f"refusing persistent id {kind!r}: only storages can be loaded "
                             f"(a 'module' id carries class source code)")
        fields = 6 if self.legacy else 5
        if len(pid) != fields:
            raise self.error(f"malformed storage id {str(pid)[:200]} (expected {fields} fields)")
        storage_type, key, location, numel = pid[1:5]
        if isinstance(storage_type, Allowed) and storage_type.name.startswith("torch.Complex"):
            raise self.error(f"complex tensors ({storage_type.name}) are not supported by deepgrad")
        if not isinstance(storage_type, Allowed) or storage_type.name[len("torch."):] not in _STORAGE_DTYPES:
            raise self.error(f"storage id names {storage_type!r}, not a torch storage type")
        if not isinstance(key, str) or not isinstance(location, str) or type(numel) is not int or numel < 0:
            raise self.error(f"malformed storage id {str(pid)[:200]}")
        dtype = _STORAGE_DTYPES[storage_type.name[len("torch."):]]
        storage = self.storages.get(key)
        if storage is None:
            storage = self._new_storage(key, dtype, numel, location)
        elif (storage.numel, storage.bfloat16, storage.dtype) != (
                numel, dtype == "bfloat16", np.dtype(np.uint16 if dtype == "bfloat16" else dtype)):
            raise self.error(f"storage {key!r} declared twice with different types or sizes")
        offset, count = 0, storage.numel
        if self.legacy and pid[5] is not None:  # a view of a root storage (torch < 1.0 files)
            view = pid[5]
            if not (isinstance(view, tuple) and len(view) == 3 and type(view[1]) is int and type(view[2]) is int
                    and 0 <= view[1] and 0 <= view[2] and view[1] + view[2] <= storage.numel):
                raise self.error(f"storage view {view!r} does not lie inside storage {key!r} of {storage.numel}")
            offset, count = view[1], view[2]
        return _StorageRef(storage, offset, count, self._device_for(storage))

    def _new_storage(self, key: str, dtype, numel: int, location: str) -> _Storage:
        self.check_size(key, numel * (2 if dtype == "bfloat16" else np.dtype(dtype).itemsize))  # before allocating
        storage = _Storage(key, dtype, numel, location)
        self.storages[key] = storage
        if self.fill is not None:
            self.fill(storage)
        return storage

    def _device_for(self, storage: _Storage) -> Device:
        if storage.key not in self.devices:
            as_tensor = (lambda: Tensor(storage.elements())) if callable(self.map_location) else None
            self.devices[storage.key] = target_device(self.map_location, storage.location, as_tensor)
        return self.devices[storage.key]

    # ---- REDUCE handlers
    def _tensor(self, ref, offset, size, stride, requires_grad, dtype=None) -> Tensor:
        if not isinstance(ref, _StorageRef):
            raise self.error(f"a tensor must be rebuilt from a storage, got {type(ref).__name__}")
        if type(requires_grad) is not bool:
            raise self.error(f"requires_grad must be a bool, got {requires_grad!r}")
        array = _strided_view(ref.elements(dtype), offset, size, stride)
        if array.dtype.kind != "f":
            requires_grad = False  # torch cannot save such a tensor; a forged flag is dropped, not obeyed
        device = ref.device if ref.device.type != "cpu" else None
        return Tensor(array, requires_grad=requires_grad, device=device)

    def _check_hooks(self, hooks) -> None:
        if hooks is not None and not (isinstance(hooks, dict) and not hooks):
            raise self.error("tensors with backward hooks cannot be loaded (hooks are code)")

    def _rebuild_tensor(self, storage, offset, size, stride):
        return self._tensor(storage, offset, size, stride, False)

    def _rebuild_tensor_v2(self, storage, offset, size, stride, requires_grad, hooks, metadata=None):
        self._check_hooks(hooks)
        if metadata:
            raise self.error(f"tensor metadata {metadata!r} (e.g. conjugate/negative bits) is not supported")
        return self._tensor(storage, offset, size, stride, requires_grad)

    def _rebuild_tensor_v3(self, storage, offset, size, stride, requires_grad, hooks, dtype, metadata=None):
        self._check_hooks(hooks)
        if isinstance(dtype, Allowed):
            raise self.error(f"tensor dtype {dtype.name} has no NumPy/deepgrad equivalent")
        if not isinstance(dtype, np.dtype) or metadata:
            raise self.error(f"malformed _rebuild_tensor_v3 call (dtype {dtype!r}, metadata {metadata!r})")
        return self._tensor(storage, offset, size, stride, requires_grad, dtype)

    def _rebuild_parameter(self, data, requires_grad, hooks):
        from .nn.module import Parameter  # lazy: io sits beside nn, and nn is imported after io

        self._check_hooks(hooks)
        if not isinstance(data, Tensor) or type(requires_grad) is not bool:
            raise self.error(f"malformed _rebuild_parameter call ({type(data).__name__}, {requires_grad!r})")
        return Parameter(data, requires_grad=requires_grad and data.dtype.kind == "f")

    def _rebuild_parameter_with_state(self, data, requires_grad, hooks, state):
        if state:
            raise self.error("a Parameter with Python attributes cannot be loaded")
        return self._rebuild_parameter(data, requires_grad, hooks)

    def _rebuild_from_type_v2(self, func, new_type, args, state):
        if not (isinstance(func, Allowed) and func.name.startswith("torch._utils._rebuild_")) or not isinstance(
                args, tuple):
            raise self.error(f"_rebuild_from_type_v2 must wrap a tensor rebuild function, got {func!r}")
        if not isinstance(new_type, Allowed) or new_type.name not in ("torch.Tensor", "torch.nn.Parameter"):
            raise self.error(f"tensor subclass {new_type!r} is not supported")
        if state:
            raise self.error("a tensor with Python attributes cannot be loaded")
        out = func.call(*args)
        if new_type.name == "torch.nn.Parameter" and isinstance(out, Tensor):
            return self._rebuild_parameter(out, out.requires_grad, None)
        return out

    def _size(self, dims=()):
        return tuple(_int_tuple(tuple(dims) if isinstance(dims, list) else dims, "torch.Size"))

    def _device(self, kind, index=None):
        if not isinstance(kind, str) or (index is not None and type(index) is not int):
            raise self.error(f"malformed torch.device({kind!r}, {index!r})")
        try:
            return Device(kind, index)
        except ValueError:
            raise self.error(f"torch.device({kind!r}) has no deepgrad equivalent") from None


def _warn_bfloat16(what: str, storages: dict[str, _Storage]) -> None:
    if any(s.bfloat16 for s in storages.values()):
        warnings.warn(f"{what}: bfloat16 tensors were widened to float32 (exactly: every bfloat16 is a "
                      f"float32); deepgrad, like NumPy, has no bfloat16 dtype", stacklevel=4)


# ----------------------------------------------------------------------------- the two containers
def _file_size(fh: BinaryIO) -> int:
    here = fh.tell()
    size = fh.seek(0, os.SEEK_END)
    fh.seek(here)
    return size


def read_torch_zip(fh: BinaryIO, what: str, map_location) -> Any:
    """The object in a zip-format ``torch.save`` file (``fh`` seekable, at the archive's start)."""
    archive_size = _file_size(fh)
    try:
        zf = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise TorchFileError(f"{what}: not a readable zip archive ({e})") from None
    with zf:
        infos = {}
        for info in zf.infolist():
            if info.filename in infos:
                raise TorchFileError(f"{what}: the zip archive holds record {info.filename!r} twice")
            infos[info.filename] = info
        if any(n.endswith("/constants.pkl") or "/code/" in n for n in infos):
            raise TorchFileError(f"{what}: a TorchScript archive (torch.jit.save) holds code; deepgrad.load "
                                 f"reads torch.save files only")
        pickles = [n for n in infos if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise TorchFileError(f"{what}: a zip archive with {len(pickles)} '<name>/data.pkl' records; a "
                                 f"torch.save file has exactly one")
        prefix = pickles[0][:-len("data.pkl")]

        def checked(name: str, required: bool = True) -> zipfile.ZipInfo | None:
            info = infos.get(prefix + name)
            if info is None:
                if required:
                    raise TorchFileError(f"{what}: missing record {prefix + name!r}")
                return None
            if info.flag_bits & 0x1:
                raise TorchFileError(f"{what}: record {info.filename!r} is encrypted")
            if info.compress_type != zipfile.ZIP_STORED:
                raise TorchFileError(
                    f"{what}: record {info.filename!r} is compressed (zip method {info.compress_type}); torch.save "
                    f"stores records uncompressed, and deepgrad refuses compressed ones so that a small file "
                    f"cannot expand into a huge one (zip bomb)")
            if info.file_size != info.compress_size or info.header_offset + info.compress_size > archive_size:
                raise TorchFileError(f"{what}: record {info.filename!r} declares {info.file_size} bytes but the "
                                     f"archive stores {info.compress_size} of its {archive_size}")
            return info

        def read_into(info: zipfile.ZipInfo, out: memoryview) -> None:
            try:
                with zf.open(info) as record:
                    done = 0
                    while done < len(out):
                        n = record.readinto(out[done:])
                        if not n:
                            break
                        done += n
                    if done != len(out) or record.read(1):
                        raise TorchFileError(f"{what}: record {info.filename!r} is not {len(out)} bytes long")
            except (zipfile.BadZipFile, EOFError, OSError) as e:
                raise TorchFileError(f"{what}: cannot read record {info.filename!r} ({e})") from None

        def small_record(name: str, required: bool) -> bytes | None:
            info = checked(name, required)
            if info is None:
                return None
            out = bytearray(info.file_size)
            read_into(info, memoryview(out))
            return bytes(out)

        version = small_record("version", False) or small_record(".data/version", True)
        try:
            number = int(version.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            raise TorchFileError(f"{what}: record 'version' holds {version[:20]!r}, not a number") from None
        if not 1 <= number <= MAX_FORMAT_VERSION:
            raise TorchFileError(f"{what}: archive format version {number} is not one deepgrad reads "
                                 f"(1..{MAX_FORMAT_VERSION}); it may come from a much newer torch")
        byteorder = small_record("byteorder", False) or b"little"  # files before torch 1.12 have no record
        if byteorder not in (b"little", b"big"):
            raise TorchFileError(f"{what}: record 'byteorder' holds {byteorder[:20]!r}, not 'little' or 'big'")

        def check_size(key: str, nbytes: int) -> None:
            info = checked(f"data/{key}")
            if info.file_size != nbytes:
                raise TorchFileError(f"{what}: storage {key!r} declares {nbytes} bytes but its record "
                                     f"{info.filename!r} holds {info.file_size}")

        def fill(storage: _Storage) -> None:
            read_into(checked(f"data/{storage.key}"), memoryview(storage.raw))
            storage.finish(big_endian=byteorder == b"big")

        reader = TorchReader(what, map_location, legacy=False, check_size=check_size, fill=fill)
        pickle_bytes = small_record("data.pkl", True)
        result = RestrictedUnpickler(io.BytesIO(pickle_bytes), reader.allowed, reader.persistent_load,
                                     what=f"{what} ({prefix}data.pkl)").load()
    _warn_bfloat16(what, reader.storages)
    return result


def read_torch_legacy(fh: BinaryIO, what: str, map_location) -> Any:
    """The object in a legacy (non-zip) ``torch.save`` file: five pickles, then the storages' bytes."""
    end = _file_size(fh)

    def plain(label: str):
        return RestrictedUnpickler(fh, {}, None, what=f"{what} ({label})").load()

    if plain("magic number") != LEGACY_MAGIC:
        raise TorchFileError(f"{what}: a pickle, but not a torch.save file (no torch magic number); deepgrad "
                             f"never unpickles arbitrary pickles")
    if plain("protocol version") != LEGACY_PROTOCOL or not isinstance(plain("system info"), dict):
        raise TorchFileError(f"{what}: legacy torch file with an unknown protocol version or system info")
    start = fh.tell()
    declared = [0]

    def check_size(key: str, nbytes: int) -> None:  # all storages together must fit in what follows
        declared[0] += nbytes
        if declared[0] > end - start:
            raise TorchFileError(f"{what}: storage {key!r} declares {nbytes} bytes; the storages would need "
                                 f"{declared[0]}, more than the {end - start} bytes left in the file")

    # Pass 1 declares the storages (tensors are built on the CPU and dropped: their bytes come after the
    # pickle); pass 2 rebuilds the object over the filled storages, placed as map_location says.
    first = TorchReader(what, "cpu", legacy=True, check_size=check_size, fill=None)
    RestrictedUnpickler(fh, first.allowed, first.persistent_load, what=f"{what} (object)").load()
    keys = plain("storage keys")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise TorchFileError(f"{what}: the storage key list is malformed")
    for key in keys:
        storage = first.storages.get(key)
        if storage is None or storage.filled:
            raise TorchFileError(f"{what}: storage key {key!r} is {'repeated' if storage else 'not declared'}")
        count = int.from_bytes(fh.read(8).ljust(8, b"\xff"), "little", signed=True)
        if count != storage.numel or fh.readinto(memoryview(storage.raw)) != storage.nbytes:
            raise TorchFileError(f"{what}: the bytes of storage {key!r} are truncated or do not match its "
                                 f"{storage.numel} declared elements")
        storage.finish(big_endian=False)  # the legacy writer always writes little-endian
    missing = [k for k, s in first.storages.items() if not s.filled]
    if missing:
        raise TorchFileError(f"{what}: storages {missing} have no data in the file")
    fh.seek(start)
    second = TorchReader(what, map_location, legacy=True, check_size=check_size, fill=None,
                         storages=first.storages)
    result = RestrictedUnpickler(fh, second.allowed, second.persistent_load, what=f"{what} (object)").load()
    _warn_bfloat16(what, first.storages)
    return result
