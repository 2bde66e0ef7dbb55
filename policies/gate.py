"""The gate: synthesized inventory → checkov and hardstack checks → exceptions → a report."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import importlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hardstack.blueprints.exceptions import ExceptionSpec
from hardstack.errors import GateError
from hardstack.stacks.inventory import Inventory

from .bridge import MANIFEST_DIR, PLAN_FILE, Bridged, bridge
from .exceptions import ResolvedException, resolve


@dataclass(frozen=True)
class Result:
    check_id: str
    status: str  # passed | failed | skipped
    resource: str  # Pulumi URN; for a live resource `hardstack audit` read, its ARN
    address: str  # Terraform address or Kubernetes Kind.namespace.name
    engine: str  # checkov | hardstack
    title: str
    severity: str | None
    justification: str | None = None
    exception: dict[str, str] | None = None
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = {
            "check_id": self.check_id,
            "status": self.status,
            "resource": self.resource,
            "address": self.address,
            "engine": self.engine,
            "title": self.title,
            "severity": self.severity,
            "justification": self.justification,
        }
        if self.exception:
            out["exception"] = self.exception
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass
class GateReport:
    target: str
    results: list[Result]
    resources: int
    inventory_digest: str | None  # None: an account audit, which judges no synthesized stack
    notes: list[str] = field(default_factory=list)
    metas: dict[str, Any] = field(default_factory=dict, repr=False)  # hardstack's checks' metadata by ID
    command: str = "check"  # the command that judged: check | audit

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def passed(self) -> bool:
        return self.count("failed") == 0

    def summary(self) -> dict[str, int]:
        return {
            "resources": self.resources,
            "passed": self.count("passed"),
            "failed": self.count("failed"),
            "skipped": self.count("skipped"),
        }


def digest(inventory: Inventory) -> str:
    return "sha256:" + hashlib.sha256(inventory.dumps().encode()).hexdigest()


def run_gate(
    inventory: Inventory,
    *,
    target: str,
    exceptions: list[ExceptionSpec] = (),  # type: ignore[assignment]
    locate: Callable[..., tuple[str, int] | None] = lambda *path: None,
    work_dir: Path | None = None,
    today: dt.date | None = None,
    checks: list[str] | None = None,
    engine: Any = None,
) -> GateReport:
    """Judge an inventory. Raises InvalidInputs for bad exceptions and GateError when it cannot judge.

    `engine` runs checkov: this process by default, or a CheckovWorker started before synthesis.
    """
    from . import engine as in_process
    from .exceptions import NON_WAIVABLE_CHECKOV
    from .native import cluster_version

    engine = engine or in_process
    today = today or dt.date.today()
    bridged = bridge(inventory)
    metas = engine.check_metas()
    never = {**NON_WAIVABLE_CHECKOV, **{i: m.title for i, m in metas.items() if not m.waivable}}
    resolved = resolve(list(exceptions), inventory, bridged.address_of, engine.known_check_ids(), never, locate)
    with tempfile.TemporaryDirectory(prefix="hardstack-gate-") as tmp:
        directory = work_dir or Path(tmp)
        for rel, text in bridged.files().items():
            path = directory / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        where = (directory, PLAN_FILE if bridged.plan else None, MANIFEST_DIR if bridged.manifests else None, checks)
        version = cluster_version(inventory)
        if hasattr(engine, "scan_all"):  # a worker process holding checkov
            findings, seen = engine.scan_all(*where, bridged.objects, version, bridged.releases)
        else:
            findings, seen = engine.scan(*where)
            findings = findings + engine.native(bridged.objects, version, checks, bridged.releases, bridged.plan)
    _all_judged(bridged, seen)
    results = []
    for f in findings:
        urn = bridged.urn_of.get(f.address) or bridged.workload_of_pod(f.address)
        if urn is None:
            raise GateError(f"not verified: checkov reported {f.check_id} on {f.address!r}, which the stack does not hold")
        meta = metas.get(f.check_id)
        result = Result(
            check_id=f.check_id,
            status=f.status,
            resource=urn,
            address=f.address,
            engine="hardstack" if meta else "checkov",
            title=meta.title if meta else f.title,
            severity=meta.severity if meta else f.severity,
            detail=f.detail,
        )
        results.append(_by_design(result) or _apply(result, resolved, today))
    unique = {(r.check_id, r.status, r.resource, r.address, r.detail): r for r in results}  # graph checks repeat
    results = sorted(unique.values(), key=lambda r: (r.resource, r.check_id, r.status))
    notes = _unused(resolved, results) + bridged.reviewed_releases()  # reviewed charts stand unjudged: say so
    judged = len(bridged.address_of)
    return GateReport(target, results, judged, digest(inventory), notes, metas)


def _all_judged(bridged: Bridged, seen: dict[str, set[str]]) -> None:
    """Fail closed when checkov scanned fewer resources than the stack holds (Helm releases are judged by hardstack's
    own check of their values, not by checkov)."""
    expected_k8s = set(bridged.objects)
    expected_plan = set(bridged.address_of.values()) - expected_k8s - set(bridged.releases)
    missing = sorted(expected_plan - seen.get("terraform_plan", set()))
    missing += sorted(expected_k8s - seen.get("kubernetes", set()))
    if missing:
        expected = len(expected_plan) + len(expected_k8s)
        raise GateError(
            f"not verified: checkov scanned {expected - len(missing)} of {expected} "
            f"resources; not scanned: {', '.join(missing[:10])}{' …' if len(missing) > 10 else ''}"
        )


def _apply(result: Result, resolved: list[ResolvedException], today: dt.date) -> Result:
    if result.status != "failed":
        return result
    for exc in resolved:
        if exc.spec.check == result.check_id and result.resource in exc.urns:
            info = {"reason": exc.spec.reason, "owner": exc.spec.owner, "expires": exc.spec.expires.isoformat()}
            if exc.expired(today):
                return _replace(result, justification=exc.justification(today), exception=info)
            return _replace(result, status="skipped", justification=exc.justification(today), exception=info)
    return result


def _by_design(result: Result) -> Result | None:
    """The result skipped by a design exception of the component the resource belongs to, else None."""
    from hardstack.modules.base import COMPONENT_TYPES

    if result.status != "failed":
        return None
    *parents, own = result.resource.split("::")[2].split("$")
    for parent in parents:
        if parent.startswith("hardstack:") and parent not in COMPONENT_TYPES:  # judged without synthesizing here
            with contextlib.suppress(ImportError):
                importlib.import_module(f"hardstack.modules.{parent.split(':')[1]}")
        component = COMPONENT_TYPES.get(parent)
        for d in component.DESIGN_EXCEPTIONS if component else ():
            if d.check == result.check_id and d.resource_type == own:
                info = {"reason": d.reason, "owner": "hardstack", "by_design": True}
                return _replace(result, status="skipped", justification=f"{d.reason} (owner: hardstack; by design)",
                                exception=info)
    return None


def _replace(result: Result, **changes: Any) -> Result:
    from dataclasses import replace

    return replace(result, **changes)


def _unused(resolved: list[ResolvedException], results: list[Result]) -> list[str]:
    notes = []
    for exc in resolved:
        used = any(r.check_id == exc.spec.check and r.resource in exc.urns and r.exception for r in results)
        if not used:
            notes.append(
                f"exception {exc.index} ({exc.spec.check} on {exc.spec.resource}) matched no failed check; "
                "it can be removed"
            )
    return notes
