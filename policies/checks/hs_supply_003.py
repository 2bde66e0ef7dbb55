"""HS_SUPPLY_003: the cluster refuses images from registries other than the stack's (evaluated by the gate)."""

from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_SUPPLY_003",
    title="The cluster admits images only from allowlisted registries",
    severity="HIGH",
    area="supply chain",
    rationale="Signature verification covers the stack's own repositories; without an allowlist an image from any "
    "other registry (a public one, a typo-squatted name) is simply not matched and runs unverified. Init and "
    "ephemeral containers are images too: an allowlist that skips them leaves a way in.",
    remediation="Declare an enforced Kyverno ClusterPolicy whose validate pattern holds the images of containers, "
    "initContainers and ephemeralContainers of Pods to registry-anchored patterns (hardstack's ImageAdmission "
    "does, from the blueprint's `registry`).",
    owasp_llm=("LLM03: Supply Chain",),
    mitre_atlas=("AML.T0010: ML Supply Chain Compromise",),
    resources=("Namespace", "ClusterPolicy"),
)


def evaluate(objects, version):  # type: ignore[no-untyped-def]
    from hardstack.policies.image_admission import cluster_policies, fails_open, namespaces, registry_restrictions

    enforcing = [address for address, policy in cluster_policies(objects)
                 if not fails_open(policy) and any(a == "Enforce" for _, a in registry_restrictions(policy))]
    if enforcing:
        for address in enforcing:
            yield address, "passed", None
        return
    for address in namespaces(objects):
        yield address, "failed", ("no enforced, fail-closed ClusterPolicy holds the images of every container, "
                                  "init container and ephemeral container of Pods to named registries")


ALLOWED = ("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/*",
           "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/ecr-public/nvidia/*")


def _policy(change=None, declare: bool = True) -> None:  # type: ignore[no-untyped-def]
    import pulumi_kubernetes as k8s

    from hardstack.modules.admission import registries_spec

    k8s.core.v1.Namespace("team", metadata={"name": "team"})
    spec = registries_spec(ALLOWED)
    if change:
        change(spec)
    if declare:
        k8s.apiextensions.CustomResource("registries", api_version="kyverno.io/v1", kind="ClusterPolicy",
                                         metadata={"name": "restrict-image-registries"}, spec=spec)


def passing_enforced_allowlist() -> None:
    _policy()


def failing_no_allowlist() -> None:
    _policy(declare=False)


def failing_audited_allowlist() -> None:
    _policy(lambda s: s["rules"][0]["validate"].update(failureAction="Audit"))


def failing_init_containers_unrestricted() -> None:
    _policy(lambda s: s["rules"][0]["validate"]["pattern"]["spec"].pop("=(initContainers)"))


def failing_any_registry() -> None:
    def change(s):  # type: ignore[no-untyped-def]
        for containers in s["rules"][0]["validate"]["pattern"]["spec"].values():
            containers[0]["image"] = "*/team/*"

    _policy(change)
