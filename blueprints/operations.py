"""Operations: the audit trail and threat detection of the stack's account, and the monitoring of its models."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from .base import Name, Spec, duplicates
from .data import Purpose
from .network import LogRetentionDays

Email = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,63}$")]
HttpsEndpoint = Annotated[str, StringConstraints(pattern=r"^https://[A-Za-z0-9.-]+(:\d+)?(/[\w./~%?=&-]*)?$")]
Severity = Literal["critical", "warning"]


class AuditSpec(Spec):
    """A multi-region CloudTrail trail (log file validation, the stack's CMK, S3 data events of the buckets that
    hold training data and models, CloudWatch Logs) delivered to an object-locked audit bucket; GuardDuty with EKS
    audit-log and runtime monitoring and S3 protection; Security Hub with AWS's foundational standard."""

    data_events: list[Purpose] = [Purpose.training_data, Purpose.model_artifacts]
    """Buckets of these purposes have every object read and write recorded by the trail. Unset: training data
    and model artifacts (the gate requires both)."""

    trail_retention_days: int = Field(365, ge=365, le=3653)
    """Trail log files are write-once (object lock, COMPLIANCE mode) for this many days."""

    log_retention_days: LogRetentionDays = 365
    """The trail's CloudWatch log group keeps events this many days (one of CloudWatch's values of at least a
    year)."""

    detectors: Literal["create", "organization"] = "create"
    """`create`: the stack enables GuardDuty (with its EKS and S3 protections) and Security Hub in its account
    and region. `organization`: your organization's delegated administrator runs them (each is one per account
    and region); the stack creates neither, and the gate fails their checks unless excepted with a reason."""

    @field_validator("data_events")
    @classmethod
    def _unique(cls, v: list[Purpose]) -> list[Purpose]:
        dupes = duplicates([p.value for p in v])
        if dupes:
            raise ValueError(f"{dupes} listed more than once")
        return v



class AlertRoute(Spec):
    """Where alerts of some severities go: an SNS topic (encrypted with the stack's CMK) with these subscribers."""

    name: Name
    """The route's name (and its topic's)."""

    severities: list[Severity] = Field(["critical", "warning"], min_length=1)
    """Alert severities sent here."""

    email: list[Email] = []
    """Addresses subscribed to the topic (each confirms its subscription)."""

    https: list[HttpsEndpoint] = []
    """HTTPS endpoints subscribed to the topic (an incident tool's SNS integration URL)."""


class ModelMonitoringSpec(Spec):
    """Alert rules on what the serving layer exports (metric names in docs/monitoring.md) and on GPU metrics."""

    latency_p99_seconds: float = Field(2.0, gt=0, le=600)
    """Alert when the 99th percentile of inference latency over 5 minutes exceeds this."""

    error_ratio: float = Field(0.05, gt=0, lt=1)
    """Alert when this share of requests fails (5xx) over 5 minutes."""

    idle_gpu_utilisation: float = Field(0.5, gt=0, lt=1)
    """Alert when GPUs are busier than this while the endpoint serves almost nothing: work nobody asked for
    (mining, a planted job, a runaway training)."""

    confidence_drop: float = Field(0.2, gt=0, lt=1)
    """Alert when the mean confidence of the last hour falls by this share below that of the last day."""

    output_shift: float = Field(0.25, gt=0, lt=1)
    """Alert when any output class's share of the last hour differs from its share of the last day by more than
    this (a shift in the output distribution: drift, poisoning or abuse)."""


class MonitoringSpec(Spec):
    """PrometheusRules and a Grafana dashboard for the kube-prometheus-stack the platform runs, and alert routing."""

    namespace: Name = "monitoring"
    """The namespace of kube-prometheus-stack (its Prometheus, Alertmanager and Grafana)."""

    alertmanager_service_account: Name = "kube-prometheus-stack-alertmanager"
    """Alertmanager's service account: it gets a Pod Identity role that may publish to the alert topics only."""

    models: ModelMonitoringSpec = ModelMonitoringSpec()
    """Thresholds of the model and service alerts."""

    routes: list[AlertRoute] = []
    """Alert routes. Unset: alerts stay in Alertmanager (no topic is created)."""

    @field_validator("routes")
    @classmethod
    def _unique_routes(cls, v: list[AlertRoute]) -> list[AlertRoute]:
        dupes = duplicates([r.name for r in v])
        if dupes:
            raise ValueError(f"duplicate route names {dupes}; allowed: each name once")
        return v
