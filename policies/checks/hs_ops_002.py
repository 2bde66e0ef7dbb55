"""HS_OPS_002: GuardDuty watches EKS audit logs, EKS runtime and S3 data events (evaluated by the gate across the
plan: a detector is one per account and region, and a stack that has none leaves its cluster and buckets unwatched,
an absence checkov's graph cannot see)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from hardstack.policies.checks.support import value, watched_assets
from hardstack.policies.meta import CheckMeta

if TYPE_CHECKING:
    from hardstack.policies.native import PlanResource

META = CheckMeta(
    id="HS_OPS_002",
    title="GuardDuty watches EKS audit logs, EKS runtime and S3 data events",
    severity="HIGH",
    area="operations",
    rationale="A stolen token used against the Kubernetes API, a cryptominer or reverse shell in a GPU pod, and a "
    "training set read from an unusual place are what GuardDuty's EKS audit log, runtime and S3 protections detect; "
    "a detector without them, or no detector at all, leaves the cluster and the buckets of training data and models "
    "unwatched. Judged on every detector (its protections) and, where the stack has no detector that has them all, "
    "on every EKS cluster and every bucket of training data or models (which then nothing watches): a stack whose "
    "organization runs GuardDuty for it excepts these with a reason.",
    remediation="Enable a GuardDuty detector with the EKS_AUDIT_LOGS, RUNTIME_MONITORING (with EKS_ADDON_MANAGEMENT) "
    "and S3_DATA_EVENTS features (hardstack's ThreatDetection, `audit.detectors: create`); where the organization's "
    "delegated administrator enables them for the account instead, except this check with a reason naming it.",
    owasp_llm=("LLM03: Supply Chain", "LLM04: Data and Model Poisoning"),
    mitre_atlas=("AML.T0012: Valid Accounts", "AML.T0025: Exfiltration via Cyber Means",
                 "AML.T0020: Poison Training Data"),
    resources=("aws_guardduty_detector", "aws_eks_cluster", "aws_s3_bucket"),
)

REQUIRED: dict[str, tuple[str, ...]] = {
    "EKS_AUDIT_LOGS": (),
    "RUNTIME_MONITORING": ("EKS_ADDON_MANAGEMENT",),
    "S3_DATA_EVENTS": (),
}
"""Features a detector must have enabled, with the additional configurations each must have enabled (the runtime
agent managed on every cluster as an EKS add-on: without it no cluster runs the agent unless installed by hand)."""
SAME_AS = {"EKS_RUNTIME_MONITORING": "RUNTIME_MONITORING"}
"""The earlier, EKS-only runtime monitoring feature counts as runtime monitoring (AWS allows one of the two)."""
LEGACY = {("datasources", "s3_logs", "enable"): "S3_DATA_EVENTS",
          ("datasources", "kubernetes", "audit_logs", "enable"): "EKS_AUDIT_LOGS"}
"""The detector's deprecated `datasources` switches, where no feature resource says otherwise."""


def evaluate_plan(resources: dict[str, PlanResource]) -> Iterator[tuple[str, str, str | None]]:
    watching = []
    for address, detector in sorted((a, r) for a, r in resources.items() if r.type == "aws_guardduty_detector"):
        missing = _missing(detector, resources)
        watching += [] if missing else [address]
        yield address, "failed" if missing else "passed", f"not enabled: {', '.join(missing)}" if missing else None
    for address in watched_assets(resources):
        if watching:
            yield address, "passed", None
        else:
            yield address, "failed", ("no GuardDuty detector in the stack watches EKS audit logs, EKS runtime and S3 "
                                      "data events (one per account and region: except it where the organization "
                                      "runs it)")


def _missing(detector: PlanResource, resources: dict[str, PlanResource]) -> list[str]:
    """The required protections the detector lacks (all of them when it is disabled)."""
    if detector.get("enable") is False:
        return ["the detector itself"]
    features: dict[str, tuple[bool, dict[str, bool]]] = {}
    for path, name in LEGACY.items():
        if value(detector.values, *path) is True:
            features[name] = (True, {})
    for feature in resources.values():
        if feature.type == "aws_guardduty_detector_feature" and detector.address in feature.references("detector_id"):
            name = SAME_AS.get(feature.get("name"), feature.get("name"))
            extra = feature.get("additional_configuration") or []
            features[name] = (feature.get("status") == "ENABLED",
                              {c.get("name"): c.get("status") == "ENABLED" for c in extra})
    missing = []
    for name, extra in REQUIRED.items():
        enabled, configs = features.get(name, (False, {}))
        if not enabled:
            missing.append(name)
        missing += [f"{name} ({c})" for c in extra if enabled and not configs.get(c)]
    return missing


# --- fixtures ------------------------------------------------------------------------------------------------------


Feature = tuple[str | None, tuple[tuple[str, str], ...]]
"""A feature's status (None: no feature resource) and its additional configurations' (name, status)."""


def _detector(features: dict[str, Feature] | None = None, enable: bool = True, **detector: Any) -> None:
    """A detector with every required protection enabled, but for `features` (name → status, configurations)."""
    import pulumi_aws as aws

    made = aws.guardduty.Detector("detector", enable=enable, finding_publishing_frequency="FIFTEEN_MINUTES",
                                  **detector)
    wanted: dict[str, Feature] = {"EKS_AUDIT_LOGS": ("ENABLED", ()), "S3_DATA_EVENTS": ("ENABLED", ()),
                                  "RUNTIME_MONITORING": ("ENABLED", (("EKS_ADDON_MANAGEMENT", "ENABLED"),))}
    for name, (status, extra) in {**wanted, **(features or {})}.items():
        if status is None:
            continue
        aws.guardduty.DetectorFeature(
            f"detector-{name.lower()}", detector_id=made.id, name=name, status=status,
            additional_configurations=[{"name": n, "status": s} for n, s in extra] or None)


def _cluster() -> None:
    import pulumi_aws as aws

    aws.eks.Cluster("cluster", role_arn="arn:aws:iam::123456789012:role/cluster",
                    vpc_config={"subnet_ids": ["subnet-0a1b2c3d4e5f6a7b8"], "endpoint_public_access": False})


def passing_cluster_watched_by_a_detector_with_every_protection() -> None:
    _cluster()
    _detector()


def passing_deprecated_datasources_with_runtime_monitoring() -> None:
    _detector({"EKS_AUDIT_LOGS": (None, ()), "S3_DATA_EVENTS": (None, ())},
              datasources={"s3_logs": {"enable": True}, "kubernetes": {"audit_logs": {"enable": True}}})


def failing_cluster_without_detector() -> None:
    _cluster()


def failing_runtime_monitoring_disabled() -> None:
    _detector({"RUNTIME_MONITORING": ("DISABLED", (("EKS_ADDON_MANAGEMENT", "ENABLED"),))})


def failing_runtime_agent_not_managed() -> None:
    _detector({"RUNTIME_MONITORING": ("ENABLED", (("EKS_ADDON_MANAGEMENT", "DISABLED"),))})


def failing_s3_protection_off() -> None:
    _detector({"S3_DATA_EVENTS": ("DISABLED", ())})


def failing_detector_disabled() -> None:
    _detector(enable=False)
