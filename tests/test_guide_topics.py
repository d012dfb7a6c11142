"""Every interview-guide topic in quick mode: it runs, every claim it checks passes and states the
numbers it was checked against, and its figures exist."""

import os

import pytest

pytest.importorskip("sklearn.datasets")
pytest.importorskip("matplotlib")

from deepgrad import guide  # noqa: E402


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
        assert os.path.isfile(fig.path) and fig.path.endswith(".png")
