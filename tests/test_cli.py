"""The `hardstack` command as a user runs it: real process, exit codes, messages, files written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from hardstack.errors import EXIT_INVALID, EXIT_OK

HARDSTACK = Path(sys.executable).parent / "hardstack"
FIXTURES = Path(__file__).parent / "fixtures"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HARDSTACK), *args], capture_output=True, text=True, cwd=cwd, timeout=120, env={**os.environ}
    )


def test_synth_reference_blueprint_writes_inventory(tmp_path: Path) -> None:
    """`hardstack synth llm-inference --out-dir out` writes the KMS, bucket and VPC resources with references."""
    out = tmp_path / "out"
    proc = run("synth", "llm-inference", "--out-dir", str(out))
    assert proc.returncode == EXIT_OK, proc.stderr
    data = json.loads((out / "inventory.json").read_text())
    types = {r["type"] for r in data["resources"]}
    assert {"aws:kms/key:Key", "aws:s3/bucket:Bucket", "aws:ec2/vpc:Vpc", "aws:ec2/flowLog:FlowLog"} <= types
    sse = [r for r in data["resources"] if r["type"].endswith("BucketServerSideEncryptionConfiguration")]
    # the load balancers' access log bucket is SSE-S3 by design (ELB delivers logs to no KMS-encrypted bucket)
    elb_logs = [r for r in sse if "::hardstack:endpoint:EndpointLogs::" in r["parent"]]
    assert len(elb_logs) == 1 and elb_logs[0]["inputs"]["rules"] == [
        {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]
    kms = [r for r in sse if r not in elb_logs]
    assert kms and all(any(ref["attribute"] == "arn" for ref in r["references"]) for r in kms)
    for r in data["resources"]:
        assert set(r) == {"urn", "type", "name", "parent", "custom", "inputs", "references"}
    # running again overwrites hardstack's own output
    assert run("synth", "llm-inference", "--out-dir", str(out)).returncode == EXIT_OK


def test_synth_refuses_a_directory_of_the_users(tmp_path: Path) -> None:
    """Never overwrite a user's files without being asked; nothing is written."""
    (tmp_path / "notes.txt").write_text("mine")
    proc = run("synth", "llm-inference", "--out-dir", str(tmp_path))
    assert proc.returncode == EXIT_INVALID
    assert "refusing to overwrite" in proc.stderr and "--force" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert run("synth", "llm-inference", "--out-dir", str(tmp_path), "--force").returncode == EXIT_OK
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_bad_blueprint_exit_2_with_location_and_no_traceback(tmp_path: Path) -> None:
    bp = tmp_path / "bp.yaml"
    bp.write_text("name: demo\nregion: us-east-1\nnetwork:\n  egress: open\n")
    out = tmp_path / "out"
    proc = run("synth", str(bp), "--out-dir", str(out))
    assert proc.returncode == EXIT_INVALID
    assert f"{bp}:4: network.egress:" in proc.stderr and "'open'" in proc.stderr and "'nat'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists(), "a failed run must leave no output behind"


def test_debug_shows_traceback(tmp_path: Path) -> None:
    bp = tmp_path / "bp.yaml"
    bp.write_text("name: demo\nregion: nowhere\n")
    proc = run("--debug", "synth", str(bp), "--out-dir", str(tmp_path / "o"))
    assert proc.returncode == EXIT_INVALID and "Traceback" in proc.stderr


def test_unknown_target(tmp_path: Path) -> None:
    proc = run("synth", "nope", "--out-dir", str(tmp_path / "o"))
    assert proc.returncode == EXIT_INVALID and "llm-inference" in proc.stderr and "Traceback" not in proc.stderr


def test_broken_user_program(tmp_path: Path) -> None:
    proc = run("synth", str(FIXTURES / "broken-project"), "--out-dir", str(tmp_path / "o"))
    assert proc.returncode == EXIT_INVALID
    assert "__main__.py:4" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_synth_user_project(tmp_path: Path) -> None:
    proc = run("synth", str(FIXTURES / "user-project"), "--out-dir", str(tmp_path / "o"))
    assert proc.returncode == EXIT_OK, proc.stderr
    assert len(json.loads((tmp_path / "o" / "inventory.json").read_text())["resources"]) == 5


@pytest.mark.parametrize("kind", ["blueprint", "stack"])
def test_schema_is_valid_json_schema(kind: str) -> None:
    proc = run("schema", kind)
    assert proc.returncode == EXIT_OK
    schema = json.loads(proc.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)


def test_blueprints_lists_the_reference() -> None:
    proc = run("blueprints")
    names = [line.split()[0] for line in proc.stdout.splitlines()]
    assert proc.returncode == EXIT_OK and names == ["agent-sandbox", "llm-inference", "multi-tenant-gpu"]


def test_usage_error_exit_2() -> None:
    proc = run("synth")
    assert proc.returncode == EXIT_INVALID
