"""Account mode: every resource of a supported kind in the region, judged against hardstack's controls."""

from __future__ import annotations

from ..gate import GateReport, Result
from .controls import CONTROLS, METAS, LiveControl, Verdict
from .readers import LiveAccount
from .readers.kms import rotatable
from .session import LiveSession


def audit_account(session: LiveSession, controls: tuple[LiveControl, ...] = CONTROLS) -> GateReport:
    """Read and judge the account. Raises NotVerified (exit 3) when any read fails: a report is only made from an
    account read completely."""
    account = LiveAccount(session)
    results: list[Result] = []
    for control in controls:
        for finding in control.judge(account.resources(control.kind), session):
            results.append(result_of(control.meta.id, finding.arn, finding.address, finding.verdict))
    read = {r.arn for kind in {c.kind for c in controls} for r in account.resources(kind)}
    keys = account.resources("kms-key") if any(c.kind == "kms-key" for c in controls) else []
    notes = []
    unrotatable = [k.name for k in keys if not rotatable(k)]
    if unrotatable:
        notes.append(f"{len(unrotatable)} customer managed KMS keys are not judged for rotation: KMS does not rotate "
                     "asymmetric, HMAC, imported or custom key store keys, nor disabled keys and keys pending deletion")
    results.sort(key=lambda r: (r.resource, r.check_id))
    return GateReport(f"account {session.account} in {session.region}", results, len(read), None, notes, METAS,
                      command="audit")


def result_of(check_id: str, resource: str, address: str, verdict: Verdict) -> Result:
    meta = METAS[check_id]
    exception = justification = None
    if verdict.by_design:
        justification = f"{verdict.by_design} (owner: hardstack; by design)"
        exception = {"reason": verdict.by_design, "owner": "hardstack", "by_design": True}
    return Result(check_id=check_id, status=verdict.status, resource=resource, address=address, engine="hardstack",
                  title=meta.title, severity=meta.severity, justification=justification, exception=exception,
                  detail=verdict.detail)
