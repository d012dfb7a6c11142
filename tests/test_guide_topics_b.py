"""Interview-guide topics 8-14 in quick mode: each runs, every claim it checks passes, and its figures exist."""

import os

import pytest

pytest.importorskip("sklearn.datasets")
pytest.importorskip("matplotlib")

from deepgrad import guide  # noqa: E402

TOPICS_B = ["rnns", "backprop", "cnn-vs-rnn", "applications", "overfitting", "transfer-learning", "gans"]


@pytest.mark.parametrize("slug", TOPICS_B)
def test_topic_claims_pass_in_quick_mode(slug, tmp_path):
    lines = []
    (result,) = guide.run_topics([slug], quick=True, seed=0, out_dir=str(tmp_path), log=lines.append)
    failed = [f"{c.text} ({c.measured})" for c in result.claims if not c.passed]
    assert result.error is None, result.error + "\n" + "\n".join(lines)
    assert result.claims, f"{slug} checked no claim"
    assert result.passed, f"{slug}: failed claims: {failed}"
    assert result.question and result.answer and result.number == list(guide.TOPICS).index(slug) + 1
    assert all(c.measured for c in result.claims), "every claim states the numbers it was checked against"
    assert result.figures, f"{slug} saved no figure"
    for fig in result.figures:
        assert os.path.isfile(fig.path) and fig.path.endswith(".png")
