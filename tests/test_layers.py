"""Imports point one way: cli → policies → stacks → modules → blueprints (→ the root package)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ORDER = ["blueprints", "modules", "stacks", "policies", "cli"]


def hardstack_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "hardstack" and len(parts) > 1 and parts[1] in ORDER:
                found.add(parts[1])
    return found


def test_layers_import_only_downwards() -> None:
    offences = []
    for layer in ORDER:
        allowed = set(ORDER[: ORDER.index(layer) + 1])
        for path in sorted((REPO / layer).rglob("*.py")):
            bad = hardstack_imports(path) - allowed
            if bad:
                offences.append(f"{path.relative_to(REPO)} imports {sorted(bad)}")
    assert offences == []


def test_root_package_imports_no_layer() -> None:
    for path in (REPO / "hardstack").rglob("*.py"):
        assert hardstack_imports(path) == set(), path


def test_the_check_can_fail(tmp_path: Path) -> None:
    """The import scanner sees an upward import (so the layer test is not vacuous)."""
    bad = tmp_path / "x.py"
    bad.write_text("from hardstack.cli.main import main\nimport hardstack.policies\n")
    assert hardstack_imports(bad) == {"cli", "policies"}
