"""hardstack checks that look across Kubernetes objects (a namespace and its policies and quotas, every manifest
against the OpenAPI schema). checkov's Kubernetes graph has no namespace edges, so these run in the gate itself:
a check module defines `evaluate(objects, version)` instead of a checkov check. Checks of Helm releases, which are
no manifests, define `evaluate_releases(releases)` over each release's inputs by address."""

from __future__ import annotations

from typing import Any

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
    return run_on(bridged.objects, cluster_version(inventory), checks, bridged.releases)


def run_on(objects: dict[str, dict[str, Any]], version: str, checks: list[str] | None = None,
           releases: dict[str, dict[str, Any]] | None = None) -> list[Finding]:
    from .catalog import hardstack_checks

    found: list[Finding] = []
    for check_id, entry in hardstack_checks().items():
        if checks is not None and check_id not in checks:
            continue
        if hasattr(entry.module, "evaluate"):
            verdicts = entry.module.evaluate(objects, version)
        elif hasattr(entry.module, "evaluate_releases"):
            verdicts = entry.module.evaluate_releases(releases or {})
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
