"""Segmentation: which tier may talk to which, as the network ACL rules of `modules/segmentation.py` allow it.

Besides checking the rule lists, the tests evaluate the ACLs the way AWS does (stateless: a TCP/UDP
conversation needs the request out of the client's subnet and into the server's, and the reply out of the
server's and into the client's) and assert who can actually reach whom: with no inference endpoint, and with
internal and internet-facing endpoints (their callers reach the load balancer's listeners, the load balancer
reaches the serving tier on the endpoint's port, and nothing else opens).
"""

from __future__ import annotations

import re
from collections import Counter
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Sequence

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hardstack.blueprints.cidr import TierPlan
from hardstack.blueprints.endpoints import EndpointSpec
from hardstack.blueprints.network import PRIVATE_TIERS, NetworkSpec, Tier
from hardstack.modules.endpoint import callers, redirects_http
from hardstack.modules.segmentation import (
    EPHEMERAL_ANY,
    EPHEMERAL_LINUX,
    MAX_RULES_PER_DIRECTION,
    TIER_PEERS,
    AclRule,
    EndpointFlows,
    acl_rules,
    endpoint_flows,
)

ANYWHERE = IPv4Network("0.0.0.0/0")
INTERNET_HOST = IPv4Address("203.0.113.10")
"""An address outside every VPC used here (TEST-NET-3)."""
ADMIN_PORTS = (20, 21, 22, 3389)
"""FTP data/control, SSH, RDP."""
CLIENT_PORTS = (1024, 65535)
"""Source ports an unprivileged client may use; the ACLs must hold for every one of them."""
NAT_SOURCE_PORTS = (1024, 65535)
"""The ports a NAT gateway uses as the source of its translated connections (AWS VPC user guide,
"Ephemeral ports": "A NAT gateway uses ports 1024-65535")."""

SPECS = {
    "default": NetworkSpec(),
    "small-2az": NetworkSpec(
        cidr="10.9.0.0/22", availability_zones=2, tiers={t.value: {"prefix": 25} for t in Tier}
    ),
    "pinned-6az": NetworkSpec(
        cidr="172.16.0.0/16", availability_zones=6, tiers={"data": {"cidr": "172.16.200.0/21"}, "ingress": {"prefix": 24}}
    ),
}
MODES = ("none", "nat")
"""The egress modes."""

ON_PREM = IPv4Network("192.168.0.0/16")
"""Callers of an internal endpoint outside the VPC (a network reached over a VPN or a transit gateway)."""
PARTNERS = (IPv4Network("203.0.113.0/24"), IPv4Network("198.51.100.0/25"))
"""Callers of an internet-facing endpoint (TEST-NET-3 and part of TEST-NET-2)."""
AUTH: dict[str, dict[str, Any]] = {
    "mtls": {"kind": "mtls", "ca_bundle": "s3://example-pki/inference/clients-ca.pem"},
    "jwt": {"kind": "jwt", "issuer": "https://idp.example.com", "jwks_endpoint": "https://idp.example.com/jwks",
            "audience": "inference"},
    "oidc": {"kind": "oidc", "issuer": "https://idp.example.com", "authorization_endpoint": "https://idp.example.com/a",
             "token_endpoint": "https://idp.example.com/t", "user_info_endpoint": "https://idp.example.com/u",
             "client_id": "inference"},
}


def endpoint(name: str, port: int, scheme: str = "internal", auth: str = "mtls",
             allowed: Sequence[IPv4Network] = ()) -> EndpointSpec:
    return EndpointSpec(name=name, tenant="serving", service="inference-server", port=port, scheme=scheme,
                        domain_name=f"{name}.inference.example.com", zone_id="Z0EXAMPLE0ZONE0ID", auth=AUTH[auth],
                        allowed_cidrs=list(allowed))


def endpoint_set(set_id: str, spec: NetworkSpec) -> list[EndpointSpec]:
    """The endpoints of a case: none; one internal (mTLS, callers: the VPC); one internet-facing (JWT, callers:
    anywhere); or a mix of internal ones (the VPC; the inference tier and an outside network) and internet-facing
    ones (OIDC for two partner blocks; mTLS from anywhere on the same port as an internal one)."""
    inference = spec.plan()[Tier.inference].block
    return {
        "no-endpoints": [],
        "internal-mtls": [endpoint("chat", 8000)],
        "internet-jwt": [endpoint("api", 8443, "internet-facing", "jwt")],
        "mixed": [
            endpoint("chat", 8000),
            endpoint("batch", 9000, allowed=[inference, ON_PREM]),
            endpoint("people", 8443, "internet-facing", "oidc", PARTNERS),
            endpoint("machines", 8000, "internet-facing", "mtls"),
        ],
    }[set_id]


ENDPOINT_SETS = ("internal-mtls", "internet-jwt", "mixed")
CASES = [pytest.param(s, m, id=f"{s}-{m}") for s in SPECS for m in MODES]
"""Every network layout and egress mode, without endpoints."""
ENDPOINT_CASES = [pytest.param(s, m, e, id=f"{s}-{m}-{e}") for s in SPECS for m in MODES for e in ENDPOINT_SETS]
ALL_CASES = [pytest.param(s, m, e, id=f"{s}-{m}-{e}") for s in SPECS for m in MODES
             for e in ("no-endpoints", *ENDPOINT_SETS)]
INTERNET_FACING_SETS = ("internet-jwt", "mixed")
PUBLIC_CASES = [c for c in ALL_CASES if c.values[1] == "nat" or c.values[2] in INTERNET_FACING_SETS]
"""The cases with public subnets."""


def tiers_of(egress: str, flows: Sequence[EndpointFlows] = ()) -> tuple[Tier, ...]:
    """The tiers SegmentedVpc builds: the private ones, and the public one for NAT or internet-facing endpoints."""
    public = egress == "nat" or any(f.tier is Tier.public for f in flows)
    return PRIVATE_TIERS + ((Tier.public,) if public else ())


def all_rules(
    spec_id: str, mode: str, endpoints: str = "no-endpoints"
) -> tuple[dict[Tier, TierPlan], dict[Tier, list[AclRule]], str, tuple[EndpointFlows, ...]]:
    spec = SPECS[spec_id]
    plans = spec.plan()
    flows = tuple(endpoint_flows(e, spec.cidr) for e in endpoint_set(endpoints, spec))
    return plans, {t: acl_rules(t, plans, mode, flows) for t in tiers_of(mode, flows)}, mode, flows


def host(plans: dict[Tier, TierPlan], tier: Tier, az: int = 0) -> IPv4Address:
    """A host address in `tier`'s subnet of AZ `az`."""
    return plans[tier].subnets[az].network_address + 4


def permits(rules: list[AclRule], direction: str, proto: str, peer: IPv4Address, port: int) -> bool:
    """Whether an ACL lets a packet through: `peer` is the remote address (source for ingress, destination for
    egress), `port` the destination port. As AWS does: the lowest-numbered matching rule decides (allow or
    deny); anything unmatched is denied."""
    for r in sorted(rules, key=lambda r: r.rule_no):
        if r.direction != direction or peer not in r.cidr:
            continue
        if r.protocol == "-1" or (r.protocol == proto and r.from_port <= port <= r.to_port):
            return r.action == "allow"
    return False


def probe_ports(rules: list[AclRule], low: int = 0, high: int = 65535) -> list[int]:
    """Every port where the ACLs' allow sets can change, and its neighbours: checking these checks all ports."""
    edges = {0, 1, 20, 21, 22, 53, 80, 443, 1023, 1024, 3389, 8080, 32767, 32768, 61000, 65535}
    for r in rules:
        edges |= {r.from_port - 1, r.from_port, r.to_port, r.to_port + 1}
    return sorted(p for p in edges if low <= p <= high)


def converses(
    src_rules: list[AclRule], src: IPv4Address, dst_rules: list[AclRule], dst: IPv4Address, proto: str,
    dport: int, sport: int,
) -> bool:
    """A stateless conversation src:sport -> dst:dport and its replies get through both ACLs."""
    return (
        permits(src_rules, "egress", proto, dst, dport)
        and permits(dst_rules, "ingress", proto, src, dport)
        and permits(dst_rules, "egress", proto, src, sport)
        and permits(src_rules, "ingress", proto, dst, sport)
    )


def reachable_ports(
    rules: dict[Tier, list[AclRule]], plans: dict[Tier, TierPlan], src: Tier, dst: Tier,
    except_sports: Sequence[int] = (), probe_with: Sequence[AclRule] = (),
) -> set[tuple[str, int]]:
    """(protocol, destination port) pairs on which `src` can hold a conversation with `dst` (from a host in
    the first AZ to a host in the last, so that both ACLs are crossed), for any client source port (but
    `except_sports`). The ports probed are those where these rules (and `probe_with`) change."""
    a, b = host(plans, src, 0), host(plans, dst, -1)
    both = rules[src] + rules[dst] + list(probe_with)
    found = set()
    for proto in ("tcp", "udp"):
        for dport in probe_ports(both):
            if any(
                converses(rules[src], a, rules[dst], b, proto, dport, sport)
                for sport in probe_ports(both, *CLIENT_PORTS) if sport not in except_sports
            ):
                found.add((proto, dport))
    return found


# --- the peer relation -------------------------------------------------------------------------------------


def test_tier_peers_cover_every_private_tier_and_are_symmetric() -> None:
    """TIER_PEERS names every private tier and is symmetric: if A may talk to B, B may talk to A (the ACLs
    of both sides are generated from it, so an asymmetric entry would leave one side half-open)."""
    assert set(TIER_PEERS) == set(PRIVATE_TIERS)
    for tier, peers in TIER_PEERS.items():
        for peer in peers:
            assert tier in TIER_PEERS[peer], f"{tier.value} peers {peer.value} but not the other way round"


def test_training_and_inference_are_never_peers() -> None:
    """Training and inference workloads are isolated from each other (a compromised model server cannot
    reach training data pipelines and vice versa)."""
    assert Tier.training not in TIER_PEERS[Tier.inference]
    assert Tier.inference not in TIER_PEERS[Tier.training]


def test_ingress_peers_neither_training_nor_data() -> None:
    """The ingress tier (the one closest to clients) reaches only inference, never training or data, and
    neither of them lists ingress as a peer; the endpoints tier peers nobody."""
    assert set(TIER_PEERS[Tier.ingress]) == {Tier.inference}
    for tier in (Tier.training, Tier.data):
        assert Tier.ingress not in TIER_PEERS[tier]
    assert TIER_PEERS[Tier.endpoints] == ()


@pytest.mark.parametrize("spec_id,mode", CASES)
def test_acls_let_exactly_the_peers_converse(spec_id: str, mode: str) -> None:
    """Evaluating both ACLs statelessly: two private tiers can converse on any port exactly when they are
    peers; any other private tier reaches the endpoints tier on TCP 443 only; the endpoints tier initiates
    nothing (not even towards itself across AZs); training<->inference and ingress<->training/data get no conversation on any protocol or port."""
    plans, rules, _, _ = all_rules(spec_id, mode)
    for src in PRIVATE_TIERS:
        for dst in PRIVATE_TIERS:
            got = reachable_ports(rules, plans, src, dst)
            if dst in TIER_PEERS[src]:
                for probe in (("tcp", 22), ("tcp", 443), ("tcp", 8080), ("udp", 53), ("tcp", 65535)):
                    assert probe in got, f"{src.value} -> {dst.value} (peers) cannot use {probe}"
            elif dst is Tier.endpoints and src is not Tier.endpoints:
                assert got == {("tcp", 443)}, f"{src.value} -> endpoints: {sorted(got)}"
            else:
                assert got == set(), f"{src.value} -> {dst.value} (not peers) can converse on {sorted(got)}"
    for forbidden in ((Tier.training, Tier.inference), (Tier.ingress, Tier.training), (Tier.ingress, Tier.data)):
        a, b = forbidden
        assert reachable_ports(rules, plans, a, b) == set() == reachable_ports(rules, plans, b, a), forbidden


@pytest.mark.parametrize("spec_id,mode,endpoints", PUBLIC_CASES)
def test_public_tier_reaches_only_the_serving_tier_and_only_nat_tiers_reach_it(spec_id: str, mode: str,
                                                                                endpoints: str) -> None:
    """With public subnets, nothing there can open a conversation into a private tier but the load balancers of
    internet-facing endpoints into the serving (inference) tier, on exactly those endpoints' ports; in `nat`
    mode only the inference and training tiers reach the public (NAT) subnets, and only on TCP 443; data,
    endpoints and ingress never do; once load balancers live there, inference no longer holds a conversation with
    the public subnets' own addresses either (it refuses everything from the public tier but its load balancers'
    requests; the NAT path is unaffected: replies through NAT come from outside addresses, see the NAT path test).
    (A pod answering its load balancer from the endpoint's port is a reply, and stateless rules cannot tell it
    from a request: such source ports are left out.)"""
    plans, rules, egress, flows = all_rules(spec_id, mode, endpoints)
    targets = {f.target_port for f in flows if f.tier is Tier.public}
    for tier in PRIVATE_TIERS:
        expected = {("tcp", p) for p in targets} if tier is Tier.inference else set()
        assert reachable_ports(rules, plans, Tier.public, tier) == expected, tier
        nat = (Tier.training,) if targets else (Tier.inference, Tier.training)
        expected = {("tcp", 443)} if egress == "nat" and tier in nat else set()
        assert reachable_ports(rules, plans, tier, Tier.public, except_sports=tuple(targets)) == expected, tier


# --- rules from and to the internet ------------------------------------------------------------------------


@pytest.mark.parametrize("spec_id,mode,endpoints", ALL_CASES)
def test_no_admin_ports_or_all_traffic_from_anywhere(spec_id: str, mode: str, endpoints: str) -> None:
    """No tier's ACL admits a packet from the internet (or an endpoint's outside callers) to port 20, 21, 22 or
    3389 (TCP or UDP); no allow rule from 0.0.0.0/0 even spans one of them (checkov's CKV_AWS_229-232 read each
    rule alone); no rule allows all protocols (-1) to or from a block outside the VPC, and the only outside
    blocks named are 0.0.0.0/0 and the callers of the endpoints whose load balancers live in the tier."""
    plans, rules, _, flows = all_rules(spec_id, mode, endpoints)
    vpc = SPECS[spec_id].cidr
    outside_callers = [c for f in flows for c in f.callers if not c.subnet_of(vpc)]
    for tier, acl in rules.items():
        for proto in ("tcp", "udp"):
            for port in ADMIN_PORTS:
                for peer in [INTERNET_HOST] + [c.network_address + 1 for c in outside_callers]:
                    assert not permits(acl, "ingress", proto, peer, port), f"{tier.value}: {proto}/{port} from {peer}"
        for r in acl:
            if r.direction == "ingress" and r.action == "allow" and r.cidr == ANYWHERE:
                assert not any(r.from_port <= p <= r.to_port for p in ADMIN_PORTS), f"{tier.value}: {r}"
            if not r.cidr.subnet_of(vpc):
                assert r.protocol != "-1", f"{tier.value}: all traffic {r.direction} {r.cidr}"
                assert r.cidr == ANYWHERE or r.cidr in {c for f in flows if f.tier is tier for c in f.callers}, (
                    f"{tier.value}: unexpected outside block {r.cidr}")


@pytest.mark.parametrize("spec_id,mode", CASES)
def test_exactly_the_s3_tiers_and_the_nat_tier_have_internet_rules(spec_id: str, mode: str) -> None:
    """Only inference, training and data (S3 through the gateway endpoint) and, in `nat` mode, the public tier
    have rules naming 0.0.0.0/0. The endpoints and ingress tiers have none. Each such private tier has exactly
    two: HTTPS out and the Linux ephemeral range back in (so data's only way towards the internet is the S3
    HTTPS rule)."""
    _, rules, egress, _ = all_rules(spec_id, mode)
    with_anywhere = {t for t, acl in rules.items() if any(r.cidr == ANYWHERE for r in acl)}
    expected = {Tier.inference, Tier.training, Tier.data} | ({Tier.public} if egress == "nat" else set())
    assert with_anywhere == expected
    for tier in (Tier.inference, Tier.training, Tier.data):
        outside = sorted(
            (r.direction, r.protocol, r.from_port, r.to_port) for r in rules[tier] if r.cidr == ANYWHERE
        )
        assert outside == [("egress", "tcp", 443, 443), ("ingress", "tcp", 32768, 65535)], tier
    for tier in (Tier.data, Tier.endpoints, Tier.ingress):
        for port in (22, 53, 80, 8080, 40000):
            for proto in ("tcp", "udp"):
                assert not permits(rules[tier], "egress", proto, INTERNET_HOST, port), (tier, proto, port)
    assert not permits(rules[Tier.endpoints], "egress", "tcp", INTERNET_HOST, 443)


@pytest.mark.parametrize("spec_id", SPECS)
def test_endpoints_tier_accepts_only_https(spec_id: str) -> None:
    """The endpoints tier's ACL admits TCP 443 and nothing else, and only from the other private tiers'
    blocks (never from the public tier or the internet), whatever endpoints the stack has."""
    for mode, endpoints in [(m, e) for m in MODES for e in ("no-endpoints", *ENDPOINT_SETS)]:
        plans, rules, _, _ = all_rules(spec_id, mode, endpoints)
        inbound = [r for r in rules[Tier.endpoints] if r.direction == "ingress"]
        assert inbound
        for r in inbound:
            assert (r.protocol, r.from_port, r.to_port) == ("tcp", 443, 443), r
        assert {r.cidr for r in inbound} == {
            plans[t].block for t in (Tier.ingress, Tier.inference, Tier.training, Tier.data)
        }


# --- statelessness -----------------------------------------------------------------------------------------


def covers(rule: AclRule, low: int, high: int) -> bool:
    return rule.protocol == "-1" or rule.from_port <= low and high <= rule.to_port


@pytest.mark.parametrize("spec_id,mode,endpoints", ALL_CASES)
def test_every_egress_rule_to_a_tier_block_has_its_return_path(spec_id: str, mode: str, endpoints: str) -> None:
    """ACLs are stateless: for every egress rule towards another tier's block there is an ingress rule from
    that same block that lets the conversation complete: all traffic back for a peer (-1) rule; the client
    ephemeral range back for a request to a service port (443, an endpoint's port); the service port back in
    for a reply rule."""
    plans, rules, _, _ = all_rules(spec_id, mode, endpoints)
    blocks = {p.block: t for t, p in plans.items()}
    for tier, acl in rules.items():
        for out in (r for r in acl if r.direction == "egress" and r.cidr in blocks and r.action == "allow"):
            back = [r for r in acl if r.direction == "ingress" and r.cidr == out.cidr and r.action == "allow"]
            if out.protocol == "-1":
                assert any(r.protocol == "-1" for r in back), f"{tier.value} -> {blocks[out.cidr].value}: {out}"
                assert blocks[out.cidr] in TIER_PEERS.get(tier, ()), f"{tier.value}: all traffic to a non-peer"
                continue
            same = [r for r in back if r.protocol in (out.protocol, "-1")]
            request = not covers(out, *CLIENT_PORTS)
            if request:  # the reply comes back to the client's ephemeral port
                assert any(covers(r, *CLIENT_PORTS) for r in same), f"{tier.value}: no return path for {out}"
            else:  # a reply rule: some request must be admitted from there
                assert same and any(not covers(r, *CLIENT_PORTS) for r in same), f"{tier.value}: {out} answers nothing"


@pytest.mark.parametrize("spec_id,mode,endpoints", ALL_CASES)
def test_every_rule_towards_another_tier_is_matched_by_that_tier(spec_id: str, mode: str, endpoints: str) -> None:
    """A rule in private tier A towards private tier B's block is matched in B's ACL (B admits from / sends to
    A's hosts the same protocol and ports): segmentation between private tiers is decided by both sides,
    never by one ACL alone. (The public tier is left out: NAT rewrites addresses, see the NAT path tests.)"""
    plans, rules, _, _ = all_rules(spec_id, mode, endpoints)
    blocks = {plans[t].block: t for t in PRIVATE_TIERS}
    for tier in PRIVATE_TIERS:
        for r in rules[tier]:
            other = blocks.get(r.cidr)
            if other is None:
                continue
            mirror = "ingress" if r.direction == "egress" else "egress"
            protos = ("tcp", "udp") if r.protocol == "-1" else (r.protocol,)
            ports = (0, 22, 65535) if r.protocol == "-1" else (r.from_port, r.to_port)
            for az in range(len(plans[tier].subnets)):
                for proto in protos:
                    for port in ports:
                        assert permits(rules[other], mirror, proto, host(plans, tier, az), port), (
                            f"{tier.value} {r.direction} {r} is not matched by {other.value} ({proto}/{port})"
                        )


@pytest.mark.parametrize("spec_id", SPECS)
def test_private_tiers_receive_replies_from_s3_and_the_internet(spec_id: str) -> None:
    """The S3 tiers (inference, training, data) can complete HTTPS to an outside address (S3 through the
    gateway endpoint) from any Linux ephemeral source port, and only HTTPS: plain HTTP out is denied, with or
    without endpoints."""
    for mode, endpoints in [(m, e) for m in MODES for e in ("no-endpoints", *ENDPOINT_SETS)]:
        _, rules, _, _ = all_rules(spec_id, mode, endpoints)
        for tier in (Tier.inference, Tier.training, Tier.data):
            acl = rules[tier]
            assert permits(acl, "egress", "tcp", INTERNET_HOST, 443), tier
            for sport in (32768, 45000, 60999, 65535):
                assert permits(acl, "ingress", "tcp", INTERNET_HOST, sport), (tier, sport)
            assert not permits(acl, "egress", "tcp", INTERNET_HOST, 80), tier


@pytest.mark.parametrize("spec_id,endpoints", [(s, e) for s in SPECS for e in ("no-endpoints", *ENDPOINT_SETS)])
def test_nat_path_opens_for_inference_and_training_only(spec_id: str, endpoints: str) -> None:
    """In `nat` mode, HTTPS from an inference or training host to the internet passes every ACL hop of the NAT
    path: out of the tier, into the public subnet, out to the internet on 443, and the translated reply from
    the public subnet back into the tier on the host's Linux ephemeral port (the NAT keeps the internet
    address as the reply's source). Data, ingress and endpoints hosts are stopped at the public subnet, where
    internet-facing load balancers live too."""
    plans, rules, _, _ = all_rules(spec_id, "nat", endpoints)
    public = rules[Tier.public]
    assert permits(public, "egress", "tcp", INTERNET_HOST, 443)
    for tier in PRIVATE_TIERS:
        for az in range(len(plans[tier].subnets)):
            me = host(plans, tier, az)
            into_nat = permits(rules[tier], "egress", "tcp", INTERNET_HOST, 443) and permits(
                public, "ingress", "tcp", me, 443
            )
            if tier in (Tier.inference, Tier.training):
                assert into_nat, (tier, az)
                for port in (32768, 45000, 60999):
                    assert permits(public, "egress", "tcp", me, port), (tier, port)
                    assert permits(rules[tier], "ingress", "tcp", INTERNET_HOST, port), (tier, port)
            else:
                assert not into_nat, f"{tier.value} hosts can send through the NAT gateways"
                for port in (53, 80, 8080):
                    assert not permits(public, "ingress", "tcp", me, port), (tier, port)


@pytest.mark.parametrize("spec_id,endpoints", [(s, e) for s in SPECS for e in ("no-endpoints", *ENDPOINT_SETS)])
def test_nat_subnets_admit_replies_on_every_nat_source_port(spec_id: str, endpoints: str) -> None:
    """In `nat` mode the public (NAT) tier's ACL must admit the replies from the internet on every source port
    the NAT gateway may have used for the translated connection (1024-65535), or a share of outbound HTTPS
    connections from inference/training silently hangs. Only the admin ports this suite forbids from
    anywhere (3389 lies in the range) may be carved out."""
    plans, rules, _, _ = all_rules(spec_id, "nat", endpoints)
    acl = rules[Tier.public]
    assert permits(acl, "egress", "tcp", INTERNET_HOST, 443)
    missing = [
        p for p in probe_ports(acl, *NAT_SOURCE_PORTS) + [1025, 2000, 8080, 20000, 32767]
        if p not in ADMIN_PORTS and not permits(acl, "ingress", "tcp", INTERNET_HOST, p)
    ]
    assert not missing, f"NAT replies to source ports {sorted(set(missing))} are dropped by the public ACL"


# --- numbering and the public tier -------------------------------------------------------------------------


@pytest.mark.parametrize("spec_id,mode,endpoints", ALL_CASES)
def test_rule_numbers_are_unique_per_direction(spec_id: str, mode: str, endpoints: str) -> None:
    """Within one ACL no two rules of the same direction share a number (AWS would refuse or, worse, one
    rule would silently replace the other); numbers are in AWS's 1..32766; no direction has more rules than
    AWS's default quota (20), and no rule repeats another."""
    _, rules, _, _ = all_rules(spec_id, mode, endpoints)
    for tier, acl in rules.items():
        numbers = Counter((r.direction, r.rule_no) for r in acl)
        assert all(n == 1 for n in numbers.values()), (tier, numbers)
        assert all(1 <= r.rule_no <= 32766 for r in acl), tier
        for direction in ("ingress", "egress"):
            assert sum(r.direction == direction for r in acl) <= MAX_RULES_PER_DIRECTION == 20, (tier, direction)
        matches = Counter((r.direction, r.action, r.protocol, r.from_port, r.to_port, r.cidr) for r in acl)
        assert all(n == 1 for n in matches.values()), (tier, matches)


@pytest.mark.parametrize("spec_id", SPECS)
def test_public_tier_has_rules_only_for_nat_or_internet_facing_endpoints(spec_id: str) -> None:
    """Public subnets get no rule at all unless NAT gateways or internet-facing load balancers live there
    (internal endpoints add nothing to it). Its allow rules naming the VPC name the NAT tiers (NAT) and the
    serving tier (the load balancers' targets) only, and everything else from inside the VPC is refused before
    any rule naming outside addresses."""
    spec = SPECS[spec_id]
    plans = spec.plan()
    assert acl_rules(Tier.public, plans, "none") == []
    assert acl_rules(Tier.public, plans, "none", all_rules(spec_id, "none", "internal-mtls")[3]) == []
    for mode, endpoints in (("nat", "no-endpoints"), ("nat", "mixed"), ("none", "internet-jwt"), ("none", "mixed")):
        acl = all_rules(spec_id, mode, endpoints)[1][Tier.public]
        peers = {r.cidr for r in acl if r.cidr.subnet_of(spec.cidr) and r.action == "allow"}
        nat = {plans[Tier.inference].block, plans[Tier.training].block} if mode == "nat" else set()
        serving = {plans[Tier.inference].block} if endpoints != "no-endpoints" else set()
        assert peers == nat | serving, (mode, endpoints)
        denied = [r for r in acl if r.action == "deny"]
        assert {r.cidr for r in denied} == {plans[t].block for t in PRIVATE_TIERS}, (mode, endpoints)
        first_outside = min(r.rule_no for r in acl if r.direction == "ingress" and not r.cidr.subnet_of(spec.cidr))
        assert all(r.direction == "ingress" and r.rule_no < first_outside for r in denied), (mode, endpoints)


@pytest.mark.parametrize("spec_id", SPECS)
def test_private_rules_do_not_depend_on_egress_mode(spec_id: str) -> None:
    """Switching egress to `nat` does not widen any private tier's ACL: the rules are the same in every mode
    (the way out is decided by routes, and only for inference and training), with or without endpoints."""
    plans = SPECS[spec_id].plan()
    for endpoints in ("no-endpoints", *ENDPOINT_SETS):
        none, nat = all_rules(spec_id, "none", endpoints)[1], all_rules(spec_id, "nat", endpoints)[1]
        for tier in PRIVATE_TIERS:
            assert nat[tier] == none[tier], (tier, endpoints)
    base = {t: acl_rules(t, plans, "none") for t in PRIVATE_TIERS}
    internal_only = all_rules(spec_id, "nat", "internal-mtls")[1]
    assert internal_only[Tier.inference] == base[Tier.inference], "the ingress tier peers inference already"


# --- inference endpoints -----------------------------------------------------------------------------------

VPC_OF_DEFAULT = SPECS["default"].cidr
OUTSIDE_POOL = (ANYWHERE, ON_PREM, *PARTNERS, IPv4Network("100.64.0.0/10"))
SERVICE_PORTS = (22, 80, 443, 3389, 8000, 8443, 9000, 40000)
"""Service ports to try, the admin ports among them: a Service may well listen on 22, the ACLs must still never
open it to the outside."""


def caller_hosts(caller: IPv4Network) -> list[IPv4Address]:
    """Addresses to try a caller block with: the internet host for 0.0.0.0/0, else its first and last hosts."""
    if caller == ANYWHERE:
        return [INTERNET_HOST]
    return [caller.network_address + 1, caller.broadcast_address - 1]


def rule_key(r: AclRule) -> tuple[object, ...]:
    """A rule without its number."""
    return (r.direction, r.action, r.protocol, r.from_port, r.to_port, r.cidr)


def outside_reach(acl: list[AclRule], peer: IPv4Address) -> set[tuple[str, int]]:
    """(protocol, port) on which an outside host `peer` holds a conversation with a host behind `acl` (the
    outside has no ACL of its own), from any client source port."""
    return {
        (proto, port)
        for proto in ("tcp", "udp")
        for port in probe_ports(acl)
        if permits(acl, "ingress", proto, peer, port)
        and any(permits(acl, "egress", proto, peer, sport) for sport in probe_ports(acl, *CLIENT_PORTS))
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["internal", "internet-facing"]), st.sampled_from(sorted(AUTH)),
       st.lists(st.sampled_from([*OUTSIDE_POOL, VPC_OF_DEFAULT, IPv4Network("10.40.0.0/18")]), max_size=4),
       st.sampled_from(SERVICE_PORTS))
def test_endpoint_flows_are_what_the_load_balancer_serves(scheme: str, auth: str, allowed: list[IPv4Network],
                                                          port: int) -> None:
    """The flows derived from an endpoint agree with its load balancer (modules/endpoint.py): the callers are
    its security group's (the declared CIDRs, else the VPC or anywhere); port 80 is a listener exactly where the
    load balancer redirects HTTP; the load balancer lives in the ingress tier (internal) or the public tier and
    needs the identity provider for oidc and jwt; the target is the Service's port. An internal endpoint with
    oidc or jwt (its load balancer has no way out), or an internet-facing one whose callers lie inside the VPC
    (the public tier refuses the private tiers), is refused with the reason."""
    internet_facing = scheme == "internet-facing"
    spec = endpoint("api", port, "internet-facing", auth, allowed).model_copy(update={"scheme": scheme})
    if not internet_facing and auth != "mtls":
        with pytest.raises(ValueError, match=f"auth {auth} needs the load balancer to reach the identity provider"):
            endpoint_flows(spec, VPC_OF_DEFAULT)
        return
    if internet_facing and any(c.subnet_of(VPC_OF_DEFAULT) for c in allowed):
        with pytest.raises(ValueError, match="internet-facing but its allowed_cidrs .* lie inside the VPC"):
            endpoint_flows(spec, VPC_OF_DEFAULT)
        return
    flows = endpoint_flows(spec, VPC_OF_DEFAULT)
    assert {str(c) for c in flows.callers} == set(callers(spec, str(VPC_OF_DEFAULT)))
    assert len(set(flows.callers)) == len(flows.callers)
    assert flows.listener_ports == ((443, 80) if redirects_http(spec, str(VPC_OF_DEFAULT)) else (443,))
    assert flows.tier is (Tier.public if internet_facing else Tier.ingress)
    assert flows.identity_provider is (auth in ("oidc", "jwt"))
    assert flows.target_port == port


@pytest.mark.parametrize("spec_id,mode,endpoints", ENDPOINT_CASES)
def test_callers_reach_the_listeners_and_get_their_replies(spec_id: str, mode: str, endpoints: str) -> None:
    """The load balancer's tier admits every one of an endpoint's callers on each listener port (443, and 80
    where HTTP is redirected) and sends the replies back: to any unprivileged port of callers inside the VPC,
    to Linux's ephemeral range of callers outside it. Callers in the serving tier complete the conversation
    with an internal load balancer through their own ACL too, from any source port."""
    plans, rules, _, flows = all_rules(spec_id, mode, endpoints)
    vpc = SPECS[spec_id].cidr
    for f in flows:
        alb = rules[f.tier]
        for caller in f.callers:
            low, high = f.reply_ports(caller)
            assert (low, high) == (EPHEMERAL_ANY if caller.subnet_of(vpc) else EPHEMERAL_LINUX)
            for peer in caller_hosts(caller):
                for port in f.listener_ports:
                    assert permits(alb, "ingress", "tcp", peer, port), (f.name, caller, port)
                for sport in (low, (low + high) // 2, high):
                    assert permits(alb, "egress", "tcp", peer, sport), (f.name, caller, sport)
        if f.tier is Tier.ingress and any(plans[Tier.inference].block.subnet_of(c) for c in f.callers):
            pods = rules[Tier.inference]
            for port in f.listener_ports:
                for sport in probe_ports(pods + alb, *CLIENT_PORTS):
                    assert converses(pods, host(plans, Tier.inference), alb, host(plans, Tier.ingress, -1), "tcp",
                                     port, sport), (f.name, port, sport)


@pytest.mark.parametrize("spec_id,mode,endpoints", ENDPOINT_CASES)
def test_load_balancers_reach_their_pods_on_the_service_port(spec_id: str, mode: str, endpoints: str) -> None:
    """From every AZ of the load balancer's tier to every AZ of the serving tier, the load balancer holds a
    conversation with the pods on the endpoint's port, from any source port (both ACLs, both directions). That
    it reaches nothing else is `test_public_tier_reaches_only_the_serving_tier_and_only_nat_tiers_reach_it`."""
    plans, rules, _, flows = all_rules(spec_id, mode, endpoints)
    for f in flows:
        for a in range(len(plans[f.tier].subnets)):
            for b in range(len(plans[Tier.inference].subnets)):
                for sport in (1024, 32767, 32768, 65535):
                    assert converses(rules[f.tier], host(plans, f.tier, a), rules[Tier.inference],
                                     host(plans, Tier.inference, b), "tcp", f.target_port, sport), (f.name, a, b)


@pytest.mark.parametrize("spec_id,mode,endpoints", ENDPOINT_CASES)
def test_nothing_from_outside_reaches_a_tier_but_through_the_listeners(spec_id: str, mode: str,
                                                                       endpoints: str) -> None:
    """From the internet and from every outside caller: no conversation with a private tier but on the listener
    ports of the internal load balancers that name the caller; with the public tier, below port 1024 exactly the
    listener ports of the internet-facing load balancers that name it, and never an admin port. (Above 1024 the
    public tier's reply rules - the NAT gateways' and identity providers' replies in, the callers' replies out -
    meet statelessly; nothing there listens on them.) From the load balancers on, only the serving tier on the
    endpoints' ports is reached (see the public tier test above)."""
    _, rules, _, flows = all_rules(spec_id, mode, endpoints)
    vpc = SPECS[spec_id].cidr
    outsiders = {INTERNET_HOST} | {h for f in flows for c in f.callers if not c.subnet_of(vpc) for h in caller_hosts(c)}
    for peer in sorted(outsiders):
        for tier, acl in rules.items():
            got = outside_reach(acl, peer)
            listeners = {("tcp", p) for f in flows if f.tier is tier and any(peer in c for c in f.callers)
                         for p in f.listener_ports}
            if tier is Tier.public:
                assert {(proto, p) for proto, p in got if p < 1024} == listeners, (str(peer), sorted(got))
                assert not any(p in ADMIN_PORTS for _, p in got), (str(peer), sorted(got))
            else:
                assert got == listeners, (str(peer), tier.value, sorted(got))


@pytest.mark.parametrize("spec_id,mode,endpoints", ENDPOINT_CASES)
def test_training_data_and_endpoints_tiers_never_get_endpoint_rules(spec_id: str, mode: str, endpoints: str) -> None:
    """Endpoints change the ACLs of the load balancers' tiers and of the serving tier only: training, data and
    endpoints keep exactly their rules; inference gains, for internet-facing endpoints only, their ports from
    the public tier, its replies there and the refusal of everything else from the public tier, and loses
    nothing (internal load balancers sit in the ingress tier, which it peers already)."""
    plans, rules, _, flows = all_rules(spec_id, mode, endpoints)
    base = all_rules(spec_id, mode)[1]
    for tier in (Tier.training, Tier.data, Tier.endpoints):
        assert rules[tier] == base[tier], tier
    public = plans[Tier.public].block
    targets = {f.target_port for f in flows if f.tier is Tier.public}
    expected = {("ingress", "allow", "tcp", p, p, public) for p in targets}
    if targets:
        expected |= {("egress", "allow", "tcp", *EPHEMERAL_ANY, public), ("ingress", "deny", "-1", 0, 0, public)}
    now, before = {rule_key(r) for r in rules[Tier.inference]}, {rule_key(r) for r in base[Tier.inference]}
    assert now - before == expected and before <= now


@pytest.mark.parametrize("spec_id,mode,endpoints", ENDPOINT_CASES)
def test_endpoints_open_no_conversation_between_private_tiers_but_callers_to_internal_listeners(
    spec_id: str, mode: str, endpoints: str
) -> None:
    """Between private tiers, endpoints add conversations only towards the ingress tier, on the listener ports of
    internal load balancers whose callers include the source tier (training and data reach them on 443 through
    their own HTTPS rule, never on 80; their ACLs get no endpoint rule). Training and inference still never
    meet, and the ingress tier still starts nothing towards training or data."""
    plans, rules, _, flows = all_rules(spec_id, mode, endpoints)
    base = all_rules(spec_id, mode)[1]
    for src in PRIVATE_TIERS:
        for dst in PRIVATE_TIERS:
            probes = rules[src] + rules[dst] + base[src] + base[dst]  # the same ports probed with both
            got = reachable_ports(rules, plans, src, dst, probe_with=probes)
            before = reachable_ports(base, plans, src, dst, probe_with=probes)
            added = got - before
            assert before <= got, (src.value, dst.value)
            if dst is Tier.ingress:
                named = {("tcp", p) for f in flows if f.tier is Tier.ingress
                         and any(plans[src].block.subnet_of(c) for c in f.callers) for p in f.listener_ports}
                assert added <= named, (src.value, sorted(added))
            else:
                assert added == set(), (src.value, dst.value, sorted(added))
    assert reachable_ports(rules, plans, Tier.training, Tier.inference) == set()
    assert reachable_ports(rules, plans, Tier.inference, Tier.training) == set()
    assert reachable_ports(rules, plans, Tier.ingress, Tier.training) == set()
    assert reachable_ports(rules, plans, Tier.ingress, Tier.data) == set()


@pytest.mark.parametrize("spec_id,mode,endpoints", ENDPOINT_CASES)
def test_ingress_tier_refuses_the_public_tier_even_when_callers_include_it(spec_id: str, mode: str,
                                                                          endpoints: str) -> None:
    """NAT gateways and internet-facing load balancers call no internal endpoint: the ingress tier refuses every
    packet from the public tier's block (planned whether or not it is built) before admitting an internal
    endpoint's callers, even when those are the whole VPC; callers elsewhere in the VPC are still admitted."""
    plans, rules, _, flows = all_rules(spec_id, mode, endpoints)
    acl = rules[Tier.ingress]
    for az in range(len(plans[Tier.public].subnets)):
        for port in (80, 443, 8000, 40000):
            assert not permits(acl, "ingress", "tcp", host(plans, Tier.public, az), port), (az, port)
    for f in (f for f in flows if f.tier is Tier.ingress):
        for tier in (Tier.inference, Tier.training, Tier.data):
            if any(plans[tier].block.subnet_of(c) for c in f.callers):
                assert all(permits(acl, "ingress", "tcp", host(plans, tier), p) for p in f.listener_ports), tier


@pytest.mark.parametrize("spec_id,mode,endpoints", PUBLIC_CASES)
def test_public_tier_reaches_the_internet_only_for_nat_or_identity_providers(spec_id: str, mode: str,
                                                                             endpoints: str) -> None:
    """The public tier sends HTTPS to the internet (and admits its replies) only for NAT gateways or for
    internet-facing endpoints authenticating with OIDC or JWT (the load balancer exchanges codes and fetches
    signing keys itself); it never sends plain HTTP or anything else out but replies."""
    _, rules, _, flows = all_rules(spec_id, mode, endpoints)
    acl = rules[Tier.public]
    needs = mode == "nat" or any(f.identity_provider for f in flows if f.tier is Tier.public)
    out = permits(acl, "egress", "tcp", INTERNET_HOST, 443) and all(
        permits(acl, "ingress", "tcp", INTERNET_HOST, p) for p in (32768, 45000, 60999, 65535))
    assert out == needs
    for port in (22, 53, 80, 8080, 1023):
        assert not permits(acl, "egress", "tcp", INTERNET_HOST, port), port


@pytest.mark.parametrize("spec_id", SPECS)
def test_internet_facing_mtls_endpoint_has_no_way_out(spec_id: str) -> None:
    """An internet-facing endpoint authenticating with mutual TLS gets its listener (443 only: its callers are
    anywhere, so port 80 stays closed) and its replies, but the public tier sends nothing else to the internet."""
    spec = SPECS[spec_id]
    flows = [endpoint_flows(endpoint("machines", 8000, "internet-facing", "mtls"), spec.cidr)]
    acl = acl_rules(Tier.public, spec.plan(), "none", flows)
    assert permits(acl, "ingress", "tcp", INTERNET_HOST, 443)
    assert not permits(acl, "ingress", "tcp", INTERNET_HOST, 80)
    assert permits(acl, "egress", "tcp", INTERNET_HOST, 40000)
    assert not permits(acl, "egress", "tcp", INTERNET_HOST, 443)
    assert not permits(acl, "ingress", "tcp", INTERNET_HOST, 40000), "no replies to wait for"


def cidrs(n: int) -> list[IPv4Network]:
    return [IPv4Network(f"203.0.{i}.0/24") for i in range(n)]


@pytest.mark.parametrize("mode,fits", [("none", 6), ("nat", 5)])
def test_more_rules_than_the_acl_quota_are_refused_naming_the_count(mode: str, fits: int) -> None:
    """AWS allows 20 inbound and 20 outbound rules per network ACL by default. The public tier's inbound rules
    are: the pods' replies, the 5 refusals of the private tiers, 2 per caller CIDR (443, 80), the identity
    provider's replies (without NAT) or the NAT's 2 reply ranges and HTTPS from 2 NAT tiers. `fits` CIDRs of
    an OIDC endpoint fit; one more is refused with the count, the quota and the endpoints responsible, also
    when the CIDRs are spread over several endpoints; repeated callers take their rules once."""
    spec = SPECS["default"]
    plans = spec.plan()
    ok = endpoint_flows(endpoint("people", 8443, "internet-facing", "oidc", cidrs(fits)), spec.cidr)
    inbound = [r for r in acl_rules(Tier.public, plans, mode, [ok]) if r.direction == "ingress"]
    assert len(inbound) == {"none": 19, "nat": 20}[mode]
    over = endpoint_flows(endpoint("people", 8443, "internet-facing", "oidc", cidrs(fits + 1)), spec.cidr)
    need = len(inbound) + 2
    base = len([r for r in acl_rules(Tier.public, plans, mode) if r.direction == "ingress"])  # NAT's, if any
    with pytest.raises(ValueError, match=rf"the public tier would need {need} inbound rules, more than the 20 AWS "
                                         rf"allows per direction by default; {need - base} of them are for the "
                                         r"endpoints people \(one per allowed CIDR"):
        acl_rules(Tier.public, plans, mode, [over])
    spread = [endpoint_flows(endpoint("people", 8443, "internet-facing", "oidc", cidrs(fits + 1)[:3]), spec.cidr),
              endpoint_flows(endpoint("partners", 8443, "internet-facing", "jwt", cidrs(fits + 1)[3:]), spec.cidr)]
    with pytest.raises(ValueError, match=rf"would need {need} inbound rules.*for the endpoints partners, people \("):
        acl_rules(Tier.public, plans, mode, spread)
    shared = [ok, endpoint_flows(endpoint("partners", 8000, "internet-facing", "jwt", cidrs(fits)), spec.cidr)]
    assert len([r for r in acl_rules(Tier.public, plans, mode, shared) if r.direction == "ingress"]) == len(inbound)


OUTSIDE_CALLERS = st.lists(st.sampled_from(OUTSIDE_POOL), max_size=3, unique=True)


@st.composite
def stacks_with_endpoints(draw: st.DrawFn) -> tuple[str, str, list[EndpointSpec]]:
    """A network layout, an egress mode and 1-4 endpoints of any scheme, authentication, Service port and
    callers (inside the VPC too, for internal ones)."""
    spec_id = draw(st.sampled_from(sorted(SPECS)))
    spec = SPECS[spec_id]
    plans = spec.plan()
    inside = (spec.cidr, plans[Tier.inference].block, plans[Tier.ingress].block, plans[Tier.data].block)
    specs = []
    for i in range(draw(st.integers(1, 4))):
        scheme = draw(st.sampled_from(["internal", "internet-facing"]))
        if scheme == "internal":
            auth, allowed = "mtls", draw(st.lists(st.sampled_from(OUTSIDE_POOL + inside), max_size=3, unique=True))
        else:
            auth, allowed = draw(st.sampled_from(sorted(AUTH))), draw(OUTSIDE_CALLERS)
        specs.append(endpoint(f"endpoint-{i}", draw(st.sampled_from(SERVICE_PORTS)), scheme, auth, allowed))
    return spec_id, draw(st.sampled_from(MODES)), specs


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks_with_endpoints(), st.randoms(use_true_random=False))
def test_any_endpoints_open_exactly_their_flows(stack: tuple[str, str, list[EndpointSpec]], random: Any) -> None:
    """For any endpoints: the ACLs fit AWS's quota or are refused naming the count; the rules do not depend on
    the order endpoints are listed in; training, data and endpoints keep their rules; the public tier reaches
    exactly the serving tier on the internet-facing endpoints' ports; every load balancer holds a conversation
    with its pods and admits its callers; from the internet no private tier is reached but through an internal
    listener that names it, no admin port is open anywhere, and no rule from 0.0.0.0/0 spans one."""
    spec_id, mode, specs = stack
    spec = SPECS[spec_id]
    plans = spec.plan()
    flows = [endpoint_flows(e, spec.cidr) for e in specs]
    tiers = tiers_of(mode, flows)
    try:
        rules = {t: acl_rules(t, plans, mode, flows) for t in tiers}
    except ValueError as e:
        found = re.search(r"would need (\d+) (inbound|outbound) rules, more than the 20", str(e))
        assert found and int(found.group(1)) > MAX_RULES_PER_DIRECTION, str(e)
        event("refused: more rules than the quota")
        return
    event(f"{len(flows)} endpoints, {sum(f.tier is Tier.public for f in flows)} internet-facing")
    shuffled = list(flows)
    random.shuffle(shuffled)
    assert rules == {t: acl_rules(t, plans, mode, shuffled) for t in tiers}
    for tier in (Tier.training, Tier.data, Tier.endpoints):
        assert rules[tier] == acl_rules(tier, plans, mode), tier
    for tier, acl in rules.items():
        for direction in ("ingress", "egress"):
            assert sum(r.direction == direction for r in acl) <= MAX_RULES_PER_DIRECTION, (tier, direction)
        for r in acl:
            if r.direction == "ingress" and r.action == "allow" and r.cidr == ANYWHERE:
                assert not any(r.from_port <= p <= r.to_port for p in ADMIN_PORTS), (tier, r)
        for peer in (INTERNET_HOST, ON_PREM.network_address + 1):
            got = outside_reach(acl, peer)
            assert not any(p in ADMIN_PORTS for _, p in got), (tier, str(peer), sorted(got))
            if tier is not Tier.public:
                listeners = {("tcp", p) for f in flows if f.tier is tier and any(peer in c for c in f.callers)
                             for p in f.listener_ports}
                assert got == listeners, (tier, str(peer), sorted(got))
    if Tier.public in rules:
        targets = {f.target_port for f in flows if f.tier is Tier.public}
        assert reachable_ports(rules, plans, Tier.public, Tier.inference) == {("tcp", p) for p in targets}
    for f in flows:
        alb, pods = rules[f.tier], rules[Tier.inference]
        for sport in (1024, 40000, 65535):
            assert converses(alb, host(plans, f.tier), pods, host(plans, Tier.inference, -1), "tcp", f.target_port,
                             sport), (f.name, sport)
        for caller in f.callers:
            for peer in caller_hosts(caller):
                assert all(permits(alb, "ingress", "tcp", peer, p) for p in f.listener_ports), (f.name, caller)
                assert permits(alb, "egress", "tcp", peer, f.reply_ports(caller)[1]), (f.name, caller)
