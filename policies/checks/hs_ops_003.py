"""HS_OPS_003: Security Hub runs the AWS Foundational Security Best Practices standard (evaluated by the gate across
the plan: the hub and its standards subscription are one per account and region and refer to each other by nothing
but order, and a stack that has no hub leaves its cluster and buckets unjudged, an absence checkov's graph cannot
see)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterator

from hardstack.policies.checks.support import watched_assets
from hardstack.policies.meta import CheckMeta

if TYPE_CHECKING:
    from hardstack.policies.native import PlanResource

META = CheckMeta(
    id="HS_OPS_003",
    title="Security Hub runs the AWS Foundational Security Best Practices standard",
    severity="MEDIUM",
    area="operations",
    rationale="The gate judges what a stack declares before it is deployed; AWS Foundational Security Best Practices "
    "keeps judging the account afterwards (a bucket made public by hand, a cluster endpoint opened, a key's "
    "rotation switched off) and gathers GuardDuty's findings beside its own. A hub without the standard evaluates "
    "nothing. Judged on every hub and, where the stack has no hub running the standard, on every EKS cluster and "
    "every bucket of training data or models (which then nothing judges after deployment): a stack whose "
    "organization runs Security Hub for it excepts these with a reason.",
    remediation="Enable Security Hub and subscribe to "
    "`arn:<partition>:securityhub:<region>::standards/aws-foundational-security-best-practices/v/1.0.0` (hardstack's "
    "ThreatDetection, `audit.detectors: create`); where the organization's delegated administrator runs it for the "
    "account instead, except this check with a reason naming it.",
    mitre_atlas=("AML.T0012: Valid Accounts",),
    resources=("aws_securityhub_account", "aws_eks_cluster", "aws_s3_bucket"),
)

FOUNDATIONAL = re.compile(
    r"^arn:[a-z-]+:securityhub:[a-z0-9-]+::standards/aws-foundational-security-best-practices/v/1\.0\.0$")
"""The standard's ARN in any region and partition (a standards ARN names no account)."""


def evaluate_plan(resources: dict[str, PlanResource]) -> Iterator[tuple[str, str, str | None]]:
    subscribed = any(FOUNDATIONAL.match(str(r.get("standards_arn") or "")) for r in resources.values()
                     if r.type == "aws_securityhub_standards_subscription")
    running = []
    for address, hub in sorted((a, r) for a, r in resources.items() if r.type == "aws_securityhub_account"):
        # Unset, enable_default_standards is true: AWS then enables its default standards, this one among them.
        runs = subscribed or hub.get("enable_default_standards") is not False
        running += [address] if runs else []
        yield address, "passed" if runs else "failed", None if runs else (
            "default standards off and no subscription to AWS Foundational Security Best Practices")
    for address in watched_assets(resources):
        if running:
            yield address, "passed", None
        else:
            yield address, "failed", ("no Security Hub in the stack runs AWS Foundational Security Best Practices "
                                      "(one per account and region: except it where the organization runs it)")


# --- fixtures ------------------------------------------------------------------------------------------------------


def _hub(standard: str | None, default_standards: bool = False) -> None:
    import pulumi
    import pulumi_aws as aws

    hub = aws.securityhub.Account("hub", enable_default_standards=default_standards,
                                  control_finding_generator="SECURITY_CONTROL")
    if standard:
        aws.securityhub.StandardsSubscription("standard", standards_arn=standard,
                                              opts=pulumi.ResourceOptions(depends_on=[hub]))


def _cluster() -> None:
    import pulumi_aws as aws

    aws.eks.Cluster("cluster", role_arn="arn:aws:iam::123456789012:role/cluster",
                    vpc_config={"subnet_ids": ["subnet-0a1b2c3d4e5f6a7b8"], "endpoint_public_access": False})


FSBP = "arn:aws:securityhub:us-east-1::standards/aws-foundational-security-best-practices/v/1.0.0"


def passing_subscribed_to_the_standard() -> None:
    _cluster()
    _hub(FSBP)


def passing_default_standards() -> None:
    _hub(None, default_standards=True)


def failing_subscribed_to_another_standard_only() -> None:
    _hub("arn:aws:securityhub:us-east-1::standards/cis-aws-foundations-benchmark/v/3.0.0")


def failing_cluster_without_hub() -> None:
    _cluster()
