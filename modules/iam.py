"""Roles and their trust: who may assume a role, for how long, under which permission boundary."""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import pulumi
import pulumi_aws as aws

from .base import account_and_partition

ASSUME_ACTIONS = {"ec2.amazonaws.com": ["sts:AssumeRole"], "eks.amazonaws.com": ["sts:AssumeRole", "sts:TagSession"],
                  "pods.eks.amazonaws.com": ["sts:AssumeRole", "sts:TagSession"],
                  "ecr.amazonaws.com": ["sts:AssumeRole"], "cloudtrail.amazonaws.com": ["sts:AssumeRole"]}
MAX_SESSION_SECONDS = 3600
"""Every role's longest session: the shortest IAM allows (just-in-time sessions are shorter: Vault asks for less)."""
PERSONA_TAG = "hardstack:persona"


def document(statements: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, indent=2)


def service_trust(service: str, account: str, source_arn: str | None = None) -> str:
    """Only `service` acting for this account (and, where given, for one resource) may assume the role."""
    condition: dict[str, Any] = {"StringEquals": {"aws:SourceAccount": account}}
    if source_arn:
        condition["ArnEquals"] = {"aws:SourceArn": source_arn}
    return document([{"Effect": "Allow", "Principal": {"Service": service}, "Action": ASSUME_ACTIONS[service],
                      "Condition": condition}])


def human_trust(account: str, partition: str, mfa_max_age: int) -> str:
    """IAM principals of `account` may assume the role only signed in with MFA, and only a recent sign-in."""
    return document([{
        "Sid": "PeopleWithRecentMfa",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
        "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
        "Condition": {
            "Bool": {"aws:MultiFactorAuthPresent": "true"},
            "NumericLessThan": {"aws:MultiFactorAuthAge": str(mfa_max_age)},
        },
    }])


def broker_trust(account: str, partition: str, role_name: str) -> str:
    """Only one named role (a credential broker such as Vault, which enforces its own MFA) may assume it. The
    role must exist when the trust is written: IAM refuses a principal it cannot find."""
    return document([{
        "Sid": "OnlyTheBroker",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{partition}:iam::{account}:role/{role_name}"},
        "Action": ["sts:AssumeRole"],
    }])


def role(
    name: str,
    trust: pulumi.Input[str],
    *,
    boundary: pulumi.Input[str],
    parent: pulumi.Resource,
    tags: Mapping[str, str],
) -> aws.iam.Role:
    """A role with one-hour sessions under the stack's permission boundary."""
    return aws.iam.Role(
        name,
        assume_role_policy=trust,
        max_session_duration=MAX_SESSION_SECONDS,
        permissions_boundary=boundary,
        tags=dict(tags),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def inline_policy(name: str, target: aws.iam.Role, statements: pulumi.Input[Sequence[Any]],
                  parent: pulumi.Resource) -> aws.iam.RolePolicy:
    return aws.iam.RolePolicy(
        name,
        role=target.id,
        policy=pulumi.Output.from_input(statements).apply(document),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def service_role(
    name: str,
    service: str,
    managed_policies: Sequence[str],
    *,
    boundary: pulumi.Input[str],
    parent: pulumi.Resource,
    tags: Mapping[str, str],
) -> aws.iam.Role:
    """A role only `service` acting for this account can assume, with AWS managed policies attached by name."""
    account, partition, _ = account_and_partition()
    created = role(name, account.apply(lambda a: service_trust(service, a)), boundary=boundary, parent=parent,
                   tags=tags)
    for policy in managed_policies:
        aws.iam.RolePolicyAttachment(
            f"{name}-{policy.lower()}",
            role=created.name,
            policy_arn=partition.apply(lambda p, policy=policy: f"arn:{p}:iam::aws:policy/{policy}"),
            opts=pulumi.ResourceOptions(parent=parent),
        )
    return created
