"""The package reads as the sentence of docs/development.md, and imports only point down the stack.

spec (what a scheme is) < frameworks (what a framework claims) < engine (claims checked against
specs) < reports < audit < propagate < the front ends (api, options, plugin, cli).  A module may
import its own layer and those below it, never one above (lazy imports inside functions count;
``if TYPE_CHECKING:`` imports do not, they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "initspec"
LAYERS = {"errors": 0, "_data": 0, "spec": 1, "frameworks": 2, "engine": 3, "reports": 4, "audit": 5,
          "propagate": 6, "scan": 6, "references": 6, "api": 7, "options": 7, "plugin": 7, "cli": 7, "__main__": 7,
          "__init__": 7}


def _layer(module: str) -> int:
    """The layer of a dotted module name below ``initspec``; ``initspec`` itself is the base."""
    parts = module.split(".")
    assert parts[0] == "initspec", module
    if len(parts) == 1:  # `from initspec import __version__`
        return 0
    if parts[1] not in LAYERS:
        raise AssertionError(f"initspec.{parts[1]} belongs to no layer: add it to LAYERS")
    return LAYERS[parts[1]]


def _runtime_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every initspec import outside ``if TYPE_CHECKING:`` blocks."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "initspec":
                found.append((node.lineno, node.module))
                if node.module == "initspec":  # `from initspec import api` names a module
                    found += [(node.lineno, f"initspec.{a.name}") for a in node.names if a.name != "__version__"]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "initspec"]
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def _own_layer(path: Path) -> int:
    rel = path.relative_to(PACKAGE).with_suffix("")
    return LAYERS[rel.parts[0]]


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PACKAGE)) for p in MODULES])
def test_imports_point_down(path):
    own = _own_layer(path)
    up = [f"{path.relative_to(PACKAGE)}:{line} imports {mod}"
          for line, mod in _runtime_imports(ast.parse(path.read_text()))
          if _layer(mod) > own]
    assert not up, "imports up the stack:\n" + "\n".join(up)


def test_the_checker_sees_an_upward_import():
    # the test above must be able to fail: an engine module importing the CLI is flagged
    tree = ast.parse("def f():\n    from initspec.cli import main\n")
    assert [_layer(m) for _, m in _runtime_imports(tree)] == [7] and LAYERS["engine"] < 7
    guarded = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from initspec.cli import main\n")
    assert _runtime_imports(guarded) == []


def test_every_top_level_name_has_a_layer():
    names = {p.relative_to(PACKAGE).with_suffix("").parts[0] for p in MODULES}
    assert names <= set(LAYERS), sorted(names - set(LAYERS))
