"""The values a pinned chart's review depends on: declared once with the chart (`HelmChart.hardened`), added to every
release by `charts.release`, and checked by the gate (HS_SUPPLY_007) on each Helm release of the stack.

The first half tests the value paths and requirements themselves; the second weakens the shipped `llm-inference`
blueprint through Pulumi transforms of a release's values (as a program or a policy pack could) and expects the gate
to fail HS_SUPPLY_007 on that release, naming the value path, the value received and the value required."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Callable

import pytest

from hardstack.blueprints.exceptions import ExceptionSpec
from hardstack.modules import registry
from hardstack.modules.charts import (
    CHART_DEFAULT,
    KYVERNO,
    KYVERNO_IMAGE_VALUES,
    LOAD_BALANCER_CONTROLLER,
    MIRROR_PREFIX,
    MIRROR_REGISTRY,
    NOT_SET,
    REVIEWED,
    Deviation,
    at_least,
    deviations,
    exactly,
    image_references,
    in_mirror,
    lookup,
    reviewed_values,
)
from hardstack.policies.bridge import HELM_RELEASE, RELEASE_KIND, bridge
from hardstack.policies.checks import hs_k8s_005
from hardstack.policies.gate import GateReport, _all_judged, run_gate
from hardstack.stacks.inventory import Inventory

from .gate_helpers import failed, synth_with_transform, transform_of

STACK = "llm-inference"
MIRROR = "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/platform"
CONTROLLER_IMAGE = f"{MIRROR}/eks/aws-load-balancer-controller"
KYVERNO_RELEASE, CONTROLLER_RELEASE = "admission-kyverno", "lb-controller-release"


def kyverno() -> dict[str, Any]:
    return reviewed_values(KYVERNO, {}, MIRROR)


def controller() -> dict[str, Any]:
    """The controller's values with plain strings where a stack's are computed."""
    return reviewed_values(LOAD_BALANCER_CONTROLLER, {"clusterName": "team-cluster", "image": {
        "repository": CONTROLLER_IMAGE}}, MIRROR)


# --- value paths and requirements -----------------------------------------------------------------------------


def test_lookup_follows_dotted_paths_and_says_when_a_value_is_left_out() -> None:
    values = {"features": {"policyExceptions": {"enabled": False}}, "replicas": 3, "list": [1]}
    assert lookup(values, "features.policyExceptions.enabled") is False
    assert lookup(values, "replicas") == 3
    assert lookup(values, "features.tuf.enabled") is NOT_SET
    assert lookup(values, "replicas.count") is NOT_SET  # a scalar has no keys
    assert lookup(values, "list.0") is NOT_SET  # paths name mappings only


def test_an_exact_value_is_compared_as_json() -> None:
    assert exactly(False).test(False) and exactly(["ALL"]).test(["ALL"])
    assert not exactly(False).test(0) and not exactly(True).test(1)  # Helm's templates read `1` as true
    assert not exactly("false").test(False) and not exactly(False).test("false")
    assert not exactly(False).test(NOT_SET) and not exactly(False).test(None)
    assert exactly({"a": 1, "b": [2]}).test({"b": [2], "a": 1})
    assert not exactly(["kube-public", "kube-node-lease"]).test(["kube-public"])


def test_a_bound_is_an_integer_at_least_the_minimum() -> None:
    three = at_least(3)
    assert three.test(3) and three.test(5)
    assert not any(three.test(v) for v in (2, 0, -1, True, "3", 3.0, None, NOT_SET))
    assert three.requires == "at least 3" and three.fill("unused") == 3


def test_the_chart_default_holds_only_while_the_value_is_left_out() -> None:
    assert CHART_DEFAULT.test(NOT_SET)
    assert not any(CHART_DEFAULT.test(v) for v in ([], {}, None, "", ["[*/*,team-a,*]"]))


@pytest.mark.parametrize("value, ok", [
    (MIRROR, True),
    ("123456789012.dkr.ecr.eu-west-3.amazonaws.com/llm-inference/platform", True),
    ("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/prod/platform", True),
    ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/prod/platform", True),
    ("ghcr.io", False),
    ("reg.kyverno.io", False),
    ("public.ecr.aws", False),
    ("docker.io", False),
    ("registry.k8s.io", False),
    ("", False),
    (None, False),
    (NOT_SET, False),
    (f"{MIRROR}/", False),
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com/team", False),  # the stack's images, not its mirror
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com/ghcr", False),  # a pull-through cache of ghcr.io
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/ghcr/platform", False),
    ("602401143452.dkr.ecr.us-west-2.amazonaws.com/eks", False),  # AWS's own EKS add-on images
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example/team/platform", False),
    ("evil.example/123456789012.dkr.ecr.us-east-1.amazonaws.com/team/platform", False),
])
def test_the_mirror_is_a_private_ecr_registrys_platform_path(value: Any, ok: bool) -> None:
    assert in_mirror().test(value) is ok


def test_an_image_in_the_mirror_is_that_image_at_that_path() -> None:
    image = in_mirror("eks/aws-load-balancer-controller")
    assert image.test(CONTROLLER_IMAGE)
    assert not image.test("public.ecr.aws/eks/aws-load-balancer-controller")
    assert not image.test(f"{MIRROR}/eks/aws-load-balancer-controller-debug")
    assert not image.test(f"{MIRROR}/eks/other")
    assert not image.test(MIRROR)
    assert image.requires.endswith(f"/{MIRROR_PREFIX}/eks/aws-load-balancer-controller")


def test_the_mirror_form_is_the_registry_components() -> None:
    """The registry component mirrors under the prefix the review knows."""
    assert registry.MIRROR_PREFIX is MIRROR_PREFIX
    assert MIRROR_REGISTRY.pattern.endswith(f"/{MIRROR_PREFIX}")


def test_the_cluster_name_is_a_name_not_a_template() -> None:
    name = LOAD_BALANCER_CONTROLLER.requirements()["clusterName"]
    assert name.test("llm-inference-cluster") and name.test("prod_1")
    assert not any(name.test(v) for v in ("", "{{ .Release.Name }}", "a b", "-x", "x" * 101, None, NOT_SET))


def test_image_references_are_every_image_of_the_values() -> None:
    values = {
        "global": {"image": {"registry": "ghcr.io"}},
        "a": {"image": {"registry": MIRROR, "repository": "kyverno/kyverno"}},
        "b": {"image": {"repository": "kyverno/kyverno"}},  # runs from the global registry
        "c": {"image": {"repository": "quay.io/team/tool"}},
        "d": {"extraContainers": [{"name": "debug", "image": "busybox"}]},
        "e": {"image": {"repository": "localhost/x"}},
        "f": {"image": {"repository": "registry:5000/x"}},
    }
    assert sorted(image_references(values)) == [
        ("a.image.registry", MIRROR), ("c.image.repository", "quay.io/team/tool"),
        ("d.extraContainers[0].image", "busybox"), ("e.image.repository", "localhost/x"),
        ("f.image.repository", "registry:5000/x"), ("global.image.registry", "ghcr.io")]


# --- the charts' reviewed values ----------------------------------------------------------------------------------


def test_release_values_are_the_reviewed_values() -> None:
    assert set(REVIEWED.values()) == {KYVERNO, LOAD_BALANCER_CONTROLLER}
    for chart, values in ((KYVERNO, kyverno()), (LOAD_BALANCER_CONTROLLER, controller())):
        assert chart.hardened and deviations(chart, values) == []
        for path, r in chart.requirements().items():
            assert r.test(lookup(values, path)), path


def test_kyverno_is_reviewed_fail_closed_without_exceptions_with_three_replicas() -> None:
    v = kyverno()
    assert v["features"]["policyExceptions"]["enabled"] is False
    assert v["features"]["forceFailurePolicyIgnore"]["enabled"] is False
    assert v["admissionController"]["replicas"] == 3
    assert v["admissionController"]["podDisruptionBudget"] == {"enabled": True, "minAvailable": 2}
    assert v["admissionController"]["autoscaling"] == {"enabled": False}
    assert v["features"]["tuf"]["enabled"] is False and v["features"]["registryClient"]["allowInsecure"] is False
    for path in ("admissionController.featuresOverride", "admissionController.container.extraArgs",
                 "config.resourceFilters", "config.resourceFiltersInclude", "config.resourceFiltersIncludeNamespaces",
                 "config.matchConditions", "config.excludeGroups", "config.excludeUsernames"):
        assert KYVERNO.hardened[path] is CHART_DEFAULT and lookup(v, path) is NOT_SET, path


def test_every_kyverno_image_is_reviewed_from_the_mirror_at_the_pinned_version() -> None:
    """Each image the chart runs is read from the values named, with the mirror's registry and the app's tag; and
    those are exactly the images the registry mirrors."""
    v = kyverno()
    assert set(KYVERNO_IMAGE_VALUES.values()) == set(KYVERNO.images)
    assert lookup(v, "global.image.registry") == MIRROR
    for at, repository in KYVERNO_IMAGE_VALUES.items():
        assert lookup(v, at) == {"registry": MIRROR, "repository": repository, "tag": KYVERNO.app_version}, at
        assert KYVERNO.requirements()[f"{at}.registry"].requires == in_mirror().requires


def test_the_controller_is_reviewed_binding_target_groups_only_from_the_mirror() -> None:
    v = controller()
    assert [LOAD_BALANCER_CONTROLLER.requirements()["image.repository"].test(f"{MIRROR}/{image}")
            for image in LOAD_BALANCER_CONTROLLER.images] == [True]
    assert v["image"] == {"repository": CONTROLLER_IMAGE, "tag": LOAD_BALANCER_CONTROLLER.app_version}
    assert v["replicaCount"] == 2 and v["enableServiceMutatorWebhook"] is False
    assert v["webhookConfig"] == {"disableIngressValidation": True} and v["createIngressClassResource"] is False
    assert v["controllerConfig"]["featureGates"]["EnableServiceController"] == "false"
    assert v["clusterSecretsPermissions"] == {"allowAllSecrets": False} and v["hostNetwork"] is False


def test_the_callers_values_are_kept_and_may_restate_or_exceed_the_review() -> None:
    v = reviewed_values(KYVERNO, {"admissionController": {"replicas": 5, "rbac": {"serviceAccount": {"name": "k"}}},
                                  "features": {"policyExceptions": {"enabled": False}}}, MIRROR)
    assert v["admissionController"]["replicas"] == 5
    assert v["admissionController"]["rbac"] == {"serviceAccount": {"name": "k"}}
    assert v["features"]["policyExceptions"] == {"enabled": False}


def test_values_are_copied_not_changed() -> None:
    given = {"admissionController": {"rbac": {}}}
    reviewed_values(KYVERNO, given, MIRROR)
    assert given == {"admissionController": {"rbac": {}}}


@pytest.mark.parametrize("given, message", [
    ({"features": {"policyExceptions": {"enabled": True}}},
     "features.policyExceptions.enabled: received true, required false"),
    ({"features": {"forceFailurePolicyIgnore": {"enabled": True}}},
     "features.forceFailurePolicyIgnore.enabled: received true, required false"),
    ({"admissionController": {"replicas": 1}}, "admissionController.replicas: received 1, required at least 3"),
    ({"global": {"image": {"registry": "ghcr.io"}}},
     "global.image.registry: received \"ghcr.io\", required the stack's mirror "
     "<account>.dkr.ecr.<region>.amazonaws.com/<stack>/platform"),
    ({"config": {"resourceFiltersIncludeNamespaces": ["team-a"]}},
     "config.resourceFiltersIncludeNamespaces: received [\"team-a\"], required not set: the chart's reviewed default"),
])
def test_a_release_contradicting_its_review_is_refused(given: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"chart kyverno: {message}")):
        reviewed_values(KYVERNO, given, MIRROR)


def test_a_value_only_the_stack_knows_must_be_given() -> None:
    with pytest.raises(ValueError, match=r"clusterName: received \(not set\), required an EKS cluster name"):
        reviewed_values(LOAD_BALANCER_CONTROLLER, {}, MIRROR)


# --- deviations, as the gate sees them ----------------------------------------------------------------------------


def _changed(values: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    change(values)
    return values


def test_deviations_name_the_path_the_value_received_and_the_value_required() -> None:
    v = _changed(kyverno(), lambda v: (v["features"]["policyExceptions"].update(enabled=True),
                                      v["admissionController"].pop("replicas"),
                                      v["reportsController"]["image"].update(registry="reg.kyverno.io")))
    assert [str(d) for d in deviations(KYVERNO, v)] == [
        "features.policyExceptions.enabled: received true, required false",
        "admissionController.replicas: received (not set), required at least 3",
        'reportsController.image.registry: received "reg.kyverno.io", required the stack\'s mirror '
        "<account>.dkr.ecr.<region>.amazonaws.com/<stack>/platform",
    ]
    assert deviations(KYVERNO, v)[0] == Deviation("features.policyExceptions.enabled", True, "false")


def test_an_image_added_anywhere_must_come_from_the_mirror() -> None:
    v = _changed(kyverno(), lambda v: v["admissionController"].update(extraContainers=[
        {"name": "ok", "image": f"{MIRROR}/kyverno/kyverno:v1.19.0"}, {"name": "debug", "image": "busybox"}]))
    v["cleanupController"]["sidecar"] = {"image": {"registry": "quay.io", "repository": "x/y"}}
    assert [(d.path, d.received) for d in deviations(KYVERNO, v)] == [
        ("admissionController.extraContainers[1].image", "busybox"),
        ("cleanupController.sidecar.image.registry", "quay.io")]


def test_the_controllers_image_from_upstream_deviates() -> None:
    upstream = "public.ecr.aws/eks/aws-load-balancer-controller"
    v = _changed(controller(), lambda v: v["image"].update(repository=upstream))
    [d] = deviations(LOAD_BALANCER_CONTROLLER, v)
    assert (d.path, d.received) == ("image.repository", upstream)


# --- the gate on the shipped blueprint --------------------------------------------------------------------------


def _deep_copy(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _deep_copy(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_deep_copy(v) for v in node]
    return node


def values_change(release: str, change: Callable[[dict[str, Any]], Any]) -> Callable[[Any], Any]:
    """A Pulumi transform changing one Helm release's values (their computed leaves, the mirror, kept)."""

    def on_props(props: dict[str, Any]) -> dict[str, Any]:
        values = _deep_copy(props["values"])
        change(values)
        return {**props, "values": values}

    return transform_of(HELM_RELEASE, on_props, name=release)


def gate_of(inventory: Inventory, loaded: Any, *extra: ExceptionSpec) -> GateReport:
    return run_gate(inventory, target=STACK, exceptions=[*loaded.blueprint.exceptions, *extra],
                    locate=loaded.locate)


def hs_supply_007(report: GateReport) -> dict[str, Any]:
    return {r.resource.rsplit("::", 1)[1]: r for r in report.results if r.check_id == "HS_SUPPLY_007"}


@pytest.fixture(scope="module")
def shipped() -> tuple[Inventory, Any]:
    return synth_with_transform(STACK)


def test_the_shipped_releases_pass_with_their_reviewed_values(shipped: tuple[Inventory, Any]) -> None:
    inventory, loaded = shipped
    report = gate_of(inventory, loaded)
    assert report.passed
    results = hs_supply_007(report)
    assert {name: (r.status, r.address) for name, r in results.items()} == {
        KYVERNO_RELEASE: ("passed", "HelmRelease.kyverno.kyverno"),
        CONTROLLER_RELEASE: ("passed", "HelmRelease.kube-system.aws-load-balancer-controller")}
    assert {r.resource for r in results.values()} == {r.urn for r in inventory.of_type(HELM_RELEASE)}


def test_releases_reach_the_check_and_not_checkov_or_the_schema(shipped: tuple[Inventory, Any]) -> None:
    """A release is no manifest: HS_K8S_005 and checkov never see it, and checkov's scanned-set accounting does not
    expect it; its values reach HS_SUPPLY_007 by its own address."""
    inventory, _ = shipped
    bridged = bridge(inventory)
    for r in inventory.of_type(HELM_RELEASE):
        address = bridged.address_of[r.urn]
        assert bridged.urn_of[address] == r.urn and address.startswith("HelmRelease.")
        assert bridged.releases[address]["values"] == r.inputs["values"]
        assert address not in bridged.objects
    assert not any(m.get("kind") in ("Release", RELEASE_KIND) for m in bridged.objects.values())
    assert not any("release" in path.lower() for path in bridged.manifests)
    schema_checked = {address for address, _, _ in hs_k8s_005.evaluate(bridged.objects, "1.33")}
    assert schema_checked == set(bridged.objects)
    plan = set(bridged.address_of.values()) - set(bridged.objects) - set(bridged.releases)
    _all_judged(bridged, {"terraform_plan": plan, "kubernetes": set(bridged.objects)})  # nothing missing
    mirror = inventory.named("admission-kyverno", HELM_RELEASE).inputs["values"]["global"]["image"]["registry"]
    assert MIRROR_REGISTRY.fullmatch(mirror) and mirror.endswith(f"/{STACK}/{MIRROR_PREFIX}")


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(values: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node = values
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value

    return change


MUTATIONS = {
    "policy-exceptions-on": (KYVERNO_RELEASE, _set("features.policyExceptions.enabled", True),
                             "features.policyExceptions.enabled: received true, required false"),
    "exceptions-through-the-admission-override": (
        KYVERNO_RELEASE, _set("admissionController.featuresOverride", {"policyExceptions": {"enabled": True}}),
        'admissionController.featuresOverride: received {"policyExceptions": {"enabled": true}}, required not set'),
    "webhooks-fail-open": (KYVERNO_RELEASE, _set("features.forceFailurePolicyIgnore.enabled", True),
                           "features.forceFailurePolicyIgnore.enabled: received true, required false"),
    "one-admission-replica": (KYVERNO_RELEASE, _set("admissionController.replicas", 1),
                              "admissionController.replicas: received 1, required at least 3"),
    "kyverno-from-upstream": (KYVERNO_RELEASE, _set("admissionController.container.image.registry", "ghcr.io"),
                              'admissionController.container.image.registry: received "ghcr.io", required the '
                              "stack's mirror"),
    "a-tenant-filtered-out": (KYVERNO_RELEASE, _set("config.resourceFiltersIncludeNamespaces", ["team-a"]),
                              'config.resourceFiltersIncludeNamespaces: received ["team-a"], required not set'),
    "controller-service-webhook-on": (CONTROLLER_RELEASE, _set("enableServiceMutatorWebhook", True),
                                      "enableServiceMutatorWebhook: received true, required false"),
    "controller-from-upstream": (CONTROLLER_RELEASE,
                                 _set("image.repository", "public.ecr.aws/eks/aws-load-balancer-controller"),
                                 'image.repository: received "public.ecr.aws/eks/aws-load-balancer-controller", '
                                 "required the stack's mirror"),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_a_weakened_release_fails_the_gate_on_that_release(mutation: str) -> None:
    release, change, shown = MUTATIONS[mutation]
    inventory, loaded = synth_with_transform(STACK, values_change(release, change))
    report = gate_of(inventory, loaded)
    assert failed(report) == {("HS_SUPPLY_007", release)}
    result = hs_supply_007(report)[release]
    assert result.detail and result.detail.startswith(shown), result.detail
    assert result.resource == inventory.named(release, HELM_RELEASE).urn


def test_an_exception_waives_the_check_on_the_release_with_its_reason() -> None:
    """Exceptions name a release by its Pulumi name or by its address, like any resource."""
    inventory, loaded = synth_with_transform(STACK, values_change(
        KYVERNO_RELEASE, _set("admissionController.replicas", 2)))
    for name in (KYVERNO_RELEASE, "HelmRelease.kyverno.kyverno"):
        accepted = ExceptionSpec(check="HS_SUPPLY_007", resource=name, owner="platform-team",
                                 reason="two admission replicas while the cluster has two system nodes",
                                 expires=dt.date.today() + dt.timedelta(days=30))
        report = gate_of(inventory, loaded, accepted)
        assert report.passed, sorted(failed(report))
        result = hs_supply_007(report)[KYVERNO_RELEASE]
        assert result.status == "skipped" and result.exception and result.exception["owner"] == "platform-team"
        assert "admissionController.replicas: received 2" in (result.detail or "")
