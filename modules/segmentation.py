"""Which tier may talk to which: the network ACL rules of each tier, as pure data.

Network ACLs are stateless, so every allowed flow has a rule out on one side and a return rule in.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Literal

from hardstack.blueprints.cidr import TierPlan
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

HTTPS = 443
EPHEMERAL_LINUX = (32768, 65535)
"""Return traffic from outside the VPC: Linux's ephemeral range (it excludes the SSH, FTP and RDP ports)."""
EPHEMERAL_ANY = (1024, 65535)
"""Return traffic from inside the VPC."""
NAT_RETURN_FROM_ANYWHERE = ((1024, 3388), (3390, 65535))
"""Replies to a NAT gateway arrive on any of its source ports (1024-65535); RDP's port is left out."""
ANYWHERE = IPv4Network("0.0.0.0/0")


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


def acl_rules(tier: Tier, plans: dict[Tier, TierPlan], egress: str, public: bool) -> list[AclRule]:
    """The allow rules of `tier`'s network ACL; everything else is denied by the ACL's implicit rule."""
    flows: list[tuple[str, str, int, int, IPv4Network, str]] = []  # (dir, proto, from, to, cidr, why)
    if tier is Tier.public:
        for t in NAT_TIERS if egress == "nat" else ():
            flows.append(("ingress", "tcp", HTTPS, HTTPS, plans[t].block, f"HTTPS from {t.value} to the NAT gateways"))
            flows.append(("egress", "tcp", *EPHEMERAL_ANY, plans[t].block, f"return traffic to {t.value}"))
        if egress == "nat":
            for t in PRIVATE_TIERS:  # nothing else from inside the VPC, before the replies from anywhere
                flows.append(("ingress-deny", "-1", 0, 0, plans[t].block, f"nothing else from {t.value}"))
            flows.append(("egress", "tcp", HTTPS, HTTPS, ANYWHERE, "HTTPS out through the NAT gateways"))
            for lo, hi in NAT_RETURN_FROM_ANYWHERE:
                flows.append(("ingress", "tcp", lo, hi, ANYWHERE, "return traffic to the NAT gateways"))
        return _number(flows)
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
    if tier in S3_TIERS:
        flows.append(("egress", "tcp", HTTPS, HTTPS, ANYWHERE, "HTTPS to S3 (gateway endpoint) or via NAT"))
        flows.append(("ingress", "tcp", *EPHEMERAL_LINUX, ANYWHERE, "return traffic from S3 or via NAT"))
    return _number(flows)


def _number(flows: list[tuple[str, str, int, int, IPv4Network, str]]) -> list[AclRule]:
    """Number the rules in the order given (ACLs apply the lowest matching number first)."""
    counters = {"ingress": 100, "egress": 100}
    rules = []
    for kind, proto, lo, hi, cidr, why in flows:
        direction, _, action = kind.partition("-")
        rules.append(AclRule(direction, counters[direction], proto, lo, hi, cidr, why, action or "allow"))  # type: ignore[arg-type]
        counters[direction] += 10
    return rules
