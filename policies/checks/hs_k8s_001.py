"""HS_K8S_001: namespaces enforce the restricted Pod Security Standard."""

from hardstack.policies.checks.support import FAILED, PASSED, HardstackK8sCheck
from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_K8S_001",
    title="Namespaces enforce the restricted Pod Security Standard",
    severity="HIGH",
    area="infrastructure",
    rationale="A privileged or host-namespaced pod on a shared GPU node reaches the devices, memory and "
    "credentials of every tenant there; `restricted` refuses such pods at admission.",
    remediation="Label the namespace pod-security.kubernetes.io/enforce=restricted (hardstack's TenantNamespace "
    "does); system namespaces are exempt.",
    mitre_atlas=("AML.T0048: External Harms",),
    resources=("Namespace",),
)

SYSTEM = ("kube-system", "kube-public", "kube-node-lease")


class RestrictedPodSecurity(HardstackK8sCheck):
    META = META

    def scan_spec_conf(self, conf):  # type: ignore[no-untyped-def, override]
        metadata = conf.get("metadata") or {}
        if metadata.get("name") in SYSTEM:
            return PASSED
        labels = metadata.get("labels") or {}
        return PASSED if labels.get("pod-security.kubernetes.io/enforce") == "restricted" else FAILED


check = RestrictedPodSecurity()


def _namespace(labels):  # type: ignore[no-untyped-def]
    import pulumi_kubernetes as k8s

    k8s.core.v1.Namespace("team", metadata={"name": "team", "labels": labels})


def passing_restricted() -> None:
    _namespace({"pod-security.kubernetes.io/enforce": "restricted"})


def failing_baseline() -> None:
    _namespace({"pod-security.kubernetes.io/enforce": "baseline"})


def failing_unlabelled() -> None:
    _namespace({})
