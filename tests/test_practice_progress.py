"""Progress and spaced repetition (FSRS, driven by the judge's results), the CLI, and the cards."""

from __future__ import annotations

import argparse
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
    assert main(["check", "relu", str(path)]) == 1
    assert "FAILED" in capsys.readouterr().out
    assert main(["hint", "relu"]) == 0 and "hint 1/" in capsys.readouterr().out
    path.write_text(all_exercises()["relu"].solution)
    assert main(["check", "relu", str(path)]) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and "Hard" in out
    assert main(["stats"]) == 0
    out = capsys.readouterr().out
    assert "backprop" in out and "%" in out
    assert main(["next"]) == 0 and "new:" in capsys.readouterr().out
    assert main(["show", "relu-x"]) == 2 and "did you mean relu" in capsys.readouterr().err
    assert main(["solution", "sigmoid"]) == 0 and "def sigmoid_forward" in capsys.readouterr().out


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
