"""The threat model and the gate's verdict summary (failures and exceptions) as Markdown, for pull-request
comments. Values from the stack are escaped: no Markdown or HTML of their own reaches the comment."""

from __future__ import annotations

import re

from hardstack.stacks.inventory import Inventory

from .gate import GateReport, Result
from .threats import NOT_APPLICABLE, Coverage, coverage, name

_SPECIAL = re.compile(r"([\\`*_\[\]#|~])")


def md(value: object) -> str:
    """Text safe inside Markdown (and a table cell): specials backslash-escaped, HTML characters as entities,
    line breaks flattened."""
    s = re.sub(r"[\x00-\x1f\x7f]+", " ", str(value))
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", s)


def code(value: object, cell: bool = False) -> str:
    """An identifier as inline code (literal, whatever it holds): backticks dropped, since they cannot be escaped
    inside code; in a table cell `|` escaped, so that the cell does not end in it."""
    s = re.sub(r"[\x00-\x1f\x7f`]+", " ", str(value)).strip()
    s = s.replace("|", "\\|") if cell else s
    return f"`{s}`" if s else ""


def render_markdown(report: GateReport, inventory: Inventory, threats: list[Coverage] | None = None) -> str:
    threats = threats if threats is not None else coverage(report, inventory)
    s = report.summary()
    lines = [
        f"## hardstack report: {md(report.target)}",
        "",
        f"**{'PASSED' if report.passed else 'FAILED'}**: {s['resources']} resources judged, {s['failed']} failed, "
        f"{s['skipped']} excepted, {s['passed']} passed (inventory {code(report.inventory_digest)})",
        "",
        "### Threat model",
        "",
        "| threat | STRIDE | MITRE ATLAS | status |",
        "|---|---|---|---|",
    ]
    for c in threats:
        atlas = ", ".join(f"{code(tid, cell=True)} {md(tname)}" for tid, tname in c.threat.atlas)
        lines.append(f"| {md(c.threat.name)} | {md(', '.join(c.threat.stride))} | {atlas} | **{c.status}** |")
    for c in threats:
        lines += ["", f"#### {md(c.threat.name)}: {c.status}", ""]
        if c.status == NOT_APPLICABLE:
            lines.append(f"Not applicable: this stack holds no {md(c.threat.applies_to)}.")
            continue
        in_force = ", ".join(code(x.control.check_id) for x in c.in_force) or "none"
        lines.append(f"- Controls in force: {in_force}")
        left = c.left_as(code=code, text=md, failed="**failed**", gap="not built yet: ")
        if left:
            lines.append("- Left unmitigated:")
            lines += [f"  - {item}" for item in left]
        else:
            lines.append("- Left unmitigated: nothing known")
    lines += ["", "### Failed and excepted results", ""]
    shown = [r for r in report.results if r.status != "passed"]
    if not shown:
        lines.append("None: every result passed.")
    else:
        lines += ["| status | check | severity | resource | title | exception |", "|---|---|---|---|---|---|"]
        for r in sorted(shown, key=lambda r: (r.status != "failed", r.check_id, r.resource)):
            lines.append(f"| {'**failed**' if r.status == 'failed' else 'excepted'} | {code(r.check_id, True)} | "
                         f"{md(r.severity or '')} | {code(name(r.resource), True)} | {md(r.title)} | {_exception(r)} |")
    for note in report.notes:
        lines += ["", f"> note: {md(note)}"]
    return "\n".join(lines) + "\n"


def _exception(r: Result) -> str:
    if not r.exception:
        return md(r.detail or "")
    e = r.exception
    if e.get("by_design"):
        return f"{md(e.get('reason', ''))}; owner {md(e.get('owner', ''))}; by design"
    expired = " (expired)" if r.status == "failed" else ""
    return f"{md(e.get('reason', ''))}; owner {md(e.get('owner', ''))}; expires {md(e.get('expires', ''))}{expired}"
