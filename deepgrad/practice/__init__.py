"""``deepgrad practice``: coding exercises graded honestly by a sandboxed judge, concept cards, and
spaced repetition (FSRS) over both.

>>> from deepgrad.practice import check, get, judge
>>> with open("relu.py", "w") as f:         # a candidate's answer (here the exercise's model solution)
...     _ = f.write(get("relu").solution)
>>> verdict = judge("relu", "relu.py")      # runs relu.py in the sandbox on hidden cases
>>> verdict.passed
True
>>> wrong = get("relu").solution.replace("np.maximum(x, 0)", "x")   # forgets the max
>>> verdict = check("relu", wrong)     # the same from a notebook: a module, globals(), or source text
>>> verdict.status, "expected 0, got -" in verdict.report   # the report shows the wrong elements
('failed', True)

The judge (:mod:`.judge`) runs candidates in :mod:`.sandbox` (Linux namespaces; ``deepgrad practice
doctor`` says which isolation is in effect) and grades them against deepgrad. Progress lives in
:mod:`.store`.

Adding an exercise (say, to a new family module ``exercises/attention.py``):

1. write an :class:`Exercise`: statement, starter, hints, a NumPy ``solution`` written as a candidate would,
   ``outputs`` (function -> output names), ``cases(rng)`` drawing hidden :class:`Case` s (sizes 1-4 and
   non-powers of two where shapes matter; ``grad_case`` adds a float64 finite-difference check), and a
   ``reference`` computed with deepgrad (or ``judge_case`` for a statistical exercise);
2. add :class:`Mistake` s (recognisers that name a typical bug in the report) and at least two
   :class:`Mutant` s, the classic bugs as edits of the solution (``Mutant("biased variance",
   ("x.var(axis=0, ddof=1)", "x.var(axis=0)"))``; ``mentions=`` the fragment the report must contain);
3. list it in the module's ``EXERCISES``, the module in ``exercises._FAMILIES``, and every deepgrad module
   its reference imports in ``exercises.REFERENCE_MODULES``.

``tests/test_practice_mutants.py`` then runs the reference and every mutant through the real judge: the
reference must pass and every mutant fail.
"""

from .exercise import Case, Exercise, Mistake, Mutant  # noqa: F401
from .exercises import all_exercises, get  # noqa: F401
from .judge import Limits, Verdict, judge, judge_source  # noqa: F401
from .notebook import check  # noqa: F401
