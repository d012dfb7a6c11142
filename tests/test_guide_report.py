"""The guide's HTML report: self-contained (embedded figures, no external resources), escaped, complete,
and rendered by a real headless Chromium at phone and desktop widths (skipped when chromium is absent)."""

import base64
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from deepgrad.guide.core import Claim, Figure, Table, TopicResult
from deepgrad.guide.report import render_report, write_report

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


def _png(path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(np.arange(10), np.arange(10) ** 2)
    fig.savefig(path)
    plt.close(fig)
    return str(path)


def _results(tmp_path):
    png = _png(tmp_path / "curve.png")
    a = TopicResult("deep-learning", 1, "What is <deep> learning?", "Layers & non-linearities <b>learn</b>.",
                    claims=[Claim("MLP beats linear by >= 30 points", True, "0.99 vs 0.56"),
                            Claim("a claim that failed <script>alert(1)</script>", False, "x < y")],
                    tables=[Table("Accuracy & size", ["model", "acc"], [["<linear>", "0.56"], ["mlp", "0.99"]])],
                    figures=[Figure("Learning curve", png, "A caption with \"quotes\" & <tags>")],
                    notes=["evidence line with <angle> & ampersand"], seconds=1.25)
    b = TopicResult("pooling", 7, "What is pooling?", "Pooling summarises windows.",
                    claims=[Claim("max pooling outputs the window max", True, "[[4.0]]")], seconds=0.5)
    return [a, b]


def test_report_content_escaping_and_embedding(tmp_path):
    path = write_report(_results(tmp_path), str(tmp_path / "report"), quick=True, seed=3)
    assert path == str(tmp_path / "report" / "index.html")
    text = open(path, encoding="utf-8").read()
    assert '<meta name="viewport"' in text and "<!DOCTYPE html>" in text
    assert 'id="deep-learning"' in text and 'id="pooling"' in text and 'href="#pooling"' in text
    assert "2/3 claims pass" in text and "seed 3" in text and "mode quick" in text
    assert text.count('class="badge pass"') >= 2 and 'class="badge fail"' in text
    assert "0.99 vs 0.56" in text and "1.2 s" in text
    # everything user-supplied is escaped: no injected markup survives
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "What is &lt;deep&gt; learning?" in text and "&lt;linear&gt;" in text and "x &lt; y" in text
    assert "&quot;quotes&quot; &amp; &lt;tags&gt;" in text
    # self-contained: the figure is an embedded PNG, nothing is fetched from anywhere
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(uris) == 1 and base64.b64decode(uris[0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r'(src|href)="(?!data:|#)', text), "a resource that is not embedded"
    assert "http://" not in text and "https://" not in text and "<script" not in text


def test_report_marks_errors_and_missing_figures(tmp_path):
    broken = TopicResult("cnns", 4, "What are CNNs?", "Convolutions.", error="ValueError: boom <x>",
                         figures=[Figure("gone", str(tmp_path / "nope.png"))])
    text = render_report([broken], quick=False, seed=0)
    assert "ValueError: boom &lt;x&gt;" in text and "figure missing" in text and "mode full" in text
    assert "0/0 claims pass" in text and 'class="badge fail"' in text


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(tmp_path, *args):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
@pytest.mark.parametrize("size", ["412,915", "1280,900"])  # a phone, a desktop
def test_report_renders_in_headless_chromium(tmp_path, size):
    import matplotlib.image

    path = write_report(_results(tmp_path), str(tmp_path / "report"), quick=True, seed=0)
    url = "file://" + os.path.abspath(path)
    shot = tmp_path / "shot.png"
    proc = _chromium(tmp_path, f"--screenshot={shot}", f"--window-size={size}", url)
    assert shot.exists(), proc.stderr[-2000:]
    img = matplotlib.image.imread(str(shot))
    w, h = (int(v) for v in size.split(","))
    assert img.shape[:2] == (h, w)
    assert img[..., :3].std() > 0.05, "the screenshot is blank"

    dom = _chromium(tmp_path, "--dump-dom", f"--window-size={size}", url).stdout
    for section in ('id="summary"', 'id="contents"', 'id="deep-learning"', 'id="pooling"'):
        assert section in dom, f"{section} missing from the rendered DOM"
    assert "MLP beats linear by &gt;= 30 points" in dom and "data:image/png;base64," in dom
