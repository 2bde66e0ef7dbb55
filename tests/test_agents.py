"""LLM agents and the lethal trifecta: the verdict, the gate, and enforcement that matches the declaration.

The verdict is decided on AgentFlows alone (fast, exhaustive); the gate runs on synthesized stacks (the shipped
`agent-sandbox`, a variant that joins the legs, and a user's program composing `Agent` directly); the manifests,
roles and Vault policies of the synthesized `agent-sandbox` are compared with what its agents declare. Each
blueprint is synthesized once per module.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hardstack.blueprints.network import Tier
from hardstack.blueprints.agents import (
    AGENT_LABEL,
    ANNOTATIONS,
    LEGS,
    AgentFlows,
    AgentSpec,
    ProxySpec,
    flows_of,
    legs,
    private_reads,
    reachable,
    trifecta,
    verdicts,
)
from hardstack.blueprints.blueprint import Blueprint
from hardstack.blueprints.loader import LoadedBlueprint, catalog, load
from hardstack.errors import InvalidInputs, SynthError
from hardstack.modules.agents import PRIVATE_RANGES, PROXY, SERVICE_ACCOUNT, squid_config
from hardstack.policies.gate import GateReport, run_gate
from hardstack.stacks.inventory import Inventory, Resource
from hardstack.stacks.targets import synth_loaded

from .gate_helpers import failed
from .helpers import REGISTRY, policy, ref_attr

CHECK = "HS_AGENT_001"
NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
SERVICE_ACCOUNT_K8S = "kubernetes:core/v1:ServiceAccount"
SA_PATCH = "kubernetes:core/v1:ServiceAccountPatch"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
POD_IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
BUCKET = "aws:s3/bucket:Bucket"
REPOSITORY = "aws:ecr/repository:Repository"
CACHE_RULE = "aws:ecr/pullThroughCacheRule:PullThroughCacheRule"
VAULT_POLICY = "vault:index/policy:Policy"
VAULT_K8S_ROLE = "vault:kubernetes/authBackendRole:AuthBackendRole"

DIGEST = "@sha256:" + "ab" * 32
SANDBOX = "agent-sandbox"
TRIAGE, WRITER, ANALYST = "support-triage", "ticket-writer", "records-analyst"
READ_ACTIONS = {"s3:ListBucket", "s3:GetObject", "s3:GetObjectVersion", "kms:Decrypt", "kms:DescribeKey"}
SCRATCH_EXCEPTION = {"owner": "platform-security", "expires": "2099-01-01",
                     "reason": "the triage agent needs the records to answer customers directly"}


# --- 1. the verdict, without synthesis ------------------------------------------------------------------------

HOLDINGS = {"private": ("customer-records",), "untrusted": ("public-chat",), "egress": ("api.example.com",)}
KIND = dict(zip(("private", "untrusted", "egress"), LEGS))
COMBINATIONS = [c for r in range(4) for c in itertools.combinations(HOLDINGS, r)]


def flows(*agents: AgentFlows) -> dict[str, AgentFlows]:
    return {a.name: a for a in agents}


@pytest.mark.parametrize("held", COMBINATIONS, ids=lambda c: "+".join(c) or "nothing")
def test_every_combination_of_legs_held_directly(held: tuple[str, ...]) -> None:
    """All 8 combinations: only the agent that holds all three legs itself fails, and the reason names each leg
    with what gives it; no leg held means no reason at all."""
    agent = AgentFlows("solo", **{k: HOLDINGS[k] for k in held})
    assert set(legs("solo", flows(agent))) == {KIND[k] for k in held}
    verdict = verdicts([agent])["solo"]
    if len(held) == 3:
        assert verdict == ("agent solo combines private data (solo: customer-records); untrusted input "
                           "(solo: public-chat); external communication (solo: api.example.com)")
        assert "through" not in verdict  # held directly: no call path to name
    else:
        assert verdict is None


def test_private_and_untrusted_calling_egress_fails_naming_the_path() -> None:
    a = AgentFlows("a", private=("customer-records",), untrusted=("public-chat",), calls=("b",))
    b = AgentFlows("b", egress=("api.example.com",))
    v = verdicts([a, b])
    assert v["a"] == ("agent a combines private data (a: customer-records); untrusted input (a: public-chat); "
                      "external communication through a → b (b: api.example.com)")
    assert v["b"] is None  # b holds one leg and calls nobody


def test_untrusted_with_egress_calling_private_fails() -> None:
    a = AgentFlows("a", untrusted=("inbound-email",), egress=("api.example.com",), calls=("b",))
    b = AgentFlows("b", private=("secret:crm-readonly",))
    v = verdicts([a, b])
    assert v["a"] is not None
    assert "private data through a → b (b: secret:crm-readonly)" in v["a"]
    assert "untrusted input (a: inbound-email)" in v["a"] and "external communication (a: api.example.com)" in v["a"]
    assert v["b"] is None


def test_legs_spread_over_a_chain_fail_only_the_head() -> None:
    """a (untrusted) → b (private) → c (egress): a reaches all three; b holds two; c holds one."""
    chain = [AgentFlows("a", untrusted=("public-chat",), calls=("b",)),
             AgentFlows("b", private=("customer-records",), calls=("c",)),
             AgentFlows("c", egress=("api.example.com",))]
    v = verdicts(chain)
    assert v["a"] == ("agent a combines private data through a → b (b: customer-records); untrusted input "
                      "(a: public-chat); external communication through a → b → c (c: api.example.com)")
    assert v["b"] is None and v["c"] is None
    assert set(legs("b", flows(*chain))) == {"private data", "external communication"}


def test_two_agent_cycle_terminates_and_spreads_the_legs_both_ways() -> None:
    """a ⇄ b: each reaches what the other holds; with c (egress) behind b, both a and b fail."""
    a = AgentFlows("a", untrusted=("public-chat",), calls=("b",))
    b = AgentFlows("b", private=("customer-records",), calls=("a",))
    assert reachable("a", flows(a, b)) == {"a": ("a",), "b": ("a", "b")}
    assert verdicts([a, b]) == {"a": None, "b": None}  # two legs, however often they go round
    b_out = AgentFlows("b", private=("customer-records",), calls=("a", "c"))
    c = AgentFlows("c", egress=("api.example.com",))
    v = verdicts([a, b_out, c])
    assert v["a"] is not None and "external communication through a → b → c (c: api.example.com)" in v["a"]
    assert v["b"] is not None and "untrusted input through b → a (a: public-chat)" in v["b"]
    assert v["c"] is None


def test_three_agent_cycle_fails_every_member() -> None:
    ring = [AgentFlows("a", private=("customer-records",), calls=("b",)),
            AgentFlows("b", untrusted=("public-chat",), calls=("c",)),
            AgentFlows("c", egress=("api.example.com",), calls=("a",))]
    v = verdicts(ring)
    assert all(v[n] is not None for n in "abc"), v
    assert "external communication through a → b → c" in v["a"]
    assert "private data through c → a" in v["c"] and "untrusted input through c → a → b" in v["c"]


@pytest.mark.parametrize("held, fails", [(("private", "untrusted"), False), (tuple(HOLDINGS), True)])
def test_self_loop_terminates(held: tuple[str, ...], fails: bool) -> None:
    me = AgentFlows("me", calls=("me",), **{k: HOLDINGS[k] for k in held})
    assert reachable("me", flows(me)) == {"me": ("me",)}
    verdict = trifecta("me", flows(me))
    assert (verdict is not None) == fails
    assert verdict is None or "through" not in verdict


@pytest.mark.parametrize("callee", ["idle", "ghost"], ids=["declared-holding-nothing", "undeclared"])
def test_calling_an_agent_that_holds_nothing_adds_no_leg(callee: str) -> None:
    a = AgentFlows("a", private=("customer-records",), untrusted=("public-chat",), calls=(callee,))
    known = flows(a, AgentFlows("idle")) if callee == "idle" else flows(a)
    assert set(legs("a", known)) == {"private data", "untrusted input"}
    assert trifecta("a", known) is None
    assert reachable("a", known)[callee] == ("a", callee)


@pytest.mark.parametrize(
    "agents",
    [
        [AgentFlows("a", private=("r",), calls=("b",)), AgentFlows("b", egress=("x.example.com",))],
        [AgentFlows("a", untrusted=("chat",), calls=("b",)), AgentFlows("b", egress=("x.example.com",))],
        [AgentFlows("a", untrusted=("chat",), calls=("b",)), AgentFlows("b", private=("r",))],
        [AgentFlows("a", calls=("b", "c")), AgentFlows("b", private=("r",)), AgentFlows("c", untrusted=("chat",))],
        # the two legs are spread over callers of a common callee: neither caller reaches the other's leg
        [AgentFlows("a", private=("r",), calls=("c",)), AgentFlows("b", untrusted=("chat",), calls=("c",)),
         AgentFlows("c", calls=("d",)), AgentFlows("d", private=("s",))],
    ],
    ids=["private→egress", "untrusted→egress", "untrusted→private", "fan-out-two-legs", "shared-callee"],
)
def test_two_legs_anywhere_pass(agents: list[AgentFlows]) -> None:
    assert set(verdicts(agents).values()) == {None}


def test_the_nearest_holder_is_named() -> None:
    """a reaches egress at b directly and at d through c: the reason names the shortest path."""
    agents = [AgentFlows("a", private=("r",), untrusted=("chat",), calls=("c", "b")),
              AgentFlows("b", egress=("near.example.com",)), AgentFlows("c", calls=("d",)),
              AgentFlows("d", egress=("far.example.com",))]
    assert "external communication through a → b (b: near.example.com)" in (verdicts(agents)["a"] or "")


def test_private_leg_is_secrets_and_confidential_or_regulated_buckets() -> None:
    bp = load(SANDBOX).blueprint
    assert bp.private_buckets() == {"customer-records"}  # regulated; product-docs is internal
    analyst = next(a for a in bp.agents if a.name == ANALYST)
    triage = next(a for a in bp.agents if a.name == TRIAGE)
    assert private_reads(analyst, bp.private_buckets()) == ("customer-records", "secret:crm-readonly")
    assert private_reads(triage, bp.private_buckets()) == ()  # reads product-docs, internal
    assert flows_of(triage, bp.private_buckets()) == AgentFlows(TRIAGE, (), ("customer-chat",), (), (WRITER,))


def test_shipped_design_and_its_joined_variant_decided_from_the_blueprint() -> None:
    bp = load(SANDBOX).blueprint
    shipped = [flows_of(a, bp.private_buckets()) for a in bp.agents]
    assert verdicts(shipped) == {TRIAGE: None, WRITER: None, ANALYST: None}
    joined = [AgentFlows(f.name, f.private, f.untrusted, f.egress, f.calls + ((ANALYST,) if f.name == TRIAGE else ()))
              for f in shipped]
    assert verdicts(joined) == {
        TRIAGE: (f"agent {TRIAGE} combines private data through {TRIAGE} → {ANALYST} ({ANALYST}: customer-records, "
                 f"secret:crm-readonly); untrusted input ({TRIAGE}: customer-chat); external communication through "
                 f"{TRIAGE} → {WRITER} ({WRITER}: tickets.example.com)"),
        WRITER: None,
        ANALYST: None,
    }


# --- synthesized stacks (once per module) ---------------------------------------------------------------------


def _gate(loaded: LoadedBlueprint, inventory: Inventory) -> GateReport:
    return run_gate(inventory, target=loaded.source, exceptions=loaded.blueprint.exceptions, locate=loaded.locate)


@pytest.fixture(scope="module")
def sandbox() -> tuple[LoadedBlueprint, Inventory]:
    loaded = load(SANDBOX)
    return loaded, synth_loaded(loaded)


@pytest.fixture(scope="module")
def bp(sandbox: tuple[LoadedBlueprint, Inventory]) -> Blueprint:
    return sandbox[0].blueprint


@pytest.fixture(scope="module")
def inv(sandbox: tuple[LoadedBlueprint, Inventory]) -> Inventory:
    return sandbox[1]


@pytest.fixture(scope="module")
def sandbox_report(sandbox: tuple[LoadedBlueprint, Inventory]) -> GateReport:
    return _gate(*sandbox)


def _joined_stack_file(directory: Path, exceptions: list[dict[str, Any]] | None = None) -> Path:
    """A stack file of agent-sandbox in which support-triage also calls records-analyst."""
    stack: dict[str, Any] = {"blueprint": SANDBOX, "name": "sandbox-joined", "overrides": {
        "agents": [{"name": TRIAGE, "calls": [WRITER, ANALYST]}]}}
    if exceptions:
        stack["exceptions"] = exceptions
    path = directory / "joined.yaml"
    path.write_text(yaml.safe_dump(stack, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def joined(tmp_path_factory: pytest.TempPathFactory) -> tuple[LoadedBlueprint, Inventory]:
    loaded = load(_joined_stack_file(tmp_path_factory.mktemp("joined")))
    return loaded, synth_loaded(loaded)


def agent_results(report: GateReport) -> dict[str, tuple[str, str | None]]:
    """HS_AGENT_001's (status, detail) by the Pulumi name of the namespace it judged."""
    return {r.resource.rsplit("::", 1)[1]: (r.status, r.detail) for r in report.results if r.check_id == CHECK}


# --- 2. the gate ----------------------------------------------------------------------------------------------


def test_shipped_sandbox_passes_the_gate(sandbox_report: GateReport) -> None:
    assert sandbox_report.passed, sorted(failed(sandbox_report))
    assert agent_results(sandbox_report) == {f"agent-{n}-namespace": ("passed", None)
                                             for n in (TRIAGE, WRITER, ANALYST)}
    assert sandbox_report.metas[CHECK].waivable is False and sandbox_report.metas[CHECK].severity == "CRITICAL"


def test_joining_the_legs_through_a_call_fails_the_gate(joined: tuple[LoadedBlueprint, Inventory]) -> None:
    """support-triage → records-analyst joins the legs: only the triage agent's namespace fails, and only there."""
    report = _gate(*joined)
    assert failed(report) == {(CHECK, f"agent-{TRIAGE}-namespace")}
    results = agent_results(report)
    status, detail = results.pop(f"agent-{TRIAGE}-namespace")
    assert status == "failed" and detail is not None
    assert f"private data through {TRIAGE} → {ANALYST} ({ANALYST}: customer-records, secret:crm-readonly)" in detail
    assert f"untrusted input ({TRIAGE}: customer-chat)" in detail
    assert f"external communication through {TRIAGE} → {WRITER} ({WRITER}: tickets.example.com)" in detail
    assert results == {f"agent-{WRITER}-namespace": ("passed", None), f"agent-{ANALYST}-namespace": ("passed", None)}


@pytest.mark.parametrize("route", ["stack-file", "blueprint-file"])
def test_trifecta_cannot_be_waived(route: str, tmp_path: Path, joined: tuple[LoadedBlueprint, Inventory]) -> None:
    """An exception for HS_AGENT_001 is refused at the gate, pointing at its file and line, whether declared in a
    stack file or a blueprint. (Exceptions do not change what is synthesized: the joined inventory is reused.)"""
    exception = {"check": CHECK, "resource": f"agent-{TRIAGE}-namespace", **SCRATCH_EXCEPTION}
    if route == "stack-file":
        path = _joined_stack_file(tmp_path, [exception])
    else:
        data = yaml.safe_load(catalog()[SANDBOX].read_text())
        next(a for a in data["agents"] if a["name"] == TRIAGE)["calls"] = [WRITER, ANALYST]
        data["exceptions"].append(exception)
        path = tmp_path / "joined-blueprint.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    loaded = load(path)
    index = [e.check for e in loaded.blueprint.exceptions].index(CHECK)
    with pytest.raises(InvalidInputs) as exc:
        _gate(loaded, joined[1])
    (err,) = exc.value.errors
    assert err.field == f"exceptions[{index}].check"
    assert f"{CHECK} cannot be excepted" in str(err) and "never waives" in str(err)
    assert (err.file, err.line) == loaded.locate("exceptions", index, "check") and err.file == str(path)


# --- 3. a user's program composing Agent ----------------------------------------------------------------------

ASSISTANT = AgentSpec(name="assistant", image=f"registry.example.com/assistant{DIGEST}", entrypoint=True,
                      reads=["customer-records"], untrusted_input=["public-chat"], calls=["courier"])
COURIER = AgentSpec(name="courier", image=f"registry.example.com/courier{DIGEST}", reads=["product-docs"],
                    egress=["api.example.com"])
SQUID = ProxySpec(image=f"registry.example.com/squid{DIGEST}")
REFUSALS = {
    "private-bucket-and-egress": (AgentSpec(name="leaky", image=f"r.example.com/l{DIGEST}", reads=["customer-records"],
                                            egress=["api.example.com"]), "reads private data ['customer-records'] and "
                                  "declares egress: an agent with private data gets no route out"),
    "secret-and-egress": (AgentSpec(name="leaky", image=f"r.example.com/l{DIGEST}", reads=["secret:crm"],
                                    egress=["api.example.com"]),
                          "reads private data ['secret:crm'] and declares egress"),
    "egress-without-proxy": (AgentSpec(name="leaky", image=f"r.example.com/l{DIGEST}", egress=["api.example.com"]),
                             "declares egress: give the egress proxy"),
    "call-without-port": (AgentSpec(name="leaky", image=f"r.example.com/l{DIGEST}", calls=["courier"]),
                          "calls ['courier']: pass their ports in `callees`"),
}


@pytest.fixture(scope="module")
def own_program(tmp_path_factory: pytest.TempPathFactory) -> tuple[LoadedBlueprint, Inventory, dict[str, Exception]]:
    """The agent-sandbox environment without its agents, built by `build`, plus agents the user composes."""
    from hardstack.modules.agents import Agent

    data = yaml.safe_load(catalog()[SANDBOX].read_text())
    del data["agents"], data["agent_egress_proxy"]
    data["name"] = "own-agents"
    path = tmp_path_factory.mktemp("own") / "own-agents.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    loaded = load(path)
    refused: dict[str, Exception] = {}

    def add_agents(env: Any) -> None:
        gateway = loaded.blueprint.compute.cluster.inference_gateway_namespace  # type: ignore[union-attr]
        Agent("agent-assistant", ASSISTANT, env.cluster, env.boundary,
              buckets={"customer-records": env.buckets["customer-records"]}, callees={"courier": COURIER.port},
              gateway_namespace=gateway, vault=env.vault)
        Agent("agent-courier", COURIER, env.cluster, env.boundary,
              buckets={"product-docs": env.buckets["product-docs"]}, callers=["assistant"], proxy=SQUID,
              vault=env.vault)
        for case, (spec, _) in REFUSALS.items():
            try:
                Agent(f"refused-{case}", spec, env.cluster, env.boundary,
                      buckets={b: env.buckets[b] for b in spec.reads if b in env.buckets},
                      proxy=SQUID if case != "egress-without-proxy" else None, vault=env.vault)
            except ValueError as e:
                refused[case] = e

    return loaded, synth_loaded(loaded, on_built=add_agents), refused


def test_user_program_joining_the_legs_fails_the_gate(own_program: Any) -> None:
    loaded, inventory, _ = own_program
    report = _gate(loaded, inventory)
    assert failed(report) == {(CHECK, "agent-assistant-namespace")}
    results = agent_results(report)
    status, detail = results["agent-assistant-namespace"]
    assert status == "failed"
    assert detail == ("agent assistant combines private data (assistant: customer-records); untrusted input "
                      "(assistant: public-chat); external communication through assistant → courier "
                      "(courier: api.example.com)")
    assert results["agent-courier-namespace"] == ("passed", None)


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_agent_component_refuses_what_the_blueprint_refuses(case: str, own_program: Any) -> None:
    _, inventory, refused = own_program
    assert case in refused, f"Agent accepted {case}"
    assert REFUSALS[case][1] in str(refused[case])
    namespaces = {r.inputs["metadata"]["name"] for r in inventory.of_type(NAMESPACE)}
    assert "agent-leaky" not in namespaces  # refused before creating anything


def test_refusal_surfaces_as_a_synth_error(tmp_path: Path) -> None:
    """Uncaught, the component's refusal stops synthesis with its message (the user sees why)."""
    from hardstack.modules.agents import Agent

    data = {"name": "refused", "region": "us-east-1", "classification": "confidential",
            "data": {"buckets": [{"name": "customer-records", "purpose": "general", "classification": "regulated"}]},
            "compute": {"cluster": {}}, "registry": REGISTRY}
    path = tmp_path / "refused.yaml"
    path.write_text(yaml.safe_dump(data))
    spec, needle = REFUSALS["private-bucket-and-egress"]

    def add(env: Any) -> None:
        Agent("leaky", spec, env.cluster, env.boundary, buckets=env.buckets, proxy=SQUID)

    with pytest.raises(SynthError) as exc:
        synth_loaded(load(path), on_built=add)
    assert isinstance(exc.value.__cause__, ValueError) and needle in str(exc.value)


# --- 4. enforcement matches the declaration -------------------------------------------------------------------


def agent_spec(bp: Blueprint, name: str) -> AgentSpec:
    return next(a for a in bp.agents if a.name == name)


def in_namespace(inv: Inventory, type_token: str, namespace: str) -> list[Resource]:
    return [r for r in inv.of_type(type_token) if r.inputs["metadata"].get("namespace") == namespace]


def pulled(inv: Inventory, ref: str) -> str:
    """The reference a pod runs for the blueprint's image `ref` (`<repository>@sha256:...`): a declared family
    comes from the stack's own repository `<stack>/<family>` (its URL), an upstream image from the stack's
    registry through the pull-through cache of its upstream; never from anywhere else, and always by the
    declared digest."""
    repository, digest = ref.split("@", 1)
    own = [r for r in inv.of_type(REPOSITORY) if r.inputs["name"] == f"{SANDBOX}/{repository}"]
    if own:
        return f"{one(own).outputs['repositoryUrl']}@{digest}"
    one([c for c in inv.of_type(CACHE_RULE) if c.inputs["ecrRepositoryPrefix"] == repository.split("/", 1)[0]])
    (host,) = {r.outputs["repositoryUrl"].split("/", 1)[0] for r in inv.of_type(REPOSITORY)}
    return f"{host}/{ref}"


def one(resources: list[Resource]) -> Resource:
    assert len(resources) == 1, [r.name for r in resources]
    return resources[0]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, selector  # no expressions: what is selected is plain to see
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


SAME = "(same namespace)"


def peer(p: dict[str, Any]) -> tuple[Any, ...]:
    """A NetworkPolicy peer made comparable: ("ip", cidr, except) or ("pods", namespace, pod labels)."""
    if "ipBlock" in p:
        assert set(p) == {"ipBlock"}
        return ("ip", p["ipBlock"]["cidr"], tuple(p["ipBlock"].get("except") or ()))
    assert set(p) <= {"namespaceSelector", "podSelector"}, p
    ns = p.get("namespaceSelector")
    if ns is not None:
        assert set(ns) == {"matchLabels"} and set(ns["matchLabels"]) == {"kubernetes.io/metadata.name"}, ns
        namespace = ns["matchLabels"]["kubernetes.io/metadata.name"]
    else:
        namespace = SAME
    pods = p.get("podSelector")
    assert pods is None or (set(pods) == {"matchLabels"} and pods["matchLabels"]), f"pod selector selecting all: {p}"
    return ("pods", namespace, frozenset((pods or {}).get("matchLabels", {}).items()) or None)


def allowed(inv: Inventory, namespace: str, pod_labels: dict[str, str], direction: str) -> set[tuple[Any, ...]]:
    """Every (peer, ports) the pods with these labels may reach (Egress) or be reached from (Ingress): the union
    of the rules of every NetworkPolicy of the namespace selecting them."""
    key, side = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    out: set[tuple[Any, ...]] = set()
    for np in in_namespace(inv, NETWORK_POLICY, namespace):
        spec = np.inputs["spec"]
        if direction not in spec["policyTypes"] or not selects(spec["podSelector"], pod_labels):
            continue
        for rule in spec.get(key) or []:
            assert rule.get(side), f"{np.name}: a rule without peers allows everyone"
            assert rule.get("ports"), f"{np.name}: a rule without ports allows every port"
            ports = frozenset((p["protocol"], p["port"]) for p in rule["ports"])
            out |= {(peer(p), ports) for p in rule[side]}
    return out


DNS = (("pods", "kube-system", frozenset({"k8s-app": "kube-dns"}.items())), frozenset({("UDP", 53), ("TCP", 53)}))


def aws_access(inv: Inventory, spec: AgentSpec) -> tuple[set[tuple[Any, ...]], dict[str, str]]:
    """What an agent that reads buckets gets to reach AWS without a route out: the endpoints tier on 443 and the
    node's Pod Identity agent, and S3's interface endpoint named in its environment; others get nothing."""
    if not [r for r in spec.reads if not r.startswith("secret:")]:
        return set(), {}
    subnets = [ipaddress.ip_network(s.inputs["cidrBlock"]) for s in inv.of_type("aws:ec2/subnet:Subnet")
               if s.inputs["tags"].get("hardstack:tier") == "endpoints"]
    endpoints_cidr = str(load("agent-sandbox").blueprint.network.plan()[Tier.endpoints].block)
    assert subnets and all(n.subnet_of(ipaddress.ip_network(endpoints_cidr)) for n in subnets)  # the tier's block
    s3 = one([e for e in inv.of_type("aws:ec2/vpcEndpoint:VpcEndpoint") if e.name == "network-s3-interface"])
    assert s3.inputs["privateDnsEnabled"] is False and s3.inputs["vpcEndpointType"] == "Interface"
    url = "https://bucket." + s3.outputs["dnsEntries"][0]["dnsName"].removeprefix("*.")
    return ({(("ip", endpoints_cidr, ()), frozenset({("TCP", 443)})),
             (("ip", "169.254.170.23/32", ()), frozenset({("TCP", 80)}))}, {"AWS_ENDPOINT_URL_S3": url})


def pod_labels(inv: Inventory, namespace: str, name: str) -> dict[str, str]:
    deployment = one([d for d in in_namespace(inv, DEPLOYMENT, namespace) if d.inputs["metadata"]["name"] == name])
    labels = deployment.inputs["spec"]["template"]["metadata"]["labels"]
    assert selects({"matchLabels": deployment.inputs["spec"]["selector"]["matchLabels"]}, labels)
    return labels


def ns_of(name: str) -> str:
    return f"agent-{name}"


AGENTS = (TRIAGE, WRITER, ANALYST)


@pytest.mark.parametrize("name", AGENTS)
def test_each_agent_has_its_own_restricted_namespace_declaring_its_legs(name: str, inv: Inventory,
                                                                        bp: Blueprint) -> None:
    spec = agent_spec(bp, name)
    ns = one([r for r in inv.of_type(NAMESPACE) if r.inputs["metadata"]["name"] == ns_of(name)])
    labels = ns.inputs["metadata"]["labels"]
    assert labels[AGENT_LABEL] == name
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    assert labels["pod-security.kubernetes.io/enforce-version"] == "latest"
    declared = {"private": private_reads(spec, bp.private_buckets()), "untrusted": spec.untrusted_input,
                "egress": spec.egress, "calls": spec.calls}
    annotations = {ANNOTATIONS[k]: ",".join(v) for k, v in declared.items() if v}
    assert ns.inputs["metadata"].get("annotations", {}) == annotations
    # every object of the agent lives in that namespace, and nothing else of the stack does
    owned = [r for r in inv if r.type.startswith("kubernetes:") and r.type != NAMESPACE
             and r.inputs.get("metadata", {}).get("namespace") == ns_of(name)]
    assert owned and all(r.parent and r.parent.endswith(f"::agent-{name}") for r in owned)


def test_every_agent_namespace_denies_all_traffic_by_default(inv: Inventory) -> None:
    for name in AGENTS:
        deny = [np.inputs["spec"] for np in in_namespace(inv, NETWORK_POLICY, ns_of(name))
                if np.inputs["metadata"]["name"] == "default-deny-all"]
        assert deny == [{"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}], name


@pytest.mark.parametrize("name", AGENTS)
def test_agent_egress_is_dns_its_callees_and_its_proxy_only(name: str, inv: Inventory, bp: Blueprint) -> None:
    spec = agent_spec(bp, name)
    expected = {DNS} | aws_access(inv, spec)[0]
    for callee in spec.calls:
        callee_spec = agent_spec(bp, callee)
        expected.add((("pods", ns_of(callee), frozenset({AGENT_LABEL: callee}.items())),
                      frozenset({("TCP", callee_spec.port)})))
    if spec.egress:
        assert bp.agent_egress_proxy is not None
        expected.add((("pods", SAME, frozenset({"app.kubernetes.io/name": PROXY}.items())),
                      frozenset({("TCP", bp.agent_egress_proxy.port)})))
    assert allowed(inv, ns_of(name), pod_labels(inv, ns_of(name), name), "Egress") == expected


def test_private_data_agent_has_no_way_out_but_dns_and_the_stacks_aws_endpoints(inv: Inventory, bp: Blueprint) -> None:
    labels = pod_labels(inv, ns_of(ANALYST), ANALYST)
    to_aws, environment = aws_access(inv, agent_spec(bp, ANALYST))
    assert to_aws and allowed(inv, ns_of(ANALYST), labels, "Egress") == {DNS} | to_aws
    vpc = ipaddress.ip_network(str(bp.network.cidr))
    assert all(ipaddress.ip_network(p[1]).subnet_of(vpc) or p[1] == "169.254.170.23/32" for p, _ in to_aws)
    (deployment,) = in_namespace(inv, DEPLOYMENT, ns_of(ANALYST))  # the agent's own; no proxy
    env = {e["name"]: e["value"] for e in deployment.inputs["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env == environment  # S3 through its interface endpoint; no HTTPS_PROXY


@pytest.mark.parametrize("name", AGENTS)
def test_agent_ingress_is_its_callers_and_the_gateway_for_entrypoints(name: str, inv: Inventory, bp: Blueprint) -> None:
    spec = agent_spec(bp, name)
    port = frozenset({("TCP", spec.port)})
    sources = {ns_of(a.name) for a in bp.agents if name in a.calls}
    if spec.entrypoint or spec.untrusted_input:
        sources.add(bp.compute.cluster.inference_gateway_namespace)  # type: ignore[union-attr]
    expected = {(("pods", s, None), port) for s in sources}
    assert allowed(inv, ns_of(name), pod_labels(inv, ns_of(name), name), "Ingress") == expected
    assert {TRIAGE: {"inference-gateway"}, WRITER: {ns_of(TRIAGE)}, ANALYST: {"inference-gateway"}}[name] == sources


def test_calls_are_allowed_at_both_ends_and_reach_the_callee_pods(inv: Inventory, bp: Blueprint) -> None:
    """For every declared call the caller may send and the callee may receive, on the port its Service forwards to
    and its container serves; for every undeclared pair, neither."""
    for caller, callee in itertools.product(AGENTS, AGENTS):
        if caller == callee:
            continue
        callee_labels = pod_labels(inv, ns_of(callee), callee)
        service = one([s for s in in_namespace(inv, SERVICE, ns_of(callee)) if s.inputs["metadata"]["name"] == callee])
        (svc_port,) = service.inputs["spec"]["ports"]
        assert selects({"matchLabels": service.inputs["spec"]["selector"]}, callee_labels)
        out = {(p, ports) for p, ports in allowed(inv, ns_of(caller), pod_labels(inv, ns_of(caller), caller), "Egress")
               if p[1] == ns_of(callee) and selects({"matchLabels": dict(p[2] or {})}, callee_labels)
               and ("TCP", svc_port["targetPort"]) in ports}
        into = {p for p, ports in allowed(inv, ns_of(callee), callee_labels, "Ingress")
                if p[1] == ns_of(caller) and ("TCP", svc_port["targetPort"]) in ports}
        declared = callee in agent_spec(bp, caller).calls
        assert bool(out) == declared and bool(into) == declared, (caller, callee)


def test_the_proxy_reaches_only_public_https_and_only_its_agent_reaches_it(inv: Inventory, bp: Blueprint) -> None:
    ns = ns_of(WRITER)
    labels = pod_labels(inv, ns, PROXY)
    assert allowed(inv, ns, labels, "Egress") == {
        DNS, (("ip", "0.0.0.0/0", tuple(PRIVATE_RANGES)), frozenset({("TCP", 443)}))}
    agent = frozenset({AGENT_LABEL: WRITER, "app.kubernetes.io/name": WRITER}.items())
    assert allowed(inv, ns, labels, "Ingress") == {(("pods", SAME, agent), frozenset({("TCP", 3128)}))}
    excluded = [ipaddress.ip_network(c) for c in PRIVATE_RANGES]
    inside = [ipaddress.ip_network(str(bp.network.cidr)), ipaddress.ip_network("169.254.169.254/32"),
              ipaddress.ip_network("169.254.170.23/32")]  # the VPC, IMDS, the Pod Identity agent
    assert all(any(n.subnet_of(x) for x in excluded) for n in inside)  # type: ignore[arg-type]
    # the agent's pods are not the proxy's: no proxy rule applies to them
    assert not selects({"matchLabels": {"app.kubernetes.io/name": PROXY}}, pod_labels(inv, ns, WRITER))


def test_only_agents_with_egress_get_a_proxy(inv: Inventory, bp: Blueprint) -> None:
    with_proxy = {d.inputs["metadata"]["namespace"] for d in inv.of_type(DEPLOYMENT)
                  if d.inputs["metadata"]["name"] == PROXY}
    assert with_proxy == {ns_of(a.name) for a in bp.agents if a.egress} == {ns_of(WRITER)}


def squid_acl(config: str) -> tuple[list[str], list[str]]:
    """(the domains of the `allowed` ACL, the http_access rules in order) of a squid.conf."""
    lines = config.splitlines()
    (acl,) = [line.split()[3:] for line in lines if line.startswith("acl allowed dstdomain ")]
    return [d for d in acl if not d.startswith("-")], [line for line in lines if line.startswith("http_access")]


def test_squid_allows_exactly_the_declared_hosts(inv: Inventory, bp: Blueprint) -> None:
    config_map = one(in_namespace(inv, CONFIG_MAP, ns_of(WRITER)))
    proxy = one([d for d in in_namespace(inv, DEPLOYMENT, ns_of(WRITER)) if d.inputs["metadata"]["name"] == PROXY])
    pod = proxy.inputs["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if "configMap" in v]
    assert volume["configMap"]["name"] == config_map.inputs["metadata"]["name"]
    (container,) = pod["containers"]
    assert container["args"] == ["-N", "-f", "/etc/squid/squid.conf"]
    assert {"name": volume["name"], "mountPath": "/etc/squid", "readOnly": True} in container["volumeMounts"]
    domains, rules = squid_acl(config_map.inputs["data"]["squid.conf"])
    assert domains == agent_spec(bp, WRITER).egress == ["tickets.example.com"]
    assert rules == ["http_access deny !CONNECT", "http_access deny !SSL_ports", "http_access allow CONNECT allowed",
                     "http_access deny all"]
    port = bp.agent_egress_proxy.port  # type: ignore[union-attr]
    assert f"http_port {port}" in config_map.inputs["data"]["squid.conf"].splitlines()


HARDENED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                      "readOnlyRootFilesystem": True, "runAsNonRoot": True, "runAsUser": 10001}
HARDENED_POD = {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"}}


def hardened_pod(pod: dict[str, Any]) -> Iterator[dict[str, Any]]:
    assert pod["securityContext"] == HARDENED_POD
    assert pod["automountServiceAccountToken"] is False
    assert pod["runtimeClassName"] == "sandboxed"
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    for c in pod["containers"]:
        assert c["securityContext"] == HARDENED_CONTAINER
        assert re.search(r"@sha256:[0-9a-f]{64}$", c["image"]) and c["imagePullPolicy"] == "Always"
        assert c["resources"]["limits"] and c["resources"]["requests"]
        yield c


@pytest.mark.parametrize("name", AGENTS)
def test_deployment_runs_the_declared_image_hardened(name: str, inv: Inventory, bp: Blueprint) -> None:
    spec = agent_spec(bp, name)
    deployment = one([d for d in in_namespace(inv, DEPLOYMENT, ns_of(name)) if d.inputs["metadata"]["name"] == name])
    assert deployment.inputs["spec"]["replicas"] == spec.replicas
    pod = deployment.inputs["spec"]["template"]["spec"]
    assert bp.compute.cluster.sandbox_runtime == "gvisor"  # type: ignore[union-attr]
    assert pod["serviceAccountName"] == SERVICE_ACCOUNT == "agent"
    (container,) = hardened_pod(pod)
    assert container["image"] == pulled(inv, spec.image)
    assert container["ports"] == [{"containerPort": spec.port, "name": "serve"}]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": spec.health_path, "port": spec.port}
    env = {e["name"]: e["value"] for e in container.get("env") or []}
    to_aws = aws_access(inv, spec)[1]
    for key, value in to_aws.items():
        assert env.pop(key) == value
    if spec.egress:
        proxy_service = one([s for s in in_namespace(inv, SERVICE, ns_of(name))
                             if s.inputs["metadata"]["name"] == PROXY])
        (port,) = proxy_service.inputs["spec"]["ports"]
        assert env == {"HTTPS_PROXY": f"http://{PROXY}.{ns_of(name)}.svc.cluster.local:{port['port']}",
                       "NO_PROXY": ".svc,.cluster.local"}
        assert selects({"matchLabels": proxy_service.inputs["spec"]["selector"]}, pod_labels(inv, ns_of(name), PROXY))
    else:
        assert env == {}
    # the service account and the namespace's default one mount no API token
    accounts = {a.inputs["metadata"]["name"]: a.inputs["automountServiceAccountToken"]
                for a in in_namespace(inv, SERVICE_ACCOUNT_K8S, ns_of(name))}
    assert accounts == ({"agent": False, PROXY: False} if spec.egress else {"agent": False})
    patch = one(in_namespace(inv, SA_PATCH, ns_of(name)))
    assert patch.inputs["metadata"]["name"] == "default" and patch.inputs["automountServiceAccountToken"] is False


def test_proxy_runs_hardened_from_the_declared_image_with_no_identity(inv: Inventory, bp: Blueprint) -> None:
    """The proxy runs under its own service account: the agent's Pod Identity role and Vault login, bound to the
    service account `agent`, never reach the process that talks to the internet."""
    proxy = one([d for d in in_namespace(inv, DEPLOYMENT, ns_of(WRITER)) if d.inputs["metadata"]["name"] == PROXY])
    pod = proxy.inputs["spec"]["template"]["spec"]
    (container,) = hardened_pod(pod)
    assert container["image"] == pulled(inv, bp.agent_egress_proxy.image)  # type: ignore[union-attr]
    assert pod["serviceAccountName"] == PROXY != SERVICE_ACCOUNT
    bound = {(a.inputs["namespace"], a.inputs["serviceAccount"]) for a in inv.of_type(POD_IDENTITY)}
    bound |= {(ns, sa) for r in inv.of_type(VAULT_K8S_ROLE) for ns in r.inputs["boundServiceAccountNamespaces"]
              for sa in r.inputs["boundServiceAccountNames"]}
    assert (ns_of(WRITER), PROXY) not in bound and (ns_of(WRITER), SERVICE_ACCOUNT) in bound


def role_of(inv: Inventory, name: str) -> Resource:
    return inv.named(f"agent-{name}-identity-role", ROLE)


@pytest.mark.parametrize("name", AGENTS)
def test_pod_identity_binds_the_agents_service_account_to_its_role(name: str, inv: Inventory) -> None:
    association = inv.named(f"agent-{name}-identity-pod-identity", POD_IDENTITY)
    assert association.inputs["namespace"] == ns_of(name) and association.inputs["serviceAccount"] == "agent"
    assert ref_attr(association, "roleArn") == (role_of(inv, name).urn, "arn")
    trust = policy(role_of(inv, name), "assumeRolePolicy")["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "pods.eks.amazonaws.com"}]
    assert role_of(inv, name).inputs["permissionsBoundary"]
    associations = [a for a in inv.of_type(POD_IDENTITY) if a.inputs["namespace"] == ns_of(name)]
    assert associations == [association]


@pytest.mark.parametrize("name", AGENTS)
def test_agent_role_reads_exactly_its_declared_buckets(name: str, inv: Inventory, bp: Blueprint) -> None:
    role = role_of(inv, name)
    inline = [p for p in inv.of_type(ROLE_POLICY) if p.refs_to(role.urn)]
    assert not [a for a in inv.of_type(ATTACHMENT) if a.refs_to(role.urn)]
    declared = [r for r in agent_spec(bp, name).reads if not r.startswith("secret:")]
    arns = {b: inv.named(f"{b}-bucket", BUCKET).outputs["arn"] for b in declared}
    s3_resources, actions = set(), set()
    for p in inline:
        for statement in policy(p)["Statement"]:
            assert statement["Effect"] == "Allow"
            actions |= set(statement["Action"])
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            if statement["Action"][0].startswith("kms:"):
                assert statement["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}
            else:
                s3_resources |= set(resources)
    assert s3_resources == {x for arn in arns.values() for x in (arn, f"{arn}/*")}
    assert actions <= READ_ACTIONS
    assert len(inline) == len(declared)
    assert {TRIAGE: ["product-docs"], WRITER: [], ANALYST: ["customer-records"]}[name] == declared


def test_vault_grants_the_analyst_exactly_its_secret(inv: Inventory, bp: Blueprint) -> None:
    prefix = bp.identity.vault.mount_prefix or SANDBOX  # type: ignore[union-attr]
    vault_policy = inv.named(f"vault-agent-{ANALYST}", VAULT_POLICY)
    rules = {m[0]: json.loads(m[1]) for m in
             re.findall(r'path ("[^"]*") \{\n  capabilities = (\[[^\]]*\])\n\}\n', vault_policy.inputs["policy"])}
    assert {json.loads(k): v for k, v in rules.items()} == {f"{prefix}/kv/data/agents/{ANALYST}/crm-readonly": ["read"]}
    assert re.sub(r'path "[^"]*" \{\n  capabilities = \[[^\]]*\]\n\}\n', "", vault_policy.inputs["policy"]) == ""
    role = inv.named(f"vault-agent-{ANALYST}", VAULT_K8S_ROLE)
    assert role.inputs["boundServiceAccountNames"] == ["agent"]
    assert role.inputs["boundServiceAccountNamespaces"] == [ns_of(ANALYST)]
    assert len(role.inputs["tokenPolicies"]) == 1 and ref_attr(role, "tokenPolicies", 0)[0] == vault_policy.urn
    # the agents without secrets get no Vault policy or login role
    agent_roles = [r for r in inv.of_type(VAULT_K8S_ROLE)
                   if any(ns.startswith("agent-") for ns in r.inputs["boundServiceAccountNamespaces"])]
    assert agent_roles == [role]
    assert [p.name for p in inv.of_type(VAULT_POLICY) if "-agent-" in p.inputs["name"]] == [vault_policy.name]


def test_joined_variant_opens_exactly_the_new_call(joined: tuple[LoadedBlueprint, Inventory]) -> None:
    """The network follows the declaration: declaring support-triage → records-analyst opens that path (and only
    that one) at both ends, which is what the gate refuses."""
    _, jinv = joined
    triage_out = allowed(jinv, ns_of(TRIAGE), pod_labels(jinv, ns_of(TRIAGE), TRIAGE), "Egress")
    assert {p[1] for p, _ in triage_out if p[0] == "pods"} == {"kube-system", ns_of(WRITER), ns_of(ANALYST)}
    into = allowed(jinv, ns_of(ANALYST), pod_labels(jinv, ns_of(ANALYST), ANALYST), "Ingress")
    assert {p[1] for p, _ in into} == {ns_of(TRIAGE), "inference-gateway"}


# --- 5. the spec's rules, through the loader ------------------------------------------------------------------


def _agent(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in data["agents"] if a["name"] == name)


SPEC_ERRORS = {
    "no-compute": (lambda d: d.pop("compute"), None, None, "agents run on the cluster: declare compute"),
    "duplicate-name": (lambda d: d["agents"].append(dict(_agent(d, WRITER))), None, None,
                       "duplicate agent names ['ticket-writer']; allowed: each name once"),
    "undeclared-callee": (lambda d: _agent(d, TRIAGE)["calls"].append("ghost"), None, None,
                          "agent 'support-triage' calls undeclared agents ['ghost']; declared: "
                          "['records-analyst', 'support-triage', 'ticket-writer']"),
    "undeclared-bucket": (lambda d: _agent(d, TRIAGE)["reads"].append("nowhere"), None, None,
                          "agent 'support-triage' reads undeclared buckets ['nowhere']; declared: "
                          "['customer-records', 'product-docs']"),
    "private-bucket-and-egress": (lambda d: _agent(d, ANALYST).update(reads=["customer-records"],
                                                                      egress=["api.example.com"]), None, None,
                                  "agent 'records-analyst' reads private data and declares egress ['api.example.com']; "
                                  "an agent with private data gets no route out"),
    "secret-and-egress": (lambda d: _agent(d, ANALYST).update(reads=["secret:crm-readonly"],
                                                              egress=["api.example.com"]), None, None,
                          "agent 'records-analyst' reads private data and declares egress"),
    # a bucket without its own classification inherits the blueprint's (confidential here): private
    "inherited-confidential-and-egress": (
        lambda d: (d["data"]["buckets"].append({"name": "notes", "purpose": "general"}),
                   _agent(d, WRITER).update(reads=["notes"])),
        None, None, "agent 'ticket-writer' reads private data and declares egress"),
    "egress-without-proxy": (lambda d: d.pop("agent_egress_proxy"), None, None,
                             "agent 'ticket-writer' declares egress: set agent_egress_proxy"),
    "egress-without-nat": (lambda d: d["network"].update(egress="none"), None, None,
                           "agent 'ticket-writer' declares egress but network.egress is 'none'; allowed: nat"),
    "image-by-tag": (lambda d: _agent(d, TRIAGE).update(image="registry.example.com/agents/triage:latest"),
                     "agents[0].image", "triage:latest", "string should match pattern"),
    "image-short-digest": (lambda d: _agent(d, TRIAGE).update(image="registry.example.com/t@sha256:abc"),
                           "agents[0].image", "t@sha256:abc", "string should match pattern"),
    "proxy-by-tag": (lambda d: d["agent_egress_proxy"].update(image="squid:6"), "agent_egress_proxy.image",
                     "squid:6", "string should match pattern"),
    "host-injecting-a-directive": (lambda d: _agent(d, WRITER).update(egress=["a.com\nhttp_access allow all"]),
                                   "agents[1].egress[0]", "a.com", "string should match pattern"),
    "host-an-ip": (lambda d: _agent(d, WRITER).update(egress=["203.0.113.7"]), "agents[1].egress[0]",
                   "203.0.113.7", "string should match pattern"),
    "host-with-port": (lambda d: _agent(d, WRITER).update(egress=["tickets.example.com:443"]), "agents[1].egress[0]",
                       "tickets.example.com:443", "string should match pattern"),
    "host-wildcard-tld": (lambda d: _agent(d, WRITER).update(egress=["*.com"]), "agents[1].egress[0]", "'*.com'",
                          "string should match pattern"),
    "duplicate-host": (lambda d: _agent(d, WRITER).update(egress=["a.example.com", "a.example.com"]),
                       "agents[1].egress", "egress:", "['a.example.com'] listed more than once"),
    "duplicate-call": (lambda d: _agent(d, TRIAGE).update(calls=[WRITER, WRITER]), "agents[0].calls", "calls:",
                       "['ticket-writer'] listed more than once"),
    "duplicate-read": (lambda d: _agent(d, ANALYST).update(reads=["customer-records", "customer-records"]),
                       "agents[2].reads", "reads:", "['customer-records'] listed more than once"),
    "agent-named-like-the-proxy": (lambda d: _agent(d, WRITER).update(name="egress-proxy"), "agents[1].name",
                                   "egress-proxy", "'egress-proxy' is the egress proxy's name"),
    "unknown-setting": (lambda d: _agent(d, TRIAGE).update(tools=["shell"]), "agents[0].tools", "tools:",
                        "unknown setting"),
}


@pytest.mark.parametrize("case", sorted(SPEC_ERRORS))
def test_invalid_agents_are_refused_with_a_clear_error(case: str, tmp_path: Path) -> None:
    change, field, on_line, needle = SPEC_ERRORS[case]
    data = yaml.safe_load(catalog()[SANDBOX].read_text())
    change(data)
    path = tmp_path / "bp.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(InvalidInputs) as exc:
        load(path)
    errors = [e for e in exc.value.errors if needle in str(e)]
    assert errors, str(exc.value)
    err = errors[0]
    assert err.file == str(path)
    if field is not None:
        assert err.field == field
        assert err.line and on_line in path.read_text().splitlines()[err.line - 1], (err.line, on_line)


def test_shipped_sandbox_is_valid_as_is() -> None:
    """The control for the table above: every case changes one thing of a blueprint that loads."""
    assert [a.name for a in load(SANDBOX).blueprint.agents] == [TRIAGE, WRITER, ANALYST]


# --- 6. the proxy's configuration -----------------------------------------------------------------------------


def test_wildcards_become_squid_domains_and_hosts_are_sorted() -> None:
    domains, rules = squid_acl(squid_config(["zeta.example.org", "*.example.com", "api.example.net"], 3128))
    assert domains == [".example.com", "api.example.net", "zeta.example.org"]
    assert rules[-1] == "http_access deny all" and [r for r in rules if " allow " in r] == [
        "http_access allow CONNECT allowed"]


def test_squid_never_matches_an_ip_by_its_reverse_dns() -> None:
    """Without `-n`, Squid's dstdomain resolves the PTR of a CONNECT to a bare IP and matches that name: whoever
    controls the reverse zone of an IP could make it pass as an allowed host."""
    (acl,) = [line for line in squid_config(["tickets.example.com"], 3128).splitlines() if " dstdomain " in line]
    assert acl == "acl allowed dstdomain -n tickets.example.com"


def test_squid_config_is_always_the_same_directives() -> None:
    config = squid_config(["tickets.example.com"], 4000)
    assert [line.split()[0] for line in config.splitlines()] == [
        "http_port", "acl", "acl", "acl", "http_access", "http_access", "http_access", "http_access", "cache",
        "access_log", "cache_log", "pid_filename"]
    assert config.splitlines()[0] == "http_port 4000" and config.endswith("\n")


@pytest.mark.parametrize("host", ["a.com\nhttp_access allow all", "a.com http_access", "a.com\n", "a.com#",
                                  "A.COM", "a.*.com", "*", "localhost", "a..com", "-a.com", "a.com.", "a.com/x"])
def test_hosts_that_could_alter_the_proxy_config_are_refused(host: str) -> None:
    with pytest.raises(ValidationError, match="(?i)string should match pattern"):
        AgentSpec(name="writer", image=f"r.example.com/w{DIGEST}", egress=[host])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.from_regex(r"\A(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.){1,3}[a-z]{2,6}\Z"),
                          st.text(alphabet="ab.*-\n \t#\"'\\;:/", min_size=1, max_size=12)),
                min_size=1, max_size=4, unique=True))
def test_any_host_that_validates_stays_one_token_of_the_acl(hosts: list[str]) -> None:
    """Whatever passes AgentSpec validation renders to the same directives, each host one token of the ACL."""
    try:
        spec = AgentSpec(name="writer", image=f"r.example.com/w{DIGEST}", egress=hosts)
    except ValidationError:
        return
    config = squid_config(spec.egress, 3128)
    assert len(config.splitlines()) == 12
    domains, rules = squid_acl(config)
    assert domains == sorted(h.removeprefix("*") for h in hosts)
    assert rules == ["http_access deny !CONNECT", "http_access deny !SSL_ports", "http_access allow CONNECT allowed",
                     "http_access deny all"]
