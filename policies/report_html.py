"""The report as one self-contained HTML page: the architecture picture (inline SVG), the threat model and the
gate's verdicts, filterable. Nothing is fetched when it is opened: the style and the script are inline and a
Content-Security-Policy allows exactly those two (by hash) and nothing else. Every value from the stack is
escaped by Jinja's autoescaping; the SVG is Graphviz's output rebuilt from an allowlist (inline_svg)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

import jinja2
from markupsafe import Markup

from hardstack import __version__
from hardstack.stacks.inventory import Inventory

from .architecture import render_svg
from .gate import GateReport, Result
from .inline_svg import safe_svg
from .threats import Coverage, coverage, name

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATUS = {"failed": "failed", "skipped": "excepted", "passed": "passed"}
ORDER = {"failed": 0, "excepted": 1, "passed": 2}


@dataclass
class Row:
    result: Result
    status: str  # failed | excepted | passed
    search: str


@dataclass
class Group:
    urn: str
    name: str
    address: str
    rows: list[Row]
    search: str

    def _count(self, status: str) -> int:
        return sum(r.status == status for r in self.rows)

    @property
    def failed(self) -> int:
        return self._count("failed")

    @property
    def excepted(self) -> int:
        return self._count("excepted")

    @property
    def passed(self) -> int:
        return self._count("passed")


def groups(report: GateReport) -> list[Group]:
    """The results per resource: resources with failures first, then those with exceptions, then the rest."""
    by_urn: dict[str, list[Row]] = {}
    for r in report.results:
        status = STATUS[r.status]
        words = [r.check_id, r.title, r.severity or "", status, r.detail or ""]
        if r.exception:
            words += [r.exception.get("reason", ""), r.exception.get("owner", ""),
                      "by design" if r.exception.get("by_design") else r.exception.get("expires", "")]
        by_urn.setdefault(r.resource, []).append(Row(r, status, " ".join(words).lower()))
    out = []
    for urn, rows in by_urn.items():
        rows.sort(key=lambda row: (ORDER[row.status], row.result.check_id))
        address = rows[0].result.address
        out.append(Group(urn, name(urn), address, rows, f"{name(urn)} {address} {urn}".lower()))
    out.sort(key=lambda g: (min(ORDER[r.status] for r in g.rows), g.name))
    return out


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["resource_name"] = name
    return env


def _csp_hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def render_html(report: GateReport, inventory: Inventory, threats: list[Coverage] | None = None) -> str:
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    js = (TEMPLATES / "report.js").read_text(encoding="utf-8")
    svg = safe_svg(render_svg(inventory, f"{report.target}: architecture"))
    return _environment().get_template("report.html.j2").render(
        report=report,
        summary=report.summary(),
        version=__version__,
        svg=Markup(svg),  # rebuilt from an allowlist by safe_svg; its text is XML-escaped
        css=Markup(css),
        js=Markup(js),
        style_hash=_csp_hash(css),
        script_hash=_csp_hash(js),
        threats=threats if threats is not None else coverage(report, inventory),
        groups=groups(report),
    )
