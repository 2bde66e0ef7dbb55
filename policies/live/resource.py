"""A resource as the account reports it: its kind, ARN, name, tags, and its settings keyed by where AWS reports
each (`"GetKeyRotationStatus.KeyRotationEnabled"`, `"GetBucketVersioning.Status"`), so a verdict's detail and the
stack-to-account mapping name the API field they read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

TERRAFORM_TYPE = {
    "kms-key": "aws_kms_key",
    "s3-bucket": "aws_s3_bucket",
    "vpc": "aws_vpc",
    "flow-log": "aws_flow_log",
    "load-balancer": "aws_lb",
    "listener": "aws_lb_listener",
    "web-acl": "aws_wafv2_web_acl",
    "trail": "aws_cloudtrail",
    "ecr-repository": "aws_ecr_repository",
    "ecr-registry-scanning": "aws_ecr_registry_scanning_configuration",
    "eks-cluster": "aws_eks_cluster",
    "guardduty-detector": "aws_guardduty_detector",
}
"""Every kind of resource the audit reads, and the Terraform type a report's address names it by (as `check`
names the same resource)."""


@dataclass
class LiveResource:
    kind: str
    arn: str
    name: str
    tags: dict[str, str] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    """Settings the listing call already returned."""
    more: Callable[["LiveResource"], dict[str, Any]] | None = field(default=None, repr=False)
    """Reads the rest of the settings (one call or a few per resource); made only when a verdict needs them."""
    _settings: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def settings(self) -> dict[str, Any]:
        if self._settings is None:
            self._settings = {**self.facts, **(self.more(self) if self.more else {})}
        return self._settings

    def get(self, api_field: str) -> Any:
        return self.settings.get(api_field)

    @property
    def address(self) -> str:
        return f"{TERRAFORM_TYPE[self.kind]}.{self.name}"


def tag_dict(tags: Any, key: str = "Key", value: str = "Value") -> dict[str, str]:
    """AWS's tag lists (`[{"Key": k, "Value": v}]`, KMS's `TagKey`/`TagValue`) or maps, as one dict."""
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    return {str(t[key]): str(t.get(value, "")) for t in tags or []}
