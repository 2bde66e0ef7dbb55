"""hardstack checks that look across Kubernetes objects (a namespace and its policies and quotas, every manifest
against the OpenAPI schema). checkov's Kubernetes graph has no namespace edges, so these run in the gate itself:
a check module defines `evaluate(objects, version)` instead of a checkov check. Checks of Helm releases, which are
no manifests, define `evaluate_releases(releases)` over each release's inputs by address. Checks that judge what the
whole plan holds or lacks (an account-wide detector, a trail recording a bucket whichever way it selects it), which
checkov's graph cannot say (it follows references, it cannot see an absence), define `evaluate_plan(resources)` over
the plan's resources by address (`PlanResource`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from hardstack.stacks.inventory import Inventory

from .bridge import Bridged
from .engine import Finding

DEFAULT_VERSION = "1.33"


def cluster_version(inventory: Inventory) -> str:
    """The Kubernetes version the manifests are for: the stack's EKS cluster's, else hardstack's default."""
    versions = {r.inputs.get("version") for r in inventory.of_type("aws:eks/cluster:Cluster")}
    versions.discard(None)
    return str(versions.pop()) if len(versions) == 1 else DEFAULT_VERSION


def run(bridged: Bridged, inventory: Inventory, checks: list[str] | None = None) -> list[Finding]:
    return run_on(bridged.objects, cluster_version(inventory), checks, bridged.releases, bridged.plan)


GATE_KINDS = ("evaluate", "evaluate_releases", "evaluate_plan")
"""What a check module defines when the gate, not checkov, evaluates it."""


def gate_only(module: Any) -> bool:
    """Whether the gate itself evaluates this check module (stock checkov never sees it)."""
    return any(hasattr(module, kind) for kind in GATE_KINDS)


def run_on(objects: dict[str, dict[str, Any]], version: str, checks: list[str] | None = None,
           releases: dict[str, dict[str, Any]] | None = None, plan: dict[str, Any] | None = None) -> list[Finding]:
    from .catalog import hardstack_checks

    found: list[Finding] = []
    resources: dict[str, PlanResource] | None = None
    for check_id, entry in hardstack_checks().items():
        if checks is not None and check_id not in checks:
            continue
        if hasattr(entry.module, "evaluate"):
            verdicts = entry.module.evaluate(objects, version)
        elif hasattr(entry.module, "evaluate_releases"):
            verdicts = entry.module.evaluate_releases(releases or {})
        elif hasattr(entry.module, "evaluate_plan"):
            resources = plan_resources(plan) if resources is None else resources
            verdicts = entry.module.evaluate_plan(resources)
        else:
            continue
        for address, status, detail in verdicts:
            found.append(Finding(check_id, entry.meta.title, status, address, entry.meta.severity, "hardstack",
                                 detail))
    return found


def tenant_namespaces(objects: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Tenant namespace name → its address."""
    return {
        (m.get("metadata") or {}).get("name"): address
        for address, m in objects.items()
        if m.get("kind") == "Namespace" and "hardstack.io/tenant" in ((m.get("metadata") or {}).get("labels") or {})
    }


def in_namespace(objects: dict[str, dict[str, Any]], kind: str, namespace: str) -> list[dict[str, Any]]:
    return [m for m in objects.values() if m.get("kind") == kind and (m.get("metadata") or {}).get("namespace") == namespace]


@dataclass(frozen=True)
class PlanResource:
    """A resource of the plan: its planned values (values computed from other resources are absent, as Terraform
    leaves them unknown) and the expressions naming the resources they were computed from."""

    address: str
    type: str
    values: dict[str, Any]
    expressions: dict[str, Any]

    def get(self, *path: str | int, default: Any = None) -> Any:
        node: Any = self.values
        for key in path:
            try:
                node = node[key]
            except (KeyError, IndexError, TypeError):
                return default
        return node

    def references(self, *path: str | int) -> set[str]:
        """Addresses of the resources the value at `path` (or anything under it) was computed from."""
        node: Any = self.expressions
        for key in path:
            try:
                node = node[key]
            except (KeyError, IndexError, TypeError):
                return set()
        return {_address(ref) for ref in _references(node)}


def plan_resources(plan: dict[str, Any] | None) -> dict[str, PlanResource]:
    """The plan's managed resources by address."""
    if not plan:
        return {}
    expressions = {r["address"]: r.get("expressions") or {}
                   for r in plan.get("configuration", {}).get("root_module", {}).get("resources", [])}
    return {
        r["address"]: PlanResource(r["address"], r["type"], r.get("values") or {}, expressions.get(r["address"], {}))
        for r in plan.get("planned_values", {}).get("root_module", {}).get("resources", [])
    }


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "references" and isinstance(value, list):
                yield from (v for v in value if isinstance(v, str))
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)


def _address(reference: str) -> str:
    """`aws_s3_bucket.data.arn` → `aws_s3_bucket.data` (a resource's name holds no dot)."""
    return ".".join(reference.split(".")[:2])
