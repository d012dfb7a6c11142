"""Local progress in SQLite: attempts, hints, passes, time, and each item's FSRS card.

The database lives at ``$DEEPGRAD_HOME/practice.sqlite3`` (default ``~/.deepgrad``).
Items are exercise ids and quiz-card kinds (``card:<kind>``).
"""

from __future__ import annotations

import os
import sqlite3
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


class Store:
    """Progress of one user. ``Store()`` opens (and creates) the default database."""

    def __init__(self, path: str | os.PathLike | None = None):
        if path is None:
            path = default_path() / "practice.sqlite3"
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(str(path))
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def _ensure(self, item: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO items (item) VALUES (?)", (item,))

    def state(self, item: str) -> ItemState:
        row = self.db.execute("SELECT item, started_at, hints, failed, card, due, passes, attempts, seconds FROM items "
                              "WHERE item = ?", (item,)).fetchone()
        if row is None:
            return ItemState(item, None, 0, 0, None, None, 0, 0, 0.0)
        return ItemState(row[0], _dt(row[1]), row[2], row[3], row[4], _dt(row[5]), row[6], row[7], row[8])

    def all_states(self) -> dict[str, ItemState]:
        items = [r[0] for r in self.db.execute("SELECT item FROM items")]
        return {i: self.state(i) for i in items}

    def start(self, item: str, now: datetime) -> None:
        """The clock of an item starts (kept if already running)."""
        with self.db:
            self._ensure(item)
            self.db.execute("UPDATE items SET started_at = COALESCE(started_at, ?) WHERE item = ?",
                            (now.isoformat(), item))

    def take_hint(self, item: str, now: datetime) -> int:
        """Reveal one more hint level; returns how many are revealed now."""
        with self.db:
            self.start(item, now)
            self.db.execute("UPDATE items SET hints = hints + 1 WHERE item = ?", (item,))
        return self.state(item).hints

    def record(self, item: str, passed: bool, status: str, now: datetime, cases_passed: int = 0,
               cases_total: int = 0, gave_up: bool = False) -> tuple[scheduler.Rating, datetime]:
        """Record a check (or a quiz answer) and review the item's FSRS card; returns the rating and next due."""
        st = self.state(item)
        rating = scheduler.Rating.Again if gave_up else scheduler.rating_for(passed, st.hints, st.failed)
        card, due = scheduler.review(st.card, rating, now)
        seconds = (now - st.started_at).total_seconds() if (passed and st.started_at) else None
        with self.db:
            self._ensure(item)
            self.db.execute(
                "INSERT INTO attempts (item, at, passed, status, hints, seconds, cases_passed, cases_total, rating) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (item, now.isoformat(), int(passed), status, st.hints, seconds, cases_passed, cases_total, rating.name))
            if passed:  # a pass closes the round: the next review starts clean
                self.db.execute("UPDATE items SET hints = 0, failed = 0, started_at = NULL, passes = passes + 1, "
                                "seconds = seconds + ? WHERE item = ?", (seconds or 0.0, item))
            else:
                self.db.execute("UPDATE items SET failed = failed + 1 WHERE item = ?", (item,))
            self.db.execute("UPDATE items SET card = ?, due = ?, attempts = attempts + 1 WHERE item = ?",
                            (card, due.isoformat(), item))
        return rating, due

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


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
