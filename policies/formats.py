"""A gate report as a terminal table, JSON, SARIF 2.1.0 or JUnit XML."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any
from xml.etree import ElementTree as ET

from hardstack import __version__

from .gate import GateReport, Result

FORMATS = ("table", "json", "sarif", "junit")

JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "hardstack check and audit report",
    "type": "object",
    "required": ["summary", "results"],
    "properties": {
        "target": {"type": "string"},
        "inventory_digest": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
        "summary": {
            "type": "object",
            "required": ["resources", "passed", "failed", "skipped"],
            "properties": {k: {"type": "integer", "minimum": 0} for k in ("resources", "passed", "failed", "skipped")},
            "additionalProperties": False,
        },
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["check_id", "status", "resource", "address", "engine", "title", "severity",
                             "justification"],
                "properties": {
                    "check_id": {"type": "string"},
                    "status": {"enum": ["passed", "failed", "skipped"]},
                    "resource": {"type": "string", "pattern": "^(urn:pulumi:|arn:)"},
                    "address": {"type": "string"},
                    "engine": {"enum": ["checkov", "hardstack"]},
                    "title": {"type": "string"},
                    "severity": {"enum": ["LOW", "MEDIUM", "HIGH", "CRITICAL", None]},
                    "justification": {"type": ["string", "null"]},
                    "detail": {"type": "string"},
                    "exception": {
                        "type": "object",
                        "required": ["reason", "owner"],
                        "properties": {"reason": {"type": "string"}, "owner": {"type": "string"},
                                       "expires": {"type": "string", "format": "date"},
                                       "by_design": {"type": "boolean"}},
                        "additionalProperties": False,
                        # a blueprint's exception always expires; only hardstack's design exceptions do not
                        "oneOf": [{"required": ["expires"], "not": {"required": ["by_design"]}},
                                  {"required": ["by_design"], "properties": {"by_design": {"const": True}},
                                   "not": {"required": ["expires"]}}],
                    },
                },
                "additionalProperties": False,
            },
        },
        "notes": {"type": "array", "items": {"type": "string"}},
    },
}
"""The documented shape of `--format json`."""


def render(report: GateReport, fmt: str, color: bool = False) -> str:
    return {"table": table, "json": to_json, "sarif": sarif, "junit": junit}[fmt](report, color)  # type: ignore[operator]


def to_json(report: GateReport, color: bool = False) -> str:
    data = {
        "target": report.target,
        "inventory_digest": report.inventory_digest,
        "summary": report.summary(),
        "results": [r.to_json() for r in report.results],
        "notes": report.notes,
    }
    if report.inventory_digest is None:  # an account audit judges no synthesized stack
        del data["inventory_digest"]
    return json.dumps(data, indent=2) + "\n"


def table(report: GateReport, color: bool = False) -> str:
    def paint(text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if color else text

    mark = {"failed": paint("FAIL", "31;1"), "skipped": paint("SKIP", "33"), "passed": paint("pass", "32")}
    by_resource: dict[str, list[Result]] = defaultdict(list)
    for r in report.results:
        if r.status != "passed":
            by_resource[r.resource].append(r)
    lines = [f"hardstack {report.command} {report.target}"]
    for urn, results in sorted(by_resource.items()):
        lines.append("")
        lines.append(paint(f"{results[0].address}", "1") + f"  ({urn})")
        for r in sorted(results, key=lambda r: (r.status != "failed", r.check_id)):
            sev = f"[{r.severity}]" if r.severity else ""
            lines.append(f"  {mark[r.status]} {r.check_id:<12} {sev:<10} {r.title}")
            if r.detail:
                lines.append(f"       {r.detail}")
            if r.justification:
                lines.append(f"       {'excepted' if r.status == 'skipped' else 'exception'}: {r.justification}")
    for note in report.notes:
        lines.append(f"\nnote: {note}")
    s = report.summary()
    verdict = paint("PASSED", "32;1") if report.passed else paint("FAILED", "31;1")
    lines.append("")
    lines.append(
        f"{verdict}: {s['resources']} resources, {s['passed']} passed, {s['failed']} failed, {s['skipped']} skipped"
    )
    return "\n".join(lines) + "\n"


_SARIF_LEVEL = {"CRITICAL": "error", "HIGH": "error", "MEDIUM": "warning", "LOW": "note", None: "error"}
_SECURITY_SEVERITY = {"CRITICAL": "9.5", "HIGH": "8.0", "MEDIUM": "5.5", "LOW": "3.0"}


def sarif(report: GateReport, color: bool = False) -> str:
    own = report.metas
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for r in report.results:
        if r.status == "passed":
            continue
        if r.check_id not in rules:
            rule: dict[str, Any] = {
                "id": r.check_id,
                "name": r.check_id,
                "shortDescription": {"text": r.title},
                "properties": {"tags": ["security", r.engine]},
            }
            if r.check_id in own:
                meta = own[r.check_id]
                rule["fullDescription"] = {"text": meta.rationale}
                rule["help"] = {"text": meta.remediation}
                rule["properties"]["tags"] += [meta.area, *meta.owasp_llm, *meta.mitre_atlas]
            if r.severity in _SECURITY_SEVERITY:
                rule["properties"]["security-severity"] = _SECURITY_SEVERITY[r.severity]
            rules[r.check_id] = rule
        result: dict[str, Any] = {
            "ruleId": r.check_id,
            "level": _SARIF_LEVEL.get(r.severity, "error"),
            "message": {"text": f"{r.title}: {r.address}" + (f" ({r.detail})" if r.detail else "")},
            "locations": [_location(report, r)],
            "partialFingerprints": {"hardstack/v1": f"{r.check_id}:{r.resource}"},
        }
        if r.status == "skipped":
            result["suppressions"] = [
                {"kind": "external", "status": "accepted", "justification": r.justification or ""}
            ]
        results.append(result)
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "hardstack",
                        "version": __version__,
                        "informationUri": "https://pypi.org/project/hardstack/",
                        "rules": list(rules.values()),
                    }
                },
                "results": results,
                "properties": {"summary": report.summary(), "inventoryDigest": report.inventory_digest},
            }
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


def _location(report: GateReport, r: Result) -> dict[str, Any]:
    """The resource, and the blueprint or program that declares it; an account audit's resources have no file."""
    location: dict[str, Any] = {
        "logicalLocations": [{"name": r.address, "fullyQualifiedName": r.resource, "kind": "resource"}]}
    if report.inventory_digest is not None:
        location["physicalLocation"] = {"artifactLocation": {"uri": _artifact(report.target)}}
    return location


def _artifact(target: str) -> str:
    return target if target.endswith((".yaml", ".yml")) or "/" in target else f"{target}.yaml"


def junit(report: GateReport, color: bool = False) -> str:
    suites = ET.Element("testsuites", name="hardstack", tests=str(len(report.results)),
                        failures=str(report.count("failed")), skipped=str(report.count("skipped")))
    by_check: dict[str, list[Result]] = defaultdict(list)
    for r in report.results:
        by_check[r.check_id].append(r)
    for check_id, results in sorted(by_check.items()):
        suite = ET.SubElement(
            suites, "testsuite", name=check_id, tests=str(len(results)),
            failures=str(sum(r.status == "failed" for r in results)),
            skipped=str(sum(r.status == "skipped" for r in results)),
        )
        for r in results:
            case = ET.SubElement(suite, "testcase", classname=check_id, name=r.address)
            if r.status == "failed":
                failure = ET.SubElement(case, "failure", message=r.title, type=r.severity or "UNRATED")
                failure.text = f"{r.title}\nresource: {r.resource}" + (
                    f"\nexception: {r.justification}" if r.justification else "")
            elif r.status == "skipped":
                ET.SubElement(case, "skipped", message=r.justification or "excepted")
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
