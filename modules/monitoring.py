"""Model and service monitoring for the kube-prometheus-stack the platform runs: alert rules on what the serving
layer exports (`model_alerts`), a Grafana dashboard of the same signals (`model_dashboard`), and alert routing to
SNS topics encrypted with the stack's key, which only Alertmanager may publish to."""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from hardstack.blueprints.compute import TenantSpec
from hardstack.blueprints.operations import AlertRoute, MonitoringSpec

from .base import HardenedComponent, account_and_partition
from .cluster import EksCluster
from .iam import inline_policy
from .identity import PermissionsBoundary, WorkloadRole
from .kms import CustomerManagedKey
from .model_alerts import RULE_SELECTOR_LABELS, rule_group
from .model_dashboard import CONFIGMAP_KEY, render

if TYPE_CHECKING:  # only their specs are read: no need to load the endpoint's SDK modules without endpoints
    from .endpoint import WafEndpoint

MANAGED_BY = {"app.kubernetes.io/managed-by": "hardstack"}
DASHBOARD_LABELS = {"grafana_dashboard": "1"}
"""The label the chart's Grafana dashboard sidecar loads ConfigMaps by (`grafana.sidecar.dashboards.label` and
`labelValue`; it searches every namespace)."""
MONITORED_TENANT_LABEL = "hardstack.io/monitored-tenant"
RULES_PREFIX = "hardstack-models"
DASHBOARD_NAME = "hardstack-model-monitoring"
ROUTES_NAME = "hardstack-alert-routes"

PUBLISH_ACTIONS = ("sns:Publish",)
"""All Alertmanager does with a topic."""
SNS_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
"""What a publisher needs of the key of an encrypted topic (SNS encrypts the message with a data key)."""
SUBSCRIPTION_PROTOCOLS = ("email", "https")
"""The only ways alerts leave a topic: to the declared addresses and HTTPS endpoints."""
SIGNATURE_VERSION = 2
"""SNS signs the messages it delivers to HTTPS subscribers with SHA256 (version 1 is SHA1)."""
UNROUTED_RECEIVER = "none"
"""The routing tree's root receiver, with no integration: alerts no route takes stay in Alertmanager's UI."""
GROUP_BY = ("alertname", "tenant", "model")
GROUP_WAIT, GROUP_INTERVAL, REPEAT_INTERVAL = "30s", "5m", "4h"


def receiver_name(route: AlertRoute) -> str:
    return f"sns-{route.name}"


def served_tenants(endpoints: Mapping[str, "WafEndpoint"], tenants: Sequence[TenantSpec]) -> dict[str, list[str]]:
    """Tenant → the endpoints it serves, for the tenants that serve at least one."""
    declared = {t.name for t in tenants}
    served: dict[str, list[str]] = {}
    for name, endpoint in sorted(endpoints.items()):
        tenant = endpoint.spec.tenant
        if tenant not in declared:
            raise ValueError(f"endpoint {name!r} serves tenant {tenant!r}, which is not among the tenants "
                             f"monitored: {sorted(declared)}")
        served.setdefault(tenant, []).append(endpoint.spec.name)
    return served


MAX_TOPIC_NAME = 256


def topic_name(stack: str, component: str, route: str) -> str:
    """`<stack>-<component>-<route>` in the characters SNS allows (a stack name may hold dots), at most 256 of them
    (a long stack name is cut, never the route's)."""
    prefix = re.sub(r"[^A-Za-z0-9_-]", "-", f"{stack}-{component}")
    return f"{prefix[:MAX_TOPIC_NAME - len(route) - 1]}-{route}"


def alert_routing(routes: Sequence[AlertRoute], topic_arns: Mapping[str, str], region: str) -> dict[str, Any]:
    """The AlertmanagerConfig's spec: alerts go to each route whose severities include theirs (`continue`: a
    critical alert reaches every route that takes critical ones), to its topic, signed with SigV4 using the Pod
    Identity credentials of Alertmanager (no keys in the configuration)."""
    return {
        "route": {
            "receiver": UNROUTED_RECEIVER,
            "groupBy": list(GROUP_BY),
            "groupWait": GROUP_WAIT,
            "groupInterval": GROUP_INTERVAL,
            "repeatInterval": REPEAT_INTERVAL,
            "routes": [{
                "receiver": receiver_name(r),
                "matchers": [{"name": "severity", "matchType": "=~", "value": "|".join(sorted(r.severities))}],
                "continue": True,
            } for r in routes],
        },
        "receivers": [{"name": UNROUTED_RECEIVER}] + [{
            "name": receiver_name(r),
            "snsConfigs": [{"topicARN": topic_arns[r.name], "sigv4": {"region": region}, "sendResolved": True}],
        } for r in routes],
    }


def topic_policy(topic_arn: str, publisher_arn: str, route: AlertRoute) -> dict[str, Any]:
    """Nobody but Alertmanager's role publishes (no forged alerts, no spam to the subscribers), nothing over plain
    HTTP, and nobody subscribes anything but the declared addresses and HTTPS endpoints (alerts name tenants and
    models). Everything else stays with IAM in this account (there is no Allow: no other account has access)."""
    endpoints = sorted([*route.email, *route.https])
    subscribe_elsewhere: dict[str, Any] = {"Sid": "SubscribersAsDeclared", "Effect": "Deny", "Principal": "*",
                                           "Action": "sns:Subscribe", "Resource": topic_arn}
    if endpoints:
        subscribe_elsewhere["Condition"] = {"StringNotEquals": {"sns:Endpoint": endpoints}}
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "sns:*", "Resource": topic_arn,
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "OnlyAlertmanagerPublishes", "Effect": "Deny", "Principal": "*", "Action": list(PUBLISH_ACTIONS),
         "Resource": topic_arn, "Condition": {"ArnNotEquals": {"aws:PrincipalArn": publisher_arn}}},
        subscribe_elsewhere,
        {"Sid": "SubscriptionsByEmailOrHttpsOnly", "Effect": "Deny", "Principal": "*", "Action": "sns:Subscribe",
         "Resource": topic_arn, "Condition": {"StringNotEquals": {"sns:Protocol": list(SUBSCRIPTION_PROTOCOLS)}}},
    ]}


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:8]


class ModelMonitoring(HardenedComponent):
    """Monitoring of the models the tenants serve, for the kube-prometheus-stack in `spec.namespace`:

    * per tenant that serves an endpoint, a PrometheusRule (labelled for the chart's rule selector) alerting on
      inference latency, 5xx errors, a drop in confidence, a shift in the output distribution and missing
      metrics, and, where the tenant has GPUs, on GPUs busy without traffic; thresholds from `spec.models`;
    * a Grafana dashboard of the same signals (a ConfigMap the chart's sidecar loads), the thresholds drawn in;
    * per route of `spec.routes`, an SNS topic encrypted with `key` (which must allow use through SNS) with the
      route's email and HTTPS subscribers, a topic policy that lets only Alertmanager publish and only the declared
      subscribers subscribe; an AlertmanagerConfig sending alerts by severity to the topics; and a Pod Identity role
      for Alertmanager's service account that may publish to these topics and nothing else.

    Without routes, alerts stay in Alertmanager: no topic, no role, no AlertmanagerConfig."""

    TYPE = "hardstack:monitoring:ModelMonitoring"

    def __init__(
        self,
        name: str,
        spec: MonitoringSpec,
        cluster: EksCluster,
        key: CustomerManagedKey,
        *,
        boundary: PermissionsBoundary,
        endpoints: Mapping[str, "WafEndpoint"],
        tenants: Sequence[TenantSpec],
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, tags=tags, opts=opts)
        self.spec = spec
        if spec.routes and "sns" not in key.via_services:
            raise ValueError(f"alert topics are encrypted with key {key.component_name!r}, which the account may use "
                             f"only through {', '.join(key.via_services) or 'no service'}; create it with 'sns' among "
                             "its via_services so that Alertmanager can publish to them")
        self.served = served_tenants(endpoints, tenants)
        gpus = {t.name: t.gpus for t in tenants}
        in_cluster = pulumi.ResourceOptions(parent=self, provider=cluster.provider)

        self.rules: dict[str, k8s.apiextensions.CustomResource] = {}
        for tenant, served_endpoints in sorted(self.served.items()):
            self.rules[tenant] = k8s.apiextensions.CustomResource(
                f"{name}-rules-{tenant}",
                api_version="monitoring.coreos.com/v1",
                kind="PrometheusRule",
                metadata={"name": f"{RULES_PREFIX}-{tenant}", "namespace": spec.namespace,
                          "labels": {**RULE_SELECTOR_LABELS, **MANAGED_BY, MONITORED_TENANT_LABEL: tenant}},
                spec={"groups": [rule_group(tenant, gpus=gpus[tenant], endpoints=served_endpoints,
                                            thresholds=spec.models, alert_namespace=spec.namespace)]},
                opts=in_cluster,
            )
        self.dashboard = k8s.core.v1.ConfigMap(
            f"{name}-dashboard",
            metadata={"name": DASHBOARD_NAME, "namespace": spec.namespace,
                      "labels": {**DASHBOARD_LABELS, **MANAGED_BY}},
            data={CONFIGMAP_KEY: render(spec.models)},
            opts=in_cluster,
        )

        self.topics: dict[str, aws.sns.Topic] = {}
        self.subscriptions: dict[str, list[aws.sns.TopicSubscription]] = {}
        self.identity: WorkloadRole | None = None
        self.role: aws.iam.Role | None = None
        self.publish_policy: aws.iam.RolePolicy | None = None
        self.topic_policies: dict[str, aws.sns.TopicPolicy] = {}
        self.alertmanager_config: k8s.apiextensions.CustomResource | None = None
        if spec.routes:
            self._routing(name, spec, cluster, key, boundary)
        self.register_outputs({
            "rules": [f"{RULES_PREFIX}-{t}" for t in self.rules],
            "dashboard": DASHBOARD_NAME,
            "topics": {route: topic.arn for route, topic in self.topics.items()},
        })

    def _routing(self, name: str, spec: MonitoringSpec, cluster: EksCluster, key: CustomerManagedKey,
                 boundary: PermissionsBoundary) -> None:
        _, _, region = account_and_partition()
        stack = pulumi.get_stack()
        for route in spec.routes:
            self.topics[route.name] = aws.sns.Topic(
                f"{name}-{route.name}",
                name=topic_name(stack, name, route.name),
                display_name=f"hardstack {stack} alerts: {route.name}"[:100],
                kms_master_key_id=key.arn,
                signature_version=SIGNATURE_VERSION,
                tags={**self.tags, "hardstack:alert-route": route.name},
                opts=self.child_opts(),
            )
            self.subscriptions[route.name] = [
                aws.sns.TopicSubscription(
                    f"{name}-{route.name}-{protocol}-{_digest(endpoint)}",
                    topic=self.topics[route.name].arn,
                    protocol=protocol,
                    endpoint=endpoint,
                    opts=self.child_opts(),
                )
                for protocol, endpoint in [*(("email", e) for e in route.email), *(("https", u) for u in route.https)]
            ]
        self.identity = WorkloadRole(f"{name}-alertmanager", boundary, cluster, namespace=spec.namespace,
                                     service_account=spec.alertmanager_service_account, buckets={},
                                     tags=self.declared_tags, opts=self.child_opts())
        self.role = role = self.identity.role
        arns = [self.topics[r.name].arn for r in spec.routes]
        self.publish_policy = publish_policy = inline_policy(
            f"{name}-publish-alerts", role,
            pulumi.Output.all(pulumi.Output.all(*arns), key.use_statement(SNS_KEY_ACTIONS, "sns")).apply(
                lambda a: [{"Sid": "PublishAlerts", "Effect": "Allow", "Action": list(PUBLISH_ACTIONS),
                            "Resource": sorted(a[0])},
                           {"Sid": "EncryptAlertsThroughSns", **a[1]}]),
            self)
        self.topic_policies = {
            route.name: aws.sns.TopicPolicy(
                f"{name}-{route.name}-policy",
                arn=self.topics[route.name].arn,
                policy=pulumi.Output.all(self.topics[route.name].arn, role.arn).apply(
                    lambda a, route=route: json.dumps(topic_policy(a[0], a[1], route), indent=2)),
                opts=self.child_opts(),
            )
            for route in spec.routes
        }
        self.alertmanager_config = k8s.apiextensions.CustomResource(
            f"{name}-alert-routes",
            api_version="monitoring.coreos.com/v1alpha1",
            kind="AlertmanagerConfig",
            metadata={"name": ROUTES_NAME, "namespace": spec.namespace, "labels": dict(MANAGED_BY)},
            spec=pulumi.Output.all(pulumi.Output.all(*arns), region).apply(
                lambda a: alert_routing(spec.routes, dict(zip([r.name for r in spec.routes], a[0])), a[1])),
            opts=pulumi.ResourceOptions(parent=self, provider=cluster.provider,
                                        depends_on=[self.identity.association, publish_policy,
                                                    *self.topic_policies.values()]),
        )
