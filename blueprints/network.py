"""The segmented VPC: private tiers per AZ, planned from one block, no way out unless declared."""

from __future__ import annotations

import enum
from ipaddress import IPv4Network
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, ValidationInfo, field_validator, model_validator

from .base import Spec, duplicates
from .cidr import PlanError, TierPlan, plan_tiers


class Tier(str, enum.Enum):
    """Network tiers. Each has its own subnets, route table and network ACL."""

    ingress = "ingress"
    inference = "inference"
    training = "training"
    data = "data"
    endpoints = "endpoints"
    public = "public"


PRIVATE_TIERS = (Tier.ingress, Tier.inference, Tier.training, Tier.data, Tier.endpoints)

LOG_RETENTION_DAYS = (365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)
"""CloudWatch Logs retention values of at least a year."""


def _log_retention(v: int) -> int:
    if v not in LOG_RETENTION_DAYS:
        raise ValueError(f"must be one of {', '.join(map(str, LOG_RETENTION_DAYS))}")
    return v


LogRetentionDays = Annotated[int, AfterValidator(_log_retention)]
"""Days a CloudWatch log group keeps its events: one of CloudWatch's values of at least a year."""

REQUIRED_INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "sts", "kms", "logs")
"""Interface endpoints every stack gets: image pulls, credentials, encryption and logging stay private."""

ServiceName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]+(\.[a-z0-9-]+)*$")]


class TierSpec(Spec):
    """Size or placement of a tier's contiguous block; the block is split into one subnet per AZ."""

    prefix: int | None = Field(None, ge=16, le=28)
    """Prefix length of the tier's block. Unset: the tier's default size."""

    cidr: IPv4Network | None = None
    """Pin the tier's block to this CIDR (inside the VPC block, overlapping no other tier)."""

    @model_validator(mode="after")
    def _one_of(self) -> "TierSpec":
        if self.prefix is not None and self.cidr is not None:
            raise ValueError("set either prefix or cidr, not both")
        return self


DEFAULT_TIER_PREFIX = {
    Tier.ingress: 22,
    Tier.inference: 18,
    Tier.training: 18,
    Tier.data: 22,
    Tier.endpoints: 22,
    Tier.public: 24,
}


class NetworkSpec(Spec):
    """A VPC segmented into private tiers per availability zone."""

    cidr: IPv4Network = IPv4Network("10.40.0.0/16")
    """The VPC block every tier is planned from (/16 to /24)."""

    availability_zones: int = Field(3, ge=2, le=6)
    """Number of AZs; every tier gets one subnet in each."""

    tiers: dict[Tier, TierSpec] = Field({}, validate_default=True)
    """Per-tier size (`prefix`) or pinned block (`cidr`). Unset tiers use their default size
    (ingress /22, inference /18, training /18, data /22, endpoints /22, public /24)."""

    egress: Literal["none", "nat"] = "none"
    """`none`: air-gapped, no internet or NAT gateway, AWS services through VPC endpoints only.
    `nat`: one NAT gateway per AZ in public subnets for outbound traffic."""

    interface_endpoints: list[ServiceName] = []
    """Interface endpoints beyond the required ones (ecr.api, ecr.dkr, sts, kms, logs), e.g. `sagemaker.api`."""

    flow_log_retention_days: LogRetentionDays = 365
    """VPC flow logs (ALL traffic) are kept this many days in a CMK-encrypted log group (one of
    365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."""

    @field_validator("cidr")
    @classmethod
    def _vpc_size(cls, v: IPv4Network) -> IPv4Network:
        if not 16 <= v.prefixlen <= 24:
            raise ValueError(f"VPC block must be /16 to /24, got /{v.prefixlen}")
        return v


    @field_validator("interface_endpoints")
    @classmethod
    def _unique_endpoints(cls, v: list[str]) -> list[str]:
        dupes = duplicates(v)
        if dupes:
            raise ValueError(f"duplicate interface endpoints {dupes}; allowed: each service once")
        return v

    @field_validator("tiers")
    @classmethod
    def _plannable(cls, v: dict[Tier, TierSpec], info: ValidationInfo) -> dict[Tier, TierSpec]:
        if "cidr" in info.data and "availability_zones" in info.data:
            _plan(info.data["cidr"], v, info.data["availability_zones"])
        return v

    def plan(self) -> dict[Tier, TierPlan]:
        """The tier blocks and per-AZ subnets. The public tier is always planned, so that declaring an
        internet-facing endpoint or NAT later adds subnets without moving any existing one."""
        return _plan(self.cidr, self.tiers, self.availability_zones)

    def all_interface_endpoints(self, extra: tuple[str, ...] = ()) -> list[str]:
        """Required endpoints, those the stack's capabilities need, and the declared ones; each once, sorted."""
        return sorted(set(REQUIRED_INTERFACE_ENDPOINTS) | set(extra) | set(self.interface_endpoints))


def _plan(cidr: IPv4Network, tiers: dict[Tier, TierSpec], azs: int) -> dict[Tier, TierPlan]:
    wanted: dict[str, int | IPv4Network] = {}
    for tier in Tier:
        spec = tiers.get(tier, TierSpec())
        wanted[tier.value] = spec.cidr or spec.prefix or DEFAULT_TIER_PREFIX[tier]
    try:
        plans = plan_tiers(cidr, wanted, azs)
    except PlanError as e:
        raise ValueError(str(e)) from None
    return {Tier(name): plan for name, plan in plans.items()}

