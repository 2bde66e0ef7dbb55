"""EKS nodes: the hardening every managed node group shares, and the system node group for cluster services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from hardstack.blueprints.compute import SystemNodesSpec
from hardstack.blueprints.network import Tier

from .base import HardenedComponent
from .cluster import EksCluster
from .iam import service_role
from .kms import CustomerManagedKey
from .network import SegmentedVpc

NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly")
"""Nodes join the cluster and pull images; the VPC CNI and storage get their own Pod Identity roles."""
ROOT_DEVICE = "/dev/xvda"
TAINT_EFFECTS = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}
"""Kubernetes taint effects as the EKS API spells them."""

SYSTEM_LABEL = "hardstack.io/system"
SYSTEM_AMI_TYPE = "AL2023_x86_64_STANDARD"
SYSTEM_TIER = Tier.inference
"""The system nodes' tier. DNS, admission webhooks and the load balancer controller serve the cluster: the control
plane reaches them from its network interfaces in this tier (the cluster's subnets are inference and training),
the inference GPU nodes and the inference gateway are here with them, and load balancers in the ingress tier
reach pods only here (ingress peers with inference alone). The training tier never reaches inference: the network
ACLs keep training apart from everything that serves requests, and so also from the cluster DNS these nodes run;
pods of a training-tier GPU pool resolve cluster names only once a tier for cluster services peers with both."""
JOIN_ADDONS = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")
"""The add-ons a node needs before it is Ready (pod network, service routing, pods' credentials). They are
DaemonSets, active with no node yet. CoreDNS and the EBS CSI controller are Deployments that stay degraded
until a node can run them, so the system nodes, which run them, must not wait for them."""


@dataclass(frozen=True)
class NodeGroupSettings:
    """What differs between hardstack's node groups; everything else is the shared hardening."""

    ami_type: str
    instance_types: Sequence[str]
    min_size: int
    max_size: int
    disk_gib: int
    subnets: Sequence[aws.ec2.Subnet]
    labels: Mapping[str, str]
    taints: Sequence[Mapping[str, str]] = ()
    """Kubernetes-style taints (key, value, effect such as NoSchedule)."""
    devices: Sequence[str] = (ROOT_DEVICE,)
    """Block devices, each encrypted with the key (Bottlerocket has a data volume besides the OS volume)."""
    waits_for: Sequence[pulumi.Resource] = ()
    """Created after these (the add-ons nodes need to join)."""


@dataclass(frozen=True)
class HardenedNodes:
    role: aws.iam.Role
    launch_template: aws.ec2.LaunchTemplate
    node_group: aws.eks.NodeGroup


def hardened_nodes(owner: HardenedComponent, cluster: EksCluster, key: CustomerManagedKey,
                   settings: NodeGroupSettings) -> HardenedNodes:
    """A managed node group under `owner` (children `<name>-node-role`, `<name>-launch-template`, `<name>-nodes`)
    whose launch template requires IMDSv2 with a hop limit of 1 (pods cannot take the node role's credentials),
    encrypts every disk with `key`, monitors instances in detail and sets neither SSH key nor user data; the
    node role (EC2 of this account only, under the cluster's permission boundary) may only join the cluster and
    pull images. The nodes get addresses only from the given private subnets, which assign no public IPs."""
    name, tags = owner.component_name, owner.tags
    role = service_role(f"{name}-node-role", "ec2.amazonaws.com", NODE_POLICIES,
                        boundary=cluster.boundary, parent=owner, tags=tags)
    template = aws.ec2.LaunchTemplate(
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
                    "volume_size": settings.disk_gib,
                    "volume_type": "gp3",
                    "encrypted": "true",
                    "kms_key_id": key.arn,
                    "delete_on_termination": "true",
                },
            }
            for device in settings.devices
        ],
        monitoring={"enabled": True},
        tag_specifications=[
            {"resource_type": "instance", "tags": tags},
            {"resource_type": "volume", "tags": tags},
        ],
        update_default_version=True,
        tags=tags,
        opts=owner.child_opts(),
    )
    group = aws.eks.NodeGroup(
        f"{name}-nodes",
        cluster_name=cluster.name,
        node_group_name=name,
        node_role_arn=role.arn,
        subnet_ids=[s.id for s in settings.subnets],
        ami_type=settings.ami_type,
        capacity_type="ON_DEMAND",
        instance_types=list(settings.instance_types),
        scaling_config={"min_size": settings.min_size, "max_size": settings.max_size,
                        "desired_size": settings.min_size},
        update_config={"max_unavailable": 1},
        launch_template={"id": template.id, "version": template.latest_version.apply(str)},
        taints=[{"key": t["key"], "value": t["value"], "effect": TAINT_EFFECTS[t["effect"]]} for t in settings.taints],
        labels=dict(settings.labels),
        tags=tags,
        opts=owner.child_opts(ignore_changes=["scalingConfig.desiredSize"], depends_on=list(settings.waits_for)),
    )
    return HardenedNodes(role, template, group)


class SystemNodePool(HardenedComponent):
    """The cluster's CPU nodes, hardened like the GPU nodes (IMDSv2 with one hop, disks encrypted with the compute
    CMK, no SSH, private subnets of the inference tier, the node role under the boundary). Cluster services run
    here (CoreDNS, admission control, the load balancer controller) and CPU-only workloads such as agents. The
    nodes carry no taint, so anything without GPU tolerations lands here and never on GPU nodes; the label
    `hardstack.io/system=true` lets cluster services select them. At least two nodes, so that admission control
    survives losing one."""

    TYPE = "hardstack:nodes:SystemNodePool"

    def __init__(
        self,
        name: str,
        spec: SystemNodesSpec,
        cluster: EksCluster,
        network: SegmentedVpc,
        key: CustomerManagedKey,
        *,
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, tags=tags, opts=opts)
        self.spec = spec
        nodes = hardened_nodes(self, cluster, key, NodeGroupSettings(
            ami_type=SYSTEM_AMI_TYPE,
            instance_types=spec.instance_types,
            min_size=spec.min_size,
            max_size=spec.max_size,
            disk_gib=spec.disk_gib,
            subnets=network.subnets[SYSTEM_TIER],
            labels={SYSTEM_LABEL: "true"},
            waits_for=[cluster.addons[a] for a in JOIN_ADDONS],
        ))
        self.role, self.launch_template, self.node_group = nodes.role, nodes.launch_template, nodes.node_group
        self.register_outputs({"nodeGroup": self.node_group.node_group_name})
