"""Which input path came from which output attribute: matched by value against the dependencies' outputs."""

from __future__ import annotations

from typing import Any, Iterator

from .inventory import Reference

MIN_MATCH_LEN = 6
"""Shorter strings (e.g. "true", "ALL") are too common to identify a resource's attribute."""


def leaves(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    if isinstance(value, dict):
        for k in sorted(value):
            yield from leaves(value[k], path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from leaves(v, path + (i,))
    else:
        yield path, value


def attributes(outputs: dict[str, Any]) -> list[tuple[str, str]]:
    """(dotted attribute path, value) of every string output worth matching, shortest path first."""
    found = []
    for path, value in leaves(outputs):
        if isinstance(value, str) and len(value) >= MIN_MATCH_LEN and path:
            found.append((".".join(str(p) for p in path), value))
    found.sort(key=lambda kv: (kv[0].count("."), kv[0]))
    return found


_PREFERRED = ("id", "arn", "name")


def match_references(
    inputs: dict[str, Any],
    deps: dict[str, list[str]],
    outputs_of: dict[str, dict[str, Any]],
) -> list[Reference]:
    refs: list[Reference] = []
    attr_cache: dict[str, list[tuple[str, str]]] = {}
    for prop, urns in sorted(deps.items()):
        value = inputs.get(prop)
        for urn in urns:
            if urn not in outputs_of:
                continue
            attrs = attr_cache.setdefault(urn, attributes(outputs_of[urn]))
            matched = False
            for path, leaf in leaves(value, (prop,)):
                if not isinstance(leaf, str) or len(leaf) < MIN_MATCH_LEN:
                    continue
                ref = _best(path, leaf, urn, attrs)
                if ref is not None:
                    refs.append(ref)
                    matched = True
            if not matched:
                refs.append(Reference((prop,), urn, None, "dependency"))
    return sorted(set(refs), key=lambda r: ([str(p) for p in r.path], r.resource, r.attribute or ""))


def _best(path: tuple[str | int, ...], leaf: str, urn: str, attrs: list[tuple[str, str]]) -> Reference | None:
    exact = [a for a, v in attrs if v == leaf]
    if exact:
        key = (path[-1] if isinstance(path[-1], str) else "").lower()
        # the attribute the input is named after (`targetKeyId` ← keyId), then id, arn, name, then any
        exact.sort(
            key=lambda a: (
                not key.endswith(a.lower()),
                -len(a) if key.endswith(a.lower()) else 0,
                a not in _PREFERRED,
                _PREFERRED.index(a) if a in _PREFERRED else 0,
                a,
            )
        )
        return Reference(path, urn, exact[0], "exact")
    contained = [a for a, v in attrs if v in leaf]
    if contained:
        contained.sort(key=lambda a: (a != "arn", a not in _PREFERRED, a))
        return Reference(path, urn, contained[0], "contains")
    return None
