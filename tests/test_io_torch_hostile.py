"""Hostile .pt files: pickle payloads are refused by name and never run (each payload is first shown to be live:
Python's own unpickler runs it), and forged archives (out-of-bounds views, lying sizes, zip bombs, missing
records) are refused with a clear error before any memory is allocated for them."""

import builtins
import copyreg
import io
import os
import pickle
import pickletools
import struct
import subprocess
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import deepgrad as dg

torch = pytest.importorskip("torch")


# ----------------------------------------------------------------------------- pickle payloads
class System:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class Eval(System):
    def __reduce__(self):
        return builtins.eval, (f"open({str(self.marker)!r}, 'w').close()",)


class Exec(System):
    def __reduce__(self):
        return builtins.exec, (f"open({str(self.marker)!r}, 'w').close()",)


class Popen(System):
    def __reduce__(self):
        return subprocess.Popen, (["touch", str(self.marker)],)


def _getattr_chain(marker) -> bytes:
    # getattr(__import__('os'), 'system')('touch marker'), spelled in protocol-0 opcodes by hand.
    return (b"cbuiltins\ngetattr\n(cbuiltins\n__import__\n(Vos\ntRVsystem\ntR(V" + f"touch {marker}".encode()
            + b"\ntR.")


def _inst_opcode(marker) -> bytes:
    return b"(V" + f"touch {marker}".encode() + b"\nios\nsystem\n."  # INST: the oldest way to call a global


def _run_natively(payload: bytes, marker) -> None:
    """Prove a payload is live: Python's pickle runs it and the marker appears."""
    out = pickle.loads(payload)
    if isinstance(out, subprocess.Popen):
        out.wait()
    assert marker.exists(), "the payload should have run under pickle.loads"


def _torch_zip_with(data_pkl: bytes, path) -> None:
    """A real torch.save archive whose data.pkl is replaced by ``data_pkl``."""
    buffer = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buffer)
    with zipfile.ZipFile(buffer) as zin, zipfile.ZipFile(path, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, data_pkl if info.filename.endswith("/data.pkl") else zin.read(info))


PAYLOADS = {
    "os.system": (lambda m: pickle.dumps({"w": 1, "x": System(m)}, protocol=2), r"'posix\.system'"),
    "builtins.eval": (lambda m: pickle.dumps(Eval(m), protocol=2), r"'builtins\.eval'"),
    "builtins.exec": (lambda m: pickle.dumps([Exec(m)], protocol=2), r"'builtins\.exec'"),
    "subprocess.Popen": (lambda m: pickle.dumps(Popen(m), protocol=2), r"'subprocess\.Popen'"),
    "getattr chain": (_getattr_chain, r"'builtins\.getattr'"),
    "nested deep": (lambda m: pickle.dumps({"a": [1, {"b": (2, [System(m)])}]}, protocol=2), r"'posix\.system'"),
    "STACK_GLOBAL": (lambda m: pickle.dumps(System(m), protocol=4), r"'posix\.system'"),
    "INST opcode": (_inst_opcode, r"'os\.system'"),
}


@pytest.mark.parametrize("name", PAYLOADS)
def test_pickle_payloads_are_refused_by_name_and_never_run(tmp_path, name):
    make, global_name = PAYLOADS[name]
    live = tmp_path / "live-marker"
    _run_natively(make(live), live)
    if name == "STACK_GLOBAL":
        assert "STACK_GLOBAL" in {op.name for op, _, _ in pickletools.genops(make(live))}
    marker = tmp_path / "marker"
    _torch_zip_with(make(marker), tmp_path / "evil.pt")
    for weights_only in (None, True, False):  # weights_only=False must not open the door
        with pytest.raises(pickle.UnpicklingError, match=global_name + ".*nothing in the file was executed"):
            dg.load(tmp_path / "evil.pt", weights_only=weights_only)
    assert not marker.exists()


@pytest.mark.parametrize("legacy", [False, True])
def test_torch_save_of_an_object_with_reduce_is_refused(tmp_path, legacy):
    # The payload as an attacker ships it: torch.save of a checkpoint holding a __reduce__ object.
    kwargs = {"_use_new_zipfile_serialization": False} if legacy else {}
    live, marker = tmp_path / "live", tmp_path / "marker"
    torch.save({"w": torch.ones(2), "x": System(live)}, tmp_path / "twin.pt", **kwargs)
    torch.save({"w": torch.ones(2), "x": System(marker)}, tmp_path / "evil.pt", **kwargs)
    torch.load(tmp_path / "twin.pt", weights_only=False)  # torch's full unpickler runs it ...
    assert live.exists()
    with pytest.raises(pickle.UnpicklingError, match=r"'posix\.system'"):
        dg.load(tmp_path / "evil.pt")  # ... deepgrad's reader refuses it
    assert not marker.exists()


def test_extension_registry_opcodes_are_refused(tmp_path):
    marker = tmp_path / "marker"
    copyreg.add_extension("posix", "system", 0x7A)
    try:
        payload = pickle.dumps(System(marker), protocol=2)
        assert "EXT1" in {op.name for op, _, _ in pickletools.genops(payload)}
    finally:
        copyreg.remove_extension("posix", "system", 0x7A)
    _torch_zip_with(payload, tmp_path / "evil.pt")
    with pytest.raises(pickle.UnpicklingError, match="refusing opcode EXT1"):
        dg.load(tmp_path / "evil.pt")
    assert not marker.exists()


@pytest.mark.parametrize("data_pkl, message", [
    (b"ctorch.serialization\nload\n(Vx\ntR.", r"'torch\.serialization\.load'"),
    (b"cnumpy.core.multiarray\n_reconstruct\n.", r"'numpy\.core\.multiarray\._reconstruct'"),
    (b"ctorch._utils\n_rebuild_tensor_v2\n.", "appears as a value"),
    (b"ctorch\nfloat32\n)R.", r"refusing to call dtype\('float32'\)"),
    (b"\x80\x02}q\x00}q\x01X\x01\x00\x00\x00aK\x01sb.", "BUILD .* only allowed on an OrderedDict"),
    (b"ccollections\nOrderedDict\n)R}X\x09\x00\x00\x00__class__K\x01sb.", "BUILD with attribute name '__class__'"),
    (b"\x80\x02(X\x06\x00\x00\x00moduleK\x01tQ.", "refusing persistent id 'module'"),
    (b"\x80\x02K\x01", "exhausted before seeing STOP"),
    (b"\x80\x02h\x05.", "memo entry 5 read before it was written"),
    (b"\x80\x02K\x01K\x02K\x03s.", "SETITEM on a int, not a dict"),
])
def test_other_refused_pickles(tmp_path, data_pkl, message):
    _torch_zip_with(data_pkl, tmp_path / "bad.pt")
    with pytest.raises(pickle.UnpicklingError, match=message):
        dg.load(tmp_path / "bad.pt")


# ----------------------------------------------------------------------------- forged archives
class Storage:
    def __init__(self, key, numel, kind="FloatStorage"):
        self.key, self.numel, self.kind = key, numel, kind


class ForgedTensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride, False, OrderedDict())

    def __reduce__(self):
        return torch._utils._rebuild_tensor_v2, self.args


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", getattr(torch, obj.kind), obj.key, "cpu", obj.numel)
        return None


def forge(path, obj, records, version=b"3\n", byteorder=b"little", compress=()):
    """Write a torch.save-format archive holding ``obj`` (with forged tensors) and raw storage ``records``."""
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=2).dump(obj)
    entries = {"data.pkl": buffer.getvalue(), "byteorder": byteorder, "version": version}
    entries.update({f"data/{k}": v for k, v in records.items()})
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            if data is not None:
                z.writestr(f"archive/{name}", data,
                           zipfile.ZIP_DEFLATED if name in compress else zipfile.ZIP_STORED)


FOUR = np.arange(4, dtype=np.float32).tobytes()


def test_forged_archive_is_the_real_format(tmp_path):
    s = Storage("0", 4)
    forge(tmp_path / "ok.pt", {"a": ForgedTensor(s, 1, (2,), (2,)), "b": ForgedTensor(s, 0, (2, 2), (1, 2))},
          {"0": FOUR})
    expected = torch.load(tmp_path / "ok.pt", weights_only=True)
    got = dg.load(tmp_path / "ok.pt")
    for key in ("a", "b"):
        np.testing.assert_array_equal(np.asarray(got[key]), expected[key].numpy())
    assert got["a"].tolist() == [1.0, 3.0]


@pytest.mark.parametrize("offset, size, stride, message", [
    (10, (2,), (1,), "out of bounds"),
    (0, (3,), (2,), "reaches element 4 of a storage of 4 elements"),
    (3, (2,), (1,), "out of bounds"),
    (0, (2,), (-1,), "negative"),
    (0, (-2,), (1,), "negative"),
    (-1, (2,), (1,), "offset must be a non-negative int"),
    (0, (2**20, 2**20), (1, 1), "out of bounds"),
    (0, (2**40, 2**40), (0, 0), "more than can exist"),
    (0, (2, 2), (1,), "do not describe a tensor"),
    (0, (2.0,), (1,), "tuple of ints"),
])
def test_out_of_bounds_views_are_refused(tmp_path, offset, size, stride, message):
    forge(tmp_path / "bad.pt", {"t": ForgedTensor(Storage("0", 4), offset, size, stride)}, {"0": FOUR})
    with pytest.raises(pickle.UnpicklingError, match=message):
        dg.load(tmp_path / "bad.pt")


def test_lying_storage_sizes_and_missing_records(tmp_path):
    huge = Storage("0", 2**60)  # 4 EiB declared: refused before anything is allocated
    forge(tmp_path / "a.pt", {"t": ForgedTensor(huge, 0, (2,), (1,))}, {"0": FOUR})
    with pytest.raises(pickle.UnpicklingError, match=r"declares 4611686018427387904 bytes but its record.*holds 16"):
        dg.load(tmp_path / "a.pt")
    forge(tmp_path / "b.pt", {"t": ForgedTensor(Storage("7", 4), 0, (2,), (1,))}, {"0": FOUR})
    with pytest.raises(pickle.UnpicklingError, match="missing record 'archive/data/7'"):
        dg.load(tmp_path / "b.pt")
    twice = {"t": ForgedTensor(Storage("0", 4), 0, (2,), (1,)),
             "u": ForgedTensor(Storage("0", 2, "LongStorage"), 0, (2,), (1,))}
    forge(tmp_path / "c.pt", twice, {"0": FOUR})
    with pytest.raises(pickle.UnpicklingError, match="declared twice"):
        dg.load(tmp_path / "c.pt")


def test_compressed_records_are_refused_as_zip_bombs(tmp_path):
    numel = 4 * 2**20  # 16 MiB of zeros that deflate to a few KiB
    forge(tmp_path / "bomb.pt", {"t": ForgedTensor(Storage("0", numel), 0, (numel,), (1,))},
          {"0": bytes(4 * numel)}, compress={"data/0"})
    assert os.path.getsize(tmp_path / "bomb.pt") < 100_000
    with pytest.raises(pickle.UnpicklingError, match="compressed.*zip bomb"):
        dg.load(tmp_path / "bomb.pt")


def test_a_record_size_that_lies_in_the_central_directory_is_refused(tmp_path):
    forge(tmp_path / "ok.pt", {"t": ForgedTensor(Storage("0", 4), 0, (4,), (1,))}, {"0": FOUR})
    data = bytearray((tmp_path / "ok.pt").read_bytes())
    entry = data.index(b"PK\x01\x02")  # the first central-directory record
    name = b"archive/data/0"
    while data[entry + 46:entry + 46 + len(name)] != name:
        entry = data.index(b"PK\x01\x02", entry + 4)
    struct.pack_into("<I", data, entry + 24, 2**31)  # uncompressed size: 2 GiB
    (tmp_path / "lie.pt").write_bytes(bytes(data))
    with pytest.raises(pickle.UnpicklingError, match=r"declares 2147483648 bytes but the archive stores 16"):
        dg.load(tmp_path / "lie.pt")


@pytest.mark.parametrize("change, message", [
    ({"version": b"99\n"}, "format version 99"),
    ({"version": None}, "missing record 'archive/.data/version'"),
    ({"version": b"three"}, "not a number"),
    ({"byteorder": b"middle"}, "not 'little' or 'big'"),
])
def test_bad_records(tmp_path, change, message):
    forge(tmp_path / "bad.pt", {"t": ForgedTensor(Storage("0", 4), 0, (4,), (1,))}, {"0": FOUR}, **change)
    with pytest.raises(pickle.UnpicklingError, match=message):
        dg.load(tmp_path / "bad.pt")


def test_archive_without_data_pkl_and_truncated_archives(tmp_path):
    with zipfile.ZipFile(tmp_path / "empty.pt", "w") as z:
        z.writestr("archive/version", b"3\n")
    with pytest.raises(pickle.UnpicklingError, match="0 '<name>/data.pkl' records"):
        dg.load(tmp_path / "empty.pt")
    torch.save({"w": torch.ones(1000)}, tmp_path / "ok.pt")
    data = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(pickle.UnpicklingError, match="not a readable zip archive"):
        dg.load(tmp_path / "cut.pt")


def test_big_endian_archives_and_noncanonical_bools(tmp_path):
    values = np.array([1.5, -2.0, 3.25], dtype=np.float32)
    forge(tmp_path / "be.pt", {"t": ForgedTensor(Storage("0", 3), 0, (3,), (1,))}, {"0": values.byteswap().tobytes()},
          byteorder=b"big")
    assert dg.load(tmp_path / "be.pt")["t"].tolist() == values.tolist()
    forge(tmp_path / "bool.pt", {"t": ForgedTensor(Storage("0", 3, "BoolStorage"), 0, (3,), (1,))},
          {"0": b"\x00\x07\x01"})
    got = dg.load(tmp_path / "bool.pt")["t"]
    assert got.tolist() == [False, True, True] and np.asarray(got).view(np.uint8).tolist() == [0, 1, 1]


def test_truncated_and_lying_legacy_files(tmp_path):
    torch.save({"w": torch.arange(4.0)}, tmp_path / "ok.pt", _use_new_zipfile_serialization=False)
    data = (tmp_path / "ok.pt").read_bytes()
    assert dg.load(tmp_path / "ok.pt")["w"].tolist() == [0.0, 1.0, 2.0, 3.0]
    (tmp_path / "cut.pt").write_bytes(data[:-4])
    with pytest.raises(pickle.UnpicklingError, match="truncated or do not match"):
        dg.load(tmp_path / "cut.pt")
    count = data.rindex(struct.pack("<q", 4))
    (tmp_path / "count.pt").write_bytes(data[:count] + struct.pack("<q", 5) + data[count + 8:])
    with pytest.raises(pickle.UnpicklingError, match="truncated or do not match"):
        dg.load(tmp_path / "count.pt")
    huge = data.replace(b"K\x04N", b"J\x00\x00\x00\x40N", 1)  # the storage's declared numel: 2**30 elements
    assert huge != data
    (tmp_path / "huge.pt").write_bytes(huge)
    with pytest.raises(pickle.UnpicklingError, match="more than the .* bytes left in the file"):
        dg.load(tmp_path / "huge.pt")
    (tmp_path / "plain.pt").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(pickle.UnpicklingError, match="not a torch.save file"):
        dg.load(tmp_path / "plain.pt")


def test_a_huge_declared_string_does_not_allocate(tmp_path):
    torch.save({"w": torch.ones(1)}, tmp_path / "ok.pt", _use_new_zipfile_serialization=False)
    data = (tmp_path / "ok.pt").read_bytes()
    header_end = data.index(b".", data.index(b"little_endian")) + 1  # magic, protocol and system-info pickles
    bomb = data[:header_end] + b"\x80\x04\x8e" + struct.pack("<Q", 2**62) + b"only a few bytes"
    (tmp_path / "bomb.pt").write_bytes(bomb)
    with open(tmp_path / "bomb.pt", "rb") as f:  # a real file object, not a BytesIO
        with pytest.raises(pickle.UnpicklingError, match="malformed pickle data.*4611686018427387904"):
            dg.load(f)
