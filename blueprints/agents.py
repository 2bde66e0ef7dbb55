"""LLM agents and the lethal trifecta: no agent may, directly or through the agents it can call, read private
data, take untrusted input and communicate externally."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Mapping, Sequence

from pydantic import Field, StringConstraints, field_validator

from .base import Name, Spec, duplicates
from .supply_chain import ImageRef

Hostname = Annotated[str, StringConstraints(pattern=r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")]
SecretName = Annotated[str, StringConstraints(pattern=r"^secret:[a-z][a-z0-9-]{0,62}$")]

LEGS = ("private data", "untrusted input", "external communication")

PROXY = "egress-proxy"
"""The name (and `app.kubernetes.io/name`) of the egress proxy in an agent's namespace: no agent may take it."""

AGENT_LABEL = "hardstack.io/agent"
ANNOTATIONS = {
    "private": "hardstack.io/private-data",
    "untrusted": "hardstack.io/untrusted-input",
    "egress": "hardstack.io/egress",
    "calls": "hardstack.io/calls",
}
"""How an agent's namespace declares its legs (comma-separated): written by the Agent component, read by the
gate's trifecta check."""


class ProxySpec(Spec):
    """The egress proxy of agents that declare egress: Squid, allowing HTTPS to the declared hosts only."""

    image: ImageRef
    """A Squid image of the stack's registry by digest (e.g. `ecr-public/ubuntu/squid@sha256:...` through a
    pull-through cache)."""

    port: int = Field(3128, ge=1024, le=65535)
    """The proxy's port."""


class AgentSpec(Spec):
    """An LLM agent (or an MCP server acting for one), with everything it can touch declared."""

    name: Name
    """The agent's name; it runs in its own namespace `agent-<name>`."""

    image: ImageRef
    """The agent's container image in the stack's registry, by digest (`<repository>@sha256:...`)."""

    port: int = Field(8080, ge=1024, le=65535)
    """The port it serves on (for agents that call it)."""

    health_path: str = Field("/healthz", pattern=r"^/[\w./-]*$")
    """HTTP path of its liveness and readiness probes."""

    reads: list[Name | SecretName] = []
    """Buckets it may read (private when classified confidential or regulated) and Vault secrets
    (`secret:<name>`, always private). Unset: nothing."""

    untrusted_input: list[Name] = []
    """Sources of input nobody vouches for that it ingests: public endpoints, inbound email, web pages, uploaded
    files. Any declared source counts. Unset: none."""

    egress: list[Hostname] = []
    """Hosts outside the VPC it may reach, through its egress proxy (a domain allowlist). Unset: none."""

    calls: list[Name] = []
    """Other agents (or MCP servers) it may invoke. Unset: none."""

    entrypoint: bool = False
    """People or clients reach it through the inference gateway. Whatever of that input comes from outside the
    organisation must be listed in `untrusted_input` (agents with untrusted input are entrypoints anyway)."""

    replicas: int = Field(1, ge=1, le=20)
    """Pods running the agent."""

    @field_validator("name")
    @classmethod
    def _not_the_proxy(cls, v: str) -> str:
        if v == PROXY:
            raise ValueError(f"{PROXY!r} is the egress proxy's name in the agent's namespace (its pods would get the "
                             "proxy's way out); allowed: any other name")
        return v

    @field_validator("reads", "untrusted_input", "egress", "calls")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        dupes = duplicates(v)
        if dupes:
            raise ValueError(f"{dupes} listed more than once")
        return v


@dataclass(frozen=True)
class Leg:
    """One leg an agent holds: which leg, the agent that holds it directly, what gives it, and the call path."""

    kind: str
    holder: str
    because: tuple[str, ...]
    path: tuple[str, ...]

    def describe(self) -> str:
        via = f"through {' → '.join(self.path)} " if len(self.path) > 1 else ""
        return f"{self.kind} {via}({self.holder}: {', '.join(self.because)})"


@dataclass(frozen=True)
class AgentFlows:
    """What an agent declares, reduced to the three legs (the check's input, from a blueprint or manifests)."""

    name: str
    private: tuple[str, ...] = ()
    untrusted: tuple[str, ...] = ()
    egress: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()


def reachable(start: str, flows: Mapping[str, AgentFlows]) -> dict[str, tuple[str, ...]]:
    """Every agent `start` can reach through calls (itself included), each with the shortest call path; cycles
    and calls to undeclared agents are handled (an undeclared callee holds no leg we know of)."""
    paths = {start: (start,)}
    frontier = [start]
    while frontier:
        nxt = []
        for name in frontier:
            for callee in sorted(flows[name].calls if name in flows else ()):
                if callee not in paths:
                    paths[callee] = paths[name] + (callee,)
                    nxt.append(callee)
        frontier = nxt
    return paths


def legs(start: str, flows: Mapping[str, AgentFlows]) -> dict[str, Leg]:
    """The legs `start` holds, directly or through agents it can call (the nearest holder of each)."""
    found: dict[str, Leg] = {}
    for name, path in sorted(reachable(start, flows).items(), key=lambda item: (len(item[1]), item[0])):
        flow = flows.get(name)
        if flow is None:
            continue
        for kind, because in zip(LEGS, (flow.private, flow.untrusted, flow.egress)):
            if because and kind not in found:
                found[kind] = Leg(kind, name, tuple(because), path)
    return found


def trifecta(start: str, flows: Mapping[str, AgentFlows]) -> str | None:
    """Why `start` holds all three legs (naming each path), or None when it holds two or fewer."""
    held = legs(start, flows)
    if len(held) < len(LEGS):
        return None
    return f"agent {start} combines " + "; ".join(held[k].describe() for k in LEGS)


def verdicts(flows: Sequence[AgentFlows]) -> dict[str, str | None]:
    by_name = {f.name: f for f in flows}
    return {f.name: trifecta(f.name, by_name) for f in flows}


def private_reads(agent: AgentSpec, private_buckets: set[str]) -> tuple[str, ...]:
    """What the agent reads that is private: secrets, and buckets classified confidential or regulated."""
    return tuple(r for r in agent.reads if r.startswith("secret:") or r in private_buckets)


def flows_of(agent: AgentSpec, private_buckets: set[str]) -> AgentFlows:
    return AgentFlows(agent.name, private_reads(agent, private_buckets), tuple(agent.untrusted_input),
                      tuple(agent.egress), tuple(agent.calls))
