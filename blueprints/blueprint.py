"""The root of a blueprint and of a stack file."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints, ValidationInfo, field_validator

from .agents import AgentSpec, ProxySpec, private_reads
from .base import Classification, Name, Spec, duplicates
from .compute import ComputeSpec
from .data import DataSpec
from .endpoints import EndpointSpec
from .exceptions import ExceptionSpec
from .identity import IdentitySpec
from .kms import KmsSpec
from .network import NetworkSpec
from .operations import AuditSpec, MonitoringSpec
from .supply_chain import RegistrySpec

Region = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")]
TagKey = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\w .:/=+@-]+$")]
TagValue = Annotated[str, StringConstraints(max_length=256, pattern=r"^[\w .:/=+@-]*$")]

RESERVED_TAG_PREFIXES = ("aws:", "hardstack:")


def private_buckets(data: DataSpec, classification: Classification) -> set[str]:
    """Buckets holding private data: classified confidential or regulated."""
    return {b.name for b in data.buckets if b.effective_classification(classification).at_least(Classification.confidential)}


class Blueprint(Spec):
    """A hardened AI environment. Every section is optional and secure by default."""

    name: Name
    """The blueprint's name; also the default stack name."""

    description: str = ""
    """What the environment is for."""

    extends: str | None = None
    """A shipped blueprint's name or a path (relative to this file) whose settings this one starts from; its
    exceptions are kept and this blueprint's own are added."""

    classification: Classification = Classification.regulated
    """The highest class of data the stack holds; it drives controls such as object lock. Unset: regulated."""

    region: Region
    """The AWS region of the stack, e.g. us-east-1."""

    tags: dict[TagKey, TagValue] = {}
    """Tags added to every AWS resource, besides `hardstack:stack` and `hardstack:component`."""

    kms: KmsSpec = KmsSpec()
    """Customer-managed keys."""

    data: DataSpec = DataSpec()
    """Data sets and their buckets."""

    network: NetworkSpec = NetworkSpec()
    """The segmented VPC."""

    compute: ComputeSpec | None = None
    """The EKS cluster with its GPU pools and tenants. Unset: no cluster."""

    registry: RegistrySpec | None = Field(None, validate_default=True)
    """The stack's signed registry; required with a cluster, which admits only its signed images."""

    identity: IdentitySpec = IdentitySpec()
    """Persona roles and just-in-time access."""

    agent_egress_proxy: ProxySpec | None = None
    """The proxy through which agents with `egress` reach their hosts; required when any agent has egress."""

    agents: list[AgentSpec] = []
    """LLM agents, each in its own namespace with exactly the data, inputs, egress and calls it declares; the gate
    refuses any agent that combines private data, untrusted input and external communication."""

    endpoints: list[EndpointSpec] = []
    """Inference endpoints, each a WAF-fronted TLS 1.3 load balancer in front of a tenant's Service."""

    audit: AuditSpec = AuditSpec()
    """The audit trail and threat detection of the stack's account and region."""

    monitoring: MonitoringSpec | None = Field(None, validate_default=True)
    """Model and service monitoring on the cluster. Unset: the defaults when there is a cluster, else none."""

    exceptions: list[ExceptionSpec] = []
    """Failed checks accepted on purpose, each with reason, owner and expiry (shown in every report)."""

    def private_buckets(self) -> set[str]:
        return private_buckets(self.data, self.classification)

    @field_validator("agents")
    @classmethod
    def _agents(cls, agents: list[AgentSpec], info: ValidationInfo) -> list[AgentSpec]:
        """Checked as the `agents` setting (errors point at it); the sections it refers to are validated first."""
        if not agents:
            return agents
        known = info.data
        if any(section not in known for section in ("compute", "data", "network")):  # invalid: reported there
            return agents
        if not known["compute"]:
            raise ValueError("agents run on the cluster: declare compute")
        names = [a.name for a in agents]
        dupes = duplicates(names)
        if dupes:
            raise ValueError(f"duplicate agent names {dupes}; allowed: each name once")
        data, network = known["data"], known["network"]
        buckets = {b.name for b in data.buckets}
        private = private_buckets(data, known.get("classification", Classification.regulated))
        registry = known.get("registry")
        for agent in agents:
            wrong_source = registry.source_of(agent.image) if registry else None
            if wrong_source:
                raise ValueError(f"agent {agent.name!r} image: {wrong_source}")
            unknown = sorted(set(agent.calls) - set(names))
            if unknown:
                raise ValueError(f"agent {agent.name!r} calls undeclared agents {unknown}; declared: {sorted(names)}")
            missing = sorted(r for r in agent.reads if not r.startswith("secret:") and r not in buckets)
            if missing:
                raise ValueError(f"agent {agent.name!r} reads undeclared buckets {missing}; declared: {sorted(buckets)}")
            if agent.egress and private_reads(agent, private):
                raise ValueError(f"agent {agent.name!r} reads private data and declares egress {agent.egress}; an "
                                 "agent with private data gets no route out: give the egress to an agent it calls")
            if agent.egress and "agent_egress_proxy" in known and known["agent_egress_proxy"] is None:
                raise ValueError(f"agent {agent.name!r} declares egress: set agent_egress_proxy (a Squid image)")
            if agent.egress and network.egress != "nat":
                raise ValueError(f"agent {agent.name!r} declares egress but network.egress is "
                                 f"{network.egress!r}; allowed: nat")
        return agents

    @field_validator("registry")
    @classmethod
    def _registry_for_a_cluster(cls, registry: RegistrySpec | None, info: ValidationInfo) -> RegistrySpec | None:
        if registry is None and info.data.get("compute"):
            raise ValueError("a cluster admits only images signed into the stack's registry: declare registry "
                             "(repositories and ci)")
        return registry

    @field_validator("agent_egress_proxy")
    @classmethod
    def _proxy_image(cls, proxy: ProxySpec | None, info: ValidationInfo) -> ProxySpec | None:
        registry = info.data.get("registry")
        wrong_source = registry.source_of(proxy.image) if proxy and registry else None
        if wrong_source:
            raise ValueError(f"image: {wrong_source}")
        return proxy

    @field_validator("endpoints")
    @classmethod
    def _endpoints(cls, endpoints: list[EndpointSpec], info: ValidationInfo) -> list[EndpointSpec]:
        if not endpoints or "compute" not in info.data:  # compute invalid: reported there
            return endpoints
        compute = info.data["compute"]
        if compute is None:
            raise ValueError("endpoints serve tenants' Services on the cluster: declare compute")
        for kind, values in (("endpoint names", [e.name for e in endpoints]),
                             ("domain names", [e.domain_name for e in endpoints])):
            dupes = duplicates(values)
            if dupes:
                raise ValueError(f"duplicate {kind} {dupes}; allowed: each once")
        tenants = sorted(t.name for t in compute.tenants)
        for e in endpoints:
            if e.tenant not in tenants:
                raise ValueError(f"endpoint {e.name!r} names undeclared tenant {e.tenant!r}; declared: {tenants}")
        return endpoints

    @field_validator("monitoring")
    @classmethod
    def _monitoring(cls, monitoring: MonitoringSpec | None, info: ValidationInfo) -> MonitoringSpec | None:
        if monitoring is None and info.data.get("compute"):
            return MonitoringSpec()  # a cluster is always monitored: unset means the defaults
        if monitoring is not None and "compute" in info.data and not info.data["compute"]:
            raise ValueError("monitoring watches the cluster's models: declare compute, or remove monitoring")
        return monitoring

    @field_validator("compute")
    @classmethod
    def _tenant_buckets(cls, compute: ComputeSpec | None, info: ValidationInfo) -> ComputeSpec | None:
        if "data" not in info.data:  # the data section is invalid itself: reported there
            return compute
        buckets = {b.name for b in info.data["data"].buckets}
        for tenant in compute.tenants if compute else []:
            unknown = sorted(set(tenant.reads + tenant.writes) - buckets)
            if unknown:
                raise ValueError(f"tenant {tenant.name!r} names undeclared buckets {unknown}; declared: {sorted(buckets)}")
        return compute

    @field_validator("identity")
    @classmethod
    def _workload_auth_needs_a_cluster(cls, identity: IdentitySpec, info: ValidationInfo) -> IdentitySpec:
        if identity.vault and identity.vault.workload_auth == "kubernetes" and not info.data.get("compute"):
            raise ValueError("identity.vault.workload_auth kubernetes needs compute; use approle without a cluster")
        return identity

    @field_validator("tags")
    @classmethod
    def _no_reserved_tags(cls, v: dict[str, str]) -> dict[str, str]:
        bad = sorted(k for k in v if k.lower().startswith(RESERVED_TAG_PREFIXES))
        if bad:
            raise ValueError(f"reserved tag keys {bad}; allowed: keys not starting with 'aws:' or 'hardstack:'")
        return v


class StackFile(Spec):
    """An environment of a blueprint: which blueprint, the stack's name, and settings merged onto it."""

    blueprint: str
    """A shipped blueprint's name, or a path to a blueprint file relative to this file."""

    name: Name | None = None
    """The stack's name (the `hardstack:stack` tag). Unset: the blueprint's name."""

    overrides: dict[str, Any] = {}
    """Blueprint settings deep-merged onto the blueprint: mappings merge key by key, lists of named items merge
    by `name` (a new name adds an item), other values replace. Unknown settings are errors."""

    exceptions: list[ExceptionSpec] = []
    """Exceptions of this environment, added to the blueprint's."""
