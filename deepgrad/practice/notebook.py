"""Judge code written in a notebook: ``check("relu", module_or_source)``.

>>> from deepgrad.practice import check
>>> print(check("relu", '''
... import numpy as np
... def relu_forward(x): return np.maximum(x, 0)
... def relu_backward(x, grad_out): return grad_out * (x > 0)
... '''))
PASSED  relu: all 8 hidden cases ...
"""

from __future__ import annotations

import inspect
import os
import types
from typing import Any

from .judge import Limits, Verdict, judge_source, read_source

_PRELUDE = "import math\n\nimport numpy as np\n\n"


def _namespace_source(namespace: dict, module_name: str | None) -> str:
    """The source of every function and class defined in a notebook's namespace (cells are in linecache)."""
    parts = []
    for name, value in namespace.items():
        if name.startswith("__") or not isinstance(value, (types.FunctionType, type)):
            continue
        if module_name is not None and getattr(value, "__module__", None) != module_name:
            continue
        try:
            parts.append(inspect.getsource(value))
        except (OSError, TypeError):
            continue
    if not parts:
        raise ValueError("check: found no function whose source can be read in the namespace given")
    return _PRELUDE + "\n\n".join(parts)


def source_of(code: Any) -> tuple[str, str]:
    """(source, filename) of a module, a namespace dict, a function, a path or source text."""
    if isinstance(code, types.ModuleType):
        try:
            return inspect.getsource(code), os.path.basename(getattr(code, "__file__", None) or "notebook.py")
        except (OSError, TypeError):  # __main__ of a notebook: collect what the cells defined
            return _namespace_source(vars(code), code.__name__), "notebook.py"
    if isinstance(code, dict):
        return _namespace_source(code, code.get("__name__")), "notebook.py"
    if isinstance(code, types.FunctionType):
        return _PRELUDE + inspect.getsource(code), "notebook.py"
    if isinstance(code, (str, os.PathLike)):
        text = os.fspath(code)
        if "\n" not in text and text.endswith(".py") and os.path.isfile(text):
            return read_source(text), os.path.basename(text)
        return text, "notebook.py"
    raise TypeError(f"check: expected a module, a namespace dict, a function, a .py path or source text, "
                    f"got {type(code).__name__}")


def check(exercise: str, code: Any, record: bool = False, limits: Limits | None = None) -> Verdict:
    """Judge ``code`` (a module, ``globals()``, a function, a path or source text) on ``exercise`` in the same
    sandbox as ``deepgrad practice check``; ``record=True`` also records the attempt in your progress."""
    source, filename = source_of(code)
    verdict = judge_source(exercise, source, filename, limits)
    if record:
        from .scheduler import now_utc
        from .store import Store

        store = Store()
        store.record(verdict.exercise, verdict.passed, verdict.status, now_utc(), verdict.cases_passed,
                     verdict.cases_total)
        store.close()
    return verdict
