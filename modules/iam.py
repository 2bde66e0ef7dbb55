"""Service roles the stack's components need: trusted by one AWS service principal, scoped to this account."""

from __future__ import annotations

import json
from typing import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from .base import account_and_partition

ASSUME_ACTIONS = {"ec2.amazonaws.com": ["sts:AssumeRole"], "eks.amazonaws.com": ["sts:AssumeRole", "sts:TagSession"],
                  "pods.eks.amazonaws.com": ["sts:AssumeRole", "sts:TagSession"]}


def service_role(
    name: str,
    service: str,
    managed_policies: Sequence[str],
    *,
    parent: pulumi.Resource,
    tags: Mapping[str, str],
) -> aws.iam.Role:
    """A role only `service` acting for this account can assume, with AWS managed policies attached by name."""
    account, partition, _ = account_and_partition()
    trust = account.apply(
        lambda a: json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": service},
                        "Action": ASSUME_ACTIONS[service],
                        "Condition": {"StringEquals": {"aws:SourceAccount": a}},
                    }
                ],
            }
        )
    )
    role = aws.iam.Role(
        name,
        assume_role_policy=trust,
        max_session_duration=3600,
        tags=dict(tags),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    for policy in managed_policies:
        aws.iam.RolePolicyAttachment(
            f"{name}-{policy.lower()}",
            role=role.name,
            policy_arn=partition.apply(lambda p, policy=policy: f"arn:{p}:iam::aws:policy/{policy}"),
            opts=pulumi.ResourceOptions(parent=parent),
        )
    return role
