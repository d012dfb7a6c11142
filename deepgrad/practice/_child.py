"""The sandboxed side of the judge: build the jail, then run a candidate's code on the judge's inputs.

Run by :mod:`deepgrad.practice.sandbox` as ``python -I -S -B _child.py MODE SPEC RESULT_FD CONTROL_FD``;
standalone on purpose (the standard library, then NumPy inside the jail; never deepgrad). Two processes:

* the **supervisor** (PID 1 of a fresh PID namespace when isolated) builds a minimal read-only root on a
  tmpfs (the interpreter, its standard library, NumPy, the system libraries with every site-/dist-packages
  folder masked, ``/dev/{null,zero,full,random,urandom}``, a private ``/proc`` and ``/tmp``), pivots into
  it, says ``ready`` on the control pipe, forks the worker and waits for it. When it exits, the kernel kills
  every process left in the namespace: nothing the candidate started outlives the check.
* the **worker** drops every privilege (``nobody`` in its own user namespace when the judge runs as root;
  no capabilities, no new privileges, a locked bounding set when it runs rootless), applies the rlimits,
  then runs the candidate. It never holds the control pipe.

fd 0 carries the judge's request (a pickle the judge wrote: trusted here, read before any candidate code
runs); fds 1 and 2 are the candidate's output; RESULT_FD receives the result stream, frames of
``kind (1 byte) | length (u32 LE) | payload``: ``W`` who runs the candidate (uid, capabilities, user
namespace; written before any candidate code), ``P`` case index now running, ``R`` one case's result
(u32 header length, a JSON header, then the raw bytes of each array it lists), ``I`` an error of the file
as a whole (reported once), ``S`` a sandbox failure, ``E`` the end. No pickle, no compression: the judge
checks every size before it allocates anything.
"""

import ctypes
import glob
import json
import os
import pickle
import resource
import signal
import struct
import sys
import time
import traceback

BLOCKED = ("deepgrad", "torch", "tensorflow", "jax", "keras")
RNG = ("__deepgrad_practice_rng__",)
NOBODY = 65534
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC = 1, 2, 4, 8, 32, 4096, 16384
MS_PRIVATE, MS_NOATIME, MS_NODIRATIME, MS_RELATIME, MNT_DETACH = 1 << 18, 1024, 2048, 1 << 21, 2
CLONE_NEWUSER = 0x10000000
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_SECUREBITS = 1, 4, 24, 28
PR_SET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 36, 47, 4
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "ppc64": 203, "s390x": 217,
                  "i686": 217, "i386": 217, "armv7l": 218, "armv6l": 218, "loongarch64": 41}
SYS_CAPSET = {"x86_64": 126, "aarch64": 91, "riscv64": 91, "ppc64le": 184, "ppc64": 184, "s390x": 185,
              "i686": 185, "i386": 185, "armv7l": 185, "armv6l": 185, "loongarch64": 91}
_libc = ctypes.CDLL(None, use_errno=True)


class JailError(Exception):
    """The jail could not be built (the judge falls back and says so; the candidate has not run)."""


def _call(name: str, *args) -> int:
    rc = getattr(_libc, name)(*args)
    if rc < 0:
        err = ctypes.get_errno()
        raise JailError(f"{name}{tuple(a.decode() if isinstance(a, bytes) else a for a in args[:2])}: "
                        f"{os.strerror(err)}")
    return rc


def _prctl(*args) -> int:
    return _call("prctl", *(ctypes.c_ulong(a) for a in args + (0,) * (5 - len(args))))


def _b(path):
    return None if path is None else os.fsencode(path)


def _mount(src, dst, fstype, flags, data=None) -> None:
    _call("mount", _b(src), _b(dst), _b(fstype), ctypes.c_ulong(flags), _b(data))


# ----------------------------------------------------------------------------- the jail (supervisor)
def _mountinfo() -> list[tuple[str, str]]:
    """(mount point, per-mount options) of this mount namespace."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = fields[4].encode().decode("unicode_escape")  # \040 for a space, etc.
            out.append((point, fields[5]))
    return out


_OPTS = {"ro": MS_RDONLY, "nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": MS_NOATIME,
         "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME}


def _bind(src: str, dst: str, devices: bool = False) -> None:
    """Bind ``src`` at ``dst`` read-only, every submount too; the flags the kernel locked are kept."""
    if os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if not os.path.exists(dst):
            open(dst, "w").close()
    _mount(src, dst, None, MS_BIND | MS_REC)
    for point, opts in _mountinfo():
        if point == dst or point.startswith(dst.rstrip("/") + "/"):
            keep = sum(_OPTS.get(o, 0) for o in opts.split(","))
            flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | (0 if devices else MS_NODEV) | keep
            _mount(None, point, None, flags)


def _tmpfs(dst: str, options: str, flags: int = MS_NOSUID | MS_NODEV) -> None:
    os.makedirs(dst, exist_ok=True)
    _mount("tmpfs", dst, "tmpfs", flags, options)


def _python_dirs() -> list[str]:
    """What the interpreter needs: its standard library folders (sys.path under -I -S), outermost only."""
    dirs = sorted({os.path.realpath(p) for p in sys.path if p and os.path.isdir(p)})
    return [d for d in dirs if not any(d.startswith(o + "/") for o in dirs)]


def _site_dirs(root_dirs: list[str]) -> list[str]:
    """Every site-/dist-packages folder inside the bound folders (masked: NumPy comes in on its own)."""
    found = set()
    for d in root_dirs:
        if not os.path.isdir(d):
            continue
        for pattern in ("site-packages", "dist-packages", "python3*/site-packages", "python3*/dist-packages",
                        "lib/python3*/site-packages", "local/lib/python3*/dist-packages"):
            found.update(p for p in glob.glob(os.path.join(d, pattern)) if os.path.isdir(p))
    return sorted(found)


def _under(path: str, dirs: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs)


def build_jail(spec: dict) -> str:
    """Mount the minimal root at spec['root'] and pivot into it; returns a description for the judge."""
    root = spec["root"]
    machine = os.uname().machine
    if machine not in SYS_PIVOT_ROOT:
        raise JailError(f"no pivot_root syscall number known for {machine}")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount propagates back to the host
    _tmpfs(root, "mode=0755,size=4m")
    _tmpfs(root + "/tmp", f"mode=1777,size={spec['tmp_mb']}m")  # first: a NumPy under /tmp is bound on top
    system = [d for d in ("/lib", "/lib64", "/lib32", "/libx32", "/usr/lib", "/usr/lib64", "/usr/lib32")
              if os.path.lexists(d)]
    for d in system:
        if os.path.islink(d):
            os.makedirs(os.path.dirname(root + d), exist_ok=True)
            os.symlink(os.readlink(d), root + d)
        else:
            _bind(d, root + d)
    bound = [d for d in system if not os.path.islink(d)]
    # The interpreter's own lib folder (its standard library, libpython, the libraries its extension modules
    # and a conda NumPy link against), else just the standard library folders.
    prefixes = {os.path.realpath(os.path.join(p, "lib")) for p in (sys.base_prefix, sys.base_exec_prefix)}
    for path in [os.path.realpath(sys.executable)] + sorted(p for p in prefixes if os.path.isdir(p)) \
            + _python_dirs() + [f for f in spec.get("files", ()) if os.path.exists(f)]:
        if not _under(os.path.realpath(path), bound):
            _bind(path, root + path)
            bound.append(path)
    masks = [m for m in _site_dirs(bound) if os.path.isdir(root + m)]
    for site in masks:  # empty, read-only once NumPy is in
        _tmpfs(root + site, "mode=0755,size=64k")
    for name in ("numpy", "numpy.libs"):  # at its own path: $ORIGIN-relative library paths keep working
        src = os.path.join(spec["numpy_site"], name)
        if os.path.isdir(src):
            _bind(src, root + src)
    for site in masks:
        _mount(None, root + site, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "mode=0755,size=64k")
    _tmpfs(root + "/dev", "mode=0755,size=64k")
    for dev in ("null", "zero", "full", "random", "urandom"):
        _bind("/dev/" + dev, root + "/dev/" + dev, devices=True)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, root + "/dev/" + name)
    _mount(None, root + "/dev", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID, "mode=0755,size=64k")
    os.makedirs(root + "/proc", exist_ok=True)
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for sub in ("sys", "sysrq-trigger", "irq", "bus"):  # the kernel's knobs stay read-only, as bubblewrap does
        if os.path.exists(root + "/proc/" + sub):
            _bind(root + "/proc/" + sub, root + "/proc/" + sub)
    os.chdir(root)
    _call("syscall", ctypes.c_long(SYS_PIVOT_ROOT[machine]), b".", b".")
    _call("umount2", b".", 2)  # the old root, detached: the host's tree is gone from this namespace
    os.chdir("/")
    _mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    return os.readlink("/proc/self/ns/pid")


# ----------------------------------------------------------------------------- privileges (worker)
def _capset_zero() -> None:
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    data = (ctypes.c_uint32 * 6)()
    _call("syscall", ctypes.c_long(SYS_CAPSET[os.uname().machine]), header, data)


def _drop_caps() -> None:
    """No capability left in any set, none to regain by exec (bounding set empty, root has no magic)."""
    last = int(open("/proc/sys/kernel/cap_last_cap").read())
    for cap in range(last + 1):
        _prctl(PR_CAPBSET_DROP, cap)
    _prctl(PR_SET_SECUREBITS, 0xEF)  # NOROOT, NO_SETUID_FIXUP, NO_CAP_AMBIENT_RAISE, KEEP_CAPS off: locked
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    _capset_zero()


def drop_privileges(mode: str) -> str:
    """Become unprivileged for good; returns a description (checked against /proc/self/status)."""
    if mode == "root":
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)  # every capability of the init namespace is gone here
        _prctl(PR_SET_DUMPABLE, 1)  # the uid change made /proc/self root's; it is ours again (uid_map below)
        if _libc.unshare(CLONE_NEWUSER) == 0:  # a user namespace of its own, nobody -> nobody
            for name, text in (("setgroups", "deny"), ("uid_map", f"{NOBODY} {NOBODY} 1"),
                               ("gid_map", f"{NOBODY} {NOBODY} 1")):
                with open(f"/proc/self/{name}", "w") as f:
                    f.write(text)
            _drop_caps()
    elif mode == "userns":
        _drop_caps()
    if mode == "none":  # rlimits only (and no new privileges where Linux has the switch)
        if sys.platform.startswith("linux"):
            _prctl(PR_SET_NO_NEW_PRIVS, 1)
        return f"uid {os.getuid()}, not isolated"
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
    if int(status["CapEff"], 16) or int(status["CapPrm"], 16):
        raise JailError(f"capabilities left after the drop: {status['CapEff'].strip()}")
    return f"uid {os.getuid()}, capabilities {status['CapEff'].strip()}, user ns {os.readlink('/proc/self/ns/user')}"


def apply_limits(spec: dict) -> None:
    def cap(which, value):
        _, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            if spec["mode"] != "none":  # the jail's limits are not optional; elsewhere (macOS) some are refused
                raise

    cap(resource.RLIMIT_CPU, spec["cpu"])
    cap(resource.RLIMIT_AS, spec["memory_mb"] << 20)
    cap(resource.RLIMIT_FSIZE, spec["file_mb"] << 20)
    cap(resource.RLIMIT_CORE, 0)
    if hasattr(resource, "RLIMIT_NPROC") and spec["mode"] != "none":
        cap(resource.RLIMIT_NPROC, spec["nproc"])


# ----------------------------------------------------------------------------- results
class Stream:
    """The result frames, written in full (a short write is retried)."""

    def __init__(self, fd: int):
        self.fd = fd

    def frame(self, kind: bytes, payload: bytes = b"") -> None:
        data = memoryview(kind + struct.pack("<I", len(payload)) + payload)
        while data:
            data = data[os.write(self.fd, data):]

    def text(self, kind: bytes, message: str) -> None:
        self.frame(kind, json.dumps({"error": message[-6000:]}).encode())


def _encode(v, arrays: list, np, depth: int = 0):
    if depth > 20:
        return {"t": "bad", "type": "a structure nested too deeply"}
    if isinstance(v, (np.ndarray, np.generic)):
        a = np.asarray(v)
        if a.dtype.kind not in "biufc":
            return {"t": "bad", "type": f"array of dtype {a.dtype}"}
        arrays.append(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("=")))
        return {"t": "nd" if isinstance(v, np.ndarray) else "np", "k": len(arrays) - 1}
    if isinstance(v, bool):
        return {"t": "bool", "v": v}
    if isinstance(v, int):
        if v.bit_length() > 4000:
            return {"t": "bad", "type": "an int of thousands of digits"}
        return {"t": "int", "v": str(v)}
    if isinstance(v, float):
        return {"t": "float", "v": repr(v)}
    if v is None:
        return {"t": "none"}
    if isinstance(v, str):
        return {"t": "str", "v": v} if len(v) <= 100_000 else {"t": "bad", "type": f"str of {len(v)} characters"}
    if isinstance(v, (list, tuple)):
        if len(v) > 10_000:
            return {"t": "bad", "type": f"{type(v).__name__} of {len(v)} items"}
        return {"t": "tuple" if isinstance(v, tuple) else "list", "v": [_encode(e, arrays, np, depth + 1) for e in v]}
    if isinstance(v, dict):
        if len(v) > 10_000:
            return {"t": "bad", "type": f"dict of {len(v)} items"}
        return {"t": "dict", "v": [[str(k), _encode(e, arrays, np, depth + 1)] for k, e in v.items()]}
    return {"t": "bad", "type": type(v).__name__}


def _result_payload(index: int, value, seconds: float, np) -> bytes:
    arrays: list = []
    tree = _encode(value, arrays, np)
    header = json.dumps({"i": index, "time": seconds, "value": tree,
                         "arrays": [{"dtype": a.dtype.str, "shape": list(a.shape)} for a in arrays]}).encode()
    return b"".join([struct.pack("<I", len(header)), header] + [a.tobytes() for a in arrays])


def _candidate_traceback(exc: BaseException, filename: str) -> str:
    """The traceback from the first frame of the candidate's file on (the harness is noise)."""
    frames = traceback.extract_tb(exc.__traceback__)
    for i, fr in enumerate(frames):
        if fr.filename == filename:
            frames = frames[i:]
            break
    else:
        frames = []
    text = "".join(traceback.format_list(frames)) + "".join(traceback.format_exception_only(type(exc), exc))
    return text[-3000:]


class _Blocker:
    """Defence in depth (the jail does not contain them anyway): the frameworks are not importable."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"importing {name!r} is not allowed in a practice solution: implement it with NumPy")
        return None


def run_candidate(request: dict, out: Stream) -> None:
    import faulthandler
    import linecache
    import types

    import numpy as np

    faulthandler.enable()  # a segfault's Python traceback reaches the candidate

    sys.meta_path.insert(0, _Blocker())
    source, filename, calls = request["source"], request["filename"], request["calls"]
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # tracebacks show lines
    module = types.ModuleType("solution")
    module.__file__ = filename
    sys.modules["solution"] = module
    try:
        exec(compile(source, filename, "exec", dont_inherit=True), module.__dict__)  # noqa: S102 - the candidate
    except BaseException as exc:  # noqa: BLE001 - SyntaxError, SystemExit included: reported once
        out.text(b"I", _candidate_traceback(exc, filename) or "".join(traceback.format_exception_only(exc)))
        return
    needed = list(dict.fromkeys(func for func, _ in calls))
    try:
        fns = {f: getattr(module, f, None) for f in needed}  # a module __getattr__ is the candidate's code
    except BaseException as exc:  # noqa: BLE001
        out.text(b"I", "looking up your functions raised:\n" + _candidate_traceback(exc, filename))
        return
    missing = [f for f, fn in fns.items() if not callable(fn)]
    if missing:
        defined = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
                         and getattr(v, "__module__", None) == "solution")
        out.text(b"I", f"your file defines no function {', '.join(missing)} (it defines: "
                       f"{', '.join(defined) or 'no functions'}); the exercise asks for {', '.join(needed)}")
        return
    for i, (func, args) in enumerate(calls):
        out.frame(b"P", struct.pack("<I", i))
        args = {k: (np.random.default_rng() if isinstance(v, tuple) and v == RNG else v) for k, v in args.items()}
        t0 = time.perf_counter()
        try:
            value = fns[func](**args)
        except BaseException as exc:  # noqa: BLE001
            out.frame(b"R", _error_payload(i, _candidate_traceback(exc, filename), time.perf_counter() - t0))
            continue
        elapsed = time.perf_counter() - t0
        try:
            payload = _result_payload(i, value, elapsed, np)
        except BaseException as exc:  # noqa: BLE001 - e.g. an array too large to copy under the memory limit
            payload = _error_payload(i, f"your result could not be sent back: {type(exc).__name__}: {exc}", elapsed)
        out.frame(b"R", payload)


def _error_payload(index: int, message: str, seconds: float) -> bytes:
    header = json.dumps({"i": index, "time": seconds, "error": message[-3000:], "arrays": []}).encode()
    return struct.pack("<I", len(header)) + header


# ----------------------------------------------------------------------------- the two processes
def worker(mode: str, spec: dict, out: Stream) -> None:
    site = spec["numpy_site"]  # in the jail it holds NumPy alone
    try:
        out.frame(b"W", drop_privileges(mode).encode())  # who runs the candidate: the judge reports it
        apply_limits(spec)
        os.chdir("/tmp" if mode != "none" else spec["tmp"])
        sys.path[:] = [p for p in sys.path if "site-packages" not in p and "dist-packages" not in p] + [site]
        request = pickle.load(os.fdopen(os.dup(0), "rb"))  # written by the judge: trusted (imports NumPy)
        os.dup2(os.open("/dev/null", os.O_RDONLY), 0)
    except Exception as exc:  # noqa: BLE001 - the sandbox, not the candidate, failed
        out.text(b"S", f"{type(exc).__name__}: {exc}")
        return
    try:
        run_candidate(request, out)
    except BaseException as exc:  # noqa: BLE001 - the candidate's objects broke the harness: its failure
        out.text(b"I", f"your code broke the judge's harness: {type(exc).__name__}: {exc}")
        return
    out.frame(b"E")


def main() -> int:
    mode, spec, result_fd, control_fd = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    try:
        os.setsid()  # kill(0, ...) from the candidate reaches only this session
    except OSError:
        pass  # already a session leader
    control = os.fdopen(control_fd, "w", buffering=1)
    if mode == "none":
        if sys.platform.startswith("linux"):
            _prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans come back to us, to be killed
        control.write("ready not isolated\n")
    else:
        try:
            where = build_jail(spec)
        except Exception as exc:  # noqa: BLE001 - any failure here means: no jail, fall back
            control.write(f"setup-failed {type(exc).__name__}: {exc}\n".replace("\n", " ").strip() + "\n")
            return 3
        _prctl(PR_SET_DUMPABLE, 0)  # our /proc entries stay closed to the worker
        control.write(f"ready {where}\n")
    pid = os.fork()
    if pid == 0:
        os.close(control_fd)
        try:
            worker(mode, spec, Stream(result_fd))
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()  # os._exit skips it: what the candidate printed must reach the judge
                except BaseException:  # noqa: BLE001, S110 - a closed or replaced stream
                    pass
            os._exit(0)
    for fd in (0, 1, 2, result_fd):
        os.close(fd)
    while True:
        try:
            done, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if done == pid:
            control.write(f"exit {os.waitstatus_to_exitcode(status)}\n")
            break
    if mode == "none":  # no PID namespace to tear down: kill what the candidate left behind
        _kill_descendants()
    return 0


def _kill_descendants() -> None:
    for _ in range(100):
        try:
            kids = open(f"/proc/self/task/{os.getpid()}/children").read().split()
        except OSError:
            return
        if not kids:
            return
        for k in kids:
            try:
                os.kill(int(k), signal.SIGKILL)
            except ProcessLookupError:
                pass
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        time.sleep(0.01)


if __name__ == "__main__":
    sys.exit(main())
