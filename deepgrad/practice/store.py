"""Local progress in SQLite: attempts, hints, passes, time, and each item's FSRS card.

The database lives at ``$DEEPGRAD_HOME/practice.sqlite3`` (default ``~/.deepgrad``). Items are exercise
ids and quiz-card kinds (``card:<kind>``). Only the judge's parent process writes it, after a verdict,
each change one SQLite transaction; after every change a copy is taken (``practice.sqlite3.bak``, written
beside it and renamed into place). Opening checks the database's integrity: a damaged one is kept aside and
the last good copy restored, a missing one restored from it, and :attr:`Store.notice` says what happened.

>>> store = Store("/tmp/p.sqlite3")
>>> store.state("relu").passes
0
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from . import scheduler

_SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY, item TEXT NOT NULL, at TEXT NOT NULL, passed INTEGER NOT NULL, status TEXT NOT NULL,
    hints INTEGER NOT NULL, seconds REAL, cases_passed INTEGER, cases_total INTEGER, rating TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    item TEXT PRIMARY KEY, started_at TEXT, hints INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
    card TEXT, due TEXT, passes INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
    seconds REAL NOT NULL DEFAULT 0);
"""
# Columns added after the first release (an older database gains them when opened).
_ADDED = {"items": {"file": "TEXT", "solutions": "INTEGER NOT NULL DEFAULT 0"}}
_REQUIRED = {"attempts": {"item", "at", "passed", "status", "hints", "rating"},
             "items": {"item", "started_at", "hints", "failed", "card", "due", "passes", "attempts", "seconds"}}


def default_path() -> Path:
    home = os.environ.get("DEEPGRAD_HOME")
    return Path(home) if home else Path.home() / ".deepgrad"


@dataclass
class ItemState:
    item: str
    started_at: datetime | None
    hints: int           # hint levels revealed since the last pass
    failed: int          # failed checks since the last pass
    card: str | None     # FSRS card (JSON)
    due: datetime | None
    passes: int
    attempts: int
    seconds: float       # time from start to pass, summed over passes
    file: str | None = None   # the file `start` wrote
    solutions: int = 0        # reference solutions viewed since the last pass


def check_database(path: Path) -> str | None:
    """What is wrong with the database at ``path`` (None: it is sound)."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            result = db.execute("PRAGMA integrity_check").fetchone()
            if result is None or result[0] != "ok":
                return f"integrity check: {result[0] if result else 'no answer'}"
            for table, cols in _REQUIRED.items():
                have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                if not cols <= have:
                    return f"table {table} lacks {', '.join(sorted(cols - have))}"
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return None


class Store:
    """Progress of one user. ``Store()`` opens (and creates) the default database; ``notice`` says when it
    had to be restored."""

    def __init__(self, path: str | os.PathLike | None = None):
        if path is None:
            path = default_path() / "practice.sqlite3"
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.backup_path = path.with_name(path.name + ".bak")
        self.notice = ""
        self._recover()
        self.db = sqlite3.connect(str(path), timeout=10)
        self.db.executescript(_SCHEMA)
        self._migrate()
        if not self.backup_path.exists():
            self._backup()

    # -------------------------------------------------------------------------- integrity
    def _recover(self) -> None:
        problem = None
        if self.path.exists():
            problem = check_database(self.path)
            if problem is None:
                return
            kept = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(self.path, kept)
            for suffix in ("-journal", "-wal", "-shm"):  # a journal of the damaged file must not replay
                side = self.path.with_name(self.path.name + suffix)
                if side.exists():
                    os.replace(side, kept.with_name(kept.name + suffix))
            self.notice = f"the progress database {self.path} is damaged ({problem}); it is kept as {kept.name}. "
        elif self.backup_path.exists():
            self.notice = f"the progress database {self.path} is missing. "
        else:
            return  # the first use: nothing to restore
        bad_backup = check_database(self.backup_path) if self.backup_path.exists() else "there is none"
        if bad_backup is None:
            tmp = self.path.with_name(f".{self.path.name}.restore-{os.getpid()}")
            src, dst = sqlite3.connect(f"file:{self.backup_path}?mode=ro", uri=True), sqlite3.connect(str(tmp))
            with dst:
                src.backup(dst)
            src.close()
            dst.close()
            os.replace(tmp, self.path)
            taken = datetime.fromtimestamp(self.backup_path.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
            self.notice += f"Restored its last good copy ({self.backup_path.name}, {taken})."
        else:
            self.notice += f"No usable backup ({bad_backup}): starting a new, empty one."

    def _migrate(self) -> None:
        for table, cols in _ADDED.items():
            have = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            with self.db:
                for col, decl in cols.items():
                    if col not in have:
                        self.db.execute(f"ALTER TABLE {table} ADD COLUMN {col} {decl}")

    def _backup(self) -> None:
        """Copy the (just committed) database beside it, renamed into place: the last good copy."""
        tmp = self.backup_path.with_name(f".{self.backup_path.name}.{os.getpid()}.tmp")
        dst = sqlite3.connect(str(tmp))
        try:
            with dst:
                self.db.backup(dst)
        finally:
            dst.close()
        os.replace(tmp, self.backup_path)

    def close(self) -> None:
        self.db.close()

    # -------------------------------------------------------------------------- reading
    def _ensure(self, item: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO items (item) VALUES (?)", (item,))

    def state(self, item: str) -> ItemState:
        row = self.db.execute("SELECT item, started_at, hints, failed, card, due, passes, attempts, seconds, file, "
                              "solutions FROM items WHERE item = ?", (item,)).fetchone()
        if row is None:
            return ItemState(item, None, 0, 0, None, None, 0, 0, 0.0)
        return ItemState(row[0], _dt(row[1]), row[2], row[3], row[4], _dt(row[5]), row[6], row[7], row[8], row[9],
                         row[10])

    def all_states(self) -> dict[str, ItemState]:
        items = [r[0] for r in self.db.execute("SELECT item FROM items")]
        return {i: self.state(i) for i in items}

    def attempts(self, item: str | None = None) -> list[tuple]:
        q = "SELECT item, at, passed, status, hints, seconds, rating FROM attempts"
        rows = self.db.execute(q + (" WHERE item = ? ORDER BY id" if item else " ORDER BY id"),
                               (item,) if item else ()).fetchall()
        return rows

    def due(self, now: datetime) -> list[tuple[str, datetime]]:
        """Items whose card is due at ``now``, most overdue first."""
        out = []
        for item, st in self.all_states().items():
            if st.due is not None and st.due <= now:
                out.append((item, st.due))
        return sorted(out, key=lambda t: t[1])

    def retrievability(self, item: str, now: datetime) -> float:
        return scheduler.retrievability(self.state(item).card, now)

    # -------------------------------------------------------------------------- writing
    def start(self, item: str, now: datetime, file: str | None = None) -> None:
        """The clock of an item starts (kept if already running); ``file``: where its starter file is."""
        with self.db:
            self._ensure(item)
            self.db.execute("UPDATE items SET started_at = COALESCE(started_at, ?) WHERE item = ?",
                            (now.isoformat(), item))
            if file is not None:
                self.db.execute("UPDATE items SET file = ? WHERE item = ?", (file, item))
        self._backup()

    def take_hint(self, item: str, now: datetime) -> int:
        """Reveal one more hint level; returns how many are revealed now."""
        with self.db:
            self._ensure(item)
            self.db.execute("UPDATE items SET started_at = COALESCE(started_at, ?), hints = hints + 1 WHERE item = ?",
                            (now.isoformat(), item))
        self._backup()
        return self.state(item).hints

    def reveal_solution(self, item: str, now: datetime) -> None:
        """The reference solution was shown: not a check, but the next pass counts as Hard."""
        with self.db:
            self._ensure(item)
            self.db.execute("UPDATE items SET started_at = COALESCE(started_at, ?), solutions = solutions + 1 "
                            "WHERE item = ?", (now.isoformat(), item))
        self._backup()

    def record(self, item: str, passed: bool, status: str, now: datetime, cases_passed: int = 0,
               cases_total: int = 0, gave_up: bool = False) -> tuple[scheduler.Rating, datetime]:
        """Record a check (or a quiz answer) and review the item's FSRS card; returns the rating and next due."""
        st = self.state(item)
        help_taken = st.hints + st.solutions
        rating = scheduler.Rating.Again if gave_up else scheduler.rating_for(passed, help_taken, st.failed)
        card, due = scheduler.review(st.card, rating, now)
        seconds = (now - st.started_at).total_seconds() if (passed and st.started_at) else None
        with self.db:
            self._ensure(item)
            self.db.execute(
                "INSERT INTO attempts (item, at, passed, status, hints, seconds, cases_passed, cases_total, rating) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (item, now.isoformat(), int(passed), status, st.hints, seconds, cases_passed, cases_total, rating.name))
            if passed:  # a pass closes the round: the next review starts clean
                self.db.execute("UPDATE items SET hints = 0, failed = 0, solutions = 0, started_at = NULL, "
                                "passes = passes + 1, seconds = seconds + ? WHERE item = ?", (seconds or 0.0, item))
            else:
                self.db.execute("UPDATE items SET failed = failed + 1 WHERE item = ?", (item,))
            self.db.execute("UPDATE items SET card = ?, due = ?, attempts = attempts + 1 WHERE item = ?",
                            (card, due.isoformat(), item))
        self._backup()
        return rating, due


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
