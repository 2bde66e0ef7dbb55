"""hardstack's own checks: each has metadata, a fixture that passes and one that fails, and agrees with its doc."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hardstack.policies import docs, native
from hardstack.policies.bridge import bridge
from hardstack.policies.catalog import hardstack_checks
from hardstack.policies.engine import CHECKS_DIR, scan
from hardstack.policies.meta import AREAS
from hardstack.stacks.synth import run_program

REPO = Path(__file__).resolve().parent.parent
CHECKS = hardstack_checks()
FIXTURES = [
    (check_id, kind, name)
    for check_id, entry in CHECKS.items()
    for kind, fixtures in (("pass", entry.passing), ("fail", entry.failing))
    for name in fixtures
]


def verdicts(check_id: str, program, tmp_path: Path) -> set[str]:  # type: ignore[no-untyped-def]
    inventory = run_program(program, project="fixture", stack="test", region="us-east-1")
    for rel, text in bridge(inventory).files().items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    plan = "plan.json" if (tmp_path / "plan.json").exists() else None
    findings, _ = scan(tmp_path, plan, "manifests", checks=[check_id])
    findings += native.run(bridge(inventory), inventory, [check_id])
    return {f.status for f in findings if f.check_id == check_id}


@pytest.mark.parametrize("check_id, kind, name", FIXTURES, ids=[f"{c}-{n}" for c, _, n in FIXTURES])
def test_fixture_verdict(check_id: str, kind: str, name: str, tmp_path: Path) -> None:
    """A passing fixture yields at least one pass and no failure; a failing fixture yields a failure."""
    entry = CHECKS[check_id]
    program = (entry.passing if kind == "pass" else entry.failing)[name]
    found = verdicts(check_id, program, tmp_path)
    if kind == "pass":
        assert found == {"passed"}, found
    else:
        assert "failed" in found, found


@pytest.mark.parametrize("check_id", sorted(CHECKS))
def test_every_check_has_both_fixtures_and_full_metadata(check_id: str) -> None:
    entry = CHECKS[check_id]
    assert entry.passing and entry.failing, f"{check_id} needs a passing and a failing fixture"
    m = entry.meta
    assert m.title and len(m.rationale) > 60 and m.remediation and m.resources and m.area in AREAS
    assert all(ref.startswith("LLM") and ": " in ref for ref in m.owasp_llm)
    assert all(ref.startswith("AML.T") and ": " in ref for ref in m.mitre_atlas)


@pytest.mark.parametrize("check_id", sorted(c for c, e in CHECKS.items() if e.graph))
def test_graph_check_yaml_agrees_with_its_metadata(check_id: str) -> None:
    entry = CHECKS[check_id]
    definition = yaml.safe_load((CHECKS_DIR / f"{Path(entry.module.__file__).stem}.yaml").read_text())
    assert definition["metadata"]["id"] == check_id
    assert definition["metadata"]["name"] == entry.meta.title
    assert definition["metadata"]["severity"] == entry.meta.severity


def test_checks_dir_loads_in_stock_checkov() -> None:
    """The checks directory has the __init__.py checkov needs to load Python checks (else they are skipped)."""
    assert (CHECKS_DIR / "__init__.py").is_file()
    ids = {p.stem.upper() for p in CHECKS_DIR.glob("hs_*.py")}
    assert ids == set(CHECKS)


def test_checks_reference_is_current() -> None:
    """docs/checks.md is what the check definitions generate; run `make docs` after changing a check."""
    assert (REPO / "docs" / "checks.md").read_text() == docs.render()
