"""Stack mode: the resources a synthesized stack declares, found in the account by their `hardstack:stack` and
`hardstack:component` tags (and, where several carry the same, by their identity: a name, a port, the VPC they
attach to), compared setting by setting with what the stack declares. A declared resource not found is missing; one
whose settings differ has drifted; both fail."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from hardstack.modules.base import COMPONENT_TAG, STACK_TAG
from hardstack.stacks.inventory import Inventory, Resource
from hardstack.stacks.mocks import ACCOUNT_ID as MOCK_ACCOUNT

from ..bridge import terraform_addresses
from ..gate import GateReport, Result, digest
from .account import result_of
from .compare import Counterpart
from .controls import DRIFT, METAS, MISSING, Verdict
from .declared import CONSUMED, TAGS, TYPES, TYPES_IN_ORDER, Declared, DeclaredType, Setting
from .readers import LiveAccount
from .resource import LiveResource
from .session import LiveSession


@dataclass
class Match:
    resource: Resource
    dtype: DeclaredType
    live: LiveResource | None
    why_not: str | None = None  # missing or ambiguous: what was looked for, what was found


def audit_stack(inventory: Inventory, session: LiveSession, *, target: str) -> GateReport:
    """Compare the account with the stack. Raises NotVerified (exit 3) when any read fails."""
    account = LiveAccount(session)
    compared = [r for r in inventory if r.custom and r.type in TYPES and (not TYPES[r.type].tagged or _tagged(r))]
    matches = _match(compared, inventory, account, session)
    counterparts = {m.resource.urn: m.live for m in matches if m.live is not None}
    addresses = terraform_addresses([r for r in inventory if r.custom and r.type in TYPES])
    results: list[Result] = []
    for m in matches:
        address = addresses[m.resource.urn]
        if m.live is None:
            results.append(result_of(MISSING.id, m.resource.urn, address, Verdict("failed", m.why_not)))
            continue
        results.append(result_of(MISSING.id, m.live.arn, address, Verdict("passed")))
        drift = _drift(m, Declared(m.resource, inventory, counterparts), session.account)
        results.append(result_of(DRIFT.id, m.live.arn, address,
                                 Verdict("failed", "; ".join(drift)) if drift else Verdict("passed")))
    results.sort(key=lambda r: (r.address, r.check_id))
    notes = _notes(inventory, compared, account, {m.live.arn for m in matches if m.live})
    return GateReport(target, results, len(compared), digest(inventory), notes, METAS, command="audit")


def _tagged(r: Resource) -> bool:
    tags = r.get("tags") or {}
    return isinstance(tags, dict) and STACK_TAG in tags and COMPONENT_TAG in tags


def _match(compared: list[Resource], inventory: Inventory, account: LiveAccount,
           session: LiveSession) -> list[Match]:
    """Each declared resource's live counterpart, type by type in TYPES_IN_ORDER (a listener is looked for on its
    load balancer's counterpart); a live resource is the counterpart of one declared resource at most."""
    matches: list[Match] = []
    counterparts: dict[str, LiveResource] = {}
    claimed: set[str] = set()
    for dtype in TYPES_IN_ORDER:
        for r in (r for r in compared if r.type in dtype.types):
            declared = Declared(r, inventory, counterparts)
            wanted = [(s, _in_account(s.expected(declared), session.account)) for s in dtype.identity]
            wanted = [(s, v) for s, v in wanted if v is not None]
            tags = r.get("tags") or {}
            candidates = [
                live for live in account.resources(dtype.kind)
                if live.arn not in claimed
                and (not dtype.tagged or all(live.tags.get(k) == tags[k] for k in (STACK_TAG, COMPONENT_TAG)))
                and all(s.same(v, _identity_value(live, s.api)) for s, v in wanted)
            ]
            if len(candidates) == 1:
                counterparts[r.urn] = candidates[0]
                claimed.add(candidates[0].arn)
                matches.append(Match(r, dtype, candidates[0]))
                continue
            looked_for = _looked_for(dtype, tags, wanted)
            if candidates:
                why = (f"{len(candidates)} resources match {looked_for}, hardstack cannot tell which the stack "
                       "declares: " + ", ".join(c.arn for c in candidates))
            else:
                why = f"no {dtype.kind} in {session.region} with {looked_for}"
            matches.append(Match(r, dtype, None, why))
    return matches


def _identity_value(live: LiveResource, api: str) -> Any:
    return live.name if api == "name" else live.facts.get(api)


def _looked_for(dtype: DeclaredType, tags: dict[str, str], wanted: list[tuple[Setting, Any]]) -> str:
    parts = [f"{k}={tags[k]}" for k in (STACK_TAG, COMPONENT_TAG)] if dtype.tagged else []
    parts += [f"{s.api}={v!r}" for s, v in wanted]
    return ", ".join(parts) or "(one per account and region)"


def _drift(m: Match, declared: Declared, account: str) -> list[str]:
    assert m.live is not None
    out = []
    settings = (*m.dtype.settings, TAGS) if m.dtype.tagged else m.dtype.settings
    for s in settings:
        expected = _in_account(s.expected(declared), account)
        if expected is None:
            continue  # the stack does not declare it
        found = m.live.tags if s.api == "tags" else m.live.get(s.api)
        if s.same(expected, found):
            continue
        if s is TAGS:
            out.append(f"tags: {s.describe(expected, found)}")  # type: ignore[misc]
        elif s.describe is not None and found is not None:
            out.append(f"{s.declared} ({s.api}): {s.describe(expected, found)}")
        else:
            out.append(f"{s.declared} ({s.api}): expected {_show(expected)}, found {_show(found)}")
    return out


def _in_account(value: Any, account: str) -> Any:
    """A declared value with the account synthesis stood in (stacks.mocks.ACCOUNT_ID) replaced by the audited one:
    ARNs and policies the stack computes from its account name the account it is deployed to."""
    if isinstance(value, str):
        return value.replace(MOCK_ACCOUNT, account)
    if isinstance(value, list):
        return [_in_account(v, account) for v in value]
    if isinstance(value, dict):
        return {k: _in_account(v, account) for k, v in value.items()}
    return value


def _show(value: Any) -> str:
    if value is None:
        return "not set"
    if isinstance(value, Counterpart):
        return repr(value)
    return json.dumps(value, default=str, sort_keys=True)


def _notes(inventory: Inventory, compared: list[Resource], account: LiveAccount, matched: set[str]) -> list[str]:
    notes = []
    untagged = [r.name for r in inventory if r.custom and r.type in TYPES and r not in compared]
    if untagged:
        notes.append(f"{len(untagged)} declared resources carry no {STACK_TAG} and {COMPONENT_TAG} tags, so they "
                     "cannot be found and are not compared: " + ", ".join(sorted(untagged)))
    unread = Counter(r.type for r in inventory if r.custom and r.type.startswith("aws:") and r.type not in TYPES
                     and r.type not in CONSUMED)
    if unread:
        notes.append(f"{sum(unread.values())} declared AWS resources are of types the audit does not read and are not "
                     "compared: " + ", ".join(f"{t} ×{n}" for t, n in sorted(unread.items())))
    elsewhere = Counter(r.type.split(":", 1)[0] for r in inventory if r.custom and not r.type.startswith(
        ("aws:", "pulumi:providers:")))
    if elsewhere:
        notes.append("not in the AWS account, not compared: " + ", ".join(
            f"{n} {provider} resources" for provider, n in sorted(elsewhere.items())))
    stacks = {(r.get("tags") or {}).get(STACK_TAG) for r in compared} - {None}
    undeclared = sorted(live.arn for dtype in TYPES_IN_ORDER if dtype.tagged for live in account.resources(dtype.kind)
                        if live.tags.get(STACK_TAG) in stacks and live.arn not in matched)
    if undeclared:
        notes.append(f"{len(undeclared)} resources tagged {STACK_TAG}={', '.join(sorted(stacks))} are not declared "
                     "by the stack (left over from a removed component, or created outside it): "
                     + ", ".join(undeclared))
    return notes


def stack_region(target: str, stack: str | None = None) -> str | None:
    """The region the stack deploys to: a blueprint's `region`, a Pulumi project's `aws:region` (None if unset)."""
    from pathlib import Path

    from hardstack.blueprints.loader import load
    from hardstack.stacks.synth import read_project, stack_config

    path = Path(target)
    if path.is_dir():
        config, _ = stack_config(path.resolve(), read_project(path.resolve())["name"], stack or "dev")
        return config.get("aws:region")
    return load(target).blueprint.region
