"""The machinery of the interview lab: a topic runs an experiment against a :class:`Context`,
which collects its evidence (numbers, tables, figures) and its claims, each checked.

A topic module is teaching material first. It defines::

    NUMBER = 7
    QUESTION = "What does pooling do, and how do max, average and sum pooling differ?"
    ANSWER = "Pooling summarises each window ... (a concise interview answer)"

    def run(ctx: Context) -> None:
        ...                                    # the experiment, with the public deepgrad API
        ctx.table("Accuracy by pooling", ["pooling", "accuracy"], rows)
        ctx.claim("max pooling is more robust to a 1-pixel shift than no pooling",
                  robust_max > robust_none, f"{robust_max:.3f} vs {robust_none:.3f}")

``ctx.quick`` selects the CI-sized run (seconds) over the full one (closer to textbook numbers).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Claim:
    """One checked statement: what is claimed, whether the measurement backs it, and the numbers."""

    text: str
    passed: bool
    measured: str = ""


@dataclass
class Table:
    title: str
    headers: list
    rows: list


def print_flushed(text: str) -> None:
    """``print`` that flushes: each line of evidence appears as it is measured, even through a pipe."""
    print(text, flush=True)


# A phone shows a report figure about this many CSS pixels wide (390 px screen less the page's margins).
PHONE_WIDTH_PX = 340
DPI = 110


@dataclass
class Figure:
    """A saved figure: one PNG, or one PNG per panel (``panels``) so a phone can stack what a desktop shows
    side by side. ``phone_text_px`` is the height of its smallest text when shown ``PHONE_WIDTH_PX`` wide."""

    title: str
    path: str  # the PNG; the first panel's for a figure in panels
    caption: str = ""
    panels: list = field(default_factory=list)
    phone_text_px: float | None = None

    @property
    def paths(self) -> list:
        """Every PNG of the figure, in order."""
        return list(self.panels) or [self.path]


@dataclass
class TopicResult:
    """Everything one topic measured, ready to print or to put in the HTML report."""

    slug: str
    number: int
    question: str
    answer: str
    claims: list = field(default_factory=list)
    tables: list = field(default_factory=list)
    figures: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.claims) and all(c.passed for c in self.claims)


class Context:
    """What a topic's ``run`` receives: the run settings and the evidence collectors."""

    def __init__(self, result: TopicResult, quick: bool = True, seed: int = 0, device: str = "cpu",
                 out_dir: str = "guide-output", log: Callable[[str], None] = print_flushed):
        self.result, self.quick, self.seed, self.device = result, quick, seed, device
        self.out_dir, self.log = out_dir, log
        self._start = time.perf_counter()

    @property
    def full(self) -> bool:
        return not self.quick

    def pick(self, quick, full):
        """``quick`` in quick mode, else ``full`` (sizes, epochs, sweeps)."""
        return quick if self.quick else full

    def progress(self, text: str) -> None:
        """A progress line, printed at once (with the seconds since the topic started) but not kept for the
        report: long experiments show what they are doing while they run."""
        self.log(f"  .. {text} ({time.perf_counter() - self._start:.1f} s)")

    def say(self, text: str) -> None:
        """A line of evidence or narrative (printed, and kept for the report)."""
        self.result.notes.append(text)
        self.log(f"  {text}")

    def table(self, title: str, headers: list, rows: list) -> Table:
        """A table of measurements (printed aligned, and kept for the report)."""
        rows = [[_fmt(v) for v in row] for row in rows]
        t = Table(title, [str(h) for h in headers], rows)
        self.result.tables.append(t)
        widths = [max(len(str(x)) for x in col) for col in zip(t.headers, *t.rows)]
        self.log(f"  {title}")
        for row in [t.headers] + t.rows:
            self.log("    " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
        return t

    def figure(self, fig, name: str, title: str, caption: str = "") -> Figure:
        """Save a matplotlib figure as ``<out_dir>/<topic>-<name>.png`` and record it. A list of figures is
        one figure in panels, saved as ``<topic>-<name>-1.png``, ``-2.png``...: the report lays them side by
        side on a desktop and one under the other on a phone."""
        import matplotlib.pyplot as plt

        os.makedirs(self.out_dir, exist_ok=True)
        figs = list(fig) if isinstance(fig, (list, tuple)) else [fig]
        stem = os.path.join(self.out_dir, f"{self.result.slug}-{name}")
        paths = [f"{stem}.png"] if len(figs) == 1 else [f"{stem}-{i}.png" for i in range(1, len(figs) + 1)]
        text_px = []
        for f, path in zip(figs, paths):
            smallest = _smallest_font_pt(f)
            f.savefig(path, dpi=DPI, bbox_inches="tight")
            plt.close(f)
            if smallest is not None:
                text_px.append(smallest * DPI / 72 * min(1.0, PHONE_WIDTH_PX / _png_width(path)))
        record = Figure(title, paths[0], caption, paths if len(paths) > 1 else [], min(text_px, default=None))
        self.result.figures.append(record)
        for path in paths:
            self.log(f"  figure: {path}")
        return record

    def claim(self, text: str, passed: bool, measured: str = "") -> bool:
        """Check a claim against the measurement; the run reports PASS/FAIL for each."""
        c = Claim(text, bool(passed), measured)
        self.result.claims.append(c)
        self.log(f"  [{'PASS' if c.passed else 'FAIL'}] {text}" + (f"  ({measured})" if measured else ""))
        return c.passed


def _smallest_font_pt(fig) -> float | None:
    """The size in points of the smallest visible, non-empty text of a matplotlib figure."""
    from matplotlib.text import Text

    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return min(sizes, default=None)


def _png_width(path: str) -> int:
    """The pixel width of a PNG, from its header (IHDR: bytes 16-19, big-endian)."""
    with open(path, "rb") as f:
        return int.from_bytes(f.read(24)[16:20], "big")


def _fmt(value) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "nan"
        if value == 0 or 1e-3 <= abs(value) < 1e5:
            return f"{value:.4g}"
        return f"{value:.3e}"
    return str(value)


def run_topic(module, slug: str, quick: bool = True, seed: int = 0, device: str = "cpu",
              out_dir: str = "guide-output", log: Callable[[str], None] = print_flushed) -> TopicResult:
    """Run one topic module; an exception becomes a failed result with the error recorded."""
    import matplotlib

    matplotlib.use("Agg")  # figures are files, never windows
    import deepgrad as dg

    result = TopicResult(slug, module.NUMBER, module.QUESTION, module.ANSWER)
    log(f"\n[{module.NUMBER}] {module.QUESTION}")
    log(f"  Answer: {module.ANSWER}")
    log("  Evidence:")
    dg.manual_seed(seed)
    start = time.perf_counter()
    try:
        module.run(Context(result, quick=quick, seed=seed, device=device, out_dir=out_dir, log=log))
    except Exception as e:  # noqa: BLE001 - a broken topic is reported, the others still run
        import traceback

        result.error = f"{type(e).__name__}: {e}"
        log(f"  [FAIL] the experiment raised {result.error}")
        log("".join(traceback.format_exc()))
    result.seconds = time.perf_counter() - start
    if not result.claims and result.error is None:
        result.error = "the topic checked no claim"
    n_ok = sum(c.passed for c in result.claims)
    log(f"  -> {n_ok}/{len(result.claims)} claims PASS in {result.seconds:.1f} s")
    return result
