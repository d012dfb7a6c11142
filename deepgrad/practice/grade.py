"""Grade other people's submissions: every file judged in the same sandbox, one row each, nothing recorded.

>>> import os
>>> from deepgrad.practice import get
>>> from deepgrad.practice.grade import grade, write_csv
>>> os.makedirs("submissions")
>>> solution = get("relu").solution
>>> for name, source in [("ada.py", solution), ("bob.py", solution.replace("np.maximum(x, 0)", "x"))]:
...     with open(os.path.join("submissions", name), "w") as f:
...         _ = f.write(source)
>>> rows = grade("relu", ["submissions/"])          # every .py file under submissions/
>>> [(row.file, row.verdict) for row in rows]
[('submissions/ada.py', 'PASSED'), ('submissions/bob.py', 'FAILED')]
>>> write_csv(rows, "relu-grades.csv")
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .judge import Limits, judge

COLUMNS = ("file", "verdict", "cases_passed", "cases_total", "seconds", "isolated", "reason")


@dataclass
class Row:
    """One graded file."""

    file: str
    verdict: str           # PASSED | FAILED | ERROR (the file could not be judged at all)
    cases_passed: int
    cases_total: int
    seconds: float
    isolated: bool
    reason: str

    def line(self) -> str:
        tail = f"  {self.reason}" if self.reason else ""
        return (f"{self.verdict:<6}  {self.cases_passed:>3}/{self.cases_total:<3} {self.seconds:6.2f} s  "
                f"{self.file}{tail}")


def submission_files(paths: list[str]) -> list[str]:
    """The files to grade: each file given, and every .py file under each folder given (sorted)."""
    files: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            files += sorted(str(f) for f in Path(p).rglob("*.py") if f.is_file())
        elif os.path.isfile(p):
            files.append(p)
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    if not files:
        raise FileNotFoundError(f"no .py files in {', '.join(paths)}")
    return files


def grade(exercise: str, paths: list[str], timeout: float | None = None,
          progress: Callable[[str], None] | None = None) -> list[Row]:
    """Judge every submission of ``exercise`` found in ``paths``; one :class:`Row` per file."""
    from .exercises import get
    from .sandbox import isolation

    ex = get(exercise)
    files = submission_files(paths)
    iso = isolation()
    if progress and not iso.isolated:
        progress(f"WARNING: {iso.describe()}. Submissions from other people can read and change your files.")
    rows = []
    for path in files:
        try:
            v = judge(ex, path, Limits(timeout=timeout) if timeout is not None else None)
            row = Row(path, "PASSED" if v.passed else "FAILED", v.cases_passed, v.cases_total, round(v.wall, 3),
                      v.isolated, v.reason)
        except (OSError, ValueError) as exc:  # unreadable, not UTF-8, too large: a row, not a crash
            row = Row(path, "ERROR", 0, 0, 0.0, iso.isolated, str(exc))
        rows.append(row)
        if progress:
            progress(row.line())
    if progress:
        passed = sum(r.verdict == "PASSED" for r in rows)
        progress(f"\n{passed} of {len(rows)} submission(s) passed {ex.id}")
    return rows


def _cell(value) -> str:
    """A CSV cell a spreadsheet will not run as a formula (a hostile reason could start with '=')."""
    text = str(value).replace("\r", " ").replace("\n", " ")
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t") else text


def write_csv(rows: list[Row], path: str) -> None:
    """One row per file, written to a temporary file and renamed into place."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".grades-", suffix=".csv", dir=folder)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(COLUMNS)
            for r in rows:
                w.writerow([_cell(r.file), r.verdict, r.cases_passed, r.cases_total, f"{r.seconds:.3f}",
                            "yes" if r.isolated else "no", _cell(r.reason)])
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # the usual permissions of a file the user keeps
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
