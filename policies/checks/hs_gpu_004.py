"""HS_GPU_004: no node group uses a public subnet (graph check: hs_gpu_004.yaml)."""

from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_GPU_004",
    title="Public subnets host no EKS node group",
    severity="HIGH",
    area="infrastructure",
    rationale="A node in a public subnet is one security-group mistake away from the internet; GPU nodes hold "
    "model weights in memory and node credentials.",
    remediation="Place node groups in the private inference or training tier (hardstack's GpuNodePool and "
    "SystemNodePool do).",
    mitre_atlas=("AML.T0049: Exploit Public-Facing Application",),
    resources=("aws_subnet",),
)


def _pool(public: bool) -> None:
    import pulumi_aws as aws

    vpc = aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16")
    subnet = aws.ec2.Subnet("nodes", vpc_id=vpc.id, cidr_block="10.0.0.0/20", map_public_ip_on_launch=public,
                            tags={"hardstack:tier": "public" if public else "inference"})
    aws.eks.NodeGroup("gpus", cluster_name="c", node_role_arn="arn:aws:iam::123456789012:role/n",
                      subnet_ids=[subnet.id], scaling_config={"min_size": 0, "max_size": 1, "desired_size": 0})


def passing_private_subnet() -> None:
    _pool(False)


def failing_public_subnet() -> None:
    _pool(True)
