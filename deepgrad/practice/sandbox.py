"""Where a candidate's code runs: a jail built by the kernel, and a parent that trusts nothing coming back.

On Linux the candidate runs in fresh PID, mount, network, IPC and UTS namespaces (``unshare`` from
util-linux), inside a user namespace of its own, in a read-only minimal root that holds the interpreter,
its standard library and NumPy, nothing else: not deepgrad, not torch, no other site-packages, no home, no
progress database, no judge (``/proc`` shows the sandbox only), no network. When the judge runs as root the
candidate runs as ``nobody``; rootless, it runs without any capability. The first process of the namespace
supervises: when it exits the kernel kills everything the candidate started, ``setsid`` or not. Where
namespaces are unavailable the candidate runs under rlimits only, and every verdict says so.

The parent reads three pipes under one deadline: the candidate's output (kept bounded, control sequences
stripped), the result stream (see :mod:`deepgrad.practice._child`; sizes checked before anything is
allocated, every malformed byte a failure with a reason) and the supervisor's control line.

>>> from deepgrad.practice.sandbox import isolation
>>> isolation().isolated          # True where namespaces work
True
"""

from __future__ import annotations

import json
import os
import pickle
import selectors
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field

from .result_stream import BadStream, parse_stream, sanitize  # noqa: F401 - the sandbox's API

CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_child.py")
MAX_RESULT_BYTES = 64 << 20      # the whole result stream
MAX_OUTPUT_BYTES = 8 << 20       # what a candidate may print before it is stopped
ENV_MODE = "DEEPGRAD_PRACTICE_SANDBOX"  # auto (default) | root | userns | none


@dataclass
class Limits:
    """Resource limits of one judged run."""

    timeout: float = 10.0          # wall-clock seconds
    cpu: float | None = None       # CPU seconds (default: the timeout)
    memory_mb: int = 1024          # address space of the candidate's process
    file_mb: int = 16              # the largest file it may write (in its private /tmp)
    nproc: int = 64                # processes it may have at once


@dataclass
class Isolation:
    """How candidates run here: ``mode`` root | userns | none, and why. ``own_user_ns`` is False when the
    kernel refused the candidate a user namespace of its own (root mode still runs it as nobody)."""

    mode: str
    reason: str
    own_user_ns: bool = True

    @property
    def isolated(self) -> bool:
        return self.mode != "none"

    def describe(self) -> str:
        spaces = ("user, " if self.own_user_ns else "") + "PID, mount, network, IPC, UTS"
        if self.mode == "root":
            return (f"isolated: Linux namespaces ({spaces}) via unshare; the candidate runs as nobody in a read-only "
                    f"root holding only Python and NumPy")
        if self.mode == "userns":
            return (f"isolated: Linux namespaces ({spaces}) via unshare, rootless; the candidate runs without "
                    f"capabilities in a read-only root holding only Python and NumPy")
        return f"NOT ISOLATED ({self.reason}): the candidate ran with your user's rights under rlimits only"


_FAILED: dict[str, str] = {}  # mode -> why its jail could not be built in this process


def isolation() -> Isolation:
    """The isolation a check gets here (``DEEPGRAD_PRACTICE_SANDBOX`` may force a mode)."""
    wanted = os.environ.get(ENV_MODE, "auto").strip().lower() or "auto"
    if wanted not in ("auto", "root", "userns", "none"):
        return Isolation("none", f"{ENV_MODE}={wanted!r} is not one of auto, root, userns, none")
    if wanted == "none":
        return Isolation("none", f"{ENV_MODE}=none")
    if not sys.platform.startswith("linux"):
        return Isolation("none", f"{sys.platform} has no Linux namespaces")
    if shutil.which("unshare") is None:
        return Isolation("none", "the unshare command (util-linux) is not installed")
    mode = wanted if wanted != "auto" else ("root" if os.geteuid() == 0 else "userns")
    if mode == "root" and os.geteuid() != 0:
        return Isolation("none", f"{ENV_MODE}=root but the judge does not run as root")
    if mode in _FAILED:
        return Isolation("none", f"the {mode} jail could not be built: {_FAILED[mode]}")
    why = "the judge runs as root" if mode == "root" else "unprivileged user namespaces"
    return Isolation(mode, why if wanted == "auto" else f"{ENV_MODE}={wanted}")


@dataclass
class RunResult:
    """What came back from the sandbox."""

    status: str  # ok | file_error | timeout | cpu | crashed | no_result | bad_result | flood | sandbox | jail_failed
    results: list = field(default_factory=list)
    message: str = ""
    output: str = ""               # tail of what the candidate printed, control sequences stripped
    running: int | None = None     # the call in progress when the child died
    wall: float = 0.0
    isolation: Isolation = field(default_factory=lambda: Isolation("none", "not run"))
    namespace: str = ""            # the sandbox's PID namespace (pid:[inode]) when isolated
    identity: str = ""             # who ran the candidate: uid, capabilities, user namespace


# ----------------------------------------------------------------------------- running
def _numpy_site() -> str:
    import numpy

    return os.path.dirname(os.path.dirname(os.path.abspath(numpy.__file__)))


def _extra_files() -> list[str]:
    files = ["/etc/ld.so.cache"]
    libdir, soname = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME")
    if sysconfig.get_config_var("Py_ENABLE_SHARED") and libdir and soname:
        files.append(os.path.join(libdir, soname))
    return files


def _child_env() -> dict:
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp", "TMPDIR": "/tmp"}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[var] = "1"  # one thread: less address space reserved, and the CPU limit means what it says
    return env


def run(source: str, filename: str, calls: list[tuple[str, dict]], limits: Limits | None = None) -> RunResult:
    """Run ``func(**args)`` for each call of the candidate ``source`` in the sandbox; falls back (and says
    so) when the jail cannot be built here."""
    limits = limits or Limits()
    iso = isolation()
    res = _run_once(iso, source, filename, calls, limits)
    if res.status == "jail_failed":
        _FAILED[iso.mode] = res.message
        res = _run_once(isolation(), source, filename, calls, limits)
    return res


def _run_once(iso: Isolation, source: str, filename: str, calls: list, limits: Limits) -> RunResult:
    work = tempfile.mkdtemp(prefix="deepgrad-judge-")
    cpu = int(-(-(limits.cpu if limits.cpu is not None else limits.timeout) // 1))
    spec = {"mode": iso.mode, "root": os.path.join(work, "root"), "tmp": os.path.join(work, "tmp"),
            "numpy_site": _numpy_site(), "files": _extra_files(), "cpu": max(cpu, 1), "memory_mb": limits.memory_mb,
            "file_mb": limits.file_mb, "nproc": limits.nproc, "tmp_mb": max(limits.file_mb, 1)}
    if iso.mode == "none":  # NumPy alone on the path (the rest of site-packages stays off it)
        os.makedirs(os.path.join(work, "site"))
        os.makedirs(spec["tmp"])
        for name in ("numpy", "numpy.libs"):
            if os.path.isdir(os.path.join(spec["numpy_site"], name)):
                os.symlink(os.path.join(spec["numpy_site"], name), os.path.join(work, "site", name))
        spec["numpy_site"] = os.path.join(work, "site")
    else:
        os.makedirs(spec["root"])
    pipes = [os.pipe() for _ in range(3)]  # output, results, control
    try:
        with tempfile.TemporaryFile() as request:
            pickle.dump({"source": source, "filename": filename, "calls": calls}, request, pickle.HIGHEST_PROTOCOL)
            request.seek(0)
            python = os.path.realpath(sys.executable)
            argv = [python, "-I", "-S", "-B", CHILD, iso.mode, json.dumps(spec), str(pipes[1][1]), str(pipes[2][1])]
            if iso.mode != "none":
                user = ["--user", "--map-root-user"] if iso.mode == "userns" else []
                argv = ["unshare", *user, "--pid", "--fork", "--kill-child", "--mount", "--net", "--ipc", "--uts",
                        "--propagation", "private", *argv]
            t0 = time.perf_counter()
            proc = subprocess.Popen(argv, stdin=request, stdout=pipes[0][1], stderr=pipes[0][1], env=_child_env(),
                                    pass_fds=(pipes[1][1], pipes[2][1]), start_new_session=True, cwd=work)
        for _, w in pipes:
            os.close(w)
        reads, pipes = [r for r, _ in pipes], []
        got = _collect(proc, reads, limits.timeout, t0)  # closes the read ends
        wall = time.perf_counter() - t0
        return _outcome(iso, got, wall, limits, cpu)
    finally:
        for r, w in pipes:  # only when Popen failed
            os.close(r)
            os.close(w)
        shutil.rmtree(work, ignore_errors=True)


def _collect(proc: subprocess.Popen, fds: list[int], timeout: float, t0: float) -> dict:
    """Read output, results and control until all three close or the deadline passes."""
    out_fd, res_fd, ctl_fd = fds
    bufs = {out_fd: bytearray(), res_fd: bytearray(), ctl_fd: bytearray()}
    caps = {out_fd: MAX_OUTPUT_BYTES, res_fd: MAX_RESULT_BYTES, ctl_fd: 1 << 16}
    got = {"timed_out": False, "overflow": None, "output_bytes": 0}
    sel = selectors.DefaultSelector()
    for fd in fds:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    deadline = t0 + timeout
    try:
        while sel.get_map():
            left = deadline - time.perf_counter()
            if left <= 0:
                got["timed_out"] = True
                break
            for key, _ in sel.select(min(left, 0.5)):
                try:
                    chunk = os.read(key.fd, 1 << 16)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                buf = bufs[key.fd]
                buf += chunk
                if key.fd == out_fd:
                    got["output_bytes"] += len(chunk)
                    del buf[:-8192]  # only the tail is shown
                if key.fd == out_fd and got["output_bytes"] > caps[out_fd] or len(buf) > caps[key.fd]:
                    got["overflow"] = {out_fd: "output", res_fd: "results", ctl_fd: "control"}[key.fd]
                    sel.close()
                    break
            if got["overflow"]:
                break
    finally:
        sel.close()
        early = got["timed_out"] or got["overflow"] is not None
        if early:
            for fd in (res_fd, ctl_fd):  # what is already waiting in the pipes (who ran, which case) is kept
                while len(bufs[fd]) <= caps[fd]:
                    try:
                        chunk = os.read(fd, 1 << 16)
                    except (BlockingIOError, OSError):
                        break
                    if not chunk:
                        break
                    bufs[fd] += chunk
            # a writer blocked on a full pipe gets EPIPE now, instead of blocking its own exit
            for fd in fds:
                os.close(fd)
        _stop(proc, early)
        if not early:
            for fd in fds:
                os.close(fd)
    got.update(output=bytes(bufs[out_fd]), results=bytes(bufs[res_fd]), control=bytes(bufs[ctl_fd]),
               returncode=proc.returncode)
    return got


def _stop(proc: subprocess.Popen, stopped_early: bool) -> None:
    """The whole run ends here. The supervisor is killed first: its exit tears the namespace down (the kernel
    kills and reaps every process in it), and unshare, which reaps the supervisor, exits only after that."""
    if not stopped_early:
        try:
            proc.wait(timeout=2.0)  # its pipes closed: it is exiting
        except subprocess.TimeoutExpired:
            pass
    if proc.poll() is None:
        try:
            kids = open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()
        except OSError:
            kids = []
        for pid in map(int, kids):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            pass
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the rlimit-only fallback: the process group
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _outcome(iso: Isolation, got: dict, wall: float, limits: Limits, cpu: int) -> RunResult:
    control = got["control"].decode("utf-8", "replace").splitlines()
    res = RunResult("ok", output=sanitize(got["output"].decode("utf-8", "replace")), wall=wall, isolation=iso)
    if got["output_bytes"] > len(got["output"]):
        res.output = "..." + res.output
    ready = next((line for line in control if line.startswith(("ready", "setup-failed"))), None)
    if ready is None or ready.startswith("setup-failed"):
        if iso.isolated and not got["timed_out"]:
            why = ready[len("setup-failed "):] if ready else (f"unshare exited with status {got['returncode']}: "
                                                              f"{res.output.strip()[-300:]}")
            return RunResult("jail_failed", message=why, isolation=iso, wall=wall)
    if ready and iso.isolated:
        res.namespace = ready.split(" ", 1)[1] if " " in ready else ""
    exit_line = next((line for line in control if line.startswith("exit ")), None)
    code = int(exit_line.split()[1]) if exit_line and exit_line.split()[1].lstrip("-").isdigit() else None
    try:
        # After an overflow only the start matters (who ran, which case): the rest is not read at all.
        stream, bad = parse_stream(got["results"][:1 << 20] if got["overflow"] else got["results"]), None
    except BadStream as exc:  # what came before the fault still says who ran and which case
        stream, bad = None, str(exc)
        seen = exc.partial or {}
        res.running, res.identity = seen.get("running"), seen.get("identity") or ""
    if stream:
        res.running = stream["running"]
        res.identity = stream["identity"] or ""
    if got["overflow"]:
        stream = None
    if iso.isolated and res.identity and res.identity.rsplit(" ", 1)[-1] == os.readlink("/proc/self/ns/user"):
        res.isolation = Isolation(iso.mode, iso.reason, own_user_ns=False)
    if got["overflow"] == "output":
        res.status, res.message = "flood", f"printed more than {MAX_OUTPUT_BYTES >> 20} MB (printing in a loop?)"
    elif got["overflow"]:
        res.status, res.message = "bad_result", f"sent more than {MAX_RESULT_BYTES >> 20} MB of results"
    elif got["timed_out"]:
        res.status, res.message = "timeout", (f"time limit exceeded: still running after {limits.timeout:g} s "
                                              f"(an infinite loop, or a far too slow solution?)")
    elif code is not None and code < 0:
        sig = -code
        if sig in (signal.SIGXCPU, signal.SIGKILL) and wall >= 0.8 * cpu:
            res.status, res.message = "cpu", f"CPU time limit of {cpu} s exceeded (an infinite loop?)"
        elif sig == signal.SIGXFSZ:
            res.status, res.message = "crashed", f"wrote a file larger than {limits.file_mb} MB"
        else:
            what = {signal.SIGSEGV: "a segmentation fault", signal.SIGABRT: "an abort (SIGABRT)",
                    signal.SIGBUS: "a bus error", signal.SIGFPE: "a floating-point exception"}.get(sig)
            res.status, res.message = "crashed", f"your process crashed with {what or _signal_name(sig)}"
    elif bad is not None:
        res.status, res.message = "bad_result", f"your process sent back malformed results: {bad}"
    elif stream and stream["sandbox"]:
        res.status, res.message = "sandbox", f"the sandbox failed before your code ran: {stream['sandbox']}"
    elif stream and stream["file_error"]:
        res.status, res.message = "file_error", stream["file_error"]
    elif exit_line is None or not (stream and stream["ended"]):
        res.status = "no_result"
        res.message = (f"your process exited (status {code if code is not None else got['returncode']}) before "
                       f"reporting all its results (sys.exit / os._exit / a killed parent?)")
    else:
        res.results = [stream["results"].get(i) for i in range(max(stream["results"], default=-1) + 1)]
    return res


# ----------------------------------------------------------------------------- doctor
_PROBE = '''
import importlib.util
import json
import os
import socket


def probe(paths):
    seen = {"uid": os.getuid(), "root": sorted(os.listdir("/")),
            "processes": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}
    try:
        socket.create_connection(("192.0.2.1", 9), timeout=0.5).close()
        seen["connect"] = "connected"
    except OSError as exc:
        seen["connect"] = exc.strerror or type(exc).__name__
    seen["interfaces"] = [name for _, name in socket.if_nameindex()]
    seen["visible"] = {p: os.path.exists(p) for p in paths}
    seen["importable"] = {}
    for name in ("numpy", "deepgrad", "torch"):
        try:
            seen["importable"][name] = importlib.util.find_spec(name) is not None
        except ImportError:
            seen["importable"][name] = False
    seen["writable"] = []
    for d in ["/", "/tmp", "/usr/lib", "/opt"] + list(paths):
        try:
            with open(os.path.join(d, ".deepgrad-doctor"), "w"):
                pass
            os.unlink(os.path.join(d, ".deepgrad-doctor"))
            seen["writable"].append(d)
        except OSError:
            pass
    return json.dumps(seen)
'''


def _host_paths() -> list[str]:
    """Paths of this machine the candidate must not see: the deepgrad install, site-packages, home, progress."""
    import importlib.util

    from .store import default_path

    here, site = os.path.dirname(os.path.dirname(os.path.abspath(__file__))), _numpy_site()
    paths = [here, str(default_path())]
    paths += [os.path.join(site, n) for n in sorted(os.listdir(site)) if not n.startswith("numpy")][:6]
    home, python = os.path.expanduser("~"), os.path.realpath(sys.executable)
    try:  # the home's own files (the interpreter may live under it: that path alone is bound)
        paths += [os.path.join(home, n) for n in sorted(os.listdir(home))[:6]
                  if not python.startswith(os.path.join(home, n) + os.sep)]
    except OSError:
        pass
    try:
        spec = importlib.util.find_spec("torch")
        if spec and spec.origin:
            paths.append(os.path.dirname(spec.origin))
    except (ImportError, ValueError):
        pass
    return list(dict.fromkeys(paths))


def doctor() -> tuple[str, bool]:
    """Which isolation checks get here and why, verified by a probe run in the sandbox; (text, isolated)."""
    iso = isolation()
    lines = ["deepgrad practice doctor", f"isolation: {iso.describe()}", f"  why: {iso.reason}"]
    unshare = shutil.which("unshare")
    lines.append(f"  unshare: {unshare or 'not found'}")
    paths = _host_paths()
    res = run(_PROBE, "doctor_probe.py", [("probe", {"paths": paths})], Limits(timeout=20))
    if res.isolation != iso:  # the probe found out more: a jail that could not be built, no own user namespace
        lines[1] = f"isolation: {res.isolation.describe()}"
        if res.isolation.mode != iso.mode:
            lines.insert(2, f"  (the {iso.mode} jail could not be built: {res.isolation.reason})")
    if res.status != "ok" or not res.results or not res.results[0] or "value" not in res.results[0]:
        lines.append(f"the probe did not run: {res.status} {res.message}".rstrip())
        return "\n".join(lines), False
    seen = json.loads(res.results[0]["value"])
    imp = seen["importable"]
    lines += [f"probe run in the sandbox ({res.wall:.2f} s):",
              f"  runs as {res.identity or 'uid ' + str(seen['uid'])}"
              + (f", PID namespace {res.namespace}" if res.namespace else ""),
              f"  sees / = {' '.join(seen['root'])}",
              f"  processes it can see: {len(seen['processes'])} ({', '.join(map(str, seen['processes'][:8]))})",
              f"  network interfaces: {', '.join(seen['interfaces']) or 'none'}; connecting out: {seen['connect']}",
              "  importable: " + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in imp.items())]
    for path, visible in seen["visible"].items():
        lines.append(f"  {'VISIBLE' if visible else 'hidden '}  {path}")
    lines.append(f"  writable: {', '.join(seen['writable']) or 'nothing'}")
    sound = (res.isolation.isolated and imp.get("numpy") and not imp.get("deepgrad") and not imp.get("torch")
             and not any(seen["visible"].values()) and seen["writable"] == ["/tmp"]
             and seen["interfaces"] in ([], ["lo"]))
    lines.append("verdict: " + ("candidates are isolated here" if sound else
                                "candidates are NOT isolated here: every check says so"))
    return "\n".join(lines), bool(sound)
