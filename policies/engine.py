"""Stock checkov, run in-process and offline on the bridged files, plus hardstack's own checks."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardstack.errors import GateError

CHECKS_DIR = Path(__file__).resolve().parent / "checks"
"""hardstack's own checks, in the form checkov loads with --external-checks-dir."""

_loaded = False


@dataclass(frozen=True)
class Finding:
    check_id: str
    title: str
    status: str  # passed | failed | skipped
    address: str
    severity: str | None
    framework: str  # terraform_plan | kubernetes | hardstack
    detail: str | None = None


def _offline() -> None:
    os.environ["BC_SKIP_MAPPING"] = "TRUE"  # no guidelines download
    os.environ["CKV_SKIP_PACKAGE_UPDATE_CHECK"] = "true"
    os.environ.setdefault("CHECKOV_RUN_SCA_PACKAGE_SCAN_V2", "false")
    logging.getLogger("checkov").setLevel(logging.ERROR)


def load_checks() -> None:
    """Register hardstack's checks with checkov's (process-global) registries, once."""
    global _loaded
    if _loaded:
        return
    _offline()
    from checkov.common.checks_infra.registry import get_graph_checks_registry
    from checkov.kubernetes.checks.resource.registry import registry as k8s_registry
    from checkov.terraform.checks.resource.registry import resource_registry

    resource_registry.load_external_checks(str(CHECKS_DIR))
    k8s_registry.load_external_checks(str(CHECKS_DIR))
    get_graph_checks_registry("terraform").load_external_checks(str(CHECKS_DIR))
    get_graph_checks_registry("kubernetes").load_external_checks(str(CHECKS_DIR))
    _loaded = True


def scan(directory: Path, plan_file: str | None, manifest_dir: str | None, checks: list[str] | None = None) -> tuple[list[Finding], dict[str, set[str]]]:
    """Run checkov on the plan and manifests under `directory`.

    Returns the findings and, per framework, the addresses checkov saw (to prove nothing was left out).
    Any failure of checkov itself is a GateError: the stack is then not verified.
    """
    try:
        load_checks()
        from checkov.kubernetes.runner import Runner as KubernetesRunner
        from checkov.runner_filter import RunnerFilter
        from checkov.terraform.plan_runner import Runner as PlanRunner
    except Exception as e:  # noqa: BLE001
        raise GateError(f"not verified: checkov cannot be loaded: {type(e).__name__}: {e}") from e

    findings: list[Finding] = []
    seen: dict[str, set[str]] = {}
    jobs: list[tuple[str, Any, dict[str, Any]]] = []
    if plan_file:
        jobs.append(("terraform_plan", PlanRunner, {"root_folder": None, "files": [str(directory / plan_file)]}))
    if manifest_dir and (directory / manifest_dir).is_dir():
        jobs.append(("kubernetes", KubernetesRunner, {"root_folder": str(directory / manifest_dir), "files": None}))
    for framework, runner_cls, where in jobs:
        runner_filter = RunnerFilter(framework=[framework], checks=checks, show_progress_bar=False)
        try:
            report = runner_cls().run(runner_filter=runner_filter, collect_skip_comments=True, **where)
        except Exception as e:  # noqa: BLE001
            raise GateError(f"not verified: checkov failed on the {framework} input: {type(e).__name__}: {e}") from e
        reports = report if isinstance(report, list) else [report]
        addresses: set[str] = set()
        for rep in reports:
            if rep.parsing_errors:
                raise GateError(f"not verified: checkov could not parse {sorted(rep.parsing_errors)}")
            addresses |= {str(r.split(":", 1)[1] if framework == "terraform_plan" else r.rsplit(":", 1)[1])
                          for r in rep.resources}
            for status, records in (("passed", rep.passed_checks), ("failed", rep.failed_checks),
                                    ("skipped", rep.skipped_checks)):
                for rec in records:
                    findings.append(
                        Finding(  # plain strings: checkov's parser hands out str subclasses of its own
                            check_id=str(rec.check_id),
                            title=str(rec.check_name),
                            status=status,
                            address=str(_address(rec, framework)),
                            severity=str(rec.severity.name) if rec.severity else None,
                            framework=framework,
                        )
                    )
        seen[framework] = addresses
    return findings, seen


def _address(rec: Any, framework: str) -> str:
    if framework == "terraform_plan":
        return rec.resource_address or rec.resource
    return rec.resource


def known_check_ids() -> set[str]:
    """Every check ID the gate can report: checkov's (Terraform and Kubernetes) and hardstack's."""
    load_checks()
    from checkov.common.checks_infra.registry import get_graph_checks_registry
    from checkov.kubernetes.checks.resource.registry import registry as k8s_registry
    from checkov.terraform.checks.resource.registry import resource_registry

    ids: set[str] = set()
    for registry in (resource_registry, k8s_registry):
        for checks in registry.checks.values():
            ids |= {c.id for c in checks}
        for checks in getattr(registry, "wildcard_checks", {}).values():
            ids |= {c.id for c in checks}
    for framework in ("terraform", "kubernetes"):
        graph = get_graph_checks_registry(framework)
        graph.load_checks()
        ids |= {c.id for c in graph.checks}
    from .catalog import hardstack_checks

    return ids | set(hardstack_checks())  # with those the gate evaluates itself, which checkov never registers


def check_metas() -> dict[str, Any]:
    """hardstack's checks' metadata by ID, and which of them the gate evaluates itself."""
    from .catalog import hardstack_checks

    return {check_id: entry.meta for check_id, entry in hardstack_checks().items()}


def native(objects: dict[str, dict[str, Any]], version: str, checks: list[str] | None = None,
           releases: dict[str, dict[str, Any]] | None = None, plan: dict[str, Any] | None = None) -> list[Finding]:
    """hardstack's checks that look across Kubernetes objects, at Helm releases or across the whole plan (see
    policies/native.py)."""
    from .native import run_on

    return run_on(objects, version, checks, releases, plan)
