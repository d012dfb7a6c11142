"""The guide's HTML report: self-contained (embedded figures, no external resources), escaped, complete,
and rendered by a real headless Chromium at phone and desktop widths (skipped when chromium is absent)."""

import base64
import os
import re
import shutil
import sys

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


def test_a_figure_in_panels_is_one_figure_of_several_images(tmp_path):
    panels = [_png(tmp_path / f"p{i}.png") for i in range(3)]
    result = TopicResult("gans", 14, "Q?", "A.", claims=[Claim("c", True, "m")],
                         figures=[Figure("Three views", panels[0], "one caption", panels)])
    text = render_report([result], quick=True, seed=0)
    panel_div = re.search(r'<figure><div class="panels">(.*?)</div><figcaption>', text).group(1)
    assert panel_div.count("<img ") == 3 and 'alt="Three views, panel 2 of 3"' in panel_div
    assert text.count("<figcaption>") == 1 and "one caption" in text


# ---------------------------------------------------------------- in a real browser
sys.path.insert(0, os.path.dirname(__file__))
from chromium_page import CHROMIUM, ChromiumPage  # noqa: E402

from deepgrad.guide.core import PHONE_WIDTH_PX, Context  # noqa: E402


def _browser_results(tmp_path):
    """A real topic (3: instant, a five-column table) and one that exercises the layout: a table too wide for a
    phone, a figure in three panels, a single figure, long unbroken text."""
    import matplotlib.pyplot as plt

    from deepgrad import guide

    (real,) = guide.run_topics(["prerequisites"], quick=True, out_dir=str(tmp_path / "figs"), log=lambda _: None)
    layout = TopicResult("layout", 2, "Does the report fit a phone?", "Panels stack, tables scroll.")
    ctx = Context(layout, out_dir=str(tmp_path / "figs"), log=lambda _: None)
    ctx.table("A wide table", [f"column {i}" for i in range(6)], [[f"value {i}.{j:04d}" for j in range(6)]
                                                                     for i in range(3)])
    panels = []
    for i in range(3):
        fig, ax = plt.subplots(figsize=(3.2, 3.2))
        ax.plot(np.arange(10), np.arange(10) ** (i + 1))
        ax.set_title(f"panel {i + 1}")
        panels.append(fig)
    ctx.figure(panels, "panels", "Three panels", "Side by side on a desktop, one under the other on a phone.")
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(np.arange(10), np.arange(10) ** 2)
    ctx.figure(fig, "single", "One figure", "A single image.")
    ctx.say("a_long_unbroken_identifier_" * 8)
    ctx.claim("the layout topic has a claim", True, "measured")
    return [real, layout]


LAYOUT = """(() => {
  const box = el => { const r = el.getBoundingClientRect(); return {x: r.x, y: r.y + scrollY, w: r.width}; };
  return {
    inner: innerWidth,
    page: document.documentElement.scrollWidth,
    sections: [...document.querySelectorAll("section")].map(s => s.id),
    scrolls: [...document.querySelectorAll(".scroll")].map(s => ({
      scrolls: s.scrollWidth > s.clientWidth, overflow: getComputedStyle(s).overflowX,
      shadows: (getComputedStyle(s).backgroundImage.match(/gradient/g) || []).length})),
    panels: [...document.querySelectorAll(".panels")].map(p => [...p.querySelectorAll("img")].map(box)),
    images: [...document.querySelectorAll("figure img")].map(i => ({
      w: i.getBoundingClientRect().width, natural: i.naturalWidth, room: i.closest("figure").clientWidth})),
  };
})()"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
@pytest.mark.parametrize("width", [390, 1280])  # a phone, a desktop
def test_report_renders_in_headless_chromium(tmp_path, width):
    import matplotlib.image

    path = write_report(_browser_results(tmp_path), str(tmp_path / "report"), quick=True, seed=0)
    with ChromiumPage(width, profile=str(tmp_path / "chromium-profile")) as page:
        page.open("file://" + os.path.abspath(path))
        layout = page.evaluate(LAYOUT)
        shot, full = page.screenshot(), page.screenshot(full_page=True)
    (tmp_path / f"report-{width}.png").write_bytes(full)  # the whole page, for a person to look at
    keep = os.environ.get("DEEPGRAD_SCREENSHOTS")
    if keep:
        os.makedirs(keep, exist_ok=True)
        shutil.copy(tmp_path / f"report-{width}.png", keep)

    (tmp_path / "shot.png").write_bytes(shot)
    img = matplotlib.image.imread(str(tmp_path / "shot.png"))
    assert img.shape[:2] == (900, width)
    assert img[..., :3].std() > 0.05, "the screenshot is blank"
    assert layout["inner"] == width
    assert layout["sections"] == ["prerequisites", "layout"]
    # nothing widens the page: long text wraps, images shrink, wide tables scroll inside their own box
    assert layout["page"] <= width, f"the page is {layout['page']} px wide in a {width} px window"
    wide = layout["scrolls"][-1]  # the six-column table
    assert all(s["overflow"] == "auto" and s["shadows"] == 4 for s in layout["scrolls"])  # a shadow cues the scroll
    assert wide["scrolls"] == (width < 600), "the six-column table should scroll on a phone and fit a desktop"
    for image in layout["images"]:
        assert image["w"] <= image["room"] + 0.5
        if width < 600:  # each image gets at least PHONE_WIDTH_PX (figures are checked for text size at that width)
            assert image["w"] >= min(image["natural"], PHONE_WIDTH_PX) - 0.5, image
    (panels,) = layout["panels"]
    assert len(panels) == 3
    if width < 600:  # one under the other, full width
        assert all(p["x"] == panels[0]["x"] for p in panels) and panels[0]["y"] < panels[1]["y"] < panels[2]["y"]
    else:  # side by side
        assert panels[0]["y"] == panels[1]["y"] and panels[0]["x"] < panels[1]["x"]
