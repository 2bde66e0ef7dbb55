"""How a declared value and the value the account reports are judged the same: booleans the API leaves out, sets
in any order, references to other declared resources (by their live counterparts), policies by what their statements
allow to whom, registry scanning rules whatever the casing of their keys."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .resource import LiveResource


@dataclass(frozen=True)
class Counterpart:
    """A declared input that refers to another declared resource: the account must refer to that resource's live
    counterpart (None when it was not found)."""

    declared: str  # the Pulumi name of the resource referred to
    live: LiveResource | None

    def __repr__(self) -> str:
        return f"{self.declared} ({self.live.arn if self.live else 'not found'})"


def equal(expected: Any, found: Any) -> bool:
    if isinstance(expected, Counterpart):
        return refers_to(expected.live, found)
    if isinstance(expected, bool) and isinstance(found, str):
        return str(expected).lower() == found.lower()
    if isinstance(expected, (int, float)) and not isinstance(expected, bool) and found is not None:
        try:
            return float(expected) == float(found)
        except (TypeError, ValueError):
            return False
    return bool(expected == found)


def refers_to(live: LiveResource | None, found: Any) -> bool:
    """`found` names `live`: its ARN, its ID or name (alone or as the last part of an ARN), or for a key one of its
    aliases (alone or as an alias ARN)."""
    if live is None or not found:
        return False
    found = str(found)
    names = {live.arn, live.name, *live.facts.get("ListAliases.AliasName", [])}
    return found in names or found.rsplit("/", 1)[-1] == live.name or found.rsplit(":", 1)[-1] in names


def same_truth(expected: Any, found: Any) -> bool:
    """Booleans the API leaves out when false (a key that cannot rotate reports no rotation)."""
    return bool(expected) == (str(found).lower() == "true" if isinstance(found, str) else bool(found))


def same_set(expected: Any, found: Any) -> bool:
    return sorted(expected or []) == sorted(found or [])


def includes(expected: Any, found: Any) -> bool:
    return set(expected or []) <= set(found or [])


def tags_present(expected: dict[str, str], found: dict[str, str]) -> bool:
    return all(found.get(k) == v for k, v in (expected or {}).items())


def statements(policy: Any) -> dict[str, tuple[Any, ...]]:
    """A policy's statements by Sid, each as what it does: its effect, actions, whom it names (the account and kind
    of each principal, not the name of a role or user), what it applies to (service, and whether to objects under a
    path), and its conditions (operators, keys and values; ARNs as their service and account). Names of other
    resources differ from one deployment to the next; what a statement allows, to whom, does not."""
    if isinstance(policy, str):
        policy = json.loads(policy)
    out = {}
    for i, st in enumerate((policy or {}).get("Statement") or []):
        conditions = tuple(sorted((op, key, tuple(sorted(_arn_kind(v) for v in _listed(values))))
                                  for op, keys in (st.get("Condition") or {}).items()
                                  for key, values in keys.items()))
        out[st.get("Sid") or f"statement {i}"] = (
            st.get("Effect"), tuple(sorted(_listed(st.get("Action")))), tuple(sorted(_listed(st.get("NotAction")))),
            _principals(st.get("Principal")), _principals(st.get("NotPrincipal")),
            tuple(sorted({_arn_kind(r) for r in _listed(st.get("Resource"))})), conditions)
    return out


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value is not None else []


def _arn_kind(value: Any) -> str:
    """An ARN as its service, account and resource type (`kms 123456789012 key`, `s3 /*` for objects of a bucket);
    any other value as it is."""
    text = str(value)
    if not text.startswith("arn:"):
        return text
    parts = text.split(":", 5)
    if len(parts) < 6:
        return text
    service, account, resource = parts[2], parts[4], parts[5]
    if service == "s3":
        return "s3 /*" if resource.endswith("/*") else "s3" + (" /" if "/" in resource else "")
    kind = resource.split("/", 1)[0].split(":", 1)[0]
    return " ".join(p for p in (service, account, kind) if p)


def _principals(principal: Any) -> tuple[tuple[str, str], ...]:
    if principal is None:
        return ()
    if principal == "*":
        return (("AWS", "*"),)
    out = set()
    for kind, values in principal.items():
        for v in _listed(values):
            v = str(v)
            out.add((kind, f"{v} root" if kind == "AWS" and v.isdigit() else _arn_kind(v)))
    return tuple(sorted(out))


def policy_difference(expected: Any, found: Any) -> str:
    want, have = statements(expected), statements(found)
    missing = [sid for sid in want if sid not in have]
    changed = [sid for sid in want if sid in have and want[sid] != have[sid]]
    extra = [sid for sid in have if sid not in want and have[sid][0] == "Allow"]
    parts = [f"{label}: {', '.join(sids)}" for label, sids in
             (("statements missing", missing), ("changed", changed), ("Allow statements not declared", extra)) if sids]
    return "; ".join(parts)


def same_policy(expected: Any, found: Any) -> bool:
    return found is not None and not policy_difference(expected, found)


def scan_rules(rules: Any) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    """Registry scanning rules as (frequency, filters), whatever the casing of their keys."""
    out = []
    for rule in rules or []:
        r = {k.lower(): v for k, v in rule.items()}
        filters = tuple(sorted((f.get("filter") or f.get("Filter"), f.get("filterType") or f.get("FilterType"))
                               for f in r.get("repositoryfilters") or []))
        out.append((r.get("scanfrequency"), filters))
    return sorted(out)


def same_scan_rules(expected: Any, found: Any) -> bool:
    return scan_rules(expected) == scan_rules(found)
