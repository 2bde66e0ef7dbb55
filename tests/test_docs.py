"""Generated docs are current."""

from __future__ import annotations

from pathlib import Path

from hardstack.blueprints import reference

REPO = Path(__file__).resolve().parent.parent


def test_blueprint_reference_is_current() -> None:
    """docs/blueprint-reference.md is what the specs generate; run `make docs` after changing a spec."""
    assert (REPO / "docs" / "blueprint-reference.md").read_text() == reference.render()


def test_every_spec_field_is_documented() -> None:
    """Every setting has a description: its secure default explained."""
    text = reference.render()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert rows and all(not line.rstrip().endswith("|  |") for line in rows), [
        r for r in rows if r.rstrip().endswith("|  |")
    ]
