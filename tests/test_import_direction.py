"""Dependencies point one way (README "Layout", GUIDE "The shape of the project"): the test
reads every import statement of the package (at any depth, including imports inside
functions; relative imports resolved against the file's package) and fails on one that runs
against the architecture:

* the engine (``autodiff``) never imports ``refgen``;
* ``refgen.metrics`` judges samples and features: it imports neither the families nor the
  training loop;
* ``refgen.backbones``, ``refgen.data`` and ``refgen.distributions`` are what families are
  built from: they never import ``refgen.families``.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# (package whose files are scanned, forbidden import prefixes)
RULES = [
    ("autodiff", ("refgen",)),
    ("refgen.metrics", ("refgen.families", "refgen.train")),
    ("refgen.backbones", ("refgen.families",)),
    ("refgen.data", ("refgen.families",)),
    ("refgen.distributions", ("refgen.families",)),
]


def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path):
    """(line, absolute module name) of every import in the file at ``path``; for
    ``from X import a`` both X and X.a are given (a may be a submodule)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            yield node.lineno, target
            for alias in node.names:
                yield node.lineno, f"{target}.{alias.name}"


def violations(package, forbidden):
    folder = ROOT.joinpath(*package.split("."))
    out = []
    for path in sorted(folder.rglob("*.py")):
        for line, name in imported_modules(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                out.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    return sorted(set(out))


@pytest.mark.parametrize("package,forbidden", RULES, ids=[r[0] for r in RULES])
def test_dependencies_point_one_way(package, forbidden):
    found = violations(package, forbidden)
    assert not found, (f"{package} must not import {', '.join(forbidden)}:\n  "
                       + "\n  ".join(found))


def test_the_scanner_sees_relative_and_nested_imports(tmp_path, monkeypatch):
    """The scanner itself: a relative import two levels up, inside a function, is found."""
    pkg = tmp_path / "refgen" / "metrics"
    pkg.mkdir(parents=True)
    (tmp_path / "refgen" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "bad.py").write_text("def f():\n    from ..families import vae\n    return vae\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    assert violations("refgen.metrics", ("refgen.families",)) == [
        "refgen/metrics/bad.py:2 imports refgen.families",
        "refgen/metrics/bad.py:2 imports refgen.families.vae"]
