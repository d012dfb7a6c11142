"""The interview lab: each question of a deep-learning interview guide answered by an experiment
that runs, measures, and checks the claim behind the answer.

Each topic is a small module (``q01_deep_learning.py`` ...) meant to be read: it defines
``NUMBER``, ``QUESTION``, ``ANSWER`` and ``run(ctx)`` (see :mod:`deepgrad.guide.core`).

>>> from deepgrad import guide
>>> [r.passed for r in guide.run_topics(["pooling"], quick=True)]
[True]
"""

from __future__ import annotations

import importlib

from .core import Claim, Context, Figure, Table, TopicResult, run_topic  # noqa: F401

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


def load(slug: str):
    """The module of topic ``slug``."""
    if slug not in TOPICS:
        raise ValueError(f"guide: unknown topic {slug!r}; available: {', '.join(TOPICS)}")
    return importlib.import_module(f"{__name__}.{TOPICS[slug]}")


def run_topics(slugs: list[str] | None = None, quick: bool = True, seed: int = 0, device: str = "cpu",
               out_dir: str = "guide-output", log=print) -> list[TopicResult]:
    """Run the given topics (all available ones when None) in the guide's order."""
    slugs = list(available()) if not slugs else list(slugs)
    for s in slugs:
        if s not in TOPICS:
            raise ValueError(f"guide: unknown topic {s!r}; available: {', '.join(TOPICS)}")
    return [run_topic(load(s), s, quick=quick, seed=seed, device=device, out_dir=out_dir, log=log) for s in slugs]
