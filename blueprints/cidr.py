"""Pure CIDR planning: one contiguous block per tier inside the VPC block, split into one subnet per AZ.

A tier's block is contiguous so that a network ACL can name a whole tier in one rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from ipaddress import IPv4Network

MIN_SUBNET_PREFIX = 28
"""AWS refuses subnets smaller than /28."""


class PlanError(ValueError):
    """The requested layout cannot be planned; the message says why and what would fit."""


@dataclass(frozen=True)
class TierPlan:
    block: IPv4Network
    subnets: tuple[IPv4Network, ...]


def az_split_bits(az_count: int) -> int:
    """How many prefix bits splitting a block into `az_count` equal subnets takes."""
    return max(0, math.ceil(math.log2(az_count)))


def plan_tiers(
    vpc: IPv4Network,
    tiers: dict[str, int | IPv4Network],
    az_count: int,
) -> dict[str, TierPlan]:
    """Plan each tier's block and per-AZ subnets.

    `tiers` maps a tier name to either the prefix length of its block or a pinned block. Pinned blocks are
    placed first; the rest are packed largest first (then by name) at the lowest aligned free address.
    The result is deterministic, every block lies inside `vpc`, and no two blocks overlap.
    """
    if az_count < 1:
        raise PlanError(f"az_count must be at least 1, got {az_count}")
    split = az_split_bits(az_count)
    placed: dict[str, IPv4Network] = {}

    for name, want in sorted(tiers.items()):
        if isinstance(want, IPv4Network):
            if not want.subnet_of(vpc):
                raise PlanError(f"tier {name!r}: {want} lies outside the VPC block {vpc}")
            for other, block in placed.items():
                if want.overlaps(block):
                    raise PlanError(f"tier {name!r}: {want} overlaps tier {other!r} ({block})")
            placed[name] = want

    free = [vpc]
    for block in placed.values():
        free = _carve(free, block)

    sized = [(want, name) for name, want in tiers.items() if not isinstance(want, IPv4Network)]
    for prefix, name in sorted(sized, key=lambda item: (item[0], item[1])):
        if prefix < vpc.prefixlen:
            raise PlanError(f"tier {name!r}: /{prefix} is larger than the VPC block {vpc}")
        block = _first_fit(free, prefix)
        if block is None:
            raise PlanError(
                f"tier {name!r}: no free /{prefix} left in {vpc} after "
                + ", ".join(f"{n}={b}" for n, b in sorted(placed.items()))
                + "; use a larger VPC block or smaller tiers"
            )
        placed[name] = block
        free = _carve(free, block)

    plans: dict[str, TierPlan] = {}
    for name in tiers:
        block = placed[name]
        sub_prefix = block.prefixlen + split
        if sub_prefix > MIN_SUBNET_PREFIX:
            raise PlanError(
                f"tier {name!r}: {block} split across {az_count} AZs gives /{sub_prefix} subnets; "
                f"allowed: /{MIN_SUBNET_PREFIX} or larger"
            )
        subnets = tuple(block.subnets(new_prefix=sub_prefix))[:az_count]
        plans[name] = TierPlan(block=block, subnets=subnets)
    return plans


def _carve(free: list[IPv4Network], taken: IPv4Network) -> list[IPv4Network]:
    out: list[IPv4Network] = []
    for block in free:
        if taken.subnet_of(block):
            out.extend(block.address_exclude(taken))
        elif not block.overlaps(taken):
            out.append(block)
    return sorted(out, key=lambda n: (int(n.network_address), n.prefixlen))


def _first_fit(free: list[IPv4Network], prefix: int) -> IPv4Network | None:
    for block in free:  # sorted by address: lowest fit first
        if block.prefixlen <= prefix:
            return next(block.subnets(new_prefix=prefix))
    return None
