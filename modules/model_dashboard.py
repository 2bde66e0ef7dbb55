"""The Grafana dashboard of model and service monitoring, built from the same expressions as the alert rules
(`model_alerts`), with the blueprint's thresholds drawn as lines.

The dashboard ships in the package as `dashboards/model-monitoring.json` (the dashboard for the default thresholds,
for importing by hand); `ModelMonitoring` emits `dashboard(spec.models)`, which is that file whenever the thresholds
are the defaults. After changing this module, write the file again:
`python -m hardstack.modules.model_dashboard`.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from hardstack.blueprints.operations import ModelMonitoringSpec

from .model_alerts import (
    BASELINE_WINDOW,
    RECENT_WINDOW,
    REQUESTS,
    Scope,
    confidence_mean,
    error_ratio,
    gpu_utilisation,
    latency_p99,
    output_share,
    output_shift,
    percent,
    request_rate,
)

UID = "hardstack-models"
TITLE = "hardstack: models and inference"
FILE = "dashboards/model-monitoring.json"
"""The dashboard in the package (`hardstack.modules`), relative to it."""
CONFIGMAP_KEY = "hardstack-model-monitoring.json"
SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
PANEL_WIDTH, PANEL_HEIGHT = 12, 8

SCOPE = Scope(namespace="$tenant", op="=~", model="$model")
"""What the panels read: the tenants and models chosen at the top of the dashboard (one tenant per repeated row)."""
TENANTS_QUERY = f"label_values({REQUESTS}, namespace)"
MODELS_QUERY = f'label_values({REQUESTS}{{namespace=~"$tenant"}}, model)'
FIRING_ALERTS = 'ALERTS{alertstate="firing", tenant=~"$tenant"}'


def _thresholds(value: float | None) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    if value is not None:
        steps.append({"color": "red", "value": value})
    return {"mode": "absolute", "steps": steps}


def _timeseries(title: str, description: str, targets: list[tuple[str, str]], unit: str,
                threshold: float | None = None) -> dict[str, Any]:
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend,
                     "range": True} for i, (expr, legend) in enumerate(targets)],
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "thresholds": _thresholds(threshold),
                "custom": {"thresholdsStyle": {"mode": "line" if threshold is not None else "off"}},
            },
            "overrides": [],
        },
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                    "tooltip": {"mode": "multi", "sort": "desc"}},
    }


def panels(thresholds: ModelMonitoringSpec) -> list[dict[str, Any]]:
    """The panels of one tenant's row, in reading order."""
    s = SCOPE
    keep = 1 - thresholds.confidence_drop
    return [
        _timeseries("Inference latency p99 (5 m)", "The alert line is `models.latency_p99_seconds`.",
                    [(latency_p99(s), "{{model}}")], "s", thresholds.latency_p99_seconds),
        _timeseries("Failed requests (5xx share, 5 m)", "The alert line is `models.error_ratio`.",
                    [(error_ratio(s), "{{model}}")], "percentunit", thresholds.error_ratio),
        _timeseries("Requests per second by pod", "Traffic each serving pod answers; compare with its GPUs.",
                    [(request_rate(s, by=("namespace", "pod")), "{{pod}}")], "reqps"),
        _timeseries("GPU utilisation by pod", "DCGM's utilisation of the GPUs each pod holds. Above the line with "
                    "no requests for 10 minutes alerts (`models.idle_gpu_utilisation`).",
                    [(gpu_utilisation(Scope("$tenant", "=~")), "{{pod}}")], "percent",
                    percent(thresholds.idle_gpu_utilisation)),
        _timeseries("Mean confidence: last hour and alert line",
                    "The alert fires when the last hour's mean falls below the last day's mean times "
                    "(1 - `models.confidence_drop`).",
                    [(confidence_mean(s, RECENT_WINDOW), "{{model}} last hour"),
                     (f"(1 - {thresholds.confidence_drop!r}) * ({confidence_mean(s, BASELINE_WINDOW)})",
                      f"{{{{model}}}} last day x {keep:g}")], "percentunit"),
        _timeseries("Output classes: share of the last hour", "Each class's share of a model's answers.",
                    [(output_share(s, RECENT_WINDOW), "{{model}} {{class}}")], "percentunit"),
        _timeseries("Output shift: last hour against last day",
                    "How far each class's share lies from its share of the last day; the alert line is "
                    "`models.output_shift`.",
                    [(output_shift(s), "{{model}} {{class}}")], "percentunit", thresholds.output_shift),
        {
            "type": "table",
            "title": "Firing model alerts",
            "description": "hardstack's model and service alerts firing for the tenant (label `tenant`).",
            "datasource": DATASOURCE,
            "targets": [{"refId": "A", "datasource": DATASOURCE, "expr": FIRING_ALERTS, "format": "table",
                         "instant": True, "range": False}],
            "fieldConfig": {"defaults": {}, "overrides": []},
            "options": {"showHeader": True},
        },
    ]


def _variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {"name": name, "label": label, "type": "query", "datasource": DATASOURCE,
            "query": {"query": query, "refId": name}, "refresh": 2, "sort": 1,
            "multi": True, "includeAll": True, "current": {}, "hide": 0}


def dashboard(thresholds: ModelMonitoringSpec) -> dict[str, Any]:
    """The dashboard: a row per chosen tenant (repeated), each with the panels of `panels`."""
    laid: list[dict[str, Any]] = [{"type": "row", "title": "Tenant $tenant", "repeat": "tenant", "collapsed": False,
                                   "panels": [], "gridPos": {"h": 1, "w": 24, "x": 0, "y": 0}}]
    for i, panel in enumerate(panels(thresholds)):
        laid.append({**panel, "gridPos": {"h": PANEL_HEIGHT, "w": PANEL_WIDTH, "x": (i % 2) * PANEL_WIDTH,
                                          "y": 1 + (i // 2) * PANEL_HEIGHT}})
    return {
        "uid": UID,
        "title": TITLE,
        "description": "Latency, failures, GPU work without traffic, confidence and output distribution of the "
        "models each tenant serves (metrics in docs/monitoring.md); lines are the blueprint's alert thresholds.",
        "tags": ["hardstack", "models"],
        "timezone": "utc",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": "now-24h", "to": "now"},
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0},
            _variable("tenant", "Tenant", TENANTS_QUERY),
            _variable("model", "Model", MODELS_QUERY),
        ]},
        "panels": [{"id": i + 1, **p} for i, p in enumerate(laid)],
    }


def render(thresholds: ModelMonitoringSpec) -> str:
    """The dashboard as the ConfigMap and the packaged file hold it."""
    return json.dumps(dashboard(thresholds), indent=2, sort_keys=True) + "\n"


def packaged() -> str:
    """The dashboard file shipped in the package."""
    return (resources.files("hardstack.modules") / FILE).read_text()


if __name__ == "__main__":  # write the packaged file again (from the source tree)
    from pathlib import Path

    (Path(__file__).resolve().parent / FILE).write_text(render(ModelMonitoringSpec()))
