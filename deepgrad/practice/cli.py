"""``deepgrad practice``: list, show, start, check, hint, solution, stats, next, quiz, grade, doctor.

Wired into the ``deepgrad`` command by :func:`add_practice_parser`; also runnable on its own as
``python -m deepgrad.practice``.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime

from .exercise import DIFFICULTY

GUIDE_TOPICS = ("deep-learning", "why-now", "prerequisites", "cnns", "cnn-architecture", "conv-parameters", "pooling",
                "rnns", "backprop", "cnn-vs-rnn", "applications", "overfitting", "transfer-learning", "gans",
                "transformers")


def add_practice_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``practice`` command (with its sub-commands) to an argparse ``subparsers`` object."""
    practice = subparsers.add_parser(
        "practice", help="coding exercises graded by a sandboxed judge, with spaced repetition",
        description="Implement the mechanisms of the interview guide yourself; a judge runs your file in a separate, "
                    "limited process on hidden, freshly drawn cases and grades it against deepgrad.")
    sub = practice.add_subparsers(dest="practice_command", metavar="ACTION", required=True)
    p = sub.add_parser("list", help="the exercises, with your progress")
    p.add_argument("--topic", help="only this guide topic")
    p.add_argument("--difficulty", type=int, choices=(1, 2, 3), help="1 easy, 2 medium, 3 hard")
    p = sub.add_parser("show", help="an exercise's statement")
    p.add_argument("id")
    p = sub.add_parser("start", help="write the starter file and start the clock")
    p.add_argument("id")
    p.add_argument("dir", nargs="?", default=".", help="where to write <id>.py (default: here)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p = sub.add_parser("check", help="judge your file on hidden cases")
    p.add_argument("id")
    p.add_argument("file", nargs="?", help="your solution (default: the file `start` wrote)")
    p.add_argument("--timeout", type=float, default=None, help="wall-clock limit in seconds")
    p = sub.add_parser("hint", help="the next hint (they come in levels)")
    p.add_argument("id")
    p = sub.add_parser("solution", help="the reference solution (asks first; the next pass then counts as Hard)")
    p.add_argument("id")
    p.add_argument("--yes", action="store_true", help="reveal without asking")
    p = sub.add_parser("grade", help="judge other people's submissions (one row per file; nothing is recorded)")
    p.add_argument("id")
    p.add_argument("paths", nargs="+", metavar="DIR_OR_FILE", help="solution files, or folders of .py files")
    p.add_argument("--csv", help="also write the rows to this CSV file")
    p.add_argument("--timeout", type=float, default=None, help="wall-clock limit per file in seconds")
    sub.add_parser("doctor", help="which isolation the judge uses here, and why (runs a probe in the sandbox)")
    sub.add_parser("stats", help="mastery per guide topic")
    sub.add_parser("next", help="what to practise now (spaced repetition)")
    p = sub.add_parser("quiz", help="predict-the-outcome items and concept cards (reads answers from stdin)")
    p.add_argument("-n", type=int, default=3, help="number of questions")
    p.add_argument("--kind", help="only this kind: conv-shape, param-count, vanishing-layer, frozen-params, concept")
    practice.set_defaults(handler=run)
    return practice


def run(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    """Dispatch a parsed ``practice`` command; returns the exit status."""
    from .exercises import get

    cmd = args.practice_command
    try:
        if getattr(args, "id", None) is not None:
            get(args.id)  # unknown ids fail early, with suggestions
        return _COMMANDS[cmd](args)
    except KeyError as exc:
        print(f"deepgrad practice: {exc.args[0]}", file=sys.stderr)
        return 2
    except (FileNotFoundError, FileExistsError, ValueError, IsADirectoryError, PermissionError) as exc:
        print(f"deepgrad practice {cmd}: {exc}", file=sys.stderr)
        return 2


def _store():
    from .store import Store

    store = Store()
    if store.notice:
        print(f"deepgrad practice: {store.notice}", file=sys.stderr)
    return store


def _now() -> datetime:
    from .scheduler import now_utc

    return now_utc()


def _ago(t: datetime, now: datetime) -> str:
    secs = (t - now).total_seconds()
    word = "in " if secs >= 0 else ""
    tail = "" if secs >= 0 else " ago"
    secs = abs(secs)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if secs >= size:
            return f"{word}{secs / size:.0f} {unit}{tail}"
    return "now"


def _status(st, now) -> str:
    if st is None or (st.attempts == 0 and st.hints == 0 and st.started_at is None):
        return "new"
    if st.passes:
        due = "due now" if st.due and st.due <= now else (f"review {_ago(st.due, now)}" if st.due else "")
        return f"passed x{st.passes}, {due}"
    return f"in progress ({st.attempts} check(s), {st.hints} hint(s))"


def cmd_list(args) -> int:
    from .exercises import all_exercises

    store, now = _store(), _now()
    states = store.all_states()
    rows = [ex for ex in all_exercises().values()
            if (args.topic is None or ex.topic == args.topic) and (args.difficulty is None
                                                                     or ex.difficulty == args.difficulty)]
    if not rows:
        print("no exercise matches")
        return 1
    width = max(len(ex.id) for ex in rows)
    print(f"{'id':<{width}}  {'level':<6}  {'topic':<17}  {'title':<58}  status")
    for ex in rows:
        print(f"{ex.id:<{width}}  {DIFFICULTY[ex.difficulty]:<6}  {ex.topic:<17}  {ex.title[:58]:<58}  "
              f"{_status(states.get(ex.id), now)}")
    print(f"\n{len(rows)} exercises. Start one with: deepgrad practice start <id>")
    return 0


def cmd_show(args) -> int:
    from .exercises import get

    ex = get(args.id)
    print(f"{ex.title}  [{ex.id}]")
    print(f"level: {DIFFICULTY[ex.difficulty]}   guide topic: {ex.topic} — \"{ex.question}\"\n")
    print(ex.statement)
    print(f"functions to write: {', '.join(ex.functions)}   ({len(ex.hints)} hint level(s))")
    print(f"start with: deepgrad practice start {ex.id}")
    return 0


def starter_file(ex) -> str:
    """The file ``start`` writes: the statement as a comment, then the starter code."""
    header = "\n".join(("# " + line).rstrip() for line in ex.statement.splitlines())
    return (f"# deepgrad practice: {ex.title} [{ex.id}]\n#\n{header}\n#\n"
            f"# Check: deepgrad practice check {ex.id}   (this file)   Hints: deepgrad practice hint {ex.id}\n\n"
            + ex.starter)


def cmd_start(args) -> int:
    from .exercises import get

    ex = get(args.id)
    os.makedirs(args.dir, exist_ok=True)
    path = os.path.join(args.dir, ex.id.replace("-", "_") + ".py")
    if os.path.exists(path) and not args.force:
        raise FileExistsError(f"{path} exists (use --force to overwrite)")
    with open(path, "w") as f:
        f.write(starter_file(ex))
    store = _store()
    store.start(ex.id, _now(), file=os.path.abspath(path))
    store.close()
    print(f"wrote {path}")
    print(f"implement {', '.join(ex.functions)} in it, then: deepgrad practice check {ex.id}")
    return 0


def _timeout(args) -> float | None:
    if args.timeout is not None and not args.timeout > 0:
        raise ValueError(f"--timeout must be a number of seconds > 0, got {args.timeout:g}")
    return args.timeout


def _default_file(ex) -> str:
    """The file `start` wrote for ``ex`` (else ./<id>.py when it exists)."""
    store = _store()
    written = store.state(ex.id).file
    store.close()
    local = ex.id.replace("-", "_") + ".py"
    for path in (written, local):
        if path and os.path.isfile(path):
            return path
    if written:
        raise FileNotFoundError(f"the file `start` wrote, {written}, is gone; pass your file: "
                                f"deepgrad practice check {ex.id} FILE")
    raise FileNotFoundError(f"no FILE given and no {local} here (`deepgrad practice start {ex.id}` writes one); "
                            f"pass your file: deepgrad practice check {ex.id} FILE")


def cmd_check(args) -> int:
    from .exercises import get
    from .judge import Limits, judge

    ex = get(args.id)
    path = args.file or _default_file(ex)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    limits = Limits(timeout=_timeout(args)) if args.timeout is not None else None
    verdict = judge(ex, path, limits)
    # The store is opened only now, after the verdict, and the attempt recorded BEFORE anything is printed:
    # a closed pipe (| head) cannot lose it.
    store, now = _store(), _now()
    rating, due = store.record(ex.id, verdict.passed, verdict.status, now, verdict.cases_passed, verdict.cases_total)
    store.close()
    if args.file is None:
        print(f"checking {path}")
    print(verdict.report)
    if verdict.passed:
        print(f"\nrecorded: {rating.name} — next review {_ago(due, now)}")
    else:
        print(f"\nrecorded a failed attempt. Stuck? deepgrad practice hint {ex.id}")
    return 0 if verdict.passed else 1


def cmd_hint(args) -> int:
    from .exercises import get

    ex = get(args.id)
    store = _store()
    shown = store.state(ex.id).hints
    if shown >= len(ex.hints):
        for i, h in enumerate(ex.hints):
            print(f"hint {i + 1}/{len(ex.hints)}: {h}")
        print(f"\nno more hints; deepgrad practice solution {ex.id} shows the reference")
        return 0
    level = store.take_hint(ex.id, _now())
    for i, h in enumerate(ex.hints[:level]):
        print(f"hint {i + 1}/{len(ex.hints)}: {h}")
    if level < len(ex.hints):
        print("\n(a pass after hints is recorded as Hard; ask again for the next level)")
    return 0


def cmd_solution(args) -> int:
    from .exercises import get

    ex = get(args.id)
    if not args.yes:
        if not sys.stdin.isatty():
            print(f"deepgrad practice solution: not revealing {ex.id}'s reference solution without a confirmation, "
                  f"and stdin is not a terminal to ask on; pass --yes to reveal it", file=sys.stderr)
            return 2
        reply = _ask(f"Reveal the reference solution of {ex.id}? Your next pass will count as Hard. [y/N] ")
        if not (reply or "").strip().lower().startswith("y"):
            print("not revealed")
            return 1
    store = _store()
    store.reveal_solution(ex.id, _now())  # not a check: no attempt, no review of the card
    store.close()
    print(ex.solution)
    print(f"# viewed: not counted as a check; your next pass of {ex.id} counts as Hard")
    return 0


def cmd_stats(args) -> int:
    from .exercises import all_exercises

    store, now = _store(), _now()
    states = store.all_states()
    by_topic: dict[str, list] = {}
    for ex in all_exercises().values():
        by_topic.setdefault(ex.topic, []).append(ex)
    print(f"{'guide topic':<18} {'exercises':>9} {'passed':>7} {'checks':>7} {'time':>8}  mastery")
    total_due = 0
    for topic in [t for t in GUIDE_TOPICS if t in by_topic] + [t for t in by_topic if t not in GUIDE_TOPICS]:
        exs = by_topic[topic]
        sts = [states.get(ex.id) for ex in exs]
        passed = sum(1 for s in sts if s and s.passes)
        checks = sum(s.attempts for s in sts if s)
        secs = sum(s.seconds for s in sts if s)
        # Only what was passed counts: a card reviewed after failures or a viewed solution is not mastery.
        mastery = sum(store.retrievability(ex.id, now) for ex, s in zip(exs, sts) if s and s.passes) / len(exs)
        total_due += sum(1 for s in sts if s and s.due and s.due <= now)
        bar = "#" * round(mastery * 20)
        print(f"{topic:<18} {len(exs):>9} {passed:>7} {checks:>7} {secs / 60:>6.1f}m  {bar:<20} {mastery:4.0%}")
    print("\nmastery = mean FSRS recall probability now of the topic's exercises, counting only exercises you have "
          "passed (0 for the others)")
    print(f"due now: {total_due}")
    return 0


def cmd_next(args) -> int:
    from .exercises import all_exercises

    store, now = _store(), _now()
    bank = all_exercises()
    due = [(i, d) for i, d in store.due(now) if i in bank]
    if due:
        item, when = due[0]
        print(f"due: {item} — {bank[item].title} (due {_ago(when, now)}; {len(due)} due in all)")
        print(f"deepgrad practice start {item} --force   (or check your earlier file)")
        return 0
    states = store.all_states()
    new = [ex for ex in bank.values() if ex.id not in states]
    if new:
        ex = sorted(new, key=lambda e: e.difficulty)[0]
        print(f"new: {ex.id} — {ex.title} ({DIFFICULTY[ex.difficulty]}, {ex.topic})")
        print(f"deepgrad practice start {ex.id}")
        return 0
    upcoming = sorted((s.due, i) for i, s in states.items() if s.due and i in bank)
    if upcoming:
        print(f"nothing due: next review {upcoming[0][1]} {_ago(upcoming[0][0], now)}")
    else:
        print("nothing due")
    return 0


def cmd_quiz(args) -> int:
    import numpy as np

    from . import cards

    rng = np.random.default_rng()
    kinds = list(cards.KINDS) + ["concept"]
    if args.kind and args.kind not in kinds:
        raise KeyError(f"no quiz kind {args.kind!r}; kinds: {', '.join(kinds)}")
    store, score = _store(), 0
    for q in range(args.n):
        kind = args.kind or kinds[int(rng.integers(len(kinds)))]
        card = cards.CONCEPTS[int(rng.integers(len(cards.CONCEPTS)))] if kind == "concept" else cards.predict(kind, rng)
        print(f"\n[{q + 1}/{args.n}] {card.prompt}")
        reply = _ask("> " if card.auto else "(think, then press Enter) ")
        if reply is None:
            break
        if card.auto:
            ok = card.grade(reply)
            print(("correct: " if ok else f"no: the answer is {card.answer}. ") + card.explanation)
        else:
            print(card.answer)
            ok = (_ask("did you know it? [y/N] ") or "").strip().lower().startswith("y")
        score += ok
        store.record(f"card:{kind}", ok, "quiz", _now())
    print(f"\n{score}/{args.n} right")
    return 0


def _ask(prompt: str) -> str | None:
    print(prompt, end="", flush=True)
    line = sys.stdin.readline()
    if not line:
        print()
        return None
    print(line.rstrip("\n") if not sys.stdin.isatty() else "", end="\n" if not sys.stdin.isatty() else "")
    return line


def cmd_grade(args) -> int:
    from .grade import grade, write_csv

    rows = grade(args.id, args.paths, timeout=_timeout(args), progress=print)
    if args.csv:
        write_csv(rows, args.csv)
        print(f"wrote {args.csv}")
    return 0


def cmd_doctor(args) -> int:
    from .sandbox import doctor

    text, ok = doctor()
    print(text)
    return 0 if ok else 1


_COMMANDS = {"list": cmd_list, "show": cmd_show, "start": cmd_start, "check": cmd_check, "hint": cmd_hint,
             "solution": cmd_solution, "stats": cmd_stats, "next": cmd_next, "quiz": cmd_quiz, "grade": cmd_grade,
             "doctor": cmd_doctor}


def main(argv: list[str] | None = None) -> int:
    """``python -m deepgrad.practice ...``: the same commands without the ``deepgrad`` wrapper."""
    parser = argparse.ArgumentParser(prog="deepgrad")
    add_practice_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["practice"] + list(sys.argv[1:] if argv is None else argv))
    try:
        return args.handler(args, parser)
    except BrokenPipeError:  # piped into `head`: the attempt is already recorded; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
