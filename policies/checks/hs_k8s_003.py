"""HS_K8S_003: every tenant namespace denies all ingress and egress by default (evaluated by the gate)."""

from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_K8S_003",
    title="Tenant namespaces have a default-deny NetworkPolicy for ingress and egress",
    severity="HIGH",
    area="infrastructure",
    rationale="Without a default deny, any pod of any tenant can reach another tenant's model servers and data "
    "loaders, and send data anywhere the network allows; explicit allows then mean nothing.",
    remediation="Add a NetworkPolicy with podSelector {} and policyTypes [Ingress, Egress] and no rules "
    "(hardstack's TenantNamespace does), then allow what is needed.",
    owasp_llm=("LLM02: Sensitive Information Disclosure",),
    mitre_atlas=("AML.T0025: Exfiltration via Cyber Means",),
    resources=("Namespace",),
)


def _default_deny(policy):  # type: ignore[no-untyped-def]
    spec = policy.get("spec") or {}
    selector = spec.get("podSelector") or {}
    return (
        not selector.get("matchLabels") and not selector.get("matchExpressions")
        and {"Ingress", "Egress"} <= set(spec.get("policyTypes") or [])
        and not spec.get("ingress") and not spec.get("egress")
    )


def evaluate(objects, version):  # type: ignore[no-untyped-def]
    from hardstack.policies.native import in_namespace, tenant_namespaces

    for namespace, address in sorted(tenant_namespaces(objects).items()):
        denied = any(_default_deny(p) for p in in_namespace(objects, "NetworkPolicy", namespace))
        yield address, "passed" if denied else "failed", None if denied else f"no default-deny policy in {namespace}"


def _tenant(with_default_deny: bool) -> None:
    import pulumi_kubernetes as k8s

    k8s.core.v1.Namespace("team", metadata={"name": "team", "labels": {"hardstack.io/tenant": "team"}})
    k8s.networking.v1.NetworkPolicy("allow-dns", metadata={"name": "allow-dns", "namespace": "team"},
                                    spec={"pod_selector": {}, "policy_types": ["Egress"],
                                          "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]})
    if with_default_deny:
        k8s.networking.v1.NetworkPolicy("deny", metadata={"name": "deny", "namespace": "team"},
                                        spec={"pod_selector": {}, "policy_types": ["Ingress", "Egress"]})


def passing_default_deny() -> None:
    _tenant(True)


def failing_only_allows() -> None:
    _tenant(False)
