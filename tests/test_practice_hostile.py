"""Hostile submissions against the real judge and the real `deepgrad practice check`: each class of attack a
tester used to fool it (reading the reference, deepgrad or torch in a helper process, writing to the install
or site-packages, touching the progress store, detached processes, fork bombs, flooding or forging the result
channel, stopping the parent, the five-line file that runs deepgrad's own reference). Every one must end in a
FAILED verdict with a reason, nothing recorded as passed, the database intact, no process left and the install
unchanged. A few attacks are also run without isolation, where they do succeed: proof that they are real."""

from __future__ import annotations

import hashlib
import importlib
import os
import resource
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

import deepgrad
from deepgrad.practice import judge_source
from deepgrad.practice import sandbox as sandbox_mod
from deepgrad.practice.cli import main
from deepgrad.practice.store import Store, check_database

judge_mod = importlib.import_module("deepgrad.practice.judge")
PACKAGE = Path(deepgrad.__file__).resolve().parent
SITE = Path(sandbox_mod._numpy_site())

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or sandbox_mod.shutil.which("unshare") is None,
                                reason="the jail needs Linux and util-linux's unshare")


def _fingerprint() -> str:
    """deepgrad's files (content), site-packages' entries (names) and its .pth files (content)."""
    h = hashlib.sha256()
    for f in sorted(PACKAGE.rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(str(f).encode() + f.read_bytes())
    for entry in sorted(os.listdir(SITE)):
        h.update(entry.encode())
        if entry.endswith(".pth"):
            h.update((SITE / entry).read_bytes())
    return h.hexdigest()


def _uptime() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])


def _survivors(namespace: str, before: float) -> list[int]:
    """Processes still in the sandbox's PID namespace that started before the check returned (a later namespace
    may reuse the inode number: its processes start later)."""
    tick, out = os.sysconf("SC_CLK_TCK"), []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/ns/pid") != namespace:
                continue
            start = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]) / tick
        except (OSError, ValueError, IndexError):
            continue
        if start <= before:
            out.append(int(pid))
    return out


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A user with some history, the install's fingerprint, and every sandbox run of the test recorded."""
    home = tmp_path / "home"
    monkeypatch.setenv("DEEPGRAD_HOME", str(home))
    monkeypatch.delenv(sandbox_mod.ENV_MODE, raising=False)
    store = Store()
    store.record("relu", False, "failed", datetime.now(UTC))
    store.close()
    runs = []
    real = judge_mod.run_sandboxed

    def recording(*a, **k):
        res = real(*a, **k)
        runs.append(res)
        return res

    monkeypatch.setattr(judge_mod, "run_sandboxed", recording)
    assert sandbox_mod.isolation().isolated, sandbox_mod.isolation().describe()
    return {"home": home, "db": home / "practice.sqlite3", "runs": runs, "tmp": tmp_path, "before": _fingerprint()}


def _attack(world, capsys, exercise: str, source: str, *extra: str) -> str:
    """Submit through the real CLI; assert the verdict, the store, the processes and the install."""
    path = world["tmp"] / "attack.py"
    path.write_text(textwrap.dedent(source).replace("@DB@", str(world["db"])).replace("@PKG@", str(PACKAGE))
                    .replace("@SITE@", str(SITE)))
    t0 = time.perf_counter()
    rc = main(["check", exercise, str(path), *extra])
    wall = time.perf_counter() - t0
    out = capsys.readouterr().out
    end = _uptime()
    run = world["runs"][-1]
    assert rc == 1 and out.startswith("FAILED"), out
    assert "recorded a failed attempt" in out
    assert run.isolation.isolated and run.namespace.startswith("pid:["), run
    assert "capabilities 0000000000000000" in run.identity and run.isolation.own_user_ns, run.identity
    assert os.geteuid() != 0 or run.identity.startswith("uid 65534"), run.identity  # root's candidates: nobody
    assert _survivors(run.namespace, end) == [], "processes of the check outlived it"
    assert check_database(world["db"]) is None
    store = Store()
    assert store.notice == "" and all(not s.passes for s in store.all_states().values())
    assert all(a[2] == 0 for a in store.attempts())
    store.close()
    assert _fingerprint() == world["before"], "the install or site-packages changed"
    assert wall < 30
    return out


# ----------------------------------------------------------------------------- cheating
FIND_REFERENCE = """
    import os, re, sys
    ROOTS = []
    for pid in os.listdir("/proc"):  # where the processes it can see work first: the judge's, unless jailed
        try:
            ROOTS.append(os.readlink(f"/proc/{pid}/cwd"))
        except OSError:
            pass
    ROOTS = [r for r in ROOTS if r != "/"] + [os.getcwd()] + sys.path + ["/work", "/root", "/home", "/opt", "/tmp"]
    FOUND = None
    for top in dict.fromkeys(ROOTS):
        for dirpath, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if d not in ("proc", "sys", "usr", ".git", "node_modules", ".cache", ".venv",
                                                    "site-packages", ".pyenv")]
            if dirpath.endswith(os.path.join("practice", "exercises")) and "activations.py" in files:
                FOUND = os.path.join(dirpath, "activations.py")
                break
        if FOUND:
            break
    if FOUND:
        text = open(FOUND).read()
        code = re.search(r'id="relu".*?solution=src\\(\"\"\"(.*?)\"\"\"\\)', text, re.S).group(1)
        exec(__import__("textwrap").dedent(code))
    """


def test_reading_the_reference_from_disk_fails(world, capsys):
    out = _attack(world, capsys, "relu", FIND_REFERENCE)
    assert "defines no function relu_forward" in out


FIVE_LINES = """
    import glob, os, sys
    def env(p):
        try: return open(p, "rb").read().decode("latin1").replace("PYTHONPATH=", "\\0").split("\\0")
        except OSError: return []
    sys.meta_path[:] = [m for m in sys.meta_path if "Blocker" not in type(m).__name__]
    sys.path += [l for p in glob.glob("/proc/*/environ") for l in env(p) if l.startswith("/") and os.path.isdir(l
                 + "/deepgrad")] + glob.glob("/*/*/.venv/lib/python3*/site-packages")
    def __getattr__(name, _cache={}):
        from deepgrad.practice.exercises import all_exercises
        exec(next(e for e in all_exercises().values() if name in e.outputs).solution, _cache); return _cache[name]
    """


@pytest.mark.parametrize("exercise", ["relu", "conv2d-forward", "lstm-cell"])
def test_the_five_line_file_that_runs_deepgrads_reference_fails(world, capsys, exercise):
    out = _attack(world, capsys, exercise, FIVE_LINES)
    assert "ModuleNotFoundError: No module named 'deepgrad'" in out


def test_the_cheats_are_real_they_pass_without_isolation(world, monkeypatch):
    """The same files pass when the candidate is not isolated (here on purpose): the attacks are real, the jail
    is what stops them. (The PYTHONPATH the tests run with is how the five-line file finds deepgrad.)"""
    monkeypatch.setenv(sandbox_mod.ENV_MODE, "none")
    v = judge_source("relu", textwrap.dedent(FIND_REFERENCE), "cheat.py")
    assert v.passed and not v.isolated and "NOT ISOLATED" in v.report, v.report
    if os.environ.get("PYTHONPATH", "").split(":")[0] and os.path.isdir(os.environ["PYTHONPATH"].split(":")[0]
                                                                         + "/deepgrad"):
        v = judge_source("softmax", textwrap.dedent(FIVE_LINES), "cheat.py")
        assert v.passed and "NOT ISOLATED" in v.report, v.report


HELPER = """
    import glob, os, subprocess, sys
    import numpy as np
    PATHS = ["@PKG@/..", "@SITE@"] + glob.glob("/*/*/.venv/lib/python3*/site-packages")
    PATHS += glob.glob("/usr/lib/python3/dist-packages")
    env = dict(os.environ, PYTHONPATH=":".join(PATHS))
    def relu_forward(x):
        for python in (sys.executable, "/usr/bin/python3", "python3"):
            try:
                r = subprocess.run([python, "-c", "import sys, numpy as np, torch; x = np.load(sys.stdin.buffer); "
                                    "np.save(sys.stdout.buffer, torch.relu(torch.from_numpy(x)).numpy())"],
                                   input=__import__("pickle").dumps(0), capture_output=True, env=env, timeout=5)
            except (OSError, subprocess.SubprocessError) as exc:
                print("helper:", exc)
                continue
            print("helper:", r.returncode, r.stderr.decode()[-200:])
        for mod in ("torch", "deepgrad"):
            r = subprocess.run([sys.executable, "-c", f"import {mod}"], capture_output=True, env=env)
            assert r.returncode == 0, f"no {mod} in a helper: " + r.stderr.decode()[-120:]
        return x
    def relu_backward(x, grad_out):
        return grad_out
    """


def test_torch_or_deepgrad_in_a_helper_process_fails(world, capsys):
    out = _attack(world, capsys, "relu", HELPER)
    assert "no torch in a helper" in out and "ModuleNotFoundError" in out


# ----------------------------------------------------------------------------- damage
WRITER = """
    import glob, os, sys, sqlite3
    targets = ["@PKG@/practice/judge.py", "@PKG@/__init__.py", "@SITE@/zzz_evil.pth", "@SITE@/numpy/__init__.py"]
    targets += [os.path.join(p, "zzz_evil.pth") for p in sys.path] + [p + "/sitecustomize.py" for p in sys.path]
    targets += glob.glob("/opt/*/*/numpy/__init__.py") + glob.glob(sys.prefix + "/lib/python3*/os.py")
    for t in targets:
        try:
            with open(t, "a") as f:
                f.write("\\nimport os; os.environ['DEEPGRAD_PWNED'] = '1'\\n")
            print("WROTE", t)
        except OSError as exc:
            print("refused", t, exc.strerror)
    for mount in ("/", "/opt", "/usr/lib"):
        try:
            import ctypes
            rc = ctypes.CDLL(None).mount(None, mount.encode(), None, 32 | 4096, None)   # remount read-write
            print("remount", mount, rc)
        except OSError as exc:
            print("remount refused", exc)
    """


def test_writing_to_the_install_or_site_packages_fails(world, capsys):
    out = _attack(world, capsys, "relu", WRITER)
    assert "WROTE /tmp" not in out and "WROTE @" not in out
    assert not [line for line in out.splitlines() if line.strip().startswith("WROTE") and "/tmp/" not in line], out
    assert not list(SITE.glob("zzz_evil.pth")) and "DEEPGRAD_PWNED" not in os.environ


STORE = """
    import glob, os, sqlite3
    homes = ["@DB@"]
    for env in glob.glob("/proc/*/environ"):
        try:
            for kv in open(env, "rb").read().decode("latin1").split("\\0"):
                if kv.startswith(("DEEPGRAD_HOME=", "HOME=")):
                    homes.append(kv.split("=", 1)[1] + "/practice.sqlite3")
                    homes.append(kv.split("=", 1)[1] + "/.deepgrad/practice.sqlite3")
        except OSError:
            pass
    for db in homes:
        try:
            c = sqlite3.connect(f"file:{db}?mode=rw", uri=True)
            c.execute("UPDATE items SET passes = 99")
            c.execute("INSERT INTO attempts (item, at, passed, status, hints, rating) "
                      "VALUES ('relu', 'x', 1, 'passed', 0, 'Good')")
            c.commit()
            print("EDITED", db)
        except Exception as exc:
            print("refused", db, exc)
        try:
            open(db, "wb").write(b"garbage")
            print("CLOBBERED", db)
        except OSError as exc:
            print("refused", db, exc.strerror)
    """


def test_touching_the_progress_store_fails(world, capsys):
    out = _attack(world, capsys, "relu", STORE)
    hits = [line for line in out.splitlines() if line.strip().startswith(("EDITED", "CLOBBERED"))]
    assert all(line.split()[1].startswith("/tmp/") for line in hits), hits  # its own private /tmp at most
    assert f"refused {world['db']}" in out


DETACHED = """
    import os, sqlite3, time
    def later():
        time.sleep(1.0)
        try:
            c = sqlite3.connect("@DB@"); c.execute("UPDATE items SET passes = 99"); c.commit()
        except Exception:
            pass
        open("@DB@", "wb").write(b"late garbage")
    for how in ("double", "setsid"):
        if os.fork() == 0:
            os.setsid()
            if how == "double" and os.fork() != 0:
                os._exit(0)
            later()
            os._exit(0)
    """


def test_detached_processes_do_not_outlive_the_check(world, capsys):
    _attack(world, capsys, "relu", DETACHED)
    time.sleep(1.5)  # when the detached writers would have run
    assert check_database(world["db"]) is None and Store().state("relu").passes == 0


FORK_BOMB = """
    import os
    def relu_forward(x):
        while True:
            try:
                if os.fork() == 0:
                    os.setsid()
            except OSError:
                pass
    def relu_backward(x, grad_out):
        return grad_out
    """


def test_a_fork_bomb_is_contained(world, capsys):
    t0 = time.perf_counter()
    out = _attack(world, capsys, "relu", FORK_BOMB, "--timeout", "2")
    assert "time limit" in out or "CPU time limit" in out
    assert time.perf_counter() - t0 < 12


# ----------------------------------------------------------------------------- the result channel
FLOOD_RESULTS = """
    import os, sys
    chunk = b"R" + (2**32 - 1).to_bytes(4, "little") + b"\\0" * (1 << 20)
    def relu_forward(x):
        for fd in [int(sys.argv[3])] + list(range(3, 64)):   # the result pipe's number is in argv
            try:
                while True:
                    os.write(fd, chunk)
            except OSError:
                pass
    def relu_backward(x, grad_out):
        return grad_out
    """

FLOOD_OUTPUT = """
    import sys
    def relu_forward(x):
        while True:
            sys.stdout.write("\\x1b[2J\\x1b]0;PASSED\\x07 PASSED relu " * 1000)
    def relu_backward(x, grad_out):
        return grad_out
    """

FORGED = """
    import json, os, struct, sys
    def frame(kind, payload):
        return kind + struct.pack("<I", len(payload)) + payload
    def forge(shape, dtype="<f8", body=b""):
        head = json.dumps({"i": 0, "time": 0, "value": {"t": "nd", "k": 0},
                           "arrays": [{"dtype": dtype, "shape": shape}]}).encode()
        return frame(b"R", struct.pack("<I", len(head)) + head + body)
    BOMBS = [forge([2**39]), forge([10**6, 10**6], "|O"), frame(b"R", b"\\xff" * 3),
             frame(b"Z", b"PK\\x03\\x04" + b"\\0" * 100), forge([2, 2], body=b"\\0" * 31),
             frame(b"R", struct.pack("<I", 40) + b"[" * 40)]
    def relu_forward(x):
        os.write(int(sys.argv[3]), BOMBS[CHOICE])
        os._exit(0)
    def relu_backward(x, grad_out):
        return grad_out
    """


def test_flooding_the_result_channel_fails_with_a_bounded_judge(world, capsys):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = _attack(world, capsys, "relu", FLOOD_RESULTS)
    assert "more than 64 MB of results" in out or "malformed results" in out
    out = _attack(world, capsys, "relu", FLOOD_OUTPUT)
    assert "printed more than" in out and "\x1b" not in out and "\x07" not in out
    grew_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) / 1024
    assert grew_mb < 400, f"the judge grew by {grew_mb:.0f} MB"


@pytest.mark.parametrize("choice", range(6))
def test_forged_or_bombed_results_are_a_failure_with_a_reason(world, capsys, choice):
    out = _attack(world, capsys, "relu", FORGED.replace("CHOICE", str(choice)))
    assert "malformed results" in out, out
    assert "Traceback" not in out.split("your program")[0]


RESULT_FD = """
    import os, sys
    fd = os.open("/tmp", os.O_RDONLY | os.O_DIRECTORY)
    os.dup2(fd, int(sys.argv[3]))       # the result channel is now a directory
    """


def test_a_result_channel_replaced_by_a_directory_fails(world, capsys):
    out = _attack(world, capsys, "relu", RESULT_FD)
    assert "before reporting all its results" in out or "malformed" in out


STOP_PARENT = """
    import os, signal
    def relu_forward(x):
        for target in (os.getppid(), 1, 0, -1):
            for sig in (signal.SIGSTOP, signal.SIGKILL):
                try:
                    os.kill(target, sig) if target != 0 or sig == signal.SIGSTOP else None
                except OSError as exc:
                    print("kill", target, sig, exc.strerror)
        return x
    def relu_backward(x, grad_out):
        return grad_out
    """


def test_stopping_or_killing_the_parent_fails_without_hanging_the_judge(world, capsys):
    t0 = time.perf_counter()
    out = _attack(world, capsys, "relu", STOP_PARENT, "--timeout", "2")
    assert time.perf_counter() - t0 < 12
    assert "time limit" in out or "crashed" in out or "before reporting" in out, out
