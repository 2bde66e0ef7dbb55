"""A hand-written insecure Pulumi program is judged exactly as stock checkov judges the same resources in Terraform.

tests/fixtures/insecure-project is a plain pulumi_aws program; tests/fixtures/insecure-terraform/main.tf declares the
same resources, with the same names, values and references, in Terraform. hardstack synthesizes the program, bridges
it to a plan and runs checkov on it; stock checkov (in a subprocess, so that no registry is shared with the plan run)
scans the .tf directory. Every checkov result, per (check ID, address), must be the same on both sides.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hardstack.policies.bridge import bridge
from hardstack.policies.gate import run_gate
from hardstack.stacks.synth import synth_directory

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PROJECT = FIXTURES / "insecure-project"
TERRAFORM = FIXTURES / "insecure-terraform"

Key = tuple[str, str]  # (check ID, address)

EXCLUDED: dict[Key, str] = {}
"""(check ID, address) pairs whose judgement may differ for a reason of Terraform-vs-plan semantics. None do."""

WELL_KNOWN_FAILURES: list[Key] = [
    ("CKV_AWS_24", "aws_security_group.ssh-open"),  # SSH from 0.0.0.0/0
    ("CKV_AWS_79", "aws_launch_template.gpu-workers"),  # IMDSv1 allowed
    ("CKV_AWS_7", "aws_kms_key.scratch-key"),  # no key rotation
    ("CKV2_AWS_11", "aws_vpc.ml-vpc"),  # no flow logs
    ("CKV_AWS_130", "aws_subnet.public-subnet"),  # public IPs on launch
    ("CKV_AWS_158", "aws_cloudwatch_log_group.training-logs"),  # not KMS-encrypted
    ("CKV_AWS_338", "aws_cloudwatch_log_group.training-logs"),  # retention under a year
    ("CKV2_AWS_6", "aws_s3_bucket.training-data"),  # no public access block
    ("CKV_AWS_21", "aws_s3_bucket.training-data"),  # no versioning
    ("CKV_AWS_145", "aws_s3_bucket.training-data"),  # not KMS-encrypted
    ("CKV_AWS_62", "aws_iam_role_policy.trainer-admin"),  # "Action": "*" on "*"
    ("CKV_AWS_60", "aws_iam_role.vendor-access"),  # any AWS account may assume the role
    ("CKV_AWS_70", "aws_s3_bucket_policy.training-data-public-read"),  # any principal may read
    ("CKV_AWS_173", "aws_lambda_function.embedder"),  # environment not encrypted with a customer key
]

WELL_KNOWN_PASSES: list[Key] = [
    ("CKV_AWS_7", "aws_kms_key.models-key"),
    ("CKV_AWS_79", "aws_instance.notebook"),
    ("CKV_AWS_8", "aws_instance.notebook"),
    ("CKV2_AWS_6", "aws_s3_bucket.models"),
    ("CKV_AWS_21", "aws_s3_bucket.models"),
    ("CKV_AWS_145", "aws_s3_bucket.models"),
    ("CKV_AWS_18", "aws_s3_bucket.models"),
    ("CKV_AWS_53", "aws_s3_bucket_public_access_block.models-public-access"),
    ("CKV_AWS_50", "aws_lambda_function.embedder"),
    ("CKV_AWS_116", "aws_lambda_function.embedder"),
    ("CKV_AWS_117", "aws_lambda_function.embedder"),
]

_PROVIDER = re.compile(r"[a-z0-9-]+\.[A-Za-z0-9_-]+")
"""A provider configuration's address (`aws.default`, `aws.<alias>`): no underscore in the first part, unlike a
resource type."""
_RESOURCE_BLOCK = re.compile(r'^resource\s+"([^"]+)"\s+"([^"]+)"', re.MULTILINE)


def declared_addresses() -> set[str]:
    """Every `resource "type" "name"` of main.tf, as its checkov address."""
    return {f"{t}.{n}" for t, n in _RESOURCE_BLOCK.findall((TERRAFORM / "main.tf").read_text())}


@pytest.fixture(scope="module")
def inventory():
    return synth_directory(PROJECT)


@pytest.fixture(scope="module")
def hardstack_results(inventory) -> dict[Key, str]:
    """checkov's results (not hardstack's own checks) on the bridged plan, as the gate reports them."""
    report = run_gate(inventory, target=str(PROJECT))
    results: dict[Key, str] = {}
    for r in report.results:
        if r.engine != "checkov":
            continue
        key = (r.check_id, r.address)
        assert key not in results, f"{key} reported twice by the gate"
        results[key] = r.status
    return results


def _checkov() -> str:
    beside = Path(sys.executable).parent / "checkov"
    found = str(beside) if beside.is_file() else shutil.which("checkov")
    if not found:
        pytest.fail("stock checkov is not installed beside this Python nor on PATH")
    return found


@pytest.fixture(scope="module")
def terraform_results(tmp_path_factory) -> dict[Key, str]:
    """Stock checkov's results on main.tf, run as a user would (a separate process, offline)."""
    directory = tmp_path_factory.mktemp("insecure-terraform")
    shutil.copy(TERRAFORM / "main.tf", directory / "main.tf")
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CKV_SKIP_PACKAGE_UPDATE_CHECK="true",
               CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false")
    env.pop("BC_API_KEY", None)
    proc = subprocess.run(
        [_checkov(), "-d", str(directory), "--framework", "terraform", "--skip-download", "-o", "json"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode in (0, 1), f"checkov failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    data = json.loads(proc.stdout)
    reports = data if isinstance(data, list) else [data]
    results: dict[Key, str] = {}
    for rep in reports:
        assert rep["check_type"] == "terraform"
        assert rep["summary"]["parsing_errors"] == 0, rep["results"].get("parsing_errors")
        for status in ("passed", "failed", "skipped"):
            for rec in rep["results"][f"{status}_checks"]:
                key = (rec["check_id"], rec.get("resource_address") or rec["resource"])
                assert key not in results, f"{key} reported twice by checkov"
                results[key] = status
    return results


def _resource_level(results: dict[Key, str], addresses: set[str]) -> dict[Key, str]:
    """Results on the declared resources; anything else must be provider-level (e.g. CKV_AWS_41 on aws.default)."""
    not_provider = sorted(k for k in results if k[1] not in addresses and not _PROVIDER.fullmatch(k[1]))
    assert not not_provider, f"results on addresses that are neither declared resources nor providers: {not_provider}"
    return {k: v for k, v in results.items() if k[1] in addresses and k not in EXCLUDED}


def _diff(ours: dict[Key, str], theirs: dict[Key, str]) -> str:
    lines = [f"{'check':<14} {'address':<62} {'hardstack':<10} terraform"]
    for key in sorted(set(ours) | set(theirs), key=lambda k: (k[1], k[0])):
        a, b = ours.get(key, "-"), theirs.get(key, "-")
        if a != b:
            lines.append(f"{key[0]:<14} {key[1]:<62} {a:<10} {b}")
    return "\n".join(lines)


def test_same_resources(inventory) -> None:
    ours = set(bridge(inventory).address_of.values())
    assert ours == declared_addresses(), (
        f"only in the Pulumi program: {sorted(ours - declared_addresses())}; "
        f"only in main.tf: {sorted(declared_addresses() - ours)}"
    )
    assert len(ours) >= 15


def test_both_sides_judge_every_checked_resource(hardstack_results, terraform_results) -> None:
    addresses = declared_addresses()
    ours = {a for _, a in _resource_level(hardstack_results, addresses)}
    theirs = {a for _, a in _resource_level(terraform_results, addresses)}
    assert ours == theirs, (
        f"judged only by hardstack: {sorted(ours - theirs)}; only by terraform: {sorted(theirs - ours)}"
    )


@pytest.mark.parametrize("side", ["hardstack", "terraform"])
def test_not_vacuous(side, hardstack_results, terraform_results) -> None:
    results = _resource_level(hardstack_results if side == "hardstack" else terraform_results, declared_addresses())
    failed = sorted(k for k, v in results.items() if v == "failed")
    passed = sorted(k for k, v in results.items() if v == "passed")
    assert len(failed) >= 10, failed
    assert len(passed) >= 20, passed
    wrong = [(k, "failed") for k in WELL_KNOWN_FAILURES if results.get(k) != "failed"]
    wrong += [(k, "passed") for k in WELL_KNOWN_PASSES if results.get(k) != "passed"]
    assert not wrong, f"{side}: well-known results missing: " + "; ".join(
        f"{c} on {a} should be {want}, is {results.get((c, a), 'not run')}" for (c, a), want in wrong
    )


def test_same_judgement_as_terraform(hardstack_results, terraform_results) -> None:
    addresses = declared_addresses()
    ours = _resource_level(hardstack_results, addresses)
    theirs = _resource_level(terraform_results, addresses)
    assert ours == theirs, (
        "checkov judges the Pulumi program and its Terraform twin differently:\n" + _diff(ours, theirs)
    )
