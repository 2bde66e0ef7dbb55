"""HS_AGENT_001: no agent combines private data, untrusted input and external communication (evaluated by the
gate across every agent's namespace, through the calls between agents)."""

from hardstack.blueprints.agents import AGENT_LABEL, ANNOTATIONS
from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_AGENT_001",
    title="No agent holds the lethal trifecta: private data, untrusted input and external communication",
    severity="CRITICAL",
    area="agents",
    rationale="An agent that reads private data, ingests input nobody vouches for and can send data out can be "
    "steered by instructions injected into that input to exfiltrate the data; prompt filtering does not close it. "
    "Holding the legs through agents it can call is the same: the injected instructions travel with the calls.",
    remediation="Split the agent so that no call path joins the three legs: e.g. the agent that takes untrusted "
    "input neither reads private data nor calls one that does, and private data never reaches an agent with "
    "egress (see the agent-sandbox blueprint).",
    owasp_llm=("LLM01: Prompt Injection", "LLM02: Sensitive Information Disclosure", "LLM06: Excessive Agency"),
    mitre_atlas=("AML.T0051: LLM Prompt Injection", "AML.T0057: LLM Data Leakage",
                 "AML.T0025: Exfiltration via Cyber Means"),
    waivable=False,
    resources=("Namespace",),
)



def agent_flows(objects):  # type: ignore[no-untyped-def]
    """(agent name → its flows, agent name → its namespace's address) from the agents' namespaces."""
    from hardstack.blueprints.agents import AgentFlows

    flows, addresses = {}, {}
    for address, m in objects.items():
        meta = m.get("metadata") or {}
        name = (meta.get("labels") or {}).get(AGENT_LABEL)
        if m.get("kind") != "Namespace" or not name:
            continue
        notes = meta.get("annotations") or {}
        listed = {key: tuple(x for x in str(notes.get(a, "")).split(",") if x) for key, a in ANNOTATIONS.items()}
        flows[name] = AgentFlows(name, **listed)
        addresses[name] = address
    return flows, addresses


def evaluate(objects, version):  # type: ignore[no-untyped-def]
    from hardstack.blueprints.agents import trifecta

    flows, addresses = agent_flows(objects)
    for name in sorted(flows):
        why = trifecta(name, flows)
        yield addresses[name], "failed" if why else "passed", why


def _agent(name, **legs):  # type: ignore[no-untyped-def]
    import pulumi_kubernetes as k8s

    annotations = {ANNOTATIONS[k]: ",".join(v) for k, v in legs.items()}
    k8s.core.v1.Namespace(f"agent-{name}", metadata={"name": f"agent-{name}", "labels": {AGENT_LABEL: name},
                                                     "annotations": annotations})


def passing_two_legs() -> None:
    _agent("triage", untrusted=["public-chat"], calls=["writer"])
    _agent("writer", egress=["tickets.example.com"])


def failing_all_three_directly() -> None:
    _agent("assistant", private=["customer-records"], untrusted=["public-chat"], egress=["api.example.com"])


def failing_through_a_call() -> None:
    _agent("assistant", private=["customer-records"], untrusted=["public-chat"], calls=["writer"])
    _agent("writer", egress=["tickets.example.com"])
