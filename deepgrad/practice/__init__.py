"""``deepgrad practice``: coding exercises graded honestly by a sandboxed judge, concept cards, and
spaced repetition (FSRS) over both.

>>> from deepgrad.practice import all_exercises, judge
>>> verdict = judge("relu", "relu.py")      # runs relu.py in a separate, limited process
"""

from .exercise import Case, Exercise, Mistake  # noqa: F401
from .exercises import all_exercises, get  # noqa: F401
from .judge import Limits, Verdict, judge  # noqa: F401
