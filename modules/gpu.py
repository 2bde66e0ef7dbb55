"""GPU node pools: NVIDIA images, IMDSv2 with hop limit 1, CMK-encrypted disks, tainted for GPU work only."""

from __future__ import annotations

from typing import Mapping

import pulumi

from hardstack.blueprints.compute import GpuPoolSpec
from hardstack.blueprints.network import Tier

from .base import HardenedComponent
from .cluster import GPU_NODE_LABEL, GPU_TAINT, TENANT_LABEL, EksCluster
from .kms import CustomerManagedKey
from .network import SegmentedVpc
from .nodes import ROOT_DEVICE, NodeGroupSettings, hardened_nodes

AMI_TYPES = {"al2023-nvidia": "AL2023_x86_64_NVIDIA", "bottlerocket-nvidia": "BOTTLEROCKET_x86_64_NVIDIA"}
ISOLATION_LABEL = "hardstack.io/gpu-isolation"
MIG_CONFIG_LABEL = "nvidia.com/mig.config"
DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"


class GpuNodePool(HardenedComponent):
    """A managed node group of NVIDIA GPU nodes from a launch template that requires IMDSv2 with a hop limit of 1
    (pods cannot reach node credentials), encrypts the disks with the stack's CMK and allows no SSH. Nodes use
    only the private subnets of their tier and may scale to zero. Every node carries the taint
    `nvidia.com/gpu=true:NoSchedule`; a pool of one tenant also carries that tenant's taint and label, so only its
    pods (with matching tolerations and node affinity) land there. MIG and time-slicing are set through the NVIDIA
    GPU operator's node labels."""

    TYPE = "hardstack:gpu:GpuNodePool"

    def __init__(
        self,
        name: str,
        spec: GpuPoolSpec,
        cluster: EksCluster,
        network: SegmentedVpc,
        key: CustomerManagedKey,
        *,
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, tags=tags, opts=opts)
        self.spec = spec
        self.tags = {**self.tags, "hardstack:gpu-isolation": spec.isolation, "hardstack:tenants": " ".join(spec.tenants)}
        nodes = hardened_nodes(self, cluster, key, NodeGroupSettings(
            ami_type=AMI_TYPES[spec.ami],
            instance_types=spec.instance_types,
            min_size=spec.min_size,
            max_size=spec.max_size,
            disk_gib=spec.disk_gib,
            subnets=network.subnets[Tier(spec.tier)],
            labels=self.labels(),
            taints=self.taints(),
            devices=[ROOT_DEVICE] + (["/dev/xvdb"] if spec.ami == "bottlerocket-nvidia" else []),
            waits_for=list(cluster.addons.values()),
        ))
        self.role, self.launch_template, self.node_group = nodes.role, nodes.launch_template, nodes.node_group
        self.register_outputs({"nodeGroup": self.node_group.node_group_name})

    @property
    def tenant(self) -> str | None:
        """The one tenant of a pool no one else may use."""
        return self.spec.tenants[0] if len(self.spec.tenants) == 1 else None

    def taints(self) -> list[dict[str, str]]:
        found = [GPU_TAINT]
        if self.tenant:
            found.append({"key": TENANT_LABEL, "value": self.tenant, "effect": "NoSchedule"})
        return found

    def labels(self) -> dict[str, str]:
        labels = {GPU_NODE_LABEL: "true", "hardstack.io/pool": self.spec.name, ISOLATION_LABEL: self.spec.isolation}
        if self.tenant:
            labels[TENANT_LABEL] = self.tenant
        if self.spec.isolation == "mig":
            labels[MIG_CONFIG_LABEL] = self.spec.mig_profile or ""
        if self.spec.isolation == "time-slicing":
            labels[DEVICE_PLUGIN_CONFIG_LABEL] = f"time-slicing-{self.spec.time_slicing_replicas}"
        return labels

    def scheduling(self) -> dict[str, object]:
        """Tolerations and required node affinity for a workload of this pool's tenant."""
        tolerations = [{"key": t["key"], "operator": "Equal", "value": t["value"], "effect": t["effect"]}
                       for t in self.taints()]
        match = [{"key": "hardstack.io/pool", "operator": "In", "values": [self.spec.name]}]
        return {
            "tolerations": tolerations,
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": match}]}}},
        }
