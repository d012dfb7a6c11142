"""The interview lab: each question of a deep-learning interview guide answered by an experiment.

Every topic module exposes ``TITLE`` and ``run(quick=False, seed=0, epochs=None, out=print)``
returning a result with a ``passed`` property (all of its claims held).

>>> from deepgrad import guide
>>> results = guide.run_topics(["backprop"], quick=True)
>>> results["backprop"].passed
True
"""

from __future__ import annotations

from types import ModuleType

from . import backprop_demo

TOPICS: dict[str, ModuleType] = {
    "backprop": backprop_demo,
}


def run_topics(names: list[str] | None = None, quick: bool = False, seed: int = 0, epochs: int | None = None,
               out=print) -> dict:
    """Run the named topics (all when None) in order; returns ``{name: result}``."""
    names = list(TOPICS) if not names else names
    unknown = [n for n in names if n not in TOPICS]
    if unknown:
        raise ValueError(f"guide: unknown topic(s) {unknown}; available: {sorted(TOPICS)}")
    results = {}
    for name in names:
        topic = TOPICS[name]
        out(f"=== deepgrad guide {name} — {topic.TITLE}")
        results[name] = topic.run(quick=quick, seed=seed, epochs=epochs, out=out)
        out("")
    return results
