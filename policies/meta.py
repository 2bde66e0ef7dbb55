"""What every hardstack check states about itself: the reviewer-facing half of a check."""

from __future__ import annotations

from dataclasses import dataclass, field

AREAS = ("data", "identity", "model", "infrastructure", "supply chain", "operations", "agents")
SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")


@dataclass(frozen=True)
class CheckMeta:
    id: str
    title: str
    severity: str
    area: str
    rationale: str
    remediation: str
    owasp_llm: tuple[str, ...] = ()
    mitre_atlas: tuple[str, ...] = ()
    waivable: bool = True
    resources: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.id.startswith("HS_"):
            raise ValueError(f"{self.id}: hardstack check IDs start with HS_")
        if self.area not in AREAS:
            raise ValueError(f"{self.id}: area {self.area!r} not one of {AREAS}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"{self.id}: severity {self.severity!r} not one of {SEVERITIES}")
