"""Every ``>>>`` example in deepgrad's docstrings runs, and prints what it shows.

Readers copy these examples first, so an example that raises or prints something else is a wrong answer
given with authority. Each module's examples run in that module's namespace (as ``pytest
--doctest-modules`` would) plus ``deepgrad`` (also as ``dg``) and ``np`` (NumPy), the names the docs assume.
"""

from __future__ import annotations

import doctest
import importlib
import pathlib

import numpy as np
import pytest

import deepgrad

PACKAGE = pathlib.Path(deepgrad.__file__).resolve().parent
# Modules that are programs, not libraries: importing them runs them.
NOT_IMPORTABLE = {"deepgrad.__main__", "deepgrad.practice._child"}
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _module_names() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        name = ".".join(parts)
        if name not in NOT_IMPORTABLE and "__pycache__" not in parts:
            names.append(name)
    return names


def _examples(module):
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = finder.find(module, module.__name__, globs=None)
    # DocTestFinder also returns objects imported into the module; keep the module's own.
    own = pathlib.Path(module.__file__).resolve()
    return [t for t in tests if t.examples and (t.filename is None or pathlib.Path(t.filename).resolve() == own)]


@pytest.mark.parametrize("name", _module_names())
def test_docstring_examples_run_as_written(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(name)
    tests = _examples(module)
    if not tests:
        pytest.skip("no examples")
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    failures = []
    state = deepgrad.is_grad_enabled(), deepgrad.get_default_dtype()
    for test in tests:
        test.globs = {**vars(module), "deepgrad": deepgrad, "dg": deepgrad, "np": np}
        deepgrad.manual_seed(0)
        out: list[str] = []
        result = runner.run(test, out=out.append, clear_globs=True)
        if result.failed:
            failures.append("".join(out))
    assert (deepgrad.is_grad_enabled(), deepgrad.get_default_dtype()) == state, "an example leaked global state"
    assert not failures, "\n".join(failures)
