"""HS_SUPPLY_004: workloads reference their images by digest (evaluated by the gate)."""

from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_SUPPLY_004",
    title="Workloads reference images by digest, not by tag alone",
    severity="MEDIUM",
    area="supply chain",
    rationale="A tag is a movable name: whoever can push to the repository (or the upstream a cache mirrors) can "
    "change what `:latest` or `:v1` runs without any change to the stack, so what was reviewed, scanned and signed "
    "is not necessarily what runs.",
    remediation="Reference every image as `<repository>@sha256:<digest>` (hardstack's blueprints accept only such "
    "ImageRefs).",
    owasp_llm=("LLM03: Supply Chain",),
    mitre_atlas=("AML.T0010: ML Supply Chain Compromise",),
    resources=("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"),
)


def evaluate(objects, version):  # type: ignore[no-untyped-def]
    from hardstack.policies.image_admission import images, pod_specs

    for address, manifest in sorted(objects.items()):
        pod_spec = pod_specs(manifest)
        if pod_spec is None:
            continue
        by_tag = sorted({image for image in images(pod_spec) if "@sha256:" not in image})
        yield address, "failed" if by_tag else "passed", f"images by tag: {by_tag}" if by_tag else None


DIGEST = "@sha256:" + "ab" * 32


def _deployment(image: str, init_image: str | None = None) -> None:
    import pulumi_kubernetes as k8s

    pod = {"containers": [{"name": "server", "image": image}]}
    if init_image:
        pod["initContainers"] = [{"name": "fetch", "image": init_image}]
    k8s.apps.v1.Deployment("server", metadata={"name": "server", "namespace": "team"}, spec={
        "selector": {"matchLabels": {"app": "server"}},
        "template": {"metadata": {"labels": {"app": "server"}}, "spec": pod}})


def passing_digests() -> None:
    _deployment(f"registry.example.com/team/server{DIGEST}", f"registry.example.com/team/fetch{DIGEST}")


def passing_tag_and_digest() -> None:
    _deployment(f"registry.example.com/team/server:1.2{DIGEST}")


def failing_tag_only() -> None:
    _deployment("registry.example.com/team/server:1.2")


def failing_init_container_by_tag() -> None:
    _deployment(f"registry.example.com/team/server{DIGEST}", "registry.example.com/team/fetch:latest")


def failing_cron_job_by_tag() -> None:
    import pulumi_kubernetes as k8s

    k8s.batch.v1.CronJob("nightly", metadata={"name": "nightly", "namespace": "team"}, spec={
        "schedule": "0 3 * * *",
        "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "eval", "image": "registry.example.com/team/eval:v3"}]}}}}})
