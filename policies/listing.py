"""Every check the gate runs, and every control `hardstack audit` judges, for `hardstack checks` and
docs/checks.md."""

from __future__ import annotations

from dataclasses import dataclass

from .terraform_types import TERRAFORM_TYPES


@dataclass(frozen=True)
class CheckRow:
    id: str
    engine: str
    severity: str | None
    title: str
    waivable: bool
    applies_to: tuple[str, ...]


def all_checks() -> list[CheckRow]:
    """hardstack's checks, then checkov's checks that apply to resource types hardstack can judge."""
    from checkov.common.checks_infra.registry import get_graph_checks_registry
    from checkov.kubernetes.checks.resource.registry import registry as k8s_registry
    from checkov.terraform.checks.resource.registry import resource_registry

    from .catalog import hardstack_checks, non_waivable
    from .engine import load_checks

    load_checks()
    never = non_waivable()
    rows = [
        CheckRow(m.meta.id, "hardstack", m.meta.severity, m.meta.title, m.meta.waivable, m.meta.resources)
        for m in hardstack_checks().values()
    ]
    own = {r.id for r in rows}
    judged = set(TERRAFORM_TYPES.values())
    found: dict[str, tuple[str, set[str]]] = {}
    for registry, scope in ((resource_registry, judged), (k8s_registry, None)):
        for rtype, checks in registry.checks.items():
            if scope is not None and rtype not in scope:
                continue
            for c in checks:
                if c.id not in own:
                    found.setdefault(c.id, (c.name, set()))[1].add(rtype)
    for framework, scope in (("terraform", judged), ("kubernetes", None)):
        graph = get_graph_checks_registry(framework)
        graph.load_checks()
        for c in graph.checks:
            types = set(getattr(c, "resource_types", []) or [])
            if c.id in own or (scope is not None and not types & scope):
                continue
            found.setdefault(c.id, (c.name, set()))[1].update(types if scope is None else types & scope)
    for check_id, (title, types) in sorted(found.items(), key=lambda kv: _order(kv[0])):
        rows.append(CheckRow(check_id, "checkov", None, title, check_id not in never, tuple(sorted(types))))
    return rows + audit_controls()


def audit_controls() -> list[CheckRow]:
    """The controls `hardstack audit` judges live resources by (no exception applies to a live result)."""
    from .live.controls import METAS

    return [CheckRow(m.id, "audit", m.severity, m.title, False, m.resources) for m in METAS.values()]


def _order(check_id: str) -> tuple[str, int]:
    prefix, _, number = check_id.rpartition("_")
    return prefix, int(number) if number.isdigit() else 0
