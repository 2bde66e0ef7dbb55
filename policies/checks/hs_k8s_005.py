"""HS_K8S_005: every manifest is valid against the cluster version's OpenAPI schema (evaluated by the gate)."""

from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_K8S_005",
    title="Kubernetes manifests are valid against the OpenAPI schema of the cluster's version",
    severity="HIGH",
    area="infrastructure",
    rationale="A misspelt or misplaced field is dropped or refused at apply time: a security setting that "
    "never takes effect (a NetworkPolicy with a typo in policyTypes) or a deployment that fails half-way.",
    remediation="Fix the fields named in the finding; the schema is that of `compute.cluster.kubernetes_version`.",
    waivable=False,
    resources=("*",),
)


def evaluate(objects, version):  # type: ignore[no-untyped-def]
    from hardstack.policies.k8s_schema import validate_manifest

    for address, manifest in sorted(objects.items()):
        errors = validate_manifest(manifest, version)
        detail = "; ".join(f"{e.path or '(manifest)'}: {e.message}" for e in errors[:10]) or None
        yield address, "failed" if errors else "passed", detail


def passing_valid() -> None:
    import pulumi_kubernetes as k8s

    k8s.core.v1.ConfigMap("settings", metadata={"name": "settings", "namespace": "team"}, data={"mode": "strict"})


def failing_unknown_field() -> None:
    import pulumi_kubernetes as k8s

    k8s.networking.v1.NetworkPolicy("deny", metadata={"name": "deny", "namespace": "team"},
                                    spec={"pod_selector": {}, "policyTypes": ["Ingress"], "egres": []})
