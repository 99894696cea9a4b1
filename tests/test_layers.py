"""The package imports one way: engine <- store <- analysis <- interface, with no loop and no package import
hidden inside a function (the CLI alone imports lazily, so that `mkf --help` starts fast)."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import mkf_utils

pytestmark = pytest.mark.unit

PACKAGE = Path(mkf_utils.__file__).parent
LAYERS = [  # lowest first: a module may import its own layer and the ones below
    {"errors", "provenance", "splits", "data", "models", "units", "filters", "banks", "transfer", "treatments",
     "crossarch",
     "config", "runfolder", "train"},  # the engine: one run, no store
    {"verify", "runs", "executor", "plans", "experiments", "profiles", "figures", "runindex", "slurm"},  # the run store, plans and their execution
    {"stats", "plots", "controls", "tables", "retention", "study", "generality", "results"},  # analysis: reads tables of records
    {"cli"},  # the interface
]


def _imports(module: str) -> list[tuple[str, bool]]:
    """(imported package module, whether the import sits inside a function) for every runtime import of
    ``module``; imports under ``if TYPE_CHECKING:`` are for type hints only and left out."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            return
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.append((node.module.split(".")[0], in_function))
            elif node.level == 1:
                found.extend((a.name, in_function) for a in node.names)
            elif (node.module or "").startswith("mkf_utils."):
                found.append((node.module.split(".")[1], in_function))
        if isinstance(node, ast.Import):  # import mkf_utils.x
            found.extend((a.name.split(".")[1], in_function) for a in node.names if a.name.startswith("mkf_utils."))
        for child in ast.iter_child_nodes(node):
            visit(child, in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)))

    visit(tree, False)
    return found


MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def test_every_module_has_a_layer():
    placed = set().union(*LAYERS)
    assert set(MODULES) == placed, f"place {sorted(set(MODULES) - placed)} in LAYERS (or drop {sorted(placed - set(MODULES))})"


@pytest.mark.parametrize("module", MODULES)
def test_imports_go_down_the_layers_and_stay_at_module_level(module):
    level = next(i for i, layer in enumerate(LAYERS) if module in layer)
    for name, in_function in _imports(module):
        assert next(i for i, layer in enumerate(LAYERS) if name in layer) <= level, f"{module} imports {name}, a layer up"
        assert not in_function or module == "cli", f"{module} imports {name} inside a function"


def _loop(graph: dict[str, set[str]]) -> list[str] | None:
    """An import loop in ``graph`` (module -> modules it imports) as a path, or None."""
    done: set[str] = set()

    def visit(m: str, path: list[str]) -> list[str] | None:
        if m in path:
            return path[path.index(m):] + [m]
        if m in done:
            return None
        for n in sorted(graph.get(m, ())):
            found = visit(n, path + [m])
            if found:
                return found
        done.add(m)
        return None

    return next((loop for m in sorted(graph) if (loop := visit(m, []))), None)


def test_no_import_loop():
    loop = _loop({m: {n for n, _ in _imports(m)} for m in MODULES})
    assert loop is None, "import loop: " + " -> ".join(loop)


def test_the_checker_sees_a_loop_and_a_hidden_import(tmp_path, monkeypatch):
    """The walk above can fail: on a constructed package with a loop hidden inside a function it reports both."""
    (tmp_path / "a.py").write_text("from .b import x\n")
    (tmp_path / "b.py").write_text("def f():\n    from .a import y\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path)
    assert _imports("b") == [("a", True)] and _imports("a") == [("b", False)]
    assert _loop({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"] and _loop({"a": {"b"}, "b": set()}) is None
