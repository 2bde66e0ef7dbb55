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


class GpuTaint(HardstackCheck):
    META = META

    def scan_resource_conf(self, conf):  # type: ignore[no-untyped-def, override]
        ami = str(value(conf, "ami_type") or "")
        types = value(conf, "instance_types") or []
        types = types if isinstance(types, list) else [types]
        gpu = any(k in ami for k in GPU_AMIS) or any(str(t).startswith(("g4", "g5", "g6", "p3", "p4", "p5", "p6"))
                                                       for t in types)
        if not gpu:
            return PASSED
        for taint in conf.get("taint") or []:
            if value(taint, "key") == "nvidia.com/gpu" and value(taint, "effect") == "NO_SCHEDULE":
                return PASSED
        return FAILED


check = GpuTaint()


def _pool(taints):  # type: ignore[no-untyped-def]
    import pulumi_aws as aws

    aws.eks.NodeGroup("gpus", cluster_name="c", node_role_arn="arn:aws:iam::123456789012:role/n",
                      subnet_ids=["subnet-1"], ami_type="AL2023_x86_64_NVIDIA", instance_types=["g5.2xlarge"],
                      scaling_config={"min_size": 0, "max_size": 2, "desired_size": 0}, taints=taints)


def passing_tainted() -> None:
    _pool([{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}])


def failing_untainted() -> None:
    _pool([])
