"""The base of hardstack's Python checks: checkov's resource check, described by a CheckMeta."""

from __future__ import annotations

import json
from typing import Any

from checkov.common.bridgecrew.severities import Severities
from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.kubernetes.checks.resource.base_spec_check import BaseK8Check
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

from hardstack.policies.meta import CheckMeta

PASSED, FAILED = CheckResult.PASSED, CheckResult.FAILED

_CATEGORY = {
    "data": CheckCategories.ENCRYPTION,
    "identity": CheckCategories.IAM,
    "infrastructure": CheckCategories.NETWORKING,
    "operations": CheckCategories.LOGGING,
    "supply chain": CheckCategories.SUPPLY_CHAIN,
    "model": CheckCategories.GENERAL_SECURITY,
    "agents": CheckCategories.GENERAL_SECURITY,
}


class HardstackK8sCheck(BaseK8Check):
    """A hardstack check on Kubernetes manifests (checkov passes the manifest itself)."""

    META: CheckMeta

    def __init__(self) -> None:
        meta = self.META
        super().__init__(name=meta.title, id=meta.id, categories=[CheckCategories.KUBERNETES],
                         supported_entities=list(meta.resources))
        self.severity = Severities[meta.severity]
        self.guideline = meta.remediation


def pod_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    """The pod template's spec of a Pod or a workload controller ({} for other kinds)."""
    from hardstack.policies.image_admission import pod_specs

    return dict(pod_specs(manifest) or {})


class HardstackCheck(BaseResourceCheck):
    META: CheckMeta

    def __init__(self) -> None:
        meta = self.META
        super().__init__(
            name=meta.title,
            id=meta.id,
            categories=[_CATEGORY[meta.area]],
            supported_resources=list(meta.resources),
            guideline=meta.remediation,
        )
        self.severity = Severities[meta.severity]


def value(conf: dict[str, Any], *path: str, default: Any = None) -> Any:
    """A value from checkov's list-wrapped configuration: value(conf, "rule", "default_retention", "mode")."""
    node: Any = conf
    for key in path:
        while isinstance(node, list) and len(node) == 1:
            node = node[0]
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    while isinstance(node, list) and len(node) == 1:
        node = node[0]
    return node


def policy_document(conf: dict[str, Any], key: str = "policy") -> dict[str, Any] | None:
    """A policy attribute as a document (checkov parses some policies already; others stay JSON strings)."""
    doc = value(conf, key)
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except json.JSONDecodeError:
            return None
    return doc if isinstance(doc, dict) else None


def statements(doc: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not doc:
        return []
    found = doc.get("Statement", [])
    return [found] if isinstance(found, dict) else [s for s in found if isinstance(s, dict)]


def as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def is_reference(v: Any, tf_type: str) -> bool:
    """The value is a reference to a resource of `tf_type` in this plan (not a literal from elsewhere)."""
    return isinstance(v, str) and v.startswith(f"{tf_type}.")


GRANT_POLICIES = ("aws_iam_role_policy", "aws_iam_user_policy", "aws_iam_group_policy", "aws_iam_policy")
BOUNDARY_TAG = ("hardstack:purpose", "permissions-boundary")


def is_boundary(conf: dict[str, Any]) -> bool:
    """A managed policy hardstack created as a permission boundary (a cap on roles, not a grant)."""
    tags = value(conf, "tags") or {}
    return isinstance(tags, dict) and tags.get(BOUNDARY_TAG[0]) == BOUNDARY_TAG[1]


def allows(doc: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The Allow statements of a policy document."""
    return [s for s in statements(doc) if s.get("Effect") == "Allow"]


WATCHED_PURPOSES = ("training-data", "model-artifacts")
"""Buckets whose every read and write must be on record and watched: the data a model learns from, and the models."""
PURPOSE_TAG = "hardstack:purpose"


def watched_buckets(resources: dict[str, Any]) -> dict[str, Any]:
    """The plan's buckets (`PlanResource`s by address) tagged as holding training data or models."""
    return {a: r for a, r in resources.items()
            if r.type == "aws_s3_bucket" and (r.get("tags") or {}).get(PURPOSE_TAG) in WATCHED_PURPOSES}


def watched_assets(resources: dict[str, Any]) -> dict[str, Any]:
    """What account-wide detection protects in the plan: its EKS clusters and its buckets of training data and
    models (an account-wide check with nothing of these in the plan has nothing to say)."""
    clusters = {a: r for a, r in resources.items() if r.type == "aws_eks_cluster"}
    return dict(sorted({**clusters, **watched_buckets(resources)}.items()))
