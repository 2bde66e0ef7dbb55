"""HS_GPU_002: a GPU pool that several tenants can use never time-slices its GPUs."""

from hardstack.policies.checks.support import FAILED, PASSED, HardstackCheck, value
from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_GPU_002",
    title="No GPU time-slicing on a pool more than one tenant can use",
    severity="CRITICAL",
    area="infrastructure",
    rationale="Time-slicing shares one GPU's memory between processes with no isolation; GPU memory left by one "
    "tenant's model can be read by another's (cross-tenant leakage, cf. LeftoverLocals).",
    remediation="Give time-sliced pools a single tenant (its taint), or use `dedicated` or `mig` isolation.",
    owasp_llm=("LLM02: Sensitive Information Disclosure",),
    mitre_atlas=("AML.T0048: External Harms",),
    waivable=False,
    resources=("aws_eks_node_group",),
)


class NoSharedTimeSlicing(HardstackCheck):
    META = META

    def scan_resource_conf(self, conf):  # type: ignore[no-untyped-def, override]
        labels = value(conf, "labels") or {}
        sliced = str(value(labels, "nvidia.com/device-plugin.config") or "").startswith("time-slicing")
        single_tenant = any(value(t, "key") == "hardstack.io/tenant" and value(t, "effect") == "NO_SCHEDULE"
                            for t in conf.get("taint") or [])
        return FAILED if sliced and not single_tenant else PASSED


check = NoSharedTimeSlicing()


def _pool(taints):  # type: ignore[no-untyped-def]
    import pulumi_aws as aws

    aws.eks.NodeGroup("sliced", cluster_name="c", node_role_arn="arn:aws:iam::123456789012:role/n",
                      subnet_ids=["subnet-1"], ami_type="AL2023_x86_64_NVIDIA", instance_types=["g5.2xlarge"],
                      scaling_config={"min_size": 0, "max_size": 2, "desired_size": 0},
                      labels={"nvidia.com/device-plugin.config": "time-slicing-4"},
                      taints=[{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}, *taints])


def passing_single_tenant() -> None:
    _pool([{"key": "hardstack.io/tenant", "value": "search", "effect": "NO_SCHEDULE"}])


def failing_shared() -> None:
    _pool([])
