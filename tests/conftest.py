"""Shared fixtures: synthesized inventories of shipped and ad-hoc blueprints."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from hardstack.blueprints.loader import load
from hardstack.stacks.inventory import Inventory
from hardstack.stacks.targets import synth_loaded

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def reference_inventory() -> Inventory:
    """The shipped reference blueprint `llm-inference`, synthesized once per test session."""
    return synth_loaded(load("llm-inference"))


@pytest.fixture
def synth_blueprint(tmp_path: Path) -> Callable[[dict[str, Any]], Inventory]:
    """Synthesize a blueprint given as a dict (written to a YAML file first, as a user would)."""

    def run(blueprint: dict[str, Any]) -> Inventory:
        path = tmp_path / f"{blueprint.get('name', 'bp')}.yaml"
        path.write_text(yaml.safe_dump(blueprint))
        return synth_loaded(load(path))

    return run
