"""Every AWS API call the audit makes and the IAM action that allows it: the read-only permissions to grant the
identity that runs `hardstack audit`. The session refuses a call missing here, so this list is complete."""

from __future__ import annotations

IAM_PREFIX = {
    "sts": "sts",
    "kms": "kms",
    "s3": "s3",
    "ec2": "ec2",
    "elbv2": "elasticloadbalancing",
    "wafv2": "wafv2",
    "cloudtrail": "cloudtrail",
    "ecr": "ecr",
    "eks": "eks",
    "guardduty": "guardduty",
}
"""boto3 client name → the service prefix of its IAM actions."""

OPERATIONS: tuple[tuple[str, str], ...] = (
    ("sts", "GetCallerIdentity"),
    ("kms", "ListKeys"), ("kms", "DescribeKey"), ("kms", "ListAliases"), ("kms", "ListResourceTags"),
    ("kms", "GetKeyRotationStatus"), ("kms", "GetKeyPolicy"),
    ("s3", "ListBuckets"), ("s3", "GetBucketTagging"), ("s3", "GetBucketEncryption"), ("s3", "GetBucketVersioning"),
    ("s3", "GetPublicAccessBlock"), ("s3", "GetBucketPolicy"), ("s3", "GetObjectLockConfiguration"),
    ("s3", "GetBucketLogging"), ("s3", "GetBucketOwnershipControls"),
    ("ec2", "DescribeVpcs"), ("ec2", "DescribeVpcAttribute"), ("ec2", "DescribeFlowLogs"),
    ("elbv2", "DescribeLoadBalancers"), ("elbv2", "DescribeLoadBalancerAttributes"), ("elbv2", "DescribeListeners"),
    ("elbv2", "DescribeTags"),
    ("wafv2", "GetWebACLForResource"), ("wafv2", "ListWebACLs"), ("wafv2", "GetWebACL"),
    ("wafv2", "ListTagsForResource"),
    ("cloudtrail", "DescribeTrails"), ("cloudtrail", "GetTrailStatus"), ("cloudtrail", "GetEventSelectors"),
    ("cloudtrail", "ListTags"),
    ("ecr", "DescribeRepositories"), ("ecr", "ListTagsForResource"), ("ecr", "GetRegistryScanningConfiguration"),
    ("eks", "ListClusters"), ("eks", "DescribeCluster"),
    ("guardduty", "ListDetectors"), ("guardduty", "GetDetector"),
)

S3_ACTIONS = {
    "ListBuckets": "s3:ListAllMyBuckets",
    "GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "GetObjectLockConfiguration": "s3:GetBucketObjectLockConfiguration",
}
"""S3 operations whose IAM action is not named after them."""

NO_PERMISSION_NEEDED = {("sts", "GetCallerIdentity")}
"""Every identity may ask who it is."""


def iam_action(service: str, operation: str) -> str:
    if service == "s3" and operation in S3_ACTIONS:
        return S3_ACTIONS[operation]
    return f"{IAM_PREFIX[service]}:{operation}"


REQUIRED_ACTIONS: tuple[str, ...] = tuple(sorted(
    {iam_action(s, o) for s, o in OPERATIONS if (s, o) not in NO_PERMISSION_NEEDED}))
"""The IAM actions an identity needs to run the audit, all read-only."""
