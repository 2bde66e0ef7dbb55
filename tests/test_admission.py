"""Image admission: Kyverno, pinned and run from the stack's mirror, admits only signed images of the stack's
registry, by digest, everywhere but kube-system and kyverno; the gate fails a stack that weakens any of it.

Every test asserts the property itself on the synthesized `llm-inference` blueprint (or a weakened copy), so
removing it from modules/admission.py, modules/charts.py, policies/bridge.py or the supply-chain checks fails a
test here."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable

import pulumi
import pytest

from hardstack.errors import GateError
from hardstack.modules import admission, charts
from hardstack.modules.charts import KYVERNO, LOAD_BALANCER_CONTROLLER, REVIEWED, HelmChart, platform_images
from hardstack.policies.bridge import HELM_RELEASE, bridge
from hardstack.stacks.inventory import Inventory, Resource
from hardstack.stacks.targets import synth_target

from .gate_helpers import failed, gate, synth_with_transform, transform_of
from .helpers import statements

STACK = "llm-inference"
CLUSTER_POLICY = "kubernetes:kyverno.io/v1:ClusterPolicy"
NAMESPACE = "kubernetes:core/v1:Namespace"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
KMS_KEY = "aws:kms/key:Key"
REPOSITORY = "aws:ecr/repository:Repository"
POD_IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
VERIFY, REGISTRIES, DIGESTS = "verify-image-signatures", "restrict-image-registries", "require-image-digests"


@pytest.fixture(scope="module")
def inv() -> Inventory:
    """The shipped `llm-inference` blueprint, synthesized once for this module."""
    return synth_target(STACK)


def policy(inv: Inventory, name: str) -> dict[str, Any]:
    return inv.named(f"admission-{name}", CLUSTER_POLICY).inputs


def signing_key_arn(inv: Inventory) -> str:
    return inv.named("registry-signing-key", KMS_KEY).outputs["arn"]


def host(inv: Inventory) -> str:
    return inv.named("registry-inference-server", REPOSITORY).outputs["repositoryUrl"].split("/", 1)[0]


def release(inv: Inventory) -> Resource:
    return inv.named("admission-kyverno", HELM_RELEASE)


# --- the policies --------------------------------------------------------------------------------------------


def test_three_cluster_policies_all_enforced_and_fail_closed(inv: Inventory) -> None:
    """Every rule's own failure action is Enforce (nothing left to the policy-level default, which is Audit), no
    override audits a namespace, and every webhook fails closed."""
    policies = {r.inputs["metadata"]["name"]: r.inputs for r in inv.of_type(CLUSTER_POLICY)}
    assert set(policies) == {VERIFY, REGISTRIES, DIGESTS}
    for name, p in policies.items():
        spec = p["spec"]
        assert spec["webhookConfiguration"]["failurePolicy"] == "Fail", name
        assert spec["admission"] is True and "validationFailureActionOverrides" not in spec, name
        for rule in spec["rules"]:
            actions = [e["failureAction"] for e in rule.get("verifyImages", [])]
            if "validate" in rule:
                actions.append(rule["validate"]["failureAction"])
                assert "failureActionOverrides" not in rule["validate"]
            assert actions and set(actions) == {"Enforce"}, (name, rule["name"])


def test_policies_apply_to_pods_everywhere_but_kube_system_and_kyverno(inv: Inventory) -> None:
    """Pods only (so that Kyverno derives the rules for every Pod controller), excluded namespaces exactly the two."""
    for r in inv.of_type(CLUSTER_POLICY):
        for rule in r.inputs["spec"]["rules"]:
            assert rule["match"] == {"any": [{"resources": {"kinds": ["Pod"]}}]}
            assert rule["exclude"] == {"any": [{"resources": {"namespaces": ["kube-system", "kyverno",
                                                                              "amazon-guardduty"]}}]}


def test_signatures_verified_with_this_stacks_signing_key(inv: Inventory) -> None:
    [rule] = policy(inv, VERIFY)["spec"]["rules"]
    [entry] = rule["verifyImages"]
    [attestor] = entry["attestors"]
    [signer] = attestor["entries"]
    assert signer["keys"]["kms"] == f"awskms:///{signing_key_arn(inv)}"
    assert attestor["count"] == 1 and entry["type"] == "Cosign"
    assert entry["required"] is True and entry["verifyDigest"] is True and entry["mutateDigest"] is True


def test_no_public_transparency_log(inv: Inventory) -> None:
    """A private KMS key in a VPC without a route out: no Rekor entry or certificate timestamp is looked for."""
    [signer] = policy(inv, VERIFY)["spec"]["rules"][0]["verifyImages"][0]["attestors"][0]["entries"]
    assert signer["keys"]["rekor"] == {"ignoreTlog": True}
    assert signer["keys"]["ctlog"] == {"ignoreSCT": True}
    assert "keyless" not in signer and "certificates" not in signer


def test_registry_credentials_come_from_the_ambient_aws_role(inv: Inventory) -> None:
    entry = policy(inv, VERIFY)["spec"]["rules"][0]["verifyImages"][0]
    assert entry["imageRegistryCredentials"] == {"allowInsecureRegistry": False, "providers": ["amazon"]}
    assert "secrets" not in entry["imageRegistryCredentials"]
    assert release(inv).inputs["values"]["features"]["registryClient"] == {
        "allowInsecure": False, "credentialHelpers": ["amazon"]}


def test_verified_images_are_the_registry_signed_patterns(inv: Inventory) -> None:
    """Everything under the stack's prefix (its image families and the platform mirrors) must be signed."""
    entry = policy(inv, VERIFY)["spec"]["rules"][0]["verifyImages"][0]
    assert entry["imageReferences"] == [f"{host(inv)}/{STACK}/*"]


def test_allowlist_is_signed_and_cached_patterns_for_every_container_list(inv: Inventory) -> None:
    [rule] = policy(inv, REGISTRIES)["spec"]["rules"]
    expected = f"{host(inv)}/{STACK}/*"  # llm-inference declares no pull-through cache
    assert rule["validate"]["pattern"] == {"spec": {
        "containers": [{"image": expected}],
        "=(initContainers)": [{"image": expected}],
        "=(ephemeralContainers)": [{"image": expected}],
    }}


def test_allowlist_joins_signed_and_cached_patterns() -> None:
    spec = admission.registries_spec(["r.example.com/s/*", "r.example.com/ecr-public/nvidia/*"])
    assert spec["rules"][0]["validate"]["pattern"]["spec"]["containers"] == [
        {"image": "r.example.com/s/* | r.example.com/ecr-public/nvidia/*"}]
    with pytest.raises(ValueError):
        admission.registries_spec([])


def test_images_by_digest_only(inv: Inventory) -> None:
    [rule] = policy(inv, DIGESTS)["spec"]["rules"]
    assert rule["validate"]["pattern"]["spec"] == {
        key: [{"image": "*@sha256:*"}] for key in ("containers", "=(initContainers)", "=(ephemeralContainers)")}


def test_policies_wait_for_the_release_that_installs_their_crd(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CRDs come with the chart (a ClusterPolicy created before it would be refused), and the chart waits for its
    namespace and for the Pod Identity association its admission controller signs in with."""
    from hardstack.stacks import mocks

    waits: dict[str, set[str]] = {}
    register = mocks.RecordingMonitor.RegisterResource

    def recording(self: Any, request: Any) -> Any:  # the engine's view: explicit dependencies by URN
        if request.name.startswith("admission-"):
            waits[request.name] = {urn.rsplit("::", 1)[1] for urn in request.dependencies}
        return register(self, request)

    monkeypatch.setattr(mocks.RecordingMonitor, "RegisterResource", recording)
    synth_target(STACK)
    for name in (VERIFY, REGISTRIES, DIGESTS):
        assert "admission-kyverno" in waits[f"admission-{name}"]
    assert {"admission-namespace", "admission-identity-pod-identity"} <= waits["admission-kyverno"]


# --- the admission controller's identity ---------------------------------------------------------------------


def test_pod_identity_for_kyvernos_admission_controller_only(inv: Inventory) -> None:
    association = inv.named("admission-identity-pod-identity", POD_IDENTITY).inputs
    assert (association["namespace"], association["serviceAccount"]) == ("kyverno", "kyverno-admission-controller")
    role = inv.named("admission-identity-role")
    assert association["roleArn"] == role.outputs["arn"]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "pods.eks.amazonaws.com"}]
    cluster_arn = inv.of_type("aws:eks/cluster:Cluster")[0].outputs["arn"]
    assert trust[0]["Condition"]["ArnEquals"] == {"aws:SourceArn": cluster_arn}
    assert role.inputs["permissionsBoundary"] and role.inputs["maxSessionDuration"] == 3600


def test_role_reads_the_stack_repositories_and_this_keys_public_half_only(inv: Inventory) -> None:
    role = inv.named("admission-identity-role")
    policies = [r for r in inv.of_type("aws:iam/rolePolicy:RolePolicy") if r.inputs["role"] == role.outputs["id"]]
    assert [p.name for p in policies] == ["admission-verify-images"]
    by_sid = statements(policies[0])
    assert set(by_sid) == {"RegistrySignIn", "ReadSignedImages", "SigningKeyPublicHalf"}
    assert by_sid["RegistrySignIn"]["Action"] == ["ecr:GetAuthorizationToken"]
    assert by_sid["ReadSignedImages"]["Action"] == ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    own = sorted(r.outputs["arn"] for r in inv.of_type(REPOSITORY) if r.name.startswith("registry-"))
    assert by_sid["ReadSignedImages"]["Resource"] == own
    assert by_sid["SigningKeyPublicHalf"] == {"Sid": "SigningKeyPublicHalf", "Effect": "Allow",
                                              "Action": ["kms:DescribeKey", "kms:GetPublicKey"],
                                              "Resource": signing_key_arn(inv)}


def test_registry_lets_the_admission_role_pull(inv: Inventory) -> None:
    role_arn = inv.named("admission-identity-role").outputs["arn"]
    repo_policy = inv.named("registry-inference-server-policy")
    pullers = statements(repo_policy)["PullByTheStackRolesThroughTheEndpoint"]["Principal"]["AWS"]
    assert role_arn in pullers


# --- the release ---------------------------------------------------------------------------------------------


def test_release_is_the_pinned_chart(inv: Inventory) -> None:
    r = release(inv).inputs
    assert (r["chart"], r["version"], r["repositoryOpts"]) == ("kyverno", "3.9.0", {"repo": KYVERNO.repository})
    assert KYVERNO.repository.startswith("https://")
    assert r["namespace"] == "kyverno" and r["createNamespace"] is False
    assert r["atomic"] is True and r["cleanupOnFail"] is True and 0 < r["maxHistory"] <= 10
    assert not r.get("devel") and not r.get("postrender")
    [namespace] = [n for n in inv.of_type(NAMESPACE) if n.inputs["metadata"]["name"] == "kyverno"]
    assert namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_three_admission_replicas_no_exceptions_no_fail_open(inv: Inventory) -> None:
    values = release(inv).inputs["values"]
    assert values["admissionController"]["replicas"] == 3
    assert values["admissionController"]["podDisruptionBudget"] == {"enabled": True, "minAvailable": 2}
    assert values["features"]["policyExceptions"]["enabled"] is False
    assert values["features"]["forceFailurePolicyIgnore"]["enabled"] is False
    assert values["admissionController"]["rbac"]["serviceAccount"]["name"] == "kyverno-admission-controller"
    assert set(values["config"]["resourceFiltersExcludeNamespaces"]) == {"kube-public", "kube-node-lease"}


def _image_values(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node] if {"registry", "repository", "tag"} <= set(node) else []
        return found + [i for v in node.values() for i in _image_values(v)]
    return []


def test_every_kyverno_image_runs_from_the_stack_mirror(inv: Inventory) -> None:
    values = release(inv).inputs["values"]
    mirror = f"{host(inv)}/{STACK}/platform"
    images = _image_values(values)
    assert values["global"]["image"]["registry"] == mirror
    assert {i["registry"] for i in images} == {mirror}
    assert {i["tag"] for i in images} == {KYVERNO.app_version}
    assert {i["repository"] for i in images} == set(KYVERNO.images)
    mirrored = {r.inputs["name"].removeprefix(f"{STACK}/platform/") for r in inv.of_type(REPOSITORY)}
    assert set(platform_images(load_balancer_controller=True)) <= mirrored


def test_chart_pins() -> None:
    assert REVIEWED == {"kyverno": KYVERNO, "aws-load-balancer-controller": LOAD_BALANCER_CONTROLLER}
    assert (KYVERNO.version, KYVERNO.app_version) == ("3.9.0", "v1.19.0")
    assert (LOAD_BALANCER_CONTROLLER.version, LOAD_BALANCER_CONTROLLER.app_version) == ("1.17.1", "v2.17.1")
    assert platform_images(load_balancer_controller=False) == KYVERNO.images
    assert platform_images(load_balancer_controller=True) == KYVERNO.images + LOAD_BALANCER_CONTROLLER.images
    with pytest.raises(ValueError, match="not https"):
        dataclasses.replace(KYVERNO, repository="http://kyverno.github.io/kyverno/")


def test_release_refuses_a_chart_that_was_not_reviewed() -> None:
    other = dataclasses.replace(KYVERNO, version="3.8.0")
    with pytest.raises(ValueError, match="not one of the reviewed charts"):
        charts.release("k", other, mirror_registry="", values={}, provider=None, parent=None)  # type: ignore[arg-type]


# --- the gate and Helm releases ------------------------------------------------------------------------------


def with_release(inv: Inventory, **changes: Any) -> Inventory:
    """The inventory with the Kyverno release's inputs changed (None removes an input)."""
    r = release(inv)
    inputs = {k: v for k, v in {**r.inputs, **changes}.items() if v is not None}
    return Inventory([dataclasses.replace(x, inputs=inputs) if x is r else x for x in inv])


def test_a_pinned_reviewed_release_stands_unjudged_with_its_review(inv: Inventory) -> None:
    bridged = bridge(inv)
    why = bridged.not_judged[release(inv).urn]
    assert "kyverno 3.9.0" in why and KYVERNO.repository in why and KYVERNO.review in why
    assert f"not judged: admission-kyverno: {why}" in bridged.reviewed_releases()
    address = bridged.address_of[release(inv).urn]  # its values are judged (HS_SUPPLY_007, tests/test_helm_values.py)
    assert address in bridged.releases and address not in bridged.objects  # but it is no manifest


@pytest.mark.parametrize("changes, shown", [
    ({"version": "3.8.0"}, "version 3.8.0"),
    ({"version": None}, "version unpinned"),
    ({"repositoryOpts": {"repo": "https://charts.example.com/kyverno"}}, "from https://charts.example.com/kyverno"),
    ({"repositoryOpts": None}, "from no repository"),
    ({"chart": "oci://registry.example.com/charts/kyverno"}, "oci://registry.example.com/charts/kyverno"),
    ({"postrender": "/usr/local/bin/rewrite"}, "with a post-renderer"),
])
def test_any_other_release_is_not_verified(inv: Inventory, changes: dict[str, Any], shown: str) -> None:
    with pytest.raises(GateError, match="not verified") as e:
        bridge(with_release(inv, **changes))
    assert "admission-kyverno" in str(e.value) and shown in str(e.value)


def test_a_provider_rendered_chart_is_not_verified() -> None:
    """A Helm chart rendered by the provider (helm.v4.Chart) has no children under the mocks: never judged blind."""
    import pulumi_kubernetes as k8s

    from hardstack.stacks.synth import run_program

    def program() -> None:
        k8s.helm.v4.Chart("podinfo", chart="podinfo", repository_opts={"repo": "https://charts.example.com/podinfo"})

    with pytest.raises(GateError, match=r"not verified: podinfo \(kubernetes:helm.sh/v4:Chart\)"):
        bridge(run_program(program, project="p", stack="s", region="us-east-1"))


def test_a_weakened_release_version_makes_the_whole_gate_not_verified() -> None:
    inventory, _ = synth_with_transform(STACK, transform_of(HELM_RELEASE, lambda p: {**p, "version": "3.7.0"},
                                                            name="admission-kyverno"))
    with pytest.raises(GateError, match=r"admission-kyverno \(chart 'kyverno' version 3.7.0"):
        bridge(inventory)


# --- the gate fails weakened admission ----------------------------------------------------------------------


def _spec_change(policy_name: str, change: Callable[[dict[str, Any]], None]) -> Callable[[Any], Any]:
    """A transform changing one ClusterPolicy's spec (an output of the registry's names and keys)."""

    def on_props(props: dict[str, Any]) -> dict[str, Any]:
        def changed(spec: dict[str, Any]) -> dict[str, Any]:
            spec = json.loads(json.dumps(spec))
            change(spec)
            return spec

        return {**props, "spec": pulumi.Output.from_input(props["spec"]).apply(changed)}

    return transform_of(CLUSTER_POLICY, on_props, name=f"admission-{policy_name}")


def _audit(spec: dict[str, Any]) -> None:
    spec["rules"][0]["verifyImages"][0].update(failureAction="Audit", mutateDigest=False)  # Kyverno requires both


def _fail_open(spec: dict[str, Any]) -> None:
    spec["webhookConfiguration"]["failurePolicy"] = "Ignore"


def _signature_optional(spec: dict[str, Any]) -> None:
    spec["rules"][0]["verifyImages"][0]["required"] = False


def _any_registry(spec: dict[str, Any]) -> None:
    for containers in spec["rules"][0]["validate"]["pattern"]["spec"].values():
        containers[0]["image"] = "*"


def _init_containers_unchecked(spec: dict[str, Any]) -> None:
    del spec["rules"][0]["validate"]["pattern"]["spec"]["=(initContainers)"]


NAMESPACES = {"admission-namespace", "tenant-serving-namespace"}

MUTATIONS = {
    "verification-in-audit-mode": (VERIFY, _audit, {("HS_SUPPLY_002", f"admission-{VERIFY}")}),
    "verification-fails-open": (VERIFY, _fail_open, {("HS_SUPPLY_002", f"admission-{VERIFY}")}),
    "signature-not-required": (VERIFY, _signature_optional, {("HS_SUPPLY_001", n) for n in NAMESPACES}),
    "allowlist-opened-to-any-registry": (REGISTRIES, _any_registry, {("HS_SUPPLY_003", n) for n in NAMESPACES}),
    "init-containers-unchecked": (REGISTRIES, _init_containers_unchecked, {("HS_SUPPLY_003", n) for n in NAMESPACES}),
}


@pytest.mark.parametrize("case", sorted(MUTATIONS))
def test_weakened_admission_fails_the_gate(case: str) -> None:
    policy_name, change, expected = MUTATIONS[case]
    report = gate(STACK, _spec_change(policy_name, change))
    found = failed(report)
    assert expected <= found, found
    assert {c for c, _ in found} == {c for c, _ in expected}, found  # nothing else gives way


def test_misspelt_policy_field_fails_the_schema_check() -> None:
    def misspell(spec: dict[str, Any]) -> None:
        spec["rules"][0]["verifyImages"][0]["mutateDigests"] = spec["rules"][0]["verifyImages"][0].pop("mutateDigest")

    assert ("HS_K8S_005", f"admission-{VERIFY}") in failed(gate(STACK, _spec_change(VERIFY, misspell)))


def test_tag_only_agent_image_fails_the_gate() -> None:
    def by_tag(props: dict[str, Any]) -> dict[str, Any]:
        def change(spec: dict[str, Any]) -> dict[str, Any]:
            spec = json.loads(json.dumps(spec))
            container = spec["template"]["spec"]["containers"][0]
            container["image"] = container["image"].split("@", 1)[0] + ":latest"
            return spec

        return {**props, "spec": pulumi.Output.from_input(props["spec"]).apply(change)}

    report = gate("agent-sandbox", transform_of(DEPLOYMENT, by_tag, name="agent-support-triage-deployment"))
    # stock checkov agrees: CKV_K8S_43 (image by digest) and CKV_K8S_14 (no :latest)
    assert failed(report) == {(check, "agent-support-triage-deployment")
                              for check in ("HS_SUPPLY_004", "CKV_K8S_43", "CKV_K8S_14")}
    # and the report says which release stood unjudged, and why
    assert [n for n in report.notes if "admission-kyverno" in n] == [
        f"not judged: admission-kyverno: Helm release of the reviewed chart kyverno 3.9.0 (app v1.19.0) from "
        f"{KYVERNO.repository}: {KYVERNO.review}"]
