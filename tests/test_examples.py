"""Every example passes the gate, and shows what it says it shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hardstack.blueprints.loader import load
from hardstack.errors import EXIT_OK

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
HARDSTACK = Path(sys.executable).parent / "hardstack"

CHECKED = {
    "reference-stack": ["examples/reference-stack"],
    "platform-team": ["examples/platform-team/stack.yaml"],
    "python-program": ["examples/python-program", "--exceptions", "examples/python-program/exceptions.yaml"],
}


def check(*args: str) -> dict:  # type: ignore[type-arg]
    proc = subprocess.run([str(HARDSTACK), "check", *args, "--format", "json"], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ}, timeout=600)
    assert proc.returncode == EXIT_OK, proc.stdout[-3000:] + proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("example", sorted(CHECKED))
def test_example_passes_the_gate(example: str) -> None:
    report = check(*CHECKED[example])
    assert report["summary"]["failed"] == 0 and report["summary"]["passed"] > 50
    for result in report["results"]:
        if result["status"] == "skipped":
            assert result["exception"]["owner"] and len(result["exception"]["reason"]) >= 20


def test_every_example_is_checked_and_described() -> None:
    folders = {p.name for p in EXAMPLES.iterdir() if p.is_dir()}
    assert folders == set(CHECKED)
    index = (EXAMPLES / "README.md").read_text()
    assert all(f"`{f}/`" in index for f in folders)


def test_reference_stack_is_what_hardstack_new_makes(tmp_path: Path) -> None:
    """The checked-in example stays in step with the templates: regenerating it gives the same files."""
    proc = subprocess.run([str(HARDSTACK), "new", "llm-inference", str(tmp_path / "p")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == EXIT_OK, proc.stderr
    made = {p.relative_to(tmp_path / "p"): p.read_text() for p in (tmp_path / "p").rglob("*") if p.is_file()}
    kept = {p.relative_to(EXAMPLES / "reference-stack"): p.read_text()
            for p in (EXAMPLES / "reference-stack").rglob("*") if p.is_file()}
    assert made == kept


def test_platform_team_extends_adds_a_tenant_and_keeps_inherited_exceptions() -> None:
    bp = load(EXAMPLES / "platform-team" / "stack.yaml").blueprint
    assert {t.name for t in bp.compute.tenants} == {"research", "search", "fraud", "recommendations"}  # type: ignore[union-attr]
    recs = next(t for t in bp.compute.tenants if t.name == "recommendations")  # type: ignore[union-attr]
    assert recs.gpus == 8  # the stack file's override, merged by name
    assert [e.check for e in bp.exceptions] == ["CKV_AWS_144", "CKV_AWS_61", "HS_NET_001"]


def test_python_program_shows_subclass_transform_and_own_resources() -> None:
    source = (EXAMPLES / "python-program" / "__main__.py").read_text()
    assert "class FeatureStoreBucket(EncryptedBucket)" in source
    assert "register_resource_transform" in source and "aws.iam.Role(" in source
    from hardstack.stacks.synth import synth_directory

    inventory = synth_directory(EXAMPLES / "python-program")
    bucket = inventory.named("online-features-bucket")
    assert bucket.inputs["tags"]["team"] == "features"  # the transform ran
    assert bucket.inputs["tags"]["hardstack:purpose"] == "feature-store"  # the subclass kept the hardening
    reader = inventory.named("feature-reader")
    assert any(r.path == ("permissionsBoundary",) for r in reader.references)
    grants = [r for r in inventory.of_type("aws:iam/rolePolicy:RolePolicy") if r.name.endswith("feature-reader")]
    assert grants and all(r.refs_to(reader.urn) for r in grants)
