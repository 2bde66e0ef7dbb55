"""The one home for the third-party Helm charts hardstack installs, each pinned to the version that was reviewed, and
for the values its review depends on.

A chart installs whatever its templates render (controllers, webhooks, cluster-wide RBAC), out of the gate's sight:
it is installed only at the exact version and from the exact https repository recorded here, its images come from
the stack's own registry (mirrored by the registry component from `platform_images`), and the gate accepts a Helm
release only when it matches one of these pins (policies/bridge.py); any other release leaves the stack not
verified.

What the chart renders also depends on its values: the same pinned chart with PolicyExceptions switched on, webhooks
forced to fail open or images from another registry is not the chart that was reviewed. So each chart declares
`hardened`, the values its review depends on (dotted value path → the value, or a `Requirement` where the review
bounds a value rather than fixing it); `release` builds a release's values from them and the caller's, and the gate
fails a release whose values deviate (HS_SUPPLY_007)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

import pulumi

if TYPE_CHECKING:  # the gate reads the pins without loading the Kubernetes SDK
    import pulumi_kubernetes as k8s


class _NotSet:
    def __repr__(self) -> str:
        return "(not set)"


NOT_SET: Any = _NotSet()
"""What a value path holds when the values leave it out (the chart's own default then applies)."""

MIRROR_PREFIX = "platform"
"""Mirrors of the platform charts' images live under `<stack>/platform/` in the stack's registry."""

_SEGMENT = r"[a-z0-9]+(?:[._-][a-z0-9]+)*"
MIRROR_REGISTRY = re.compile(
    rf"[0-9]{{12}}\.dkr\.ecr(?:-fips)?\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/{_SEGMENT}/{MIRROR_PREFIX}")
"""The stack's mirror as the review knows it, without the account, region or stack: a private ECR registry's
`<stack>/platform`. No upstream registry (ghcr.io, public.ecr.aws, docker.io, registry.k8s.io) and no pull-through
cache (`<registry>/<upstream prefix>/...`) has this form."""
MIRROR_IMAGE = re.compile(MIRROR_REGISTRY.pattern + "/")
"""The start of an image reference of the stack's mirror."""
MIRROR_FORM = f"<account>.dkr.ecr.<region>.amazonaws.com/<stack>/{MIRROR_PREFIX}"

EKS_CLUSTER_NAME = re.compile(r"[0-9A-Za-z][A-Za-z0-9_-]{0,99}")
"""A name EKS accepts for a cluster; nothing a chart would expand as a template (`{{ ... }}`)."""


@dataclass(frozen=True)
class Requirement:
    """What a review requires of a value it does not fix: a bound, the stack's mirror, or the chart's own default."""

    requires: str  # what a value must be, as a finding names it
    test: Callable[[Any], bool]  # whether a value (NOT_SET when left out) meets it
    fill: Callable[[Any], Any] | None = None  # the value `release` sets when the caller sets none, from the mirror


def exactly(value: Any) -> Requirement:
    """The reviewed value, compared as JSON: `true` is not `1`, `"false"` is not `false`."""
    shown = _shown(value)
    return Requirement(shown, lambda v: v is not NOT_SET and _shown(v) == shown, lambda _: value)


def at_least(minimum: int) -> Requirement:
    """An integer of at least `minimum` (set to `minimum` when the caller sets none)."""
    return Requirement(f"at least {minimum}",
                       lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= minimum, lambda _: minimum)


def in_mirror(path: str = "") -> Requirement:
    """The stack's mirror registry (or, with `path`, the repository of that image in it), set from the mirror the
    release is given."""
    pattern = re.compile(MIRROR_REGISTRY.pattern + (f"/{re.escape(path)}" if path else ""))
    return Requirement(f"the stack's mirror {MIRROR_FORM}" + (f"/{path}" if path else ""),
                       lambda v: isinstance(v, str) and bool(pattern.fullmatch(v)),
                       lambda mirror: pulumi.Output.concat(mirror, "/", path) if path else mirror)


def matching(pattern: re.Pattern[str], requires: str) -> Requirement:
    """A string the caller sets (a stack's own value), of the given form."""
    return Requirement(requires, lambda v: isinstance(v, str) and bool(pattern.fullmatch(v)))


CHART_DEFAULT = Requirement("not set: the chart's reviewed default", lambda v: v is NOT_SET)
"""A value the review read at the chart's own default; setting it at all changes what was reviewed."""


@dataclass(frozen=True)
class Deviation:
    """A value of a release that is not the one its chart's review depends on."""

    path: str
    received: Any
    requires: str

    def __str__(self) -> str:
        return f"{self.path}: received {_shown(self.received)}, required {self.requires}"


@dataclass(frozen=True)
class HelmChart:
    """A Helm chart pinned to one version of one https repository, and the values its review depends on."""

    name: str
    repository: str  # https URL of the chart repository
    version: str  # the chart's version (not the application's)
    app_version: str  # the application version the chart runs; the tag of its images
    namespace: str
    images: tuple[str, ...]  # upstream repository paths of every image the chart runs at this version
    review: str  # what the chart runs and what was reviewed of it
    upstream_registry: str = ""  # where `images` are copied from into the stack's mirror
    hardened: Mapping[str, Any] = field(default_factory=dict, hash=False, repr=False)
    """Dotted value path → the reviewed value, or a Requirement. Value keys never hold a dot."""

    def __post_init__(self) -> None:
        if not self.repository.startswith("https://"):
            raise ValueError(f"chart {self.name}: repository {self.repository!r} is not https")
        object.__setattr__(self, "hardened", MappingProxyType(dict(self.hardened)))  # read-only, like the pins

    def requirements(self) -> dict[str, Requirement]:
        return {path: r if isinstance(r, Requirement) else exactly(r) for path, r in self.hardened.items()}


def lookup(values: Any, path: str) -> Any:
    """The value at a dotted path, NOT_SET when the values leave it out (a computed value is returned as is)."""
    node = values
    for key in path.split("."):
        if isinstance(node, pulumi.Output):
            return node
        if not isinstance(node, Mapping) or key not in node:
            return NOT_SET
        node = node[key]
    return node


def _put(values: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = values
    for key in parents:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ValueError(f"value {path}: {key} is not a mapping")
    node[leaf] = value


def _copy(node: Any) -> Any:
    """Mappings and lists copied, everything else (computed values too) shared."""
    if isinstance(node, Mapping):
        return {k: _copy(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_copy(v) for v in node]
    return node


def _shown(value: Any) -> str:
    return "(not set)" if value is NOT_SET else json.dumps(value, sort_keys=True, default=str)


def reviewed_values(chart: HelmChart, values: Mapping[str, Any], mirror_registry: pulumi.Input[str]) -> dict[str, Any]:
    """The caller's values completed with those the chart's review depends on: the reviewed value where the review
    fixes one (the caller may restate it, not change it), the stack's mirror for every image, a bound's minimum
    where the caller sets none. A value that contradicts the review raises; a computed one is left to the gate."""
    out = _copy(values)
    for path, r in chart.requirements().items():
        given = lookup(out, path)
        if given is NOT_SET and r.fill is not None:
            _put(out, path, r.fill(mirror_registry))
        elif not isinstance(given, pulumi.Output) and not r.test(given):
            raise ValueError(f"chart {chart.name}: {Deviation(path, given, r.requires)}")
    return out


def deviations(chart: HelmChart, values: Mapping[str, Any]) -> list[Deviation]:
    """Every value of a release of `chart` that is not what its review depends on: the hardened values, and every
    image anywhere in the values (an extra container, a sidecar) that does not come from the stack's mirror."""
    found = []
    for path, r in chart.requirements().items():
        given = lookup(values, path)
        if not r.test(given):
            found.append(Deviation(path, given, r.requires))
    for path, reference in image_references(values):
        if path in chart.hardened:
            continue
        if path.endswith(".registry") and not MIRROR_REGISTRY.fullmatch(reference):
            found.append(Deviation(path, reference, f"the stack's mirror {MIRROR_FORM}"))
        elif not path.endswith(".registry") and not MIRROR_IMAGE.match(reference):
            found.append(Deviation(path, reference, f"an image of the stack's mirror {MIRROR_FORM}/..."))
    return found


def image_references(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every value naming where an image comes from: an `image` given as one reference, the `registry` of an `image`
    mapping, and its `repository` when that starts with a registry host (a bare one runs from the registry the
    chart puts before it: Kyverno's global registry, itself hardened)."""
    items = node.items() if isinstance(node, Mapping) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        here = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else str(key)
        if key == "image" and isinstance(value, str):
            yield here, value
        elif key == "image" and isinstance(value, Mapping):
            if isinstance(value.get("registry"), str):
                yield f"{here}.registry", value["registry"]
            if isinstance(value.get("repository"), str) and _host(value["repository"]):
                yield f"{here}.repository", value["repository"]
        else:
            yield from image_references(value, here)


def _host(reference: str) -> bool:
    """Whether an image reference starts with a registry host (Docker's rule: a first component with a dot or a
    port, or localhost); one without runs from docker.io."""
    first, slash, _ = reference.partition("/")
    return bool(slash) and ("." in first or ":" in first or first == "localhost")


def _kyverno_images(images: Mapping[str, str], tag: str) -> dict[str, Any]:
    """Each image value (registry, repository, tag) of the Kyverno chart, run from the stack's mirror: the chart
    composes `<registry>/<repository>:<tag>`, an image's own registry overriding the global one."""
    return {f"{at}.{key}": value for at, repository in images.items()
            for key, value in (("registry", in_mirror()), ("repository", repository), ("tag", tag))}


KYVERNO_APP_VERSION = "v1.19.0"
KYVERNO_IMAGE_VALUES = {
    "admissionController.container.image": "kyverno/kyverno",  # admission controller
    "admissionController.initContainer.image": "kyverno/kyvernopre",  # its init container
    "backgroundController.image": "kyverno/background-controller",
    "cleanupController.image": "kyverno/cleanup-controller",
    "reportsController.image": "kyverno/reports-controller",
    "crds.migration.image": "kyverno/kyverno-cli",  # post-upgrade CRD migration hook
    "webhooksCleanup.image": "kyverno/readiness-checker",  # pre-delete hook removing the webhooks
    "test.image": "kyverno/readiness-checker",  # `helm test`
}
"""Where the Kyverno chart reads each image it runs (every `image` of its values.yaml at the pinned version)."""

KYVERNO = HelmChart(
    name="kyverno",
    repository="https://kyverno.github.io/kyverno/",
    version="3.9.0",
    app_version=KYVERNO_APP_VERSION,
    namespace="kyverno",
    images=tuple(dict.fromkeys(KYVERNO_IMAGE_VALUES.values())),
    review=(
        "Kyverno v1.19.0 (admission, background, cleanup and reports controllers, its CRDs and the hooks that "
        "migrate CRDs on upgrade and remove its webhooks on delete); reviewed: Chart.yaml, values.yaml and the "
        "image, webhook, RBAC and hook templates at tag v1.19.0, run with fail-closed webhooks, PolicyExceptions "
        "disabled and every image from the stack's mirror."
    ),
    upstream_registry="ghcr.io",  # reg.kyverno.io, the chart's default, serves the same ghcr.io repositories
    hardened={
        # nobody with access to the cluster can exempt a workload, not even through the admission controller's
        # own feature overrides or extra arguments (`--enablePolicyException`, `--forceFailurePolicyIgnore`)
        "features.policyExceptions.enabled": False,
        "admissionController.featuresOverride": CHART_DEFAULT,
        "admissionController.container.extraArgs": CHART_DEFAULT,
        # webhooks fail closed: the policies' failurePolicy Fail is not overridden to Ignore
        "features.forceFailurePolicyIgnore.enabled": False,
        # at least three admission controllers, two of which stay up through a drain; no autoscaler scaling to one
        "admissionController.replicas": at_least(3),
        "admissionController.autoscaling.enabled": False,
        "admissionController.podDisruptionBudget.enabled": True,
        "admissionController.podDisruptionBudget.minAvailable": at_least(2),
        # the policies see every namespace but kube-system and kyverno, and every user but the nodes: no webhook
        # selector, match condition, resource filter or excluded user or role skips another
        "config.webhooks": {"namespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]}]}},
        "config.matchConditions": CHART_DEFAULT,
        "config.excludeGroups": CHART_DEFAULT,  # the nodes only
        "config.excludeUsernames": CHART_DEFAULT,
        "config.excludeRoles": CHART_DEFAULT,
        "config.excludeClusterRoles": CHART_DEFAULT,
        "config.resourceFilters": CHART_DEFAULT,
        "config.resourceFiltersInclude": CHART_DEFAULT,
        "config.resourceFiltersIncludeNamespaces": CHART_DEFAULT,
        "config.resourceFiltersExcludeNamespaces": ["kube-public", "kube-node-lease"],
        # signatures are read over TLS, and trust rests on the stack's key: no Sigstore trust root (TUF) fetched
        # for a public transparency log
        "features.registryClient.allowInsecure": False,
        "features.tuf.enabled": False,
        # every image from the stack's mirror, at the reviewed version
        "global.image.registry": in_mirror(),
        **_kyverno_images(KYVERNO_IMAGE_VALUES, KYVERNO_APP_VERSION),
    },
)

LOAD_BALANCER_CONTROLLER_APP_VERSION = "v2.17.1"
CONTROLLER_FEATURE_GATES = {"EnableServiceController": "false", "ALBGatewayAPI": "false", "NLBGatewayAPI": "false"}
"""The controller reconciles TargetGroupBindings only: no load balancers for Services of type LoadBalancer, no
Gateway API."""

LOAD_BALANCER_CONTROLLER = HelmChart(
    name="aws-load-balancer-controller",
    repository="https://aws.github.io/eks-charts",
    version="1.17.1",
    app_version=LOAD_BALANCER_CONTROLLER_APP_VERSION,
    namespace="kube-system",
    images=("eks/aws-load-balancer-controller",),
    review=(
        "AWS Load Balancer Controller v2.17.1 (one Deployment reconciling Ingresses and TargetGroupBindings into "
        "ALBs, its webhooks and CRDs); reviewed: Chart.yaml, values.yaml and the deployment, RBAC and webhook "
        "templates at tag v2.17.1, run with its image from the stack's mirror and AWS access through Pod Identity."
    ),
    upstream_registry="public.ecr.aws",
    hardened={
        # TargetGroupBindings only: no IngressClass names the controller, the class annotation is ignored, no
        # Services of type LoadBalancer, no Gateway API, and none of their webhooks
        "createIngressClassResource": False,
        "ingressClassParams.create": False,
        "ingressClassConfig.default": False,
        "disableIngressClassAnnotation": True,
        "disableIngressGroupNameAnnotation": True,
        "webhookConfig.disableIngressValidation": True,
        "enableServiceMutatorWebhook": False,
        "controllerConfig.featureGates": CONTROLLER_FEATURE_GATES,
        # nothing it would manage for Ingresses; no read access to every Secret of the cluster
        "enableShield": False,
        "enableWaf": False,
        "enableWafv2": False,
        "enableBackendSecurityGroup": False,
        "clusterSecretsPermissions.allowAllSecrets": False,
        # a standby beside the leader, on the pod network, unprivileged
        "replicaCount": at_least(2),
        "hostNetwork": False,
        "podSecurityContext.runAsNonRoot": True,
        "podSecurityContext.seccompProfile.type": "RuntimeDefault",
        "securityContext.readOnlyRootFilesystem": True,
        "securityContext.runAsNonRoot": True,
        "securityContext.allowPrivilegeEscalation": False,
        "securityContext.capabilities.drop": ["ALL"],
        # the stack's own cluster (the chart expands the name as a template), its image from the stack's mirror
        "clusterName": matching(EKS_CLUSTER_NAME, "an EKS cluster name (letters, digits, - and _; no template)"),
        "image.repository": in_mirror("eks/aws-load-balancer-controller"),
        "image.tag": LOAD_BALANCER_CONTROLLER_APP_VERSION,
    },
)

REVIEWED: dict[str, HelmChart] = {c.name: c for c in (KYVERNO, LOAD_BALANCER_CONTROLLER)}
"""Every chart hardstack may install, by chart name; the gate accepts releases of these at their pins only."""


def platform_images(load_balancer_controller: bool) -> tuple[str, ...]:
    """Upstream repository paths of the images the stack's platform charts run: what the registry mirrors.
    Kyverno always runs where there is a cluster; the load balancer controller only when endpoints are exposed."""
    charts = [KYVERNO, *([LOAD_BALANCER_CONTROLLER] if load_balancer_controller else [])]
    return tuple(image for chart in charts for image in chart.images)


RELEASE_TIMEOUT_SECONDS = 600
MAX_HISTORY = 5
"""Release revisions Helm keeps (each a Secret with the full manifest): enough to roll back, bounded."""


def release(
    name: str,
    chart: HelmChart,
    *,
    mirror_registry: pulumi.Input[str],
    values: Mapping[str, Any],
    provider: pulumi.ProviderResource,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
) -> k8s.helm.v3.Release:
    """Install `chart` at its pinned version from its pinned repository into its namespace (which the caller
    creates, so the release never creates or owns it), with `values` completed by those its review depends on and
    its images from `mirror_registry` (see `reviewed_values`). Atomic: a failed install or upgrade rolls back and
    cleans up what it created, rather than leaving a half-installed admission controller behind."""
    import pulumi_kubernetes as k8s

    if REVIEWED.get(chart.name) is not chart:
        raise ValueError(f"chart {chart.name} {chart.version} is not one of the reviewed charts {sorted(REVIEWED)}")
    return k8s.helm.v3.Release(
        name,
        name=chart.name,
        chart=chart.name,
        version=chart.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repository),
        namespace=chart.namespace,
        create_namespace=False,
        values=reviewed_values(chart, values, mirror_registry),
        atomic=True,
        cleanup_on_fail=True,
        max_history=MAX_HISTORY,
        timeout=RELEASE_TIMEOUT_SECONDS,
        devel=False,
        dependency_update=False,
        disable_crd_hooks=False,
        disable_webhooks=False,
        skip_crds=False,
        lint=True,
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=list(depends_on)),
    )
