"""S3: the buckets of the audited region (ListBuckets filtered by region), their tags, and when a verdict needs them
their default encryption, versioning, public access block, policy, object lock, server access logging and object
ownership. A setting the bucket does not have (S3 answers "not found") is None."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..resource import LiveResource, tag_dict

if TYPE_CHECKING:
    from . import LiveAccount

PUBLIC_ACCESS_BLOCKS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def buckets(account: "LiveAccount") -> list[LiveResource]:
    s = account.session
    found = []
    for bucket in s.pages("s3", "ListBuckets", "the S3 buckets", "Buckets", BucketRegion=s.region):
        name = bucket["Name"]
        arn = s.arn("s3", name, region=False, account=False)
        tagging = s.call("s3", "GetBucketTagging", arn, absent=("NoSuchTagSet",), Bucket=name) or {}
        found.append(LiveResource("s3-bucket", arn, name, tag_dict(tagging.get("TagSet")), more=_settings(account)))
    return found


def _settings(account: "LiveAccount"):  # type: ignore[no-untyped-def]
    def read(bucket: LiveResource) -> dict[str, Any]:
        s, name, arn = account.session, bucket.name, bucket.arn
        out: dict[str, Any] = {}
        sse = s.call("s3", "GetBucketEncryption", arn, absent=("ServerSideEncryptionConfigurationNotFoundError",),
                     Bucket=name)
        rules = ((sse or {}).get("ServerSideEncryptionConfiguration") or {}).get("Rules") or [{}]
        default = rules[0].get("ApplyServerSideEncryptionByDefault") or {}
        out["GetBucketEncryption.SSEAlgorithm"] = default.get("SSEAlgorithm")
        out["GetBucketEncryption.KMSMasterKeyID"] = default.get("KMSMasterKeyID")
        out["GetBucketEncryption.BucketKeyEnabled"] = rules[0].get("BucketKeyEnabled")
        versioning = s.call("s3", "GetBucketVersioning", arn, Bucket=name) or {}
        out["GetBucketVersioning.Status"] = versioning.get("Status")
        out["GetBucketVersioning.MFADelete"] = versioning.get("MFADelete")
        block = s.call("s3", "GetPublicAccessBlock", arn, absent=("NoSuchPublicAccessBlockConfiguration",),
                       Bucket=name)
        config = (block or {}).get("PublicAccessBlockConfiguration") or {}
        for flag in PUBLIC_ACCESS_BLOCKS:
            out[f"GetPublicAccessBlock.{flag}"] = config.get(flag)
        policy = s.call("s3", "GetBucketPolicy", arn, absent=("NoSuchBucketPolicy",), Bucket=name)
        out["GetBucketPolicy.Policy"] = json.loads(policy["Policy"]) if policy and policy.get("Policy") else None
        lock = s.call("s3", "GetObjectLockConfiguration", arn, absent=("ObjectLockConfigurationNotFoundError",),
                      Bucket=name)
        lock_config = (lock or {}).get("ObjectLockConfiguration") or {}
        retention = (lock_config.get("Rule") or {}).get("DefaultRetention") or {}
        out["GetObjectLockConfiguration.ObjectLockEnabled"] = lock_config.get("ObjectLockEnabled")
        out["GetObjectLockConfiguration.Mode"] = retention.get("Mode")
        out["GetObjectLockConfiguration.Days"] = retention.get("Days")
        logging = (s.call("s3", "GetBucketLogging", arn, Bucket=name) or {}).get("LoggingEnabled") or {}
        out["GetBucketLogging.TargetBucket"] = logging.get("TargetBucket")
        out["GetBucketLogging.TargetPrefix"] = logging.get("TargetPrefix")
        ownership = s.call("s3", "GetBucketOwnershipControls", arn, absent=("OwnershipControlsNotFoundError",),
                           Bucket=name)
        owner_rules = ((ownership or {}).get("OwnershipControls") or {}).get("Rules") or [{}]
        out["GetBucketOwnershipControls.ObjectOwnership"] = owner_rules[0].get("ObjectOwnership")
        return out

    return read
