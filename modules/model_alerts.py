"""What the serving layer must export, the PromQL that watches it, and the alert rules built from a blueprint's
thresholds (`ModelMonitoringSpec`).

The serving layer (the inference server in a tenant's namespace, behind an endpoint) exports four metrics, named in
`SERVING_METRICS`; Prometheus adds the `namespace` and `pod` of each scraped pod. GPU utilisation comes from NVIDIA's
DCGM exporter. Every expression here is a function of a `Scope` (which namespace, which models), so that the alert
rules (one tenant's namespace) and the Grafana dashboard (the tenants and models chosen in it) compute the very same
quantity; one home for each formula.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

from hardstack.blueprints.operations import ModelMonitoringSpec

from .runbook_sections import QUARANTINE_A_TENANT, ROLL_BACK_A_MODEL, TRACE_A_POISONED_DATASET

# --- what the serving layer exports ---------------------------------------------------------------------------------

REQUESTS = "hardstack_inference_requests_total"
LATENCY = "hardstack_inference_request_duration_seconds"
CONFIDENCE = "hardstack_inference_confidence"
OUTPUTS = "hardstack_inference_outputs_total"
GPU_UTILISATION = "DCGM_FI_DEV_GPU_UTIL"
"""NVIDIA DCGM exporter's gauge: the share of the last sample period a kernel ran on the GPU, in percent (0-100)."""


@dataclass(frozen=True)
class Metric:
    name: str
    type: Literal["counter", "histogram", "gauge"]
    labels: tuple[str, ...]
    meaning: str


SERVING_METRICS = (
    Metric(REQUESTS, "counter", ("model", "code"),
           "Inference requests answered, by served model and HTTP status code (`200`, `429`, `503`...)."),
    Metric(LATENCY, "histogram", ("model",),
           "Seconds from a request's arrival to the last byte of its answer (streamed answers included); buckets "
           "should bracket the latency threshold."),
    Metric(CONFIDENCE, "histogram", ("model",),
           "The confidence of each answer, between 0 and 1 (a classifier's top-class probability; for a generative "
           "model, the mean token probability, exp(mean log-probability)); buckets 0.1 apart will do."),
    Metric(OUTPUTS, "counter", ("model", "class"),
           "Answers by output class: a classifier's label, or for a generative model a small fixed set of "
           "categories (e.g. `answer`, `refusal`, `tool-call`, `filtered`); never free text (bounded cardinality)."),
)
"""The metrics the serving pods of a tenant must export (Prometheus adds `namespace` and `pod` when it scrapes them)."""

GPU_POD_LABELS = {"namespace": "exported_namespace", "pod": "exported_pod"}
"""The DCGM exporter labels each GPU's series with the namespace and pod using it. When Prometheus scrapes the
exporter through a ServiceMonitor without `honorLabels` (the dcgm-exporter chart's default), those collide with the
exporter's own target labels and are kept as `exported_namespace` and `exported_pod`; with `honorLabels: true` they
stay `namespace` and `pod`. The expressions read either. (DCGM reports no DCGM_FI_DEV_GPU_UTIL for MIG-enabled
GPUs: the GPU alert does not watch MIG-partitioned pools.)"""

RULE_SELECTOR_LABELS = {"release": "kube-prometheus-stack"}
"""The labels kube-prometheus-stack's Prometheus selects PrometheusRules by: with the chart's defaults
(`prometheus.prometheusSpec.ruleSelectorNilUsesHelmValues: true`, no `ruleSelector`) it loads the rules labelled
`release: <its Helm release>`, in every namespace. hardstack assumes the release is called `kube-prometheus-stack`,
as the default Alertmanager service account (`MonitoringSpec.alertmanager_service_account`) does."""

# --- windows and guards ---------------------------------------------------------------------------------------------

SHORT_WINDOW = "5m"
"""Latency and error ratios are computed over this window (the thresholds' documented window)."""
IDLE_WINDOW = "10m"
"""A GPU pod "serves nothing" when it answered fewer than one request in this window."""
RECENT_WINDOW = "1h"
BASELINE_WINDOW = "1d"
"""Confidence and output distribution of the last hour are compared with those of the last day."""
MIN_ANSWERS_PER_HOUR = 100
"""Below this many answers in the last hour a model's confidence and output mix are not compared: a handful of
answers is no distribution, and would page on noise."""
LATENCY_QUANTILE = 0.99
SERVER_ERRORS = 'code=~"5.."'


def number(value: float) -> str:
    """A threshold as PromQL writes it: the spec's value, unrounded."""
    return repr(float(value))


def percent(share: float) -> float:
    """A share (the spec's 0-1) as DCGM's percent, without binary noise (0.3 → 30.0, not 30.000000000000004)."""
    return round(share * 100, 9)


@dataclass(frozen=True)
class Scope:
    """Which series an expression reads: a namespace (matched with `op`: `=` for one tenant, `=~` for a dashboard
    variable) and optionally a model regex."""

    namespace: str
    op: Literal["=", "=~"] = "="
    model: str | None = None

    def serving(self, *extra: str) -> str:
        matchers = [f'namespace{self.op}"{self.namespace}"', *extra]
        if self.model is not None:
            matchers.append(f'model=~"{self.model}"')
        return "{" + ", ".join(matchers) + "}"

    def gpu(self, label: str) -> str:
        return f'{{{label}{self.op}"{self.namespace}"}}'


def request_rate(s: Scope, by: Sequence[str] = ("namespace", "model")) -> str:
    return f"sum by ({', '.join(by)}) (rate({REQUESTS}{s.serving()}[{SHORT_WINDOW}]))"


def latency_p99(s: Scope) -> str:
    """The 99th percentile of request latency over 5 minutes, per model."""
    return (f"histogram_quantile({LATENCY_QUANTILE}, sum by (namespace, model, le) "
            f"(rate({LATENCY}_bucket{s.serving()}[{SHORT_WINDOW}])))")


def error_ratio(s: Scope) -> str:
    """The share of requests answered with a 5xx status over 5 minutes, per model."""
    return (f"sum by (namespace, model) (rate({REQUESTS}{s.serving(SERVER_ERRORS)}[{SHORT_WINDOW}]))"
            f" / sum by (namespace, model) (rate({REQUESTS}{s.serving()}[{SHORT_WINDOW}]))")


def gpu_utilisation(s: Scope) -> str:
    """Mean GPU utilisation (percent) per pod of the namespace, under the labels the serving metrics use."""
    both = (f"{GPU_UTILISATION}{s.gpu(GPU_POD_LABELS['namespace'])} or {GPU_UTILISATION}{s.gpu('namespace')}")
    relabelled = (f'label_replace(label_replace({both}, "namespace", "$1", "{GPU_POD_LABELS["namespace"]}", "(.+)"), '
                  f'"pod", "$1", "{GPU_POD_LABELS["pod"]}", "(.+)")')
    return f"avg by (namespace, pod) ({relabelled})"


def pod_answers(s: Scope, window: str = IDLE_WINDOW) -> str:
    return f"sum by (namespace, pod) (increase({REQUESTS}{s.serving()}[{window}]))"


def gpu_busy_without_traffic(s: Scope, idle_utilisation: float) -> str:
    """Pods whose GPUs are busier than the threshold (a share, compared with DCGM's percent) while they answered
    fewer than one request in 10 minutes, or export no request counter at all (a job nobody declared)."""
    return (f"({gpu_utilisation(s)} > {number(percent(idle_utilisation))})"
            f" unless on (namespace, pod) ({pod_answers(s)} >= 1)")


def confidence_mean(s: Scope, window: str) -> str:
    return (f"sum by (namespace, model) (rate({CONFIDENCE}_sum{s.serving()}[{window}]))"
            f" / sum by (namespace, model) (rate({CONFIDENCE}_count{s.serving()}[{window}]))")


def answers_last_hour(s: Scope, metric: str) -> str:
    return f"sum by (namespace, model) (increase({metric}{s.serving()}[{RECENT_WINDOW}]))"


def confidence_drop(s: Scope, drop: float) -> str:
    """The last hour's mean confidence below the last day's by more than `drop` (a share of it)."""
    return (f"(({confidence_mean(s, RECENT_WINDOW)}) < (1 - {number(drop)}) * ({confidence_mean(s, BASELINE_WINDOW)}))"
            f" and on (namespace, model) ({answers_last_hour(s, CONFIDENCE + '_count')} >= {MIN_ANSWERS_PER_HOUR})")


def output_share(s: Scope, window: str) -> str:
    """Each output class's share of a model's answers over `window`."""
    return (f"sum by (namespace, model, class) (rate({OUTPUTS}{s.serving()}[{window}]))"
            f" / ignoring (class) group_left sum by (namespace, model) (rate({OUTPUTS}{s.serving()}[{window}]))")


def output_shift(s: Scope) -> str:
    """How far each class's share of the last hour lies from its share of the last day; a class that vanished in
    the last hour (no refusals any more) counts with a share of 0."""
    recent, baseline = output_share(s, RECENT_WINDOW), output_share(s, BASELINE_WINDOW)
    return f"abs((({recent}) or ({baseline}) * 0) - ({baseline}))"


def output_shifted(s: Scope, shift: float) -> str:
    return (f"({output_shift(s)} > {number(shift)})"
            f" and on (namespace, model) ({answers_last_hour(s, OUTPUTS)} >= {MIN_ANSWERS_PER_HOUR})")


def metrics_absent(s: Scope) -> str:
    return f"absent({REQUESTS}{s.serving()})"


# --- the alerts -----------------------------------------------------------------------------------------------------

RUNBOOK = {
    "quarantine": QUARANTINE_A_TENANT,
    "rollback": ROLL_BACK_A_MODEL,
    "poisoning": TRACE_A_POISONED_DATASET,
}
"""Sections of the incident-response runbook (`hardstack runbook`) that alerts point to, by their anchor (the
`runbook_section` annotation of each alert)."""

Signal = Literal["latency", "errors", "gpu", "confidence", "output-shift", "metrics"]


@dataclass(frozen=True)
class Coverage:
    """A signal every tenant that serves an endpoint must be alerted on (HS_OPS_004): an alerting rule whose
    expression selects `series` in the tenant's namespace, with a matcher on each of `matched` labels too."""

    signal: Signal
    series: str
    matched: tuple[str, ...] = ()


COVERAGE = (
    Coverage("latency", f"{LATENCY}_bucket"),
    Coverage("errors", REQUESTS, ("code",)),
    Coverage("output-shift", OUTPUTS),
)


@dataclass(frozen=True)
class AlertDefinition:
    name: str
    signal: Signal
    severity: Literal["critical", "warning"]
    for_: str
    runbook: str
    summary: str  # a Prometheus template; `<tenant>` is filled in
    description: str  # a Prometheus template; `<threshold>` and `<tenant>` are filled in when the rule is built
    # (rule labels are not among a template's `$labels`, which are the expression's)


ALERTS = (
    AlertDefinition(
        "InferenceLatencyHigh", "latency", "warning", "5m", RUNBOOK["rollback"],
        "Slow answers from {{ $labels.model }} in <tenant>",
        "The 99th percentile of inference latency of {{ $labels.model }} in tenant <tenant> is "
        "{{ $value | humanizeDuration }} over 5 minutes (threshold <threshold> s). A new model version, a flood of "
        "long prompts or exhausted GPUs."),
    AlertDefinition(
        "InferenceErrorRateHigh", "errors", "critical", "5m", RUNBOOK["rollback"],
        "{{ $labels.model }} in <tenant> fails requests",
        "{{ $value | humanizePercentage }} of the requests to {{ $labels.model }} in tenant <tenant> "
        "failed with a 5xx status over 5 minutes (threshold <threshold>)."),
    AlertDefinition(
        "GpuBusyWithoutTraffic", "gpu", "critical", "10m", RUNBOOK["quarantine"],
        "GPUs busy in <tenant>/{{ $labels.pod }} with no inference traffic",
        "Pod {{ $labels.pod }} of tenant <tenant> keeps its GPUs {{ $value | humanize }}% busy "
        "(threshold <threshold>%) while it answered no request in 10 minutes: work nobody asked for (mining, a "
        "planted job, a runaway training)."),
    AlertDefinition(
        "InferenceConfidenceDropped", "confidence", "warning", "30m", RUNBOOK["rollback"],
        "Confidence of {{ $labels.model }} in <tenant> dropped",
        "The mean confidence of {{ $labels.model }} in tenant <tenant> over the last hour is "
        "{{ $value | humanize }}, more than <threshold> below its mean of the last day: drift, a poisoned or "
        "swapped model, or inputs crafted against it."),
    AlertDefinition(
        "InferenceOutputShifted", "output-shift", "warning", "30m", RUNBOOK["poisoning"],
        "Output mix of {{ $labels.model }} in <tenant> shifted",
        "The share of class {{ $labels.class }} in the answers of {{ $labels.model }} (tenant <tenant>) "
        "over the last hour differs from that of the last day by {{ $value | humanizePercentage }} (threshold "
        "<threshold>): drift, poisoning or abuse."),
    AlertDefinition(
        "InferenceMetricsAbsent", "metrics", "warning", "15m", RUNBOOK["quarantine"],
        "No inference metrics from <tenant>",
        "Prometheus has no " + REQUESTS + " series from tenant <tenant>, which serves an endpoint: "
        "every other model alert of the tenant is blind. The serving pods are down, are not scraped, or are not "
        "the ones that were deployed."),
)


def threshold(alert: AlertDefinition, thresholds: ModelMonitoringSpec) -> float | None:
    """The spec value an alert compares with (None: the alert has no threshold)."""
    return {"latency": thresholds.latency_p99_seconds, "errors": thresholds.error_ratio,
            "gpu": percent(thresholds.idle_gpu_utilisation), "confidence": thresholds.confidence_drop,
            "output-shift": thresholds.output_shift}.get(alert.signal)


def expression(alert: AlertDefinition, s: Scope, thresholds: ModelMonitoringSpec) -> str:
    if alert.signal == "latency":
        return f"{latency_p99(s)} > {number(thresholds.latency_p99_seconds)}"
    if alert.signal == "errors":
        return f"({error_ratio(s)}) > {number(thresholds.error_ratio)}"
    if alert.signal == "gpu":
        return gpu_busy_without_traffic(s, thresholds.idle_gpu_utilisation)
    if alert.signal == "confidence":
        return confidence_drop(s, thresholds.confidence_drop)
    if alert.signal == "output-shift":
        return output_shifted(s, thresholds.output_shift)
    return metrics_absent(s)


def alerts_for(serves_endpoint: bool, gpus: int) -> tuple[AlertDefinition, ...]:
    """Which alerts apply to a tenant: the serving alerts to a tenant that serves an endpoint, and GPU work without
    traffic to one that also has GPUs (a training tenant's GPUs are busy without requests by design)."""
    if not serves_endpoint:
        return ()
    return tuple(a for a in ALERTS if a.signal != "gpu" or gpus > 0)


def rule_group(tenant: str, *, gpus: int, endpoints: Sequence[str], thresholds: ModelMonitoringSpec,
               alert_namespace: str) -> dict[str, Any]:
    """The rule group of one tenant that serves `endpoints`.

    Every alert is labelled with its severity, the tenant, and `namespace: <alert_namespace>` (the monitoring
    namespace): the Prometheus operator routes an AlertmanagerConfig only alerts of its own namespace by default
    (`alertmanagerConfigMatcherStrategy: OnNamespace`), so alerts about a tenant carry the tenant in `tenant`."""
    rules = []
    for alert in alerts_for(bool(endpoints), gpus):
        value = threshold(alert, thresholds)
        shown = "" if value is None else (f"{value:g}" if alert.signal in ("latency", "gpu") else f"{value * 100:g}%")
        rules.append({
            "alert": alert.name,
            "expr": expression(alert, Scope(tenant), thresholds),
            "for": alert.for_,
            "labels": {"severity": alert.severity, "tenant": tenant, "namespace": alert_namespace},
            "annotations": {
                "summary": alert.summary.replace("<tenant>", tenant),
                "description": alert.description.replace("<threshold>", shown).replace("<tenant>", tenant)
                + f" Endpoints: {', '.join(sorted(endpoints))}.",
                "runbook_section": alert.runbook,
            },
        })
    return {"name": f"hardstack-models-{tenant}", "rules": rules}
