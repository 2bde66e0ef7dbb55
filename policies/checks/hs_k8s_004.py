"""HS_K8S_004: every tenant namespace has a GPU quota (evaluated by the gate)."""

from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_K8S_004",
    title="Tenant namespaces have a quota on requests.nvidia.com/gpu",
    severity="MEDIUM",
    area="infrastructure",
    rationale="Without a GPU quota one tenant (or a stolen token of one) can take every GPU of a shared pool: "
    "a denial of service on the others and a cost incident.",
    remediation="Add a ResourceQuota with requests.nvidia.com/gpu (hardstack's TenantNamespace does; set "
    "`gpus` per tenant).",
    owasp_llm=("LLM10: Unbounded Consumption",),
    mitre_atlas=("AML.T0029: Denial of ML Service",),
    resources=("Namespace",),
)


def evaluate(objects, version):  # type: ignore[no-untyped-def]
    from hardstack.policies.native import in_namespace, tenant_namespaces

    for namespace, address in sorted(tenant_namespaces(objects).items()):
        quotas = in_namespace(objects, "ResourceQuota", namespace)
        ok = any("requests.nvidia.com/gpu" in ((q.get("spec") or {}).get("hard") or {}) for q in quotas)
        yield address, "passed" if ok else "failed", None if ok else f"no GPU quota in {namespace}"


def _tenant(hard) -> None:  # type: ignore[no-untyped-def]
    import pulumi_kubernetes as k8s

    k8s.core.v1.Namespace("team", metadata={"name": "team", "labels": {"hardstack.io/tenant": "team"}})
    k8s.core.v1.ResourceQuota("quota", metadata={"name": "quota", "namespace": "team"}, spec={"hard": hard})


def passing_gpu_quota() -> None:
    _tenant({"requests.nvidia.com/gpu": "2", "requests.cpu": "8"})


def failing_cpu_only() -> None:
    _tenant({"requests.cpu": "8"})
