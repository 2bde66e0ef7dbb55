"""HS_GPU_001: GPU node groups carry the GPU taint."""

from hardstack.policies.checks.support import FAILED, PASSED, HardstackCheck, value
from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_GPU_001",
    title="GPU node groups carry the nvidia.com/gpu NoSchedule taint",
    severity="HIGH",
    area="infrastructure",
    rationale="Without the taint any pod can land on a GPU node and share its kernel, devices and memory with "
    "the GPU workloads of another team; the taint keeps everything but GPU workloads away.",
    remediation="Taint every GPU pool with nvidia.com/gpu=true:NoSchedule (hardstack's GpuNodePool does).",
    mitre_atlas=("AML.T0024: Exfiltration via ML Inference API",),
    resources=("aws_eks_node_group",),
)

GPU_AMIS = ("NVIDIA", "GPU")
GPU_INSTANCE_PREFIXES = ("g4", "g5", "g6", "gr6", "p3", "p4", "p5", "p6")
"""A node group is a GPU node group by its image or its instance types; CPU node groups (a standard image on CPU
instances, such as hardstack's system nodes) need no GPU taint."""


class GpuTaint(HardstackCheck):
    META = META

    def scan_resource_conf(self, conf):  # type: ignore[no-untyped-def, override]
        ami = str(value(conf, "ami_type") or "")
        types = value(conf, "instance_types") or []
        types = types if isinstance(types, list) else [types]
        gpu = any(k in ami for k in GPU_AMIS) or any(str(t).startswith(GPU_INSTANCE_PREFIXES) for t in types)
        if not gpu:
            return PASSED
        for taint in conf.get("taint") or []:
            if value(taint, "key") == "nvidia.com/gpu" and value(taint, "effect") == "NO_SCHEDULE":
                return PASSED
        return FAILED


check = GpuTaint()


def _pool(taints, ami="AL2023_x86_64_NVIDIA", instance_types=("g5.2xlarge",),  # type: ignore[no-untyped-def]
          labels=None):
    import pulumi_aws as aws

    aws.eks.NodeGroup("nodes", cluster_name="c", node_role_arn="arn:aws:iam::123456789012:role/n",
                      subnet_ids=["subnet-1"], ami_type=ami, instance_types=list(instance_types),
                      scaling_config={"min_size": 0, "max_size": 2, "desired_size": 0}, taints=taints, labels=labels)


def passing_tainted() -> None:
    _pool([{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}])


def passing_cpu_node_group_untainted() -> None:
    """System nodes: a standard image on CPU instances, no taint."""
    _pool([], ami="AL2023_x86_64_STANDARD", instance_types=("m7i.large",), labels={"hardstack.io/system": "true"})


def failing_untainted() -> None:
    _pool([])


def failing_gpu_instances_on_standard_image() -> None:
    """GPU instances are GPU nodes whatever the image."""
    _pool([], ami="AL2023_x86_64_STANDARD", instance_types=("m7i.large", "gr6.4xlarge"))
