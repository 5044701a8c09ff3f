"""The package's layers import one way only, in the order the data flows (docs/architecture.md):
every import of another `fa_compress` unit, at module level or inside a
function, must point to a unit below the importer. Inside functions only optional or heavy
third-party packages are imported, never another facompress unit.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "fa_compress"
# lowest first; units on one line share a floor and must not import one another
LAYERS = [
    ("errors",),
    ("_deps", "_seed", "accuracy", "machine"),
    ("selection",),  # the rule every validation choice follows; reads accuracy's paired test
    ("run",),
    ("gates",),
    ("models",),
    ("data",),
    ("train",),
    ("pruning",),
    ("export",),
    ("bench",),
    ("report",),
    ("search",),
    ("recipe",),  # the whole chain from a recipe: calls every stage, the latency search included
    ("api",),
]
FLOOR = {unit: level for level, units in enumerate(LAYERS) for unit in units}
TOP = len(LAYERS)  # fa_compress/__init__.py: the lazy public face, above everything


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, imported module, inside a function) for every import in `path`."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    found: list[tuple[int, str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    name = ".".join(base + ([child.module] if child.module else []))
                    names = [name] if child.module else [f"{name}.{a.name}" for a in child.names]
                else:
                    names = [child.module or ""]
                found.extend((child.lineno, n, in_function) for n in names)
            elif isinstance(child, ast.Import):
                found.extend((child.lineno, a.name, in_function) for a in child.names)
            visit(child, nested)

    visit(tree, False)
    return found


def _unit(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "fa_compress" and len(parts) > 1 else None


def _floor(unit: str | None) -> int:
    return TOP if unit is None else FLOOR[unit]


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_unit_has_a_floor():
    units = {_unit(_module_name(p)) for p in _sources()} - {None}
    assert sorted(units - set(FLOOR)) == [], "add the new unit to LAYERS (and to docs/architecture.md)"


def test_imports_point_down_only():
    wrong = []
    for path in _sources():
        source_unit = _unit(_module_name(path))
        for line, target, _ in _imports(path):
            target_unit = _unit(target)
            if target_unit is None or target_unit == source_unit or target_unit == "__version__":
                continue
            if target_unit in FLOOR and _floor(target_unit) >= _floor(source_unit):
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target} ({source_unit} -> {target_unit})")
    assert wrong == []


def test_functions_import_no_facompress_unit_of_another_layer():
    """A facompress import inside a function is a cycle dodged; only third-party packages load lazily
    (the package's lazy `__init__`, and `api.py` keeping `import fa_compress` cheap, are the exceptions)."""
    wrong = []
    for path in _sources():
        source_unit = _unit(_module_name(path))
        if source_unit in (None, "api"):
            continue
        for line, target, in_function in _imports(path):
            target_unit = _unit(target)
            if in_function and target_unit is not None and target_unit != source_unit and target_unit in FLOOR:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target} inside a function")
    assert wrong == []


def test_the_package_never_imports_the_cli():
    wrong = [f"{p.relative_to(ROOT)}:{line}" for p in _sources() for line, target, _ in _imports(p)
             if target == "fa_compress.cli" or target.startswith("fa_compress.cli.") or target.split(".")[0] == "cli"]
    assert wrong == []


@pytest.mark.parametrize("case", ["upward", "inside a function"])
def test_the_guard_catches_a_wrong_import(tmp_path, case):
    """The checks above can fail: a gates module importing pruning is found."""
    body = ("from ..pruning import budget\n" if case == "upward"
            else "def f():\n    from ..models import build_model\n")
    path = PACKAGE / "gates" / "_layer_probe.py"
    path.write_text(body)
    try:
        imports = _imports(path)
        assert imports and _unit(imports[0][1]) in ("pruning", "models")
        assert _floor(_unit(imports[0][1])) > _floor("gates")
        assert imports[0][2] is (case == "inside a function")
    finally:
        path.unlink()
