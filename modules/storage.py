"""Encrypted, private, versioned buckets with a TLS-only policy and server access logs."""

from __future__ import annotations

import json
from typing import Any, ClassVar, Mapping, Sequence

import pulumi
import pulumi_aws as aws

from hardstack.blueprints.base import Classification
from hardstack.blueprints.data import BucketSpec, ObjectLockSpec

from .base import HardenedComponent, account_and_partition
from .kms import KEY_DECRYPT_ACTIONS, KEY_ENCRYPT_ACTIONS, CustomerManagedKey

MIN_TLS_VERSION = "1.2"
ABORT_INCOMPLETE_UPLOAD_DAYS = 7

BUCKET_LIST_ACTIONS = ("s3:ListBucket",)
OBJECT_READ_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion")
OBJECT_WRITE_ACTIONS = ("s3:AbortMultipartUpload", "s3:PutObject")


class EncryptedBucket(HardenedComponent):
    """A bucket that only this stack's CMK encrypts, reachable only over TLS 1.2+, never public, versioned,
    with ACLs disabled, lifecycle rules, server access logs, object events sent to EventBridge (so that changes
    to training data or models can be watched), and object lock where its data calls for it."""

    TYPE = "hardstack:storage:EncryptedBucket"
    BUCKET_KEY: ClassVar[bool] = True
    """S3 encrypts new objects under a bucket-level key derived from the CMK (far fewer KMS calls). A bucket whose
    key policy requires a per-object encryption context (a trail's) turns it off."""

    def __init__(
        self,
        name: str,
        spec: BucketSpec,
        key: CustomerManagedKey,
        *,
        classification: Classification,
        access_logs: "EncryptedBucket | None",
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, tags=tags, opts=opts)
        self.spec = spec
        self.key = key
        self.classification = spec.effective_classification(classification)
        self.object_lock = spec.effective_object_lock(classification)
        self.tags = {
            **self.tags,
            "hardstack:classification": self.classification.value,
            "hardstack:purpose": spec.purpose.value,
        }
        self.account_id, self.partition, _ = account_and_partition()

        self.bucket = aws.s3.Bucket(
            f"{name}-bucket",
            force_destroy=False,
            object_lock_enabled=self.object_lock is not None,
            tags=self.tags,
            opts=self.child_opts(),
        )
        self.arn: pulumi.Output[str] = self.bucket.arn
        self.id: pulumi.Output[str] = self.bucket.id
        child = self.child_opts()

        self.public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        self.ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=self.bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
        )
        self.encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=self.bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": key.arn,
                    },
                    "bucket_key_enabled": self.BUCKET_KEY,
                }
            ],
            opts=child,
        )
        self.versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=self.bucket.id,
            versioning_configuration={"status": "Enabled", "mfa_delete": "Disabled"},
            opts=child,
        )
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=self.bucket.id,
            rules=self._lifecycle_rules(),
            opts=self.child_opts(depends_on=[self.versioning]),
        )
        self.object_lock_configuration = None
        if self.object_lock is not None:
            self.object_lock_configuration = aws.s3.BucketObjectLockConfiguration(
                f"{name}-object-lock",
                bucket=self.bucket.id,
                object_lock_enabled="Enabled",
                rule={"default_retention": {"mode": self.object_lock.mode, "days": self.object_lock.days}},
                opts=self.child_opts(depends_on=[self.versioning]),
            )
        self.logging = None
        if access_logs is not None:
            self.logging = aws.s3.BucketLogging(
                f"{name}-access-logging",
                bucket=self.bucket.id,
                target_bucket=access_logs.id,
                target_prefix=f"{name}/",
                target_object_key_format={"partitioned_prefix": {"partition_date_source": "EventTime"}},
                opts=child,
            )
        self.notifications = aws.s3.BucketNotification(
            f"{name}-events",
            bucket=self.bucket.id,
            eventbridge=True,
            opts=child,
        )
        self.policy = aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=self.bucket.id,
            policy=self.policy_json(),
            opts=self.child_opts(depends_on=[self.public_access_block]),
        )
        self.register_outputs({"arn": self.arn, "bucket": self.bucket.bucket, "key": key.arn})

    def policy_json(self) -> pulumi.Output[str]:
        """The bucket policy as JSON. A specialised bucket whose statements name more than the bucket, its key and
        its account (a trail's ARN, say) overrides this and adds them to `policy_document`'s."""
        return pulumi.Output.all(self.bucket.arn, self.key.arn, self.account_id).apply(
            lambda a: json.dumps(self.policy_document(*a), indent=2)
        )

    def _lifecycle_rules(self) -> list[dict[str, Any]]:
        rules: list[dict[str, Any]] = [
            {
                "id": "abort-incomplete-uploads",
                "status": "Enabled",
                "filter": {},
                "abort_incomplete_multipart_upload": {"days_after_initiation": ABORT_INCOMPLETE_UPLOAD_DAYS},
            },
            {
                "id": "expire-noncurrent-versions",
                "status": "Enabled",
                "filter": {},
                "noncurrent_version_expiration": {"noncurrent_days": self.spec.noncurrent_version_days},
            },
        ]
        if self.spec.expiration_days:
            rules.append(
                {
                    "id": "expire-current-objects",
                    "status": "Enabled",
                    "filter": {},
                    "expiration": {"days": self.spec.expiration_days},
                }
            )
        return rules

    def policy_document(self, bucket_arn: str, key_arn: str, account: str) -> dict[str, Any]:
        """Deny plain HTTP and TLS < 1.2 for everyone; deny uploads that ask for any encryption other than
        this key (by ARN). Uploads that name no encryption get the bucket's default: this key."""
        everything = [bucket_arn, f"{bucket_arn}/*"]
        statements: list[dict[str, Any]] = [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": everything,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "DenyOutdatedTls",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": everything,
                "Condition": {"NumericLessThan": {"s3:TlsVersion": MIN_TLS_VERSION}},
            },
            {
                "Sid": "DenyUploadsWithOtherEncryption",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/*",
                "Condition": {
                    "Null": {"s3:x-amz-server-side-encryption": "false"},
                    "StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
                },
            },
            {
                "Sid": "DenyUploadsWithAnotherKey",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/*",
                "Condition": {
                    "Null": {"s3:x-amz-server-side-encryption": "false"},
                    "StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn},
                },
            },
        ]
        statements.extend(self.extra_statements(bucket_arn, account))
        return {"Version": "2012-10-17", "Statement": statements}

    def extra_statements(self, bucket_arn: str, account: str) -> list[dict[str, Any]]:
        """Allow statements a specialised bucket adds to the deny-by-default policy."""
        return []

    def grant_read(self, role: aws.iam.Role) -> aws.iam.RolePolicy:
        """Let `role` list and read this bucket's objects and decrypt them with its key (through S3 only)."""
        return self._grant(role, "read", OBJECT_READ_ACTIONS, KEY_DECRYPT_ACTIONS)

    def grant_write(self, role: aws.iam.Role) -> aws.iam.RolePolicy:
        """Let `role` put objects into this bucket, encrypted with its key (through S3 only)."""
        return self._grant(role, "write", OBJECT_WRITE_ACTIONS, KEY_ENCRYPT_ACTIONS)

    def grant_read_write(self, role: aws.iam.Role) -> aws.iam.RolePolicy:
        return self._grant(
            role,
            "read-write",
            OBJECT_READ_ACTIONS + OBJECT_WRITE_ACTIONS,
            tuple(sorted(set(KEY_DECRYPT_ACTIONS + KEY_ENCRYPT_ACTIONS))),
        )

    def _grant(
        self, role: aws.iam.Role, intent: str, object_actions: Sequence[str], key_actions: Sequence[str]
    ) -> aws.iam.RolePolicy:
        lists = "read" in intent  # listing keys is reading: a write-only grant does not see what is there

        def statements(a: list[Any]) -> list[dict[str, Any]]:
            return ([{"Effect": "Allow", "Action": list(BUCKET_LIST_ACTIONS), "Resource": a[0]}] if lists else []) + [
                {"Effect": "Allow", "Action": sorted(object_actions), "Resource": f"{a[0]}/*"},
                a[1],
            ]

        document = pulumi.Output.all(self.arn, self.key.use_statement(key_actions, "s3")).apply(
            lambda a: json.dumps({"Version": "2012-10-17", "Statement": statements(a)}, indent=2)
        )
        return aws.iam.RolePolicy(
            f"{self.component_name}-{intent}-{role.pulumi_resource_name}",
            role=role.id,
            policy=document,
            opts=self.child_opts(),
        )


class AccessLogBucket(EncryptedBucket):
    """The dedicated bucket that receives every bucket's server access logs; S3 log delivery may write to it
    for this account only, and its objects are locked."""

    TYPE = "hardstack:storage:AccessLogBucket"

    def __init__(
        self,
        name: str,
        key: CustomerManagedKey,
        *,
        retention_days: int,
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        from hardstack.blueprints.data import Purpose

        spec = BucketSpec(
            name=name,
            purpose=Purpose.audit_logs,
            object_lock=ObjectLockSpec(mode="COMPLIANCE", days=retention_days),
            noncurrent_version_days=retention_days,
        )
        super().__init__(
            name, spec, key, classification=Classification.confidential, access_logs=None, tags=tags, opts=opts
        )

    def extra_statements(self, bucket_arn: str, account: str) -> list[dict[str, Any]]:
        return [
            {
                "Sid": "S3ServerAccessLogDelivery",
                "Effect": "Allow",
                "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            }
        ]
