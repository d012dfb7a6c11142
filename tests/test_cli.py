"""The ``deepgrad`` command: version, argument errors, and the guide's sub-commands (list topics, run one,
--all, --quick/--full, --seed, --report, the exit status). The guide runs here on small fake topics so the
CLI's plumbing is tested in milliseconds; tests/test_guide_topics_*.py run the real topics."""

import importlib.machinery
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

import deepgrad
from deepgrad import guide
from deepgrad.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_version_via_python_m():
    done = subprocess.run([sys.executable, "-m", "deepgrad", "--version"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"deepgrad {deepgrad.__version__}"


def test_version_via_main(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"deepgrad {deepgrad.__version__}"


def test_installed_metadata_matches_the_package():
    from importlib import metadata

    try:
        installed = metadata.version("deepgrad")
    except metadata.PackageNotFoundError:
        pytest.skip("deepgrad is not pip-installed in this environment (make test installs it)")
    assert installed == deepgrad.__version__  # pyproject.toml reads it from deepgrad.__version__


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    assert "usage: deepgrad" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["guide", "no-such-topic"], "unknown topic(s) no-such-topic"),
    (["guide", "--seed", "x"], "--seed: invalid int value"),
    (["guide", "--quick", "--full"], "not allowed with argument --quick"),
    (["guide", "--epochs", "3"], "unrecognized arguments: --epochs"),  # the old demo's option is gone
])
def test_guide_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


# ---------------------------------------------------------------- fake topics
CALLS = []


def _topic_module(name: str, number: int, passes: bool) -> types.ModuleType:
    """A topic module the way deepgrad.guide expects one: NUMBER, QUESTION, ANSWER, run(ctx)."""
    module = types.ModuleType(f"deepgrad.guide.{name}")
    module.__spec__ = importlib.machinery.ModuleSpec(module.__name__, None)  # so find_spec() sees it
    module.NUMBER, module.QUESTION, module.ANSWER = number, f"Question {number}?", f"Answer {number}."

    def run(ctx):
        CALLS.append((name, ctx.quick, ctx.seed, ctx.device))
        ctx.say(f"measured something for {name}")
        ctx.table("numbers", ["k", "v"], [["a", 1.5]])
        ctx.claim(f"claim of {name}", passes, "value 1.5")

    module.run = run
    return module


@pytest.fixture
def fake_topics(monkeypatch):
    """Two passing topics and one failing one replace the real guide."""
    CALLS.clear()
    topics = {"alpha": "fake_alpha", "beta": "fake_beta", "broken": "fake_broken"}
    for number, (slug, name) in enumerate(topics.items(), start=1):
        monkeypatch.setitem(sys.modules, f"deepgrad.guide.{name}", _topic_module(name, number, slug != "broken"))
    monkeypatch.setattr(guide, "TOPICS", topics)
    return topics


def test_guide_without_a_topic_lists_the_topics_and_runs_nothing(fake_topics, capsys):
    assert main(["guide"]) == 0
    out = capsys.readouterr().out
    for number, slug in enumerate(fake_topics, start=1):
        assert f"{number}. {slug}" in out and f"Question {number}?" in out
    assert CALLS == []


def test_guide_lists_the_real_topics(capsys):
    assert main(["guide"]) == 0
    out = capsys.readouterr().out
    assert "backprop" in out and "overfitting" in out  # two of the guide's topics, by slug
    assert "How does backpropagation work" in out


def test_guide_runs_one_topic_quick_by_default(fake_topics, capsys, tmp_path):
    assert main(["guide", "alpha", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert CALLS == [("fake_alpha", True, 0, "cpu")]
    assert "Question 1?" in out and "Answer 1." in out and "[PASS] claim of fake_alpha" in out
    assert "1/1 claims PASS across 1 topic(s)" in out


def test_guide_full_and_seed_reach_the_topic(fake_topics, capsys, tmp_path):
    assert main(["guide", "alpha", "beta", "--full", "--seed", "7", "--out", str(tmp_path)]) == 0
    assert CALLS == [("fake_alpha", False, 7, "cpu"), ("fake_beta", False, 7, "cpu")]


def test_guide_all_runs_every_topic_and_fails_on_a_failed_claim(fake_topics, capsys, tmp_path):
    assert main(["guide", "--all", "--out", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert [c[0] for c in CALLS] == ["fake_alpha", "fake_beta", "fake_broken"]
    assert "[FAIL] claim of fake_broken" in captured.out
    assert "2/3 claims PASS across 3 topic(s)" in captured.out
    assert "claims failed in: broken" in captured.err


def test_guide_report_writes_an_html_page(fake_topics, capsys, tmp_path):
    report_dir = tmp_path / "report"
    assert main(["guide", "alpha", "--report", str(report_dir)]) == 0
    out = capsys.readouterr().out
    path = out.split("report: ", 1)[1].split()[0]
    assert os.path.isfile(path) and Path(path).parent == report_dir
    page = Path(path).read_text(encoding="utf-8")
    assert "Question 1?" in page and "claim of fake_alpha" in page and "PASS" in page


def test_guide_device_cuda_without_a_gpu_is_a_usage_error(fake_topics, capsys):
    if deepgrad.cuda_is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(SystemExit) as exc:
        main(["guide", "alpha", "--device", "cuda"])
    assert exc.value.code == 2 and "cuda" in capsys.readouterr().err
    assert CALLS == []
