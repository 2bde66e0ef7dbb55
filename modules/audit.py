"""The account's audit record and threat detection: a CloudTrail trail that records who did what (including every
read and write of training data and models) into write-once storage only CloudTrail can write, GuardDuty watching
the cluster and the buckets, and Security Hub judging the account against AWS's foundational standard."""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import pulumi
import pulumi_aws as aws

from hardstack.blueprints.base import Classification
from hardstack.blueprints.data import BucketSpec, ObjectLockSpec, Purpose
from hardstack.blueprints.kms import KmsSpec
from hardstack.blueprints.operations import AuditSpec

from .base import DesignException, HardenedComponent, account_and_partition
from .iam import inline_policy, role, service_trust
from .identity import PermissionsBoundary
from .kms import KEY_USE_ACTIONS, CustomerManagedKey
from .storage import AccessLogBucket, EncryptedBucket

CLOUDTRAIL = "cloudtrail.amazonaws.com"

# --- what the trail records ----------------------------------------------------------------------------------------

MANAGEMENT_SELECTOR = "Management events, read and write"
DATA_SELECTOR = "S3 object reads and writes of training data and models"
S3_OBJECT = "AWS::S3::Object"
"""The resource type of S3 data events: every GetObject, PutObject, DeleteObject... on the buckets named."""

# --- what CloudTrail may do with the trail's key -------------------------------------------------------------------

TRAIL_ENCRYPT_ACTIONS = ("kms:GenerateDataKey",)
"""Each log file is encrypted under a data key generated for it (through S3, on CloudTrail's behalf)."""
TRAIL_DESCRIBE_ACTIONS = ("kms:DescribeKey",)
"""CloudTrail checks the key when the trail is created or updated."""
NOTIFY_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
"""Publishing to a topic encrypted with the key (SNS encrypts each message under a data key for the publisher)."""
LOG_READ_KEY_ACTIONS = ("kms:Decrypt", "kms:DescribeKey")
"""Reading log files: decryption only, through S3 only."""
LOG_DELIVERY_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
"""What CloudTrail's role may do in the trail's log group: create its streams and write events, nothing else."""

# --- threat detection ----------------------------------------------------------------------------------------------

FINDING_FREQUENCY = "FIFTEEN_MINUTES"
"""How often updates to existing GuardDuty findings are published (new findings are published at once): the most
frequent GuardDuty offers."""
GUARDDUTY_FEATURES: dict[str, tuple[str, ...]] = {
    "EKS_AUDIT_LOGS": (),
    "RUNTIME_MONITORING": ("EKS_ADDON_MANAGEMENT",),
    "S3_DATA_EVENTS": (),
}
"""GuardDuty protections every detector of the stack enables (and HS_OPS_002 requires), with the additional
configurations each needs enabled: the cluster's audit log (who did what to the Kubernetes API), what runs on its
nodes (the runtime agent, installed and kept current on every cluster as an EKS add-on), and S3 data events (who
reads and writes the buckets of training data and models)."""
FOUNDATIONAL_STANDARD = "standards/aws-foundational-security-best-practices/v/1.0.0"
"""AWS Foundational Security Best Practices, as the tail of its standards ARN in a region."""
CONTROL_FINDINGS = "SECURITY_CONTROL"
"""One finding per control, whatever the number of enabled standards that include it."""


def trail_arn(partition: str, region: str, account: str, trail_name: str) -> str:
    return f"arn:{partition}:cloudtrail:{region}:{account}:trail/{trail_name}"


def foundational_standard_arn(partition: str, region: str) -> str:
    """The ARN of AWS Foundational Security Best Practices in a region (standards ARNs name no account)."""
    return f"arn:{partition}:securityhub:{region}::{FOUNDATIONAL_STANDARD}"


class TrailKey(CustomerManagedKey):
    """The trail's own CMK: CloudTrail may encrypt log files with it only for this trail (`aws:SourceArn`) and only
    under an encryption context naming a trail of this account; CloudWatch Logs may use it only for the trail's log
    group; CloudTrail may publish to the trail's notification topic with it; principals of the account may only
    decrypt with it, and only through S3 (reading log files). Nobody may encrypt anything else with it."""

    def __init__(
        self,
        name: str,
        spec: KmsSpec,
        *,
        trail_name: str,
        log_group_name: str,
        topic_name: str,
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        self.trail_name, self.log_group_name, self.topic_name = trail_name, log_group_name, topic_name
        super().__init__(name, spec, description=f"{pulumi.get_stack()}: the audit trail's log files, its log group "
                         "and notifications", tags=tags, opts=opts)

    def policy_document(self, account: str, partition: str, region: str) -> dict[str, Any]:
        document = super().policy_document(account, partition, region)
        document["Statement"].extend(trail_key_statements(
            account, partition, region, trail_name=self.trail_name, log_group_name=self.log_group_name,
            topic_name=self.topic_name))
        return document


def trail_key_statements(account: str, partition: str, region: str, *, trail_name: str, log_group_name: str,
                         topic_name: str) -> list[dict[str, Any]]:
    """The trail key's statements beyond administration (see `TrailKey`)."""
    this_trail = {"aws:SourceArn": trail_arn(partition, region, account, trail_name)}
    return [
        {
            "Sid": "CloudTrailEncryptsThisTrailsLogFiles",
            "Effect": "Allow",
            "Principal": {"Service": CLOUDTRAIL},
            "Action": list(TRAIL_ENCRYPT_ACTIONS),
            "Resource": "*",
            "Condition": {
                "StringEquals": this_trail,
                "StringLike": {
                    "kms:EncryptionContext:aws:cloudtrail:arn": f"arn:{partition}:cloudtrail:*:{account}:trail/*"
                },
            },
        },
        {
            "Sid": "CloudTrailDescribesKeyForThisTrail",
            "Effect": "Allow",
            "Principal": {"Service": CLOUDTRAIL},
            "Action": list(TRAIL_DESCRIBE_ACTIONS),
            "Resource": "*",
            "Condition": {"StringEquals": this_trail},
        },
        {
            "Sid": "CloudTrailNotifiesThroughThisTopic",
            "Effect": "Allow",
            "Principal": {"Service": CLOUDTRAIL},
            "Action": list(NOTIFY_KEY_ACTIONS),
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    **this_trail,
                    "kms:EncryptionContext:aws:sns:topicArn": f"arn:{partition}:sns:{region}:{account}:{topic_name}",
                }
            },
        },
        {
            "Sid": "CloudWatchLogsForTheTrailLogGroup",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": list(KEY_USE_ACTIONS),
            "Resource": "*",
            # ArnLike without a wildcard: this one log group (policy linters type the context key as a string,
            # which ArnEquals refuses)
            "Condition": {
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn":
                        f"arn:{partition}:logs:{region}:{account}:log-group:{log_group_name}"
                }
            },
        },
        {
            "Sid": "LogFilesReadOnlyThroughS3",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
            "Action": list(LOG_READ_KEY_ACTIONS),
            "Resource": "*",
            "Condition": {
                "StringEquals": {"kms:CallerAccount": account, "kms:ViaService": f"s3.{region}.amazonaws.com"}
            },
        },
    ]


class TrailBucket(EncryptedBucket):
    """The trail's write-once bucket: everything `EncryptedBucket` enforces, objects locked in COMPLIANCE mode (nobody,
    the account root included, can delete or shorten the retention of a log file), and only this trail may write,
    and only under this account's prefix (every other write is denied, whatever IAM allows).

    Its objects are encrypted under a data key each (no S3 bucket key): the key policy lets CloudTrail encrypt only
    under an encryption context naming a trail, which a bucket key would replace with the bucket's."""

    TYPE = "hardstack:audit:TrailBucket"
    BUCKET_KEY = False

    def __init__(
        self,
        name: str,
        key: CustomerManagedKey,
        *,
        retention_days: int,
        trail_arn: pulumi.Input[str],
        access_logs: AccessLogBucket | None,
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        self.trail_arn = pulumi.Output.from_input(trail_arn)
        spec = BucketSpec(
            name="audit-trail",
            purpose=Purpose.audit_logs,
            object_lock=ObjectLockSpec(mode="COMPLIANCE", days=retention_days),
            noncurrent_version_days=retention_days,
        )
        super().__init__(name, spec, key, classification=Classification.confidential, access_logs=access_logs,
                         tags=tags, opts=opts)

    def policy_json(self) -> pulumi.Output[str]:
        return pulumi.Output.all(self.bucket.arn, self.key.arn, self.account_id, self.trail_arn).apply(
            lambda a: json.dumps(self.trail_policy_document(*a), indent=2))

    def trail_policy_document(self, bucket_arn: str, key_arn: str, account: str, trail: str) -> dict[str, Any]:
        document = self.policy_document(bucket_arn, key_arn, account)
        this_trail = {"aws:SourceArn": trail}
        document["Statement"].extend([
            {
                "Sid": "CloudTrailChecksBucketAcl",
                "Effect": "Allow",
                "Principal": {"Service": CLOUDTRAIL},
                "Action": "s3:GetBucketAcl",
                "Resource": bucket_arn,
                "Condition": {"StringEquals": this_trail},
            },
            {
                "Sid": "CloudTrailWritesThisTrailsLogFiles",
                "Effect": "Allow",
                "Principal": {"Service": CLOUDTRAIL},
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/AWSLogs/{account}/*",
                "Condition": {"StringEquals": {**this_trail, "s3:x-amz-acl": "bucket-owner-full-control"}},
            },
            {
                # Requests without aws:SourceArn (every IAM principal's) and other trails' are denied alike.
                "Sid": "DenyWritesButThisTrails",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/*",
                "Condition": {"StringNotEquals": this_trail},
            },
        ])
        return document


class AuditTrail(HardenedComponent):
    """The stack's CloudTrail trail: multi-region (one trail sees every region of the account, so activity in a
    region the stack does not use is recorded too), global service events (IAM, STS) included, log file validation
    on (a signed digest every hour proves no log file was changed or removed), management events read and write, and
    every object read and write of the buckets whose purpose is in `spec.data_events` (training data and models by
    default: who read a training set, who replaced a model).

    * Log files go to a `TrailBucket` (object lock COMPLIANCE for `spec.trail_retention_days`, only this trail may
      write), its server access logs to the stack's access log bucket.
    * Everything is encrypted with the trail's own `TrailKey`, not a key shared with the data it audits.
    * Events also go to a CloudWatch log group (the key, `spec.log_retention_days`), through a role only CloudTrail
      acting for this trail can assume, which may create streams and write events in that group only, under the
      stack's permission boundary.
    * An SNS topic (the key) is told of every log file delivered, for a log pipeline to subscribe to; only this trail
      may publish to it.
    """

    TYPE = "hardstack:audit:AuditTrail"

    def __init__(
        self,
        name: str,
        spec: AuditSpec,
        *,
        kms: KmsSpec,
        buckets: Mapping[str, EncryptedBucket],
        access_logs: AccessLogBucket | None,
        boundary: PermissionsBoundary,
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, tags=tags, opts=opts)
        self.spec = spec
        stack = pulumi.get_stack()
        account, partition, region = account_and_partition()
        self.trail_name = f"{stack}-{name}"
        self.log_group_name = f"/hardstack/{stack}/{name}/cloudtrail"
        self.topic_name = f"{stack}-{name}-log-files"
        self.trail_arn: pulumi.Output[str] = pulumi.Output.all(account, partition, region).apply(
            lambda a: trail_arn(a[1], a[2], a[0], self.trail_name))

        self.key = TrailKey(f"{name}-trail", kms, trail_name=self.trail_name, log_group_name=self.log_group_name,
                            topic_name=self.topic_name, tags=self.declared_tags, opts=self.child_opts())
        self.bucket = TrailBucket(f"{name}-trail-logs", self.key, retention_days=spec.trail_retention_days,
                                  trail_arn=self.trail_arn, access_logs=access_logs, tags=self.declared_tags,
                                  opts=self.child_opts())
        child = self.child_opts()
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-trail-events",
            name=self.log_group_name,
            retention_in_days=spec.log_retention_days,
            kms_key_id=self.key.arn,
            tags=self.tags,
            opts=child,
        )
        trust = pulumi.Output.all(account, self.trail_arn).apply(lambda a: service_trust(CLOUDTRAIL, a[0], a[1]))
        self.role = role(f"{name}-trail-delivery", trust, boundary=boundary.arn, parent=self, tags=self.tags)
        self.delivery_policy = inline_policy(
            f"{name}-trail-delivery-logs", self.role,
            pulumi.Output.all(self.log_group.arn, account, region).apply(lambda a: [{
                "Sid": "WriteTrailEventsToItsLogGroup",
                "Effect": "Allow",
                "Action": list(LOG_DELIVERY_ACTIONS),
                "Resource": f"{a[0]}:log-stream:{a[1]}_CloudTrail_{a[2]}*",
            }]),
            self)
        self.topic = aws.sns.Topic(
            f"{name}-trail-log-files",
            name=self.topic_name,
            kms_master_key_id=self.key.arn,
            tags=self.tags,
            opts=child,
        )
        self.topic_policy = aws.sns.TopicPolicy(
            f"{name}-trail-log-files-policy",
            arn=self.topic.arn,
            policy=pulumi.Output.all(self.topic.arn, self.trail_arn).apply(
                lambda a: json.dumps(topic_policy_document(*a), indent=2)),
            opts=child,
        )

        self.recorded = {n: b for n, b in sorted(buckets.items()) if b.spec.purpose in spec.data_events}
        self.trail = aws.cloudtrail.Trail(
            f"{name}-trail",
            name=self.trail_name,
            s3_bucket_name=self.bucket.id,
            kms_key_id=self.key.arn,
            is_multi_region_trail=True,
            include_global_service_events=True,
            is_organization_trail=False,
            enable_log_file_validation=True,
            enable_logging=True,
            cloud_watch_logs_group_arn=self.log_group.arn.apply(lambda arn: f"{arn}:*"),
            cloud_watch_logs_role_arn=self.role.arn,
            sns_topic_name=self.topic.name,
            advanced_event_selectors=event_selectors([b.arn for b in self.recorded.values()]),
            tags=self.tags,
            opts=self.child_opts(depends_on=[self.bucket.policy, self.delivery_policy, self.topic_policy]),
        )
        self.arn: pulumi.Output[str] = self.trail.arn
        self.register_outputs({"arn": self.arn, "bucket": self.bucket.bucket.bucket, "key": self.key.arn,
                               "logGroup": self.log_group.name})


def event_selectors(bucket_arns: Sequence[pulumi.Input[str]]) -> list[dict[str, Any]]:
    """Management events (read and write, no `readOnly` selector) and, when there are buckets to record, S3 data
    events (read and write) of every object in them, selected by the bucket's ARN."""
    selectors: list[dict[str, Any]] = [
        {"name": MANAGEMENT_SELECTOR, "field_selectors": [{"field": "eventCategory", "equals": ["Management"]}]},
    ]
    if bucket_arns:
        selectors.append({"name": DATA_SELECTOR, "field_selectors": [
            {"field": "eventCategory", "equals": ["Data"]},
            {"field": "resources.type", "equals": [S3_OBJECT]},
            {"field": "resources.ARN", "starts_withs": [pulumi.Output.from_input(a).apply(lambda arn: f"{arn}/")
                                                        for a in bucket_arns]},
        ]})
    return selectors


def topic_policy_document(topic_arn: str, trail: str) -> dict[str, Any]:
    """Only this trail may publish (CloudTrail acting for it), and nobody over plain HTTP."""
    return {"Version": "2012-10-17", "Statement": [
        {
            "Sid": "CloudTrailPublishesForThisTrail",
            "Effect": "Allow",
            "Principal": {"Service": CLOUDTRAIL},
            "Action": "SNS:Publish",
            "Resource": topic_arn,
            "Condition": {"StringEquals": {"aws:SourceArn": trail}},
        },
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "SNS:Publish",
            "Resource": topic_arn,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ]}


class ThreatDetection(HardenedComponent):
    """GuardDuty and Security Hub for the stack's account and region.

    Each is ONE PER ACCOUNT AND REGION: a second stack in the same account and region cannot create its own (AWS
    refuses a second detector and a second hub), and an organization whose delegated administrator enables them
    for every member account owns them already. Create this component in one stack per account and region only;
    elsewhere set `audit.detectors: organization` (the gate then fails HS_OPS_002 and HS_OPS_003 unless excepted
    with a reason that names who runs them).

    * GuardDuty: a detector, enabled, publishing finding updates every fifteen minutes, with EKS audit log
      monitoring, runtime monitoring (its agent installed and updated on every EKS cluster as an add-on by GuardDuty)
      and S3 protection (S3 data events) enabled.
    * Security Hub: enabled without its default standards (it would also enable the CIS benchmark, chosen by AWS
      rather than by the stack), one finding per control, subscribed to AWS Foundational Security Best Practices in
      the stack's region.
    """

    TYPE = "hardstack:audit:ThreatDetection"
    DESIGN_EXCEPTIONS = (
        DesignException(
            check="CKV2_AWS_3",
            resource_type="aws:guardduty/detector:Detector",
            reason="GuardDuty is enabled for an organization's member accounts (an organization configuration) only "
            "from the organization's delegated administrator account, never from a workload stack. This detector is "
            "the account's own; where the organization runs GuardDuty, `audit.detectors: organization` creates none.",
        ),
    )

    def __init__(
        self,
        name: str,
        spec: AuditSpec,
        *,
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, tags=tags, opts=opts)
        self.spec = spec
        _, partition, region = account_and_partition()
        child = self.child_opts()
        self.detector = aws.guardduty.Detector(
            f"{name}-guardduty",
            enable=True,
            finding_publishing_frequency=FINDING_FREQUENCY,
            tags=self.tags,
            opts=child,
        )
        self.features = {
            feature: aws.guardduty.DetectorFeature(
                f"{name}-{feature.lower().replace('_', '-')}",
                detector_id=self.detector.id,
                name=feature,
                status="ENABLED",
                additional_configurations=[{"name": c, "status": "ENABLED"} for c in extra] or None,
                opts=child,
            )
            for feature, extra in GUARDDUTY_FEATURES.items()
        }
        self.hub = aws.securityhub.Account(
            f"{name}-security-hub",
            enable_default_standards=False,
            control_finding_generator=CONTROL_FINDINGS,
            auto_enable_controls=True,
            opts=child,
        )
        self.foundational = aws.securityhub.StandardsSubscription(
            f"{name}-foundational-best-practices",
            standards_arn=pulumi.Output.all(partition, region).apply(lambda a: foundational_standard_arn(*a)),
            opts=self.child_opts(depends_on=[self.hub]),
        )
        self.register_outputs({"detector": self.detector.id, "hub": self.hub.arn,
                               "standard": self.foundational.standards_arn})
