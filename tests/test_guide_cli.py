"""``deepgrad guide``: list the topics, select them by number or name (with "did you mean"), run one or all,
--quick/--full, --seed, --out (the figures), --report, the exit status and the one-line errors. Most tests run
small fake topics so the plumbing is tested in milliseconds; two run the real entry point in a subprocess
(an error, and a real topic whose output must stream through a pipe). tests/test_guide_topics.py runs every
real topic."""

import importlib.machinery
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

import deepgrad
from deepgrad import guide
from deepgrad.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _deepgrad(*args, timeout=120):
    """The real ``deepgrad`` entry point (``python -m deepgrad``) in a subprocess."""
    return subprocess.run([sys.executable, "-m", "deepgrad", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


# ---------------------------------------------------------------- selecting topics
@pytest.mark.parametrize("name, slug", [("7", "pooling"), ("07", "pooling"), ("Pooling", "pooling"),
                                        ("POOLING", "pooling"), ("1", "deep-learning"), ("14", "gans"),
                                        ("transfer_learning", "transfer-learning"),
                                        ("CNN Architecture", "cnn-architecture")])
def test_topics_are_selected_by_number_or_case_insensitive_name(name, slug):
    assert guide.resolve_topic(name) == slug


@pytest.mark.parametrize("name, suggestion", [("poolng", "'pooling'"), ("Overfiting", "'overfitting'"),
                                              ("gan", "'gans'"), ("backpropagation", "'backprop'")])
def test_a_near_miss_gets_a_suggestion(name, suggestion):
    with pytest.raises(ValueError, match=f"unknown topic '{name}'; did you mean {suggestion}"):
        guide.resolve_topic(name)


@pytest.mark.parametrize("argv, message", [
    (["guide", "poolng"], "deepgrad guide: unknown topic 'poolng'; did you mean 'pooling'?"),
    (["guide", "zzz"], f"deepgrad guide: unknown topic 'zzz'; give a number 1-{len(guide.TOPICS)} or a name"),
    (["guide", "0"], f"deepgrad guide: there is no topic 0; the topics are numbered 1-{len(guide.TOPICS)}"),
    (["guide", "7", "99"], "deepgrad guide: there is no topic 99;"),
])
def test_an_unknown_topic_is_one_line_on_stderr_and_status_2(argv, message, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(message) and captured.err.count("\n") == 1, captured.err
    assert captured.out == ""  # nothing ran


def test_the_real_entry_point_reports_an_unknown_topic_in_one_line_without_a_traceback():
    done = _deepgrad("guide", "Poolng")
    assert done.returncode == 2
    assert done.stderr.startswith("deepgrad guide: unknown topic 'Poolng'; did you mean 'pooling'?")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("argv, message", [
    (["guide", "--seed", "x"], "--seed: invalid int value"),
    (["guide", "--quick", "--full"], "not allowed with argument --quick"),
    (["guide", "--epochs", "3"], "unrecognized arguments: --epochs"),  # the old demo's option is gone
])
def test_bad_options_are_usage_errors(argv, message, capsys):
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
        if name == "fake_beta":  # one topic draws: a single figure and a figure in two panels
            import matplotlib.pyplot as plt

            ctx.figure(plt.figure(figsize=(2, 2)), "one", "One", "a single image")
            ctx.figure([plt.figure(figsize=(2, 2)), plt.figure(figsize=(2, 2))], "two", "Two", "two panels")

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


def test_without_a_topic_the_topics_are_listed_and_nothing_runs(fake_topics, capsys):
    assert main(["guide"]) == 0
    out = capsys.readouterr().out
    for number, slug in enumerate(fake_topics, start=1):
        assert f"{number}. {slug}" in out and f"Question {number}?" in out
    assert CALLS == []


def test_the_real_topics_are_listed(capsys):
    assert main(["guide"]) == 0
    out = capsys.readouterr().out
    assert " 9. backprop" in out and "12. overfitting" in out  # numbered, as `deepgrad guide 9` selects them
    assert "How does backpropagation work" in out


def test_one_topic_runs_quick_by_default(fake_topics, capsys, tmp_path):
    assert main(["guide", "alpha", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert CALLS == [("fake_alpha", True, 0, "cpu")]
    assert "Question 1?" in out and "Answer 1." in out and "[PASS] claim of fake_alpha" in out
    assert "1/1 claims PASS across 1 topic(s)" in out


def test_topics_by_number_and_name_run_in_the_order_given_each_once(fake_topics, capsys, tmp_path):
    assert main(["guide", "2", "ALPHA", "beta", "--out", str(tmp_path)]) == 0
    assert [c[0] for c in CALLS] == ["fake_beta", "fake_alpha"]


def test_full_and_seed_reach_the_topic(fake_topics, capsys, tmp_path):
    assert main(["guide", "alpha", "beta", "--full", "--seed", "7", "--out", str(tmp_path)]) == 0
    assert CALLS == [("fake_alpha", False, 7, "cpu"), ("fake_beta", False, 7, "cpu")]


def test_all_runs_every_topic_and_fails_on_a_failed_claim(fake_topics, capsys, tmp_path):
    assert main(["guide", "--all", "--out", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert [c[0] for c in CALLS] == ["fake_alpha", "fake_beta", "fake_broken"]
    assert "[FAIL] claim of fake_broken" in captured.out
    assert "2/3 claims PASS across 3 topic(s)" in captured.out
    assert "claims failed in: broken" in captured.err


def test_out_writes_the_figures_in_that_directory(fake_topics, capsys, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "new" / "figs"  # created, parents included
    assert main(["guide", "beta", "--out", str(out)]) == 0
    assert sorted(os.listdir(out)) == ["beta-one.png", "beta-two-1.png", "beta-two-2.png"]
    assert f"figures: 3 PNG file(s) in {out}" in capsys.readouterr().out


def test_without_out_the_report_keeps_its_figures_beside_it(fake_topics, capsys, tmp_path):
    pytest.importorskip("matplotlib")
    report_dir = tmp_path / "report"
    assert main(["guide", "beta", "--report", str(report_dir)]) == 0
    out = capsys.readouterr().out
    path = out.split("report: ", 1)[1].split()[0]
    assert os.path.isfile(path) and Path(path).parent == report_dir
    assert sorted(os.listdir(report_dir / "figures")) == ["beta-one.png", "beta-two-1.png", "beta-two-2.png"]
    page = Path(path).read_text(encoding="utf-8")
    assert "Question 2?" in page and "claim of fake_beta" in page and "PASS" in page
    assert page.count("data:image/png;base64,") == 3 and page.count('class="panels"') == 1


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write anywhere")
def test_an_unwritable_out_directory_is_one_line_before_anything_runs(fake_topics, capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert main(["guide", "alpha", "--out", str(locked / "figs")]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("deepgrad guide: cannot write --out directory") and captured.err.count("\n") == 1
    assert CALLS == []


def test_an_out_path_that_is_a_file_is_one_line_before_anything_runs(fake_topics, capsys, tmp_path):
    (tmp_path / "file").write_text("not a directory")
    assert main(["guide", "alpha", "--out", str(tmp_path / "file")]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("deepgrad guide: cannot write --out directory") and captured.err.count("\n") == 1
    assert CALLS == []


def test_device_cuda_without_a_gpu_is_one_line(fake_topics, capsys):
    if deepgrad.cuda_is_available():
        pytest.skip("a GPU is present")
    assert main(["guide", "alpha", "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepgrad guide: --device cuda needs CuPy") and err.count("\n") == 1
    assert CALLS == []


# ---------------------------------------------------------------- a real topic through a pipe
def test_a_real_topic_streams_its_evidence_through_a_pipe_and_writes_its_figures(tmp_path):
    """Topic 4 by number through the real entry point, stdout a pipe (block-buffered unless flushed): its lines
    must arrive spread over the run, not all at once when the topic ends, and its figure must land in --out."""
    pytest.importorskip("sklearn.datasets")
    pytest.importorskip("matplotlib")
    out = tmp_path / "figs"
    proc = subprocess.Popen([sys.executable, "-m", "deepgrad", "guide", "4", "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    arrivals = []
    for line in iter(proc.stdout.readline, ""):
        arrivals.append((time.monotonic(), line.rstrip("\n")))
    stderr = proc.stderr.read()
    assert proc.wait(timeout=300) == 0, stderr
    lines = [line for _, line in arrivals]
    first = next(i for i, line in enumerate(lines) if line.startswith("[4] "))
    last = next(i for i, line in enumerate(lines) if "claims PASS in" in line)
    seconds = float(lines[last].split("claims PASS in")[1].split()[0])  # the topic's own run time
    begin = next(i for i, line in enumerate(lines) if i > first and line.strip() == "Evidence:") + 1
    spread = arrivals[last - 1][0] - arrivals[begin][0]  # from the first line of evidence to the last
    assert last - begin >= 5 and seconds > 0.5
    assert spread >= 0.5 * seconds, f"the topic's lines arrived within {spread:.2f} s of a {seconds:.1f} s run"
    assert os.path.isfile(out / "cnns-equivariance.png") and not (out / "figures").exists()
