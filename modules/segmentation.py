"""Which tier may talk to which: the network ACL rules of each tier, as pure data.

Network ACLs are stateless, so every allowed flow has a rule out on one side and a return rule in.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Literal, Sequence

from hardstack.blueprints.cidr import TierPlan
from hardstack.blueprints.endpoints import EndpointSpec
from hardstack.blueprints.network import PRIVATE_TIERS, Tier

TIER_PEERS: dict[Tier, tuple[Tier, ...]] = {
    Tier.ingress: (Tier.inference,),
    Tier.inference: (Tier.ingress, Tier.inference, Tier.data),
    Tier.training: (Tier.training, Tier.data),
    Tier.data: (Tier.inference, Tier.training, Tier.data),
    Tier.endpoints: (),
}
"""Tiers whose traffic is allowed both ways (a symmetric relation). Notably absent: training and inference
never reach each other, and ingress reaches neither training nor data."""

S3_TIERS = (Tier.inference, Tier.training, Tier.data)
"""Tiers that reach S3 through the gateway endpoint (S3 answers from public addresses, so these rules name
0.0.0.0/0; without a NAT or internet route only the gateway endpoint is reachable)."""

NAT_TIERS = (Tier.inference, Tier.training)
"""Tiers routed to the NAT gateways in `nat` egress mode; data and endpoints never get a way out."""

SERVING_TIER = Tier.inference
"""Where the pods behind an inference endpoint run: the only tier a load balancer sends to."""

HTTPS = 443
HTTP = 80
EPHEMERAL_LINUX = (32768, 65535)
"""Return traffic from outside the VPC: Linux's ephemeral range (it excludes the SSH, FTP and RDP ports)."""
EPHEMERAL_ANY = (1024, 65535)
"""Return traffic from inside the VPC."""
NAT_RETURN_FROM_ANYWHERE = ((1024, 3388), (3390, 65535))
"""Replies to a NAT gateway arrive on any of its source ports (1024-65535); RDP's port is left out."""
ANYWHERE = IPv4Network("0.0.0.0/0")

IDENTITY_PROVIDER_AUTH = ("oidc", "jwt")
"""Authentication for which the load balancer itself calls the identity provider over the internet (OIDC code
exchange and user info, JWT signing keys). Mutual TLS needs nothing beyond the load balancer."""

MAX_RULES_PER_DIRECTION = 20
"""AWS's default quota of inbound rules, and of outbound rules, per network ACL."""


@dataclass(frozen=True)
class AclRule:
    direction: Literal["ingress", "egress"]
    rule_no: int
    protocol: str
    from_port: int
    to_port: int
    cidr: IPv4Network
    why: str
    action: Literal["allow", "deny"] = "allow"

    def as_args(self) -> dict[str, object]:
        return {
            "rule_no": self.rule_no,
            "action": self.action,
            "protocol": self.protocol,
            "from_port": self.from_port,
            "to_port": self.to_port,
            "cidr_block": str(self.cidr),
        }


@dataclass(frozen=True)
class EndpointFlows:
    """What one inference endpoint needs of the network ACLs (derived from its spec by `endpoint_flows`): its
    callers reach its load balancer in `tier` on `listener_ports`, the load balancer reaches the pods in the
    serving tier on `target_port`, and, for `identity_provider`, the load balancer reaches the internet on 443."""

    name: str
    tier: Tier
    """The load balancer's tier: ingress (internal) or public (internet-facing)."""
    callers: tuple[IPv4Network, ...]
    """Who may connect, sorted: the declared CIDRs, else the VPC (internal) or 0.0.0.0/0 (internet-facing)."""
    listener_ports: tuple[int, ...]
    """443, and 80 where HTTP is redirected to HTTPS (never for callers from anywhere)."""
    target_port: int
    """The Service's port, on which the load balancer reaches the pods in the serving tier."""
    identity_provider: bool
    """The load balancer itself calls an identity provider over the internet (OIDC or JWT)."""
    vpc: IPv4Network
    """The VPC's block: callers inside it get their replies on any unprivileged port."""

    def reply_ports(self, caller: IPv4Network) -> tuple[int, int]:
        """Where the replies to `caller` go: any unprivileged port inside the VPC, Linux's ephemeral range
        outside it (as for every other reply to the outside)."""
        return EPHEMERAL_ANY if caller.subnet_of(self.vpc) else EPHEMERAL_LINUX


def endpoint_flows(spec: EndpointSpec, vpc: IPv4Network) -> EndpointFlows:
    """The flows of `spec` in a VPC with block `vpc`. Callers are the declared CIDRs, else the VPC (internal) or
    anywhere (internet-facing), as the load balancer's security group admits them."""
    internet_facing = spec.scheme == "internet-facing"
    callers = tuple(sorted(set(spec.allowed_cidrs))) or ((ANYWHERE,) if internet_facing else (vpc,))
    identity_provider = spec.auth.kind in IDENTITY_PROVIDER_AUTH
    if identity_provider and not internet_facing:
        raise ValueError(f"endpoint {spec.name!r}: auth {spec.auth.kind} needs the load balancer to reach the "
                         "identity provider over the internet, which an internal load balancer cannot; allowed: "
                         "mtls for an internal endpoint, or scheme internet-facing")
    inside = [str(c) for c in callers if internet_facing and c.subnet_of(vpc)]
    if inside:
        raise ValueError(f"endpoint {spec.name!r} is internet-facing but its allowed_cidrs {', '.join(inside)} lie "
                         f"inside the VPC ({vpc}), whose private tiers never reach the public tier; allowed: callers "
                         "outside the VPC, or scheme internal for callers inside it")
    ports = (HTTPS,) if ANYWHERE in callers else (HTTPS, HTTP)
    return EndpointFlows(spec.name, Tier.public if internet_facing else Tier.ingress, callers, ports, spec.port,
                         identity_provider, vpc)


Flow = tuple[str, str, int, int, IPv4Network, str]  # (direction[-deny], protocol, from, to, cidr, why)


def acl_rules(
    tier: Tier, plans: dict[Tier, TierPlan], egress: str, endpoints: Sequence[EndpointFlows] = ()
) -> list[AclRule]:
    """The allow rules of `tier`'s network ACL (and the denies that keep the public tier apart from the private
    ones); everything else is denied by the ACL's implicit rule. `endpoints` are the stack's inference endpoints:
    their callers reach the load balancers' tier (ingress or public) and the load balancers the serving tier on
    each endpoint's port; training, data and endpoints get no rule for them."""
    endpoints = sorted(endpoints, key=lambda e: e.name)  # numbers do not depend on the order endpoints are listed
    flows = _flows(tier, plans, egress, endpoints)
    rules = _number(_without_redundant(flows))
    for direction, word in (("ingress", "inbound"), ("egress", "outbound")):
        count = sum(r.direction == direction for r in rules)
        if count > MAX_RULES_PER_DIRECTION:
            base = sum(r.direction == direction for r in _number(_without_redundant(_flows(tier, plans, egress, ()))))
            names = ", ".join(sorted({e.name for e in endpoints if tier in (e.tier, SERVING_TIER)}))
            raise ValueError(
                f"the network ACL of the {tier.value} tier would need {count} {word} rules, more than the "
                f"{MAX_RULES_PER_DIRECTION} AWS allows per direction by default; {count - base} of them are for the "
                f"endpoints {names} (one per allowed CIDR and listener port, one per caller for the replies, one per "
                "distinct Service port): declare fewer (wider) allowed_cidrs, or serve endpoints on one port")
    return rules


def _flows(tier: Tier, plans: dict[Tier, TierPlan], egress: str, endpoints: Sequence[EndpointFlows]) -> list[Flow]:
    """The flows in the order they are numbered. Order matters where a refusal precedes wider rules: the public
    tier admits from the private tiers only the NAT tiers' HTTPS and the pods' replies to the load balancers, then
    refuses the private tiers, then admits callers and replies from outside (0.0.0.0/0 includes the VPC); the
    serving tier admits from the public tier only the load balancers' requests, then refuses it (replies through
    NAT come from outside addresses); the ingress tier refuses the public tier before admitting an internal
    endpoint's callers."""
    flows: list[Flow] = []
    public_endpoints = [e for e in endpoints if e.tier is Tier.public]
    if tier is Tier.public:
        for t in NAT_TIERS if egress == "nat" else ():
            flows.append(("ingress", "tcp", HTTPS, HTTPS, plans[t].block, f"HTTPS from {t.value} to the NAT gateways"))
            flows.append(("egress", "tcp", *EPHEMERAL_ANY, plans[t].block, f"return traffic to {t.value}"))
        flows += _to_targets(public_endpoints, plans)
        if egress == "nat" or public_endpoints:
            for t in PRIVATE_TIERS:  # nothing else from inside the VPC, before the rules naming outside addresses
                flows.append(("ingress-deny", "-1", 0, 0, plans[t].block, f"nothing else from {t.value}"))
        flows += _from_callers(public_endpoints)
        if egress == "nat":
            flows.append(("egress", "tcp", HTTPS, HTTPS, ANYWHERE, "HTTPS out through the NAT gateways"))
            for lo, hi in NAT_RETURN_FROM_ANYWHERE:
                flows.append(("ingress", "tcp", lo, hi, ANYWHERE, "return traffic to the NAT gateways"))
        if any(e.identity_provider for e in public_endpoints):  # the same HTTPS out as the NAT gateways': kept once
            flows.append(("egress", "tcp", HTTPS, HTTPS, ANYWHERE, "HTTPS to identity providers (load balancers)"))
            if egress != "nat":  # with NAT, its return rules admit these replies already
                flows.append(("ingress", "tcp", *EPHEMERAL_LINUX, ANYWHERE, "return traffic from identity providers"))
        return flows
    for peer in TIER_PEERS[tier]:
        flows.append(("ingress", "-1", 0, 0, plans[peer].block, f"from the {peer.value} tier"))
        flows.append(("egress", "-1", 0, 0, plans[peer].block, f"to the {peer.value} tier"))
    if tier is Tier.endpoints:
        for t in (Tier.ingress, Tier.inference, Tier.training, Tier.data):
            flows.append(("ingress", "tcp", HTTPS, HTTPS, plans[t].block, f"HTTPS to AWS APIs from {t.value}"))
            flows.append(("egress", "tcp", *EPHEMERAL_ANY, plans[t].block, f"return traffic to {t.value}"))
    else:
        end = plans[Tier.endpoints].block
        flows.append(("egress", "tcp", HTTPS, HTTPS, end, "HTTPS to the interface endpoints"))
        flows.append(("ingress", "tcp", *EPHEMERAL_ANY, end, "return traffic from the interface endpoints"))
    if tier is Tier.ingress:
        internal = [e for e in endpoints if e.tier is Tier.ingress]
        flows += _to_targets(internal, plans)
        public = plans[Tier.public].block  # planned whether or not it is built, so the rule does not move
        if any(c.overlaps(public) for e in internal for c in e.callers):  # e.g. the VPC, the default
            flows.append(("ingress-deny", "-1", 0, 0, public, "nothing from public: NAT gateways and internet-facing "
                                                                "load balancers call no internal endpoint"))
        flows += _from_callers(internal)
    if tier is SERVING_TIER:
        for e in endpoints:
            block = plans[e.tier].block
            flows.append(("ingress", "tcp", e.target_port, e.target_port, block,
                          f"endpoint {e.name}'s load balancer to its pods"))
            flows.append(("egress", "tcp", *EPHEMERAL_ANY, block, f"replies to endpoint {e.name}'s load balancer"))
        if public_endpoints:  # replies to the NAT gateways come from outside addresses, never from the public tier
            flows.append(("ingress-deny", "-1", 0, 0, plans[Tier.public].block, "nothing else from public"))
    if tier in S3_TIERS:
        flows.append(("egress", "tcp", HTTPS, HTTPS, ANYWHERE, "HTTPS to S3 (gateway endpoint) or via NAT"))
        flows.append(("ingress", "tcp", *EPHEMERAL_LINUX, ANYWHERE, "return traffic from S3 or via NAT"))
    return flows


def _to_targets(endpoints: Sequence[EndpointFlows], plans: dict[Tier, TierPlan]) -> list[Flow]:
    """The load balancers' side of load balancer -> pods: out to the serving tier on each endpoint's port, the
    pods' replies back in."""
    pods = plans[SERVING_TIER].block
    flows: list[Flow] = []
    for e in endpoints:
        flows.append(("egress", "tcp", e.target_port, e.target_port, pods, f"endpoint {e.name} to its pods"))
        flows.append(("ingress", "tcp", *EPHEMERAL_ANY, pods, f"replies of endpoint {e.name}'s pods"))
    return flows


def _from_callers(endpoints: Sequence[EndpointFlows]) -> list[Flow]:
    """Callers -> load balancer: each caller block in on each listener port, the replies out to it."""
    flows: list[Flow] = []
    for e in endpoints:
        for caller in e.callers:
            for port in e.listener_ports:
                flows.append(("ingress", "tcp", port, port, caller, f"port {port} of endpoint {e.name} from {caller}"))
            flows.append(("egress", "tcp", *e.reply_ports(caller), caller, f"replies of endpoint {e.name} to {caller}"))
    return flows


def _without_redundant(flows: list[Flow]) -> list[Flow]:
    """Drop an allow that an earlier allow of the same direction repeats (the same protocol and ports, or all
    traffic, for a block containing its own): ACLs apply the lowest-numbered matching rule, so the later one
    would never decide. Shared rules (endpoints with the same callers or port, the load balancers' and the NAT
    gateways' HTTPS out, a load balancer and its pods in peer tiers) are emitted once."""
    kept: list[Flow] = []
    for flow in flows:
        kind, proto, lo, hi, cidr, _ = flow
        if kind in ("ingress", "egress") and any(
            k == kind and (p == "-1" or (p, a, b) == (proto, lo, hi)) and cidr.subnet_of(c)
            for k, p, a, b, c, _ in kept
        ):
            continue
        kept.append(flow)
    return kept


def _number(flows: list[Flow]) -> list[AclRule]:
    """Number the rules in the order given (ACLs apply the lowest matching number first)."""
    counters = {"ingress": 100, "egress": 100}
    rules = []
    for kind, proto, lo, hi, cidr, why in flows:
        direction, _, action = kind.partition("-")
        rules.append(AclRule(direction, counters[direction], proto, lo, hi, cidr, why, action or "allow"))  # type: ignore[arg-type]
        counters[direction] += 10
    return rules
