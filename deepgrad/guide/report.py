"""The interview lab's HTML report: one self-contained page (figures embedded as base64 PNG data URIs,
inline CSS, no scripts or external resources) that works offline and reads well on a phone.

>>> from deepgrad.guide import Context, TopicResult, load
>>> pooling = load("pooling")
>>> result = TopicResult("pooling", pooling.NUMBER, pooling.QUESTION, pooling.ANSWER)
>>> pooling.worked_example(Context(result, log=lambda line: None))   # part of the topic; usually guide.run_topics
>>> results = [result]
>>> path = write_report(results, "guide-report", quick=True, seed=0)   # -> guide-report/index.html
>>> path
'guide-report/index.html'
>>> with open(path, encoding="utf-8") as page:   # one self-contained page holding the topic's evidence
...     "max pooling" in page.read()
True
"""

from __future__ import annotations

import base64
import datetime
import html
import os

CSS = """
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1d2330;
background:#f6f7f9}
main{max-width:860px;margin:0 auto;padding:16px}
h1{font-size:1.6em;margin:.4em 0}h2{font-size:1.25em;margin:0 0 .4em}h3{font-size:1em;margin:1em 0 .4em}
a{color:#1f5fbf}
section,.summary,nav{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:14px 16px;margin:14px 0}
.answer{background:#f0f5ff;border-left:4px solid #1f5fbf;padding:8px 12px;border-radius:4px}
.claims{list-style:none;padding:0;margin:0}
.claims li{padding:6px 0;border-bottom:1px solid #eef0f3;overflow-wrap:anywhere}
.badge{display:inline-block;min-width:3.6em;text-align:center;font-weight:700;font-size:.8em;border-radius:4px;
padding:1px 6px;margin-right:6px;color:#fff}
.pass{background:#1e8e3e}.fail{background:#c5221f}
.measured{color:#4a5568;font-size:.92em}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:.4em 0 .8em;padding-bottom:4px;
scrollbar-width:thin;scrollbar-color:#9aa5b4 #eef0f3;
background:linear-gradient(to right,#fff 30%,rgba(255,255,255,0)),
linear-gradient(to left,#fff 30%,rgba(255,255,255,0)) 100% 0,
radial-gradient(farthest-side at 0 50%,rgba(29,35,48,.28),rgba(29,35,48,0)),
radial-gradient(farthest-side at 100% 50%,rgba(29,35,48,.28),rgba(29,35,48,0)) 100% 0;
background-repeat:no-repeat;background-size:40px 100%,40px 100%,16px 100%,16px 100%;
background-attachment:local,local,scroll,scroll}
.scroll::-webkit-scrollbar{height:8px}.scroll::-webkit-scrollbar-track{background:#eef0f3;border-radius:4px}
.scroll::-webkit-scrollbar-thumb{background:#9aa5b4;border-radius:4px}
table{border-collapse:collapse;font-size:.88em;white-space:nowrap}
th,td{border:1px solid #dde1e7;padding:3px 8px;text-align:left}th{border-bottom:2px solid #9aa5b4}
figure{margin:.8em 0}figure img{max-width:100%;height:auto;display:block;border:1px solid #eef0f3}
.panels{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:8px;align-items:start}
.panels img{width:100%}
figcaption{font-size:.9em;color:#4a5568}
.notes{font-size:.92em;color:#333;padding-left:1.1em}.notes li{overflow-wrap:anywhere}
.meta{color:#4a5568;font-size:.9em}.error{color:#c5221f;white-space:pre-wrap;overflow-wrap:anywhere}
nav ol{margin:0;padding-left:1.4em}nav li{margin:2px 0}
@media (max-width:600px){main{padding:8px}section,.summary,nav{padding:10px 12px;margin:10px 0}}
"""


# A wide table scrolls inside its .scroll box. Phones hide scrollbars, so the box also casts a shadow on the
# side where columns are hidden (the two white covers scroll with the content and uncover a shadow only where
# there is more to see; the cells are transparent so the shadow shows through) and keeps a visible thin bar.
# Figures in panels sit side by side on a desktop and one under the other on a phone (.panels grid).


def _e(value) -> str:
    """HTML-escape any value (quotes included)."""
    return html.escape(str(value), quote=True)


def _badge(passed: bool) -> str:
    return f'<span class="badge {"pass" if passed else "fail"}">{"PASS" if passed else "FAIL"}</span>'


def _image_uri(path: str) -> str | None:
    """The PNG at ``path`` as a data URI (None if it is missing)."""
    try:
        with open(path, "rb") as f:
            return "data:image/png;base64," + base64.b64encode(f.read()).decode("ascii")
    except OSError:
        return None


def _table(table) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in table.headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    return (f"<h3>{_e(table.title)}</h3><div class=\"scroll\"><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table></div>")


def _figure(figure) -> str:
    images = []
    for i, path in enumerate(figure.paths, start=1):
        uri = _image_uri(path)
        if uri is None:
            return f"<p class=\"error\">figure missing: {_e(path)}</p>"
        alt = figure.title if len(figure.paths) == 1 else f"{figure.title}, panel {i} of {len(figure.paths)}"
        images.append(f'<img src="{uri}" alt="{_e(alt)}">')
    body = images[0] if len(images) == 1 else f'<div class="panels">{"".join(images)}</div>'
    return (f"<figure>{body}"
            f"<figcaption><strong>{_e(figure.title)}.</strong> {_e(figure.caption)}</figcaption></figure>")


def _section(result) -> str:
    n_ok = sum(c.passed for c in result.claims)
    parts = [f'<section id="{_e(result.slug)}">',
             f"<h2>{_e(result.number)}. {_e(result.question)}</h2>",
             f'<p class="meta">{_badge(result.passed)}{n_ok}/{len(result.claims)} claims pass &middot; '
             f"{result.seconds:.1f} s &middot; topic <code>{_e(result.slug)}</code></p>",
             f'<p class="answer">{_e(result.answer)}</p>',
             "<h3>Claims</h3><ul class=\"claims\">"]
    for c in result.claims:
        measured = f' <span class="measured">measured: {_e(c.measured)}</span>' if c.measured else ""
        parts.append(f"<li>{_badge(c.passed)}{_e(c.text)}{measured}</li>")
    parts.append("</ul>")
    if result.error:
        parts.append(f'<p class="error">The experiment failed: {_e(result.error)}</p>')
    if result.notes:
        parts.append("<h3>Evidence</h3><ul class=\"notes\">" + "".join(f"<li>{_e(n)}</li>" for n in result.notes)
                     + "</ul>")
    parts += [_table(t) for t in result.tables]
    parts += [_figure(f) for f in result.figures]
    parts.append("</section>")
    return "\n".join(parts)


def render_report(results: list, quick: bool, seed: int) -> str:
    """The report's HTML as a string (see :func:`write_report`)."""
    from .. import __version__

    n_claims = sum(len(r.claims) for r in results)
    n_pass = sum(c.passed for r in results for c in r.claims)
    total = sum(r.seconds for r in results)
    all_ok = bool(results) and all(r.passed for r in results)
    toc = "".join(f'<li><a href="#{_e(r.slug)}">{_e(r.question)}</a> {_badge(r.passed)}</li>' for r in results)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>deepgrad interview lab report</title>
<style>{CSS}</style>
</head>
<body>
<main>
<h1>deepgrad interview lab</h1>
<div class="summary" id="summary">
<p>{_badge(all_ok)}<strong>{n_pass}/{n_claims} claims pass</strong> across {len(results)} topic(s)</p>
<p class="meta">total time {total:.1f} s &middot; mode {"quick" if quick else "full"} &middot; seed {_e(seed)}
&middot; deepgrad {_e(__version__)} &middot; written {_e(stamp)}</p>
<p class="meta">Each question gets a concise interview answer and the experiment that backs it: every claim is
checked against the numbers measured in this run.</p>
</div>
<nav id="contents"><h2>Contents</h2><ol>{toc}</ol></nav>
{"".join(_section(r) for r in results)}
</main>
</body>
</html>
"""


def write_report(results: list, directory: str, quick: bool = True, seed: int = 0) -> str:
    """Write ``directory/index.html`` for the topic results and return its path."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "index.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write(render_report(results, quick, seed))
    return path
