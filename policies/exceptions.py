"""Exceptions, checked against the stack and applied to the gate's findings."""

from __future__ import annotations

import datetime as dt
import fnmatch
from dataclasses import dataclass
from typing import Callable

from hardstack.blueprints.exceptions import ExceptionSpec
from hardstack.errors import InvalidInput, InvalidInputs
from hardstack.stacks.inventory import Inventory

NON_WAIVABLE_CHECKOV: dict[str, str] = {
    "CKV_AWS_145": "S3 buckets are encrypted with a customer-managed KMS key",
    "CKV_AWS_158": "CloudWatch log groups are encrypted with a customer-managed KMS key",
    "CKV_AWS_58": "EKS secrets are envelope-encrypted with a customer-managed KMS key",
    "CKV_AWS_136": "ECR repositories are encrypted with a customer-managed KMS key",
    "CKV_AWS_39": "the EKS API endpoint is not public",
    "CKV_AWS_38": "a public EKS endpoint is never open to 0.0.0.0/0",
    "CKV_AWS_79": "instance metadata requires IMDSv2",
    "CKV_AWS_341": "launch templates keep the IMDS hop limit at 1",
    "CKV2_AWS_28": "internet-facing load balancers are protected by WAF",
}
"""checkov checks behind hardstack's non-waivable controls: encryption at rest with a customer-managed key,
a private EKS endpoint, IMDSv2, WAF on internet-facing endpoints."""


@dataclass(frozen=True)
class ResolvedException:
    spec: ExceptionSpec
    urns: frozenset[str]
    index: int

    def expired(self, today: dt.date) -> bool:
        return today > self.spec.expires

    def justification(self, today: dt.date) -> str:
        s = self.spec
        state = f"EXPIRED on {s.expires}" if self.expired(today) else f"expires {s.expires}"
        return f"{' '.join(s.reason.split())} (owner: {s.owner}; {state})"


def resolve(
    specs: list[ExceptionSpec],
    inventory: Inventory,
    address_of: dict[str, str],
    known_checks: set[str],
    non_waivable: dict[str, str],
    locate: Callable[..., tuple[str, int] | None] = lambda *path: None,
) -> list[ResolvedException]:
    """Check every exception against the stack: its check exists and may be waived, its resource exists."""
    errors: list[InvalidInput] = []
    resolved: list[ResolvedException] = []
    urn_by_address = {a: u for u, a in address_of.items()}
    for i, spec in enumerate(specs):
        if spec.check in non_waivable:
            errors.append(_error(locate, i, "check", f"{spec.check} cannot be excepted: {non_waivable[spec.check]} "
                                 "is a control hardstack never waives", spec.check, "a waivable check"))
            continue
        if spec.check not in known_checks:
            errors.append(_error(locate, i, "check", "no such check", spec.check,
                                 "an ID listed by `hardstack checks`"))
            continue
        urns = _matching(spec.resource, inventory, urn_by_address)
        if not urns:
            errors.append(_error(locate, i, "resource", "matches no resource of the stack", spec.resource,
                                 "a Pulumi resource name, URN or checkov address of this stack, or a glob of names"))
            continue
        resolved.append(ResolvedException(spec, frozenset(urns), i))
    if errors:
        raise InvalidInputs(errors)
    return resolved


def _matching(pattern: str, inventory: Inventory, urn_by_address: dict[str, str]) -> set[str]:
    if pattern in urn_by_address:
        return {urn_by_address[pattern]}
    found = set()
    for r in inventory:
        if not r.custom:
            continue
        if pattern == r.urn or pattern == r.name or fnmatch.fnmatchcase(r.name, pattern):
            found.add(r.urn)
    return found


def _error(locate, i, field, message, received, allowed):  # type: ignore[no-untyped-def]
    where = locate("exceptions", i, field) or locate("exceptions", i)
    return InvalidInput(
        message,
        file=where[0] if where else None,
        line=where[1] if where else None,
        field=f"exceptions[{i}].{field}",
        received=received,
        allowed=allowed,
    )
