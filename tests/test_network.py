"""The segmented VPC as synthesized: planned private subnets, no way out unless declared, locked-down defaults,
per-tier ACLs, flow logs to an encrypted log group, private AWS endpoints, and the tags.

Every test reads the synthesized inventory (what `pulumi up` would send to AWS) and checks the property and
where each input comes from (`references`), so removing the property or miswiring it in `modules/network.py`
or `stacks/program.py` makes a test fail. Two stacks are checked: the shipped air-gapped reference blueprint
(`egress: none`, an internal inference endpoint) and an ad-hoc blueprint with NAT egress and an extra interface
endpoint; a third, the reference plus an internet-facing endpoint, is checked for the network ACL rules its
endpoints add and for the reachability the report reads from them.
"""

from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml

from hardstack.blueprints.loader import catalog, load
from hardstack.blueprints.network import PRIVATE_TIERS, REQUIRED_INTERFACE_ENDPOINTS, NetworkSpec, Tier
from hardstack.modules.segmentation import EndpointFlows, acl_rules, endpoint_flows
from hardstack.policies.network_paths import OUTSIDE, flows_of, networks_of
from hardstack.stacks.inventory import Inventory, Resource
from hardstack.stacks.mocks import ACCOUNT_ID
from hardstack.stacks.targets import synth_loaded

from .helpers import policy, ref_attr, statements

REGION = "us-east-1"
VPC_T = "aws:ec2/vpc:Vpc"
SUBNET_T = "aws:ec2/subnet:Subnet"
RT_T = "aws:ec2/routeTable:RouteTable"
RTA_T = "aws:ec2/routeTableAssociation:RouteTableAssociation"
ROUTE_T = "aws:ec2/route:Route"
ACL_T = "aws:ec2/networkAcl:NetworkAcl"
IGW_T = "aws:ec2/internetGateway:InternetGateway"
NAT_T = "aws:ec2/natGateway:NatGateway"
EIP_T = "aws:ec2/eip:Eip"
ENDPOINT_T = "aws:ec2/vpcEndpoint:VpcEndpoint"
SG_T = "aws:ec2/securityGroup:SecurityGroup"
COMPONENT_T = "hardstack:network:SegmentedVpc"

NAT_BLUEPRINT: dict[str, Any] = {
    "name": "nat-net",
    "region": REGION,
    "network": {"egress": "nat", "interface_endpoints": ["sagemaker.api"], "flow_log_retention_days": 731},
}
"""Ad-hoc blueprint: NAT egress, an extra interface endpoint and a longer flow log retention."""


@dataclass
class Case:
    inv: Inventory
    spec: NetworkSpec
    stack: str
    endpoints: tuple[EndpointFlows, ...] = ()

    @property
    def public(self) -> bool:
        return self.spec.egress == "nat"

    @property
    def tiers(self) -> tuple[Tier, ...]:
        return PRIVATE_TIERS + ((Tier.public,) if self.public else ())


REFERENCE_SPEC = NetworkSpec(cidr=IPv4Network("10.40.0.0/16"), availability_zones=3, egress="none")
"""What blueprints/catalog/llm-inference.yaml declares."""
NAT_SPEC = NetworkSpec(egress="nat", interface_endpoints=["sagemaker.api"], flow_log_retention_days=731)


@pytest.fixture(scope="module")
def nat_inventory(tmp_path_factory: pytest.TempPathFactory) -> Inventory:
    """NAT_BLUEPRINT synthesized once for this module (the same YAML-file round trip as `synth_blueprint`)."""
    path: Path = tmp_path_factory.mktemp("nat") / f"{NAT_BLUEPRINT['name']}.yaml"
    path.write_text(yaml.safe_dump(NAT_BLUEPRINT))
    return synth_loaded(load(path))


@pytest.fixture(params=["air-gapped", "nat"])
def case(request: pytest.FixtureRequest) -> Case:
    if request.param == "air-gapped":
        shipped = load("llm-inference").blueprint.endpoints  # one internal endpoint
        return Case(request.getfixturevalue("reference_inventory"), REFERENCE_SPEC, "llm-inference",
                    tuple(endpoint_flows(e, REFERENCE_SPEC.cidr) for e in shipped))
    return Case(request.getfixturevalue("nat_inventory"), NAT_SPEC, NAT_BLUEPRINT["name"])


# --- helpers -----------------------------------------------------------------------------------------------


def the(inv: Inventory, type_token: str) -> Resource:
    found = inv.of_type(type_token)
    assert len(found) == 1, f"{len(found)} resources of type {type_token}"
    return found[0]


def vpc_of(inv: Inventory) -> Resource:
    vpc = inv.named("network-vpc", VPC_T)
    assert the(inv, VPC_T) is vpc
    return vpc


def subnets_by_tier(inv: Inventory) -> dict[Tier, list[Resource]]:
    """Subnets by tier (from the `hardstack:tier` tag, checked against the name), in AZ index order."""
    out: dict[Tier, list[tuple[int, Resource]]] = {}
    for s in inv.of_type(SUBNET_T):
        tier = Tier(s.get("tags", "hardstack:tier"))
        m = re.fullmatch(rf"network-{tier.value}-(\d+)", s.name)
        assert m, f"subnet {s.name} tagged {tier.value}"
        out.setdefault(tier, []).append((int(m.group(1)), s))
    return {t: [s for _, s in sorted(items, key=lambda x: x[0])] for t, items in out.items()}


def id_refs(resource: Resource, key: str) -> list[str]:
    """URNs whose `id` each element of the list input `key` was computed from (fails on a literal)."""
    values = resource.get(key)
    assert isinstance(values, list) and values, f"{resource.name}: {key} = {values!r}"
    urns = []
    for i in range(len(values)):
        urn, attr = ref_attr(resource, key, i)
        assert attr == "id", (resource.name, key, i, attr)
        urns.append(urn)
    return urns


def refs_id_of(resource: Resource, key: str, target: Resource) -> None:
    assert ref_attr(resource, key) == (target.urn, "id"), f"{resource.name}.{key} is not {target.name}.id"
    assert resource.get(key) == target.outputs["id"]


def table_of_subnet(inv: Inventory) -> dict[str, Resource]:
    """Subnet URN -> its route table, through the route table associations."""
    out: dict[str, Resource] = {}
    for rta in inv.of_type(RTA_T):
        subnet_urn, a1 = ref_attr(rta, "subnetId")
        table_urn, a2 = ref_attr(rta, "routeTableId")
        assert (a1, a2) == ("id", "id"), rta.name
        assert subnet_urn not in out, f"subnet {subnet_urn} associated twice"
        out[subnet_urn] = inv[table_urn]
    return out


def tier_of_table(inv: Inventory) -> dict[str, tuple[Tier, Resource]]:
    """Route table URN -> (tier, subnet) of the one subnet associated with it."""
    out: dict[str, tuple[Tier, Resource]] = {}
    tables = table_of_subnet(inv)
    for tier, subnets in subnets_by_tier(inv).items():
        for s in subnets:
            table = tables[s.urn]
            assert table.urn not in out, f"route table {table.name} shared by several subnets"
            out[table.urn] = (tier, s)
    return out


def camel_rule(args: dict[str, Any]) -> dict[str, Any]:
    """An `AclRule.as_args()` dict as the engine records it (camelCase keys)."""
    return {re.sub(r"_(\w)", lambda m: m.group(1).upper(), k): v for k, v in args.items()}


# --- VPC and subnets ---------------------------------------------------------------------------------------


def test_vpc_resolves_private_dns(case: Case) -> None:
    """The VPC has DNS support and DNS hostnames on (private DNS of the interface endpoints needs both: without
    them, AWS API names resolve to public addresses unreachable from an air-gapped VPC), and uses the declared
    block with shared tenancy."""
    vpc = vpc_of(case.inv)
    assert vpc.get("enableDnsSupport") is True
    assert vpc.get("enableDnsHostnames") is True
    assert vpc.get("cidrBlock") == str(case.spec.cidr)
    assert vpc.get("instanceTenancy") == "default"


def test_private_subnets_are_exactly_the_planned_ones(case: Case) -> None:
    """5 private tiers x 3 AZs = 15 private subnets whose CIDRs are exactly the planner's, in this VPC
    (vpcId is the VPC's id), none assigning public IPv4 or IPv6 addresses on launch."""
    vpc = vpc_of(case.inv)
    plan = case.spec.plan()
    by_tier = subnets_by_tier(case.inv)
    assert set(by_tier) == set(case.tiers)
    assert sum(len(by_tier[t]) for t in PRIVATE_TIERS) == 15
    for tier in case.tiers:
        subnets = by_tier[tier]
        assert [s.get("cidrBlock") for s in subnets] == [str(n) for n in plan[tier].subnets], tier
        for s in subnets:
            assert s.get("mapPublicIpOnLaunch") is False, s.name
            assert s.get("assignIpv6AddressOnCreation") is False, s.name
            refs_id_of(s, "vpcId", vpc)
    assert len(case.inv.of_type(SUBNET_T)) == 3 * len(case.tiers)


def test_each_tier_spans_distinct_azs_aligned_across_tiers(case: Case) -> None:
    """Each tier's subnets lie in distinct AZs of the stack's region (one per AZ), and subnet N of every tier is
    in the same AZ, so an AZ's NAT gateway and route tables serve the same AZ's subnets."""
    by_tier = subnets_by_tier(case.inv)
    columns = None
    for tier, subnets in by_tier.items():
        azs = [s.get("availabilityZone") for s in subnets]
        assert len(set(azs)) == len(azs) == case.spec.availability_zones, (tier, azs)
        assert all(re.fullmatch(rf"{REGION}[a-z]", az) for az in azs), azs
        columns = columns or azs
        assert azs == columns, (tier, azs, columns)


def test_every_subnet_has_its_own_route_table(case: Case) -> None:
    """Every subnet is associated with exactly one route table of its own tier (never the main route table,
    never one shared with another tier), in this VPC."""
    vpc = vpc_of(case.inv)
    tables = table_of_subnet(case.inv)
    by_tier = subnets_by_tier(case.inv)
    seen = set()
    for tier, subnets in by_tier.items():
        for s in subnets:
            table = tables[s.urn]
            assert table.type == RT_T
            assert table.get("tags", "hardstack:tier") == tier.value, (s.name, table.name)
            refs_id_of(table, "vpcId", vpc)
            assert table.urn not in seen
            seen.add(table.urn)
    assert len(case.inv.of_type(RT_T)) == len(seen)


# --- the way out -------------------------------------------------------------------------------------------


def test_air_gapped_stack_has_no_way_to_the_internet(reference_inventory: Inventory) -> None:
    """`egress: none` (the reference): no internet gateway, NAT gateway, elastic IP or public subnet, and no
    route at all to 0.0.0.0/0 (neither a Route resource nor an inline route on any route table)."""
    inv = reference_inventory
    for type_token in (IGW_T, NAT_T, EIP_T, "aws:ec2/egressOnlyInternetGateway:EgressOnlyInternetGateway"):
        assert inv.of_type(type_token) == [], type_token
    public_block = REFERENCE_SPEC.plan()[Tier.public].block
    for s in inv.of_type(SUBNET_T):
        assert s.get("tags", "hardstack:tier") != Tier.public.value, s.name
        assert "public" not in s.name
        assert not IPv4Network(s.get("cidrBlock")).overlaps(public_block), s.name
    for route in inv.of_type(ROUTE_T):
        assert route.get("destinationCidrBlock") != "0.0.0.0/0", route.name
        assert route.get("destinationIpv6CidrBlock") != "::/0", route.name
    for table in inv.of_type(RT_T) + inv.of_type("aws:ec2/defaultRouteTable:DefaultRouteTable"):
        for r in table.get("routes") or []:
            assert r.get("cidrBlock") != "0.0.0.0/0", table.name


def test_nat_stack_has_one_public_subnet_and_nat_gateway_per_az(nat_inventory: Inventory) -> None:
    """`egress: nat`: one public subnet per AZ (the planned public subnets, still not assigning public IPs),
    one internet gateway in this VPC, and one NAT gateway per AZ placed in that AZ's public subnet
    (subnetId references a public subnet) with its own elastic IP."""
    inv = nat_inventory
    vpc = vpc_of(inv)
    public = subnets_by_tier(inv)[Tier.public]
    assert [s.get("cidrBlock") for s in public] == [str(n) for n in NAT_SPEC.plan()[Tier.public].subnets]
    assert all(s.get("mapPublicIpOnLaunch") is False for s in public)
    refs_id_of(the(inv, IGW_T), "vpcId", vpc)
    nats = inv.of_type(NAT_T)
    assert len(nats) == 3
    in_subnets = []
    for nat in nats:
        subnet_urn, attr = ref_attr(nat, "subnetId")
        assert attr == "id" and inv[subnet_urn] in public, f"{nat.name} is not in a public subnet"
        in_subnets.append(subnet_urn)
        eip_urn, attr = ref_attr(nat, "allocationId")
        assert inv[eip_urn].type == EIP_T and attr == "id"
        assert nat.get("connectivityType") == "public"
    assert sorted(in_subnets) == sorted(s.urn for s in public), "NAT gateways are not one per AZ"
    assert len({ref_attr(n, "allocationId")[0] for n in nats}) == 3


def test_nat_routes_only_from_inference_and_training(nat_inventory: Inventory) -> None:
    """Default routes (0.0.0.0/0): each inference and training route table points at the NAT gateway of its own
    AZ; public route tables point at the internet gateway; no data, endpoints or ingress route table gets a
    default route of any kind (Route resources or inline routes)."""
    inv = nat_inventory
    tables = tier_of_table(inv)
    igw = the(inv, IGW_T)
    nat_routes: dict[str, str] = {}
    igw_routes: set[str] = set()
    for route in inv.of_type(ROUTE_T):
        table_urn, attr = ref_attr(route, "routeTableId")
        assert attr == "id"
        tier, subnet = tables[table_urn]
        assert tier not in (Tier.data, Tier.endpoints, Tier.ingress), f"{route.name}: a route from {tier.value}"
        assert route.get("destinationCidrBlock") == "0.0.0.0/0", route.name
        if route.get("natGatewayId") is not None:
            assert tier in (Tier.inference, Tier.training), route.name
            nat_urn, attr = ref_attr(route, "natGatewayId")
            nat = inv[nat_urn]
            assert nat.type == NAT_T and attr == "id"
            nat_subnet = inv[ref_attr(nat, "subnetId")[0]]
            assert nat_subnet.get("availabilityZone") == subnet.get("availabilityZone"), route.name
            assert route.get("gatewayId") is None
            nat_routes[table_urn] = nat_urn
        else:
            assert tier is Tier.public, route.name
            refs_id_of(route, "gatewayId", igw)
            igw_routes.add(table_urn)
    expected_nat = {u for u, (t, _) in tables.items() if t in (Tier.inference, Tier.training)}
    assert set(nat_routes) == expected_nat and len(expected_nat) == 6
    assert igw_routes == {u for u, (t, _) in tables.items() if t is Tier.public}
    for table in inv.of_type(RT_T):
        assert not table.get("routes"), f"{table.name} has inline routes"


# --- the default security group, ACL and route table -------------------------------------------------------


def test_default_security_group_of_this_vpc_has_no_rules(case: Case) -> None:
    """The VPC's default security group is managed with no ingress and no egress rule, so anything launched
    without an explicit group can neither receive nor send."""
    sg = the(case.inv, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    refs_id_of(sg, "vpcId", vpc_of(case.inv))
    assert sg.get("ingress") == []
    assert sg.get("egress") == []


def test_default_network_acl_of_this_vpc_has_no_rules(case: Case) -> None:
    """The VPC's default network ACL (it applies to any subnet not associated with a tier ACL) is managed with
    no rules, i.e. it denies everything."""
    acl = the(case.inv, "aws:ec2/defaultNetworkAcl:DefaultNetworkAcl")
    vpc = vpc_of(case.inv)
    assert ref_attr(acl, "defaultNetworkAclId") == (vpc.urn, "defaultNetworkAclId")
    assert acl.get("ingress") == []
    assert acl.get("egress") == []


def test_default_route_table_has_no_routes(case: Case) -> None:
    """The VPC's default (main) route table is managed with no routes."""
    table = the(case.inv, "aws:ec2/defaultRouteTable:DefaultRouteTable")
    assert table.get("routes") == []


def test_default_route_table_is_this_vpcs(case: Case) -> None:
    """The managed default route table is the one of this VPC (defaultRouteTableId comes from the VPC's
    defaultRouteTableId), so the route-less table really replaces this VPC's main route table."""
    table = the(case.inv, "aws:ec2/defaultRouteTable:DefaultRouteTable")
    vpc = vpc_of(case.inv)
    assert ref_attr(table, "defaultRouteTableId") == (vpc.urn, "defaultRouteTableId")


# --- network ACLs ------------------------------------------------------------------------------------------


def test_one_network_acl_per_tier_with_the_computed_rules(case: Case) -> None:
    """Each tier has exactly one network ACL in this VPC; its subnetIds are exactly that tier's subnets (so no
    subnet falls back to the default ACL and no ACL spans tiers) and its rules are exactly
    `acl_rules(tier, plan, egress, endpoints)` (the blueprint's endpoints) in ingress/egress order."""
    inv = case.inv
    vpc = vpc_of(inv)
    plan = case.spec.plan()
    by_tier = subnets_by_tier(inv)
    acls = inv.of_type(ACL_T)
    assert len(acls) == len(case.tiers)
    covered: list[str] = []
    for tier in case.tiers:
        [acl] = [a for a in acls if a.get("tags", "hardstack:tier") == tier.value]
        refs_id_of(acl, "vpcId", vpc)
        assert id_refs(acl, "subnetIds") == [s.urn for s in by_tier[tier]], tier
        covered += id_refs(acl, "subnetIds")
        rules = acl_rules(tier, plan, case.spec.egress, case.endpoints)
        for direction in ("ingress", "egress"):
            expected = [camel_rule(r.as_args()) for r in rules if r.direction == direction]
            assert acl.get(direction) == expected, (tier, direction)
    assert sorted(covered) == sorted(s.urn for s in inv.of_type(SUBNET_T))


# --- network ACLs of inference endpoints -------------------------------------------------------------------

API_ENDPOINT: dict[str, Any] = {
    "name": "api", "tenant": "serving", "service": "inference-server", "port": 8443, "scheme": "internet-facing",
    "domain_name": "api.inference.example.com", "zone_id": "Z0EXAMPLE0ZONE0ID",
    "auth": {"kind": "jwt", "issuer": "https://idp.example.com", "jwks_endpoint": "https://idp.example.com/jwks",
             "audience": "inference"},
}
"""An internet-facing endpoint beside the shipped internal one (`chat`: mTLS, port 8000, callers: the VPC):
machines with a JWT, callers: anywhere (so port 80 stays closed), its Service on port 8443."""

INGRESS, INFERENCE, TRAINING, DATA, ENDPOINTS, PUBLIC, VPC = (
    "10.40.136.0/22", "10.40.0.0/18", "10.40.64.0/18", "10.40.128.0/22", "10.40.132.0/22", "10.40.140.0/24",
    "10.40.0.0/16")
"""The reference plan's tier blocks (10.40.0.0/16, default sizes)."""
ALL = ("allow", "-1", 0, 0)
DENY_ALL = ("deny", "-1", 0, 0)

ENDPOINT_ACLS: dict[str, dict[str, list[tuple[Any, ...]]]] = {
    "ingress": {
        "ingress": [(100, *ALL, INFERENCE),
                    (110, "allow", "tcp", 1024, 65535, ENDPOINTS),
                    (120, *DENY_ALL, PUBLIC),  # but never the public tier
                    (130, "allow", "tcp", 443, 443, VPC),  # chat's callers: the VPC, on 443
                    (140, "allow", "tcp", 80, 80, VPC)],  # and on 80, redirected
        "egress": [(100, *ALL, INFERENCE),  # also chat's load balancer to its pods on 8000
                   (110, "allow", "tcp", 443, 443, ENDPOINTS),
                   (120, "allow", "tcp", 1024, 65535, VPC)],  # replies to chat's callers
    },
    "inference": {
        "ingress": [(100, *ALL, INGRESS), (110, *ALL, INFERENCE), (120, *ALL, DATA),
                    (130, "allow", "tcp", 1024, 65535, ENDPOINTS),
                    (140, "allow", "tcp", 8443, 8443, PUBLIC),  # api's load balancer to its pods
                    (150, *DENY_ALL, PUBLIC),  # nothing else from the public tier
                    (160, "allow", "tcp", 32768, 65535, "0.0.0.0/0")],
        "egress": [(100, *ALL, INGRESS), (110, *ALL, INFERENCE), (120, *ALL, DATA),
                   (130, "allow", "tcp", 443, 443, ENDPOINTS),
                   (140, "allow", "tcp", 1024, 65535, PUBLIC),  # the pods' replies to api's load balancer
                   (150, "allow", "tcp", 443, 443, "0.0.0.0/0")],
    },
    "public": {
        "ingress": [(100, "allow", "tcp", 1024, 65535, INFERENCE),  # the pods' replies
                    (110, *DENY_ALL, INGRESS), (120, *DENY_ALL, INFERENCE), (130, *DENY_ALL, TRAINING),
                    (140, *DENY_ALL, DATA), (150, *DENY_ALL, ENDPOINTS),
                    (160, "allow", "tcp", 443, 443, "0.0.0.0/0"),  # api's callers: anywhere, 443 only
                    (170, "allow", "tcp", 32768, 65535, "0.0.0.0/0")],  # the identity provider's replies
        "egress": [(100, "allow", "tcp", 8443, 8443, INFERENCE),  # api's load balancer to its pods
                   (110, "allow", "tcp", 32768, 65535, "0.0.0.0/0"),  # replies to api's callers
                   (120, "allow", "tcp", 443, 443, "0.0.0.0/0")],  # the identity provider's signing keys
    },
}
"""Every rule of the ACLs the endpoints change, as AWS gets them (rule number, action, protocol, ports, block)."""


@pytest.fixture(scope="module")
def endpoint_inventory(tmp_path_factory: pytest.TempPathFactory) -> Inventory:
    """The reference blueprint plus API_ENDPOINT, synthesized once for this module."""
    data = yaml.safe_load(catalog()["llm-inference"].read_text())
    data["name"] = "with-public-endpoint"
    data["endpoints"].append(API_ENDPOINT)
    path = tmp_path_factory.mktemp("endpoints") / "with-public-endpoint.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return synth_loaded(load(path))


def acl_of(inv: Inventory, tier: Tier) -> Resource:
    [acl] = [a for a in inv.of_type(ACL_T) if a.get("tags", "hardstack:tier") == tier.value]
    return acl


def test_endpoint_acls_are_exactly_these_rules(endpoint_inventory: Inventory) -> None:
    """With an internal mTLS endpoint and an internet-facing JWT endpoint, the ingress, inference and public
    ACLs hold exactly ENDPOINT_ACLS: callers to the listeners and the replies, each load balancer to its pods
    on the Service's port (for the internal one through the ingress-inference peering), the pods' replies, the
    public tier's refusal of the private tiers, HTTPS to the identity provider. Training, data and endpoints
    keep exactly the rules they have without endpoints; the public subnets route to the internet gateway, and
    there is no NAT gateway."""
    inv = endpoint_inventory
    for tier, directions in ENDPOINT_ACLS.items():
        acl = acl_of(inv, Tier(tier))
        for direction, rules in directions.items():
            expected = [{"ruleNo": n, "action": action, "protocol": proto, "fromPort": low, "toPort": high,
                         "cidrBlock": cidr} for n, action, proto, low, high, cidr in rules]
            assert acl.get(direction) == expected, (tier, direction)
    plan = REFERENCE_SPEC.plan()
    for tier in (Tier.training, Tier.data, Tier.endpoints):
        for direction in ("ingress", "egress"):
            assert acl_of(inv, tier).get(direction) == [
                camel_rule(r.as_args()) for r in acl_rules(tier, plan, "none") if r.direction == direction], tier
    public = subnets_by_tier(inv)[Tier.public]
    assert [s.get("cidrBlock") for s in public] == [str(n) for n in plan[Tier.public].subnets]
    igw = the(inv, IGW_T)
    tables = tier_of_table(inv)
    for route in inv.of_type(ROUTE_T):
        assert tables[ref_attr(route, "routeTableId")[0]][0] is Tier.public, route.name
        refs_id_of(route, "gatewayId", igw)
    assert inv.of_type(NAT_T) == [] and inv.of_type(EIP_T) == []


def test_report_reads_the_endpoint_flows_from_the_acls(endpoint_inventory: Inventory,
                                                       reference_inventory: Inventory) -> None:
    """The report's reachability analysis (policies/network_paths.py) sees what the ACLs allow: the outside
    starts only HTTPS into the public tier, the public tier only the Service port into inference and HTTPS out
    (the identity provider), nothing else towards a private tier; callers inside the VPC reach the internal load
    balancer's tier on the ports both sides admit (training and data on 443 through their own HTTPS rule, not
    on 80). The reference (internal endpoint only) is reachable from no outside address at all."""
    networks, tier_of = networks_of(endpoint_inventory)
    flows = {(f.source, f.target): f.ports for f in flows_of(endpoint_inventory, networks, tier_of)}
    assert {(s, t): p for (s, t), p in flows.items() if s == OUTSIDE} == {(OUTSIDE, "public"): "443/tcp"}
    assert {(s, t): p for (s, t), p in flows.items() if s == "public"} == {("public", "inference"): "8443/tcp",
                                                                           ("public", OUTSIDE): "443/tcp"}
    assert not any(t == "public" for s, t in flows if s != OUTSIDE), "nothing in the VPC starts towards public"
    assert flows[("training", "ingress")] == flows[("data", "ingress")] == "443/tcp"
    assert flows[("ingress", "inference")] == flows[("inference", "ingress")] == "all traffic"
    assert ("training", "inference") not in flows and ("ingress", "training") not in flows
    networks, tier_of = networks_of(reference_inventory)
    assert not [f for f in flows_of(reference_inventory, networks, tier_of) if f.source == OUTSIDE]


# --- flow logs ---------------------------------------------------------------------------------------------


def test_flow_log_records_all_traffic_of_this_vpc(case: Case) -> None:
    """One flow log captures ALL traffic (accepted and rejected) of this VPC into the stack's flow log group,
    delivered with the flow log role."""
    inv = case.inv
    fl = the(inv, "aws:ec2/flowLog:FlowLog")
    group = inv.named("network-flow-logs", "aws:cloudwatch/logGroup:LogGroup")
    role = inv.named("network-flow-logs-role", "aws:iam/role:Role")
    assert fl.get("trafficType") == "ALL"
    refs_id_of(fl, "vpcId", vpc_of(inv))
    assert fl.get("logDestinationType") == "cloud-watch-logs"
    assert ref_attr(fl, "logDestination") == (group.urn, "arn")
    assert fl.get("logDestination") == group.outputs["arn"]
    assert ref_attr(fl, "iamRoleArn") == (role.urn, "arn")
    assert fl.get("iamRoleArn") == role.outputs["arn"]


def test_flow_log_group_is_encrypted_with_the_logs_key_and_kept_a_year(case: Case) -> None:
    """The flow log group is encrypted with the stack's `logs` CMK (kmsKeyId is that key's ARN) and keeps the
    logs at least 365 days (exactly the blueprint's flow_log_retention_days)."""
    group = case.inv.named("network-flow-logs", "aws:cloudwatch/logGroup:LogGroup")
    key = case.inv.named("logs-key", "aws:kms/key:Key")
    assert ref_attr(group, "kmsKeyId") == (key.urn, "arn")
    assert group.get("kmsKeyId") == key.outputs["arn"]
    assert group.get("retentionInDays") >= 365
    assert group.get("retentionInDays") == case.spec.flow_log_retention_days


def test_flow_log_role_is_assumable_only_by_this_accounts_flow_logs(case: Case) -> None:
    """The flow log role trusts only the VPC Flow Logs service, and only on behalf of this account
    (aws:SourceAccount) and its flow logs (aws:SourceArn): no confused deputy."""
    role = case.inv.named("network-flow-logs-role", "aws:iam/role:Role")
    [st] = policy(role, "assumeRolePolicy")["Statement"]
    assert st["Effect"] == "Allow"
    assert st["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert st["Action"] in ("sts:AssumeRole", ["sts:AssumeRole"])
    assert st["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCOUNT_ID
    assert st["Condition"]["ArnLike"]["aws:SourceArn"] == f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:vpc-flow-log/*"
    assert "NotPrincipal" not in st and "NotAction" not in st


def test_flow_log_role_may_only_write_to_its_log_group(case: Case) -> None:
    """The role's only permissions are logs:CreateLogStream, DescribeLogStreams and PutLogEvents on the flow
    log group's streams (no wildcard action, no other resource); the policy is attached to that role."""
    inv = case.inv
    group = inv.named("network-flow-logs", "aws:cloudwatch/logGroup:LogGroup")
    role = inv.named("network-flow-logs-role", "aws:iam/role:Role")
    role_policies = [p for p in inv.of_type("aws:iam/rolePolicy:RolePolicy") if p.parent == role.parent]
    [rp] = [p for p in role_policies if ref_attr(p, "role")[0] == role.urn]
    assert ref_attr(rp, "role") == (role.urn, "id")
    assert ref_attr(rp, "policy") == (group.urn, "arn")
    attached = [
        r for r in inv
        if r.type in ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "aws:iam/policyAttachment:PolicyAttachment")
        and any(ref.resource == role.urn for ref in r.references)
    ]
    assert attached == [], "managed policies attached to the flow log role"
    assert not role.get("managedPolicyArns") and not role.get("inlinePolicies")
    [st] = statements(rp).values()
    assert st["Effect"] == "Allow"
    assert sorted(st["Action"]) == ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    assert st["Resource"] == f"{group.outputs['arn']}:*"
    assert "Condition" not in st or st["Condition"]  # no empty condition blocks


# --- AWS service endpoints ---------------------------------------------------------------------------------


def endpoints(inv: Inventory, kind: str) -> dict[str, Resource]:
    """VPC endpoints of `kind` by service (com.amazonaws.<region>.<service> -> <service>)."""
    prefix = f"com.amazonaws.{REGION}."
    out = {}
    for e in inv.of_type(ENDPOINT_T):
        if e.get("vpcEndpointType") == kind:
            assert e.get("serviceName").startswith(prefix), e.name
            out[e.get("serviceName").removeprefix(prefix)] = e
    return out


def test_s3_gateway_endpoint_serves_every_private_route_table(case: Case) -> None:
    """The S3 gateway endpoint of this VPC is attached to all 15 private route tables (routeTableIds reference
    each of them, and no public one), so S3 traffic never needs a way to the internet."""
    inv = case.inv
    [s3] = endpoints(inv, "Gateway").values()
    assert s3.get("serviceName") == f"com.amazonaws.{REGION}.s3"
    refs_id_of(s3, "vpcId", vpc_of(inv))
    tables = table_of_subnet(inv)
    private = [tables[s.urn].urn for t in PRIVATE_TIERS for s in subnets_by_tier(inv)[t]]
    attached = id_refs(s3, "routeTableIds")
    assert len(attached) == len(set(attached)) == 15
    assert set(attached) == set(private)


def test_s3_gateway_endpoint_reaches_only_this_accounts_buckets(case: Case) -> None:
    """The S3 endpoint policy allows S3 only on buckets of this account (aws:ResourceAccount = the mock account
    123456789012), plus reading the AWS-owned ECR image layer bucket of the region; no other Allow, so data
    cannot be copied to another account's bucket from inside the VPC."""
    [s3] = endpoints(case.inv, "Gateway").values()
    sts = statements(s3)
    own = sts["OwnAccountBucketsOnly"]
    assert own["Effect"] == "Allow"
    assert own["Condition"] == {"StringEquals": {"aws:ResourceAccount": ACCOUNT_ID}}
    layers = sts["AwsOwnedImageLayers"]
    assert layers["Effect"] == "Allow" and layers["Action"] in ("s3:GetObject", ["s3:GetObject"])
    assert layers["Resource"] == [f"arn:aws:s3:::prod-{REGION}-starport-layer-bucket/*"]
    assert set(sts) == {"OwnAccountBucketsOnly", "AwsOwnedImageLayers"}
    for st in sts.values():
        assert "NotResource" not in st and "NotAction" not in st


def test_required_and_declared_interface_endpoints_exist(case: Case) -> None:
    """Interface endpoints exist for ecr.api, ecr.dkr, sts, kms and logs in every stack, plus the declared ones
    (sagemaker.api in the NAT blueprint), each service once."""
    services = set(endpoints(case.inv, "Interface"))
    assert set(REQUIRED_INTERFACE_ENDPOINTS) == {"ecr.api", "ecr.dkr", "sts", "kms", "logs"}
    assert services >= set(REQUIRED_INTERFACE_ENDPOINTS)
    from hardstack.stacks.program import CLUSTER_INTERFACE_ENDPOINTS

    with_cluster = case.stack == "llm-inference"  # the reference stack has an EKS cluster
    assert services == set(case.spec.all_interface_endpoints(CLUSTER_INTERFACE_ENDPOINTS if with_cluster else ()))
    if case.spec.interface_endpoints:
        assert "sagemaker.api" in services
    assert len(case.inv.of_type(ENDPOINT_T)) == len(services) + 1


def test_interface_endpoints_are_private_in_the_endpoints_tier(case: Case) -> None:
    """Every interface endpoint has private DNS on (AWS API names resolve to it, not to public addresses) — but
    S3's, whose names stay on the gateway endpoint while pods name the interface one — sits in exactly the
    endpoints tier's subnets, is guarded by the endpoint security group only, and serves only this account's
    principals."""
    inv = case.inv
    vpc = vpc_of(inv)
    sg = inv.named("network-endpoints-sg", SG_T)
    endpoint_subnets = [s.urn for s in subnets_by_tier(inv)[Tier.endpoints]]
    for service, e in endpoints(inv, "Interface").items():
        assert e.get("privateDnsEnabled") is (service != "s3"), service
        refs_id_of(e, "vpcId", vpc)
        assert id_refs(e, "subnetIds") == endpoint_subnets, service
        assert id_refs(e, "securityGroupIds") == [sg.urn], service
        [st] = statements(e).values()
        assert st["Condition"] == {"StringEquals": {"aws:PrincipalAccount": ACCOUNT_ID}}, service


def test_endpoint_security_group_admits_only_https_from_private_tiers(case: Case) -> None:
    """The endpoint security group (in this VPC) admits only TCP 443, only from the other private tiers' blocks
    (never 0.0.0.0/0, IPv6, the public tier or other groups), and has no egress rule."""
    inv = case.inv
    sg = inv.named("network-endpoints-sg", SG_T)
    refs_id_of(sg, "vpcId", vpc_of(inv))
    plan = case.spec.plan()
    allowed = {str(plan[t].block) for t in PRIVATE_TIERS if t is not Tier.endpoints}
    sources: list[str] = []
    for rule in sg.get("ingress"):
        assert (rule["protocol"], rule["fromPort"], rule["toPort"]) == ("tcp", 443, 443), rule
        assert not rule.get("ipv6CidrBlocks") and not rule.get("securityGroups") and not rule.get("self"), rule
        assert not rule.get("prefixListIds"), rule
        assert "0.0.0.0/0" not in rule["cidrBlocks"]
        sources += rule["cidrBlocks"]
    assert set(sources) == allowed
    assert sg.get("egress") == []
    assert not [
        r for r in inv
        if r.type in ("aws:ec2/securityGroupRule:SecurityGroupRule", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                      "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
        and any(ref.resource == sg.urn for ref in r.references)
    ], "rules added to the endpoint security group outside its definition"


# --- tags --------------------------------------------------------------------------------------------------


def sdk_accepts_tags(type_token: str) -> bool:
    """Whether the Pulumi AWS SDK class of `type_token` takes a `tags` argument."""
    _, module, cls = type_token.split(":")
    sdk = importlib.import_module(f"pulumi_aws.{module.split('/')[0]}")
    return "tags" in inspect.signature(getattr(sdk, cls)._internal_init).parameters


def test_every_taggable_network_resource_carries_stack_and_component(case: Case) -> None:
    """Every AWS resource of the network component whose SDK class accepts tags carries hardstack:stack (the
    stack) and hardstack:component = "network", plus the blueprint's declared tags."""
    inv = case.inv
    component = inv.named("network", COMPONENT_T)
    children = inv.children(component.urn)
    taggable = [r for r in children if sdk_accepts_tags(r.type)]
    untaggable = {r.type for r in children if not sdk_accepts_tags(r.type)}
    assert untaggable <= {ROUTE_T, RTA_T, "aws:iam/rolePolicy:RolePolicy"}, untaggable
    assert {VPC_T, SUBNET_T, ACL_T, ENDPOINT_T, "aws:ec2/flowLog:FlowLog"} <= {r.type for r in taggable}
    declared = {"cost-center": "ml-platform"} if case.stack == "llm-inference" else {}
    for r in taggable:
        tags = r.get("tags") or {}
        assert tags.get("hardstack:stack") == case.stack, r.name
        assert tags.get("hardstack:component") == "network", r.name
        assert declared.items() <= tags.items(), r.name
    network_types = {VPC_T, SUBNET_T, RT_T, ACL_T, ENDPOINT_T, SG_T, IGW_T, NAT_T, EIP_T}
    load_balancer_groups = {r.urn for r in inv.of_type(SG_T)  # an endpoint's own, beside its load balancer
                            if r.parent and inv[r.parent].type == "hardstack:endpoint:WafEndpoint"}
    strays = [r.name for r in inv if r.type in network_types and r.parent != component.urn
              and r.urn not in load_balancer_groups]
    assert strays == [], "network resources outside the network component"
