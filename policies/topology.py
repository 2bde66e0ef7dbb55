"""What a synthesized stack is made of, read from its inventory for the architecture picture: the VPC's tiers
and subnets and the flows its network ACLs and routes allow (network_paths), the EKS cluster with its GPU pools,
system nodes and namespaces, the data buckets and their keys, who is granted which bucket, Vault, endpoints,
registries and agents.

Everything here is derived from resources, their inputs and the references between them, never from the
blueprint, so that a user's own Pulumi program gets the same picture. Values are user data: they are returned
as found, and escaped where they are drawn.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

from hardstack.blueprints.agents import AGENT_LABEL, ANNOTATIONS
from hardstack.stacks.inventory import Inventory, Resource

from .network_paths import Flow, Network, flows_of, networks_of, ref

EKS = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
SYSTEM_LABEL = "hardstack.io/system"
ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"
POD_IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
BUCKET = "aws:s3/bucket:Bucket"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
BUCKET_LOGGING = "aws:s3/bucketLogging:BucketLogging"
KMS_KEY = "aws:kms/key:Key"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
NAMESPACE = "kubernetes:core/v1:Namespace"
QUOTA = "kubernetes:core/v1:ResourceQuota"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
LOAD_BALANCER_ALB = "aws:alb/loadBalancer:LoadBalancer"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
WEB_ACL_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
ECR_REPOSITORY = "aws:ecr/repository:Repository"
SIGNING_PROFILE = "aws:signer/signingProfile:SigningProfile"
VAULT_AWS_ROLE = "vault:aws/secretBackendRole:SecretBackendRole"
VAULT_MFA = "vault:identity/mfaLoginEnforcement:MfaLoginEnforcement"
VAULT_K8S_ROLE = "vault:kubernetes/authBackendRole:AuthBackendRole"

READ_ACTIONS = ("s3:Get", "s3:List")
WRITE_ACTIONS = ("s3:Put", "s3:Delete", "s3:Abort", "s3:Restore")


@dataclass
class Pool:
    urn: str
    name: str
    isolation: str  # as configured on the nodes: time-slicing, mig, or the declared isolation
    tenants: tuple[str, ...]  # as declared (tags)
    tenant_taint: str | None  # the tenant whose NoSchedule taint the nodes carry: only it can schedule there
    instance_types: tuple[str, ...]
    max_size: Any
    tiers: set[tuple[str, str]]  # (network URN, tier)


@dataclass
class SystemNodes:
    """CPU nodes for cluster services and CPU workloads (labelled hardstack.io/system=true), not a GPU pool."""

    urn: str
    name: str
    instance_types: tuple[str, ...]
    max_size: Any
    tiers: set[tuple[str, str]]  # (network URN, tier)


@dataclass
class Namespace:
    urn: str
    name: str
    tenant: str | None
    agent: str | None
    legs: dict[str, tuple[str, ...]]
    gpu_quota: str | None = None


@dataclass
class Cluster:
    urn: str
    name: str
    version: str
    private: bool
    secrets_key: str | None  # KMS key URN
    tiers: set[tuple[str, str]]
    pools: list[Pool] = field(default_factory=list)
    namespaces: list[Namespace] = field(default_factory=list)
    system_nodes: list[SystemNodes] = field(default_factory=list)


@dataclass
class Bucket:
    urn: str
    name: str
    purpose: str | None
    classification: str | None
    object_lock: bool
    key: str | None  # KMS key URN
    logs_to: str | None  # bucket URN


@dataclass
class Key:
    urn: str
    name: str
    rotation: bool


@dataclass(frozen=True)
class Grant:
    role: str  # role URN
    bucket: str  # bucket URN
    access: str  # read | write | read, write | denied


@dataclass
class Endpoint:
    urn: str
    name: str
    internet_facing: bool
    tiers: set[tuple[str, str]]
    web_acls: list[str]  # WebAcl URNs


@dataclass
class Topology:
    networks: list[Network]
    flows: list[Flow]
    clusters: list[Cluster]
    buckets: list[Bucket]
    keys: dict[str, Key]
    grants: list[Grant]
    pod_identities: list[tuple[str, str]]  # (namespace name, role URN)
    access_entries: list[tuple[str, str]]  # (role URN, cluster URN)
    vault: list[Resource]
    vault_mfa: set[str]  # URNs of Vault auth methods with login MFA enforced
    vault_credentials: list[tuple[str, str, str]]  # (Vault AWS secrets engine URN, its role's name, IAM role URN)
    vault_logins: list[tuple[str, str, str]]  # (Vault Kubernetes auth method URN, its role's name, namespace)
    endpoints: list[Endpoint]
    web_acls: list[Resource]
    registries: list[Resource]
    signing_profiles: list[Resource]
    roles: dict[str, Resource]

    @property
    def namespaces(self) -> list[Namespace]:
        return [ns for c in self.clusters for ns in c.namespaces]

    @property
    def pools(self) -> list[Pool]:
        return [p for c in self.clusters for p in c.pools]

    @property
    def agents(self) -> list[Namespace]:
        return [ns for ns in self.namespaces if ns.agent]


def read(inventory: Inventory) -> Topology:
    networks, tier_of = networks_of(inventory)
    clusters = _clusters(inventory, tier_of)
    grants = _grants(inventory)
    roles = {g.role for g in grants}
    pod_identities = []
    for pia in inventory.of_type(POD_IDENTITY):
        role = ref(pia, "roleArn")
        if role and pia.get("namespace"):
            pod_identities.append((str(pia.get("namespace")), role))
            roles.add(role)
    access_entries = []
    for entry in inventory.of_type(ACCESS_ENTRY):
        role, cluster = ref(entry, "principalArn"), ref(entry, "clusterName")
        if role and cluster:
            access_entries.append((role, cluster))
            roles.add(role)
    vault_credentials = []
    for vault_role in inventory.of_type(VAULT_AWS_ROLE):
        for link in vault_role.references:
            if link.path[:1] == ("roleArns",):
                engine = ref(vault_role, "backend") or vault_role.urn
                vault_credentials.append((engine, str(vault_role.get("name") or vault_role.name), link.resource))
                roles.add(link.resource)
    known = {r.urn: r for r in inventory}
    vault_logins = [(ref(r, "backend") or r.urn, str(r.get("roleName") or r.name), str(ns))
                    for r in inventory.of_type(VAULT_K8S_ROLE)
                    for ns in r.get("boundServiceAccountNamespaces", default=[]) or []]
    mfa = {link.resource for m in inventory.of_type(VAULT_MFA) for link in m.references
           if link.path[:1] == ("authMethodAccessors",)}
    return Topology(
        networks=networks,
        flows=flows_of(inventory, networks, tier_of),
        clusters=clusters,
        buckets=_buckets(inventory),
        keys={k.urn: Key(k.urn, k.name, bool(k.get("enableKeyRotation"))) for k in inventory.of_type(KMS_KEY)},
        grants=grants,
        pod_identities=pod_identities,
        access_entries=access_entries,
        vault=[r for r in inventory if r.type.startswith("vault:")],
        vault_mfa=mfa,
        vault_credentials=vault_credentials,
        vault_logins=vault_logins,
        endpoints=_endpoints(inventory, tier_of),
        web_acls=inventory.of_type(WEB_ACL),
        registries=inventory.of_type(ECR_REPOSITORY),
        signing_profiles=inventory.of_type(SIGNING_PROFILE),
        roles={urn: known[urn] for urn in sorted(roles) if urn in known and known[urn].type == ROLE},
    )


# --- cluster -------------------------------------------------------------------------------------------------

def _clusters(inventory: Inventory, tier_of: dict[str, tuple[str, str]]) -> list[Cluster]:
    clusters = {}
    for c in inventory.of_type(EKS):
        vpc = c.get("vpcConfig") or {}
        clusters[c.urn] = Cluster(
            c.urn, c.name, str(c.get("version", default="") or ""), not bool(vpc.get("endpointPublicAccess")),
            ref(c, "encryptionConfig", "provider", "keyArn"),
            {tier_of[r.resource] for r in c.references if r.path[:2] == ("vpcConfig", "subnetIds")
             and r.resource in tier_of})
    for ng in inventory.of_type(NODE_GROUP):
        cluster = clusters.get(ref(ng, "clusterName") or "")
        if cluster is None:
            continue
        labels, tags = ng.get("labels") or {}, ng.get("tags") or {}
        instance_types = tuple(str(t) for t in ng.get("instanceTypes", default=[]) or [])
        tiers = {tier_of[r.resource] for r in ng.references if r.path[:1] == ("subnetIds",) and r.resource in tier_of}
        if labels.get(SYSTEM_LABEL) == "true":
            cluster.system_nodes.append(SystemNodes(ng.urn, str(ng.get("nodeGroupName") or ng.name), instance_types,
                                                    ng.get("scalingConfig", "maxSize"), tiers))
            continue
        tenants = str(tags.get("hardstack:tenants") or labels.get("hardstack.io/tenant") or "")
        taint = next((str(t.get("value")) for t in ng.get("taints", default=[]) or []
                      if isinstance(t, dict) and t.get("key") == "hardstack.io/tenant"
                      and t.get("effect") == "NO_SCHEDULE"), None)
        cluster.pools.append(Pool(
            ng.urn, str(labels.get("hardstack.io/pool") or ng.get("nodeGroupName") or ng.name), _isolation(ng),
            tuple(t for t in tenants.replace(",", " ").split() if t), taint,
            instance_types, ng.get("scalingConfig", "maxSize"), tiers))
    quotas = {}
    for q in inventory.of_type(QUOTA):
        hard = q.get("spec", "hard") or {}
        if "requests.nvidia.com/gpu" in hard:
            quotas[str(q.get("metadata", "namespace"))] = str(hard["requests.nvidia.com/gpu"])
    only = next(iter(clusters.values())) if len(clusters) == 1 else None
    for ns in inventory.of_type(NAMESPACE):
        meta = ns.get("metadata") or {}
        labels, notes = meta.get("labels") or {}, meta.get("annotations") or {}
        tenant, agent = labels.get("hardstack.io/tenant"), labels.get(AGENT_LABEL)
        if only is None or not (tenant or agent):
            continue  # namespaces of a cluster this stack holds, made by hardstack's tenancy or agents
        name = str(meta.get("name") or ns.name)
        legs = {key: tuple(x for x in str(notes.get(a, "")).split(",") if x) for key, a in ANNOTATIONS.items()}
        only.namespaces.append(Namespace(ns.urn, name, tenant and str(tenant), agent and str(agent), legs,
                                         quotas.get(name)))
    for c in clusters.values():
        c.pools.sort(key=lambda p: p.name)
        c.namespaces.sort(key=lambda n: n.name)
    return sorted(clusters.values(), key=lambda c: c.name)


def _isolation(ng: Resource) -> str:
    """How the nodes share their GPUs, read from what configures it (the NVIDIA device plugin's and MIG manager's
    node labels), else the isolation hardstack declared, else whole GPUs per pod."""
    labels, tags = ng.get("labels") or {}, ng.get("tags") or {}
    if str(labels.get("nvidia.com/device-plugin.config") or "").startswith("time-slicing"):
        return "time-slicing"
    if labels.get("nvidia.com/mig.config"):
        return "mig"
    return str(labels.get("hardstack.io/gpu-isolation") or tags.get("hardstack:gpu-isolation") or "whole GPUs")


# --- data and identity ---------------------------------------------------------------------------------------

def _buckets(inventory: Inventory) -> list[Bucket]:
    keys: dict[str, str] = {}
    for sse in inventory.of_type(SSE):
        bucket = ref(sse, "bucket")
        key = next((r.resource for r in sse.references if r.path[-1:] == ("kmsMasterKeyId",)), None)
        if bucket and key:
            keys[bucket] = key
    logs = {ref(x, "bucket"): ref(x, "targetBucket") for x in inventory.of_type(BUCKET_LOGGING)}
    out = []
    for b in inventory.of_type(BUCKET):
        tags = b.get("tags") or {}
        out.append(Bucket(b.urn, b.name, tags.get("hardstack:purpose"), tags.get("hardstack:classification"),
                          bool(b.get("objectLockEnabled")), keys.get(b.urn), logs.get(b.urn)))
    return sorted(out, key=lambda b: b.name)


def _grants(inventory: Inventory) -> list[Grant]:
    """Which role may read or write which bucket, from the role policies that name the bucket's ARN."""
    buckets = {b.urn: b for b in inventory.of_type(BUCKET)}
    grants = set()
    for rp in inventory.of_type(ROLE_POLICY):
        role = ref(rp, "role")
        named = sorted({r.resource for r in rp.references if r.path[:1] == ("policy",) and r.resource in buckets})
        if not role or not named:
            continue
        statements = _statements(rp.get("policy"))
        for bucket in named:
            arn = str(buckets[bucket].outputs.get("arn") or "")
            about = [s for s in statements if not arn or arn in json.dumps(s.get("Resource", ""))] or statements
            grants.add(Grant(role, bucket, _access(about)))
    return sorted(grants, key=lambda g: (g.role, g.bucket))


def _statements(policy: Any) -> list[dict[str, Any]]:
    try:
        doc = json.loads(policy) if isinstance(policy, str) else policy
        found = doc.get("Statement", [])
    except (ValueError, AttributeError):
        return []
    return [s for s in (found if isinstance(found, list) else [found]) if isinstance(s, dict)]


def _access(statements: Iterable[dict[str, Any]]) -> str:
    actions: set[str] = set()
    allowed = False
    for s in statements:
        if s.get("Effect") != "Allow":
            continue
        allowed = True
        listed = s.get("Action", [])
        actions |= set(listed if isinstance(listed, list) else [listed])
    if not allowed:
        return "denied"
    kinds = [k for k, prefixes in (("read", READ_ACTIONS), ("write", WRITE_ACTIONS))
             if any(str(a).startswith(prefixes) or a in ("*", "s3:*") for a in actions)]
    return ", ".join(kinds) or "access"


def _endpoints(inventory: Inventory, tier_of: dict[str, tuple[str, str]]) -> list[Endpoint]:
    lbs = inventory.of_type(LOAD_BALANCER) + inventory.of_type(LOAD_BALANCER_ALB)
    acls: dict[str, list[str]] = defaultdict(list)
    for assoc in inventory.of_type(WEB_ACL_ASSOCIATION):
        lb, acl = ref(assoc, "resourceArn"), ref(assoc, "webAclArn")
        if lb and acl:
            acls[lb].append(acl)
    return [Endpoint(lb.urn, lb.name, not bool(lb.get("internal")),
                     {tier_of[r.resource] for r in lb.references if r.path[:1] in (("subnets",), ("subnetMappings",))
                      and r.resource in tier_of}, sorted(acls.get(lb.urn, [])))
            for lb in sorted(lbs, key=lambda r: r.name)]
