"""The threat model: each threat of an AI environment's lifecycle, its STRIDE categories and MITRE ATLAS
techniques, the controls (gate checks, hardstack's and checkov's) that mitigate it, and what hardstack does not
cover yet — and, for one judged stack, how far its controls are in force.

Coverage is computed from the gate's results, never written by hand:

1. A threat is **not applicable** when the stack holds nothing it acts on (`Threat.applies`: e.g. no GPU node
   groups → no GPU side channels; no agents → no lethal trifecta).
2. A control's state is read from every result of its check in the report:
   - **failed** when any result failed (an expired exception fails too);
   - else **excepted** when any result was excepted: an accepted exception does not mitigate; it is shown with
     its reason, owner and expiry (hardstack's own design exceptions, on resources a control cannot apply to,
     count for nothing);
   - else **in force** when at least one result passed;
   - else (no result at all) **not here** for a conditional control (`where`: it applies only to resources this
     stack does not hold, e.g. WAF checks without endpoints), and **missing** for any other control.
3. A threat is **unmitigated** when none of its controls is in force, or when one of its essential controls
   is not in force (the one control the threat hinges on: HS_GPU_002 for GPU side channels, HS_AGENT_001 for the
   lethal trifecta). It is **mitigated** when every control is in force or not here, and the catalogue lists no
   gap for it (something hardstack does not build yet). Otherwise it is **partly mitigated**.

So a threat with no control in hardstack yet (supply-chain tampering, for a stack without workloads or
registries) is unmitigated with its gaps as the note, and a threat with a known gap is at best partly mitigated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from hardstack.blueprints.agents import AGENT_LABEL
from hardstack.stacks.inventory import Inventory

from .gate import GateReport, Result

STRIDE = ("Spoofing", "Tampering", "Repudiation", "Information disclosure", "Denial of service",
          "Elevation of privilege")

MITIGATED, PARTLY, UNMITIGATED, NOT_APPLICABLE = "mitigated", "partly mitigated", "unmitigated", "not applicable"
IN_FORCE, FAILED, EXCEPTED, MISSING, NOT_HERE = "in force", "failed", "excepted", "missing", "not here"


@dataclass(frozen=True)
class Control:
    check_id: str
    does: str
    """What the check makes true, in a few words."""
    essential: bool = False
    """The threat is unmitigated without it."""
    where: str | None = None
    """For a conditional control: the resources it applies to (without any, it is neutral)."""


@dataclass(frozen=True)
class Threat:
    id: str
    name: str
    stride: tuple[str, ...]
    atlas: tuple[tuple[str, str], ...]  # (technique ID, name)
    applies_to: str
    applies: Callable[[Inventory], bool]
    controls: tuple[Control, ...]
    gaps: tuple[str, ...] = ()
    """What hardstack does not cover yet for this threat; shown as left unmitigated."""


# --- what a stack holds --------------------------------------------------------------------------------------

def _has(*types: str) -> Callable[[Inventory], bool]:
    return lambda inventory: any(r.type in types for r in inventory)


def _gpu_pools(inventory: Inventory) -> bool:
    for ng in inventory.of_type("aws:eks/nodeGroup:NodeGroup"):
        labels, tags = ng.get("labels") or {}, ng.get("tags") or {}
        if labels.get("hardstack.io/gpu") == "true" or "hardstack:gpu-isolation" in tags \
                or "NVIDIA" in str(ng.get("amiType") or "") or "nvidia" in str(ng.get("amiType") or ""):
            return True
    return False


def _agents(inventory: Inventory) -> bool:
    return any(AGENT_LABEL in ((ns.get("metadata") or {}).get("labels") or {})
               for ns in inventory.of_type("kubernetes:core/v1:Namespace"))


def _any(*tests: Callable[[Inventory], bool]) -> Callable[[Inventory], bool]:
    return lambda inventory: any(test(inventory) for test in tests)


BUCKETS = _has("aws:s3/bucket:Bucket")
CLUSTER = _has("aws:eks/cluster:Cluster")
ENDPOINTS = _has("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
WORKLOADS = _has("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:DaemonSet",
                 "kubernetes:batch/v1:Job", "kubernetes:core/v1:Pod", "aws:ecr/repository:Repository")
IDENTITIES = _any(_has("aws:iam/role:Role", "aws:iam/user:User"), lambda inv: any(r.type.startswith("vault:")
                                                                                   for r in inv))

# --- the catalogue -------------------------------------------------------------------------------------------

WAF = "internet-facing endpoints"
WEB_ACLS = "web ACLs"
ENDPOINT_LISTENERS = "endpoint listeners"
REGISTRIES = "container registries"
IMAGES = "Kubernetes workloads"
HELM_RELEASES = "Helm releases"
GPU = "GPU node groups"
VAULT = "Vault"
NAT = "networks with a NAT gateway"
AGENTS = "agents"

THREATS: tuple[Threat, ...] = (
    Threat(
        "training-data", "Training-data leakage and poisoning",
        ("Information disclosure", "Tampering"),
        (("AML.T0020", "Poison Training Data"), ("AML.T0036", "Data from Information Repositories"),
         ("AML.T0025", "Exfiltration via Cyber Means")),
        "S3 buckets", BUCKETS,
        (
            Control("HS_DATA_002", "buckets encrypted with this stack's own KMS key"),
            Control("CKV_AWS_145", "buckets encrypted with KMS by default"),
            Control("HS_KMS_001", "key administrators cannot use the keys"),
            Control("HS_DATA_003", "TLS 1.2 or newer required by bucket policy"),
            Control("HS_DATA_004", "every bucket has a policy"),
            Control("CKV_AWS_53", "public ACLs blocked"),
            Control("CKV_AWS_54", "public bucket policies blocked"),
            Control("CKV_AWS_56", "public buckets restricted"),
            Control("HS_NET_003", "the S3 gateway endpoint reaches this account's buckets only"),
            Control("HS_NET_001", "no NAT gateway where regulated data lives", where=NAT),
            Control("CKV_AWS_21", "versioning: overwritten data can be recovered"),
            Control("HS_DATA_001", "object lock on regulated data and audit logs"),
            Control("CKV_AWS_18", "access logging of every bucket"),
            Control("HS_OPS_001", "every read and write of training data and models is in the audit trail",
                    where="trails"),
            Control("HS_IAM_001", "grants name their actions, never wildcards"),
        ),
        ("Training data is not validated before use (provenance, checksums or signatures of datasets); poisoning by "
         "a principal allowed to write is visible only through versioning and access logs.",),
    ),
    Threat(
        "model-theft", "Model theft and extraction",
        ("Information disclosure",),
        (("AML.T0035", "ML Artifact Collection"), ("AML.T0024.002", "Extract ML Model"),
         ("AML.T0044", "Full ML Model Access")),
        "model artifacts, GPU node groups or an EKS cluster", _any(BUCKETS, CLUSTER, _gpu_pools),
        (
            Control("HS_DATA_002", "model artifacts encrypted with this stack's own KMS key"),
            Control("HS_KMS_001", "key administrators cannot use the keys"),
            Control("CKV_AWS_53", "public ACLs blocked"),
            Control("HS_IAM_001", "grants name their actions, never wildcards"),
            Control("HS_IAM_003", "no role may pass every role"),
            Control("CKV_AWS_39", "the cluster's API endpoint is private", where="an EKS cluster"),
            Control("CKV_AWS_58", "cluster secrets envelope-encrypted", where="an EKS cluster"),
            Control("HS_GPU_003", "pods cannot take the GPU node's credentials (IMDSv2, one hop)", where=GPU),
            Control("HS_GPU_004", "no node group in a public subnet", where=GPU),
            Control("HS_EDGE_005", "endpoints authenticate every caller", where=ENDPOINT_LISTENERS),
            Control("HS_EDGE_003", "per-IP and per-client rate limits at the endpoint's WAF", where=WEB_ACLS),
            Control("HS_EDGE_002", "endpoints speak TLS 1.3 only", where=ENDPOINT_LISTENERS),
        ),
        ("Rate limits slow extraction but do not detect it: query patterns are not monitored for extraction "
         "attempts.",),
    ),
    Threat(
        "adversarial-inputs", "Adversarial inputs (evasion, prompt injection)",
        ("Tampering", "Elevation of privilege"),
        (("AML.T0043", "Craft Adversarial Data"), ("AML.T0015", "Evade ML Model"),
         ("AML.T0051", "LLM Prompt Injection"), ("AML.T0054", "LLM Jailbreak")),
        "GPU node groups, endpoints or agents", _any(_gpu_pools, ENDPOINTS, _agents),
        (
            Control("HS_EDGE_001", "a WAF in front of internet-facing load balancers", where=WAF),
            Control("CKV_AWS_192", "the WAF blocks known bad inputs (Log4j)", where=WEB_ACLS),
            Control("HS_K8S_003", "tenant namespaces deny all traffic by default", where="tenant namespaces"),
            Control("HS_K8S_001", "workloads run under the restricted Pod Security Standard"),
            Control("HS_AGENT_001", "no agent holds the lethal trifecta", where=AGENTS),
        ),
        ("No input validation, guardrail or output filtering in front of the model: hardstack limits what a "
         "manipulated model can reach, not what it answers.",),
    ),
    Threat(
        "api-abuse", "API abuse and DDoS",
        ("Denial of service", "Spoofing"),
        (("AML.T0029", "Denial of ML Service"), ("AML.T0034", "Cost Harvesting"),
         ("AML.T0040", "ML Model Inference API Access"), ("AML.T0046", "Spamming ML System with Chaff Data")),
        "an EKS cluster, endpoints or GPU node groups", _any(CLUSTER, ENDPOINTS, _gpu_pools),
        (
            Control("HS_K8S_004", "each tenant's GPUs are bounded by a quota", where="tenant namespaces"),
            Control("CKV_AWS_39", "the cluster's API endpoint is private", where="an EKS cluster"),
            Control("CKV_AWS_130", "subnets assign no public IPs"),
            Control("CKV2_AWS_12", "the default security group admits nothing"),
            Control("HS_GPU_004", "no node group in a public subnet", where=GPU),
            Control("HS_EDGE_001", "a WAF in front of internet-facing load balancers", where=WAF),
            Control("HS_EDGE_003", "per-IP and per-client rate limits at the endpoint's WAF", where=WEB_ACLS),
            Control("HS_EDGE_004", "WAF requests are logged", where=WEB_ACLS),
            Control("HS_EDGE_005", "endpoints authenticate every caller", where=ENDPOINT_LISTENERS),
        ),
    ),
    Threat(
        "gpu-side-channels", "GPU side channels and cross-tenant leakage",
        ("Information disclosure",),
        (("AML.T0035", "ML Artifact Collection"), ("AML.T0037", "Data from Local System")),
        GPU, _gpu_pools,
        (
            Control("HS_GPU_002", "no time-slicing of GPUs several tenants share", essential=True),
            Control("HS_GPU_001", "GPU nodes carry the nvidia.com/gpu NoSchedule taint"),
            Control("HS_K8S_004", "each tenant's GPUs are bounded by a quota", where="tenant namespaces"),
            Control("HS_K8S_003", "tenant namespaces deny all traffic by default", where="tenant namespaces"),
            Control("HS_K8S_001", "workloads run under the restricted Pod Security Standard"),
            Control("HS_GPU_003", "pods cannot take the GPU node's credentials (IMDSv2, one hop)"),
            Control("HS_K8S_002", "GPU workloads tolerate the GPU taint", where="GPU workloads"),
        ),
    ),
    Threat(
        "supply-chain", "Supply-chain tampering (images, models, dependencies)",
        ("Tampering",),
        (("AML.T0010", "ML Supply Chain Compromise"), ("AML.T0018", "Backdoor ML Model")),
        "an EKS cluster, workloads or registries", _any(CLUSTER, WORKLOADS, _gpu_pools),
        (
            Control("HS_SUPPLY_001", "the cluster admits only images signed by the stack's signing key",
                    essential=True, where=IMAGES),
            Control("HS_SUPPLY_002", "signature verification enforces, never only audits", where=IMAGES),
            Control("HS_SUPPLY_003", "images from any other registry are refused", where=IMAGES),
            Control("HS_SUPPLY_007", "pinned charts run with the values their review depends on", where=HELM_RELEASES),
            Control("HS_SUPPLY_004", "workload images referenced by digest", where=IMAGES),
            Control("CKV_K8S_43", "workload images referenced by digest", where=IMAGES),
            Control("CKV_AWS_51", "registry tags are immutable", where=REGISTRIES),
            Control("CKV_AWS_163", "images scanned on push", where=REGISTRIES),
            Control("CKV_AWS_136", "registries encrypted with KMS", where=REGISTRIES),
        ),
        ("Model artifacts and datasets are not signed: admission verifies container images, not the weights a "
         "server loads from a bucket.",),
    ),
    Threat(
        "credential-misuse", "Credential misuse",
        ("Spoofing", "Elevation of privilege"),
        (("AML.T0012", "Valid Accounts"), ("AML.T0055", "Unsecured Credentials")),
        "IAM roles or Vault", IDENTITIES,
        (
            Control("HS_IAM_001", "grants name their actions, never wildcards"),
            Control("HS_IAM_002", "roles people assume require a recent MFA sign-in"),
            Control("HS_IAM_003", "no role may pass every role"),
            Control("HS_IAM_004", "permission boundary and one-hour sessions on every role"),
            Control("CKV_AWS_61", "no role trusts a whole account without conditions"),
            Control("CKV_AWS_60", "roles trust named services or principals only"),
            Control("HS_VAULT_001", "Vault tokens and credentials live at most an hour", where=VAULT),
            Control("HS_VAULT_002", "Vault policies name their paths, never sudo", where=VAULT),
            Control("HS_VAULT_003", "people sign in to Vault with MFA", where=VAULT),
            Control("HS_GPU_003", "pods cannot take the node's credentials (IMDSv2, one hop)", where=GPU),
            Control("CKV_AWS_79", "IMDSv1 disabled", where="launch templates"),
            Control("CKV_AWS_67", "every region's API calls are recorded by a trail", where="trails"),
            Control("HS_OPS_002", "GuardDuty watches the cluster and S3 for misused credentials", where="trails"),
        ),
        ("GuardDuty findings reach Security Hub, not the alert routes: nothing pages on a finding.",),
    ),
    Threat(
        "lethal-trifecta", "Lethal-trifecta exfiltration by agents",
        ("Information disclosure", "Elevation of privilege"),
        (("AML.T0051", "LLM Prompt Injection"), ("AML.T0057", "LLM Data Leakage"),
         ("AML.T0025", "Exfiltration via Cyber Means")),
        AGENTS, _agents,
        (
            Control("HS_AGENT_001", "no agent holds private data, untrusted input and a way out, even through calls",
                    essential=True),
            Control("HS_K8S_001", "agents run under the restricted Pod Security Standard"),
            Control("HS_NET_001", "no NAT gateway where regulated data lives", where=NAT),
        ),
    ),
)


# --- coverage of one stack -----------------------------------------------------------------------------------

@dataclass
class ControlState:
    control: Control
    state: str
    title: str
    passed_on: list[str] = field(default_factory=list)  # resource names
    failures: list[Result] = field(default_factory=list)
    exceptions: list[Result] = field(default_factory=list)

    @property
    def mitigates(self) -> bool:
        return self.state == IN_FORCE

    def exceptions_by_reason(self) -> dict[tuple[str, str, str], list[Result]]:
        """The excepted results grouped by their exception's (reason, owner, term), the term being `expires
        <date>` for a blueprint's exception and `by design` for a design exception (which never expires)."""
        out: dict[tuple[str, str, str], list[Result]] = {}
        for r in self.exceptions:
            info = r.exception or {}
            term = "by design" if info.get("by_design") else f"expires {info.get('expires', '')}"
            key = (info.get("reason", ""), info.get("owner", ""), term)
            out.setdefault(key, []).append(r)
        return out


@dataclass
class Coverage:
    threat: Threat
    status: str
    controls: list[ControlState]

    @property
    def in_force(self) -> list[ControlState]:
        return [c for c in self.controls if c.state == IN_FORCE]

    @property
    def not_mitigating(self) -> list[ControlState]:
        return [c for c in self.controls if c.state in (FAILED, EXCEPTED, MISSING)]

    @property
    def not_here(self) -> list[ControlState]:
        return [c for c in self.controls if c.state == NOT_HERE]

    @property
    def left(self) -> list[str]:
        """What is left unmitigated, in words: controls failed, excepted or missing, then the gaps."""
        return self.left_as()

    def left_as(self, code: Callable[[str], str] = str, text: Callable[[str], str] = str, failed: str = "failed",
                gap: str = "") -> list[str]:
        """`left`, with check IDs and resource names passed through `code` and prose through `text` (e.g. for
        Markdown); `failed` is the word for a failure and `gap` prefixes what hardstack does not build yet."""
        if self.status == NOT_APPLICABLE:
            return []
        out = []
        for c in self.not_mitigating:
            cid, does = code(c.control.check_id), text(c.control.does)
            if c.state == FAILED:
                out.append(f"{cid} {failed} on {_names(c.failures, code)}: {does}")
            elif c.state == EXCEPTED:
                for (reason, owner, term), results in c.exceptions_by_reason().items():
                    out.append(f"{cid} excepted on {_names(results, code)}: {does} (reason: {text(reason)}; "
                               f"owner: {text(owner)}; {text(term)})")
            else:
                out.append(f"{cid} has no result in this stack: {does}")
        return out + [gap + text(g) for g in self.threat.gaps]


def name(urn: str) -> str:
    """A resource's Pulumi name from its URN."""
    return urn.rsplit("::", 1)[-1]


def _names(results: list[Result], code: Callable[[str], str] = str) -> str:
    return ", ".join(code(n) for n in sorted({name(r.resource) for r in results}))


def coverage(report: GateReport, inventory: Inventory, threats: tuple[Threat, ...] = THREATS) -> list[Coverage]:
    by_check: dict[str, list[Result]] = {}
    for r in report.results:
        by_check.setdefault(r.check_id, []).append(r)
    out = []
    for threat in threats:
        states = [_state(c, by_check.get(c.check_id, []), report) for c in threat.controls]
        out.append(Coverage(threat, _status(threat, states, threat.applies(inventory)), states))
    return out


def _state(control: Control, results: list[Result], report: GateReport) -> ControlState:
    title = results[0].title if results else (report.metas[control.check_id].title
                                              if control.check_id in report.metas else control.does)
    failed = [r for r in results if r.status == "failed"]
    # a design exception marks a resource the control cannot apply to (e.g. the one bucket load balancers log to,
    # which AWS lets encrypt only with SSE-S3): it neither mitigates nor weakens the threat
    excepted = [r for r in results if r.status == "skipped" and not (r.exception or {}).get("by_design")]
    passed = sorted({name(r.resource) for r in results if r.status == "passed"})
    if failed:
        state = FAILED
    elif excepted:
        state = EXCEPTED
    elif passed:
        state = IN_FORCE
    else:
        state = NOT_HERE if control.where else MISSING
    return ControlState(control, state, title, passed, failed, excepted)


def _status(threat: Threat, states: list[ControlState], applies: bool) -> str:
    if not applies:
        return NOT_APPLICABLE
    if not any(s.mitigates for s in states) or any(s.control.essential and not s.mitigates for s in states):
        return UNMITIGATED
    if all(s.state in (IN_FORCE, NOT_HERE) for s in states) and not threat.gaps:
        return MITIGATED
    return PARTLY
