"""HS_K8S_002: workloads that request GPUs tolerate the GPU taint."""

from hardstack.policies.checks.support import FAILED, PASSED, HardstackK8sCheck, pod_spec
from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_K8S_002",
    title="Workloads requesting GPUs tolerate the nvidia.com/gpu taint",
    severity="MEDIUM",
    area="infrastructure",
    rationale="GPU nodes are tainted so that only GPU workloads land there; a GPU workload without the "
    "toleration never schedules, which teams then 'fix' by removing the taint for everyone.",
    remediation="Use the `nvidia` RuntimeClass (it adds the toleration) or add a toleration for nvidia.com/gpu.",
    mitre_atlas=("AML.T0029: Denial of ML Service",),
    resources=("Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"),
)


class GpuWorkloadTolerates(HardstackK8sCheck):
    META = META

    def scan_spec_conf(self, conf):  # type: ignore[no-untyped-def, override]
        spec = pod_spec(conf)
        wants_gpu = any(
            "nvidia.com/gpu" in ((c.get("resources") or {}).get(part) or {})
            for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])
            for part in ("limits", "requests")
        )
        if not wants_gpu or spec.get("runtimeClassName") == "nvidia":
            return PASSED
        tolerated = any(t.get("key") == "nvidia.com/gpu" and t.get("effect") in (None, "NoSchedule")
                        for t in spec.get("tolerations") or [])
        return PASSED if tolerated else FAILED


check = GpuWorkloadTolerates()


def _deployment(extra):  # type: ignore[no-untyped-def]
    import pulumi_kubernetes as k8s

    k8s.apps.v1.Deployment("llm", metadata={"name": "llm", "namespace": "team"}, spec={
        "selector": {"match_labels": {"app": "llm"}},
        "template": {"metadata": {"labels": {"app": "llm"}}, "spec": {
            "containers": [{"name": "server", "image": "registry.example/llm@sha256:" + "0" * 64,
                            "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
            **extra}},
    })


def passing_tolerates() -> None:
    _deployment({"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]})


def passing_runtime_class() -> None:
    _deployment({"runtime_class_name": "nvidia"})


def failing_no_toleration() -> None:
    _deployment({})
