"""Customer-managed KMS keys whose policy separates administrators from users."""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import pulumi
import pulumi_aws as aws

from hardstack.blueprints.kms import KmsSpec

from .base import HardenedComponent, account_and_partition

DELETION_WINDOW_DAYS = 30
"""The longest window AWS allows: a key scheduled for deletion can be recovered for 30 days."""

KEY_ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
"""Administration without use: no Encrypt/Decrypt/GenerateDataKey and no CreateGrant (which would let an
administrator delegate use to itself)."""

KEY_USE_ACTIONS = (
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)
"""Cryptographic use of a key."""

GRANTING_SERVICES = ("ecr",)
"""Services that use a key through grants they create for the caller when a resource is created (ECR grants
itself use of the key for each repository, and retires the grant when the repository goes); for these the key
also allows CreateGrant (only for AWS resources) and RetireGrant, through the service only."""
KEY_GRANT_ACTIONS = ("kms:CreateGrant",)
KEY_RETIRE_ACTIONS = ("kms:RetireGrant",)

KEY_DECRYPT_ACTIONS = ("kms:Decrypt", "kms:DescribeKey")
KEY_ENCRYPT_ACTIONS = ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey")
"""Writing through S3: multipart uploads decrypt the data key of earlier parts, so writing needs Decrypt too."""


class CustomerManagedKey(HardenedComponent):
    """A symmetric CMK with rotation on, a 30-day deletion window and a policy in which

    * administrators (the blueprint's, or the account root delegating to IAM) may administer but never use it;
    * principals of the account may use it only through the named AWS services (`kms:ViaService`), and where a
      service works through grants (ECR), create grants only through it and only for AWS resources;
    * the named service principals (e.g. CloudWatch Logs) may use it only for this account's resources.
    """

    TYPE = "hardstack:kms:CustomerManagedKey"

    def __init__(
        self,
        name: str,
        spec: KmsSpec,
        *,
        description: str,
        via_services: Sequence[str] = (),
        service_principals: Sequence[str] = (),
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, tags=tags, opts=opts)
        self.spec = spec
        self.via_services = tuple(via_services)
        self.service_principals = tuple(service_principals)
        account, partition, region = account_and_partition()
        self.region = region
        self.account_id = account

        policy = pulumi.Output.all(account, partition, region).apply(
            lambda args: json.dumps(self.policy_document(*args), indent=2)
        )
        self.key = aws.kms.Key(
            f"{name}-key",
            description=description,
            key_usage="ENCRYPT_DECRYPT",
            customer_master_key_spec="SYMMETRIC_DEFAULT",
            enable_key_rotation=True,
            rotation_period_in_days=spec.rotation_period_days,
            deletion_window_in_days=DELETION_WINDOW_DAYS,
            is_enabled=True,
            multi_region=False,
            bypass_policy_lockout_safety_check=False,
            policy=policy,
            tags=self.tags,
            opts=self.child_opts(),
        )
        self.alias = aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/hardstack/{pulumi.get_stack()}/{name}",
            target_key_id=self.key.key_id,
            opts=self.child_opts(),
        )
        self.arn: pulumi.Output[str] = self.key.arn
        self.key_id: pulumi.Output[str] = self.key.key_id
        self.register_outputs({"arn": self.arn, "alias": self.alias.name})

    def policy_document(self, account: str, partition: str, region: str) -> dict[str, Any]:
        root = f"arn:{partition}:iam::{account}:root"
        admins = list(self.spec.administrators) or [root]
        statements: list[dict[str, Any]] = [
            {
                "Sid": "KeyAdministrationWithoutUse",
                "Effect": "Allow",
                "Principal": {"AWS": admins if len(admins) > 1 else admins[0]},
                "Action": list(KEY_ADMIN_ACTIONS),
                "Resource": "*",
            }
        ]
        if self.via_services:
            statements.append(
                {
                    "Sid": "KeyUseOnlyThroughServices",
                    "Effect": "Allow",
                    "Principal": {"AWS": root},
                    "Action": list(KEY_USE_ACTIONS),
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {
                            "kms:CallerAccount": account,
                            "kms:ViaService": sorted(f"{s}.{region}.amazonaws.com" for s in self.via_services),
                        }
                    },
                }
            )
        granting = sorted(f"{s}.{region}.amazonaws.com" for s in self.via_services if s in GRANTING_SERVICES)
        if granting:
            through = {"kms:CallerAccount": account, "kms:ViaService": granting}
            statements.extend([
                {
                    "Sid": "GrantsOnlyThroughServicesForAwsResources",
                    "Effect": "Allow",
                    "Principal": {"AWS": root},
                    "Action": list(KEY_GRANT_ACTIONS),
                    "Resource": "*",
                    "Condition": {"StringEquals": through, "Bool": {"kms:GrantIsForAWSResource": "true"}},
                },
                {
                    "Sid": "GrantsRetiredOnlyThroughServices",
                    "Effect": "Allow",
                    "Principal": {"AWS": root},
                    "Action": list(KEY_RETIRE_ACTIONS),
                    "Resource": "*",
                    "Condition": {"StringEquals": through},
                },
            ])
        for principal in self.service_principals:
            statements.extend(service_principal_statements(principal, account, partition, region))
        return {"Version": "2012-10-17", "Statement": statements}

    def use_statement(self, actions: Sequence[str], service: str) -> pulumi.Output[dict[str, Any]]:
        """An IAM statement allowing `actions` on this key, only when called through `service` (e.g. "s3")."""
        return pulumi.Output.all(self.arn, self.region).apply(
            lambda a: {
                "Effect": "Allow",
                "Action": sorted(actions),
                "Resource": a[0],
                "Condition": {"StringEquals": {"kms:ViaService": f"{service}.{a[1]}.amazonaws.com"}},
            }
        )


def service_principal_statements(principal: str, account: str, partition: str, region: str) -> list[dict[str, Any]]:
    """Key use for an AWS service acting for this account only (confused-deputy protection)."""
    if principal == "autoscaling":  # launches GPU nodes whose volumes the CMK encrypts
        role = f"arn:{partition}:iam::{account}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
        return [
            {
                "Sid": "AutoScalingUsesKeyForNodeVolumes",
                "Effect": "Allow",
                "Principal": {"AWS": role},
                "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKeyWithoutPlaintext",
                           "kms:ReEncryptFrom", "kms:ReEncryptTo"],
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:CallerAccount": account}},
            },
            {
                "Sid": "AutoScalingGrantsForAwsResourcesOnly",
                "Effect": "Allow",
                "Principal": {"AWS": role},
                "Action": ["kms:CreateGrant"],
                "Resource": "*",
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            },
        ]
    return [_service_principal_statement(principal, account, partition, region)]


def _service_principal_statement(principal: str, account: str, partition: str, region: str) -> dict[str, Any]:
    if principal == "logs":
        return {
            "Sid": "CloudWatchLogsForThisAccount",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": list(KEY_USE_ACTIONS),
            "Resource": "*",
            "Condition": {
                "ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{region}:{account}:log-group:*"}
            },
        }
    if principal == "s3-access-logging":
        return {
            "Sid": "S3ServerAccessLogDeliveryForThisAccount",
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": account}},
        }
    raise ValueError(f"unknown service principal {principal!r}; allowed: logs, s3-access-logging, autoscaling")
