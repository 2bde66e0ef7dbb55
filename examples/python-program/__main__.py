"""A team's own Pulumi program: hardstack's components next to the team's resources.

Shows the three ways to customize beyond a blueprint: composing components, subclassing one, and a Pulumi
transform for what no spec covers. `hardstack check .` judges everything here, the team's resources included.
"""

import json

import pulumi
import pulumi_aws as aws

from hardstack.blueprints.base import Classification
from hardstack.blueprints.data import BucketSpec, Purpose
from hardstack.blueprints.kms import KmsSpec
from hardstack.modules.identity import PermissionsBoundary
from hardstack.modules.kms import CustomerManagedKey
from hardstack.modules.storage import AccessLogBucket, EncryptedBucket

TEAM_TAGS = {"team": "features", "cost-center": "ml-features"}


def team_tags(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    """A Pulumi transform: every AWS resource that takes tags gets the team's (hardstack's own tags stay)."""
    if args.type_.startswith("aws:") and isinstance(args.props.get("tags"), dict):
        return pulumi.ResourceTransformResult({**args.props, "tags": {**TEAM_TAGS, **args.props["tags"]}}, args.opts)
    return None


pulumi.runtime.register_resource_transform(team_tags)


class FeatureStoreBucket(EncryptedBucket):
    """Subclassing: the team's feature buckets are always confidential feature stores kept for 400 days;
    everything EncryptedBucket enforces (CMK, TLS-only policy, versioning, access logs...) still applies."""

    def __init__(self, name: str, key: CustomerManagedKey, access_logs: AccessLogBucket) -> None:
        spec = BucketSpec(name=name, purpose=Purpose.feature_store, classification=Classification.confidential,
                          expiration_days=400)
        super().__init__(name, spec, key, classification=Classification.confidential, access_logs=access_logs)


boundary = PermissionsBoundary("boundary")
logs_key = CustomerManagedKey("logs", KmsSpec(), description="feature-store: access logs",
                              via_services=("logs", "s3"), service_principals=("logs", "s3-access-logging"))
data_key = CustomerManagedKey("features", KmsSpec(), description="feature-store: features at rest", via_services=("s3",))
access_logs = AccessLogBucket("access-logs", logs_key, retention_days=400)
features = FeatureStoreBucket("online-features", data_key, access_logs)

# The team's own resource: the role of its batch job (an ECS task) that reads the features.
caller = aws.get_caller_identity_output()
reader = aws.iam.Role(
    "feature-reader",
    assume_role_policy=caller.account_id.apply(lambda account: json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                       "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"aws:SourceAccount": account}}}],
    })),
    max_session_duration=3600,
    permissions_boundary=boundary.arn,
    tags={"app": "feature-batch"},
)
features.grant_read(reader)  # object reads plus decrypt with the bucket's key, through S3 only

pulumi.export("features_bucket", features.bucket.bucket)
pulumi.export("reader_role", reader.arn)
