"""A VPC's tiers and subnets, its routes out, and the flows its network ACLs allow between tiers, read from the
inventory (types, inputs, references) for the architecture picture."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from hardstack.stacks.inventory import Inventory, Resource

VPC = "aws:ec2/vpc:Vpc"
SUBNET = "aws:ec2/subnet:Subnet"
NACL = "aws:ec2/networkAcl:NetworkAcl"
ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE_ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
NAT = "aws:ec2/natGateway:NatGateway"
IGW = "aws:ec2/internetGateway:InternetGateway"
VPC_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"

TIER_TAG = "hardstack:tier"
NO_TIER = "untiered"
OUTSIDE = "0.0.0.0/0"
EPHEMERAL_FROM = 1024
RETURN_RANGE_WIDTH = 2000
"""ACL rules opening only a wide range of ports from EPHEMERAL_FROM up admit return traffic; they start no flow."""


@dataclass
class Subnet:
    urn: str
    name: str
    az: str
    cidr: str
    public: bool


@dataclass
class Tier:
    name: str
    subnets: list[Subnet] = field(default_factory=list)


@dataclass
class Network:
    urn: str
    name: str
    cidr: str
    tiers: dict[str, Tier] = field(default_factory=dict)
    interface_endpoints: list[str] = field(default_factory=list)  # service short names
    s3_gateway: str | None = None  # URN of the S3 gateway endpoint
    s3_gateway_tiers: set[str] = field(default_factory=set)
    nat_tiers: set[str] = field(default_factory=set)  # tiers routing 0.0.0.0/0 through a NAT gateway
    nat_gateways: list[Resource] = field(default_factory=list)
    internet_gateway: Resource | None = None
    internet_tiers: set[str] = field(default_factory=set)  # tiers routing 0.0.0.0/0 to the internet gateway


Ports = tuple[str, int, int]
"""A protocol ("tcp", "udp", ..., or "all" for all traffic) and a port range."""


@dataclass(frozen=True)
class Flow:
    """Traffic the network ACLs let `source` start towards `target` (a tier, or OUTSIDE)."""

    network: str
    source: str
    target: str
    ports: str


def networks_of(inventory: Inventory) -> tuple[list[Network], dict[str, tuple[str, str]]]:
    """The VPCs with their tiers, and each subnet's (VPC URN, tier) by subnet URN."""
    networks = {v.urn: Network(v.urn, v.name, str(v.get("cidrBlock", default=""))) for v in inventory.of_type(VPC)}
    tier_of: dict[str, tuple[str, str]] = {}
    for s in inventory.of_type(SUBNET):
        vpc = ref(s, "vpcId")
        if vpc not in networks:
            continue
        tier = str((s.get("tags") or {}).get(TIER_TAG) or NO_TIER)
        net = networks[vpc]
        net.tiers.setdefault(tier, Tier(tier)).subnets.append(Subnet(
            s.urn, s.name, str(s.get("availabilityZone", default="") or ""), str(s.get("cidrBlock", default="") or ""),
            bool(s.get("mapPublicIpOnLaunch"))))
        tier_of[s.urn] = (vpc, tier)
    for net in networks.values():
        for tier in net.tiers.values():
            tier.subnets.sort(key=lambda sub: (sub.az, sub.name))
    _routes(inventory, networks, tier_of)
    for ep in inventory.of_type(VPC_ENDPOINT):
        net = networks.get(ref(ep, "vpcId") or "")
        if net is None:
            continue
        service = str(ep.get("serviceName", default="") or "")
        short = service.split(".", 3)[-1] if service.startswith("com.amazonaws.") else service
        if ep.get("vpcEndpointType") == "Gateway" and short == "s3":
            net.s3_gateway = ep.urn
            tables = {r.resource for r in ep.references if r.path[:1] == ("routeTableIds",)}
            by_table = _tiers_of_tables(inventory, tier_of)
            net.s3_gateway_tiers = {tier for table in tables for tier in by_table.get(table, set())}
        else:
            net.interface_endpoints.append(short)
    ordered = sorted(networks.values(), key=lambda n: n.name)
    for net in ordered:
        net.interface_endpoints.sort()
        net.tiers = dict(sorted(net.tiers.items(), key=lambda kv: _tier_order(kv[0])))
    return ordered, tier_of


TIER_ORDER = ("public", "ingress", "inference", "training", "data", "endpoints")


def _tier_order(tier: str) -> tuple[int, str]:
    return (TIER_ORDER.index(tier) if tier in TIER_ORDER else len(TIER_ORDER), tier)


def _tiers_of_tables(inventory: Inventory, tier_of: dict[str, tuple[str, str]]) -> dict[str, set[str]]:
    """Route table URN → the tiers of the subnets associated with it."""
    out: dict[str, set[str]] = defaultdict(set)
    for rta in inventory.of_type(ROUTE_TABLE_ASSOCIATION):
        table, subnet = ref(rta, "routeTableId"), ref(rta, "subnetId")
        if table and subnet in tier_of:
            out[table].add(tier_of[subnet][1])
    return out


def _routes(inventory: Inventory, networks: dict[str, Network], tier_of: dict[str, tuple[str, str]]) -> None:
    tables = _tiers_of_tables(inventory, tier_of)
    for igw in inventory.of_type(IGW):
        if ref(igw, "vpcId") in networks:
            networks[ref(igw, "vpcId")].internet_gateway = igw  # type: ignore[index]
    nats = {n.urn: n for n in inventory.of_type(NAT)}
    for nat in nats.values():
        subnet = ref(nat, "subnetId")
        if subnet in tier_of:
            networks[tier_of[subnet][0]].nat_gateways.append(nat)
    for route in inventory.of_type(ROUTE):
        if route.get("destinationCidrBlock") != OUTSIDE:
            continue
        table = ref(route, "routeTableId")
        tiers = tables.get(table or "", set())
        nat, gateway = ref(route, "natGatewayId"), ref(route, "gatewayId")
        for net in networks.values():
            if nat in nats and nats[nat] in net.nat_gateways:
                net.nat_tiers |= tiers
            if net.internet_gateway is not None and gateway == net.internet_gateway.urn:
                net.internet_tiers |= tiers


def flows_of(inventory: Inventory, networks: list[Network], tier_of: dict[str, tuple[str, str]]) -> list[Flow]:
    """Flows the network ACLs let a tier start, and let the outside start into a tier: `source` → `target` on the
    ports both the source tier's egress rules and the target tier's ingress rules admit (ACLs are stateless; rules
    apply in rule-number order, a deny of all traffic ends the evaluation), other than return-traffic ranges.
    OUTSIDE is any address beyond the VPC's block: flows to it need the source's egress rules only, flows from it
    (callers of an endpoint's load balancer) the target's ingress rules only."""
    by_urn = {n.urn: n for n in networks}
    rules: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
    for acl in inventory.of_type(NACL):
        tiers = {tier_of[r.resource] for r in acl.references if r.path[:1] == ("subnetIds",) and r.resource in tier_of}
        for key in tiers:
            entry = rules.setdefault(key, {"ingress": [], "egress": []})
            for direction in ("ingress", "egress"):
                entry[direction] += [r for r in acl.get(direction, default=[]) or [] if isinstance(r, dict)]
    flows: set[Flow] = set()
    for (vpc, tier), entry in rules.items():
        net = by_urn.get(vpc)
        if net is None:
            continue
        blocks = {t.name: [n for n in (_net(s.cidr) for s in t.subnets) if n] for t in net.tiers.values()}
        inbound = _admitted(entry["ingress"], None, net.cidr)
        if inbound:
            flows.add(Flow(vpc, OUTSIDE, tier, _label(inbound)))
        for target in [*net.tiers, OUTSIDE]:
            if target == tier:
                continue
            out = _admitted(entry["egress"], blocks.get(target), net.cidr)
            if out and target != OUTSIDE:
                out = _both(out, _admitted(rules.get((vpc, target), {}).get("ingress", []), blocks.get(tier), net.cidr))
            if out:
                flows.add(Flow(vpc, tier, target, _label(out)))
    return sorted(flows, key=lambda f: (f.network, _tier_order(f.source), _tier_order(f.target)))


def _admitted(rules: list[dict[str, Any]], peer: list[ipaddress.IPv4Network] | None, vpc_cidr: str) -> list[Ports]:
    """The ports a list of ACL rules admits to or from `peer` (a tier's subnets; None: beyond the VPC's block)."""
    vpc = _net(vpc_cidr)
    ports: list[Ports] = []
    for rule in sorted(rules, key=lambda r: int(r.get("ruleNo") or 0)):
        block = _net(rule.get("cidrBlock"))
        if block is None:
            continue
        if peer is None:
            covers = vpc is None or not block.subnet_of(vpc)  # type: ignore[arg-type]
        else:
            covers = bool(peer) and all(n.subnet_of(block) for n in peer)  # type: ignore[arg-type]
        if not covers:
            continue
        if rule.get("action") != "allow":
            if str(rule.get("protocol")) in ("-1", "all"):
                break
            continue
        if not _return_traffic(rule) and _ports(rule) not in ports:
            ports.append(_ports(rule))
    return ports


def _both(out: list[Ports], back: list[Ports]) -> list[Ports]:
    """The ports both sides admit: each range the target admits, narrowed to what the source sends."""
    both: list[Ports] = []
    for b in back:
        for o in out:
            if o[0] == "all" or b[0] == "all":
                found = b if o[0] == "all" else o
            elif o[0] != b[0] or max(o[1], b[1]) > min(o[2], b[2]):
                continue
            else:
                found = (b[0], max(o[1], b[1]), min(o[2], b[2]))
            if found not in both:
                both.append(found)
    return both


def _label(ports: list[Ports]) -> str:
    """The ports, without those another of them includes (all traffic includes any)."""
    ports = [p for i, p in enumerate(ports) if not any(
        j != i and (q[0] == "all" or (q[0] == p[0] and q[1] <= p[1] and p[2] <= q[2])) and (q != p or j < i)
        for j, q in enumerate(ports))]
    return ", ".join("all traffic" if proto == "all" else f"{low}/{proto}" if low == high else f"{low}-{high}/{proto}"
                     for proto, low, high in ports)


def _net(cidr: Any) -> ipaddress.IPv4Network | None:
    try:
        return ipaddress.ip_network(str(cidr), strict=False)  # type: ignore[return-value]
    except ValueError:
        return None


def _return_traffic(rule: dict[str, Any]) -> bool:
    """A wide range of high ports: replies to connections the other side started (e.g. 1024-65535, or
    1024-3388 and 3390-65535 around RDP)."""
    if str(rule.get("protocol")) in ("-1", "all"):
        return False
    low, high = int(rule.get("fromPort") or 0), int(rule.get("toPort") or 0)
    return low >= EPHEMERAL_FROM and (high == 65535 or high - low >= RETURN_RANGE_WIDTH)


def _ports(rule: dict[str, Any]) -> Ports:
    protocol = str(rule.get("protocol"))
    if protocol in ("-1", "all"):
        return ("all", 0, 65535)
    name = {"6": "tcp", "17": "udp"}.get(protocol, protocol)
    return (name, int(rule.get("fromPort") or 0), int(rule.get("toPort") or 0))




def ref(resource: Resource, *path: str | int) -> str | None:
    """The URN the input at `path` was computed from, if it was a reference."""
    for r in resource.references:
        if r.path == tuple(path):
            return r.resource
    return None
