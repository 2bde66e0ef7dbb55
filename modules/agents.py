"""LLM agents, each boxed in by what it declares: its own namespace and service account, an AWS role for exactly
its reads, a Vault policy for exactly its secrets, and a network that reaches only the agents it calls and, for
agents with egress, a proxy that lets through only the declared hosts."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s

from hardstack.blueprints.agents import AGENT_LABEL, ANNOTATIONS, PROXY, AgentSpec, ProxySpec, private_reads
from hardstack.blueprints.base import Classification

from .base import HardenedComponent
from .cluster import EksCluster
from .identity import PermissionsBoundary, WorkloadRole
from .network import AwsAccess
from .storage import EncryptedBucket
from .tenancy import PSA_LEVEL

SERVICE_ACCOUNT = "agent"
UID = 10001
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10"]


def namespace_of(agent: str) -> str:
    return f"agent-{agent}"


def squid_config(hosts: Sequence[str], port: int) -> str:
    """An allowlist proxy: HTTPS CONNECT to the declared hosts only, nothing cached. Hosts are validated
    hostnames (letters, digits, dots, dashes, a leading `*.`), so they cannot add directives."""
    domains = " ".join(sorted(h[1:] if h.startswith("*.") else h for h in hosts))
    return "\n".join([
        f"http_port {port}",
        f"acl allowed dstdomain -n {domains}",  # -n: never match an IP by its reverse DNS (attacker-controlled)
        "acl SSL_ports port 443",
        "acl CONNECT method CONNECT",
        "http_access deny !CONNECT",
        "http_access deny !SSL_ports",
        "http_access allow CONNECT allowed",
        "http_access deny all",
        "cache deny all",
        "access_log stdio:/dev/stdout",
        "cache_log stdio:/dev/stderr",
        "pid_filename none",
        "",
    ])


def hardened_container(name: str, image: str, port: int, probe: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "image_pull_policy": "Always",
        "ports": [{"container_port": port, "name": "serve"}],
        "liveness_probe": {**probe, "period_seconds": 10},
        "readiness_probe": {**probe, "period_seconds": 5},
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
        "security_context": {
            "allow_privilege_escalation": False,
            "read_only_root_filesystem": True,
            "run_as_non_root": True,
            "run_as_user": UID,
            "capabilities": {"drop": ["ALL"]},
        },
        **extra,
    }


def pod_spec(containers: list[dict[str, Any]], volumes: list[dict[str, Any]], runtime: str | None,
             service_account: str = SERVICE_ACCOUNT) -> dict[str, Any]:
    return {
        "service_account_name": service_account,
        "automount_service_account_token": False,
        "runtime_class_name": runtime,
        "security_context": {"run_as_non_root": True, "run_as_user": UID, "run_as_group": UID, "fs_group": UID,
                             "seccomp_profile": {"type": "RuntimeDefault"}},
        "containers": containers,
        "volumes": volumes,
    }


def network_policies(agent: AgentSpec, callees: Mapping[str, int], callers: Sequence[str], gateway: str | None,
                     proxy_port: int | None, aws: AwsAccess | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(name, spec) of the agent namespace's NetworkPolicies: deny all, DNS, its declared calls (and the
    reverse for its callers), the gateway for entrypoints, and the proxy as the only way out."""
    me = {"match_labels": {AGENT_LABEL: agent.name, "app.kubernetes.io/name": agent.name}}
    dns = {"to": [{"namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": "kube-system"}},
                   "pod_selector": {"match_labels": {"k8s-app": "kube-dns"}}}],
           "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}

    def ns(name: str) -> dict[str, Any]:
        return {"namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": name}}}

    out: list[tuple[str, dict[str, Any]]] = [
        ("default-deny-all", {"pod_selector": {}, "policy_types": ["Ingress", "Egress"]}),
        ("allow-dns", {"pod_selector": {}, "policy_types": ["Egress"], "egress": [dns]}),
    ]
    if aws is not None:  # inside the VPC, to interface endpoints serving this account only: no route out
        out.append(("allow-aws", {"pod_selector": me, "policy_types": ["Egress"], "egress": aws.egress()}))
    if callees:
        out.append(("allow-calls", {"pod_selector": me, "policy_types": ["Egress"], "egress": [
            {"to": [{**ns(namespace_of(c)), "pod_selector": {"match_labels": {AGENT_LABEL: c}}}],
             "ports": [{"protocol": "TCP", "port": port}]} for c, port in sorted(callees.items())]}))
    sources = [ns(namespace_of(c)) for c in sorted(callers)] + ([ns(gateway)] if gateway else [])
    if sources:
        out.append(("allow-callers", {"pod_selector": me, "policy_types": ["Ingress"], "ingress": [
            {"from": sources, "ports": [{"protocol": "TCP", "port": agent.port}]}]}))
    if proxy_port:
        proxy = {"match_labels": {"app.kubernetes.io/name": PROXY}}
        out += [
            ("allow-egress-proxy", {"pod_selector": me, "policy_types": ["Egress"], "egress": [
                {"to": [{"pod_selector": proxy}], "ports": [{"protocol": "TCP", "port": proxy_port}]}]}),
            ("egress-proxy", {"pod_selector": proxy, "policy_types": ["Ingress", "Egress"],
                              "ingress": [{"from": [{"pod_selector": me}],
                                           "ports": [{"protocol": "TCP", "port": proxy_port}]}],
                              "egress": [{"to": [{"ip_block": {"cidr": "0.0.0.0/0", "except": PRIVATE_RANGES}}],
                                          "ports": [{"protocol": "TCP", "port": 443}]}]}),
        ]
    return out


class Agent(HardenedComponent):
    """An agent in its own namespace (restricted Pod Security, default-deny network), run as a hardened
    Deployment by digest under its own service account; a Pod Identity role reading exactly its buckets; a Vault
    policy for exactly its secrets; NetworkPolicies for exactly its calls, callers and entry; for agents with
    egress, a Squid proxy allowing only the declared hosts as the only way out. An agent that reads private
    data is refused any egress. The namespace declares the agent's legs for the gate's trifecta check."""

    TYPE = "hardstack:agents:Agent"

    def image(self, ref: str) -> Any:
        """An image of the blueprint as the cluster pulls it: from the stack's signed registry (`registry`, a
        SignedRegistry), or as written when the agent is built without one."""
        return self.registry.image(ref) if self.registry is not None else ref

    def __init__(
        self,
        name: str,
        spec: AgentSpec,
        cluster: EksCluster,
        boundary: PermissionsBoundary,
        *,
        buckets: Mapping[str, EncryptedBucket] = {},
        callees: Mapping[str, int] = {},
        callers: Sequence[str] = (),
        gateway_namespace: str | None = None,
        proxy: ProxySpec | None = None,
        aws: AwsAccess | None = None,
        vault: Any = None,
        registry: Any = None,
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, tags=tags, opts=opts)
        self.registry = registry
        private = private_reads(spec, {b for b, o in buckets.items()
                                       if o.classification.at_least(Classification.confidential)})
        if spec.egress and private:
            raise ValueError(f"agent {spec.name} reads private data {list(private)} and declares egress: an agent "
                             "with private data gets no route out")
        if spec.egress and proxy is None:
            raise ValueError(f"agent {spec.name} declares egress: give the egress proxy (ProxySpec)")
        missing = sorted(set(spec.calls) - set(callees))
        if missing:
            raise ValueError(f"agent {spec.name} calls {missing}: pass their ports in `callees`")
        self.spec = spec
        self.namespace_name = ns = namespace_of(spec.name)
        labels = {AGENT_LABEL: spec.name, "app.kubernetes.io/managed-by": "hardstack"}
        legs = {"private": private, "untrusted": spec.untrusted_input, "egress": spec.egress, "calls": spec.calls}
        o = pulumi.ResourceOptions(parent=self, provider=cluster.provider)
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={
                "name": ns,
                "labels": {**labels, "pod-security.kubernetes.io/enforce": PSA_LEVEL,
                           "pod-security.kubernetes.io/enforce-version": "latest",
                           "pod-security.kubernetes.io/audit": PSA_LEVEL, "pod-security.kubernetes.io/warn": PSA_LEVEL},
                "annotations": {ANNOTATIONS[k]: ",".join(v) for k, v in legs.items() if v},
            },
            opts=o,
        )
        in_ns = pulumi.ResourceOptions(parent=self, provider=cluster.provider, depends_on=[self.namespace])

        def meta(object_name: str, **extra: str) -> dict[str, Any]:
            return {"name": object_name, "namespace": ns, "labels": {**labels, **extra}}

        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account", metadata=meta(SERVICE_ACCOUNT), automount_service_account_token=False,
            opts=in_ns)
        k8s.core.v1.ServiceAccountPatch(f"{name}-default-sa", metadata={"name": "default", "namespace": ns},
                                        automount_service_account_token=False, opts=in_ns)
        reads = [r for r in spec.reads if not r.startswith("secret:")]
        self.role = WorkloadRole(f"{name}-identity", boundary, cluster, namespace=ns, service_account=SERVICE_ACCOUNT,
                                 buckets=buckets, reads=reads, tags=tags, opts=pulumi.ResourceOptions(parent=self))
        self.vault_access = None
        secrets = [r.removeprefix("secret:") for r in spec.reads if r.startswith("secret:")]
        if vault is not None and secrets:
            self.vault_access = vault.workload_access(
                f"agent-{spec.name}", namespace=ns, service_account=SERVICE_ACCOUNT,
                rules={f"{vault.prefix}/kv/data/agents/{spec.name}/{s}": ["read"] for s in secrets})
        runtime = "sandboxed" if cluster.sandbox_runtime is not None else None
        app = {"app.kubernetes.io/name": spec.name}
        to_aws = aws if reads else None  # AWS only for agents that read buckets (their Pod Identity role)
        env: list[dict[str, Any]] = to_aws.environment() if to_aws else []
        if spec.egress:
            assert proxy is not None
            url = f"http://{PROXY}.{ns}.svc.cluster.local:{proxy.port}"
            env += [{"name": "HTTPS_PROXY", "value": url}, {"name": "NO_PROXY", "value": ".svc,.cluster.local"}]
            self._proxy(name, spec, proxy, meta, in_ns, runtime)
        probe = {"http_get": {"path": spec.health_path, "port": spec.port}}
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=meta(spec.name, **app),
            spec={
                "replicas": spec.replicas,
                "selector": {"match_labels": {AGENT_LABEL: spec.name, **app}},
                "template": {
                    "metadata": {"labels": {**labels, **app}},
                    "spec": pod_spec([hardened_container(spec.name, self.image(spec.image), spec.port, probe, env=env or None,
                                                         volume_mounts=[{"name": "tmp", "mount_path": "/tmp"}])],
                                     [{"name": "tmp", "empty_dir": {"size_limit": "256Mi"}}], runtime),
                },
            },
            opts=in_ns,
        )
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=meta(spec.name),
            spec={"type": "ClusterIP", "selector": {AGENT_LABEL: spec.name, **app},
                  "ports": [{"name": "serve", "port": spec.port, "target_port": spec.port, "protocol": "TCP"}]},
            opts=in_ns,
        )
        gateway = gateway_namespace if (spec.entrypoint or spec.untrusted_input) else None
        self.network_policies = [
            k8s.networking.v1.NetworkPolicy(f"{name}-{policy}", metadata=meta(policy), spec=body, opts=in_ns)
            for policy, body in network_policies(spec, callees, callers, gateway,
                                                 proxy.port if spec.egress and proxy else None, to_aws)
        ]
        self.register_outputs({"namespace": ns})

    def _proxy(self, name: str, spec: AgentSpec, proxy: ProxySpec, meta: Any, opts: pulumi.ResourceOptions,
               runtime: str | None) -> None:
        app = {"app.kubernetes.io/name": PROXY}
        config = k8s.core.v1.ConfigMap(f"{name}-proxy-config", metadata=meta(f"{PROXY}-config"),
                                       data={"squid.conf": squid_config(spec.egress, proxy.port)}, opts=opts)
        probe = {"tcp_socket": {"port": proxy.port}}
        # its own service account: the proxy gets none of the agent's AWS role or Vault login
        account = k8s.core.v1.ServiceAccount(f"{name}-proxy-service-account", metadata=meta(PROXY),
                                             automount_service_account_token=False, opts=opts)
        scratch = ["/var/spool/squid", "/var/log/squid", "/var/run/squid", "/tmp"]
        self.proxy = k8s.apps.v1.Deployment(
            f"{name}-proxy",
            metadata=meta(PROXY, **app),
            spec={
                "replicas": 1,
                "selector": {"match_labels": app},
                "template": {
                    "metadata": {"labels": {**app, "app.kubernetes.io/managed-by": "hardstack"}},
                    "spec": pod_spec(
                        [hardened_container(PROXY, self.image(proxy.image), proxy.port, probe,
                                            args=["-N", "-f", "/etc/squid/squid.conf"],
                                            volume_mounts=[{"name": "config", "mount_path": "/etc/squid",
                                                            "read_only": True}]
                                            + [{"name": f"scratch-{i}", "mount_path": p} for i, p in enumerate(scratch)])],
                        [{"name": "config", "config_map": {"name": f"{PROXY}-config"}}]
                        + [{"name": f"scratch-{i}", "empty_dir": {"size_limit": "128Mi"}} for i in range(len(scratch))],
                        runtime, service_account=PROXY),
                },
            },
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[config, account])),
        )
        k8s.core.v1.Service(
            f"{name}-proxy-service",
            metadata=meta(PROXY),
            spec={"type": "ClusterIP", "selector": app,
                  "ports": [{"name": "proxy", "port": proxy.port, "target_port": proxy.port, "protocol": "TCP"}]},
            opts=opts,
        )
