"""The EKS cluster, its GPU node pools and the tenants that share it."""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from .base import Name, Spec, duplicates

KubernetesVersion = Annotated[str, StringConstraints(pattern=r"^1\.(2[5-9]|3[0-7])$")]
AddonVersion = Annotated[str, StringConstraints(pattern=r"^v\d+\.\d+\.\d+-eksbuild\.\d+$")]
InstanceType = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*\.[0-9a-z]+$")]

GPU_INSTANCE_FAMILIES = ("g4dn", "g5", "g6", "g6e", "gr6", "p3", "p4d", "p4de", "p5", "p5e", "p5en", "p6-b200")
"""x86_64 NVIDIA instance families (the NVIDIA images hardstack uses are x86_64)."""
MIG_INSTANCE_FAMILIES = ("p4d", "p4de", "p5", "p5e", "p5en", "p6-b200")
"""Families whose GPUs (A100, H100, H200, B200) can be partitioned with MIG."""
RESERVED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class AddonVersions(Spec):
    """Managed add-ons, each pinned to an exact version: upgrades are explicit changes, never drift."""

    vpc_cni: AddonVersion = "v1.19.5-eksbuild.3"
    """Amazon VPC CNI; network policy enforcement is always on."""

    coredns: AddonVersion = "v1.11.4-eksbuild.14"
    """Cluster DNS."""

    kube_proxy: AddonVersion = "v1.33.0-eksbuild.2"
    """Service proxy."""

    ebs_csi_driver: AddonVersion = "v1.44.0-eksbuild.1"
    """EBS CSI driver; the default StorageClass encrypts volumes with the stack's CMK."""

    pod_identity_agent: AddonVersion = "v1.3.7-eksbuild.2"
    """EKS Pod Identity agent: one IAM role per workload, no node-wide credentials."""


class SystemNodesSpec(Spec):
    """The cluster's CPU node group, hardened like the GPU nodes: cluster services (DNS, admission control, the
    load balancer controller) and CPU-only workloads such as agents run here; GPU nodes stay tainted for GPU work."""

    instance_types: list[InstanceType] = ["m7i.large"]
    """CPU instance types."""

    min_size: int = Field(2, ge=2, le=20)
    """Smallest node count (two or more, so that admission control survives losing a node)."""

    max_size: int = Field(4, ge=2, le=20)
    """Largest node count."""

    disk_gib: int = Field(50, ge=20, le=1024)
    """Root volume size (encrypted with the stack's CMK)."""

    @model_validator(mode="after")
    def _sizes(self) -> "SystemNodesSpec":
        if self.min_size > self.max_size:
            raise ValueError(f"min_size ({self.min_size}) is larger than max_size ({self.max_size})")
        return self


class ClusterSpec(Spec):
    """A hardened EKS cluster: private API endpoint, envelope-encrypted secrets, every control-plane log kept."""

    kubernetes_version: KubernetesVersion = "1.33"
    """Pinned Kubernetes minor version; manifests are validated against its OpenAPI schema."""

    public_access_cidrs: list[IPv4Network] = []
    """Empty: the API endpoint is private only. Set: it is also public, but only from these CIDRs
    (0.0.0.0/0 and any block wider than /16 are refused)."""

    log_retention_days: int = Field(365, ge=365, le=3653)
    """Control-plane logs (api, audit, authenticator, controllerManager, scheduler) are kept this many days."""

    addons: AddonVersions = AddonVersions()
    """Pinned managed add-ons."""

    system_nodes: SystemNodesSpec = SystemNodesSpec()
    """The system node group."""

    sandbox_runtime: Literal["none", "gvisor", "kata"] = "none"
    """Also offer a sandboxed RuntimeClass (`sandboxed`) for untrusted workloads; nodes must provide it."""

    inference_gateway_namespace: Name = "inference-gateway"
    """The namespace of the inference gateway, the only one allowed to reach tenants' pods."""

    @field_validator("public_access_cidrs")
    @classmethod
    def _narrow(cls, v: list[IPv4Network]) -> list[IPv4Network]:
        wide = [str(c) for c in v if c.prefixlen < 16]
        if wide:
            raise ValueError(f"public API access from {wide} is too wide; allowed: blocks of /16 or narrower")
        return v


class GpuPoolSpec(Spec):
    """A managed node group of NVIDIA GPU nodes, tainted so that only GPU workloads of its tenants land there."""

    name: Name
    """Logical name of the pool."""

    tenants: list[Name] = Field(min_length=1)
    """Tenants whose workloads may run here. A `dedicated` pool has exactly one."""

    isolation: Literal["dedicated", "mig", "time-slicing"] = "dedicated"
    """`dedicated`: whole GPUs, nodes of one tenant only. `mig`: hardware-partitioned GPUs (a partition is never
    shared). `time-slicing`: GPU memory is shared between processes, so the gate refuses it for a pool that more
    than one tenant can use."""

    mig_profile: Annotated[str, StringConstraints(pattern=r"^all-[0-9]g\.[0-9]+gb$|^all-balanced$")] | None = None
    """The GPU operator's MIG profile for `mig` pools, e.g. `all-1g.10gb`."""

    time_slicing_replicas: int | None = Field(None, ge=2, le=16)
    """Processes per GPU for `time-slicing` pools."""

    tier: Literal["inference", "training"] = "inference"
    """The network tier whose private subnets the nodes use."""

    instance_types: list[InstanceType] = ["g5.2xlarge"]
    """GPU instance types."""

    ami: Literal["al2023-nvidia", "bottlerocket-nvidia"] = "al2023-nvidia"
    """NVIDIA GPU image: Amazon Linux 2023 NVIDIA or Bottlerocket NVIDIA."""

    min_size: int = Field(0, ge=0)
    """Smallest node count; 0 lets the pool scale to zero."""

    max_size: int = Field(2, ge=1, le=100)
    """Largest node count."""

    disk_gib: int = Field(200, ge=50, le=16384)
    """Root volume size (encrypted with the stack's CMK)."""

    @field_validator("instance_types")
    @classmethod
    def _gpu_only(cls, v: list[str]) -> list[str]:
        bad = [t for t in v if t.split(".")[0] not in GPU_INSTANCE_FAMILIES]
        if bad:
            raise ValueError(f"{bad} are not NVIDIA GPU instance types; allowed families: {', '.join(GPU_INSTANCE_FAMILIES)}")
        return v

    @model_validator(mode="after")
    def _isolation_settings(self) -> "GpuPoolSpec":
        if self.isolation == "dedicated" and len(self.tenants) != 1:
            raise ValueError(f"a dedicated pool belongs to exactly one tenant, got {self.tenants}")
        if self.isolation == "mig" and not self.mig_profile:
            raise ValueError("a mig pool needs mig_profile, e.g. all-1g.10gb")
        if self.isolation == "mig":
            no_mig = [t for t in self.instance_types if t.split(".")[0] not in MIG_INSTANCE_FAMILIES]
            if no_mig:
                raise ValueError(f"{no_mig} have no MIG-capable GPUs; allowed families: {', '.join(MIG_INSTANCE_FAMILIES)}")
        if self.isolation != "mig" and self.mig_profile:
            raise ValueError("mig_profile is only for isolation: mig")
        if self.isolation == "time-slicing" and not self.time_slicing_replicas:
            raise ValueError("a time-slicing pool needs time_slicing_replicas")
        if self.isolation != "time-slicing" and self.time_slicing_replicas:
            raise ValueError("time_slicing_replicas is only for isolation: time-slicing")
        if self.min_size > self.max_size:
            raise ValueError(f"min_size ({self.min_size}) is larger than max_size ({self.max_size})")
        return self


class TenantSpec(Spec):
    """A team sharing the cluster: its own namespace, default-deny network, quotas and persona roles."""

    name: Name
    """The tenant's name; also its namespace."""

    gpus: int = Field(0, ge=0, le=1024)
    """GPUs the tenant may request at once (`requests.nvidia.com/gpu` quota); 0: none."""

    cpu: Annotated[str, StringConstraints(pattern=r"^\d+m?$")] = "32"
    """CPU the tenant may request at once."""

    memory: Annotated[str, StringConstraints(pattern=r"^\d+(Mi|Gi|Ti)$")] = "128Gi"
    """Memory the tenant may request at once."""

    groups: dict[Literal["data-scientist", "mlops-engineer", "inference-client"], str] = {}
    """Identity-provider group bound to each persona role. Unset: `<tenant>:<persona>`."""

    reads: list[Name] = []
    """Buckets the tenant's workloads may read (through their Pod Identity role). Unset: none."""

    writes: list[Name] = []
    """Buckets the tenant's workloads may write. Unset: none."""


class ComputeSpec(Spec):
    """GPU compute: one EKS cluster, its GPU pools and tenants. Absent: no cluster."""

    cluster: ClusterSpec = ClusterSpec()
    """The cluster."""

    gpu_pools: list[GpuPoolSpec] = []
    """GPU node pools."""

    tenants: list[TenantSpec] = []
    """Tenants; every pool's tenants must be declared here."""

    @model_validator(mode="after")
    def _consistent(self) -> "ComputeSpec":
        for kind, names in (("GPU pool", [p.name for p in self.gpu_pools]), ("tenant", [t.name for t in self.tenants])):
            dupes = duplicates(names)
            if dupes:
                raise ValueError(f"duplicate {kind} names {dupes}; allowed: each name once")
        declared = {t.name for t in self.tenants}
        for pool in self.gpu_pools:
            unknown = sorted(set(pool.tenants) - declared)
            if unknown:
                raise ValueError(f"GPU pool {pool.name!r} names undeclared tenants {unknown}; declared: {sorted(declared)}")
        reserved = sorted(declared & {*RESERVED_NAMESPACES, self.cluster.inference_gateway_namespace})
        if reserved:
            raise ValueError(f"tenant names {reserved} are system or gateway namespaces; choose other names")
        return self
