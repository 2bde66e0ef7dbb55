"""What a stack declares, as the account must report it: for each resource type stack mode compares, the live kind
it is found as, the settings that tell it apart from resources tagged alike (its identity), and every compared
setting as a pair — the Pulumi input that declares it ↔ the API field that reports it (`enableKeyRotation` ↔
`GetKeyRotationStatus.KeyRotationEnabled`). A setting the stack does not declare is not compared."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from hardstack.stacks.inventory import Inventory, Resource

from .compare import (
    Counterpart,
    equal,
    includes,
    policy_difference,
    same_policy,
    same_scan_rules,
    same_set,
    same_truth,
    tags_present,
)
from .resource import LiveResource


class Declared:
    """A declared resource and what it needs to read its expected settings: its siblings (resources that configure
    it, like a bucket's BucketVersioning) and the live counterparts of the resources it refers to."""

    def __init__(self, resource: Resource, inventory: Inventory, counterparts: dict[str, LiveResource]) -> None:
        self.resource, self.inventory, self.counterparts = resource, inventory, counterparts

    def get(self, *path: str | int, default: Any = None) -> Any:
        return self.resource.get(*path, default=default)

    def siblings(self, type_token: str, via: tuple[str | int, ...]) -> list[Resource]:
        """Resources of `type_token` whose input `via` refers to this resource."""
        return [r for r in self.inventory.of_type(type_token)
                if any(ref.path == via and ref.resource == self.resource.urn for ref in r.references)]

    def referred(self, resource: Resource, path: tuple[str | int, ...]) -> Any:
        """Input `path` of `resource`: the counterpart of the declared resource it refers to, else its value."""
        for ref in resource.references:
            referred = self.inventory[ref.resource]
            if ref.path == path and referred.type in TYPES:
                return Counterpart(referred.name, self.counterparts.get(ref.resource))
        return resource.get(*path)


# --- reading expectations ----------------------------------------------------------------------------------------

Expect = Callable[[Declared], Any]


def own(*path: str | int, default: Any = None) -> Expect:
    return lambda d: d.get(*path, default=default)


def own_ref(*path: str | int) -> Expect:
    return lambda d: d.referred(d.resource, path)


def sibling(type_token: str, *path: str | int, via: tuple[str | int, ...] = ("bucket",), ref: bool = False) -> Expect:
    def read(d: Declared) -> Any:
        found = d.siblings(type_token, via)
        if not found:
            return None
        return d.referred(found[0], path) if ref else found[0].get(*path)

    return read


# --- the mapping -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Setting:
    declared: str
    """The Pulumi input that declares it (prefixed with the declaring resource's type when a sibling declares it)."""
    api: str
    """The API field that reports it (a key of LiveResource.settings)."""
    expected: Expect
    same: Callable[[Any, Any], bool] = equal
    describe: Callable[[Any, Any], str] | None = None
    """Says how expected and found differ, when `expected …, found …` would not be readable (policies)."""


@dataclass(frozen=True)
class DeclaredType:
    types: tuple[str, ...]  # Pulumi type tokens
    kind: str
    identity: tuple[Setting, ...] = ()
    settings: tuple[Setting, ...] = ()
    tagged: bool = True
    """Found by its `hardstack:stack` and `hardstack:component` tags (and its declared tags are compared); else
    there is one per account and region."""


BUCKET_SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
SSE_DEFAULT = ("rules", 0, "applyServerSideEncryptionByDefault")
BUCKET_VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
BUCKET_PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
BUCKET_LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
BUCKET_LOGGING = "aws:s3/bucketLogging:BucketLogging"
BUCKET_OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
KMS_ALIAS = "aws:kms/alias:Alias"
WAF_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
DETECTOR_FEATURE = "aws:guardduty/detectorFeature:DetectorFeature"
BUCKET_TYPES = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")


def _short(type_token: str) -> str:
    return type_token.rsplit(":", 1)[-1]


def _aliases(d: Declared) -> list[str] | None:
    names = sorted(a.get("name") for a in d.siblings(KMS_ALIAS, ("targetKeyId",)) if a.get("name"))
    return names or None


def _default_action(d: Declared) -> str | None:
    action = d.get("defaultAction") or {}
    return sorted(action)[0] if action else None


def _rule_names(d: Declared) -> list[str] | None:
    rules = d.get("rules")
    return None if rules is None else sorted(r.get("name") for r in rules)


def _action_types(d: Declared) -> list[str] | None:
    actions = d.get("defaultActions")
    return None if actions is None else [a.get("type") for a in actions]


def _found_action_types(expected: Any, found: Any) -> bool:
    return [a.get("Type") for a in found or []] == list(expected)


def _scheme(d: Declared) -> str | None:
    internal = d.get("internal")
    return None if internal is None else ("internal" if internal else "internet-facing")


def _detector_status(d: Declared) -> str:
    return "ENABLED" if d.get("enable", default=True) else "DISABLED"


def _detector_features(d: Declared) -> dict[str, str] | None:
    out = {}
    for feature in d.siblings(DETECTOR_FEATURE, ("detectorId",)):
        out[feature.get("name")] = feature.get("status")
        for extra in feature.get("additionalConfigurations") or []:
            out[f"{feature.get('name')}/{extra['name']}"] = extra.get("status")
    return out or None


def _features_on(expected: dict[str, str], found: Any) -> bool:
    return all((found or {}).get(k) == v for k, v in expected.items())


def _trail_management(d: Declared) -> bool | None:
    selectors = d.get("advancedEventSelectors")
    if selectors is None:
        return None
    return any(any(f.get("field") == "eventCategory" and f.get("equals") == ["Management"]
                   for f in s.get("fieldSelectors") or []) for s in selectors)


def _trail_data_buckets(d: Declared) -> list[Counterpart] | None:
    """The buckets whose object events the trail's selectors name (by reference to the declared buckets)."""
    buckets = [d.inventory[ref.resource] for ref in d.resource.references
               if ref.path[:1] == ("advancedEventSelectors",) and d.inventory[ref.resource].type in BUCKET_TYPES]
    return [Counterpart(b.name, d.counterparts.get(b.urn)) for b in buckets] or None


def _prefixes_cover(expected: list[Counterpart], found: Any) -> bool:
    prefixes = {p.rstrip("/") for p in found or []}
    return all(c.live is not None and c.live.arn in prefixes for c in expected)


def _tag_difference(expected: dict[str, str], found: dict[str, str]) -> str:
    return ", ".join(f"{k}: expected {json.dumps(expected[k])}, found " + (json.dumps(found[k]) if k in found else
                                                                           "not set")
                     for k in sorted(expected) if found.get(k) != expected[k])


TAGS = Setting("tags", "tags", own("tags"), tags_present, _tag_difference)
"""Every tag the stack declares, with its value (compared on every tagged resource; the account may add more)."""

TYPES_IN_ORDER: tuple[DeclaredType, ...] = (
    DeclaredType(
        ("aws:kms/key:Key",), "kms-key",
        identity=(Setting(f"{_short(KMS_ALIAS)} name", "ListAliases.AliasName", _aliases, includes),),
        settings=(
            Setting("enableKeyRotation", "GetKeyRotationStatus.KeyRotationEnabled", own("enableKeyRotation"),
                    same_truth),
            Setting("isEnabled", "DescribeKey.Enabled", own("isEnabled")),
            Setting("keyUsage", "DescribeKey.KeyUsage", own("keyUsage")),
            Setting("customerMasterKeySpec", "DescribeKey.KeySpec", own("customerMasterKeySpec")),
            Setting("multiRegion", "DescribeKey.MultiRegion", own("multiRegion"), same_truth),
            Setting("policy", "GetKeyPolicy.Policy", own("policy"), same_policy, policy_difference),
        )),
    DeclaredType(
        BUCKET_TYPES, "s3-bucket",
        identity=(Setting("bucket", "name", own("bucket")),),
        settings=(
            Setting(f"{_short(BUCKET_SSE)} rules[0].applyServerSideEncryptionByDefault.sseAlgorithm",
                    "GetBucketEncryption.SSEAlgorithm", sibling(BUCKET_SSE, *SSE_DEFAULT, "sseAlgorithm")),
            Setting(f"{_short(BUCKET_SSE)} rules[0].applyServerSideEncryptionByDefault.kmsMasterKeyId",
                    "GetBucketEncryption.KMSMasterKeyID",
                    sibling(BUCKET_SSE, *SSE_DEFAULT, "kmsMasterKeyId", ref=True)),
            Setting(f"{_short(BUCKET_SSE)} rules[0].bucketKeyEnabled", "GetBucketEncryption.BucketKeyEnabled",
                    sibling(BUCKET_SSE, "rules", 0, "bucketKeyEnabled"), same_truth),
            Setting(f"{_short(BUCKET_VERSIONING)} versioningConfiguration.status", "GetBucketVersioning.Status",
                    sibling(BUCKET_VERSIONING, "versioningConfiguration", "status")),
            *(Setting(f"{_short(BUCKET_PAB)} {name}", f"GetPublicAccessBlock.{field}",
                      sibling(BUCKET_PAB, name), same_truth)
              for name, field in (("blockPublicAcls", "BlockPublicAcls"), ("ignorePublicAcls", "IgnorePublicAcls"),
                                  ("blockPublicPolicy", "BlockPublicPolicy"),
                                  ("restrictPublicBuckets", "RestrictPublicBuckets"))),
            Setting(f"{_short(BUCKET_POLICY)} policy", "GetBucketPolicy.Policy", sibling(BUCKET_POLICY, "policy"),
                    same_policy, policy_difference),
            Setting(f"{_short(BUCKET_LOCK)} objectLockEnabled", "GetObjectLockConfiguration.ObjectLockEnabled",
                    sibling(BUCKET_LOCK, "objectLockEnabled")),
            Setting(f"{_short(BUCKET_LOCK)} rule.defaultRetention.mode", "GetObjectLockConfiguration.Mode",
                    sibling(BUCKET_LOCK, "rule", "defaultRetention", "mode")),
            Setting(f"{_short(BUCKET_LOCK)} rule.defaultRetention.days", "GetObjectLockConfiguration.Days",
                    sibling(BUCKET_LOCK, "rule", "defaultRetention", "days")),
            Setting(f"{_short(BUCKET_LOGGING)} targetBucket", "GetBucketLogging.TargetBucket",
                    sibling(BUCKET_LOGGING, "targetBucket", ref=True)),
            Setting(f"{_short(BUCKET_LOGGING)} targetPrefix", "GetBucketLogging.TargetPrefix",
                    sibling(BUCKET_LOGGING, "targetPrefix")),
            Setting(f"{_short(BUCKET_OWNERSHIP)} rule.objectOwnership", "GetBucketOwnershipControls.ObjectOwnership",
                    sibling(BUCKET_OWNERSHIP, "rule", "objectOwnership")),
        )),
    DeclaredType(
        ("aws:ec2/vpc:Vpc",), "vpc",
        settings=(
            Setting("cidrBlock", "DescribeVpcs.CidrBlock", own("cidrBlock")),
            Setting("enableDnsSupport", "DescribeVpcAttribute.EnableDnsSupport", own("enableDnsSupport"), same_truth),
            Setting("enableDnsHostnames", "DescribeVpcAttribute.EnableDnsHostnames", own("enableDnsHostnames"),
                    same_truth),
        )),
    DeclaredType(
        ("aws:ec2/flowLog:FlowLog",), "flow-log",
        identity=(Setting("vpcId", "DescribeFlowLogs.ResourceId", own_ref("vpcId")),),
        settings=(
            Setting("trafficType", "DescribeFlowLogs.TrafficType", own("trafficType")),
            Setting("logDestinationType", "DescribeFlowLogs.LogDestinationType", own("logDestinationType")),
            Setting("maxAggregationInterval", "DescribeFlowLogs.MaxAggregationInterval", own("maxAggregationInterval")),
        )),
    DeclaredType(
        ("aws:wafv2/webAcl:WebAcl",), "web-acl",
        identity=(Setting("name", "name", own("name")),),
        settings=(
            Setting("defaultAction", "GetWebACL.DefaultAction", _default_action),
            Setting("rules[].name", "GetWebACL.Rules.Name", _rule_names, same_set),
        )),
    DeclaredType(
        ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer"), "load-balancer",
        identity=(Setting("name", "DescribeLoadBalancers.LoadBalancerName", own("name")),),
        settings=(
            Setting("internal", "DescribeLoadBalancers.Scheme", _scheme),
            Setting("loadBalancerType", "DescribeLoadBalancers.Type", own("loadBalancerType")),
            *(Setting(name, f"DescribeLoadBalancerAttributes.{key}", own(*name.split(".")))
              for name, key in (("dropInvalidHeaderFields", "routing.http.drop_invalid_header_fields.enabled"),
                                ("desyncMitigationMode", "routing.http.desync_mitigation_mode"),
                                ("enableDeletionProtection", "deletion_protection.enabled"),
                                ("enableWafFailOpen", "waf.fail_open.enabled"),
                                ("enableHttp2", "routing.http2.enabled"),
                                ("accessLogs.enabled", "access_logs.s3.enabled"),
                                ("accessLogs.prefix", "access_logs.s3.prefix"))),
            Setting("accessLogs.bucket", "DescribeLoadBalancerAttributes.access_logs.s3.bucket",
                    own_ref("accessLogs", "bucket")),
            Setting(f"{_short(WAF_ASSOCIATION)} webAclArn", "GetWebACLForResource.WebACL.ARN",
                    sibling(WAF_ASSOCIATION, "webAclArn", via=("resourceArn",), ref=True)),
        )),
    DeclaredType(
        ("aws:lb/listener:Listener", "aws:alb/listener:Listener"), "listener",
        identity=(Setting("loadBalancerArn", "DescribeListeners.LoadBalancerArn", own_ref("loadBalancerArn")),
                  Setting("port", "DescribeListeners.Port", own("port"))),
        settings=(
            Setting("protocol", "DescribeListeners.Protocol", own("protocol")),
            Setting("sslPolicy", "DescribeListeners.SslPolicy", own("sslPolicy")),
            Setting("defaultActions[].type", "DescribeListeners.DefaultActions", _action_types, _found_action_types),
        )),
    DeclaredType(
        ("aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration",), "ecr-registry-scanning",
        tagged=False,
        settings=(
            Setting("scanType", "GetRegistryScanningConfiguration.scanType", own("scanType")),
            Setting("rules", "GetRegistryScanningConfiguration.rules", own("rules"), same_scan_rules),
        )),
    DeclaredType(
        ("aws:ecr/repository:Repository",), "ecr-repository",
        identity=(Setting("name", "name", own("name")),),
        settings=(
            Setting("imageTagMutability", "DescribeRepositories.imageTagMutability", own("imageTagMutability")),
            Setting("imageScanningConfiguration.scanOnPush",
                    "DescribeRepositories.imageScanningConfiguration.scanOnPush",
                    own("imageScanningConfiguration", "scanOnPush"), same_truth),
            Setting("encryptionConfigurations[0].encryptionType",
                    "DescribeRepositories.encryptionConfiguration.encryptionType",
                    own("encryptionConfigurations", 0, "encryptionType")),
            Setting("encryptionConfigurations[0].kmsKey", "DescribeRepositories.encryptionConfiguration.kmsKey",
                    own_ref("encryptionConfigurations", 0, "kmsKey")),
        )),
    DeclaredType(
        ("aws:eks/cluster:Cluster",), "eks-cluster",
        identity=(Setting("name", "name", own("name")),),
        settings=(
            Setting("version", "DescribeCluster.version", own("version")),
            Setting("vpcConfig.endpointPublicAccess", "DescribeCluster.resourcesVpcConfig.endpointPublicAccess",
                    own("vpcConfig", "endpointPublicAccess"), same_truth),
            Setting("vpcConfig.endpointPrivateAccess", "DescribeCluster.resourcesVpcConfig.endpointPrivateAccess",
                    own("vpcConfig", "endpointPrivateAccess"), same_truth),
            Setting("vpcConfig.publicAccessCidrs", "DescribeCluster.resourcesVpcConfig.publicAccessCidrs",
                    own("vpcConfig", "publicAccessCidrs"), same_set),
            Setting("enabledClusterLogTypes", "DescribeCluster.logging.clusterLogging.types",
                    own("enabledClusterLogTypes"), same_set),
            Setting("encryptionConfig.provider.keyArn", "DescribeCluster.encryptionConfig.provider.keyArn",
                    own_ref("encryptionConfig", "provider", "keyArn")),
            Setting("encryptionConfig.resources", "DescribeCluster.encryptionConfig.resources",
                    own("encryptionConfig", "resources"), same_set),
        )),
    DeclaredType(
        ("aws:cloudtrail/trail:Trail",), "trail",
        identity=(Setting("name", "name", own("name")),),
        settings=(
            Setting("isMultiRegionTrail", "DescribeTrails.IsMultiRegionTrail", own("isMultiRegionTrail"), same_truth),
            Setting("enableLogFileValidation", "DescribeTrails.LogFileValidationEnabled",
                    own("enableLogFileValidation"), same_truth),
            Setting("includeGlobalServiceEvents", "DescribeTrails.IncludeGlobalServiceEvents",
                    own("includeGlobalServiceEvents"), same_truth),
            Setting("enableLogging (default true)", "GetTrailStatus.IsLogging", own("enableLogging", default=True),
                    same_truth),
            Setting("kmsKeyId", "DescribeTrails.KmsKeyId", own_ref("kmsKeyId")),
            Setting("s3BucketName", "DescribeTrails.S3BucketName", own_ref("s3BucketName")),
            Setting("advancedEventSelectors (management events)", "GetEventSelectors.Management", _trail_management,
                    same_truth),
            Setting("advancedEventSelectors (S3 data events of the buckets)", "GetEventSelectors.S3DataPrefixes",
                    _trail_data_buckets, _prefixes_cover),
        )),
    DeclaredType(
        ("aws:guardduty/detector:Detector",), "guardduty-detector",
        settings=(
            Setting("enable (default true)", "GetDetector.Status", _detector_status),
            Setting("findingPublishingFrequency", "GetDetector.FindingPublishingFrequency",
                    own("findingPublishingFrequency")),
            Setting(f"{_short(DETECTOR_FEATURE)} name/status", "GetDetector.Features", _detector_features,
                    _features_on),
        )),
)
"""Every declared type stack mode compares, in the order they are matched: a type that names another (a flow log
its VPC, a listener its load balancer) comes after it."""

TYPES: dict[str, DeclaredType] = {t: d for d in TYPES_IN_ORDER for t in d.types}

CONSUMED: frozenset[str] = frozenset({BUCKET_SSE, BUCKET_VERSIONING, BUCKET_PAB, BUCKET_POLICY, BUCKET_LOCK,
                                      BUCKET_LOGGING, BUCKET_OWNERSHIP, KMS_ALIAS, WAF_ASSOCIATION, DETECTOR_FEATURE})
"""Declared types compared as settings of the resource they configure (a bucket's versioning, a key's alias)."""
