"""Units stay short: every function and method in functions/, tooling/ and scripts/ is at most
MAX_LINES lines long (from its ``def`` to its last line, as ``ast`` counts them)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("functions", "tooling", "scripts")
MAX_LINES = 80


def _units(tree: ast.AST, prefix: str = ""):
    """(qualified name, node) of every function and method, nested ones included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = f"{prefix}{node.name}"
            if not isinstance(node, ast.ClassDef):
                yield name, node
            yield from _units(node, f"{name}.")
        else:
            yield from _units(node, prefix)


def long_units(root: Path = ROOT, limit: int = MAX_LINES) -> dict[str, str]:
    """``{"<file name>::<qualified name>": "<path>:<line> (<n> lines)"}`` for every unit over ``limit``."""
    found = {}
    for top in SOURCES:
        for path in sorted((root / top).rglob("*.py")):
            for name, node in _units(ast.parse(path.read_text(), str(path))):
                length = node.end_lineno - node.lineno + 1
                if length > limit:
                    found[f"{path.name}::{name}"] = f"{path.relative_to(root)}:{node.lineno} ({length} lines)"
    return found


def test_every_function_and_method_is_at_most_80_lines():
    over = long_units()
    assert not over, f"units over {MAX_LINES} lines: " + "; ".join(f"{key} at {where}" for key, where in sorted(over.items()))


def test_long_units_measures_from_def_to_last_line_and_names_methods(tmp_path):
    package = tmp_path / "tooling"
    package.mkdir()
    lines = ["class C:", "    def short(self):", "        return 1", "", "    def long(self):"]
    lines += [f"        x{i} = {i}" for i in range(3)] + ["", "", "def f():"] + [f"    x{i} = {i}" for i in range(3)]
    (package / "m.py").write_text("\n".join(lines) + "\n")
    assert long_units(tmp_path, limit=3) == {"m.py::C.long": "tooling/m.py:5 (4 lines)", "m.py::f": "tooling/m.py:11 (4 lines)"}
    assert long_units(tmp_path, limit=4) == {}
