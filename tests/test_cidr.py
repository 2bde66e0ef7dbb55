"""CIDR planning: every tier gets its own contiguous block inside the VPC, no two tiers share an address, and
each block splits into one /28-or-larger subnet per AZ.

Property tests drive `plan_tiers` with random VPC blocks, tier sizes, pinned blocks and AZ counts; unit tests
pin the error messages; the last group checks that `NetworkSpec` refuses unsafe or unplannable networks.
"""

from __future__ import annotations

import itertools
from ipaddress import IPv4Network
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hardstack.blueprints.cidr import MIN_SUBNET_PREFIX, PlanError, TierPlan, plan_tiers
from hardstack.blueprints.network import NetworkSpec, Tier

TIER_NAMES = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot")


def split_bits(az_count: int) -> int:
    """ceil(log2(az_count)) computed with integers (independent of the planner's own helper)."""
    return (az_count - 1).bit_length()


# --- strategies --------------------------------------------------------------------------------------------


@st.composite
def vpc_blocks(draw: st.DrawFn, min_prefix: int = 16, max_prefix: int = 24) -> IPv4Network:
    prefix = draw(st.integers(min_prefix, max_prefix))
    address = draw(st.integers(0, 2**32 - 1))
    return IPv4Network((address >> (32 - prefix) << (32 - prefix), prefix))


@st.composite
def block_inside(draw: st.DrawFn, vpc: IPv4Network) -> IPv4Network:
    """A random aligned block inside `vpc`, no smaller than /28."""
    prefix = draw(st.integers(vpc.prefixlen, MIN_SUBNET_PREFIX))
    index = draw(st.integers(0, 2 ** (prefix - vpc.prefixlen) - 1))
    return IPv4Network((int(vpc.network_address) + index * 2 ** (32 - prefix), prefix))


@st.composite
def layouts(draw: st.DrawFn) -> tuple[IPv4Network, dict[str, int | IPv4Network], int]:
    """A VPC block (/16../24), 1..6 tiers each sized (a prefix) or pinned (a block inside the VPC), 1..6 AZs."""
    vpc = draw(vpc_blocks())
    names = draw(st.lists(st.sampled_from(TIER_NAMES), min_size=1, max_size=6, unique=True))
    tiers: dict[str, int | IPv4Network] = {}
    for name in names:
        if draw(st.booleans()) and draw(st.integers(0, 3)) == 0:  # about one tier in eight is pinned
            tiers[name] = draw(block_inside(vpc))
        else:
            tiers[name] = draw(st.integers(vpc.prefixlen, MIN_SUBNET_PREFIX))
    return vpc, tiers, draw(st.integers(1, 6))


def plan_or_none(vpc: IPv4Network, tiers: dict[str, Any], azs: int) -> dict[str, TierPlan] | None:
    try:
        return plan_tiers(vpc, tiers, azs)
    except PlanError:
        return None


# --- properties of a successful plan -----------------------------------------------------------------------


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(layouts())
def test_tier_blocks_lie_inside_the_vpc_and_never_overlap(layout: tuple) -> None:
    """Every planned tier block lies inside the VPC block and no two tier blocks share an address, so a
    network ACL rule naming one tier's block can never match another tier's hosts."""
    vpc, tiers, azs = layout
    plans = plan_or_none(vpc, tiers, azs)
    event("planned" if plans is not None else "refused")
    assume(plans is not None)
    assert set(plans) == set(tiers)
    for name, plan in plans.items():
        assert plan.block.subnet_of(vpc), f"{name}: {plan.block} outside {vpc}"
    for (a, pa), (b, pb) in itertools.combinations(plans.items(), 2):
        assert not pa.block.overlaps(pb.block), f"{a}={pa.block} overlaps {b}={pb.block}"


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(layouts())
def test_each_tier_gets_one_disjoint_subnet_per_az_inside_its_block(layout: tuple) -> None:
    """Each tier gets exactly `az_count` subnets, all inside the tier's block, each of prefix
    block prefix + ceil(log2(az_count)) (never smaller than /28), and no two subnets of the whole VPC overlap."""
    vpc, tiers, azs = layout
    plans = plan_or_none(vpc, tiers, azs)
    assume(plans is not None)
    every_subnet: list[tuple[str, IPv4Network]] = []
    for name, plan in plans.items():
        assert len(plan.subnets) == azs, name
        for subnet in plan.subnets:
            assert subnet.subnet_of(plan.block), f"{name}: {subnet} outside its block {plan.block}"
            assert subnet.prefixlen == plan.block.prefixlen + split_bits(azs), (name, subnet)
            assert subnet.prefixlen <= MIN_SUBNET_PREFIX, (name, subnet)
            every_subnet.append((name, subnet))
    for (a, sa), (b, sb) in itertools.combinations(every_subnet, 2):
        assert not sa.overlaps(sb), f"{a}:{sa} overlaps {b}:{sb}"


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(layouts())
def test_sizes_are_honoured_and_pinned_blocks_kept_exactly(layout: tuple) -> None:
    """A sized tier gets a block of exactly the requested prefix; a pinned tier gets exactly its pinned block
    (the planner never moves a block a user pinned, e.g. to keep existing subnets in place)."""
    vpc, tiers, azs = layout
    plans = plan_or_none(vpc, tiers, azs)
    assume(plans is not None)
    for name, want in tiers.items():
        if isinstance(want, IPv4Network):
            assert plans[name].block == want, name
        else:
            assert plans[name].block.prefixlen == want, name


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(layouts(), st.randoms(use_true_random=False))
def test_plan_is_deterministic_and_independent_of_insertion_order(layout: tuple, rnd: Any) -> None:
    """Planning the same layout twice gives the same plan, and so does planning it with the tiers given in
    another order: a re-run (or a reordered blueprint) never moves a subnet."""
    vpc, tiers, azs = layout
    first = plan_or_none(vpc, tiers, azs)
    assume(first is not None)
    assert plan_tiers(vpc, dict(tiers), azs) == first
    items = list(tiers.items())
    rnd.shuffle(items)
    assert plan_tiers(vpc, dict(items), azs) == first
    assert plan_tiers(vpc, dict(reversed(items)), azs) == first


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(vpc_blocks(), st.data())
def test_unpinned_tiers_are_refused_only_when_they_do_not_fit(vpc: IPv4Network, data: st.DataObject) -> None:
    """Without pinned blocks, tiers whose subnets stay /28 or larger are planned exactly when their sizes add up
    to at most the VPC's size (largest-first packing wastes no space): the planner neither over-commits the
    VPC nor refuses a layout that fits."""
    azs = data.draw(st.integers(1, 6))
    split = split_bits(azs)
    assume(vpc.prefixlen + split <= MIN_SUBNET_PREFIX)
    names = data.draw(st.lists(st.sampled_from(TIER_NAMES), min_size=1, max_size=6, unique=True))
    tiers = {n: data.draw(st.integers(vpc.prefixlen, MIN_SUBNET_PREFIX - split)) for n in names}
    fits = sum(2 ** (32 - p) for p in tiers.values()) <= vpc.num_addresses
    event("fits" if fits else "too big")
    if fits:
        plans = plan_tiers(vpc, tiers, azs)
        assert {n: p.block.prefixlen for n, p in plans.items()} == tiers
    else:
        with pytest.raises(PlanError):
            plan_tiers(vpc, tiers, azs)


@st.composite
def arbitrary_layouts(draw: st.DrawFn) -> tuple[IPv4Network, dict[str, int | IPv4Network], int]:
    """Anything plausible: prefixes /0../32, pinned blocks anywhere (inside, outside, around the VPC),
    AZ counts from -1 to 40."""
    vpc = draw(vpc_blocks())
    names = draw(st.lists(st.sampled_from(TIER_NAMES), min_size=0, max_size=6, unique=True))
    tiers: dict[str, int | IPv4Network] = {}
    for name in names:
        if draw(st.booleans()):
            tiers[name] = draw(st.one_of(block_inside(vpc), vpc_blocks(8, 30)))
        else:
            tiers[name] = draw(st.integers(0, 32))
    return vpc, tiers, draw(st.integers(-1, 40))


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(arbitrary_layouts())
def test_planning_fails_only_with_plan_error(layout: tuple) -> None:
    """When a layout cannot be planned the planner raises PlanError (which the blueprint turns into a
    validation message), never another exception; when it succeeds, the plan is sound."""
    vpc, tiers, azs = layout
    try:
        plans = plan_tiers(vpc, tiers, azs)
    except PlanError as e:
        event("PlanError")
        assert str(e)
        return
    event("planned")
    blocks = [p.block for p in plans.values()]
    assert all(b.subnet_of(vpc) for b in blocks)
    assert not any(a.overlaps(b) for a, b in itertools.combinations(blocks, 2))
    assert all(len(p.subnets) == azs for p in plans.values())


# --- unit: refusals name the tier --------------------------------------------------------------------------

VPC = IPv4Network("10.0.0.0/16")


def test_pinned_block_outside_the_vpc_is_refused() -> None:
    """A pinned block outside the VPC block is refused, naming the tier and the block."""
    with pytest.raises(PlanError, match=r"tier 'data': 10\.1\.0\.0/24 lies outside the VPC block 10\.0\.0\.0/16"):
        plan_tiers(VPC, {"inference": 20, "data": IPv4Network("10.1.0.0/24")}, 2)


def test_pinned_block_straddling_the_vpc_is_refused() -> None:
    """A pinned block larger than (and containing) the VPC block is refused too."""
    with pytest.raises(PlanError, match="tier 'data'.*outside"):
        plan_tiers(VPC, {"data": IPv4Network("10.0.0.0/15")}, 2)


def test_overlapping_pinned_blocks_are_refused() -> None:
    """Two pinned blocks sharing addresses are refused, naming both tiers."""
    with pytest.raises(PlanError, match=r"tier 'training': 10\.0\.8\.0/24 overlaps tier 'inference' \(10\.0\.0\.0/20\)"):
        plan_tiers(VPC, {"inference": IPv4Network("10.0.0.0/20"), "training": IPv4Network("10.0.8.0/24")}, 2)


def test_identical_pinned_blocks_are_refused() -> None:
    """Two tiers pinned to the same block are refused (the same block is the extreme overlap)."""
    with pytest.raises(PlanError, match="tier 'b'.*overlaps tier 'a'"):
        plan_tiers(VPC, {"a": IPv4Network("10.0.4.0/24"), "b": IPv4Network("10.0.4.0/24")}, 2)


def test_layout_that_does_not_fit_is_refused() -> None:
    """Tiers adding up to more than the VPC block are refused, naming the tier that no longer fits."""
    vpc = IPv4Network("10.0.0.0/24")
    with pytest.raises(PlanError, match=r"tier 'small': no free /26 left in 10\.0\.0\.0/24"):
        plan_tiers(vpc, {"big": 25, "medium": 25, "small": 26}, 2)


def test_sized_tier_next_to_a_pinned_one_that_does_not_fit_is_refused() -> None:
    """A pinned block can leave no room for a sized tier: refused, naming the sized tier."""
    with pytest.raises(PlanError, match="tier 'inference': no free /17"):
        plan_tiers(VPC, {"data": IPv4Network("10.0.64.0/18"), "training": IPv4Network("10.0.128.0/17"), "inference": 17}, 2)


def test_tier_larger_than_the_vpc_is_refused() -> None:
    """A tier asking for a block larger than the VPC is refused, naming the tier."""
    with pytest.raises(PlanError, match="tier 'inference': /15 is larger than the VPC block"):
        plan_tiers(VPC, {"inference": 15}, 2)


def test_split_below_slash_28_is_refused() -> None:
    """A tier block that split across the AZs would give subnets smaller than /28 is refused, naming the tier
    and the resulting prefix."""
    with pytest.raises(PlanError, match=r"tier 'endpoints': 10\.0\.0\.0/27 split across 3 AZs gives /29 subnets"):
        plan_tiers(VPC, {"endpoints": 27}, 3)
    with pytest.raises(PlanError, match="tier 'data'.*gives /29"):
        plan_tiers(VPC, {"data": IPv4Network("10.0.9.0/28")}, 2)


def test_split_to_exactly_slash_28_is_allowed() -> None:
    """The /28 limit is inclusive: a /26 across 4 AZs gives four /28 subnets."""
    plans = plan_tiers(VPC, {"endpoints": 26}, 4)
    assert [str(s) for s in plans["endpoints"].subnets] == [
        "10.0.0.0/28", "10.0.0.16/28", "10.0.0.32/28", "10.0.0.48/28"
    ]


def test_zero_azs_is_refused() -> None:
    """A plan needs at least one AZ."""
    with pytest.raises(PlanError, match="az_count"):
        plan_tiers(VPC, {"data": 24}, 0)


# --- NetworkSpec validation --------------------------------------------------------------------------------


def test_spec_refuses_overlapping_pinned_tiers() -> None:
    """Pinning two tiers to overlapping blocks is a validation error that says so."""
    with pytest.raises(ValidationError, match="overlaps"):
        NetworkSpec(tiers={"data": {"cidr": "10.40.0.0/22"}, "endpoints": {"cidr": "10.40.2.0/24"}})


def test_spec_refuses_pinned_tier_outside_the_vpc() -> None:
    """A tier pinned outside the VPC block is a validation error."""
    with pytest.raises(ValidationError, match="outside the VPC block"):
        NetworkSpec(tiers={"data": {"cidr": "10.41.0.0/22"}})


def test_spec_refuses_a_layout_that_does_not_fit() -> None:
    """The default tier sizes (two /18s, three /22s, a /24) do not fit a /17: the spec refuses it instead of
    planning overlapping tiers, and a tier larger than the VPC is refused as well."""
    with pytest.raises(ValidationError, match="no free"):
        NetworkSpec(cidr="10.40.0.0/17")
    with pytest.raises(ValidationError, match="larger than the VPC block"):
        NetworkSpec(cidr="10.40.0.0/20")


@pytest.mark.parametrize("cidr", ["10.0.0.0/8", "10.0.0.0/15", "10.0.0.0/25", "10.0.0.0/28"])
def test_spec_refuses_vpc_blocks_outside_16_to_24(cidr: str) -> None:
    """The VPC block must be /16 to /24 (AWS limits): /8, /15, /25 and /28 are refused."""
    with pytest.raises(ValidationError, match="/16 to /24"):
        NetworkSpec(cidr=cidr)


def test_spec_accepts_the_vpc_size_limits() -> None:
    """/16 (with default tiers) and /24 (with tiers small enough) are accepted, so the limits are inclusive."""
    assert NetworkSpec(cidr="10.0.0.0/16").cidr.prefixlen == 16
    small = NetworkSpec(cidr="10.0.0.0/24", availability_zones=2, tiers={t.value: {"prefix": 27} for t in Tier})
    assert all(p.block.subnet_of(IPv4Network("10.0.0.0/24")) for p in small.plan().values())


@pytest.mark.parametrize("days", [0, 1, 30, 90, 364, 366, 4000])
def test_spec_refuses_flow_log_retention_shorter_than_a_year_or_unsupported(days: int) -> None:
    """Flow logs are kept at least a year, in one of CloudWatch's retention values: 30 days (and other
    short or non-CloudWatch values) are refused."""
    with pytest.raises(ValidationError, match="must be one of"):
        NetworkSpec(flow_log_retention_days=days)


def test_spec_defaults_flow_log_retention_to_a_year() -> None:
    """Unset, flow logs are kept 365 days; longer CloudWatch values are accepted."""
    assert NetworkSpec().flow_log_retention_days == 365
    assert NetworkSpec(flow_log_retention_days=3653).flow_log_retention_days == 3653


def test_spec_refuses_duplicate_interface_endpoints() -> None:
    """Declaring an interface endpoint twice is refused (two endpoints with private DNS for one service
    cannot coexist), and the message names the duplicate."""
    with pytest.raises(ValidationError, match=r"duplicate interface endpoints \['sagemaker.api'\]"):
        NetworkSpec(interface_endpoints=["sagemaker.api", "bedrock-runtime", "sagemaker.api"])


def test_spec_refuses_malformed_endpoint_names() -> None:
    """Interface endpoint names are service names (lower-case dotted labels), nothing else."""
    with pytest.raises(ValidationError):
        NetworkSpec(interface_endpoints=["com.amazonaws.us-east-1.s3 "])


def test_spec_plan_covers_every_tier_inside_the_vpc() -> None:
    """The default spec plans every tier (the public one too) inside 10.40.0.0/16, one subnet per AZ, with
    no two tiers overlapping."""
    spec = NetworkSpec()
    plans = spec.plan()
    assert set(plans) == set(Tier)
    assert all(p.block.subnet_of(spec.cidr) and len(p.subnets) == 3 for p in plans.values())
    assert not any(a.block.overlaps(b.block) for a, b in itertools.combinations(plans.values(), 2))
