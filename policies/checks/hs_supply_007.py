"""HS_SUPPLY_007: a pinned, reviewed Helm chart runs with the values its review depends on (evaluated by the gate on
each Helm release's values)."""

from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_SUPPLY_007",
    title="Pinned Helm charts run with the values their review depends on",
    severity="HIGH",
    area="supply chain",
    rationale="The gate cannot render a chart, so a release of a reviewed chart stands on its review; but what the "
    "chart renders depends on its values. The same pinned Kyverno with PolicyExceptions switched on, its webhooks "
    "forced to fail open, one admission replica or its images pulled from another registry is not the chart that "
    "was reviewed, and would admit what the image policies refuse.",
    remediation="Install the chart with `hardstack.modules.charts.release`, which adds the reviewed values "
    "(`HelmChart.hardened`) to the component's; remove the transform or override that changes the value the finding "
    "names.",
    owasp_llm=("LLM03: Supply Chain",),
    mitre_atlas=("AML.T0010: ML Supply Chain Compromise",),
    resources=("kubernetes:helm.sh/v3:Release",),
)


def evaluate_releases(releases):  # type: ignore[no-untyped-def]
    from hardstack.modules.charts import REVIEWED, deviations

    for address, release in sorted(releases.items()):
        chart = REVIEWED.get(str(release.get("chart")))
        if chart is None:  # the bridge refuses a release of any other chart: not verified
            continue
        found = deviations(chart, release.get("values") or {})
        yield address, "failed" if found else "passed", "; ".join(map(str, found)) or None


MIRROR = "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/platform"


def _kyverno(change=None) -> None:  # type: ignore[no-untyped-def]
    """A Kyverno release as `charts.release` builds it, then changed as a transform would."""
    import pulumi_kubernetes as k8s

    from hardstack.modules.charts import KYVERNO, reviewed_values

    values = reviewed_values(KYVERNO, {}, MIRROR)
    if change:
        change(values)
    k8s.helm.v3.Release("kyverno", name="kyverno", chart=KYVERNO.name, version=KYVERNO.version,
                        repository_opts={"repo": KYVERNO.repository}, namespace=KYVERNO.namespace, values=values)


def passing_reviewed_values() -> None:
    _kyverno()


def failing_policy_exceptions_on() -> None:
    _kyverno(lambda v: v["features"]["policyExceptions"].update(enabled=True, namespace="*"))


def failing_webhooks_forced_to_fail_open() -> None:
    _kyverno(lambda v: v["features"]["forceFailurePolicyIgnore"].update(enabled=True))


def failing_images_from_another_registry() -> None:
    _kyverno(lambda v: v["admissionController"]["container"]["image"].update(registry="ghcr.io"))


def failing_one_admission_replica() -> None:
    _kyverno(lambda v: v["admissionController"].update(replicas=1))


def failing_a_sidecar_from_docker_hub() -> None:
    _kyverno(lambda v: v["admissionController"].update(extraContainers=[{"name": "debug", "image": "busybox"}]))
