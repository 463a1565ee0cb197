"""The packages of attnlab form floors, and imports only go down (docs/architecture.md):
a lower floor never imports a higher one, and packages on the same floor (train and viz)
never import each other. Read from the source with ``ast``: every import counts, lazy
ones inside functions included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "attnlab"

#: package -> floor (keep in step with docs/architecture.md).
FLOORS = {
    "ops": 1,
    "data": 1,
    "testing": 2,
    "layers": 2,
    "integrations": 3,
    "capture": 4,
    "models": 4,
    "generate": 4,
    "tasks": 5,
    "runs": 6,
    "train": 7,
    "viz": 7,
    "explore": 8,
    "heads": 8,
    "bench": 8,
    "cli": 9,
}


def _package(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "attnlab" or len(parts) < 2:
        return None
    return parts[1]


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif (  # importlib.import_module("attnlab.x")
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


FILES = sorted(p for p in SRC.rglob("*.py") if p.parent != SRC or p.stem == "testing")


def test_every_package_has_a_floor():
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(FLOORS), f"no floor for {sorted(packages - set(FLOORS))}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_only_go_down(path):
    rel = path.relative_to(SRC)
    home = rel.parts[0] if len(rel.parts) > 1 else rel.stem
    floor = FLOORS[home]
    bad = []
    for line, module in _imports(path):
        target = _package(module)
        if target is None or target == home or target not in FLOORS:
            continue
        if FLOORS[target] >= floor:
            bad.append(
                f"line {line}: {home} (floor {floor}) imports {module} (floor {FLOORS[target]})"
            )
    assert not bad, "\n".join(bad)
