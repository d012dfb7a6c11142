"""Progress and spaced repetition (FSRS, driven by the judge's results), the CLI, and the cards."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from deepgrad.practice import all_exercises, cards
from deepgrad.practice.cli import add_practice_parser, main
from deepgrad.practice.scheduler import Rating, rating_for, retrievability, review
from deepgrad.practice.store import Store

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def test_rating_from_the_judge():
    assert rating_for(True, hints=0, failed_before=0) == Rating.Good
    assert rating_for(True, hints=2, failed_before=0) == Rating.Hard
    assert rating_for(True, hints=0, failed_before=1) == Rating.Hard
    assert rating_for(False, hints=0, failed_before=0) == Rating.Again


def test_fsrs_schedule_advances_across_sessions():
    """Clean passes push the next review further each session; a failure brings it back within minutes."""
    card, now, gaps = None, T0, []
    for _ in range(5):
        card, due = review(card, Rating.Good, now)
        gaps.append(due - now)
        now = due  # the user comes back exactly when due
    assert gaps[0] <= timedelta(minutes=10)          # learning step
    assert all(b > a for a, b in zip(gaps[1:], gaps[2:]))  # review intervals grow
    assert gaps[-1] > timedelta(days=30)
    lapsed, due = review(card, Rating.Again, now)
    assert due - now <= timedelta(minutes=10)        # relearning
    _, due_hard = review(card, Rating.Hard, now)
    _, due_good = review(card, Rating.Good, now)
    _, due_easy = review(card, Rating.Easy, now)
    assert due_hard < due_good < due_easy
    assert 0.85 < retrievability(card, now) <= 1.0   # due = recall probability at the desired retention 0.9
    assert retrievability(card, now + timedelta(days=365)) < retrievability(card, now)


def test_store_records_attempts_hints_and_schedule(tmp_path):
    s = Store(tmp_path / "p.sqlite3")
    s.start("relu", T0)
    r, due1 = s.record("relu", False, "failed", T0 + timedelta(minutes=3), 2, 8)
    assert r == Rating.Again and due1 - (T0 + timedelta(minutes=3)) <= timedelta(minutes=10)
    assert s.take_hint("relu", T0 + timedelta(minutes=4)) == 1
    r, due2 = s.record("relu", True, "passed", T0 + timedelta(minutes=9), 8, 8)
    assert r == Rating.Hard  # passed, but after a hint and a failure
    st = s.state("relu")
    assert st.passes == 1 and st.attempts == 2 and st.hints == 0 and st.failed == 0
    assert st.seconds == pytest.approx(9 * 60)
    # later sessions, each on the due date: clean first-try passes are Good and push reviews further out
    due, gaps = due2, []
    for _ in range(4):
        s.start("relu", due)
        r, nxt = s.record("relu", True, "passed", due + timedelta(minutes=1), 8, 8)
        assert r == Rating.Good
        gaps.append(nxt - due)
        due3, due = nxt, nxt
    assert all(b > a for a, b in zip(gaps, gaps[1:])) and gaps[-1] > timedelta(days=5)
    assert [a[6] for a in s.attempts("relu")] == ["Again", "Hard"] + ["Good"] * 4
    assert s.due(due3 - timedelta(seconds=1)) == [] and s.due(due3)[0][0] == "relu"
    s.close()
    assert Store(tmp_path / "p.sqlite3").state("relu").passes == 5  # persisted


def test_store_location_from_deepgrad_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPGRAD_HOME", str(tmp_path / "home"))
    s = Store()
    assert s.path == tmp_path / "home" / "practice.sqlite3" and s.path.exists()


def test_cli_new_user_flow(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEEPGRAD_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "relu" in out and "conv2d-backward" in out and f"{len(all_exercises())} exercises" in out
    assert main(["show", "relu"]) == 0 and "relu_backward" in capsys.readouterr().out
    assert main(["start", "relu", "work"]) == 0
    path = tmp_path / "work" / "relu.py"
    assert path.exists() and "def relu_forward" in path.read_text()
    assert main(["start", "relu", "work"]) == 2  # no silent overwrite
    capsys.readouterr()
    monkeypatch.chdir(tmp_path / "work")  # `check` without FILE finds the file `start` wrote, from anywhere
    assert main(["check", "relu"]) == 1
    out = capsys.readouterr().out
    assert f"checking {path}" in out and "FAILED" in out
    assert main(["hint", "relu"]) == 0 and "hint 1/" in capsys.readouterr().out
    path.write_text(all_exercises()["relu"].solution)
    monkeypatch.chdir(tmp_path)
    assert main(["check", "relu"]) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and "Hard" in out
    assert main(["stats"]) == 0
    out = capsys.readouterr().out
    assert "backprop" in out and "%" in out
    assert main(["next"]) == 0 and "new:" in capsys.readouterr().out
    assert main(["show", "relu-x"]) == 2 and "did you mean relu" in capsys.readouterr().err
    assert main(["solution", "sigmoid", "--yes"]) == 0 and "def sigmoid_forward" in capsys.readouterr().out
    assert main(["check", "sigmoid"]) == 2 and "no FILE given" in capsys.readouterr().err
    assert main(["check", "relu", "--timeout", "0"]) == 2 and "--timeout must be" in capsys.readouterr().err


def test_add_practice_parser_plugs_into_a_parent_parser():
    parser = argparse.ArgumentParser(prog="deepgrad")
    add_practice_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["practice", "check", "relu", "relu.py"])
    assert args.practice_command == "check" and args.file == "relu.py" and callable(args.handler)


def test_quiz_reads_answers_and_records(tmp_path, monkeypatch, capsys):
    import io

    monkeypatch.setenv("DEEPGRAD_HOME", str(tmp_path))
    monkeypatch.setattr("sys.stdin", io.StringIO("0\n0\n"))
    assert main(["quiz", "-n", "2", "--kind", "frozen-params"]) == 0
    assert "right" in capsys.readouterr().out
    assert Store(tmp_path / "practice.sqlite3").state("card:frozen-params").attempts == 2


@pytest.mark.parametrize("kind", list(cards.KINDS))
def test_predict_items_come_from_real_computations(kind):
    card = cards.predict(kind, np.random.default_rng(3))
    assert card.grade(card.answer) and not card.grade("-12345")
    again = cards.from_id(card.id)
    assert again.answer == card.answer and again.prompt == card.prompt


def test_predict_answers_match_the_formulas():
    c = cards.conv_shape((2, 3, 32, 30, 16, 5, 2, 1))
    assert c.answer == str((2, 16, (32 + 2 - 5) // 2 + 1, (30 + 2 - 5) // 2 + 1))
    assert cards.param_count((1, 3, 16, 3, )).answer == str((3 * 9 + 1) * 16)
    assert cards.param_count((3, 10, 20, 1)).answer == str(4 * 20 * (10 + 20 + 2))
    assert cards.frozen_params((8, 16, 4, 1)).answer == str((16 + 1) * 4)
    deep = cards.vanishing_layer((8, 12, 7))
    assert int(deep.answer) < 8  # in a deep sigmoid stack the smallest gradient is not at the output
    assert all(c.checker is None and c.answer for c in cards.CONCEPTS)


# ----------------------------------------------------------------------------- the store survives
def _history(path):
    s = Store(path)
    s.record("relu", True, "passed", T0, 8, 8)
    s.record("conv2d-forward", False, "failed", T0, 2, 6)
    s.close()


def test_a_damaged_database_is_reported_and_restored_from_its_last_good_copy(tmp_path):
    db = tmp_path / "practice.sqlite3"
    _history(db)
    data = bytearray(db.read_bytes())
    data[100:4096] = b"\xde\xad" * 1998  # a torn write across the first pages
    db.write_bytes(bytes(data))
    s = Store(db)
    assert "damaged" in s.notice and "Restored its last good copy" in s.notice
    assert s.state("relu").passes == 1 and s.state("conv2d-forward").attempts == 1
    assert list(tmp_path.glob("practice.sqlite3.damaged-*"))  # the damaged file is kept, not deleted
    s.close()
    assert Store(db).notice == ""  # sound again


def test_a_missing_database_is_restored_and_garbage_without_a_backup_starts_afresh(tmp_path):
    db = tmp_path / "practice.sqlite3"
    _history(db)
    db.unlink()
    s = Store(db)
    assert "missing" in s.notice and s.state("relu").passes == 1
    s.close()
    db.write_bytes(b"this is not a database" * 100)
    (tmp_path / "practice.sqlite3.bak").write_bytes(b"nor is this")
    s = Store(db)
    assert "damaged" in s.notice and "No usable backup" in s.notice and s.state("relu").passes == 0
    s.record("relu", False, "failed", T0)
    assert s.state("relu").attempts == 1


def test_an_old_database_gains_the_new_columns(tmp_path):
    import sqlite3

    db = tmp_path / "practice.sqlite3"
    con = sqlite3.connect(db)
    con.executescript(
        "CREATE TABLE attempts (id INTEGER PRIMARY KEY, item TEXT NOT NULL, at TEXT NOT NULL, passed INTEGER NOT NULL,"
        " status TEXT NOT NULL, hints INTEGER NOT NULL, seconds REAL, cases_passed INTEGER, cases_total INTEGER,"
        " rating TEXT NOT NULL);"
        "CREATE TABLE items (item TEXT PRIMARY KEY, started_at TEXT, hints INTEGER NOT NULL DEFAULT 0, failed INTEGER"
        " NOT NULL DEFAULT 0, card TEXT, due TEXT, passes INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL"
        " DEFAULT 0, seconds REAL NOT NULL DEFAULT 0);"
        "INSERT INTO items (item, passes, attempts) VALUES ('relu', 2, 3);")
    con.commit()
    con.close()
    s = Store(db)
    assert s.notice == "" and s.state("relu").passes == 2 and s.state("relu").file is None
    s.start("relu", T0, file="/x/relu.py")
    assert s.state("relu").file == "/x/relu.py"


def test_a_closed_pipe_does_not_lose_the_attempt(tmp_path):
    """`deepgrad practice check ... | head -1`: the attempt is recorded before anything is printed."""
    import os
    import subprocess
    import sys

    sol = tmp_path / "relu.py"
    sol.write_text(all_exercises()["relu"].solution)
    root = str(__import__("pathlib").Path(__file__).resolve().parents[1])
    env = dict(os.environ, DEEPGRAD_HOME=str(tmp_path / "home"), PYTHONPATH=root)
    cmd = f"{sys.executable} -m deepgrad practice check relu {sol} | head -c 6"
    out = subprocess.run(cmd, shell=True, capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout == "PASSED" and "Traceback" not in out.stderr and "Error" not in out.stderr, out.stderr
    # A long failure report (the candidate's output is shown) into a reader that is already gone: the first
    # write of the report fails, after the attempt was recorded.
    loud = tmp_path / "loud.py"
    loud.write_text("print('x' * 30000)\ndef relu_forward(x): return x\ndef relu_backward(x, grad_out): return x\n")
    out = subprocess.run(f"{sys.executable} -m deepgrad.practice check relu {loud} | true", shell=True,
                         capture_output=True, text=True, env=env, timeout=120)
    assert "Traceback" not in out.stderr, out.stderr
    s = Store(tmp_path / "home" / "practice.sqlite3")
    assert s.state("relu").passes == 1 and [a[2] for a in s.attempts("relu")] == [1, 0]


def test_solution_asks_first_and_is_not_a_check(tmp_path, monkeypatch, capsys):
    import io

    monkeypatch.setenv("DEEPGRAD_HOME", str(tmp_path))
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal
    assert main(["solution", "relu"]) == 2
    err = capsys.readouterr().err
    assert "stdin is not a terminal" in err and "--yes" in err
    tty = io.StringIO("n\n")
    tty.isatty = lambda: True
    monkeypatch.setattr("sys.stdin", tty)
    assert main(["solution", "relu"]) == 1 and "def relu_forward" not in capsys.readouterr().out
    tty = io.StringIO("y\n")
    tty.isatty = lambda: True
    monkeypatch.setattr("sys.stdin", tty)
    assert main(["solution", "relu"]) == 0 and "def relu_forward" in capsys.readouterr().out
    s = Store(tmp_path / "practice.sqlite3")
    st = s.state("relu")
    assert st.attempts == 0 and st.card is None and st.solutions == 1 and s.attempts() == []
    rating, _ = s.record("relu", True, "passed", T0)
    assert rating == Rating.Hard  # a pass after reading the solution is not a clean pass


def test_stats_count_as_mastered_only_what_was_passed(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEEPGRAD_HOME", str(tmp_path))
    s = Store(tmp_path / "practice.sqlite3")
    now = datetime.now(UTC)
    for _ in range(3):  # failed checks review the card: it has a recall probability, but nothing was passed
        s.record("conv2d-forward", False, "failed", now)
    s.close()
    assert main(["stats"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("cnns "))
    assert line.rstrip().endswith("0%") and " 0 " in line
    s = Store(tmp_path / "practice.sqlite3")
    s.record("conv2d-forward", True, "passed", now)
    s.close()
    assert main(["stats"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("cnns "))
    assert not line.rstrip().endswith(" 0%")


def test_grade_judges_every_submission_and_writes_a_csv(tmp_path, capsys):
    import csv

    subs = tmp_path / "subs"
    (subs / "nested").mkdir(parents=True)
    (subs / "alice.py").write_text(all_exercises()["relu"].solution)
    (subs / "bob.py").write_text("def relu_forward(x): return x\ndef relu_backward(x, g): return g\n")
    (subs / "nested" / "carol.py").write_text("def relu_forward(x) return x\n")
    (subs / "nested" / "dave.py").write_bytes(b"\xff\xfe not utf-8")
    (subs / "eve.py").write_text("raise ValueError('=HYPERLINK(\"http://x\")')\n")
    (subs / "notes.txt").write_text("not python")
    out_csv = tmp_path / "grades.csv"
    assert main(["grade", "relu", str(subs), "--csv", str(out_csv)]) == 0
    out = capsys.readouterr().out
    assert "1 of 5 submission(s) passed relu" in out
    rows = {os.path.basename(r["file"]): r for r in csv.DictReader(out_csv.open())}
    assert set(rows) == {"alice.py", "bob.py", "carol.py", "dave.py", "eve.py"}
    alice = rows["alice.py"]
    assert alice["verdict"] == "PASSED" and alice["cases_passed"] == alice["cases_total"]
    assert rows["bob.py"]["verdict"] == "FAILED" and rows["bob.py"]["reason"].startswith("case ")
    assert rows["carol.py"]["verdict"] == "FAILED" and "SyntaxError" in rows["carol.py"]["reason"]
    assert rows["dave.py"]["verdict"] == "ERROR" and "UTF-8" in rows["dave.py"]["reason"]
    assert rows["eve.py"]["reason"].startswith("ValueError") and rows["alice.py"]["isolated"] in ("yes", "no")
    assert not (tmp_path / "home").exists() or Store().attempts() == []  # grading records nothing
    assert oct(out_csv.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_grade_quotes_a_formula_in_a_csv_cell():
    from deepgrad.practice.grade import _cell

    assert _cell('=HYPERLINK("x")') == "'=HYPERLINK(\"x\")" and _cell("ok") == "ok" and _cell("a\nb") == "a b"


def test_check_from_a_notebook(tmp_path, monkeypatch):
    import importlib
    import linecache

    from deepgrad.practice import check

    good = all_exercises()["relu"].solution
    assert check("relu", good).passed  # source text
    mod_path = tmp_path / "my_relu.py"
    mod_path.write_text(good)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert check("relu", importlib.import_module("my_relu")).passed  # a module
    assert check("relu", str(mod_path)).passed  # a path
    # A notebook's namespace: cells are compiled under made-up file names that IPython keeps in linecache.
    cell = ("def relu_forward(x):\n    return np.maximum(x, 0)\n\n"
            "def relu_backward(x, grad_out):\n    return grad_out * (x > 0)\n")
    name = "<ipython-input-7-0123456789ab>"
    linecache.cache[name] = (len(cell), None, cell.splitlines(True), name)
    ns = {"__name__": "__main__", "np": np}
    exec(compile(cell, name, "exec"), ns)
    monkeypatch.setenv("DEEPGRAD_HOME", str(tmp_path / "home"))
    v = check("relu", ns, record=True)
    assert v.passed and "PASSED" in str(v)
    assert Store().state("relu").passes == 1
    with pytest.raises(TypeError, match="expected a module"):
        check("relu", 42)
