"""Every interview-guide topic in quick mode: it runs, every claim it checks passes and states the
numbers it was checked against, and its figures exist and stay readable on a phone."""

import os

import pytest

pytest.importorskip("sklearn.datasets")
pytest.importorskip("matplotlib")

from deepgrad import guide  # noqa: E402
from deepgrad.guide.core import PHONE_WIDTH_PX  # noqa: E402

# The smallest text of a figure, in CSS pixels, once the figure is shrunk to a phone's width (PHONE_WIDTH_PX):
# matplotlib's default 10-point text at the report's 110 dpi is 15 px, so this allows a figure ~1.9x wider.
MIN_PHONE_TEXT_PX = 8.0


@pytest.mark.parametrize("slug", list(guide.TOPICS))
def test_topic_claims_pass_in_quick_mode(slug, tmp_path):
    lines = []
    (result,) = guide.run_topics([slug], quick=True, seed=0, out_dir=str(tmp_path), log=lines.append)
    failed = [f"{c.text} ({c.measured})" for c in result.claims if not c.passed]
    assert result.error is None, result.error + "\n" + "\n".join(lines)
    assert result.claims, f"{slug} checked no claim"
    assert result.passed, f"{slug}: failed claims: {failed}"
    assert result.question and result.answer and result.number == list(guide.TOPICS).index(slug) + 1
    assert all(c.measured for c in result.claims), "every claim states the numbers it was checked against"
    for fig in result.figures:
        assert all(os.path.isfile(p) and p.endswith(".png") for p in fig.paths)
        assert fig.phone_text_px is None or fig.phone_text_px >= MIN_PHONE_TEXT_PX, (
            f"{slug}: figure {fig.title!r} shows its smallest text {fig.phone_text_px:.1f} px high at a phone's "
            f"{PHONE_WIDTH_PX} px: make it narrower, its text larger, or split it in panels")
