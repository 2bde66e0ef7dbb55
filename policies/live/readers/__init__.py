"""What the audit reads from an account, one file per service. `LiveAccount.resources(kind)` reads a kind once per
audit (listing, tags and what the listing returns); each resource's further settings are read when a verdict first
needs them."""

from __future__ import annotations

from typing import Callable

from ..resource import LiveResource
from ..session import LiveSession
from . import cloudtrail, ecr, eks, elb, guardduty, kms, s3, vpc, waf

Reader = Callable[["LiveAccount"], list[LiveResource]]

READERS: dict[str, Reader] = {
    "kms-key": kms.keys,
    "s3-bucket": s3.buckets,
    "vpc": vpc.vpcs,
    "flow-log": vpc.flow_logs,
    "load-balancer": elb.load_balancers,
    "listener": elb.listeners,
    "web-acl": waf.web_acls,
    "trail": cloudtrail.trails,
    "ecr-repository": ecr.repositories,
    "ecr-registry-scanning": ecr.registry_scanning,
    "eks-cluster": eks.clusters,
    "guardduty-detector": guardduty.detectors,
}


class LiveAccount:
    """An account and region as the audit reads it, each kind read at most once."""

    def __init__(self, session: LiveSession) -> None:
        self.session = session
        self._read: dict[str, list[LiveResource]] = {}

    def resources(self, kind: str) -> list[LiveResource]:
        if kind not in self._read:
            self._read[kind] = READERS[kind](self)
        return self._read[kind]
