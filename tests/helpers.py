"""Assertion helpers for inventories."""

from __future__ import annotations

import json
from typing import Any

from hardstack.stacks.inventory import Resource


def policy(resource: Resource, key: str = "policy") -> dict[str, Any]:
    """A policy input (a JSON string) parsed."""
    return json.loads(resource.inputs[key])


def statements(resource: Resource, key: str = "policy") -> dict[str, dict[str, Any]]:
    """A policy's statements by Sid."""
    return {s.get("Sid", str(i)): s for i, s in enumerate(policy(resource, key)["Statement"])}


def ref_attr(resource: Resource, *path: str | int) -> tuple[str, str | None]:
    """(URN, attribute) that the input at `path` was computed from; fails when it was not a reference."""
    found = [r for r in resource.references if r.path == tuple(path)]
    assert found, f"{resource.name}: input {list(path)} is not a reference; references: {resource.references}"
    assert len(found) == 1, found
    return found[0].resource, found[0].attribute


REGISTRY: dict[str, Any] = {
    "repositories": ["models"],
    "ci": {"oidc_provider_arn": "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com",
           "subjects": ["repo:example-org/ml-images:ref:refs/heads/main"]},
}
"""A minimal `registry` section: a cluster admits only images signed into the stack's registry, so every
blueprint with `compute` declares one."""
