"""GPU node pools: NVIDIA images, IMDSv2 with hop limit 1, CMK-encrypted disks, tainted for GPU work only."""

from __future__ import annotations

from typing import Mapping

import pulumi
import pulumi_aws as aws

from hardstack.blueprints.compute import GpuPoolSpec
from hardstack.blueprints.network import Tier

from .base import HardenedComponent
from .cluster import GPU_NODE_LABEL, GPU_TAINT, TENANT_LABEL, EksCluster
from .iam import service_role
from .kms import CustomerManagedKey
from .network import SegmentedVpc

AMI_TYPES = {"al2023-nvidia": "AL2023_x86_64_NVIDIA", "bottlerocket-nvidia": "BOTTLEROCKET_x86_64_NVIDIA"}
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly")
"""Nodes join the cluster and pull images; the VPC CNI and storage get their own Pod Identity roles."""
ISOLATION_LABEL = "hardstack.io/gpu-isolation"
MIG_CONFIG_LABEL = "nvidia.com/mig.config"
DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"


def _taint(t: dict[str, str]) -> dict[str, str]:
    return {"key": t["key"], "value": t["value"], "effect": {"NoSchedule": "NO_SCHEDULE"}[t["effect"]]}


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
        self.role = service_role(f"{name}-node-role", "ec2.amazonaws.com", NODE_POLICIES,
                                 boundary=cluster.boundary, parent=self, tags=self.tags)
        devices = ["/dev/xvda"] + (["/dev/xvdb"] if spec.ami == "bottlerocket-nvidia" else [])
        self.launch_template = aws.ec2.LaunchTemplate(
            f"{name}-launch-template",
            metadata_options={
                "http_endpoint": "enabled",
                "http_tokens": "required",
                "http_put_response_hop_limit": 1,
                "instance_metadata_tags": "disabled",
            },
            block_device_mappings=[
                {
                    "device_name": device,
                    "ebs": {
                        "volume_size": spec.disk_gib,
                        "volume_type": "gp3",
                        "encrypted": "true",
                        "kms_key_id": key.arn,
                        "delete_on_termination": "true",
                    },
                }
                for device in devices
            ],
            monitoring={"enabled": True},
            tag_specifications=[
                {"resource_type": "instance", "tags": self.tags},
                {"resource_type": "volume", "tags": self.tags},
            ],
            update_default_version=True,
            tags=self.tags,
            opts=self.child_opts(),
        )
        self.node_group = aws.eks.NodeGroup(
            f"{name}-nodes",
            cluster_name=cluster.name,
            node_group_name=name,
            node_role_arn=self.role.arn,
            subnet_ids=[s.id for s in network.subnets[Tier(spec.tier)]],
            ami_type=AMI_TYPES[spec.ami],
            capacity_type="ON_DEMAND",
            instance_types=list(spec.instance_types),
            scaling_config={"min_size": spec.min_size, "max_size": spec.max_size, "desired_size": spec.min_size},
            update_config={"max_unavailable": 1},
            launch_template={"id": self.launch_template.id, "version": self.launch_template.latest_version.apply(str)},
            taints=[_taint(t) for t in self.taints()],
            labels=self.labels(),
            tags=self.tags,
            opts=self.child_opts(ignore_changes=["scalingConfig.desiredSize"],
                                 depends_on=list(cluster.addons.values())),
        )
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
