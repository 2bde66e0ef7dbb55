"""docs/controls.md names only what exists, and names every hardstack check."""

from __future__ import annotations

import importlib
import re
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from hardstack.blueprints.blueprint import Blueprint
from hardstack.policies.catalog import hardstack_checks

REPO = Path(__file__).resolve().parent.parent
TEXT = (REPO / "docs" / "controls.md").read_text()
ROWS = re.findall(r"^\| (settings|components|checks|tests) \| (.*) \|$", TEXT, re.M)
MODULES = ["kms", "storage", "network", "cluster", "gpu", "nodes", "tenancy", "identity", "vault", "agents", "registry",
           "admission", "endpoint", "audit", "monitoring"]


def named(kind: str) -> set[str]:
    return {n for k, row in ROWS if k == kind for n in re.findall(r"`([^`]+)`", row)}


def model_of(annotation: typing.Any) -> type[BaseModel] | None:
    """The spec model inside an annotation (optional, list or map of it)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = model_of(arg)
        if found:
            return found
    return None


def resolves(path: str) -> bool:
    model: type[BaseModel] | None = Blueprint
    for part in path.replace("[]", "").split("."):
        if model is None or part not in model.model_fields:
            return False
        model = model_of(model.model_fields[part].annotation)
    return True


def test_every_concern_has_all_four_rows() -> None:
    concerns = re.findall(r"^## (.+)$", TEXT, re.M)
    assert concerns == ["Data protection", "Access (identity)", "Model protection", "Infrastructure", "Supply chain",
                        "Operations", "Agents"]
    assert [k for k, _ in ROWS] == ["settings", "components", "checks", "tests"] * len(concerns)


@pytest.mark.parametrize("path", sorted(named("settings")))
def test_settings_exist(path: str) -> None:
    assert resolves(path), f"{path} is not a blueprint setting"


def test_components_exist() -> None:
    classes = {name for m in MODULES for name in vars(importlib.import_module(f"hardstack.modules.{m}"))}
    assert named("components") <= classes, named("components") - classes


def test_checks_exist_and_every_hardstack_check_is_named() -> None:
    from hardstack.policies.engine import known_check_ids

    checks = named("checks")
    assert set(hardstack_checks()) <= checks, set(hardstack_checks()) - checks
    known = known_check_ids() | set(hardstack_checks())  # with the gate-evaluated ones
    assert checks <= known, checks - known


def test_tests_exist() -> None:
    missing = [t for t in named("tests") if not (REPO / t).is_file()]
    assert not missing
