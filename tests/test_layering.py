"""The house rules the README states, enforced: imports only go down the layers of the README's diagram,
and files stay small enough to read whole.

The layer map is read from the README itself (the first code block under "Project layout"), so the
picture a reader sees and the rule the tests apply cannot drift apart. Every import counts, including
the ones inside functions: a lazy import that goes up is still an upward dependency.
"""

from __future__ import annotations

import ast
import pathlib
import re
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = REPO / "deepgrad"
MAX_LINES = 550  # "aim under ~500 lines"; the cap leaves room to finish a change before splitting a file

# Imports that go up on purpose, each named with its reason. The test below also fails when one of these
# is no longer there, so the list cannot hide a dependency that has gone.
DELIBERATE = {
    ("tensor.py", "ops"): "Tensor's methods call the ops; the ops need Tensor first (the late-import block "
                          "at the end of tensor.py)",
    ("tensor.py", "functional"): "the same late-import block",
    ("autograd/functional.py", "ops"): "jacobian/hessian stack rows with ops.shape.stack, imported when called",
}
# Files allowed over MAX_LINES, with the reason.
LONG_FILES = {
    "tensor.py": "Tensor's whole surface in its class body, one short def per method (issue 17)",
}


def _layers() -> dict[str, int]:
    """{unit: layer index, 0 = bottom} from the README's layer diagram."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Project layout"):]
    block = section[section.index("```") + 3:]
    block = block[block.index("\n") + 1:block.index("```")]
    rows = [line for line in block.splitlines() if line and not line[0].isspace()]
    layers = {}
    for depth, row in enumerate(reversed(rows)):
        names = re.split(r"\s{2,}", row.strip())[0]
        for name in re.findall(r"[A-Za-z_]+", names):
            layers[name] = depth
    return layers


LAYERS = _layers()
# The package root (``import deepgrad as dg``) is the public API of everything below the products: the
# guide's experiments and the practice cards are written against it, as a user's program is.
ROOT_LAYER = LAYERS["cli"] - 0.5
METADATA = {"deepgrad.__version__"}  # a string defined in the root, read by file writers (reports, ONNX)


def _unit_of_file(rel: pathlib.PurePath) -> str:
    head = rel.parts[0].removesuffix(".py")
    return head if head in LAYERS or head.startswith("__") else _family(head)


def _family(name: str) -> str:
    """``io_torch`` -> ``io``, ``_tensor_str`` -> ``tensor``, ``cli_train`` -> ``cli``."""
    stem = name.lstrip("_")
    while stem and stem not in LAYERS:
        stem = stem.rpartition("_")[0]
    return stem or name


def _unit_of_module(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "deepgrad":
        return None
    if len(parts) == 1:
        return "__init__"
    head = parts[1]
    if head in LAYERS:
        return head
    if (PACKAGE / head).is_dir() or (PACKAGE / f"{head}.py").exists():
        return _family(head)
    return "__init__"  # a name re-exported by the package root (``from deepgrad import manual_seed``)


def _layer(unit: str) -> float:
    if unit == "__main__":
        return LAYERS["cli"]
    return ROOT_LAYER if unit == "__init__" else LAYERS[unit]


def _imports(path: pathlib.Path):
    """(module, line) for every import in the file, relative ones resolved."""
    package = ["deepgrad", *path.relative_to(PACKAGE).parent.parts]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            if module == "deepgrad" or not node.module:  # ``from . import x``: x is the module
                for alias in node.names:
                    yield f"{module}.{alias.name}", node.lineno
            else:
                yield module, node.lineno


def _sources():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _upward_imports():
    found = {}
    for path in _sources():
        rel = path.relative_to(PACKAGE)
        unit = _unit_of_file(rel)
        for module, line in _imports(path):
            target = _unit_of_module(module)
            if target is None or target == unit or module in METADATA:
                continue
            if _layer(target) > _layer(unit):
                found.setdefault((rel.as_posix(), target), []).append(f"{rel.as_posix()}:{line} imports {module}")
    return found


def test_the_diagram_places_every_part_of_the_package():
    units = {_unit_of_file(p.relative_to(PACKAGE)) for p in _sources()}
    unplaced = sorted(u for u in units if not u.startswith("__") and u not in LAYERS)
    assert unplaced == [], f"add these to the README's layer diagram: {unplaced}"
    assert LAYERS["backend"] == 0 and LAYERS["kernels"] < LAYERS["autograd"] < LAYERS["ops"] < LAYERS["nn"]
    assert LAYERS["nn"] < LAYERS["train"] < LAYERS["models"] < LAYERS["cli"]


def test_imports_only_go_down():
    upward = _upward_imports()
    offenders = [line for key, lines in upward.items() if key not in DELIBERATE for line in lines]
    assert offenders == [], "imports that go up the README's layers:\n" + "\n".join(offenders)


def test_every_deliberate_exception_is_still_needed():
    stale = sorted(set(DELIBERATE) - set(_upward_imports()))
    assert stale == [], f"no longer imported upward: remove from DELIBERATE: {stale}"


def test_the_rule_catches_an_upward_import(tmp_path, monkeypatch):
    """The checker itself: a module in ops/ that imports nn must be reported."""
    fake = tmp_path / "deepgrad"
    (fake / "ops").mkdir(parents=True)
    (fake / "nn").mkdir()
    (fake / "ops" / "bad.py").write_text("def f():\n    from ..nn import Linear\n    return Linear\n")
    (fake / "nn" / "__init__.py").write_text("")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert list(_upward_imports()) == [("ops/bad.py", "nn")]


def test_files_stay_small_enough_to_read_whole():
    sizes = {p.relative_to(PACKAGE).as_posix(): len(p.read_text().splitlines()) for p in _sources()}
    long = {rel: n for rel, n in sizes.items() if n > MAX_LINES and rel not in LONG_FILES}
    assert long == {}, f"files over {MAX_LINES} lines (split them by role): {long}"


def test_long_file_exceptions_are_still_long():
    short = [rel for rel in LONG_FILES if len((PACKAGE / rel).read_text().splitlines()) <= MAX_LINES]
    assert short == [], f"under the cap now: remove from LONG_FILES: {short}"
