"""hardstack's controls as `hardstack audit` judges them on live resources (account mode): each reads the settings
the API reports and names the stack-side checks (`hardstack check`) that hold the same control before deploy.

IDs are HS_LIVE_<area>_<n>, not the stack checks' own: a stack check judges a synthesized plan, these judge an API
answer, and a report (or a SARIF upload merging both) must say which was judged."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from hardstack.modules.base import STACK_TAG

from ..meta import CheckMeta
from .readers.kms import rotatable
from .readers.s3 import PUBLIC_ACCESS_BLOCKS
from .resource import TERRAFORM_TYPE, LiveResource
from .session import LiveSession

TLS13_ONLY_PREFIX = "ELBSecurityPolicy-TLS13-1-3-"
"""The rule of HS_EDGE_002: every Elastic Load Balancing policy offering TLS 1.3 and nothing older starts with this;
`ELBSecurityPolicy-TLS13-1-2-*` still allows TLS 1.2."""
ENCRYPTED_PROTOCOLS = ("HTTPS", "TLS")
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
CONTROL_PLANE_LOGS = ("api", "audit", "authenticator", "controllerManager", "scheduler")
OPEN_TO_ALL = ("0.0.0.0/0", "::/0")
ELB_LOG_PURPOSE = ("hardstack:purpose", "load-balancer-access-logs")
"""The tag hardstack's EndpointLogs bucket carries: the one bucket whose SSE-S3 encryption is by design."""


def _elb_log_reason() -> str:
    """Why EndpointLogs' bucket is SSE-S3: the component's own design exception, as the gate reports it."""
    from hardstack.modules.endpoint import EndpointLogs

    (reason,) = [d.reason for d in EndpointLogs.DESIGN_EXCEPTIONS if d.resource_type == "aws:s3/bucket:Bucket"]
    return reason


@dataclass(frozen=True)
class Verdict:
    status: str  # passed | failed | skipped
    detail: str | None = None
    by_design: str | None = None  # the reason of a skip by design


PASS = Verdict("passed")


def fail(detail: str) -> Verdict:
    return Verdict("failed", detail)


@dataclass(frozen=True)
class Finding:
    arn: str
    address: str
    verdict: Verdict


@dataclass(frozen=True)
class LiveControl:
    meta: CheckMeta
    kind: str
    stack_checks: tuple[str, ...]
    """The checks of `hardstack check` that hold the same control on a synthesized stack."""
    judge: Callable[[list[LiveResource], LiveSession], Iterable[Finding]]


def each(judge: Callable[[LiveResource], Verdict | None]) -> Callable[[list[LiveResource], LiveSession], list[Finding]]:
    """A control judged resource by resource (None: it does not apply to that resource)."""
    def run(resources: list[LiveResource], session: LiveSession) -> list[Finding]:
        return [Finding(r.arn, r.address, v) for r in resources if (v := judge(r)) is not None]

    return run


# --- KMS and S3 ---------------------------------------------------------------------------------------------------

def _key_rotation(key: LiveResource) -> Verdict | None:
    if not rotatable(key):
        return None
    return PASS if key.get("GetKeyRotationStatus.KeyRotationEnabled") is True else fail(
        "GetKeyRotationStatus.KeyRotationEnabled is false")


def _bucket_kms(bucket: LiveResource) -> Verdict:
    algorithm = bucket.get("GetBucketEncryption.SSEAlgorithm")
    if algorithm in KMS_ALGORITHMS:
        return PASS
    if algorithm == "AES256" and bucket.tags.get(ELB_LOG_PURPOSE[0]) == ELB_LOG_PURPOSE[1] \
            and STACK_TAG in bucket.tags:
        return Verdict("skipped", f"GetBucketEncryption.SSEAlgorithm is {algorithm}", _elb_log_reason())
    return fail(f"GetBucketEncryption.SSEAlgorithm is {algorithm or 'not set'}, not aws:kms")


def _bucket_versioning(bucket: LiveResource) -> Verdict:
    status = bucket.get("GetBucketVersioning.Status")
    return PASS if status == "Enabled" else fail(f"GetBucketVersioning.Status is {status or 'not set (never enabled)'}")


def _bucket_public_access(bucket: LiveResource) -> Verdict:
    off = [flag for flag in PUBLIC_ACCESS_BLOCKS if bucket.get(f"GetPublicAccessBlock.{flag}") is not True]
    return PASS if not off else fail("GetPublicAccessBlock: " + ", ".join(off) + " not true")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def denies_insecure_transport(policy: dict[str, Any] | None, bucket_arn: str) -> bool:
    """A statement denies everyone every S3 action on the bucket and its objects when aws:SecureTransport is false."""
    for st in _as_list((policy or {}).get("Statement") or []):
        if not isinstance(st, dict) or st.get("Effect") != "Deny":
            continue
        principal = st.get("Principal")
        if principal != "*" and not (isinstance(principal, dict) and "*" in _as_list(principal.get("AWS"))):
            continue
        if not {"s3:*", "*"} & set(_as_list(st.get("Action"))):
            continue
        resources = set(_as_list(st.get("Resource")))
        if "*" not in resources and not {bucket_arn, f"{bucket_arn}/*"} <= resources:
            continue
        secure = (st.get("Condition") or {}).get("Bool", {}).get("aws:SecureTransport")
        if [str(v).lower() for v in _as_list(secure)] == ["false"]:
            return True
    return False


def _bucket_tls(bucket: LiveResource) -> Verdict:
    policy = bucket.get("GetBucketPolicy.Policy")
    if policy is None:
        return fail("GetBucketPolicy: the bucket has no policy")
    return PASS if denies_insecure_transport(policy, bucket.arn) else fail(
        "GetBucketPolicy.Policy has no statement denying s3:* to everyone when aws:SecureTransport is false")


# --- network and edge ---------------------------------------------------------------------------------------------

def _vpc_flow_logs(vpc: LiveResource) -> Verdict:
    logs = vpc.facts["DescribeFlowLogs"]
    if any(f["DescribeFlowLogs.TrafficType"] == "ALL" and f["DescribeFlowLogs.FlowLogStatus"] == "ACTIVE"
           for f in logs):
        return PASS
    if not logs:
        return fail("DescribeFlowLogs: no flow log on this VPC")
    seen = ", ".join(f"{f['DescribeFlowLogs.TrafficType']} ({f['DescribeFlowLogs.FlowLogStatus']})" for f in logs)
    return fail(f"DescribeFlowLogs: no active flow log of ALL traffic (found {seen})")


def _lb_waf(lb: LiveResource) -> Verdict | None:
    if lb.facts["DescribeLoadBalancers.Type"] != "application" or \
            lb.facts["DescribeLoadBalancers.Scheme"] != "internet-facing":
        return None
    return PASS if lb.get("GetWebACLForResource.WebACL.ARN") else fail(
        "GetWebACLForResource: no web ACL is associated with this internet-facing load balancer")


def _listener_tls(listener: LiveResource) -> Verdict | None:
    protocol = listener.facts["DescribeListeners.Protocol"]
    if protocol in ENCRYPTED_PROTOCOLS:
        policy = listener.facts["DescribeListeners.SslPolicy"] or ""
        return PASS if policy.startswith(TLS13_ONLY_PREFIX) else fail(
            f"DescribeListeners.SslPolicy is {policy or 'not set'}, not a {TLS13_ONLY_PREFIX}* policy")
    if protocol == "HTTP":  # its SslPolicy, which some endpoints report for HTTP listeners too, means nothing here
        actions = listener.facts["DescribeListeners.DefaultActions"] or []
        redirects = bool(actions) and all(
            a.get("Type") == "redirect" and (a.get("RedirectConfig") or {}).get("Protocol") == "HTTPS" for a in actions)
        return PASS if redirects else fail("DescribeListeners: an HTTP listener whose default action is not only a "
                                           "redirect to HTTPS serves plain HTTP")
    return None  # TCP/UDP: bytes pass through, no TLS terminates here


# --- operations ---------------------------------------------------------------------------------------------------

def _trail(trails: list[LiveResource], session: LiveSession) -> list[Finding]:
    def gaps(trail: LiveResource) -> list[str]:
        out = []
        if trail.facts["DescribeTrails.IsMultiRegionTrail"] is not True:
            out.append("DescribeTrails.IsMultiRegionTrail is false")
        if trail.facts["DescribeTrails.LogFileValidationEnabled"] is not True:
            out.append("DescribeTrails.LogFileValidationEnabled is false")
        if trail.get("GetTrailStatus.IsLogging") is not True:
            out.append("GetTrailStatus.IsLogging is false")
        return out

    for trail in trails:
        if not gaps(trail):
            return [Finding(trail.arn, trail.address, PASS)]
    if not trails:
        return [Finding(session.arn("cloudtrail", "trail/*"), f"{TERRAFORM_TYPE['trail']}.*",
                        fail(f"DescribeTrails: no trail records {session.region}"))]
    return [Finding(t.arn, t.address, fail("; ".join(gaps(t)))) for t in trails]


def _guardduty(detectors: list[LiveResource], session: LiveSession) -> list[Finding]:
    for detector in detectors:
        if detector.facts["GetDetector.Status"] == "ENABLED":
            return [Finding(detector.arn, detector.address, PASS)]
    if not detectors:
        return [Finding(session.arn("guardduty", "detector/*"), f"{TERRAFORM_TYPE['guardduty-detector']}.*",
                        fail(f"ListDetectors: no GuardDuty detector in {session.region}"))]
    return [Finding(d.arn, d.address, fail(f"GetDetector.Status is {d.facts['GetDetector.Status']}"))
            for d in detectors]


# --- registry and cluster -----------------------------------------------------------------------------------------

def _repo_immutable(repo: LiveResource) -> Verdict:
    mutability = repo.facts["DescribeRepositories.imageTagMutability"]
    return PASS if mutability == "IMMUTABLE" else fail(f"DescribeRepositories.imageTagMutability is {mutability}")


def scanned_on_push(repo: LiveResource) -> bool:
    """Enhanced registry scanning decides alone: a rule scanning on push or continuously must match the repository.
    Basic scanning: a registry scan-on-push rule matching it, or the repository's own scanOnPush."""
    scan_type = repo.facts["GetRegistryScanningConfiguration.scanType"]
    frequencies = ("SCAN_ON_PUSH", "CONTINUOUS_SCAN") if scan_type == "ENHANCED" else ("SCAN_ON_PUSH",)
    for rule in repo.facts["GetRegistryScanningConfiguration.rules"] or []:
        if rule.get("scanFrequency") in frequencies and any(
                fnmatch.fnmatchcase(repo.name, f.get("filter", "")) for f in rule.get("repositoryFilters") or []):
            return True
    return scan_type != "ENHANCED" and repo.facts["DescribeRepositories.imageScanningConfiguration.scanOnPush"] is True


def _repo_scanning(repo: LiveResource) -> Verdict:
    if scanned_on_push(repo):
        return PASS
    return fail(f"GetRegistryScanningConfiguration ({repo.facts['GetRegistryScanningConfiguration.scanType']}) has no "
                "rule scanning this repository on push, and "
                + ("enhanced scanning overrides the repository's scanOnPush"
                   if repo.facts["GetRegistryScanningConfiguration.scanType"] == "ENHANCED"
                   else "DescribeRepositories.imageScanningConfiguration.scanOnPush is false"))


def _cluster_endpoint(cluster: LiveResource) -> Verdict:
    if cluster.facts["DescribeCluster.resourcesVpcConfig.endpointPublicAccess"] is not True:
        return PASS
    cidrs = cluster.facts["DescribeCluster.resourcesVpcConfig.publicAccessCidrs"] or ["0.0.0.0/0"]
    open_to = [c for c in cidrs if c in OPEN_TO_ALL]
    return PASS if not open_to else fail(
        f"DescribeCluster.resourcesVpcConfig: public endpoint open to {', '.join(open_to)}")


def _cluster_logs(cluster: LiveResource) -> Verdict:
    missing = [t for t in CONTROL_PLANE_LOGS if t not in cluster.facts["DescribeCluster.logging.clusterLogging.types"]]
    return PASS if not missing else fail("DescribeCluster.logging: not logged: " + ", ".join(missing))


def _meta(id: str, title: str, severity: str, area: str, rationale: str, remediation: str,
          kinds: tuple[str, ...]) -> CheckMeta:
    return CheckMeta(id=id, title=title, severity=severity, area=area, rationale=rationale, remediation=remediation,
                     resources=tuple(TERRAFORM_TYPE[k] for k in kinds))


CONTROLS: tuple[LiveControl, ...] = (
    LiveControl(_meta(
        "HS_LIVE_KMS_001", "Customer managed KMS keys rotate automatically", "MEDIUM", "data",
        "A key that never rotates keeps protecting new data with material that may have leaked long ago.",
        "aws kms enable-key-rotation --key-id KEY (hardstack's CustomerManagedKey rotates yearly).",
        ("kms-key",)), "kms-key", ("CKV_AWS_7",), each(_key_rotation)),
    LiveControl(_meta(
        "HS_LIVE_DATA_001", "Buckets encrypt by default with a KMS key", "HIGH", "data",
        "With a KMS key, reading an object needs kms:Decrypt on the key too, and every use is logged; S3-managed "
        "keys give neither.",
        "Set the bucket's default encryption to aws:kms with a customer managed key (EncryptedBucket does).",
        ("s3-bucket",)), "s3-bucket", ("CKV_AWS_145", "HS_DATA_002"), each(_bucket_kms)),
    LiveControl(_meta(
        "HS_LIVE_DATA_002", "Buckets are versioned", "MEDIUM", "data",
        "Without versioning an overwritten or deleted dataset or model is gone, and a poisoning leaves no prior "
        "version to compare with or roll back to.",
        "aws s3api put-bucket-versioning --versioning-configuration Status=Enabled.",
        ("s3-bucket",)), "s3-bucket", ("CKV_AWS_21",), each(_bucket_versioning)),
    LiveControl(_meta(
        "HS_LIVE_DATA_003", "Buckets block all four kinds of public access", "HIGH", "data",
        "One public ACL or policy statement publishes training data or model weights to the internet. The bucket's "
        "own block is required: an account-wide block is one call away from being switched off for every bucket.",
        "Turn on BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy and RestrictPublicBuckets on the bucket.",
        ("s3-bucket",)), "s3-bucket", ("CKV_AWS_53", "CKV_AWS_54", "CKV_AWS_55", "CKV_AWS_56"),
        each(_bucket_public_access)),
    LiveControl(_meta(
        "HS_LIVE_DATA_004", "Bucket policies deny requests without TLS", "MEDIUM", "data",
        "Without a deny on aws:SecureTransport false, a client can read and write objects over plain HTTP.",
        "Add a Deny statement for Principal *, Action s3:*, on the bucket and its objects, with Condition "
        "Bool aws:SecureTransport false (EncryptedBucket's policy has it).",
        ("s3-bucket",)), "s3-bucket", ("HS_DATA_003",), each(_bucket_tls)),
    LiveControl(_meta(
        "HS_LIVE_NET_001", "Every VPC has an active flow log of all traffic", "MEDIUM", "infrastructure",
        "Without flow logs, exfiltration and lateral movement between workloads leave no network record.",
        "Create a flow log with TrafficType ALL on the VPC (SegmentedVpc does).",
        ("vpc",)), "vpc", ("CKV2_AWS_11", "HS_NET_002"), each(_vpc_flow_logs)),
    LiveControl(_meta(
        "HS_LIVE_EDGE_001", "Internet-facing application load balancers have a WAF web ACL", "HIGH",
        "infrastructure",
        "An inference endpoint on the internet without a WAF takes every flood, scraper and injection payload "
        "straight to the model.",
        "Associate a regional WAF web ACL with the load balancer (WafEndpoint does).",
        ("load-balancer",)), "load-balancer", ("HS_EDGE_001", "CKV2_AWS_28"), each(_lb_waf)),
    LiveControl(_meta(
        "HS_LIVE_EDGE_002", "Listeners allow TLS 1.3 only, and plain HTTP only to redirect to HTTPS", "HIGH",
        "infrastructure",
        "Prompts, completions and bearer tokens cross these listeners; TLS 1.2 policies keep weaker suites and "
        "downgrade paths, and plain HTTP exposes everything.",
        f"Use a {TLS13_ONLY_PREFIX}* policy on HTTPS and TLS listeners and make HTTP listeners only redirect "
        "to HTTPS.",
        ("listener",)), "listener", ("HS_EDGE_002", "CKV_AWS_103", "CKV_AWS_2"), each(_listener_tls)),
    LiveControl(_meta(
        "HS_LIVE_OPS_001", "A multi-region trail with log file validation is logging", "HIGH", "operations",
        "Without it, who read a training set or replaced a model is not recorded, and a recorded log can be "
        "altered unnoticed.",
        "Create a multi-region trail with log file validation and start logging (AuditTrail does).",
        ("trail",)), "trail", ("CKV_AWS_67", "CKV_AWS_36"), _trail),
    LiveControl(_meta(
        "HS_LIVE_OPS_002", "GuardDuty is enabled in the region", "HIGH", "operations",
        "Without GuardDuty, credential misuse, crypto-mining on GPU nodes and unusual data access raise no finding.",
        "Create (or re-enable) the region's GuardDuty detector (ThreatDetection does).",
        ("guardduty-detector",)), "guardduty-detector", ("CKV2_AWS_3",), _guardduty),
    LiveControl(_meta(
        "HS_LIVE_SUPPLY_001", "ECR repositories have immutable tags", "MEDIUM", "supply chain",
        "A mutable tag can be pointed at a different image after review: what runs is not what was approved.",
        "aws ecr put-image-tag-mutability --image-tag-mutability IMMUTABLE (SignedRegistry does).",
        ("ecr-repository",)), "ecr-repository", ("CKV_AWS_51",), each(_repo_immutable)),
    LiveControl(_meta(
        "HS_LIVE_SUPPLY_002", "ECR repositories are scanned on push", "MEDIUM", "supply chain",
        "An image nobody scanned may ship known-vulnerable libraries into the serving path.",
        "Configure registry scanning (enhanced, a rule matching the repository) or scan on push.",
        ("ecr-repository",)), "ecr-repository", ("CKV_AWS_163",), each(_repo_scanning)),
    LiveControl(_meta(
        "HS_LIVE_EKS_001", "EKS API endpoints are not open to the internet", "HIGH", "infrastructure",
        "A public cluster endpoint open to 0.0.0.0/0 lets anyone with a leaked credential, or an exploit, reach "
        "the Kubernetes API.",
        "Turn off public endpoint access, or restrict publicAccessCidrs (EksCluster is private).",
        ("eks-cluster",)), "eks-cluster", ("CKV_AWS_38", "CKV_AWS_39"), each(_cluster_endpoint)),
    LiveControl(_meta(
        "HS_LIVE_EKS_002", "EKS clusters log every control-plane log type", "MEDIUM", "infrastructure",
        "Without the API, audit and authenticator logs, who did what in the cluster cannot be reconstructed.",
        "Enable api, audit, authenticator, controllerManager and scheduler logging.",
        ("eks-cluster",)), "eks-cluster", ("CKV_AWS_37",), each(_cluster_logs)),
)
"""Account mode's controls, in report order."""

DRIFT = _meta(
    "HS_LIVE_DRIFT_001", "A resource the stack declares matches its declaration", "HIGH", "operations",
    "A setting changed outside the stack (console, CLI, another tool) silently undoes what the gate verified.",
    "Run `pulumi up` (or `hardstack up`) to restore the declared setting, or declare the change in the blueprint "
    "and let the gate judge it.",
    tuple(TERRAFORM_TYPE))
MISSING = _meta(
    "HS_LIVE_DRIFT_002", "A resource the stack declares exists in the account", "HIGH", "operations",
    "A declared control that was deleted (or never deployed) protects nothing, while the stack's report says it "
    "does.",
    "Run `pulumi up` (or `hardstack up`) for the stack; if the resource was removed on purpose, remove it from the "
    "blueprint.",
    tuple(TERRAFORM_TYPE))

METAS: dict[str, CheckMeta] = {c.meta.id: c.meta for c in CONTROLS} | {DRIFT.id: DRIFT, MISSING.id: MISSING}
"""Every ID an audit reports, with its metadata."""
