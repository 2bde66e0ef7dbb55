"""Segmentation: which tier may talk to which, as the network ACL rules of `modules/segmentation.py` allow it.

Besides checking the rule lists, the tests evaluate the ACLs the way AWS does (stateless: a TCP/UDP
conversation needs the request out of the client's subnet and into the server's, and the reply out of the
server's and into the client's) and assert who can actually reach whom.
"""

from __future__ import annotations

from collections import Counter
from ipaddress import IPv4Address, IPv4Network

import pytest

from hardstack.blueprints.cidr import TierPlan
from hardstack.blueprints.network import PRIVATE_TIERS, NetworkSpec, Tier
from hardstack.modules.segmentation import TIER_PEERS, AclRule, acl_rules

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
MODES = {"none": ("none", False), "nat": ("nat", True), "internet-facing": ("none", True)}
"""(egress, public) combinations SegmentedVpc passes to acl_rules."""

CASES = [pytest.param(s, m, id=f"{s}-{m}") for s in SPECS for m in MODES]


def tiers_of(egress: str, public: bool) -> tuple[Tier, ...]:
    return PRIVATE_TIERS + ((Tier.public,) if public else ())


def all_rules(spec_id: str, mode: str) -> tuple[dict[Tier, TierPlan], dict[Tier, list[AclRule]], str, bool]:
    spec = SPECS[spec_id]
    egress, public = MODES[mode]
    plans = spec.plan()
    return plans, {t: acl_rules(t, plans, egress, public) for t in tiers_of(egress, public)}, egress, public


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
    rules: dict[Tier, list[AclRule]], plans: dict[Tier, TierPlan], src: Tier, dst: Tier
) -> set[tuple[str, int]]:
    """(protocol, destination port) pairs on which `src` can hold a conversation with `dst` (from a host in
    the first AZ to a host in the last, so that both ACLs are crossed), for any client source port."""
    a, b = host(plans, src, 0), host(plans, dst, -1)
    both = rules[src] + rules[dst]
    found = set()
    for proto in ("tcp", "udp"):
        for dport in probe_ports(both):
            if any(
                converses(rules[src], a, rules[dst], b, proto, dport, sport)
                for sport in probe_ports(both, *CLIENT_PORTS)
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


@pytest.mark.parametrize("spec_id,mode", [c for c in CASES if "-nat" in c.id or "internet-facing" in c.id])
def test_public_tier_reaches_no_private_tier_and_only_nat_tiers_reach_it(spec_id: str, mode: str) -> None:
    """With public subnets, nothing there can open a conversation into a private tier; in `nat` mode only the
    inference and training tiers reach the public (NAT) subnets, and only on TCP 443; data, endpoints and
    ingress never do. Without NAT the public tier's ACL admits nothing."""
    plans, rules, egress, _ = all_rules(spec_id, mode)
    for tier in PRIVATE_TIERS:
        assert reachable_ports(rules, plans, Tier.public, tier) == set(), tier
        expected = {("tcp", 443)} if egress == "nat" and tier in (Tier.inference, Tier.training) else set()
        assert reachable_ports(rules, plans, tier, Tier.public) == expected, tier


# --- rules from and to the internet ------------------------------------------------------------------------


@pytest.mark.parametrize("spec_id,mode", CASES)
def test_no_admin_ports_or_all_traffic_from_anywhere(spec_id: str, mode: str) -> None:
    """No tier's ACL admits a packet from the internet to port 20, 21, 22 or 3389 (TCP or UDP), and no rule
    allows all protocols (-1) to or from 0.0.0.0/0 (or any block outside the VPC)."""
    plans, rules, _, _ = all_rules(spec_id, mode)
    vpc = SPECS[spec_id].cidr
    for tier, acl in rules.items():
        for proto in ("tcp", "udp"):
            for port in ADMIN_PORTS:
                assert not permits(acl, "ingress", proto, INTERNET_HOST, port), f"{tier.value}: {proto}/{port}"
        for r in acl:
            if not r.cidr.subnet_of(vpc):
                assert r.protocol != "-1", f"{tier.value}: all traffic {r.direction} {r.cidr}"
                assert r.cidr == ANYWHERE, f"{tier.value}: unexpected outside block {r.cidr}"


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
    blocks (never from the public tier or the internet)."""
    for mode in MODES:
        plans, rules, _, _ = all_rules(spec_id, mode)
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


@pytest.mark.parametrize("spec_id,mode", CASES)
def test_every_egress_rule_to_a_tier_block_has_its_return_path(spec_id: str, mode: str) -> None:
    """ACLs are stateless: for every egress rule towards another tier's block there is an ingress rule from
    that same block that lets the conversation complete: all traffic back for a peer (-1) rule; the client
    ephemeral range back for a request to a service port; the service port back in for a reply rule."""
    plans, rules, _, _ = all_rules(spec_id, mode)
    blocks = {p.block: t for t, p in plans.items()}
    for tier, acl in rules.items():
        for out in (r for r in acl if r.direction == "egress" and r.cidr in blocks):
            back = [r for r in acl if r.direction == "ingress" and r.cidr == out.cidr]
            if out.protocol == "-1":
                assert any(r.protocol == "-1" for r in back), f"{tier.value} -> {blocks[out.cidr].value}: {out}"
                assert blocks[out.cidr] in TIER_PEERS.get(tier, ()), f"{tier.value}: all traffic to a non-peer"
                continue
            same = [r for r in back if r.protocol in (out.protocol, "-1")]
            request = covers(out, 443, 443) and not covers(out, *CLIENT_PORTS)
            if request:  # the reply comes back to the client's ephemeral port
                assert any(covers(r, *CLIENT_PORTS) for r in same), f"{tier.value}: no return path for {out}"
            else:  # a reply rule: some request must be admitted from there
                assert same and any(not covers(r, *CLIENT_PORTS) for r in same), f"{tier.value}: {out} answers nothing"


@pytest.mark.parametrize("spec_id,mode", CASES)
def test_every_rule_towards_another_tier_is_matched_by_that_tier(spec_id: str, mode: str) -> None:
    """A rule in private tier A towards private tier B's block is matched in B's ACL (B admits from / sends to
    A's hosts the same protocol and ports): segmentation between private tiers is decided by both sides,
    never by one ACL alone. (The public tier is left out: NAT rewrites addresses, see the NAT path tests.)"""
    plans, rules, _, _ = all_rules(spec_id, mode)
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
    gateway endpoint) from any Linux ephemeral source port, and only HTTPS: plain HTTP out is denied."""
    for mode in MODES:
        _, rules, _, _ = all_rules(spec_id, mode)
        for tier in (Tier.inference, Tier.training, Tier.data):
            acl = rules[tier]
            assert permits(acl, "egress", "tcp", INTERNET_HOST, 443), tier
            for sport in (32768, 45000, 60999, 65535):
                assert permits(acl, "ingress", "tcp", INTERNET_HOST, sport), (tier, sport)
            assert not permits(acl, "egress", "tcp", INTERNET_HOST, 80), tier


@pytest.mark.parametrize("spec_id", SPECS)
def test_nat_path_opens_for_inference_and_training_only(spec_id: str) -> None:
    """In `nat` mode, HTTPS from an inference or training host to the internet passes every ACL hop of the NAT
    path: out of the tier, into the public subnet, out to the internet on 443, and the translated reply from
    the public subnet back into the tier on the host's Linux ephemeral port (the NAT keeps the internet
    address as the reply's source). Data, ingress and endpoints hosts are stopped at the public subnet."""
    plans, rules, _, _ = all_rules(spec_id, "nat")
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


@pytest.mark.parametrize("spec_id", SPECS)
def test_nat_subnets_admit_replies_on_every_nat_source_port(spec_id: str) -> None:
    """In `nat` mode the public (NAT) tier's ACL must admit the replies from the internet on every source port
    the NAT gateway may have used for the translated connection (1024-65535), or a share of outbound HTTPS
    connections from inference/training silently hangs. Only the admin ports this suite forbids from
    anywhere (3389 lies in the range) may be carved out."""
    plans, rules, _, _ = all_rules(spec_id, "nat")
    acl = rules[Tier.public]
    assert permits(acl, "egress", "tcp", INTERNET_HOST, 443)
    missing = [
        p for p in probe_ports(acl, *NAT_SOURCE_PORTS) + [1025, 2000, 8080, 20000, 32767]
        if p not in ADMIN_PORTS and not permits(acl, "ingress", "tcp", INTERNET_HOST, p)
    ]
    assert not missing, f"NAT replies to source ports {sorted(set(missing))} are dropped by the public ACL"


# --- numbering and the public tier -------------------------------------------------------------------------


@pytest.mark.parametrize("spec_id,mode", CASES)
def test_rule_numbers_are_unique_per_direction(spec_id: str, mode: str) -> None:
    """Within one ACL no two rules of the same direction share a number (AWS would refuse or, worse, one
    rule would silently replace the other); numbers are in AWS's 1..32766."""
    _, rules, _, _ = all_rules(spec_id, mode)
    for tier, acl in rules.items():
        numbers = Counter((r.direction, r.rule_no) for r in acl)
        assert all(n == 1 for n in numbers.values()), (tier, numbers)
        assert all(1 <= r.rule_no <= 32766 for r in acl), tier


@pytest.mark.parametrize("spec_id", SPECS)
def test_public_tier_has_rules_only_in_nat_mode(spec_id: str) -> None:
    """Public subnets get no allow rule at all unless NAT gateways live there: an internet-facing public tier
    without NAT stays closed (deny all)."""
    plans = SPECS[spec_id].plan()
    assert acl_rules(Tier.public, plans, "none", True) == []
    assert acl_rules(Tier.public, plans, "none", False) == []
    nat = acl_rules(Tier.public, plans, "nat", True)
    assert nat
    peers = {r.cidr for r in nat if r.cidr != ANYWHERE and r.action == "allow"}
    assert peers == {plans[Tier.inference].block, plans[Tier.training].block}
    denied = {r.cidr for r in nat if r.action == "deny"}
    assert denied == {plans[t].block for t in PRIVATE_TIERS}, "everything else from inside the VPC is refused"


@pytest.mark.parametrize("spec_id", SPECS)
def test_private_rules_do_not_depend_on_egress_mode(spec_id: str) -> None:
    """Switching egress to `nat` does not widen any private tier's ACL: the rules are the same in every mode
    (the way out is decided by routes, and only for inference and training)."""
    plans = SPECS[spec_id].plan()
    for tier in PRIVATE_TIERS:
        base = acl_rules(tier, plans, "none", False)
        assert acl_rules(tier, plans, "nat", True) == base, tier
        assert acl_rules(tier, plans, "none", True) == base, tier
