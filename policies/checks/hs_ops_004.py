"""HS_OPS_004: every tenant namespace that serves an endpoint is alerted on for latency, errors and output shift
(evaluated by the gate across the tenants' TargetGroupBindings and the PrometheusRules).

A namespace serves an endpoint when a TargetGroupBinding (the AWS Load Balancer Controller's) is in it. It is
covered when, for each signal of `hardstack.modules.model_alerts.COVERAGE`, some PrometheusRule that
kube-prometheus-stack loads (labelled with `RULE_SELECTOR_LABELS`) holds an alerting rule (`alert` set, a non-empty
`severity` label) whose expression selects the signal's series with a matcher on `namespace` that picks this
namespace (`namespace="<ns>"`, or a `=~` regex matching it) and a matcher on each further label the signal names:

* latency: `hardstack_inference_request_duration_seconds_bucket` (the latency histogram's buckets);
* errors: `hardstack_inference_requests_total` with a matcher on `code` (the 5xx share);
* output shift: `hardstack_inference_outputs_total`.
"""

import re

from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_OPS_004",
    title="Every tenant that serves an endpoint is alerted on latency, errors and shifts in its output distribution",
    severity="MEDIUM",
    area="operations",
    rationale="A poisoned, swapped or abused model keeps answering: its outputs drift, its errors or latency climb, "
    "and without an alert nobody notices until the damage is done. A tenant behind an endpoint with no alert on "
    "these signals is served blind.",
    remediation="Keep the PrometheusRules hardstack's ModelMonitoring emits for the tenant (labelled for "
    "kube-prometheus-stack's rule selector), or add alerting rules on the named metrics for the namespace.",
    owasp_llm=("LLM04: Data and Model Poisoning", "LLM10: Unbounded Consumption"),
    mitre_atlas=("AML.T0020: Poison Training Data", "AML.T0029: Denial of ML Service"),
    resources=("Namespace",),
)

_MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def selectors(expr, series):  # type: ignore[no-untyped-def]
    """The label matchers ({label: [(op, value)]}) of every selector of `series` in a PromQL expression."""
    pattern = re.compile(r"(?<![A-Za-z0-9_:])" + re.escape(series) + r"\s*\{([^}]*)\}")
    found = []
    for m in pattern.finditer(str(expr)):
        matchers = {}
        for label, op, value in _MATCHER.findall(m.group(1)):
            matchers.setdefault(label, []).append((op, value))
        found.append(matchers)
    return found


def picks(matchers, namespace):  # type: ignore[no-untyped-def]
    """Whether a selector's `namespace` matchers pick exactly this namespace (or it among others by regex)."""
    checks = matchers.get("namespace") or []
    if not checks:
        return False
    for op, value in checks:
        if op == "=" and value != namespace:
            return False
        if op == "=~" and not re.fullmatch(value, namespace):
            return False
        if op == "!=" and value == namespace:
            return False
        if op == "!~" and re.fullmatch(value, namespace):
            return False
    return any(op in ("=", "=~") for op, _ in checks)


def loaded_alerts(objects):  # type: ignore[no-untyped-def]
    """Alerting rules (with a severity) of the PrometheusRules kube-prometheus-stack loads."""
    from hardstack.modules.model_alerts import RULE_SELECTOR_LABELS

    for m in objects.values():
        if m.get("kind") != "PrometheusRule" or not str(m.get("apiVersion", "")).startswith("monitoring.coreos.com/"):
            continue
        labels = (m.get("metadata") or {}).get("labels") or {}
        if any(labels.get(k) != v for k, v in RULE_SELECTOR_LABELS.items()):
            continue
        for group in (m.get("spec") or {}).get("groups") or []:
            for rule in group.get("rules") or []:
                if rule.get("alert") and ((rule.get("labels") or {}).get("severity") or "").strip():
                    yield rule


def missing(namespace, alerts):  # type: ignore[no-untyped-def]
    """The coverage signals no alert picks for this namespace."""
    from hardstack.modules.model_alerts import COVERAGE

    gaps = []
    for c in COVERAGE:
        if not any(picks(sel, namespace) and all(sel.get(label) for label in c.matched)
                   for rule in alerts for sel in selectors(rule.get("expr", ""), c.series)):
            gaps.append(f"{c.signal} ({c.series}" + "".join(f" with a {label} matcher" for label in c.matched) + ")")
    return gaps


def evaluate(objects, version):  # type: ignore[no-untyped-def]
    from hardstack.policies.native import tenant_namespaces

    served = {}
    for address, m in objects.items():
        if m.get("kind") == "TargetGroupBinding" and str(m.get("apiVersion", "")).startswith("elbv2.k8s.aws/"):
            meta = m.get("metadata") or {}
            served.setdefault(meta.get("namespace") or "default", []).append((address, meta.get("name")))
    namespaces = tenant_namespaces(objects)
    alerts = list(loaded_alerts(objects))
    for namespace, bindings in sorted(served.items()):
        address = namespaces.get(namespace) or sorted(bindings)[0][0]
        gaps = missing(namespace, alerts)
        detail = None
        if gaps:
            names = ", ".join(sorted(str(n) for _, n in bindings))
            detail = (f"namespace {namespace} serves an endpoint (TargetGroupBinding {names}) but no PrometheusRule "
                      f"kube-prometheus-stack loads alerts on: {'; '.join(gaps)}")
        yield address, "failed" if gaps else "passed", detail


def _serving_tenant(tenant: str = "serving") -> None:
    import pulumi_kubernetes as k8s

    k8s.core.v1.Namespace(f"{tenant}-namespace", metadata={"name": tenant, "labels": {"hardstack.io/tenant": tenant}})
    k8s.apiextensions.CustomResource(
        f"{tenant}-binding", api_version="elbv2.k8s.aws/v1beta1", kind="TargetGroupBinding",
        metadata={"name": "endpoint-chat", "namespace": tenant},
        spec={"serviceRef": {"name": "inference-server", "port": 8000}, "targetType": "ip",
              "targetGroupARN": f"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/chat/{'0' * 16}"})


def _rules(tenant: str, keep=lambda rule: True, labels=None) -> None:  # type: ignore[no-untyped-def]
    import pulumi_kubernetes as k8s

    from hardstack.blueprints.operations import ModelMonitoringSpec
    from hardstack.modules.model_alerts import RULE_SELECTOR_LABELS, rule_group

    group = rule_group(tenant, gpus=1, endpoints=["chat"], thresholds=ModelMonitoringSpec(),
                       alert_namespace="monitoring")
    group["rules"] = [r for r in group["rules"] if keep(r)]
    k8s.apiextensions.CustomResource(
        f"rules-{tenant}", api_version="monitoring.coreos.com/v1", kind="PrometheusRule",
        metadata={"name": f"models-{tenant}", "namespace": "monitoring",
                  "labels": RULE_SELECTOR_LABELS if labels is None else labels},
        spec={"groups": [group]})


def passing_tenant_covered() -> None:
    _serving_tenant()
    _rules("serving")


def failing_no_output_shift_alert() -> None:
    _serving_tenant()
    _rules("serving", keep=lambda rule: rule["alert"] != "InferenceOutputShifted")


def failing_rules_prometheus_does_not_load() -> None:
    _serving_tenant()
    _rules("serving", labels={"app.kubernetes.io/managed-by": "hardstack"})


def failing_rules_for_another_namespace() -> None:
    _serving_tenant("serving")
    _rules("research")
