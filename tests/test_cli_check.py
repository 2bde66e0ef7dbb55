"""`hardstack check` as CI runs it: exit codes, formats, files, and the same verdicts as stock checkov."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from hardstack.blueprints.loader import catalog
from hardstack.errors import EXIT_INVALID, EXIT_NOT_VERIFIED, EXIT_OK, EXIT_VIOLATIONS

BIN = Path(sys.executable).parent
FIXTURES = Path(__file__).parent / "fixtures"


def hardstack(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "hardstack"), *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_reference_blueprint_passes_and_writes_everything(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = hardstack("check", "llm-inference", "--format", "json", "--output", str(tmp_path / "r.json"),
                     "--out-dir", str(out))
    assert proc.returncode == EXIT_OK, proc.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    # 10 by the blueprint's exceptions (CKV_AWS_144 on 7 buckets, CKV_AWS_61 on 3 persona roles), 3 by design:
    # the load balancers' access log bucket is SSE-S3, the only encryption ELB delivers logs to, and the GuardDuty
    # detector has no organization configuration (only an organization's delegated administrator can set one)
    assert data["summary"]["failed"] == 0 and data["summary"]["skipped"] == 13
    skipped = [r for r in data["results"] if r["status"] == "skipped"]
    by_design = sorted((r["check_id"], r["resource"].rsplit("::", 1)[-1]) for r in skipped
                       if r["exception"].get("by_design"))
    assert by_design == [("CKV2_AWS_3", "detection-guardduty"), ("CKV_AWS_145", "endpoint-logs-bucket"),
                         ("HS_DATA_002", "endpoint-logs-encryption")]
    assert all(r["exception"]["owner"] == "platform-security" and r["exception"]["expires"]
               for r in skipped if not r["exception"].get("by_design"))
    assert {p.name for p in out.iterdir()} >= {"inventory.json", "plan.json", "report.json"}
    assert "passed: 0 failed, 13 skipped" in proc.stderr


def test_stock_checkov_on_the_out_dir_agrees_check_by_check(tmp_path: Path) -> None:
    """A user's CI running `checkov -d DIR --external-checks-dir "$(hardstack checks-dir)"` sees the same
    verdicts (before exceptions, which are hardstack's data) as `hardstack check`."""
    out = tmp_path / "out"
    proc = hardstack("check", "llm-inference", "--format", "json", "--out-dir", str(out))
    assert proc.returncode == EXIT_OK, proc.stderr
    from hardstack.policies.catalog import hardstack_checks

    from hardstack.policies.native import gate_only as evaluated_by_the_gate

    gate_only = {c for c, e in hardstack_checks().items() if evaluated_by_the_gate(e.module)}
    ours = {(r["check_id"], r["address"]): ("failed" if r["status"] == "skipped" else r["status"])
            for r in json.loads(proc.stdout)["results"] if r["check_id"] not in gate_only}
    checks_dir = hardstack("checks-dir").stdout.strip()
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}
    stock = subprocess.run(
        [str(BIN / "checkov"), "-d", str(out), "--framework", "terraform_plan", "kubernetes", "--skip-download",
         "--compact", "-o", "json", "--external-checks-dir", checks_dir],
        capture_output=True, text=True, env=env, timeout=300,
    )
    reports = json.loads(stock.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    theirs = {}
    for data in reports:
        for status, key in (("passed", "passed_checks"), ("failed", "failed_checks")):
            for r in data["results"][key]:
                theirs[(r["check_id"], r["resource"])] = status
    assert ours == theirs
    assert {d["check_type"] for d in reports} == {"terraform_plan", "kubernetes"}
    assert any(check.startswith("HS_") for check, _ in theirs), "hardstack's checks ran in stock checkov"


def test_violations_exit_1_with_table(tmp_path: Path) -> None:
    data = yaml.safe_load(catalog()["llm-inference"].read_text())
    data["exceptions"] = []
    bp = tmp_path / "bp.yaml"
    bp.write_text(yaml.safe_dump(data))
    proc = hardstack("check", str(bp))
    assert proc.returncode == EXIT_VIOLATIONS
    assert "FAIL CKV_AWS_144" in proc.stdout and "FAILED:" in proc.stdout and "\033[" not in proc.stdout


def test_invalid_exception_exit_2(tmp_path: Path) -> None:
    data = yaml.safe_load(catalog()["llm-inference"].read_text())
    data["exceptions"][0]["check"] = "CKV_AWS_145"
    bp = tmp_path / "bp.yaml"
    bp.write_text(yaml.safe_dump(data))
    proc = hardstack("check", str(bp), "--output", str(tmp_path / "report.txt"))
    assert proc.returncode == EXIT_INVALID
    assert "cannot be excepted" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "report.txt").exists()


def test_unjudgeable_program_exit_3(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: p\nruntime: python\n")
    (project / "__main__.py").write_text(
        "import pulumi_aws as aws\n"
        "aws.s3.BucketIntelligentTieringConfiguration('t', bucket='b', tierings=[{'access_tier': 'ARCHIVE_ACCESS', 'days': 90}])\n"
    )
    proc = hardstack("check", str(project), "--out-dir", str(tmp_path / "out"))
    assert proc.returncode == EXIT_NOT_VERIFIED
    assert "not verified" in proc.stderr and "bucketIntelligentTieringConfiguration" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_user_project_with_exceptions_file(tmp_path: Path) -> None:
    proc = hardstack("check", str(FIXTURES / "user-project"), "--format", "json")
    assert proc.returncode == EXIT_VIOLATIONS
    failing = {r["check_id"] for r in json.loads(proc.stdout)["results"] if r["status"] == "failed"}
    assert "CKV_AWS_21" in failing  # no versioning
    exceptions = tmp_path / "exceptions.yaml"
    exceptions.write_text(yaml.safe_dump({"exceptions": [
        {"check": "CKV_AWS_21", "resource": "models", "owner": "team-models",
         "reason": "artifacts are rebuilt from source on demand; no history is needed", "expires": "2099-01-01"}]}))
    proc = hardstack("check", str(FIXTURES / "user-project"), "--format", "json", "--exceptions", str(exceptions))
    skipped = [r for r in json.loads(proc.stdout)["results"] if r["status"] == "skipped"]
    assert [r["check_id"] for r in skipped] == ["CKV_AWS_21"]


def test_checks_lists_both_engines() -> None:
    proc = hardstack("checks", "--format", "json")
    assert proc.returncode == EXIT_OK
    rows = json.loads(proc.stdout)
    engines = {r["engine"] for r in rows}
    assert engines == {"hardstack", "checkov", "audit"}
    by_id = {r["id"]: r for r in rows}
    assert by_id["HS_DATA_002"]["waivable"] is False and by_id["CKV_AWS_145"]["waivable"] is False
    assert by_id["CKV_AWS_144"]["waivable"] is True


def test_sarif_to_file(tmp_path: Path) -> None:
    proc = hardstack("check", "llm-inference", "--format", "sarif", "--output", str(tmp_path / "r.sarif"))
    assert proc.returncode == EXIT_OK
    assert json.loads((tmp_path / "r.sarif").read_text())["version"] == "2.1.0"
