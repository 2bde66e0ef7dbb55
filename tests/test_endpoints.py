"""WAF-fronted inference endpoints: the load balancer, its listeners and certificate, the web ACL and its logs, the
access log bucket, the load balancer controller and what binds the tenant's Service to the target group.

One stack is synthesized (and gated) once for the module: the shipped `llm-inference` plus two internet-facing
endpoints, so that every kind of authentication and every caller rule is present:

* `chat` (shipped): internal, mutual TLS, certificate issued in a Route 53 zone, callers: the VPC;
* `people`: internet-facing, OIDC sign-in, an existing certificate, two allowed CIDRs, a country allowlist and
  limits of its own;
* `machines`: internet-facing, JWT, callers: anywhere.

Every test asserts the property on the synthesized inventory and what it is wired from (THIS ALB, THIS key), so
removing it from `modules/endpoint.py` or `modules/waf.py` makes a test here fail. What AWS itself would say is
asked of real things where they run here: the emitted web ACL rules, logging configuration, load balancer
attributes and listeners are validated against the current AWS API models (botocore's, vendored in
tests/fixtures/aws_models) and created in a moto server; the IAM policies are linted with parliament. Weakening the
shipped blueprint through Pulumi transforms fails the gate on the named check and resource.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from hardstack.blueprints.endpoints import TLS_POLICY, EndpointSpec
from hardstack.blueprints.loader import LoadedBlueprint, catalog, load
from hardstack.blueprints.network import Tier
from hardstack.modules import charts, waf
from hardstack.modules.base import DesignException
from hardstack.modules.charts import CONTROLLER_FEATURE_GATES
from hardstack.modules.endpoint import (
    ACCESS_LOG_DAYS,
    ACCESS_LOG_PREFIX,
    CONTROLLER_DESCRIBE_ACTIONS,
    CONTROLLER_SERVICE_ACCOUNT,
    CONTROLLER_TARGET_ACTIONS,
    ELB_LOG_ACCOUNTS,
    ELB_LOG_DELIVERY,
    HEALTH_CHECK_PATH,
    HSTS,
    MAX_NAME,
    NONCURRENT_LOG_DAYS,
    EndpointLogs,
    callers,
    physical_name,
    redirects_http,
)
from hardstack.policies.checks.hs_edge_002 import TLS13_ONLY_PREFIX
from hardstack.policies.gate import GateReport, run_gate
from hardstack.stacks.inventory import Inventory, Resource
from hardstack.stacks.mocks import ACCOUNT_ID, SECRET
from hardstack.stacks.targets import synth_loaded

from .gate_helpers import failed, gate, transform_of
from .helpers import policy, ref_attr
from .moto_server import moto_server

LB = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
TRUST_STORE = "aws:lb/trustStore:TrustStore"
SG = "aws:ec2/securityGroup:SecurityGroup"
SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SUBNET = "aws:ec2/subnet:Subnet"
CERT = "aws:acm/certificate:Certificate"
CERT_VALIDATION = "aws:acm/certificateValidation:CertificateValidation"
RECORD = "aws:route53/record:Record"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
WAF_LOGGING = "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration"
IP_SET = "aws:wafv2/ipSet:IpSet"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
LOG_POLICY = "aws:cloudwatch/logResourcePolicy:LogResourcePolicy"
BUCKET = "aws:s3/bucket:Bucket"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
POD_IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
TGB = "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"

ENDPOINTS = ("chat", "people", "machines")
MODELS = Path(__file__).parent / "fixtures" / "aws_models"
"""The WAFv2 and ELBv2 API models of botocore 1.43.67 (the ones in the locked botocore predate JA4 rate keys and
JWT validation); see tests/fixtures/aws_models/README.md."""

VARIANT_ENDPOINTS: list[dict[str, Any]] = [
    {"name": "people", "tenant": "serving", "service": "chat-ui", "port": 8443, "scheme": "internet-facing",
     "domain_name": "people.inference.example.com",
     "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/0f0e0d0c-1111-2222-3333-444455556666",
     "allowed_cidrs": ["203.0.113.0/24", "198.51.100.0/25"],
     "auth": {"kind": "oidc", "issuer": "https://idp.example.com",
              "authorization_endpoint": "https://idp.example.com/authorize",
              "token_endpoint": "https://idp.example.com/token",
              "user_info_endpoint": "https://idp.example.com/userinfo",
              "client_id": "inference-people", "session_seconds": 1800},
     "waf": {"requests_per_ip": 100, "requests_per_client": 250, "max_body_kb": 4, "allow_countries": ["FR", "DE"],
             "log_retention_days": 731}},
    {"name": "machines", "tenant": "serving", "service": "inference-server", "port": 8000,
     "scheme": "internet-facing", "domain_name": "machines.inference.example.com", "zone_id": "Z0EXAMPLE0ZONE0ID",
     "auth": {"kind": "jwt", "issuer": "https://idp.example.com",
              "jwks_endpoint": "https://idp.example.com/.well-known/jwks.json", "audience": "inference-machines"}},
]


@dataclass
class Stack:
    loaded: LoadedBlueprint
    inv: Inventory
    report: GateReport

    def spec(self, endpoint: str) -> EndpointSpec:
        return next(e for e in self.loaded.blueprint.endpoints if e.name == endpoint)

    def named(self, name: str, type_token: str | None = None) -> Resource:
        return self.inv.named(name, type_token)

    def of(self, endpoint: str, suffix: str, type_token: str | None = None) -> Resource:
        return self.inv.named(f"endpoint-{endpoint}-{suffix}", type_token)

    def maybe(self, name: str) -> Resource | None:
        found = [r for r in self.inv if r.name == name]
        return found[0] if found else None


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Stack:
    data = yaml.safe_load(catalog()["llm-inference"].read_text())
    data["name"] = "endpoint-variants"
    data["endpoints"] += VARIANT_ENDPOINTS
    path = tmp_path_factory.mktemp("endpoints") / "endpoint-variants.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    loaded = load(path)
    inv = synth_loaded(loaded)
    # judged on a copy: the gate's bridge writes Terraform references into list inputs it converts
    report = run_gate(copy.deepcopy(inv), target=str(path), exceptions=loaded.blueprint.exceptions,
                      locate=loaded.locate)
    return Stack(loaded, inv, report)


def tier_subnets(s: Stack, tier: Tier) -> list[Resource]:
    return sorted((r for r in s.inv.of_type(SUBNET) if r.inputs["tags"].get("hardstack:tier") == tier.value),
                  key=lambda r: r.name)


def alb_tier(spec: EndpointSpec) -> Tier:
    return Tier.public if spec.scheme == "internet-facing" else Tier.ingress


# --- the load balancer and its listeners -------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_https_listener_of_this_alb_speaks_tls13_only(stack: Stack, endpoint: str) -> None:
    alb, listener = stack.of(endpoint, "alb", LB), stack.of(endpoint, "https", LISTENER)
    assert TLS_POLICY == "ELBSecurityPolicy-TLS13-1-3-2021-06"
    assert (listener.inputs["protocol"], listener.inputs["port"], listener.inputs["sslPolicy"]) == \
        ("HTTPS", 443, TLS_POLICY)
    assert ref_attr(listener, "loadBalancerArn") == (alb.urn, "arn")
    assert listener.inputs["routingHttpResponseStrictTransportSecurityHeaderValue"] == HSTS
    assert listener.inputs["routingHttpResponseServerEnabled"] is False


@pytest.mark.parametrize("endpoint", ["chat", "people"])
def test_http_is_redirected_to_https_where_port_80_is_open(stack: Stack, endpoint: str) -> None:
    alb, http = stack.of(endpoint, "alb", LB), stack.of(endpoint, "http-redirect", LISTENER)
    assert (http.inputs["protocol"], http.inputs["port"]) == ("HTTP", 80)
    assert http.inputs["defaultActions"] == [
        {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}}]
    assert ref_attr(http, "loadBalancerArn") == (alb.urn, "arn")


def test_port_80_stays_closed_to_anywhere(stack: Stack) -> None:
    """Open to the internet, an HTTP redirect would let clients send their credentials in cleartext first."""
    spec = stack.spec("machines")
    assert callers(spec, "10.40.0.0/16") == ["0.0.0.0/0"] and not redirects_http(spec, "10.40.0.0/16")
    assert stack.maybe("endpoint-machines-http-redirect") is None
    assert {r["fromPort"] for r in stack.of("machines", "alb-sg", SG).inputs["ingress"]} == {443}
    http = [r for r in stack.inv.of_type(LISTENER) if r.inputs.get("protocol") == "HTTP"]
    assert {r.name for r in http} == {"endpoint-chat-http-redirect", "endpoint-people-http-redirect"}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_load_balancer_hardening(stack: Stack, endpoint: str) -> None:
    spec, alb = stack.spec(endpoint), stack.of(endpoint, "alb", LB)
    i = alb.inputs
    assert i["loadBalancerType"] == "application"
    assert i["internal"] is (spec.scheme == "internal")
    assert i["dropInvalidHeaderFields"] is True
    assert i["desyncMitigationMode"] == "strictest"
    assert i["enableDeletionProtection"] is True
    assert i["enableWafFailOpen"] is False
    subnets = tier_subnets(stack, alb_tier(spec))
    assert len(subnets) == 3 and len(i["subnets"]) == 3
    assert [ref_attr(alb, "subnets", n) for n in range(3)] == [(s.urn, "id") for s in subnets]
    assert ref_attr(alb, "securityGroups", 0) == (stack.of(endpoint, "alb-sg", SG).urn, "id")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_access_logs_go_to_the_endpoint_log_bucket(stack: Stack, endpoint: str) -> None:
    alb, bucket = stack.of(endpoint, "alb", LB), stack.named("endpoint-logs-bucket", BUCKET)
    logs = alb.inputs["accessLogs"]
    assert logs["enabled"] is True and logs["prefix"] == f"{ACCESS_LOG_PREFIX}/{endpoint}"
    assert [r.resource for r in alb.references if r.path == ("accessLogs", "bucket")] == [bucket.urn]
    allowed = statement(stack.named("endpoint-logs-policy"), "LoadBalancerAccessLogDelivery")["Resource"]
    written = f"{bucket.outputs['arn']}/{logs['prefix']}/AWSLogs/{ACCOUNT_ID}/elasticloadbalancing/us-east-1/x.log.gz"
    assert fnmatch.fnmatchcase(written, allowed)


def statement(resource: Resource, sid: str) -> dict[str, Any]:
    found = [s for s in policy(resource)["Statement"] if s.get("Sid") == sid]
    assert len(found) == 1, (resource.name, sid)
    return found[0]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_target_group_is_https_to_pod_addresses(stack: Stack, endpoint: str) -> None:
    spec, tg = stack.spec(endpoint), stack.of(endpoint, "tg", TARGET_GROUP)
    assert (tg.inputs["targetType"], tg.inputs["protocol"], tg.inputs["port"]) == ("ip", "HTTPS", spec.port)
    assert ref_attr(tg, "vpcId") == (stack.named("network-vpc").urn, "id")
    health = tg.inputs["healthCheck"]
    assert (health["protocol"], health["path"], health["matcher"]) == ("HTTPS", HEALTH_CHECK_PATH, "200")


AWS_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")
"""Load balancer, target group and trust store names: letters, digits and inner hyphens."""


@given(endpoint=st.from_regex(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$", fullmatch=True),
       stack=st.from_regex(r"^[a-z][a-z0-9-]{0,40}$", fullmatch=True), kind=st.sampled_from(["alb", "tg", "ts"]),
       port=st.integers(1, 65535))
def test_physical_names_fit_and_change_with_what_replaces_the_resource(endpoint: str, stack: str, kind: str,
                                                                       port: int) -> None:
    name = physical_name(stack, endpoint, kind, port)
    assert len(name) <= MAX_NAME and AWS_NAME.match(name) and not name.startswith("internal-")
    assert name.startswith(f"{kind}-")
    assert physical_name(stack, endpoint, kind, port) == name  # stable across runs
    assert physical_name(stack, endpoint, kind, port % 65535 + 1) != name  # a new port: a new target group
    assert physical_name(stack + "x", endpoint, kind, port) != name  # another stack: another name


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_load_balancer_and_target_group_names_fit(stack: Stack, endpoint: str) -> None:
    spec = stack.spec(endpoint)
    alb, tg = stack.of(endpoint, "alb", LB), stack.of(endpoint, "tg", TARGET_GROUP)
    assert alb.inputs["name"] == physical_name("endpoint-variants", endpoint, "alb", spec.scheme)
    assert tg.inputs["name"] == physical_name("endpoint-variants", endpoint, "tg", "HTTPS", spec.port)
    assert all(len(r.inputs["name"]) <= MAX_NAME for r in (alb, tg))


# --- certificates and names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["chat", "machines"])
def test_certificate_is_issued_in_the_zone_and_the_name_points_at_this_alb(stack: Stack, endpoint: str) -> None:
    spec = stack.spec(endpoint)
    cert, record = stack.of(endpoint, "certificate", CERT), stack.of(endpoint, "certificate-validation", RECORD)
    validated, alias = stack.of(endpoint, "certificate-validated", CERT_VALIDATION), stack.of(endpoint, "alias", RECORD)
    alb, listener = stack.of(endpoint, "alb", LB), stack.of(endpoint, "https", LISTENER)
    assert (cert.inputs["domainName"], cert.inputs["validationMethod"]) == (spec.domain_name, "DNS")
    assert "subjectAlternativeNames" not in cert.inputs
    assert cert.inputs["options"] == {"certificateTransparencyLoggingPreference": "ENABLED"}
    option = cert.outputs["domainValidationOptions"][0]
    assert (record.inputs["zoneId"], record.inputs["name"], record.inputs["records"]) == \
        (spec.zone_id, option["resourceRecordName"], [option["resourceRecordValue"]])
    assert ref_attr(record, "name") == (cert.urn, "domainValidationOptions.0.resourceRecordName")
    assert ref_attr(validated, "certificateArn") == (cert.urn, "arn")
    assert ref_attr(validated, "validationRecordFqdns", 0) == (record.urn, "fqdn")
    assert ref_attr(listener, "certificateArn") == (validated.urn, "certificateArn")  # only once validated
    assert (alias.inputs["zoneId"], alias.inputs["name"], alias.inputs["type"]) == (spec.zone_id, spec.domain_name, "A")
    assert ref_attr(alias, "aliases", 0, "name") == (alb.urn, "dnsName")
    assert ref_attr(alias, "aliases", 0, "zoneId") == (alb.urn, "zoneId")


def test_an_existing_certificate_is_used_as_given(stack: Stack) -> None:
    spec = stack.spec("people")
    assert stack.of("people", "https", LISTENER).inputs["certificateArn"] == spec.certificate_arn
    for suffix in ("certificate", "certificate-validation", "certificate-validated", "alias"):
        assert stack.maybe(f"endpoint-people-{suffix}") is None


# --- authentication -------------------------------------------------------------------------------------------------


def test_jwt_endpoint_validates_the_token_before_forwarding(stack: Stack) -> None:
    auth, listener = stack.spec("machines").auth, stack.of("machines", "https", LISTENER)
    jwt, forward = listener.inputs["defaultActions"]
    assert (jwt["type"], jwt["order"], forward["type"], forward["order"]) == ("jwt-validation", 1, "forward", 2)
    assert jwt["jwtValidation"] == {"issuer": auth.issuer, "jwksEndpoint": auth.jwks_endpoint,  # type: ignore[union-attr]
                                    "additionalClaims": [{"name": "aud", "format": "single-string",
                                                          "values": [auth.audience]}]}  # type: ignore[union-attr]
    assert ref_attr(listener, "defaultActions", 1, "targetGroupArn") == (stack.of("machines", "tg").urn, "arn")
    assert "mutualAuthentication" not in listener.inputs


def test_oidc_endpoint_signs_people_in_before_forwarding(stack: Stack) -> None:
    auth, listener = stack.spec("people").auth, stack.of("people", "https", LISTENER)
    oidc, forward = listener.inputs["defaultActions"]
    assert (oidc["type"], oidc["order"], forward["type"], forward["order"]) == ("authenticate-oidc", 1, "forward", 2)
    assert oidc["authenticateOidc"] == {
        "issuer": auth.issuer, "authorizationEndpoint": auth.authorization_endpoint,  # type: ignore[union-attr]
        "tokenEndpoint": auth.token_endpoint, "userInfoEndpoint": auth.user_info_endpoint,  # type: ignore[union-attr]
        "clientId": auth.client_id, "clientSecret": SECRET,  # type: ignore[union-attr]
        "scope": "openid", "sessionCookieName": waf.OIDC_SESSION_COOKIE, "sessionTimeout": 1800,
        "onUnauthenticatedRequest": "authenticate"}
    assert ref_attr(listener, "defaultActions", 1, "targetGroupArn") == (stack.of("people", "tg").urn, "arn")


def test_oidc_client_secret_is_the_endpoints_stack_secret(stack: Stack) -> None:
    assert stack.spec("people").client_secret_config == "oidcClientSecret-people"
    assert stack.spec("chat").client_secret_config is None


def test_mtls_endpoint_verifies_client_certificates_against_this_trust_store(stack: Stack) -> None:
    listener, store = stack.of("chat", "https", LISTENER), stack.of("chat", "trust-store", TRUST_STORE)
    assert [a["type"] for a in listener.inputs["defaultActions"]] == ["forward"]
    assert listener.inputs["mutualAuthentication"] == {
        "mode": "verify", "trustStoreArn": store.outputs["arn"], "ignoreClientCertificateExpiry": False}
    assert ref_attr(listener, "mutualAuthentication", "trustStoreArn") == (store.urn, "arn")
    assert (store.inputs["caCertificatesBundleS3Bucket"], store.inputs["caCertificatesBundleS3Key"]) == \
        ("example-pki", "inference/clients-ca.pem")


def test_every_listener_that_forwards_authenticates(stack: Stack) -> None:
    for listener in stack.inv.of_type(LISTENER):
        actions = listener.inputs["defaultActions"]
        if any(a["type"] == "forward" for a in actions):
            assert actions[0]["type"] in ("jwt-validation", "authenticate-oidc") or \
                listener.inputs.get("mutualAuthentication", {}).get("mode") == "verify", listener.name


# --- security groups and the Kubernetes side ------------------------------------------------------------------------


EXPECTED_CALLERS = {"chat": ["10.40.0.0/16"], "people": ["198.51.100.0/25", "203.0.113.0/24"],
                    "machines": ["0.0.0.0/0"]}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_alb_security_group_admits_only_the_callers_and_sends_only_to_the_service(stack: Stack,
                                                                                  endpoint: str) -> None:
    spec, sg = stack.spec(endpoint), stack.of(endpoint, "alb-sg", SG)
    serving = str(stack.loaded.blueprint.network.plan()[Tier.inference].block)
    ingress = sg.inputs["ingress"]
    assert {(r["protocol"], r["fromPort"], r["toPort"]) for r in ingress} == \
        {("tcp", 443, 443)} | ({("tcp", 80, 80)} if endpoint != "machines" else set())
    assert all(r["cidrBlocks"] == EXPECTED_CALLERS[endpoint] for r in ingress)
    to_service = {"protocol": "tcp", "fromPort": spec.port, "toPort": spec.port, "cidrBlocks": [serving]}
    to_idp = {"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}
    egress = [{k: v for k, v in r.items() if k != "description"} for r in sg.inputs["egress"]]
    assert egress == ([to_service] if spec.auth.kind == "mtls" else [to_service, to_idp])


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_nodes_admit_this_alb_on_the_service_port_only(stack: Stack, endpoint: str) -> None:
    spec, rule = stack.spec(endpoint), stack.of(endpoint, "alb-to-pods", SG_INGRESS)
    cluster = stack.named("cluster-eks")
    assert (rule.inputs["ipProtocol"], rule.inputs["fromPort"], rule.inputs["toPort"]) == ("tcp", spec.port, spec.port)
    assert "cidrIpv4" not in rule.inputs
    assert ref_attr(rule, "securityGroupId") == (cluster.urn, "vpcConfig.clusterSecurityGroupId")
    assert ref_attr(rule, "referencedSecurityGroupId") == (stack.of(endpoint, "alb-sg", SG).urn, "id")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_target_group_binding_binds_the_service_to_this_target_group(stack: Stack, endpoint: str) -> None:
    spec, tgb, tg = stack.spec(endpoint), stack.of(endpoint, "target-group-binding", TGB), stack.of(endpoint, "tg")
    assert tgb.inputs["metadata"]["namespace"] == spec.tenant
    assert tgb.inputs["spec"]["serviceRef"] == {"name": spec.service, "port": spec.port}
    assert (tgb.inputs["spec"]["targetType"], tgb.inputs["spec"]["targetGroupProtocol"]) == ("ip", "HTTPS")
    assert tgb.inputs["spec"]["targetGroupARN"] == tg.outputs["arn"]
    assert (tg.urn, "arn") in {(r.resource, r.attribute) for r in tgb.references if r.path == ("spec", "targetGroupARN")}
    address = f"TargetGroupBinding.{spec.tenant}.endpoint-{endpoint}"
    assert [(r.check_id, r.status) for r in stack.report.results if r.address == address] == [("HS_K8S_005", "passed")]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_network_policy_admits_only_the_alb_subnets_on_the_service_port(stack: Stack, endpoint: str) -> None:
    spec, netpol = stack.spec(endpoint), stack.of(endpoint, "allow-load-balancer", NETWORK_POLICY)
    alb = stack.of(endpoint, "alb", LB)
    alb_subnets = {r.resource for r in alb.references if r.path[0] == "subnets"}
    cidrs = sorted(s.inputs["cidrBlock"] for s in stack.inv.of_type(SUBNET) if s.urn in alb_subnets)
    assert netpol.inputs["metadata"]["namespace"] == spec.tenant
    body = netpol.inputs["spec"]
    assert body["podSelector"] == {} and body["policyTypes"] == ["Ingress"] and "egress" not in body
    [rule] = body["ingress"]
    assert sorted(p["ipBlock"]["cidr"] for p in rule["from"]) == cidrs and len(cidrs) == 3
    assert all(set(p) == {"ipBlock"} and "except" not in p["ipBlock"] for p in rule["from"])
    assert rule["ports"] == [{"protocol": "TCP", "port": spec.port}]


def test_tenant_namespace_stays_default_deny(stack: Stack) -> None:
    """The endpoint adds an allow rule; the tenant's own deny-all stays in place."""
    deny = stack.named("tenant-serving-default-deny", NETWORK_POLICY).inputs["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


# --- the web ACL ----------------------------------------------------------------------------------------------------


def rules_by_name(acl: Resource) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in acl.inputs["rules"]}


EXPECTED_KEYS = {
    "machines": {"header": {"name": "authorization", "textTransformations": [{"priority": 0, "type": "NONE"}]}},
    "people": {"cookie": {"name": "AWSELBAuthSessionCookie-0",
                          "textTransformations": [{"priority": 0, "type": "NONE"}]}},
    "chat": {"ja4Fingerprint": {"fallbackBehavior": "NO_MATCH"}},
}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_web_acl_rules_and_limits_follow_the_spec(stack: Stack, endpoint: str) -> None:
    spec, acl = stack.spec(endpoint), stack.of(endpoint, "web-acl", WEB_ACL)
    assert acl.inputs["scope"] == "REGIONAL" and acl.inputs["defaultAction"] == {"allow": {}}
    allowlists = ["ip-allowlist", "geo-allowlist"] if endpoint == "people" else []
    names = allowlists + ["rate-per-ip", "rate-per-client", "body-size", *waf.MANAGED_RULE_GROUPS]
    assert [r["name"] for r in acl.inputs["rules"]] == names
    assert [r["priority"] for r in acl.inputs["rules"]] == list(range(len(names)))
    rules = rules_by_name(acl)
    assert rules["rate-per-ip"]["statement"] == {"rateBasedStatement": {
        "limit": spec.waf.requests_per_ip, "aggregateKeyType": "IP", "evaluationWindowSec": 300}}
    assert rules["rate-per-client"]["statement"] == {"rateBasedStatement": {
        "limit": spec.waf.requests_per_client, "aggregateKeyType": "CUSTOM_KEYS", "evaluationWindowSec": 300,
        "customKeys": [EXPECTED_KEYS[endpoint]]}}
    assert rules["body-size"]["statement"] == {"sizeConstraintStatement": {
        "comparisonOperator": "GT", "size": spec.waf.max_body_kb * 1024,
        "fieldToMatch": {"body": {"oversizeHandling": "MATCH"}},
        "textTransformations": [{"priority": 0, "type": "NONE"}]}}
    for name in names:
        if name in waf.MANAGED_RULE_GROUPS:
            assert rules[name]["overrideAction"] == {"none": {}} and "action" not in rules[name]
            assert rules[name]["statement"] == {"managedRuleGroupStatement": {"vendorName": "AWS", "name": name}}
        else:
            assert rules[name]["action"] == {"block": {}}


def test_limits_differ_where_the_spec_does(stack: Stack) -> None:
    limits = {e: {r["name"]: r["statement"] for r in stack.of(e, "web-acl").inputs["rules"]} for e in ENDPOINTS}
    assert limits["people"]["rate-per-ip"]["rateBasedStatement"]["limit"] == 100
    assert limits["chat"]["rate-per-ip"]["rateBasedStatement"]["limit"] == 300
    assert limits["people"]["body-size"]["sizeConstraintStatement"]["size"] == 4096
    assert limits["machines"]["body-size"]["sizeConstraintStatement"]["size"] == 8192


def test_allowlists_of_an_internet_facing_endpoint(stack: Stack) -> None:
    rules, ip_set = rules_by_name(stack.of("people", "web-acl")), stack.of("people", "ip-allowlist", IP_SET)
    assert rules["geo-allowlist"]["statement"] == {
        "notStatement": {"statement": {"geoMatchStatement": {"countryCodes": ["DE", "FR"]}}}}
    assert rules["ip-allowlist"]["statement"] == {
        "notStatement": {"statement": {"ipSetReferenceStatement": {"arn": ip_set.outputs["arn"]}}}}
    assert ref_attr(stack.of("people", "web-acl"), "rules", 0, "statement", "notStatement", "statement",
                    "ipSetReferenceStatement", "arn") == (ip_set.urn, "arn")
    assert (ip_set.inputs["scope"], ip_set.inputs["ipAddressVersion"], ip_set.inputs["addresses"]) == \
        ("REGIONAL", "IPV4", EXPECTED_CALLERS["people"])
    assert stack.maybe("endpoint-machines-ip-allowlist") is None  # callers: anywhere
    assert stack.maybe("endpoint-chat-ip-allowlist") is None  # internal: the security group decides


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_web_acl_is_associated_with_this_alb(stack: Stack, endpoint: str) -> None:
    alb, acl = stack.of(endpoint, "alb", LB), stack.of(endpoint, "web-acl", WEB_ACL)
    [association] = [a for a in stack.inv.of_type(ASSOCIATION) if a.inputs["resourceArn"] == alb.outputs["arn"]]
    assert association.name == f"endpoint-{endpoint}-web-acl-association"
    assert ref_attr(association, "resourceArn") == (alb.urn, "arn")
    assert ref_attr(association, "webAclArn") == (acl.urn, "arn")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_waf_logs_go_to_a_log_group_encrypted_with_this_key_credentials_redacted(stack: Stack, endpoint: str) -> None:
    spec, acl = stack.spec(endpoint), stack.of(endpoint, "web-acl", WEB_ACL)
    logging, group = stack.of(endpoint, "waf-logging", WAF_LOGGING), stack.of(endpoint, "waf-logs", LOG_GROUP)
    assert ref_attr(logging, "resourceArn") == (acl.urn, "arn")
    assert ref_attr(logging, "logDestinationConfigs", 0) == (group.urn, "arn")
    assert logging.inputs["redactedFields"] == [{"singleHeader": {"name": "authorization"}},
                                                {"singleHeader": {"name": "cookie"}}]
    assert group.inputs["name"] == f"aws-waf-logs-endpoint-variants-endpoint-{endpoint}"
    assert group.inputs["retentionInDays"] == spec.waf.log_retention_days
    assert ref_attr(group, "kmsKeyId") == (stack.named("logs-key").urn, "arn")


def test_log_retention_comes_from_the_spec(stack: Stack) -> None:
    assert {e: stack.of(e, "waf-logs").inputs["retentionInDays"] for e in ENDPOINTS} == \
        {"chat": 365, "people": 731, "machines": 365}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_only_waf_log_delivery_for_this_account_writes_the_log_group(stack: Stack, endpoint: str) -> None:
    group, resource_policy = stack.of(endpoint, "waf-logs", LOG_GROUP), stack.of(endpoint, "waf-log-delivery", LOG_POLICY)
    [st] = json.loads(resource_policy.inputs["policyDocument"])["Statement"]
    assert st["Effect"] == "Allow" and st["Principal"] == {"Service": "delivery.logs.amazonaws.com"}
    assert sorted(st["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert st["Resource"] == f"{group.outputs['arn']}:log-stream:*"
    assert st["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID},
                               "ArnLike": {"aws:SourceArn": f"arn:aws:logs:us-east-1:{ACCOUNT_ID}:*"}}


def test_client_identity_keys_and_unknown_kinds() -> None:
    assert waf.client_identity_key("jwt")["header"]["name"] == "authorization"
    assert waf.client_identity_key("oidc")["cookie"]["name"] == f"{waf.OIDC_SESSION_COOKIE}-0"
    assert waf.client_identity_key("mtls") == {"ja4_fingerprint": {"fallback_behavior": "NO_MATCH"}}
    with pytest.raises(ValueError, match="allowed: oidc, jwt, mtls"):
        waf.client_identity_key("basic")  # type: ignore[arg-type]


# --- the access log bucket ------------------------------------------------------------------------------------------


def test_endpoint_log_bucket_is_hardened(stack: Stack) -> None:
    bucket = stack.named("endpoint-logs-bucket", BUCKET)

    def wired(name: str) -> Resource:
        child = stack.named(f"endpoint-logs-{name}")
        urn, attribute = ref_attr(child, "bucket")
        assert urn == bucket.urn and attribute in ("id", "bucket"), name  # the same value: the bucket's name
        return child

    assert wired("encryption").inputs["rules"] == [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]
    assert {k: v for k, v in wired("public-access-block").inputs.items() if k != "bucket"} == {
        "blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True, "restrictPublicBuckets": True}
    assert wired("ownership").inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    assert wired("versioning").inputs["versioningConfiguration"]["status"] == "Enabled"
    rules = {r["id"]: r for r in wired("lifecycle").inputs["rules"]}
    assert rules["expire-logs"]["expiration"] == {"days": ACCESS_LOG_DAYS}
    assert rules["expire-logs"]["noncurrentVersionExpiration"] == {"noncurrentDays": NONCURRENT_LOG_DAYS}
    assert "abortIncompleteMultipartUpload" in rules["abort-incomplete-uploads"]
    logging = wired("access-logging")
    assert ref_attr(logging, "targetBucket")[0] == stack.named("access-logs-bucket").urn
    assert wired("events").inputs["eventbridge"] is True
    assert bucket.inputs["forceDestroy"] is False


def test_endpoint_log_bucket_policy_lets_only_elb_log_delivery_write_under_its_prefix(stack: Stack) -> None:
    """In us-east-1 (opened before August 2022) load balancers deliver from ELB's account of the region."""
    bucket, doc = stack.named("endpoint-logs-bucket", BUCKET), policy(stack.named("endpoint-logs-policy"))
    arn = bucket.outputs["arn"]
    allows = [s for s in doc["Statement"] if s["Effect"] == "Allow"]
    assert allows == [{"Sid": "LoadBalancerAccessLogDelivery", "Effect": "Allow",
                       "Principal": {"AWS": f"arn:aws:iam::{ELB_LOG_ACCOUNTS['us-east-1']}:root"},
                       "Action": "s3:PutObject",
                       "Resource": f"{arn}/{ACCESS_LOG_PREFIX}/*/AWSLogs/{ACCOUNT_ID}/*"}]
    denies = {s["Sid"]: s for s in doc["Statement"] if s["Effect"] == "Deny"}
    assert denies["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert denies["DenyOutdatedTls"]["Condition"] == {"NumericLessThan": {"s3:TlsVersion": "1.2"}}
    assert denies["DenyUploadsWithOtherEncryption"]["Condition"]["StringNotEquals"] == \
        {"s3:x-amz-server-side-encryption": "AES256"}
    assert all(d["Principal"] == "*" for d in denies.values())


def test_sse_s3_is_a_design_exception_of_the_log_bucket_only(stack: Stack) -> None:
    """CKV_AWS_145 and HS_DATA_002 cannot pass on a bucket load balancers log to: the gate skips them by design
    on THIS component's bucket and SSE configuration, and nowhere else."""
    assert all(isinstance(d, DesignException) and d.reason for d in EndpointLogs.DESIGN_EXCEPTIONS)
    declared = {(d.check, d.resource_type) for d in EndpointLogs.DESIGN_EXCEPTIONS}
    bucket, sse = stack.named("endpoint-logs-bucket"), stack.named("endpoint-logs-encryption")
    assert declared == {("CKV_AWS_145", bucket.type), ("HS_DATA_002", sse.type)}
    by_design = {(r.check_id, r.resource) for r in stack.report.results if r.check_id in {c for c, _ in declared}
                 and r.status == "skipped" and (r.exception or {}).get("by_design")}
    assert by_design == {("CKV_AWS_145", bucket.urn), ("HS_DATA_002", sse.urn)}
    kms_buckets = [r for r in stack.report.results if r.check_id == "CKV_AWS_145" and r.resource != bucket.urn]
    assert kms_buckets and all(r.status == "passed" for r in kms_buckets)


# --- the load balancer controller -----------------------------------------------------------------------------------


def test_controller_release_binds_target_groups_only(stack: Stack) -> None:
    release = stack.named("lb-controller-release", HELM_RELEASE)
    chart = charts.LOAD_BALANCER_CONTROLLER
    i, v = release.inputs, release.inputs["values"]
    assert (i["chart"], i["version"], i["repositoryOpts"]["repo"], i["namespace"]) == \
        (chart.name, chart.version, chart.repository, chart.namespace)
    assert v["clusterName"] == stack.named("cluster-eks").inputs["name"]
    assert v["vpcId"] == stack.named("network-vpc").outputs["id"] and v["region"] == "us-east-1"
    assert v["replicaCount"] == 2 and v["podDisruptionBudget"] == {"maxUnavailable": 1}
    mirror = f"{ACCOUNT_ID}.dkr.ecr.us-east-1.amazonaws.com/endpoint-variants/platform"
    assert v["image"] == {"repository": f"{mirror}/eks/aws-load-balancer-controller", "tag": chart.app_version,
                          "pullPolicy": "IfNotPresent"}
    assert "eks/aws-load-balancer-controller" in chart.images
    assert v["nodeSelector"] == {"hardstack.io/system": "true"}
    assert (v["createIngressClassResource"], v["ingressClassParams"], v["disableIngressClassAnnotation"]) == \
        (False, {"create": False}, True)
    assert v["webhookConfig"] == {"disableIngressValidation": True} and v["enableServiceMutatorWebhook"] is False
    assert v["controllerConfig"]["featureGates"] == CONTROLLER_FEATURE_GATES
    assert CONTROLLER_FEATURE_GATES["EnableServiceController"] == "false"
    assert (v["enableWaf"], v["enableWafv2"], v["enableShield"], v["enableBackendSecurityGroup"]) == (False,) * 4
    assert v["serviceAccount"] == {"create": True, "name": CONTROLLER_SERVICE_ACCOUNT}
    assert v["securityContext"]["allowPrivilegeEscalation"] is False
    assert v["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def controller_policies(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    role = stack.named("lb-controller-role", ROLE)
    return {p.name: policy(p)["Statement"] for p in stack.inv.of_type(ROLE_POLICY) if ref_attr(p, "role")[0] == role.urn}


def test_controller_role_trusts_pod_identity_of_this_cluster_only(stack: Stack) -> None:
    role, cluster = stack.named("lb-controller-role", ROLE), stack.named("cluster-eks")
    [st] = policy(role, "assumeRolePolicy")["Statement"]
    assert st["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert st["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID},
                               "ArnEquals": {"aws:SourceArn": cluster.outputs["arn"]}}
    assert role.inputs["maxSessionDuration"] == 3600
    assert ref_attr(role, "permissionsBoundary") == (stack.named("boundary-policy").urn, "arn")
    association = stack.named("lb-controller-pod-identity", POD_IDENTITY)
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == \
        ("kube-system", CONTROLLER_SERVICE_ACCOUNT)
    assert ref_attr(association, "roleArn") == (role.urn, "arn")


def test_controller_may_only_describe_and_register_targets_in_the_stacks_target_groups(stack: Stack) -> None:
    policies = controller_policies(stack)
    assert set(policies) == {"lb-controller-describe"} | {f"lb-controller-targets-{e}" for e in ENDPOINTS}
    assert policies["lb-controller-describe"] == [{"Sid": "DescribeTargetGroupsAndVpc", "Effect": "Allow",
                                                   "Action": list(CONTROLLER_DESCRIBE_ACTIONS), "Resource": "*"}]
    for e in ENDPOINTS:
        assert policies[f"lb-controller-targets-{e}"] == [{
            "Sid": "BindTargetGroup", "Effect": "Allow", "Action": list(CONTROLLER_TARGET_ACTIONS),
            "Resource": stack.of(e, "tg").outputs["arn"]}]
    actions = {a for statements in policies.values() for s in statements for a in s["Action"]}
    assert not any("*" in a or a.startswith(("ec2:Authorize", "ec2:Revoke", "ec2:Create")) for a in actions)
    assert all(a.split(":")[1].startswith("Describe") for a in CONTROLLER_DESCRIBE_ACTIONS)


def test_parliament_finds_nothing_in_the_controller_policies(stack: Stack) -> None:
    from .test_identity import SEVERITIES, parliament_api

    parliament = parliament_api()
    for name, statements in controller_policies(stack).items():
        text = json.dumps({"Version": "2012-10-17", "Statement": statements})
        findings = [parliament.enhance_finding(f) for f in parliament.analyze_policy_string(text).findings]
        assert [(f.issue, f.detail) for f in findings
                if SEVERITIES.index(f.severity) >= SEVERITIES.index("MEDIUM")] == [], name


# --- the gate ---------------------------------------------------------------------------------------------------------


def test_gate_passes_every_kind_of_endpoint(stack: Stack) -> None:
    assert failed(stack.report) == set()
    passed = {(r.check_id, r.resource.rsplit("::", 1)[1]) for r in stack.report.results if r.status == "passed"}
    for e in ENDPOINTS:
        assert {("HS_EDGE_001", f"endpoint-{e}-alb"), ("CKV2_AWS_28", f"endpoint-{e}-alb"),
                ("CKV_AWS_131", f"endpoint-{e}-alb"), ("CKV_AWS_328", f"endpoint-{e}-alb"),
                ("CKV_AWS_150", f"endpoint-{e}-alb"), ("CKV_AWS_91", f"endpoint-{e}-alb"),
                ("HS_EDGE_002", f"endpoint-{e}-https"), ("HS_EDGE_005", f"endpoint-{e}-https"),
                ("HS_EDGE_003", f"endpoint-{e}-web-acl"), ("HS_EDGE_004", f"endpoint-{e}-web-acl"),
                ("CKV2_AWS_31", f"endpoint-{e}-web-acl"), ("CKV_AWS_192", f"endpoint-{e}-web-acl"),
                ("CKV_AWS_378", f"endpoint-{e}-tg"), ("CKV_AWS_260", f"endpoint-{e}-alb-sg")} <= passed, e


def test_tls13_only_policies_are_exactly_the_tls13_1_3_family() -> None:
    """HS_EDGE_002 recognises TLS 1.3-only policies by name; AWS's published policy table (as moto carries it)
    agrees: every policy of the family offers TLS 1.3 alone, and every other offers something older."""
    from moto.elbv2.ssl_policies import SSL_POLICIES

    assert TLS_POLICY in SSL_POLICIES
    for name, p in SSL_POLICIES.items():
        assert name.startswith(TLS13_ONLY_PREFIX) == (p["ssl_protocols"] == ["TLSv1.3"]), name


# --- what AWS's APIs accept (current API models, moto) ----------------------------------------------------------------


def aws_session() -> Any:
    """A botocore session that reads the vendored WAFv2 and ELBv2 API models before its own."""
    import botocore.session

    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, str(MODELS))
    return session


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def to_api(value: Any, shape: Any) -> Any:
    """Inventory inputs (Pulumi's names) as the AWS API names them, member by member of the API model: an input
    that is no member of the API's shape fails here."""
    if shape.type_name == "structure":
        assert isinstance(value, dict), (shape.name, value)
        members = {_norm(m): m for m in shape.members}
        out = {}
        for key, item in value.items():
            member = members.get(_norm(key)) or members.get(_norm(key) + "config")  # ELB: `redirect` → RedirectConfig
            assert member, f"{key!r} is not a member of {shape.name}: {sorted(shape.members)}"
            out[member] = to_api(item, shape.members[member])
        return out
    if shape.type_name == "list":
        return [to_api(item, shape.member) for item in value]
    return value


@dataclass
class Moto:
    session: Any
    url: str

    def client(self, service: str) -> Any:
        return self.session.create_client(service, region_name="us-east-1", endpoint_url=self.url,
                                          aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def moto_aws() -> Iterator[Moto]:
    """A moto server; clients validate every request against the current API models."""
    with moto_server() as url:
        yield Moto(aws_session(), url)


ELB_ATTRIBUTES: dict[str, Callable[[dict[str, Any]], list[tuple[str, str]]]] = {
    "dropInvalidHeaderFields": lambda i: [("routing.http.drop_invalid_header_fields.enabled",
                                           str(i["dropInvalidHeaderFields"]).lower())],
    "desyncMitigationMode": lambda i: [("routing.http.desync_mitigation_mode", i["desyncMitigationMode"])],
    "enableDeletionProtection": lambda i: [("deletion_protection.enabled", str(i["enableDeletionProtection"]).lower())],
    "enableWafFailOpen": lambda i: [("waf.fail_open.enabled", str(i["enableWafFailOpen"]).lower())],
    "enableHttp2": lambda i: [("routing.http2.enabled", str(i["enableHttp2"]).lower())],
    "xffHeaderProcessingMode": lambda i: [("routing.http.xff_header_processing.mode", i["xffHeaderProcessingMode"])],
    "accessLogs": lambda i: [("access_logs.s3.enabled", "true"), ("access_logs.s3.bucket", "endpoint-logs"),
                             ("access_logs.s3.prefix", i["accessLogs"]["prefix"])],
}
"""The load balancer's inputs as Elastic Load Balancing attributes (the Terraform provider's mapping)."""


@pytest.fixture(scope="module")
def in_moto(stack: Stack, moto_aws: Moto) -> dict[str, dict[str, str]]:
    """The VPC's ingress and public subnets, the access log bucket and every endpoint's ALB (with its security group
    and attributes as synthesized) and target group, created in moto. By endpoint: the ALB's and TG's ARNs."""
    ec2, elb, s3 = moto_aws.client("ec2"), moto_aws.client("elbv2"), moto_aws.client("s3")
    vpc = ec2.create_vpc(CidrBlock=stack.named("network-vpc").inputs["cidrBlock"])["Vpc"]["VpcId"]
    subnets = {}
    for tier in (Tier.ingress, Tier.public):
        for s in tier_subnets(stack, tier):
            az = f"us-east-1{'abc'[int(s.name[-1]) - 1]}"
            subnets[s.urn] = ec2.create_subnet(VpcId=vpc, CidrBlock=s.inputs["cidrBlock"],
                                               AvailabilityZone=az)["Subnet"]["SubnetId"]
    s3.create_bucket(Bucket="endpoint-logs")
    s3.put_bucket_policy(Bucket="endpoint-logs", Policy=stack.named("endpoint-logs-policy").inputs["policy"])
    created = {}
    for e in ENDPOINTS:
        alb, sg, tg = stack.of(e, "alb", LB), stack.of(e, "alb-sg", SG), stack.of(e, "tg", TARGET_GROUP)
        group = ec2.create_security_group(GroupName=sg.name, Description=sg.inputs["description"],
                                          VpcId=vpc)["GroupId"]
        for direction, call in (("ingress", ec2.authorize_security_group_ingress),
                                ("egress", ec2.authorize_security_group_egress)):
            call(GroupId=group, IpPermissions=[{
                "IpProtocol": r["protocol"], "FromPort": r["fromPort"], "ToPort": r["toPort"],
                "IpRanges": [{"CidrIp": c, "Description": r["description"]} for c in r["cidrBlocks"]]}
                for r in sg.inputs[direction]])
        arn = elb.create_load_balancer(
            Name=alb.outputs["name"], Type="application", Scheme="internal" if alb.inputs["internal"]
            else "internet-facing", IpAddressType=alb.inputs["ipAddressType"], SecurityGroups=[group],
            Subnets=[subnets[r.resource] for r in alb.references if r.path[0] == "subnets"],
        )["LoadBalancers"][0]["LoadBalancerArn"]
        attributes = [a for key, to in ELB_ATTRIBUTES.items() for a in to(alb.inputs)]
        assert set(ELB_ATTRIBUTES) <= set(alb.inputs)
        elb.modify_load_balancer_attributes(LoadBalancerArn=arn,
                                            Attributes=[{"Key": k, "Value": v} for k, v in attributes])
        health = tg.inputs["healthCheck"]
        target_group = elb.create_target_group(
            Name=tg.outputs["name"], TargetType=tg.inputs["targetType"], Protocol=tg.inputs["protocol"],
            ProtocolVersion=tg.inputs["protocolVersion"], Port=tg.inputs["port"], VpcId=vpc,
            HealthCheckProtocol=health["protocol"], HealthCheckPath=health["path"],
            HealthCheckPort=health["port"], Matcher={"HttpCode": health["matcher"]},
        )["TargetGroups"][0]["TargetGroupArn"]
        certificate = moto_aws.client("acm").request_certificate(
            DomainName=stack.spec(e).domain_name, ValidationMethod="DNS")["CertificateArn"]
        created[e] = {"alb": arn, "tg": target_group, "certificate": certificate}
    return created


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_elbv2_accepts_the_load_balancer_as_synthesized(stack: Stack, moto_aws: Moto,
                                                        in_moto: dict[str, dict[str, str]], endpoint: str) -> None:
    elb = moto_aws.client("elbv2")
    attributes = {a["Key"]: a["Value"] for a in elb.describe_load_balancer_attributes(
        LoadBalancerArn=in_moto[endpoint]["alb"])["Attributes"]}
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attributes["routing.http.desync_mitigation_mode"] == "strictest"
    assert attributes["deletion_protection.enabled"] == "true"
    assert attributes["access_logs.s3.prefix"] == f"{ACCESS_LOG_PREFIX}/{endpoint}"
    [policy_] = elb.describe_ssl_policies(Names=[stack.of(endpoint, "https").inputs["sslPolicy"]])["SslPolicies"]
    assert policy_["SslProtocols"] == ["TLSv1.3"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_listeners_as_synthesized_are_valid_elbv2_requests(stack: Stack, moto_aws: Moto,
                                                           in_moto: dict[str, dict[str, str]], endpoint: str) -> None:
    """Every listener, with its JWT validation, OIDC and mutual TLS settings, is a valid CreateListener request of
    the current ELBv2 API. moto creates those whose actions it knows (it has no JWT validation or mutual TLS) and
    keeps their TLS policy and authentication."""
    from botocore.validate import validate_parameters

    elb = moto_aws.client("elbv2")
    shape = elb.meta.service_model.operation_model("CreateListener").input_shape
    tg = stack.of(endpoint, "tg").outputs["arn"]
    for listener in [r for r in stack.inv.of_type(LISTENER) if r.name.startswith(f"endpoint-{endpoint}-")]:
        i = listener.inputs
        actions = [{**a, "targetGroupArn": in_moto[endpoint]["tg"]} if a.get("targetGroupArn") == tg else a
                   for a in i["defaultActions"]]
        request = {"LoadBalancerArn": in_moto[endpoint]["alb"], "Protocol": i["protocol"], "Port": i["port"],
                   "DefaultActions": to_api(actions, shape.members["DefaultActions"])}
        if i["protocol"] == "HTTPS":
            request.update(SslPolicy=i["sslPolicy"], Certificates=[{"CertificateArn": in_moto[endpoint]["certificate"]}])
        if "mutualAuthentication" in i:
            request["MutualAuthentication"] = to_api(i["mutualAuthentication"], shape.members["MutualAuthentication"])
        validate_parameters(request, shape)  # raises on any member, type or requirement the API does not have
        if "MutualAuthentication" in request or request["DefaultActions"][0]["Type"] == "jwt-validation":
            continue
        made = elb.create_listener(**request)["Listeners"][0]
        if i["protocol"] == "HTTPS":  # (moto reports a default policy on HTTP listeners too)
            assert made["SslPolicy"] == TLS_POLICY
        assert [a["Type"] for a in made["DefaultActions"]] == [a["Type"] for a in request["DefaultActions"]]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_wafv2_accepts_the_web_acl_association_and_logging_as_synthesized(
        stack: Stack, moto_aws: Moto, in_moto: dict[str, dict[str, str]], endpoint: str) -> None:
    wafv2, logs = moto_aws.client("wafv2"), moto_aws.client("logs")
    acl = stack.of(endpoint, "web-acl", WEB_ACL)
    rules = json.loads(json.dumps(acl.inputs["rules"]))
    ip_set = stack.maybe(f"endpoint-{endpoint}-ip-allowlist")
    if ip_set is not None:
        made = wafv2.create_ip_set(Name=ip_set.outputs["name"], Scope=ip_set.inputs["scope"],
                                   IPAddressVersion=ip_set.inputs["ipAddressVersion"],
                                   Addresses=ip_set.inputs["addresses"])["Summary"]["ARN"]
        rules[0]["statement"]["notStatement"]["statement"]["ipSetReferenceStatement"]["arn"] = made
    shape = wafv2.meta.service_model.operation_model("CreateWebACL").input_shape
    api_rules = to_api(rules, shape.members["Rules"])
    summary = wafv2.create_web_acl(
        Name=acl.outputs["name"], Scope=acl.inputs["scope"], DefaultAction=to_api(acl.inputs["defaultAction"],
                                                                                shape.members["DefaultAction"]),
        VisibilityConfig=to_api(acl.inputs["visibilityConfig"], shape.members["VisibilityConfig"]), Rules=api_rules,
    )["Summary"]
    stored = wafv2.get_web_acl(Name=summary["Name"], Scope="REGIONAL", Id=summary["Id"])["WebACL"]
    assert stored["Rules"] == api_rules
    if endpoint == "chat":
        [key] = next(r for r in api_rules if r["Name"] == "rate-per-client")["Statement"]["RateBasedStatement"][
            "CustomKeys"]
        assert key == {"JA4Fingerprint": {"FallbackBehavior": "NO_MATCH"}}

    wafv2.associate_web_acl(WebACLArn=summary["ARN"], ResourceArn=in_moto[endpoint]["alb"])
    assert wafv2.get_web_acl_for_resource(ResourceArn=in_moto[endpoint]["alb"])["WebACL"]["ARN"] == summary["ARN"]

    group = stack.of(endpoint, "waf-logs", LOG_GROUP)
    logs.create_log_group(logGroupName=group.inputs["name"])
    arn = logs.describe_log_groups(logGroupNamePrefix=group.inputs["name"])["logGroups"][0]["arn"].removesuffix(":*")
    logging = stack.of(endpoint, "waf-logging", WAF_LOGGING)
    log_shape = wafv2.meta.service_model.shape_for("LoggingConfiguration")
    config = {"ResourceArn": summary["ARN"], "LogDestinationConfigs": [arn],
              "RedactedFields": to_api(logging.inputs["redactedFields"], log_shape.members["RedactedFields"])}
    wafv2.put_logging_configuration(LoggingConfiguration=config)
    stored_logging = wafv2.get_logging_configuration(ResourceArn=summary["ARN"])["LoggingConfiguration"]
    assert stored_logging["RedactedFields"] == [{"SingleHeader": {"Name": "authorization"}},
                                                {"SingleHeader": {"Name": "cookie"}}]


# --- weakening the shipped blueprint fails the gate -------------------------------------------------------------------


def _set(**values: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda props: {**props, **values}


def _no_rate_rules(props: dict[str, Any]) -> dict[str, Any]:
    return {**props, "rules": [r for r in props["rules"] if "rateBasedStatement" not in r["statement"]]}


def _forward_only(props: dict[str, Any]) -> dict[str, Any]:
    """No authentication action before the forward, and no client certificates verified."""
    kept = {k: v for k, v in props.items() if k != "mutualAuthentication"}
    return {**kept, "defaultActions": [{**a, "order": 1} for a in props["defaultActions"] if a["type"] == "forward"]}


OTHER_ACL = f"arn:aws:wafv2:us-east-1:{ACCOUNT_ID}:regional/webacl/other/0f0e0d0c-1111-2222-3333-444455556666"
OTHER_ALB = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT_ID}:loadbalancer/app/other/0123456789abcdef"


def _both(*transforms: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def transform(args: Any) -> Any:
        for t in transforms:
            result = t(args)
            if result is not None:
                return result
        return None

    return transform


EDGE_MUTATIONS: dict[str, tuple[Callable[[Any], Any], str, str]] = {
    "listener-allows-tls12": (transform_of(LISTENER, _set(sslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06"),
                                           name="endpoint-chat-https"), "HS_EDGE_002", "endpoint-chat-https"),
    "no-rate-based-rule": (transform_of(WEB_ACL, _no_rate_rules), "HS_EDGE_003", "endpoint-chat-web-acl"),
    "web-acl-logging-dropped": (transform_of(WAF_LOGGING, _set(resourceArn=OTHER_ACL)), "HS_EDGE_004",
                                "endpoint-chat-web-acl"),
    "authorization-header-logged": (transform_of(WAF_LOGGING, _set(redactedFields=[{"singleHeader": {
        "name": "cookie"}}])), "HS_EDGE_004", "endpoint-chat-web-acl"),
    "forward-without-authentication": (transform_of(LISTENER, _forward_only, name="endpoint-chat-https"),
                                       "HS_EDGE_005", "endpoint-chat-https"),
    "internet-facing-without-waf": (_both(transform_of(LB, _set(internal=False)),
                                          transform_of(ASSOCIATION, _set(resourceArn=OTHER_ALB))),
                                    "HS_EDGE_001", "endpoint-chat-alb"),
    "invalid-headers-kept": (transform_of(LB, _set(dropInvalidHeaderFields=False)), "CKV_AWS_131",
                             "endpoint-chat-alb"),
}


@pytest.mark.parametrize("mutation", sorted(EDGE_MUTATIONS))
def test_weakening_the_endpoint_fails_the_gate(mutation: str) -> None:
    transform, check_id, resource = EDGE_MUTATIONS[mutation]
    report = gate("llm-inference", transform)
    assert (check_id, resource) in failed(report), sorted(failed(report))
    if mutation == "internet-facing-without-waf":
        assert ("CKV2_AWS_28", resource) in failed(report)


def test_a_public_endpoint_without_waf_cannot_be_excepted() -> None:
    from hardstack.policies.catalog import non_waivable

    assert "HS_EDGE_001" in non_waivable() and "CKV2_AWS_28" in non_waivable()


def test_log_delivery_in_newer_regions_is_the_service_principal() -> None:
    """Regions opened from August 2022 on deliver access logs as the log delivery service, not an account."""
    from hardstack.modules.endpoint import EndpointLogs

    doc = EndpointLogs.policy_document(type("Logs", (), {"prefix": ACCESS_LOG_PREFIX})(),  # type: ignore[arg-type]
                                       "arn:aws:s3:::b", ACCOUNT_ID, "aws", "ap-southeast-5")
    (allow,) = [s for s in doc["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": ELB_LOG_DELIVERY}
