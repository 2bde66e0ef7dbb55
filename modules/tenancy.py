"""A tenant's corner of the shared cluster: restricted pods, default-deny network, quotas, persona roles."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from hardstack.blueprints.compute import TenantSpec

from .base import HardenedComponent
from .cluster import TENANT_LABEL, EksCluster
from .network import AwsAccess

PSA_LEVEL = "restricted"
TENANT_SERVICE_ACCOUNT = "workload"
"""The service account of a tenant's workloads: their Pod Identity role and Vault login are bound to it."""

PERSONA_RULES: dict[str, list[dict[str, Any]]] = {
    # explore data and run training jobs; no secrets, no production serving objects
    "data-scientist": [
        {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "delete", "get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["create", "get", "list", "watch"]},
    ],
    # deploy and operate models; no access to secrets' contents
    "mlops-engineer": [
        {"apiGroups": ["apps"], "resources": ["deployments", "replicasets"],
         "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]},
        {"apiGroups": [""], "resources": ["services", "configmaps"],
         "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]},
        {"apiGroups": [""], "resources": ["pods", "pods/log", "events"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "delete", "get", "list", "watch"]},
    ],
    # find the endpoints to call, nothing else
    "inference-client": [
        {"apiGroups": [""], "resources": ["services", "endpoints"], "verbs": ["get", "list"]},
    ],
}
"""Namespaced RBAC per persona: named verbs and resources only, never `*`, never secrets."""


def network_policies(gateway_namespace: str, aws: AwsAccess | None = None) -> list[tuple[str, str, dict[str, Any]]]:
    """(child name suffix, object name, spec) of a tenant's NetworkPolicies: deny everything both ways, then
    allow DNS to kube-dns, traffic within the namespace, calls from the inference gateway and, where the VPC
    offers it, AWS through its endpoints tier (for the workloads' Pod Identity role)."""
    every_pod: dict[str, Any] = {}
    to_aws = [("allow-aws", "allow-aws", {"pod_selector": every_pod, "policy_types": ["Egress"],
                                          "egress": aws.egress()})] if aws else []
    return to_aws + [
        ("default-deny", "default-deny-all", {"pod_selector": every_pod, "policy_types": ["Ingress", "Egress"]}),
        ("allow-dns", "allow-dns", {
            "pod_selector": every_pod,
            "policy_types": ["Egress"],
            "egress": [{
                "to": [{"namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": "kube-system"}},
                        "pod_selector": {"match_labels": {"k8s-app": "kube-dns"}}}],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            }],
        }),
        ("allow-same-namespace", "allow-same-namespace", {
            "pod_selector": every_pod,
            "policy_types": ["Ingress", "Egress"],
            "ingress": [{"from": [{"pod_selector": {}}]}],
            "egress": [{"to": [{"pod_selector": {}}]}],
        }),
        ("allow-inference-gateway", "allow-inference-gateway", {
            "pod_selector": every_pod,
            "policy_types": ["Ingress"],
            "ingress": [{"from": [{"namespace_selector": {
                "match_labels": {"kubernetes.io/metadata.name": gateway_namespace}}}]}],
        }),
    ]


class TenantNamespace(HardenedComponent):
    """A namespace per tenant that enforces the `restricted` Pod Security Standard (and audits and warns on it),
    denies all ingress and egress by default and then allows only DNS, traffic within the namespace and calls
    from the inference gateway; a quota that includes `requests.nvidia.com/gpu`; default container limits;
    persona roles bound to identity-provider groups; service accounts that do not mount API tokens."""

    TYPE = "hardstack:tenancy:TenantNamespace"

    def __init__(
        self,
        name: str,
        spec: TenantSpec,
        cluster: EksCluster,
        *,
        gateway_namespace: str,
        aws: AwsAccess | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, opts=opts)
        self.spec = spec
        ns = spec.name
        labels = {TENANT_LABEL: ns, "app.kubernetes.io/managed-by": "hardstack"}
        o = pulumi.ResourceOptions(parent=self, provider=cluster.provider)
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={
                "name": ns,
                "labels": {
                    **labels,
                    "pod-security.kubernetes.io/enforce": PSA_LEVEL,
                    "pod-security.kubernetes.io/enforce-version": "latest",
                    "pod-security.kubernetes.io/audit": PSA_LEVEL,
                    "pod-security.kubernetes.io/warn": PSA_LEVEL,
                },
            },
            opts=o,
        )
        in_ns = pulumi.ResourceOptions(parent=self, provider=cluster.provider, depends_on=[self.namespace])

        def meta(object_name: str) -> dict[str, Any]:
            return {"name": object_name, "namespace": ns, "labels": labels}

        self.network_policies = [
            k8s.networking.v1.NetworkPolicy(f"{name}-{child}", metadata=meta(object_name), spec=policy, opts=in_ns)
            for child, object_name, policy in network_policies(gateway_namespace, aws)
        ]
        self.quota = k8s.core.v1.ResourceQuota(
            f"{name}-quota",
            metadata=meta("tenant-quota"),
            spec={"hard": {
                "requests.nvidia.com/gpu": str(spec.gpus),
                "requests.cpu": spec.cpu,
                "requests.memory": spec.memory,
                "limits.cpu": spec.cpu,
                "limits.memory": spec.memory,
                "pods": "200",
                "services.loadbalancers": "0",
                "services.nodeports": "0",
            }},
            opts=in_ns,
        )
        self.limits = k8s.core.v1.LimitRange(
            f"{name}-limits",
            metadata=meta("container-defaults"),
            spec={"limits": [{
                "type": "Container",
                "default": {"cpu": "1", "memory": "2Gi"},
                "default_request": {"cpu": "250m", "memory": "512Mi"},
            }]},
            opts=in_ns,
        )
        self.default_service_account = k8s.core.v1.ServiceAccountPatch(
            f"{name}-default-sa",
            metadata={"name": "default", "namespace": ns},
            automount_service_account_token=False,
            opts=in_ns,
        )
        self.workload_service_account = k8s.core.v1.ServiceAccount(
            f"{name}-workload-sa",
            metadata=meta(TENANT_SERVICE_ACCOUNT),
            automount_service_account_token=False,
            opts=in_ns,
        )
        self.roles: dict[str, k8s.rbac.v1.Role] = {}
        for persona, rules in PERSONA_RULES.items():
            role = k8s.rbac.v1.Role(f"{name}-{persona}", metadata=meta(persona), rules=rules, opts=in_ns)
            group = spec.groups.get(persona, f"{ns}:{persona}")  # type: ignore[call-overload]
            k8s.rbac.v1.RoleBinding(
                f"{name}-{persona}-binding",
                metadata=meta(persona),
                role_ref={"api_group": "rbac.authorization.k8s.io", "kind": "Role", "name": persona},
                subjects=[{"kind": "Group", "api_group": "rbac.authorization.k8s.io", "name": group}],
                opts=pulumi.ResourceOptions(parent=self, provider=cluster.provider, depends_on=[role]),
            )
            self.roles[persona] = role
        self.register_outputs({"namespace": ns})
