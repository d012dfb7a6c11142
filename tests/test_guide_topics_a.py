"""Interview-guide topics 1-7 in quick mode: each runs and every claim it checks passes."""

import pytest

pytest.importorskip("sklearn.datasets")
pytest.importorskip("matplotlib")

from deepgrad import guide  # noqa: E402

TOPICS_A = ["deep-learning", "why-now", "prerequisites", "cnns", "cnn-architecture", "conv-parameters", "pooling"]


@pytest.mark.parametrize("slug", TOPICS_A)
def test_topic_claims_pass_in_quick_mode(slug, tmp_path):
    lines = []
    (result,) = guide.run_topics([slug], quick=True, seed=0, out_dir=str(tmp_path), log=lines.append)
    failed = [f"{c.text} ({c.measured})" for c in result.claims if not c.passed]
    assert result.error is None, result.error + "\n" + "\n".join(lines)
    assert result.claims, f"{slug} checked no claim"
    assert result.passed, f"{slug}: failed claims: {failed}"
    assert result.answer and result.question
    for fig in result.figures:
        assert (tmp_path / "figures").is_dir() and fig.path.endswith(".png")
