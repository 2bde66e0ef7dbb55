"""A Blueprint assembled into hardstack components: the program `pulumi up` runs and the gate judges."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

from hardstack.blueprints.base import Classification
from hardstack.blueprints.blueprint import Blueprint
from hardstack.blueprints.data import ACCESS_LOG_BUCKET

if TYPE_CHECKING:
    from hardstack.blueprints.loader import LoadedBlueprint


@dataclass
class Environment:
    """Handles on what the program built, for users who add their own resources next to it."""

    keys: dict[str, object] = field(default_factory=dict)
    buckets: dict[str, object] = field(default_factory=dict)
    network: object | None = None
    cluster: object | None = None
    gpu_pools: dict[str, object] = field(default_factory=dict)
    tenants: dict[str, object] = field(default_factory=dict)
    boundary: object | None = None
    personas: object | None = None
    workload_roles: dict[str, object] = field(default_factory=dict)
    jit: object | None = None
    vault: object | None = None
    agents: dict[str, object] = field(default_factory=dict)
    system_nodes: object | None = None
    registry: object | None = None
    admission: object | None = None
    load_balancer_controller: object | None = None
    endpoint_logs: object | None = None
    endpoints: dict[str, object] = field(default_factory=dict)
    audit: object | None = None
    detection: object | None = None
    monitoring: object | None = None


CLUSTER_INTERFACE_ENDPOINTS = ("ec2", "eks", "eks-auth", "elasticloadbalancing", "autoscaling", "s3")
"""What private EKS nodes reach besides the required endpoints: node bootstrap, auth, load balancers, scaling;
and S3 for pods, which reach it through its interface endpoint (their NetworkPolicies allow the endpoints tier,
not S3's public addresses)."""


_declared: list[LoadedBlueprint] | None = None


def declare_exceptions(loaded: LoadedBlueprint) -> None:
    """Declare a loaded blueprint's or stack file's exceptions to the gate judging this program.

    A Pulumi project built from a stack file calls this so that `hardstack check DIR` applies the exceptions
    declared there (with their file and line), as `hardstack check stack.yaml` does. Outside the gate (under
    `pulumi up`) it does nothing."""
    if _declared is not None and all(loaded is not seen for seen in _declared):
        _declared.append(loaded)


@contextlib.contextmanager
def collect_declared() -> Iterator[list[LoadedBlueprint]]:
    """What the program run inside declares through `declare_exceptions`, in order."""
    global _declared
    previous, _declared = _declared, []
    try:
        yield _declared
    finally:
        _declared = previous


def build(bp: Blueprint) -> Environment:
    """Create every component the blueprint declares (must run inside a Pulumi program)."""
    from hardstack.modules.identity import PermissionsBoundary
    from hardstack.modules.kms import CustomerManagedKey
    from hardstack.modules.network import SegmentedVpc
    from hardstack.modules.storage import AccessLogBucket, EncryptedBucket

    env = Environment()
    tags = dict(bp.tags)
    logs_key = CustomerManagedKey(
        "logs",
        bp.kms,
        description=f"{bp.name}: flow logs, server access logs and other log data",
        via_services=("logs", "s3", *(("sns",) if bp.monitoring is not None and bp.monitoring.routes else ())),
        service_principals=("logs", "s3-access-logging"),
        tags=tags,
    )
    env.keys["logs"] = logs_key
    env.boundary = boundary = PermissionsBoundary("boundary", tags=tags)
    env.network = SegmentedVpc(
        "network",
        bp.network,
        logs_key,
        boundary=boundary.arn,
        classification=bp.classification,
        endpoints=bp.endpoints,
        extra_interface_endpoints=(CLUSTER_INTERFACE_ENDPOINTS + (("sns",) if bp.monitoring and bp.monitoring.routes
                                                                  else ())) if bp.compute else (),
        tags=tags,
    )
    if bp.compute:
        _compute(bp, env, tags)

    # every stack has buckets whose access is logged: the audit trail's, data buckets, load balancer logs
    access_logs = AccessLogBucket(ACCESS_LOG_BUCKET, logs_key, retention_days=bp.data.access_log_days, tags=tags)
    env.buckets[ACCESS_LOG_BUCKET] = access_logs
    classes = sorted(
        {b.effective_classification(bp.classification) for b in bp.data.buckets}, key=lambda c: c.rank
    )
    for cls in classes:
        env.keys[f"data-{cls.value}"] = CustomerManagedKey(
            f"data-{cls.value}",
            bp.kms,
            description=f"{bp.name}: {cls.value} data at rest",
            via_services=("s3",),
            tags=tags,
        )
    for spec in bp.data.buckets:
        cls: Classification = spec.effective_classification(bp.classification)
        env.buckets[spec.name] = EncryptedBucket(
            spec.name,
            spec,
            env.keys[f"data-{cls.value}"],  # type: ignore[arg-type]
            classification=bp.classification,
            access_logs=access_logs,
            tags=tags,
        )
    _identity(bp, env, tags)
    _supply_chain(bp, env, tags)
    _agents(bp, env, tags)
    _endpoints(bp, env, tags)
    _operations(bp, env, tags)
    return env


def _operations(bp: Blueprint, env: Environment, tags: dict[str, str]) -> None:
    from hardstack.modules.audit import AuditTrail, ThreatDetection
    from hardstack.modules.monitoring import ModelMonitoring

    env.audit = AuditTrail("audit", bp.audit, kms=bp.kms, buckets={b.name: env.buckets[b.name] for b in bp.data.buckets},  # type: ignore[misc]
                           access_logs=env.buckets.get(ACCESS_LOG_BUCKET), boundary=env.boundary, tags=tags)
    if bp.audit.detectors == "create":
        env.detection = ThreatDetection("detection", bp.audit, tags=tags)
    if bp.monitoring is not None and env.cluster is not None:
        env.monitoring = ModelMonitoring(
            "monitoring", bp.monitoring, env.cluster, env.keys["logs"], boundary=env.boundary,  # type: ignore[arg-type]
            endpoints=env.endpoints, tenants=bp.compute.tenants if bp.compute else [], tags=tags)


def _supply_chain(bp: Blueprint, env: Environment, tags: dict[str, str]) -> None:
    from hardstack.modules.admission import ImageAdmission
    from hardstack.modules.charts import platform_images
    from hardstack.modules.kms import CustomerManagedKey
    from hardstack.modules.registry import SignedRegistry

    if bp.registry is None:
        return
    key = CustomerManagedKey("registry", bp.kms, description=f"{bp.name}: container images at rest",
                             via_services=("ecr",), tags=tags)
    env.keys["registry"] = key
    env.registry = registry = SignedRegistry(
        "registry", bp.registry, key, boundary=env.boundary.arn,  # type: ignore[attr-defined]
        ecr_endpoint_id=env.network.interface_endpoints["ecr.dkr"].id,  # type: ignore[attr-defined]
        mirrors=platform_images(load_balancer_controller=bool(bp.endpoints)) if bp.compute else (), tags=tags)
    if env.cluster is None:
        registry.allow_pulls([])
        return
    env.admission = ImageAdmission("admission", env.cluster, registry, boundary=env.boundary, tags=tags)  # type: ignore[arg-type]
    nodes = [env.system_nodes, *env.gpu_pools.values()]
    for pool in nodes:
        registry.grant_pull_through(pool.role)  # type: ignore[attr-defined]
    registry.allow_pulls([p.role.arn for p in nodes]  # type: ignore[attr-defined]
                         + [w.role.arn for w in env.workload_roles.values()]  # type: ignore[attr-defined]
                         + [env.admission.role.arn])  # type: ignore[attr-defined]


def _endpoints(bp: Blueprint, env: Environment, tags: dict[str, str]) -> None:
    import pulumi

    from hardstack.modules.endpoint import EndpointLogs, LoadBalancerController, WafEndpoint

    if not bp.endpoints:
        return
    env.load_balancer_controller = controller = LoadBalancerController(
        "lb-controller", env.cluster, env.network, boundary=env.boundary, registry=env.registry, tags=tags)  # type: ignore[arg-type]
    env.endpoint_logs = logs = EndpointLogs("endpoint-logs", access_logs=env.buckets.get(ACCESS_LOG_BUCKET),  # type: ignore[arg-type]
                                            tags=tags)
    for spec in bp.endpoints:
        env.endpoints[spec.name] = WafEndpoint(
            f"endpoint-{spec.name}", spec, env.network, env.cluster, env.keys["logs"],  # type: ignore[arg-type]
            logs=logs, controller=controller, tags=tags,
            opts=pulumi.ResourceOptions(depends_on=[env.tenants[spec.tenant]]))  # type: ignore[list-item]


def _identity(bp: Blueprint, env: Environment, tags: dict[str, str]) -> None:
    from hardstack.modules.base import account_and_partition
    from hardstack.modules.identity import JustInTimeRoles, PersonaRoles, WorkloadRole
    from hardstack.modules.tenancy import TENANT_SERVICE_ACCOUNT
    from hardstack.modules.vault import VaultJitAccess

    data = {b.name: env.buckets[b.name] for b in bp.data.buckets}
    cluster = env.cluster
    log_groups = [env.network.flow_log_group] + ([cluster.log_group] if cluster else [])  # type: ignore[attr-defined]
    env.personas = PersonaRoles("personas", bp.identity, env.boundary, buckets=data, cluster=cluster,  # type: ignore[arg-type]
                                log_groups=log_groups, tags=tags)
    tenants = bp.compute.tenants if bp.compute else []
    for tenant in tenants:
        env.workload_roles[tenant.name] = WorkloadRole(
            f"tenant-{tenant.name}-workload", env.boundary, cluster, namespace=tenant.name,  # type: ignore[arg-type]
            service_account=TENANT_SERVICE_ACCOUNT, buckets=data, reads=tenant.reads, writes=tenant.writes, tags=tags)
    if bp.identity.vault is None:
        return
    if cluster is not None:
        env.jit = JustInTimeRoles("jit", bp.identity, env.boundary, cluster, tenants=tenants, tags=tags)  # type: ignore[arg-type]
    env.vault = VaultJitAccess("vault", bp.identity.vault, bp.identity, region=account_and_partition()[2],
                               tenants=tenants, jit=env.jit, cluster=cluster)  # type: ignore[arg-type]


def _agents(bp: Blueprint, env: Environment, tags: dict[str, str]) -> None:
    from hardstack.modules.agents import Agent

    ports = {a.name: a.port for a in bp.agents}
    data = {b.name: env.buckets[b.name] for b in bp.data.buckets}
    for agent in bp.agents:
        env.agents[agent.name] = Agent(
            f"agent-{agent.name}",
            agent,
            env.cluster,  # type: ignore[arg-type]
            env.boundary,  # type: ignore[arg-type]
            buckets={r: data[r] for r in agent.reads if r in data},
            callees={c: ports[c] for c in agent.calls},
            callers=[a.name for a in bp.agents if agent.name in a.calls],
            gateway_namespace=bp.compute.cluster.inference_gateway_namespace,  # type: ignore[union-attr]
            proxy=bp.agent_egress_proxy,
            aws=env.network.aws_access,  # type: ignore[attr-defined]
            vault=env.vault,
            registry=env.registry,
            tags=tags,
        )


def _compute(bp: Blueprint, env: Environment, tags: dict[str, str]) -> None:
    from hardstack.modules.cluster import EksCluster
    from hardstack.modules.gpu import GpuNodePool
    from hardstack.modules.nodes import SystemNodePool
    from hardstack.modules.kms import CustomerManagedKey
    from hardstack.modules.tenancy import TenantNamespace

    assert bp.compute is not None
    key = CustomerManagedKey(
        "compute",
        bp.kms,
        description=f"{bp.name}: EKS secrets and GPU node volumes",
        via_services=("eks", "ec2"),
        service_principals=("autoscaling",),
        tags=tags,
    )
    env.keys["compute"] = key
    cluster = EksCluster("cluster", bp.compute.cluster, env.network, key, env.keys["logs"],  # type: ignore[arg-type]
                         boundary=env.boundary.arn, tags=tags)  # type: ignore[attr-defined]  # type: ignore[arg-type]
    env.cluster = cluster
    env.system_nodes = SystemNodePool("system", bp.compute.cluster.system_nodes, cluster, env.network, key, tags=tags)  # type: ignore[arg-type]
    for pool in bp.compute.gpu_pools:
        env.gpu_pools[pool.name] = GpuNodePool(f"gpu-{pool.name}", pool, cluster, env.network, key, tags=tags)  # type: ignore[arg-type]
    for tenant in bp.compute.tenants:
        env.tenants[tenant.name] = TenantNamespace(
            f"tenant-{tenant.name}", tenant, cluster, gateway_namespace=bp.compute.cluster.inference_gateway_namespace,
            aws=env.network.aws_access,  # type: ignore[attr-defined]
        )
