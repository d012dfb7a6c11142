"""The interview lab: each question of a deep-learning interview guide answered by an experiment
that runs, measures, and checks the claim behind the answer.

Each topic is a small module (``q01_deep_learning.py`` ...) meant to be read: it defines
``NUMBER``, ``QUESTION``, ``ANSWER`` and ``run(ctx)`` (see :mod:`deepgrad.guide.core`).

>>> from deepgrad import guide
>>> pooling = guide.load("pooling")   # topic 7
>>> pooling.QUESTION
'What is pooling in a CNN? How do max, average and sum pooling differ?'
>>> result = guide.TopicResult("pooling", pooling.NUMBER, pooling.QUESTION, pooling.ANSWER)
>>> pooling.worked_example(guide.Context(result, log=lambda line: None))   # the topic's first, hand-checked part
>>> [claim.passed for claim in result.claims]   # guide.run_topics(["pooling"]) runs it all (trains 4 CNNs, ~20 s)
[True]
"""

from __future__ import annotations

import difflib
import importlib

from .core import Claim, Context, Figure, Table, TopicResult, print_flushed, run_topic  # noqa: F401

# slug -> module, in the guide's order. Modules are imported only when run (the CLI stays light).
TOPICS: dict[str, str] = {
    "deep-learning": "q01_deep_learning",
    "why-now": "q02_why_now",
    "prerequisites": "q03_prerequisites",
    "cnns": "q04_cnns",
    "cnn-architecture": "q05_cnn_architecture",
    "conv-parameters": "q06_conv_parameters",
    "pooling": "q07_pooling",
    "rnns": "q08_rnns",
    "backprop": "q09_backprop",
    "cnn-vs-rnn": "q10_cnn_vs_rnn",
    "applications": "q11_applications",
    "overfitting": "q12_overfitting",
    "transfer-learning": "q13_transfer_learning",
    "gans": "q14_gans",
    "transformers": "q15_transformers",
}


def available() -> dict[str, str]:
    """The topics whose module exists, slug -> module name."""
    import importlib.util

    return {slug: mod for slug, mod in TOPICS.items() if importlib.util.find_spec(f"{__name__}.{mod}") is not None}


def resolve_topic(name: str) -> str:
    """The slug of the topic called ``name``: its number (``"7"``) or its slug in any case, with ``_`` or spaces
    for ``-`` (``"Pooling"``, ``"CNN architecture"``). A near miss raises ValueError with a suggestion.

    >>> resolve_topic("7"), resolve_topic("Transfer_Learning")
    ('pooling', 'transfer-learning')
    """
    slugs = list(TOPICS)
    key = " ".join(str(name).split()).lower().replace("_", "-").replace(" ", "-")
    if key.isdigit():
        if 1 <= int(key) <= len(slugs):
            return slugs[int(key) - 1]
        raise ValueError(f"guide: there is no topic {name}; the topics are numbered 1-{len(slugs)} "
                         "(`deepgrad guide` lists them)")
    if key in TOPICS:
        return key
    close = difflib.get_close_matches(key, slugs, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"give a number 1-{len(slugs)} or a name"
    raise ValueError(f"guide: unknown topic {name!r}; {hint} (`deepgrad guide` lists the topics)")


def load(slug: str):
    """The module of topic ``slug`` (a number or name, see :func:`resolve_topic`)."""
    return importlib.import_module(f"{__name__}.{TOPICS[resolve_topic(slug)]}")


def run_topics(slugs: list[str] | None = None, quick: bool = True, seed: int = 0, device: str = "cpu",
               out_dir: str = "guide-output", log=print_flushed) -> list[TopicResult]:
    """Run the given topics (numbers or names; all available ones when None) in the given order, writing
    their figures in ``out_dir``; ``log`` receives each line of evidence as it is measured."""
    slugs = list(available()) if not slugs else [resolve_topic(s) for s in slugs]
    return [run_topic(load(s), s, quick=quick, seed=seed, device=device, out_dir=out_dir, log=log) for s in slugs]
