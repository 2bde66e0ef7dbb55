"""Judged stacks for the report tests: the reference blueprint as shipped and weakened through Pulumi transforms."""

from __future__ import annotations

from typing import Any, Callable

from hardstack.policies.gate import GateReport, run_gate
from hardstack.stacks.inventory import Inventory

from .gate_helpers import synth_with_transform, transform_of

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
QUOTA = "kubernetes:core/v1:ResourceQuota"
NAMESPACE = "kubernetes:core/v1:Namespace"


def judged(target: str, transform: Callable[[Any], Any] | None = None) -> tuple[Inventory, GateReport]:
    """The target synthesized (optionally weakened) and judged, exceptions of its blueprint applied."""
    inventory, loaded = synth_with_transform(target, transform)
    report = run_gate(inventory, target=target, exceptions=loaded.blueprint.exceptions, locate=loaded.locate)
    return inventory, report


def _no_gpu_quota(props: dict[str, Any]) -> dict[str, Any]:
    hard = {k: v for k, v in props["spec"]["hard"].items() if k != "requests.nvidia.com/gpu"}
    props["spec"] = {**props["spec"], "hard": hard}
    return props


def _time_sliced_for_anyone(props: dict[str, Any]) -> dict[str, Any]:
    props["labels"] = {**props["labels"], "nvidia.com/device-plugin.config": "time-slicing-4"}
    props["taints"] = [t for t in props["taints"] if t["key"] != "hardstack.io/tenant"]
    return props


def _reads_private_data(props: dict[str, Any]) -> dict[str, Any]:
    metadata = dict(props["metadata"])
    metadata["annotations"] = {**metadata.get("annotations", {}), "hardstack.io/private-data": "customer-records"}
    props["metadata"] = metadata
    return props


NO_GPU_QUOTA = transform_of(QUOTA, _no_gpu_quota)
"""HS_K8S_004 fails on the serving tenant's namespace."""
TIME_SLICED_FOR_ANYONE = transform_of(NODE_GROUP, _time_sliced_for_anyone)
"""HS_GPU_002 fails: the inference pool time-slices its GPUs and no longer belongs to one tenant."""
TRIAGE_READS_RECORDS = transform_of(NAMESPACE, _reads_private_data, name="agent-support-triage-namespace")
"""HS_AGENT_001 fails in agent-sandbox: the agent taking untrusted input reads private data and calls the one
with egress."""
