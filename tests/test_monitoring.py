"""Model and service monitoring: the PrometheusRules, the Grafana dashboard and alert routing to SNS.

Two stacks are synthesized: the shipped `llm-inference` (default thresholds, no routes) and a variant of it with
thresholds of its own and two alert routes (`oncall`: critical alerts to an address and an HTTPS endpoint;
`ml-team`: every severity to two addresses). Every test asserts the property on the synthesized inventory and what it
is wired from (THIS key, THESE topics, THIS cluster's Pod Identity). What other tools would say is asked of them where
they run here: every PromQL expression is parsed by a PromQL parser (promql-parser, a port of Prometheus' own), the
rules are loaded and unit-tested against series by Prometheus' promtool (the alerts fire where the spec's thresholds
say, and stay quiet below them), the custom resources are validated against the Prometheus operator's CRDs, the SNS
topics, their policies and subscriptions and the Alertmanager role are created in a moto server as synthesized.
Dropping the output-shift alert from the shipped stack through a Pulumi transform fails the gate (HS_OPS_004).
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import promql_parser
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from hardstack.blueprints.loader import LoadedBlueprint, catalog, load
from hardstack.blueprints.operations import ModelMonitoringSpec, MonitoringSpec
from hardstack.modules import model_alerts, model_dashboard
from hardstack.modules.model_alerts import (
    ALERTS,
    CONFIDENCE,
    COVERAGE,
    GPU_UTILISATION,
    LATENCY,
    OUTPUTS,
    REQUESTS,
    RULE_SELECTOR_LABELS,
    SERVING_METRICS,
)
from hardstack.modules.monitoring import (
    DASHBOARD_LABELS,
    PUBLISH_ACTIONS,
    SNS_KEY_ACTIONS,
    SUBSCRIPTION_PROTOCOLS,
    topic_name,
)
from hardstack.modules.runbook_sections import RUNBOOK_SECTIONS
from hardstack.policies import crds
from hardstack.policies.bridge import bridge
from hardstack.policies.gate import GateReport, run_gate
from hardstack.policies.k8s_schema import validate_manifest
from hardstack.stacks.inventory import Inventory, Resource
from hardstack.stacks.mocks import ACCOUNT_ID
from hardstack.stacks.targets import synth_loaded

from .gate_helpers import failed, gate, transform_of
from .helpers import policy, ref_attr
from .moto_server import moto_server

REPO = Path(__file__).resolve().parent.parent
RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
ROUTES = "kubernetes:monitoring.coreos.com/v1alpha1:AlertmanagerConfig"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
TOPIC = "aws:sns/topic:Topic"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
POD_IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
K8S_VERSION = "1.33"
COMPONENT = "hardstack:monitoring:ModelMonitoring"

THRESHOLDS = {"latency_p99_seconds": 4.5, "error_ratio": 0.02, "idle_gpu_utilisation": 0.3,
              "confidence_drop": 0.15, "output_shift": 0.1}
VARIANT_ROUTES = [
    {"name": "oncall", "severities": ["critical"], "email": ["oncall@example.com"],
     "https": ["https://events.pagerduty.com/integration/0123456789abcdef/enqueue"]},
    {"name": "ml-team", "email": ["ml-team@example.com", "ml-lead@example.com"]},
]


@dataclass
class Stack:
    loaded: LoadedBlueprint
    inv: Inventory

    @property
    def spec(self) -> MonitoringSpec:
        assert self.loaded.blueprint.monitoring is not None
        return self.loaded.blueprint.monitoring

    def named(self, name: str, type_token: str | None = None) -> Resource:
        return self.inv.named(name, type_token)

    def objects(self) -> dict[str, dict[str, Any]]:
        """The Kubernetes objects as the gate judges them, by address."""
        return bridge(copy.deepcopy(self.inv)).objects

    def rules(self, tenant: str = "serving") -> dict[str, dict[str, Any]]:
        """The alerting rules of a tenant, by alert name."""
        [group] = self.named(f"monitoring-rules-{tenant}", RULE).inputs["spec"]["groups"]
        return {r["alert"]: r for r in group["rules"]}


@pytest.fixture(scope="module")
def shipped(reference_inventory: Inventory) -> Stack:
    return Stack(load("llm-inference"), reference_inventory)


@pytest.fixture(scope="module")
def routed_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = yaml.safe_load(catalog()["llm-inference"].read_text())
    data["name"] = "monitoring-routes"
    data["monitoring"] = {"models": THRESHOLDS, "routes": VARIANT_ROUTES}
    path = tmp_path_factory.mktemp("monitoring") / "monitoring-routes.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def routed(routed_path: Path) -> Stack:
    loaded = load(routed_path)
    return Stack(loaded, synth_loaded(loaded))


@pytest.fixture(scope="module")
def routed_report(routed: Stack, routed_path: Path) -> GateReport:
    # judged on a copy: the gate's bridge writes Terraform references into list inputs it converts
    return run_gate(copy.deepcopy(routed.inv), target=str(routed_path), exceptions=routed.loaded.blueprint.exceptions,
                    locate=routed.loaded.locate)


# --- the rules --------------------------------------------------------------------------------------------------------


def walk(expr: str) -> list[Any]:
    """Every node of a parsed PromQL expression (the parse fails on any syntax or type error)."""
    nodes: list[Any] = []
    promql_parser.walk(promql_parser.parse(expr), lambda node: nodes.append(node))
    return nodes


def selectors(expr: str) -> list[tuple[str, dict[str, tuple[str, str]]]]:
    """(metric, {label: (op, value)}) of every vector selector."""
    ops = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}
    return [(n.name, {m.name: (ops[str(m.op).rsplit(".", 1)[-1]], m.value) for m in n.matchers.matchers})
            for n in walk(expr) if isinstance(n, promql_parser.VectorSelector)]


def numbers(expr: str) -> set[float]:
    return {n.val for n in walk(expr) if isinstance(n, promql_parser.NumberLiteral)}


def test_prometheus_rules_are_labelled_for_kube_prometheus_stacks_rule_selector(shipped: Stack, routed: Stack) -> None:
    for stack in (shipped, routed):
        rule = stack.named("monitoring-rules-serving", RULE)
        meta = rule.inputs["metadata"]
        assert meta["namespace"] == stack.spec.namespace == "monitoring"
        assert meta["labels"]["release"] == "kube-prometheus-stack"
        assert RULE_SELECTOR_LABELS.items() <= meta["labels"].items()
        assert rule.inputs["apiVersion"] == "monitoring.coreos.com/v1"


def test_every_alert_of_a_serving_tenant_with_gpus_is_there_with_severity_summary_description_and_runbook(
        shipped: Stack) -> None:
    rules = shipped.rules()
    assert set(rules) == {a.name for a in ALERTS}
    for alert in ALERTS:
        rule = rules[alert.name]
        assert rule["labels"] == {"severity": alert.severity, "tenant": "serving", "namespace": "monitoring"}
        notes = rule["annotations"]
        assert notes["summary"] and notes["description"].endswith("Endpoints: chat.")
        assert notes["runbook_section"] in RUNBOOK_SECTIONS, notes["runbook_section"]
        assert "<tenant>" not in notes["summary"] + notes["description"]
        assert "$labels.tenant" not in notes["summary"] + notes["description"]  # rule labels are no template labels
        assert rule["for"] == alert.for_


def test_alerts_apply_where_they_apply() -> None:
    """Only tenants that serve an endpoint get alerts; GPUs busy without traffic only where the tenant has GPUs."""
    assert model_alerts.alerts_for(False, 8) == ()
    assert {a.signal for a in model_alerts.alerts_for(True, 0)} == {"latency", "errors", "confidence",
                                                                     "output-shift", "metrics"}
    assert "gpu" in {a.signal for a in model_alerts.alerts_for(True, 1)}


def test_only_the_tenants_that_serve_an_endpoint_are_watched(shipped: Stack) -> None:
    rules = [r for r in shipped.inv.of_type(RULE)]
    assert [r.inputs["metadata"]["name"] for r in rules] == ["hardstack-models-serving"]


def test_an_endpoint_of_an_unmonitored_tenant_is_refused() -> None:
    from types import SimpleNamespace

    from hardstack.blueprints.compute import TenantSpec
    from hardstack.modules.monitoring import served_tenants

    def endpoint(name: str, tenant: str) -> Any:
        return SimpleNamespace(spec=SimpleNamespace(name=name, tenant=tenant))

    tenants = [TenantSpec(name="serving"), TenantSpec(name="research")]
    assert served_tenants({"b": endpoint("b", "serving"), "a": endpoint("a", "serving")}, tenants) == {
        "serving": ["a", "b"]}
    with pytest.raises(ValueError, match="endpoint 'chat' serves tenant 'search'"):
        served_tenants({"chat": endpoint("chat", "search")}, tenants)


@pytest.mark.parametrize("which", ["shipped", "routed"])
def test_thresholds_come_from_the_spec(which: str, request: pytest.FixtureRequest) -> None:
    stack: Stack = request.getfixturevalue(which)
    models = stack.spec.models
    assert (models == ModelMonitoringSpec()) == (which == "shipped")
    rules = stack.rules()
    latency, errors = rules["InferenceLatencyHigh"]["expr"], rules["InferenceErrorRateHigh"]["expr"]
    assert latency.endswith(f" > {models.latency_p99_seconds!r}") and models.latency_p99_seconds in numbers(latency)
    assert errors.endswith(f" > {models.error_ratio!r}") and models.error_ratio in numbers(errors)
    assert any(v == pytest.approx(models.idle_gpu_utilisation * 100)
               for v in numbers(rules["GpuBusyWithoutTraffic"]["expr"]))
    assert models.confidence_drop in numbers(rules["InferenceConfidenceDropped"]["expr"])
    assert models.output_shift in numbers(rules["InferenceOutputShifted"]["expr"])
    if which == "routed":
        defaults = ModelMonitoringSpec()
        for alert, value in (("InferenceLatencyHigh", defaults.latency_p99_seconds),
                             ("InferenceErrorRateHigh", defaults.error_ratio),
                             ("InferenceOutputShifted", defaults.output_shift)):
            assert value not in numbers(rules[alert]["expr"]), alert


@pytest.mark.parametrize("which", ["shipped", "routed"])
def test_every_expression_parses_and_reads_only_the_tenants_series(which: str, request: pytest.FixtureRequest) -> None:
    stack: Stack = request.getfixturevalue(which)
    for name, rule in stack.rules().items():
        for metric, matchers in selectors(rule["expr"]):
            if metric == GPU_UTILISATION:
                assert ("=", "serving") in {matchers.get("namespace"), matchers.get("exported_namespace")}, name
            else:
                assert matchers["namespace"] == ("=", "serving"), (name, metric)


def test_the_error_alert_counts_5xx_answers() -> None:
    [errors] = [m for metric, m in selectors(model_alerts.error_ratio(model_alerts.Scope("t"))) if "code" in m]
    assert errors["code"] == ("=~", "5..")


def metrics_of(expr: str) -> set[str]:
    return {metric for metric, _ in selectors(expr)}


DOCUMENTED_SERIES = {REQUESTS, f"{LATENCY}_bucket", f"{CONFIDENCE}_sum", f"{CONFIDENCE}_count", OUTPUTS,
                     GPU_UTILISATION}
"""The series the documented metrics give Prometheus (a histogram is its _bucket, _sum and _count series)."""


def test_rules_read_only_documented_metrics(shipped: Stack) -> None:
    assert {m.name for m in SERVING_METRICS} == {REQUESTS, LATENCY, CONFIDENCE, OUTPUTS}
    read = set().union(*(metrics_of(r["expr"]) for r in shipped.rules().values()))
    assert read == DOCUMENTED_SERIES


# --- promtool: the rules load in Prometheus and fire where the thresholds say ----------------------------------------


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool (Debian package prometheus) is installed by `make system-deps`; it is missing"
    return found


def rules_file(stack: Stack, folder: Path, *, annotations: bool) -> Path:
    [group] = copy.deepcopy(stack.named("monitoring-rules-serving", RULE).inputs["spec"]["groups"])
    if not annotations:  # (promtool compares annotations as rendered; the firing tests compare labels)
        for rule in group["rules"]:
            rule.pop("annotations")
    path = folder / f"{stack.loaded.blueprint.name}-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [group]}, sort_keys=False))
    return path


@pytest.mark.parametrize("which", ["shipped", "routed"])
def test_prometheus_loads_the_rules_and_their_templates(which: str, request: pytest.FixtureRequest,
                                                        tmp_path: Path) -> None:
    stack: Stack = request.getfixturevalue(which)
    path = rules_file(stack, tmp_path, annotations=True)
    proc = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in proc.stdout


def labels(alert: str, **extra: str) -> dict[str, Any]:
    severity = next(a.severity for a in ALERTS if a.name == alert)
    return {"exp_labels": {"severity": severity, "tenant": "serving", "namespace": "monitoring", **extra}}


def serving_series(metric: str, values: str, **extra: str) -> dict[str, str]:
    series = ", ".join(f'{k}="{v}"' for k, v in {"namespace": "serving", "pod": "p1", "model": "m", **extra}.items())
    return {"series": f"{metric}{{{series}}}", "values": values}


def gpu_series(pod: str, values: str) -> dict[str, str]:
    """As Prometheus stores DCGM's series when it scrapes the exporter without honorLabels."""
    return {"series": f'{GPU_UTILISATION}{{namespace="gpu-operator", pod="dcgm-exporter-x", gpu="0", '
                      f'exported_namespace="serving", exported_pod="{pod}"}}', "values": values}


def short_window_case(stack_fires: bool) -> dict[str, Any]:
    """30 minutes in which p99 latency is 2.98 s, 3% of requests fail, pod `miner` keeps its GPU 40% busy answering
    nothing and pod `p1` 90% busy answering. Between the shipped thresholds (2 s, 5%, 50%) and the variant's (4.5 s,
    2%, 30%): the variant's latency alert stays quiet while the shipped one fires, and the other way round for errors
    and idle GPUs."""
    return {
        "interval": "1m",
        "input_series": [
            serving_series(f"{LATENCY}_bucket", "0+10x30", le="1"),
            serving_series(f"{LATENCY}_bucket", "0+100x30", le="3"),
            serving_series(f"{LATENCY}_bucket", "0+100x30", le="+Inf"),
            serving_series(REQUESTS, "0+97x30", code="200"),
            serving_series(REQUESTS, "0+3x30", code="503"),
            gpu_series("miner", "40x30"),
            gpu_series("p1", "90x30"),
        ],
        "alert_rule_test": [
            {"eval_time": "25m", "alertname": "InferenceLatencyHigh",
             "exp_alerts": [] if stack_fires else [labels("InferenceLatencyHigh", model="m")]},
            {"eval_time": "25m", "alertname": "InferenceErrorRateHigh",
             "exp_alerts": [labels("InferenceErrorRateHigh", model="m")] if stack_fires else []},
            {"eval_time": "25m", "alertname": "GpuBusyWithoutTraffic",
             "exp_alerts": [labels("GpuBusyWithoutTraffic", pod="miner")] if stack_fires else []},
            {"eval_time": "25m", "alertname": "InferenceMetricsAbsent", "exp_alerts": []},
        ],
    }


def long_window_case(stack_fires: bool) -> dict[str, Any]:
    """26 hours of answers every 5 minutes: for 24 hours a mean confidence of 0.9 and half answers, half refusals;
    then two hours at 0.72 and 68% answers. The last hour's mean is 18.6% below the day's (variant: 15%, shipped:
    20%), the classes' shares 16.5 points off the day's (variant: 10, shipped: 25)."""
    return {
        "interval": "5m",
        "input_series": [
            serving_series(f"{CONFIDENCE}_count", "0+50x312"),
            serving_series(f"{CONFIDENCE}_sum", "0+45x288 12996+36x23"),
            serving_series(OUTPUTS, "0+25x288 7234+34x23", **{"class": "answer"}),
            serving_series(OUTPUTS, "0+25x288 7216+16x23", **{"class": "refusal"}),
            serving_series(REQUESTS, "0+50x312", code="200"),
        ],
        "alert_rule_test": [
            {"eval_time": "1560m", "alertname": "InferenceConfidenceDropped",
             "exp_alerts": [labels("InferenceConfidenceDropped", model="m")] if stack_fires else []},
            {"eval_time": "1560m", "alertname": "InferenceOutputShifted",
             "exp_alerts": [labels("InferenceOutputShifted", model="m", **{"class": c}) for c in ("answer", "refusal")]
             if stack_fires else []},
            {"eval_time": "1380m", "alertname": "InferenceOutputShifted", "exp_alerts": []},
            {"eval_time": "1380m", "alertname": "InferenceConfidenceDropped", "exp_alerts": []},
        ],
    }


QUIET_AND_BLIND = [
    {   # no series at all: the metrics-absent alert fires after 15 minutes, nothing else
        "interval": "1m",
        "input_series": [],
        "alert_rule_test": [
            {"eval_time": "20m", "alertname": "InferenceMetricsAbsent",
             "exp_alerts": [labels("InferenceMetricsAbsent")]},
            {"eval_time": "20m", "alertname": "InferenceErrorRateHigh", "exp_alerts": []},
        ],
    },
    {   # a refusal class that vanishes in the last hour counts with a share of 0
        "interval": "5m",
        "input_series": [
            serving_series(OUTPUTS, "0+25x312", **{"class": "answer"}),
            serving_series(OUTPUTS, "0+25x288 _x23", **{"class": "refusal"}),
            serving_series(REQUESTS, "0+50x312", code="200"),
        ],
        "alert_rule_test": [
            {"eval_time": "1560m", "alertname": "InferenceOutputShifted",
             "exp_alerts": [labels("InferenceOutputShifted", model="m", **{"class": c})
                            for c in ("answer", "refusal")]},
        ],
    },
]


def run_promtool_tests(rules: Path, cases: list[dict[str, Any]]) -> None:
    spec = rules.with_name(rules.stem + "-test.yaml")
    spec.write_text(yaml.safe_dump({"rule_files": [rules.name], "evaluation_interval": "1m", "tests": cases}))
    proc = subprocess.run([promtool(), "test", "rules", spec.name], cwd=rules.parent, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_alerts_fire_above_the_variants_thresholds_and_not_below(routed: Stack, tmp_path: Path) -> None:
    run_promtool_tests(rules_file(routed, tmp_path, annotations=False),
                       [short_window_case(True), long_window_case(True), *QUIET_AND_BLIND])


def test_the_shipped_thresholds_judge_the_same_series_otherwise(shipped: Stack, tmp_path: Path) -> None:
    run_promtool_tests(rules_file(shipped, tmp_path, annotations=False),
                       [short_window_case(False), long_window_case(False), *QUIET_AND_BLIND])


# --- the dashboard ---------------------------------------------------------------------------------------------------


def dashboard_of(stack: Stack) -> tuple[Resource, dict[str, Any]]:
    cm = stack.named("monitoring-dashboard", CONFIGMAP)
    return cm, json.loads(cm.inputs["data"][model_dashboard.CONFIGMAP_KEY])


def targets(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for p in dashboard["panels"] for t in p.get("targets", [])]


def test_the_shipped_dashboard_is_the_packaged_file(shipped: Stack) -> None:
    cm, _ = dashboard_of(shipped)
    assert cm.inputs["data"][model_dashboard.CONFIGMAP_KEY] == model_dashboard.packaged()
    assert model_dashboard.packaged() == (REPO / "modules" / model_dashboard.FILE).read_text()


def test_the_dashboard_file_ships_in_the_package() -> None:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert any(fnmatch.fnmatch(model_dashboard.FILE, p) for p in data["hardstack.modules"])


def test_grafanas_sidecar_loads_the_dashboard_configmap(routed: Stack) -> None:
    cm, _ = dashboard_of(routed)
    meta = cm.inputs["metadata"]
    assert meta["namespace"] == "monitoring" and DASHBOARD_LABELS.items() <= meta["labels"].items()
    assert meta["labels"]["grafana_dashboard"] == "1"
    assert validate_manifest(routed.objects()[f"ConfigMap.monitoring.{meta['name']}"], K8S_VERSION) == []


@pytest.mark.parametrize("which", ["shipped", "routed"])
def test_dashboard_is_valid_and_reads_the_alerts_metrics(which: str, request: pytest.FixtureRequest) -> None:
    stack: Stack = request.getfixturevalue(which)
    _, dashboard = dashboard_of(stack)
    assert dashboard["uid"] == model_dashboard.UID and dashboard["schemaVersion"] == model_dashboard.SCHEMA_VERSION
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for p in dashboard["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        for t in p.get("targets", []):
            assert t["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(variables) == {"datasource", "tenant", "model"}
    assert variables["tenant"]["query"]["query"] == f"label_values({REQUESTS}, namespace)"
    read = set().union(*(metrics_of(t["expr"]) for t in targets(dashboard)))  # parses every panel's query
    assert read - {"ALERTS"} == DOCUMENTED_SERIES
    rules_read = set().union(*(metrics_of(r["expr"]) for r in stack.rules().values()))
    assert read - {"ALERTS"} == rules_read


def test_every_field_of_the_dashboard_is_one_of_grafanas_dashboard_schema() -> None:
    """Read into Grafana's dashboard model (grafana-foundation-sdk, generated from Grafana's schema) and written back,
    the dashboard loses nothing: a misspelt or unknown field would be dropped. (The model adds its defaults.)"""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import Dashboard

    original = json.loads(model_dashboard.packaged())
    again = json.loads(json.dumps(Dashboard.from_json(original), cls=JSONEncoder))

    def dropped(a: Any, b: Any, path: str = "") -> list[str]:
        if isinstance(a, dict):
            return [f"{path}.{k}" for k in a if k not in b] + [
                p for k in a if k in b for p in dropped(a[k], b[k], f"{path}.{k}")]
        if isinstance(a, list):
            return [p for i, (x, y) in enumerate(zip(a, b)) for p in dropped(x, y, f"{path}[{i}]")]
        return [] if a == b else [f"{path} changed"]

    assert dropped(original, again) == []


def test_dashboard_lines_are_the_stacks_thresholds(routed: Stack) -> None:
    _, dashboard = dashboard_of(routed)
    lines = {p["title"]: [s["value"] for s in p["fieldConfig"]["defaults"]["thresholds"]["steps"][1:]]
             for p in dashboard["panels"] if p["type"] == "timeseries"}
    assert lines["Inference latency p99 (5 m)"] == [THRESHOLDS["latency_p99_seconds"]]
    assert lines["Failed requests (5xx share, 5 m)"] == [THRESHOLDS["error_ratio"]]
    assert lines["GPU utilisation by pod"] == [pytest.approx(THRESHOLDS["idle_gpu_utilisation"] * 100)]
    assert lines["Output shift: last hour against last day"] == [THRESHOLDS["output_shift"]]
    confidence = next(p for p in dashboard["panels"] if p["title"].startswith("Mean confidence"))
    assert THRESHOLDS["confidence_drop"] in numbers(confidence["targets"][1]["expr"])
    assert model_dashboard.render(ModelMonitoringSpec(**THRESHOLDS)) != model_dashboard.packaged()


# --- the custom resources against the operator's CRDs --------------------------------------------------------------


def test_the_operators_crds_are_vendored() -> None:
    schemas = crds.bundled_schemas()
    assert ("monitoring.coreos.com/v1", "PrometheusRule") in schemas
    assert ("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig") in schemas


@pytest.mark.parametrize("which", ["shipped", "routed"])
def test_monitoring_objects_are_valid_against_the_crds(which: str, request: pytest.FixtureRequest) -> None:
    stack: Stack = request.getfixturevalue(which)
    mine = {a: m for a, m in stack.objects().items() if (m.get("metadata") or {}).get("namespace") == "monitoring"}
    assert {m["kind"] for m in mine.values()} == {"PrometheusRule", "ConfigMap"} | (
        {"AlertmanagerConfig"} if which == "routed" else set())
    for address, manifest in mine.items():
        assert validate_manifest(manifest, K8S_VERSION) == [], address


def test_a_misspelt_rule_or_route_fails_the_crd_schema(routed: Stack) -> None:
    objects = routed.objects()
    rule = copy.deepcopy(objects["PrometheusRule.monitoring.hardstack-models-serving"])
    rule["spec"]["groups"][0]["rules"][0]["expression"] = rule["spec"]["groups"][0]["rules"][0].pop("expr")
    assert sorted(e.path for e in validate_manifest(rule, K8S_VERSION)) == [  # required, and unknown
        "spec.groups[0].rules[0].expr", "spec.groups[0].rules[0].expression"]
    routes = copy.deepcopy(objects["AlertmanagerConfig.monitoring.hardstack-alert-routes"])
    routes["spec"]["receivers"][1]["snsConfigs"][0]["topicArn"] = "x"
    assert [e.path for e in validate_manifest(routes, K8S_VERSION)] == ["spec.receivers[1].snsConfigs[0].topicArn"]


# --- alert routing -------------------------------------------------------------------------------------------------


def test_no_routes_no_topics_no_role_no_alertmanager_config(shipped: Stack) -> None:
    assert shipped.spec.routes == []
    assert {r.type for r in monitoring_children(shipped)} == {RULE, CONFIGMAP}
    assert not shipped.inv.of_type(ROUTES)
    assert not [r for r in shipped.inv if r.name.startswith("monitoring-alertmanager")]
    key = statements_by_sid(shipped.named("logs-key"))["KeyUseOnlyThroughServices"]
    assert "sns.us-east-1.amazonaws.com" not in key["Condition"]["StringEquals"]["kms:ViaService"]


def monitoring_children(stack: Stack) -> list[Resource]:
    """The resources ModelMonitoring creates (its Pod Identity role's too)."""
    return [r for r in stack.inv if r.custom and f"{COMPONENT}$" in r.urn]


def statements_by_sid(resource: Resource, key: str = "policy") -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in policy(resource, key)["Statement"]}


def topics(stack: Stack) -> dict[str, Resource]:
    return {route.name: stack.named(f"monitoring-{route.name}", TOPIC) for route in stack.spec.routes}


def test_each_route_has_a_topic_encrypted_with_this_key(routed: Stack) -> None:
    key = routed.named("logs-key")
    found = topics(routed)
    assert set(found) == {"oncall", "ml-team"}
    made = sorted(r.name for r in monitoring_children(routed) if r.type == TOPIC)
    assert made == sorted(t.name for t in found.values())
    for route, topic in found.items():
        assert ref_attr(topic, "kmsMasterKeyId") == (key.urn, "arn")
        assert topic.inputs["kmsMasterKeyId"] == key.outputs["arn"]
        assert topic.inputs["signatureVersion"] == 2
        stack = routed.loaded.stack_name
        assert topic.inputs["name"] == topic_name(stack, "monitoring", route) == f"{stack}-monitoring-{route}"
    uses = statements_by_sid(key)["KeyUseOnlyThroughServices"]
    assert "sns.us-east-1.amazonaws.com" in uses["Condition"]["StringEquals"]["kms:ViaService"]


@given(st.text(min_size=1, max_size=400), st.from_regex(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$", fullmatch=True))
def test_topic_names_are_names_sns_accepts(stack: str, route: str) -> None:
    name = topic_name(stack, "monitoring", route)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,256}", name) and name.endswith(route)


def test_subscribers_are_exactly_the_routes(routed: Stack) -> None:
    found = topics(routed)
    subscribed: dict[str, set[tuple[str, str]]] = {route: set() for route in found}
    for sub in [r for r in monitoring_children(routed) if r.type == SUBSCRIPTION]:
        [route] = [r for r, t in found.items() if ref_attr(sub, "topic") == (t.urn, "arn")]
        subscribed[route].add((sub.inputs["protocol"], sub.inputs["endpoint"]))
    for route in routed.spec.routes:
        assert subscribed[route.name] == {("email", e) for e in route.email} | {("https", u) for u in route.https}


def alertmanager_policies(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    role = stack.named("monitoring-alertmanager-role", ROLE)
    return {p.name: policy(p)["Statement"] for p in stack.inv.of_type(ROLE_POLICY)
            if ref_attr(p, "role")[0] == role.urn}


def test_alertmanager_may_publish_to_these_topics_only(routed: Stack) -> None:
    key, arns = routed.named("logs-key"), sorted(t.outputs["arn"] for t in topics(routed).values())
    assert alertmanager_policies(routed) == {"monitoring-publish-alerts": [
        {"Sid": "PublishAlerts", "Effect": "Allow", "Action": list(PUBLISH_ACTIONS), "Resource": arns},
        {"Sid": "EncryptAlertsThroughSns", "Effect": "Allow", "Action": sorted(SNS_KEY_ACTIONS),
         "Resource": key.outputs["arn"],
         "Condition": {"StringEquals": {"kms:ViaService": "sns.us-east-1.amazonaws.com"}}},
    ]}
    role = routed.named("monitoring-alertmanager-role", ROLE)
    attached = [r for r in routed.inv if r.type == "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
                and any(ref.resource == role.urn for ref in r.references)]
    assert attached == []
    boundary = statements_by_sid(routed.named("boundary-policy"))["StackServicesInItsRegion"]
    assert "sns:*" in boundary["Action"]  # the boundary does not cap publishing away


def test_alertmanager_role_is_this_clusters_pod_identity_for_its_service_account(routed: Stack) -> None:
    role, cluster = routed.named("monitoring-alertmanager-role", ROLE), routed.named("cluster-eks")
    [trust] = policy(role, "assumeRolePolicy")["Statement"]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID},
                                  "ArnEquals": {"aws:SourceArn": cluster.outputs["arn"]}}
    assert role.inputs["maxSessionDuration"] == 3600
    assert ref_attr(role, "permissionsBoundary") == (routed.named("boundary-policy").urn, "arn")
    association = routed.named("monitoring-alertmanager-pod-identity", POD_IDENTITY)
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == \
        ("monitoring", routed.spec.alertmanager_service_account)
    assert ref_attr(association, "roleArn") == (role.urn, "arn")


def test_topic_policies_let_only_alertmanager_publish_and_only_the_declared_subscribers_subscribe(
        routed: Stack) -> None:
    role = routed.named("monitoring-alertmanager-role", ROLE)
    for route in routed.spec.routes:
        topic = topics(routed)[route.name]
        tp = routed.named(f"monitoring-{route.name}-policy", TOPIC_POLICY)
        assert ref_attr(tp, "arn") == (topic.urn, "arn")
        by_sid = statements_by_sid(tp)
        assert all(s["Effect"] == "Deny" and s["Resource"] == topic.outputs["arn"] for s in by_sid.values())
        assert by_sid["OnlyAlertmanagerPublishes"]["Condition"] == {
            "ArnNotEquals": {"aws:PrincipalArn": role.outputs["arn"]}}
        assert by_sid["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert by_sid["SubscribersAsDeclared"]["Condition"] == {
            "StringNotEquals": {"sns:Endpoint": sorted(route.email + route.https)}}
        assert by_sid["SubscriptionsByEmailOrHttpsOnly"]["Condition"] == {
            "StringNotEquals": {"sns:Protocol": list(SUBSCRIPTION_PROTOCOLS)}}


def routing_of(stack: Stack) -> dict[str, Any]:
    return stack.named("monitoring-alert-routes", ROUTES).inputs["spec"]


def receivers_for(spec: dict[str, Any], alert_labels: dict[str, str]) -> list[str]:
    """Where Alertmanager sends an alert: the child routes it matches (regex matchers are anchored), each continuing
    to the next; the root's receiver when none matches."""
    hits = []
    for child in spec["route"]["routes"]:
        ok = True
        for m in child["matchers"]:
            value = alert_labels.get(m["name"], "")
            ok &= {"=": value == m["value"], "!=": value != m["value"],
                   "=~": re.fullmatch(m["value"], value) is not None,
                   "!~": re.fullmatch(m["value"], value) is None}[m["matchType"]]
        if ok:
            hits.append(child["receiver"])
            if not child.get("continue"):
                break
    return hits or [spec["route"]["receiver"]]


def test_alertmanager_config_routes_by_severity_to_the_right_topic(routed: Stack) -> None:
    spec, arns = routing_of(routed), {name: t.outputs["arn"] for name, t in topics(routed).items()}
    sns = {r["name"]: r["snsConfigs"] for r in spec["receivers"] if "snsConfigs" in r}
    assert sns == {f"sns-{route}": [{"topicARN": arn, "sigv4": {"region": "us-east-1"}, "sendResolved": True}]
                   for route, arn in arns.items()}
    topic_of = {f"sns-{route}": arn for route, arn in arns.items()}
    assert [topic_of[r] for r in receivers_for(spec, {"severity": "critical"})] == [arns["oncall"], arns["ml-team"]]
    assert [topic_of[r] for r in receivers_for(spec, {"severity": "warning"})] == [arns["ml-team"]]
    assert receivers_for(spec, {"severity": "none"}) == ["none"]  # kube-prometheus-stack's Watchdog stays put
    for alert in ALERTS:  # every hardstack alert reaches a topic
        assert set(receivers_for(spec, {"severity": alert.severity})) <= set(topic_of), alert.name


def test_alertmanager_config_is_what_the_operator_accepts(routed: Stack) -> None:
    """The operator's own checks (pkg/alertmanager/validation/v1alpha1): unique receivers, a root receiver, every
    route's receiver declared, exactly one SNS target; and each child route (which the CRD leaves unvalidated) is a
    valid route of the CRD's schema."""
    manifest = routed.objects()["AlertmanagerConfig.monitoring.hardstack-alert-routes"]
    spec = manifest["spec"]
    names = [r["name"] for r in spec["receivers"]]
    assert len(names) == len(set(names)) and spec["route"]["receiver"] in names
    for child in spec["route"]["routes"]:
        assert child["receiver"] in names
        as_root = copy.deepcopy(manifest)
        as_root["spec"]["route"] = child
        assert validate_manifest(as_root, K8S_VERSION) == []
    for r in spec["receivers"]:
        for config in r.get("snsConfigs", []):
            assert sum(bool(config.get(k)) for k in ("topicARN", "targetARN", "phoneNumber")) == 1
    assert manifest["metadata"]["namespace"] == "monitoring"


def test_alerts_carry_the_namespace_the_operator_routes_by_default(routed: Stack) -> None:
    """With the operator's default matcher strategy (OnNamespace), an AlertmanagerConfig routes only alerts whose
    `namespace` label is its own: every rule sets it to the monitoring namespace."""
    namespace = routed.named("monitoring-alert-routes", ROUTES).inputs["metadata"]["namespace"]
    assert {r["labels"]["namespace"] for r in routed.rules().values()} == {namespace}


def test_parliament_finds_nothing_in_the_alertmanager_policy(routed: Stack) -> None:
    from .test_identity import SEVERITIES, parliament_api

    parliament = parliament_api()
    for name, statements in alertmanager_policies(routed).items():
        text = json.dumps({"Version": "2012-10-17", "Statement": statements})
        findings = [parliament.enhance_finding(f) for f in parliament.analyze_policy_string(text).findings]
        assert [(f.issue, f.detail) for f in findings
                if SEVERITIES.index(f.severity) >= SEVERITIES.index("MEDIUM")] == [], name


def test_routes_need_a_key_usable_through_sns() -> None:
    from hardstack.blueprints.kms import KmsSpec
    from hardstack.stacks.synth import run_program

    def program() -> None:
        from hardstack.modules.identity import PermissionsBoundary
        from hardstack.modules.kms import CustomerManagedKey
        from hardstack.modules.monitoring import ModelMonitoring

        key = CustomerManagedKey("logs", KmsSpec(), description="logs", via_services=("logs",))
        ModelMonitoring("monitoring", MonitoringSpec(routes=VARIANT_ROUTES), cluster=None,  # type: ignore[arg-type]
                        key=key, boundary=PermissionsBoundary("boundary"), endpoints={}, tenants=[])

    with pytest.raises(Exception, match="'sns' among its via_services"):
        run_program(program, project="keys", stack="test", region="us-east-1")


# --- in moto -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


def client(url: str, service: str) -> Any:
    import boto3

    return boto3.client(service, region_name="us-east-1", endpoint_url=url, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def test_sns_and_iam_accept_the_topics_subscriptions_and_role_as_synthesized(routed: Stack, moto_url: str) -> None:
    kms, sns, iam = client(moto_url, "kms"), client(moto_url, "sns"), client(moto_url, "iam")
    key = routed.named("logs-key")
    made_key = kms.create_key(Policy=key.inputs["policy"], Description=key.inputs["description"])["KeyMetadata"]["Arn"]
    role = routed.named("monitoring-alertmanager-role", ROLE)
    made_role = iam.create_role(RoleName=role.outputs["name"], AssumeRolePolicyDocument=role.inputs["assumeRolePolicy"],
                                MaxSessionDuration=role.inputs["maxSessionDuration"])["Role"]["Arn"]
    made_topics = {}
    for route, topic in topics(routed).items():
        made_topics[route] = sns.create_topic(Name=topic.inputs["name"], Attributes={
            "KmsMasterKeyId": {key.outputs["arn"]: made_key}[topic.inputs["kmsMasterKeyId"]],
            "DisplayName": topic.inputs["displayName"], "SignatureVersion": str(topic.inputs["signatureVersion"])},
        )["TopicArn"]
        assert made_topics[route] == topic.outputs["arn"]  # the synthesized ARN is the one SNS gives the name
        text = routed.named(f"monitoring-{route}-policy", TOPIC_POLICY).inputs["policy"]
        sns.set_topic_attributes(TopicArn=made_topics[route], AttributeName="Policy",
                                 AttributeValue=text.replace(role.outputs["arn"], made_role))
    for sub in [r for r in monitoring_children(routed) if r.type == SUBSCRIPTION]:
        arn = next(made_topics[r] for r, t in topics(routed).items() if ref_attr(sub, "topic")[0] == t.urn)
        sns.subscribe(TopicArn=arn, Protocol=sub.inputs["protocol"], Endpoint=sub.inputs["endpoint"])
    [(name, statements)] = alertmanager_policies(routed).items()
    iam.put_role_policy(RoleName=role.outputs["name"], PolicyName=name,  # moto validates the document's grammar
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements})
                        .replace(key.outputs["arn"], made_key))

    for route in routed.spec.routes:
        attributes = sns.get_topic_attributes(TopicArn=made_topics[route.name])["Attributes"]
        assert attributes["KmsMasterKeyId"] == made_key
        assert json.loads(attributes["Policy"])["Statement"][1]["Condition"] == {
            "ArnNotEquals": {"aws:PrincipalArn": made_role}}
        subscriptions = sns.list_subscriptions_by_topic(TopicArn=made_topics[route.name])["Subscriptions"]
        assert sorted((s["Protocol"], s["Endpoint"]) for s in subscriptions) == sorted(
            [("email", e) for e in route.email] + [("https", u) for u in route.https])
    stored = iam.get_role_policy(RoleName=role.outputs["name"], PolicyName=name)["PolicyDocument"]
    assert stored["Statement"][0]["Resource"] == sorted(made_topics.values())
    key_policy = json.loads(kms.get_key_policy(KeyId=made_key, PolicyName="default")["Policy"])
    [uses] = [s for s in key_policy["Statement"] if s.get("Sid") == "KeyUseOnlyThroughServices"]
    assert "sns.us-east-1.amazonaws.com" in uses["Condition"]["StringEquals"]["kms:ViaService"]
    # an alert reaches the email-only topic (moto would try to deliver to the HTTPS endpoint itself)
    assert sns.publish(TopicArn=made_topics["ml-team"], Subject="InferenceOutputShifted", Message="test")["MessageId"]


# --- the gate ------------------------------------------------------------------------------------------------------


def test_gate_passes_the_monitoring_of_the_routed_stack(routed_report: GateReport) -> None:
    mine = {"monitoring-rules-serving", "monitoring-dashboard", "monitoring-alert-routes", "monitoring-oncall",
            "monitoring-ml-team", "monitoring-oncall-policy", "monitoring-ml-team-policy", "monitoring-publish-alerts",
            "monitoring-alertmanager-role"}
    assert {(c, r) for c, r in failed(routed_report) if r in mine or r.startswith("monitoring-")} == set()
    passed = {(r.check_id, r.resource.rsplit("::", 1)[1]) for r in routed_report.results if r.status == "passed"}
    assert {("HS_K8S_005", "monitoring-rules-serving"), ("HS_K8S_005", "monitoring-alert-routes"),
            ("HS_K8S_005", "monitoring-dashboard"), ("CKV_AWS_26", "monitoring-oncall"),
            ("CKV_AWS_26", "monitoring-ml-team"), ("CKV_AWS_169", "monitoring-oncall-policy"),
            ("HS_IAM_001", "monitoring-publish-alerts"), ("HS_OPS_004", "tenant-serving-namespace")} <= passed


def test_the_coverage_check_reads_the_metrics_the_rules_alert_on() -> None:
    assert {c.signal for c in COVERAGE} == {"latency", "errors", "output-shift"}
    assert {c.series for c in COVERAGE} <= DOCUMENTED_SERIES


@pytest.mark.parametrize("expr, covered", [
    (f'rate({OUTPUTS}{{namespace="serving"}}[1h])', True),
    (f'rate({OUTPUTS}{{model="m", namespace=~"serving|search"}}[1h])', True),
    (f'rate({OUTPUTS}{{namespace=~"serv.*", namespace!="serving"}}[1h])', False),
    (f'rate({OUTPUTS}{{namespace="search"}}[1h])', False),
    (f"rate({OUTPUTS}[1h])", False),  # every namespace at once: not an alert on this tenant
    (f'rate({OUTPUTS}_other{{namespace="serving"}}[1h])', False),
])
def test_what_counts_as_alerting_on_a_tenant(expr: str, covered: bool) -> None:
    from hardstack.policies.checks.hs_ops_004 import missing

    rule = {"alert": "X", "expr": expr, "labels": {"severity": "warning"}}
    assert ("output-shift" not in " ".join(missing("serving", [rule]))) == covered


def _without_output_shift(props: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(props["spec"])
    for group in spec["groups"]:
        group["rules"] = [r for r in group["rules"] if r["alert"] != "InferenceOutputShifted"]
    return {**props, "spec": spec}


def test_dropping_the_output_shift_alert_fails_the_gate() -> None:
    report = gate("llm-inference", transform_of(RULE, _without_output_shift))
    assert ("HS_OPS_004", "tenant-serving-namespace") in failed(report)
    [finding] = [r for r in report.results if r.check_id == "HS_OPS_004" and r.status == "failed"]
    assert OUTPUTS in str(finding.detail) and "output-shift" in str(finding.detail)
