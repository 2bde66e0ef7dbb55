"""`hardstack report`: the architecture picture drawn from the inventory, the threat model computed from the gate's
results, the Markdown for pull requests, escaping of hostile names, and the command's exit codes."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
import yaml

from hardstack.blueprints.loader import catalog, load
from hardstack.errors import EXIT_INVALID, EXIT_NOT_VERIFIED, EXIT_OK, EXIT_TOOL, EXIT_VIOLATIONS, ToolError
from hardstack.policies.architecture import diagram, render_svg
from hardstack.policies.gate import GateReport, Result, run_gate
from hardstack.policies.inline_svg import safe_svg
from hardstack.policies.report_html import TEMPLATES, render_html
from hardstack.policies.report_md import render_markdown
from hardstack.policies.threats import (
    MITIGATED, NOT_APPLICABLE, PARTLY, STRIDE, THREATS, UNMITIGATED, Control, Threat, coverage,
)
from hardstack.policies.network_paths import OUTSIDE
from hardstack.policies.topology import read
from hardstack.stacks.inventory import Inventory
from hardstack.stacks.synth import run_program
from hardstack.stacks.targets import synth_loaded

from .report_helpers import NO_GPU_QUOTA, TIME_SLICED_FOR_ANYONE, TRIAGE_READS_RECORDS, judged

TIERS = ("ingress", "inference", "training", "data", "endpoints")
BIN = Path(sys.executable).parent
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def reference() -> tuple[Inventory, GateReport]:
    return judged("llm-inference")


@pytest.fixture(scope="module")
def without_gpu_quota() -> tuple[Inventory, GateReport]:
    return judged("llm-inference", NO_GPU_QUOTA)


@pytest.fixture(scope="module")
def agents() -> Inventory:
    return synth_loaded(load("agent-sandbox"))


def svg_text(svg: str) -> str:
    """Every text the picture shows, one line each."""
    return "\n".join("".join(t.itertext()) for t in ET.fromstring(svg).iter(f"{SVG}text"))


def by_name(coverages: list[Any]) -> dict[str, Any]:
    return {c.threat.id: c for c in coverages}


# --- the picture ---------------------------------------------------------------------------------------------

def test_reference_topology_tiers_subnets_pool_buckets(reference: tuple[Inventory, GateReport]) -> None:
    topology = read(reference[0])
    (net,) = topology.networks
    assert net.cidr == "10.40.0.0/16" and tuple(net.tiers) == TIERS
    for tier in net.tiers.values():
        assert len(tier.subnets) == 3
        assert {s.az for s in tier.subnets} == {"us-east-1a", "us-east-1b", "us-east-1c"}
        assert all(ipaddress.ip_network(s.cidr).subnet_of(ipaddress.ip_network(net.cidr)) for s in tier.subnets)
        assert not any(s.public for s in tier.subnets)
    (cluster,) = topology.clusters
    assert cluster.private and cluster.secrets_key and {t for _, t in cluster.tiers} == {"inference", "training"}
    (pool,) = cluster.pools
    assert (pool.name, pool.isolation, pool.tenants, pool.tenant_taint) == ("inference", "dedicated", ("serving",),
                                                                          "serving")
    assert {t for _, t in pool.tiers} == {"inference"}
    (namespace,) = cluster.namespaces
    assert (namespace.tenant, namespace.gpu_quota, namespace.agent) == ("serving", "4", None)
    buckets = {b.name: b for b in topology.buckets}
    assert buckets["training-data-bucket"].classification == "regulated"
    assert buckets["model-artifacts-bucket"].classification == "confidential"
    assert buckets["training-data-bucket"].object_lock and not buckets["model-artifacts-bucket"].object_lock
    keys = {urn: k.name for urn, k in topology.keys.items()}
    assert keys[buckets["training-data-bucket"].key] == "data-regulated-key"  # the SSE configuration's key
    assert keys[buckets["model-artifacts-bucket"].key] == "data-confidential-key"
    assert keys[cluster.secrets_key] == "compute-key"


def test_edges_are_the_paths_the_stack_allows(reference: tuple[Inventory, GateReport]) -> None:
    topology = read(reference[0])
    flows = {(f.source, f.target): f.ports for f in topology.flows}
    assert flows[("ingress", "inference")] == "all traffic" and ("ingress", "data") not in flows
    assert ("training", "inference") not in flows and ("inference", "training") not in flows  # never meet
    assert flows[("training", "data")] == "all traffic" and flows[("inference", "endpoints")] == "443/tcp"
    assert not any(target == "endpoints" and ports != "443/tcp" for (_, target), ports in flows.items())
    (net,) = topology.networks
    assert not net.nat_tiers and not net.internet_tiers and net.internet_gateway is None  # air-gapped
    assert {s for s, t in flows if t == OUTSIDE} <= net.s3_gateway_tiers  # out only through the S3 gateway
    names = {urn: r.name for urn, r in topology.roles.items()}
    bucket_names = {b.urn: b.name for b in topology.buckets}
    grants = {(names[g.role], bucket_names[g.bucket]): g.access for g in topology.grants}
    assert grants[("personas-data-scientist", "training-data-bucket")] == "read"
    assert grants[("personas-mlops-engineer", "training-data-bucket")] == "denied"
    assert grants[("personas-mlops-engineer", "model-artifacts-bucket")] == "read, write"
    # Pod Identity reaches the serving tenant's workloads and two platform controllers only: the load balancer
    # controller (it registers the endpoint's targets) and Kyverno's admission controller (it reads signatures).
    assert [(ns, names[role]) for ns, role in topology.pod_identities] == [
        ("kube-system", "lb-controller-role"), ("kyverno", "admission-identity-role"),
        ("serving", "tenant-serving-workload-role")]
    assert {names[role] for _, _, role in topology.vault_credentials} == {"jit-cluster-admin", "jit-training-serving"}


def test_the_picture_shows_every_tier_subnet_pool_tenant_and_bucket(reference: tuple[Inventory, GateReport]) -> None:
    inventory = reference[0]
    g = diagram(read(inventory))
    # VPC, tiers, EKS, data, IAM, Vault, registries and signing
    assert len(re.findall(r"subgraph cluster_", g.source)) == 1 + len(TIERS) + 5
    text = svg_text(safe_svg(render_svg(inventory)))
    for tier in TIERS:
        assert f"tier: {tier}" in text
        for az in (1, 2, 3):
            assert f"network-{tier}-{az}" in text
    for line in ("GPU pool inference", "isolation: dedicated", "tenants: serving", "tainted for serving only",
                 "namespace serving",
                 "bucket training-data-bucket", "classification: regulated", "KMS key data-regulated-key",
                 "private API endpoint", "S3 gateway endpoint", "login MFA enforced",
                 "system nodes system", "no taint: cluster services, CPU workloads",
                 "registries and signing", "registry registry-inference-server", "tags: immutable", "scan on push"):
        assert line in text, line
    assert "no scan on push" not in text and "tags: mutable" not in text
    for edge in ("all traffic", "443/tcp", "read, write", "denied", "Pod Identity", "SSE-KMS", "schedules on"):
        assert edge in text, edge


def test_agents_nat_and_internet_in_the_picture(agents: Inventory) -> None:
    topology = read(agents)
    legs = {a.agent: a.legs for a in topology.agents}
    assert legs["support-triage"]["untrusted"] == ("customer-chat",) and legs["support-triage"]["calls"] == (
        "ticket-writer",)
    assert legs["ticket-writer"]["egress"] == ("tickets.example.com",)
    assert legs["records-analyst"]["private"] == ("customer-records", "secret:crm-readonly")
    (net,) = topology.networks
    assert net.nat_tiers == {"inference", "training"} and net.internet_tiers == {"public"}
    text = svg_text(safe_svg(render_svg(agents)))
    for line in ("agent support-triage", "untrusted input: customer-chat",
                 "external communication: tickets.example.com",
                 "private data: customer-records, secret:crm-readonly", "calls", "internet", "tier: public"):
        assert line in text, line


def _edge_program() -> None:
    import pulumi_aws as aws

    vpc = aws.ec2.Vpc("vpc", cidr_block="10.9.0.0/16")
    subnets = [aws.ec2.Subnet(f"ingress-{i}", vpc_id=vpc.id, cidr_block=f"10.9.{i}.0/24",
                              availability_zone=f"us-east-1{'ab'[i]}", tags={"hardstack:tier": "ingress"})
               for i in range(2)]
    lb = aws.lb.LoadBalancer("front", internal=False, load_balancer_type="application", subnets=[s.id for s in subnets])
    acl = aws.wafv2.WebAcl("front-waf", scope="REGIONAL", default_action={"block": {}},
                           visibility_config={"cloudwatch_metrics_enabled": True, "metric_name": "front",
                                              "sampled_requests_enabled": True})
    aws.wafv2.WebAclAssociation("front-waf-association", resource_arn=lb.arn, web_acl_arn=acl.arn)
    aws.ecr.Repository("models", image_tag_mutability="IMMUTABLE",
                       image_scanning_configuration={"scan_on_push": True})
    aws.signer.SigningProfile("release", platform_id="Notation-OCI-SHA384-ECDSA")


def test_endpoints_with_waf_registries_and_signing_are_drawn_when_the_stack_has_them() -> None:
    inventory = run_program(_edge_program, project="edge", stack="dev", region="us-east-1")
    topology = read(inventory)
    (endpoint,) = topology.endpoints
    assert endpoint.internet_facing and {t for _, t in endpoint.tiers} == {"ingress"}
    assert [inventory[u].name for u in endpoint.web_acls] == ["front-waf"]
    text = svg_text(safe_svg(render_svg(inventory)))
    for line in ("endpoint front", "internet-facing", "WAF: front-waf", "WAF web ACL front-waf", "protects",
                 "registry models", "tags: immutable", "scan on push", "signing profile release", "clients (internet)"):
        assert line in text, line


def test_without_graphviz_the_report_says_what_to_install(reference: tuple[Inventory, GateReport],
                                                          monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` on it
    with pytest.raises(ToolError, match="graphviz") as raised:
        render_svg(reference[0])
    assert raised.value.exit_code == EXIT_TOOL


# --- hostile names -------------------------------------------------------------------------------------------

HOSTILE_BUCKET = "<script>window.__pwned=1</script>|x"
HOSTILE_SUBNET = 'subnet-"><img src=x onerror=window.__pwned=2>'
HOSTILE_TIER = "</text><script>window.__pwned=3</script>\\N\\\"{a|b}"
HOSTILE_TAG = '"><svg onload=window.__pwned=4>'


def hostile_program() -> None:
    import pulumi_aws as aws

    vpc = aws.ec2.Vpc("vpc", cidr_block="10.9.0.0/16")
    aws.ec2.Subnet(HOSTILE_SUBNET, vpc_id=vpc.id, cidr_block="10.9.1.0/24", availability_zone="us-east-1a",
                   tags={"hardstack:tier": HOSTILE_TIER})
    aws.s3.Bucket(HOSTILE_BUCKET, tags={"hardstack:classification": HOSTILE_TAG,
                                        "hardstack:purpose": "a|b `c` *d* [e](javascript:alert(5))"})


@pytest.fixture(scope="module")
def hostile() -> tuple[Inventory, GateReport]:
    inventory = run_program(hostile_program, project="hostile", stack="dev", region="us-east-1")
    return inventory, run_gate(inventory, target="hostile <b>target</b>")


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def test_hostile_names_are_drawn_as_text_and_run_nothing(hostile: tuple[Inventory, GateReport]) -> None:
    inventory, report = hostile
    page = render_html(report, inventory)
    parsed = _Elements()
    parsed.feed(page)
    assert parsed.scripts == [(TEMPLATES / "report.js").read_text()]  # only the report's own script
    assert not [(t, a) for t, a in parsed.tags for name in a if name.startswith("on")]  # no event handlers
    assert {t for t, _ in parsed.tags} & {"img", "iframe", "object", "embed", "foreignobject", "link"} == set()
    assert "__pwned" in page and "<script>window" not in page and "<img src=x" not in page
    svg = page[page.index("<svg"): page.index("</svg>") + 6]
    text = svg_text(svg)
    assert f"bucket {HOSTILE_BUCKET}" in text and HOSTILE_SUBNET in text
    assert "tier: " + HOSTILE_TIER in text  # backslashes and braces literal, not Graphviz escapes
    assert f"classification: {HOSTILE_TAG}" in text


def test_safe_svg_keeps_drawing_elements_only() -> None:
    evil = ('<?xml version="1.0"?><!DOCTYPE svg><svg xmlns="http://www.w3.org/2000/svg" '
            'xmlns:xlink="http://www.w3.org/1999/xlink" width="10pt" onload="x()"><!-- c -->'
            '<script>x()</script><g id="a" style="background:url(https://e.example)"><text x="1">ok</text>'
            '<a xlink:href="javascript:x()"><text>link</text></a><image href="https://e.example/i.png"/>'
            '<foreignObject><div>x</div></foreignObject><path d="M0 0" fill="url(#x)"/></g></svg>')
    out = safe_svg(evil)
    assert out.startswith("<svg") and 'width="10pt"' in out
    for gone in ("script", "onload", "style", "javascript", "href", "image", "foreignObject", "<!--", "<?xml",
                 "DOCTYPE", "url("):
        assert gone not in out, gone
    assert ">ok<" in out and ">link<" in out


def test_hostile_names_in_markdown_are_escaped(hostile: tuple[Inventory, GateReport]) -> None:
    inventory, report = hostile
    text = render_markdown(report, inventory)
    assert "<script" not in re.sub(r"`[^`]*`", "", text)  # only inside code spans, which are literal
    assert "hostile &lt;b&gt;target&lt;/b&gt;" in text and f"`{HOSTILE_BUCKET}`" in text
    for line in text.splitlines():
        if line.startswith("| **failed**"):
            assert len(re.findall(r"(?<!\\)\|", line)) == 7, line  # six cells: no name ends a cell early


def test_the_page_fetches_nothing(reference: tuple[Inventory, GateReport]) -> None:
    inventory, report = reference
    page = render_html(report, inventory)
    assert not re.search(r"<link|<script[^>]*\bsrc|<img|<iframe|@import|url\(", page, re.IGNORECASE)
    assert not re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//""", page, re.IGNORECASE)
    assert "default-src 'none'" in page


# --- the threat model ----------------------------------------------------------------------------------------

def test_catalogue_covers_the_lifecycle_with_known_checks() -> None:
    from hardstack.policies.listing import all_checks

    known = {c.id for c in all_checks()}
    names = " / ".join(t.name.lower() for t in THREATS)
    for seed in ("training-data leakage and poisoning", "model theft and extraction", "adversarial inputs",
                 "api abuse and ddos", "gpu side channels and cross-tenant leakage", "supply-chain tampering",
                 "credential misuse", "lethal-trifecta exfiltration"):
        assert seed in names, seed
    for threat in THREATS:
        assert threat.stride and set(threat.stride) <= set(STRIDE), threat.id
        assert threat.atlas and all(re.fullmatch(r"AML\.T\d{4}(\.\d{3})?", tid) and n for tid, n in threat.atlas)
        assert {c.check_id for c in threat.controls} <= known, threat.id
    supply = next(t for t in THREATS if t.id == "supply-chain")
    assert supply.gaps and all(c.where for c in supply.controls)  # nothing hardstack builds yet


def _result(check: str, status: str, resource: str = "b", exception: dict[str, str] | None = None) -> Result:
    return Result(check, status, f"urn:pulumi:s::p::aws:s3/bucket:Bucket::{resource}", f"x.{resource}", "hardstack",
                  f"title of {check}", "HIGH", exception=exception)


RULE = Threat("t", "a threat", ("Tampering",), (("AML.T0020", "Poison Training Data"),), "buckets",
              lambda inventory: True,
              (Control("A", "a", essential=True), Control("B", "b"), Control("C", "c", where="endpoints")))


@pytest.mark.parametrize("results, gaps, status", [
    ([("A", "passed"), ("B", "passed")], (), MITIGATED),  # C has no result: not here
    ([("A", "passed"), ("B", "passed"), ("C", "passed")], ("not built",), PARTLY),  # a gap caps it
    ([("A", "passed"), ("B", "passed"), ("B", "failed")], (), PARTLY),  # one failure is enough
    ([("A", "passed"), ("B", "skipped")], (), PARTLY),  # an exception does not mitigate
    ([("A", "passed")], (), PARTLY),  # B has no result and is not conditional: missing
    ([("A", "passed"), ("C", "failed"), ("B", "passed")], (), PARTLY),
    ([("A", "failed"), ("B", "passed"), ("C", "passed")], (), UNMITIGATED),  # essential control failed
    ([("A", "skipped"), ("B", "passed")], (), UNMITIGATED),
    ([("B", "failed")], (), UNMITIGATED),  # nothing in force
    ([], ("not built",), UNMITIGATED),
])
def test_coverage_rule(results: list[tuple[str, str]], gaps: tuple[str, ...], status: str) -> None:
    threat = dataclasses.replace(RULE, gaps=gaps)
    exception = {"reason": "why it is acceptable here", "owner": "team", "expires": "2099-01-01"}
    report = GateReport("t", [_result(c, s, exception=exception if s == "skipped" else None) for c, s in results],
                        1, "sha256:0")
    (cov,) = coverage(report, Inventory([]), (threat,))
    assert cov.status == status
    if status != MITIGATED:
        assert cov.left
    not_applicable = dataclasses.replace(threat, applies=lambda inventory: False)
    assert coverage(report, Inventory([]), (not_applicable,))[0].status == NOT_APPLICABLE


def test_reference_threat_model(reference: tuple[Inventory, GateReport]) -> None:
    inventory, report = reference
    threats = by_name(coverage(report, inventory))
    assert threats["gpu-side-channels"].status == MITIGATED
    assert threats["lethal-trifecta"].status == NOT_APPLICABLE  # no agents
    supply = threats["supply-chain"]  # signed images admitted only; model weights and data are not signed
    assert supply.status == PARTLY and supply.threat.gaps[0] in supply.left
    in_force = {s.control.check_id for s in supply.in_force}
    assert {"HS_SUPPLY_001", "HS_SUPPLY_002", "HS_SUPPLY_003", "CKV_AWS_51", "CKV_AWS_163", "CKV_AWS_136"} <= in_force
    assert not supply.not_mitigating
    credentials = threats["credential-misuse"]
    assert credentials.status == PARTLY  # the persona roles' trust of the identity account is excepted
    (excepted,) = [s for s in credentials.controls if s.state == "excepted"]
    assert excepted.control.check_id == "CKV_AWS_61"
    assert any("platform-security" in item and "2027-06-30" in item for item in credentials.left)
    for c in threats.values():
        assert not (c.threat.gaps and c.status == MITIGATED), c.threat.id
    gpu = threats["gpu-side-channels"]
    quota = next(s for s in gpu.controls if s.control.check_id == "HS_K8S_004")
    assert quota.passed_on == ["tenant-serving-namespace"]


def test_removing_the_gpu_quota_leaves_gpu_isolation_partly_mitigated(
        without_gpu_quota: tuple[Inventory, GateReport]) -> None:
    inventory, report = without_gpu_quota
    gpu = by_name(coverage(report, inventory))["gpu-side-channels"]
    assert gpu.status == PARTLY
    assert [s.control.check_id for s in gpu.not_mitigating] == ["HS_K8S_004"]
    assert gpu.left == ["HS_K8S_004 failed on tenant-serving-namespace: each tenant's GPUs are bounded by a quota"]


def test_time_slicing_a_shared_pool_leaves_gpu_side_channels_unmitigated() -> None:
    inventory, report = judged("llm-inference", TIME_SLICED_FOR_ANYONE)
    gpu = by_name(coverage(report, inventory))["gpu-side-channels"]
    assert gpu.status == UNMITIGATED
    assert "HS_GPU_002 failed on gpu-inference-nodes" in gpu.left[0]
    text = svg_text(render_svg(inventory))  # the picture follows the nodes' configuration, not the declaration
    assert "isolation: time-slicing" in text and "no tenant taint" in text


def test_an_agent_joining_the_trifecta_leaves_exfiltration_unmitigated() -> None:
    inventory, report = judged("agent-sandbox")
    before = by_name(coverage(report, inventory))["lethal-trifecta"]
    inventory, report = judged("agent-sandbox", TRIAGE_READS_RECORDS)
    after = by_name(coverage(report, inventory))["lethal-trifecta"]
    assert (before.status, after.status) == (MITIGATED, UNMITIGATED)
    assert after.left[0].startswith("HS_AGENT_001 failed on agent-support-triage-namespace")


def test_markdown_has_the_threat_model_and_the_failures(without_gpu_quota: tuple[Inventory, GateReport]) -> None:
    inventory, report = without_gpu_quota
    text = render_markdown(report, inventory)
    assert text.startswith("## hardstack report: llm-inference\n\n**FAILED**")
    assert "| GPU side channels and cross\\-tenant leakage |" not in text  # hyphens are not escaped
    assert "| GPU side channels and cross-tenant leakage | Information disclosure | `AML.T0035` ML Artifact " \
           "Collection, `AML.T0037` Data from Local System | **partly mitigated** |" in text
    assert ("  - `HS_K8S_004` **failed** on `tenant-serving-namespace`: each tenant's GPUs are bounded by a quota"
            in text)
    assert "  - not built yet: Model artifacts and datasets are not signed" in text
    rows = [line for line in text.splitlines() if line.startswith(("| **failed**", "| excepted"))]
    assert rows[0].startswith("| **failed** | `HS_K8S_004` | MEDIUM | `tenant-serving-namespace` |")
    # the blueprint's 10 (CKV_AWS_144 on 7 buckets, CKV_AWS_61 on 3 persona roles) and 3 by design: on the load
    # balancer's access log bucket that ELB requires to be SSE-S3 (CKV_AWS_145, HS_DATA_002), and on the GuardDuty
    # detector, which only an organization's delegated administrator could give an organization configuration
    assert sum(r.startswith("| excepted") for r in rows) == report.count("skipped") == 13
    assert "owner platform\\-security" not in text and "owner platform-security; expires 2027-06-30" in text
    by_design = [r for r in rows if "owner hardstack; by design" in r]
    assert len(by_design) == 3 and sum("`endpoint-logs-" in r for r in by_design) == 2
    assert sum("`detection-guardduty`" in r for r in by_design) == 1
    # the threat model leaves design exceptions out: the control cannot apply to that bucket, so it neither
    # mitigates nor weakens a threat
    assert "owner: hardstack; by design)" not in text and "expires )" not in text


# --- the command ---------------------------------------------------------------------------------------------

def hardstack(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "hardstack"), *args], capture_output=True, text=True, timeout=300)


def test_cli_html_report_of_the_reference(tmp_path: Path) -> None:
    out = tmp_path / "reports" / "llm-inference.html"
    proc = hardstack("report", "llm-inference", "--out", str(out))
    assert proc.returncode == EXIT_OK, proc.stderr
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "Threat model" in page
    assert "passed: 0 failed, 13 skipped" in proc.stderr and not proc.stdout
    assert "owner hardstack, by design" in page  # a design exception never shows an expiry


def test_cli_violations_exit_1_and_the_report_is_still_written(tmp_path: Path) -> None:
    data = yaml.safe_load(catalog()["llm-inference"].read_text())
    data["data"]["buckets"][0]["object_lock"] = {"enabled": False}
    blueprint = tmp_path / "weakened.yaml"
    blueprint.write_text(yaml.safe_dump(data))
    out = tmp_path / "report.md"
    proc = hardstack("report", str(blueprint), "--format", "md", "--out", str(out))
    assert proc.returncode == EXIT_VIOLATIONS, proc.stderr
    text = out.read_text()
    assert "**FAILED**" in text and "| **failed** | `HS_DATA_001` | HIGH | `training-data-bucket` |" in text


def test_cli_usage_and_invalid_input_exit_2(tmp_path: Path) -> None:
    proc = hardstack("report", "llm-inference")  # html needs a file
    assert proc.returncode == EXIT_INVALID and "--out" in proc.stderr
    proc = hardstack("report", "no-such-blueprint", "--format", "md")
    assert proc.returncode == EXIT_INVALID and "no such target" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_not_verified_exit_3_writes_nothing(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: p\nruntime: python\n")
    (project / "__main__.py").write_text(
        "import pulumi_aws as aws\n"
        "aws.s3.BucketIntelligentTieringConfiguration('t', bucket='b', "
        "tierings=[{'access_tier': 'ARCHIVE_ACCESS', 'days': 90}])\n")
    proc = hardstack("report", str(project), "--out", str(tmp_path / "r.html"))
    assert proc.returncode == EXIT_NOT_VERIFIED and "not verified" in proc.stderr
    assert not (tmp_path / "r.html").exists()
