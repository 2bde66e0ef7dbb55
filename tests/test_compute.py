"""GPU compute: the EKS cluster, its GPU node pools and the tenants sharing it.

Every test asserts the security property itself (and what it is wired from), so removing the property from
`modules/cluster.py`, `modules/gpu.py`, `modules/tenancy.py`, `modules/iam.py`, `stacks/program.py` or the
validation in `blueprints/compute.py` makes a test here fail.
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from hardstack.blueprints.compute import AddonVersions, ClusterSpec, ComputeSpec, GpuPoolSpec
from hardstack.blueprints.loader import load
from hardstack.stacks.inventory import Inventory, Resource
from hardstack.stacks.mocks import ACCOUNT_ID
from hardstack.stacks.targets import synth_loaded, synth_target

from .helpers import policy, ref_attr

STACK = "multi-tenant-gpu"
CLUSTER = "aws:eks/cluster:Cluster"
ADDON = "aws:eks/addon:Addon"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
RUNTIME_CLASS = "kubernetes:node.k8s.io/v1:RuntimeClass"
NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
ROLE_K8S = "kubernetes:rbac.authorization.k8s.io/v1:Role"
ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"

CONTROL_PLANE_LOGS = {"api", "audit", "authenticator", "controllerManager", "scheduler"}
PERSONAS = ("data-scientist", "mlops-engineer", "inference-client")
TENANT_GPUS = {"research": 8, "search": 4, "fraud": 2}
"""multi-tenant-gpu's tenants and their GPU quotas."""
POOLS = {"research-a100": ("training", "research"), "search-l4": ("inference", "search"),
         "shared-mig": ("inference", None)}
"""multi-tenant-gpu's pools: tier and single tenant (None: shared)."""
ADDONS = {
    "vpc-cni": "vpc_cni",
    "coredns": "coredns",
    "kube-proxy": "kube_proxy",
    "aws-ebs-csi-driver": "ebs_csi_driver",
    "eks-pod-identity-agent": "pod_identity_agent",
}
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}


@pytest.fixture(scope="module")
def inv() -> Inventory:
    """The shipped `multi-tenant-gpu` blueprint, synthesized once for this module."""
    return synth_target(STACK)


REGISTRY = {"repositories": ["models"], "ci": {
    "oidc_provider_arn": "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com",
    "subjects": ["repo:example-org/ml-images:ref:refs/heads/main"]}}
"""A cluster admits only images signed into the stack's registry, so every blueprint with compute declares one."""


def minimal(name: str, compute: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "region": "us-east-1", "classification": "confidential", "compute": compute,
            "registry": REGISTRY}


CUSTOM = minimal(
    "custom-gpu",
    {
        "cluster": {"public_access_cidrs": ["203.0.113.0/24"], "inference_gateway_namespace": "edge-gw"},
        "tenants": [{"name": "alpha", "gpus": 3, "groups": {"data-scientist": "okta:alpha-ds"}}],
        "gpu_pools": [{"name": "rocket", "tenants": ["alpha"], "ami": "bottlerocket-nvidia",
                       "instance_types": ["g6.xlarge"], "tier": "training"}],
    },
)
"""An ad-hoc blueprint: public endpoint from one CIDR, Bottlerocket, a group override, a renamed gateway, no
sandbox runtime."""


@pytest.fixture(scope="module")
def custom(tmp_path_factory: pytest.TempPathFactory) -> Inventory:
    """CUSTOM synthesized once (written as YAML first, as a user would)."""
    path: Path = tmp_path_factory.mktemp("bp") / "custom-gpu.yaml"
    path.write_text(yaml.safe_dump(CUSTOM))
    return synth_loaded(load(path))


def urn_of(inv: Inventory, name: str) -> str:
    return inv.named(name).urn


def cluster(inv: Inventory) -> Resource:
    found = inv.of_type(CLUSTER)
    assert len(found) == 1
    return found[0]


def subnet_name(urn: str) -> str:
    return urn.rsplit("::", 1)[1]


# --- EKS cluster -------------------------------------------------------------------------------------------


def test_api_endpoint_is_private_only(inv: Inventory) -> None:
    """The API endpoint is reachable privately and not from the internet by default."""
    vpc = cluster(inv).inputs["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True
    assert vpc["endpointPublicAccess"] is False
    assert not vpc.get("publicAccessCidrs")


def test_public_endpoint_only_from_declared_cidrs(custom: Inventory) -> None:
    """Declaring public_access_cidrs opens the public endpoint from exactly those CIDRs (never 0.0.0.0/0)."""
    vpc = cluster(custom).inputs["vpcConfig"]
    assert vpc["endpointPublicAccess"] is True
    assert vpc["endpointPrivateAccess"] is True
    assert vpc["publicAccessCidrs"] == ["203.0.113.0/24"]


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "10.0.0.0/8", "100.64.0.0/15"])
def test_wide_public_cidrs_are_refused(cidr: str) -> None:
    """Public API access from the whole internet or any block wider than /16 fails validation."""
    with pytest.raises(ValidationError, match="too wide"):
        ClusterSpec(public_access_cidrs=[cidr])
    with pytest.raises(ValidationError):
        ComputeSpec.model_validate({"cluster": {"public_access_cidrs": ["203.0.113.0/24", cidr]}})


def test_secrets_envelope_encrypted_with_compute_key(inv: Inventory) -> None:
    """Kubernetes secrets are envelope-encrypted with the stack's compute CMK (wired to its arn)."""
    eks = cluster(inv)
    enc = eks.inputs["encryptionConfig"]
    assert enc["resources"] == ["secrets"]
    assert ref_attr(eks, "encryptionConfig", "provider", "keyArn") == (urn_of(inv, "compute-key"), "arn")
    assert enc["provider"]["keyArn"] == inv.named("compute-key").outputs["arn"]


def test_all_control_plane_logs_to_encrypted_log_group(inv: Inventory) -> None:
    """All five control-plane log types are enabled, into a logs-CMK-encrypted group kept at least a year."""
    eks = cluster(inv)
    assert set(eks.inputs["enabledClusterLogTypes"]) == CONTROL_PLANE_LOGS
    group = [g for g in inv.of_type(LOG_GROUP) if g.inputs.get("name") == f"/aws/eks/{eks.inputs['name']}/cluster"]
    assert len(group) == 1, "no log group where EKS writes this cluster's control-plane logs"
    assert ref_attr(group[0], "kmsKeyId") == (urn_of(inv, "logs-key"), "arn")
    assert group[0].inputs["retentionInDays"] >= 365


def test_kubernetes_version_pinned(inv: Inventory) -> None:
    """The cluster runs the pinned Kubernetes minor version."""
    assert cluster(inv).inputs["version"] == "1.33"
    assert ClusterSpec().kubernetes_version == "1.33"


def test_authentication_by_access_entries_only(inv: Inventory) -> None:
    """Authentication uses access entries only (no aws-auth ConfigMap) and the creator gets no implicit admin."""
    access = cluster(inv).inputs["accessConfig"]
    assert access["authenticationMode"] == "API"
    assert access["bootstrapClusterCreatorAdminPermissions"] is False


def test_cluster_uses_only_inference_and_training_subnets(inv: Inventory) -> None:
    """The control plane's ENIs go only into the private inference and training tiers."""
    eks = cluster(inv)
    subnets = eks.inputs["vpcConfig"]["subnetIds"]
    assert subnets
    names = {subnet_name(ref_attr(eks, "vpcConfig", "subnetIds", i)[0]) for i in range(len(subnets))}
    assert all(re.fullmatch(r"network-(inference|training)-\d+", n) for n in names), names
    assert {n.rsplit("-", 1)[0] for n in names} == {"network-inference", "network-training"}
    for i in range(len(subnets)):
        assert ref_attr(eks, "vpcConfig", "subnetIds", i)[1] == "id"


# --- add-ons -----------------------------------------------------------------------------------------------


def addons(inv: Inventory) -> dict[str, Resource]:
    return {a.inputs["addonName"]: a for a in inv.of_type(ADDON)}


def test_addons_pinned_to_exact_versions(inv: Inventory) -> None:
    """Each managed add-on is installed at the exact version pinned in AddonVersions, on this cluster."""
    found = addons(inv)
    assert set(found) == set(ADDONS)
    pinned = AddonVersions()
    for addon, field in ADDONS.items():
        assert found[addon].inputs["addonVersion"] == getattr(pinned, field), addon
        assert ref_attr(found[addon], "clusterName") == (cluster(inv).urn, "name")


def test_vpc_cni_enforces_network_policy(inv: Inventory) -> None:
    """The VPC CNI has network policy enforcement on, so tenants' NetworkPolicies take effect."""
    values = json.loads(addons(inv)["vpc-cni"].inputs["configurationValues"])
    assert values["enableNetworkPolicy"] == "true"


@pytest.mark.parametrize("addon,service_account,role_name", [
    ("vpc-cni", "aws-node", "cluster-vpc-cni-role"),
    ("aws-ebs-csi-driver", "ebs-csi-controller-sa", "cluster-ebs-csi-role"),
])
def test_addon_pod_identity_roles(inv: Inventory, addon: str, service_account: str, role_name: str) -> None:
    """The VPC CNI and EBS CSI get their own Pod Identity role, assumable only by EKS Pod Identity in this account."""
    a = addons(inv)[addon]
    assoc = a.inputs["podIdentityAssociations"]
    assert len(assoc) == 1 and assoc[0]["serviceAccount"] == service_account
    assert ref_attr(a, "podIdentityAssociations", 0, "roleArn") == (urn_of(inv, role_name), "arn")
    trust = policy(inv.named(role_name), "assumeRolePolicy")["Statement"]
    assert len(trust) == 1
    assert trust[0]["Effect"] == "Allow"
    assert trust[0]["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert trust[0]["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}


def test_addon_roles_are_distinct(inv: Inventory) -> None:
    """The two add-on roles are separate (neither add-on gets the other's permissions) and not the node role."""
    found = addons(inv)
    cni = ref_attr(found["vpc-cni"], "podIdentityAssociations", 0, "roleArn")[0]
    ebs = ref_attr(found["aws-ebs-csi-driver"], "podIdentityAssociations", 0, "roleArn")[0]
    assert cni != ebs
    node_roles = {r.urn for r in inv.of_type(ROLE) if r.name.endswith("-node-role")}
    assert not {cni, ebs} & node_roles


def test_ebs_csi_kms_policy_scoped_to_compute_key_via_ec2(inv: Inventory) -> None:
    """The EBS CSI role may use only the compute key, only through EC2; grants only for AWS resources."""
    p = inv.named("cluster-ebs-csi-cmk")
    assert ref_attr(p, "role") == (urn_of(inv, "cluster-ebs-csi-role"), "id")
    key_arn = inv.named("compute-key").outputs["arn"]
    sts = policy(p)["Statement"]
    assert sts
    for st in sts:
        assert st["Effect"] == "Allow"
        assert st["Resource"] == key_arn
        assert st["Condition"]["StringEquals"]["kms:ViaService"] == "ec2.us-east-1.amazonaws.com"
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        assert not any("*" in a for a in actions)
        if "kms:CreateGrant" in actions:
            assert actions == ["kms:CreateGrant"]
            assert st["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
    assert any("kms:CreateGrant" in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
               for st in sts)


# --- storage and runtime classes ---------------------------------------------------------------------------


def test_default_storage_class_encrypts_with_compute_key(inv: Inventory) -> None:
    """The default StorageClass creates EBS volumes encrypted with the compute CMK."""
    classes = inv.of_type(STORAGE_CLASS)
    default = [c for c in classes
               if c.get("metadata", "annotations", "storageclass.kubernetes.io/is-default-class") == "true"]
    assert len(default) == 1
    sc = default[0]
    assert sc.inputs["parameters"]["encrypted"] == "true"
    assert sc.inputs["parameters"]["kmsKeyId"] == inv.named("compute-key").outputs["arn"]
    assert ref_attr(sc, "parameters", "kmsKeyId") == (urn_of(inv, "compute-key"), "arn")


def runtime_classes(inv: Inventory) -> dict[str, Resource]:
    return {r.inputs["metadata"]["name"]: r for r in inv.of_type(RUNTIME_CLASS)}


def test_nvidia_runtime_class_only_on_gpu_nodes(inv: Inventory) -> None:
    """The `nvidia` RuntimeClass schedules only onto GPU-labelled nodes and tolerates the GPU taint."""
    sched = runtime_classes(inv)["nvidia"].inputs["scheduling"]
    assert sched["nodeSelector"] == {"hardstack.io/gpu": "true"}
    tol = sched["tolerations"]
    assert len(tol) == 1
    assert tol[0]["key"] == "nvidia.com/gpu" and tol[0]["effect"] == "NoSchedule"
    assert tol[0]["operator"] == "Exists" or tol[0].get("value") == "true"


def test_sandboxed_runtime_class(inv: Inventory, custom: Inventory) -> None:
    """sandbox_runtime gvisor offers a `sandboxed` RuntimeClass with handler runsc; `none` offers none."""
    rc = runtime_classes(inv)
    assert rc["sandboxed"].inputs["handler"] == "runsc"
    assert "sandboxed" not in runtime_classes(custom)


# --- GPU pools ---------------------------------------------------------------------------------------------


def pool_resources(inv: Inventory, pool: str) -> tuple[Resource, Resource]:
    return inv.named(f"gpu-{pool}-nodes", NODE_GROUP), inv.named(f"gpu-{pool}-launch-template", LAUNCH_TEMPLATE)


def of_gpu_pools(inv: Inventory, type_token: str) -> list[Resource]:
    """Resources of a type that GPU pools created (the system nodes, tested in test_nodes.py, are not GPU nodes)."""
    pools = {r.urn for r in inv if r.type == "hardstack:gpu:GpuNodePool"}
    return [r for r in inv.of_type(type_token) if r.parent in pools]


def test_every_pool_declared(inv: Inventory) -> None:
    """Each declared pool becomes exactly one node group with its own launch template."""
    assert {n.inputs["nodeGroupName"] for n in of_gpu_pools(inv, NODE_GROUP)} == {f"gpu-{p}" for p in POOLS}
    assert len(of_gpu_pools(inv, LAUNCH_TEMPLATE)) == len(POOLS)
    assert {n.inputs["nodeGroupName"] for n in inv.of_type(NODE_GROUP)} == {f"gpu-{p}" for p in POOLS} | {"system"}


def test_every_node_group_has_gpu_taint(inv: Inventory) -> None:
    """Every GPU node is tainted nvidia.com/gpu=true:NoSchedule, so non-GPU pods never land there."""
    groups = of_gpu_pools(inv, NODE_GROUP)
    assert groups
    for ng in groups:
        assert GPU_TAINT in ng.inputs["taints"], ng.name
        assert ng.inputs["labels"]["hardstack.io/gpu"] == "true"


@pytest.mark.parametrize("pool", [p for p, (_, t) in POOLS.items() if t])
def test_single_tenant_pool_tainted_and_labelled(inv: Inventory, pool: str) -> None:
    """A pool of one tenant carries that tenant's NoSchedule taint and label: other tenants' pods stay off."""
    tenant = POOLS[pool][1]
    ng, _ = pool_resources(inv, pool)
    assert {"key": "hardstack.io/tenant", "value": tenant, "effect": "NO_SCHEDULE"} in ng.inputs["taints"]
    assert ng.inputs["labels"]["hardstack.io/tenant"] == tenant
    assert len(ng.inputs["taints"]) == 2


def test_shared_mig_pool(inv: Inventory) -> None:
    """The shared MIG pool has no tenant taint or label but the GPU operator's MIG profile label."""
    ng, _ = pool_resources(inv, "shared-mig")
    assert ng.inputs["taints"] == [GPU_TAINT]
    assert "hardstack.io/tenant" not in ng.inputs["labels"]
    assert ng.inputs["labels"]["nvidia.com/mig.config"] == "all-1g.10gb"


@pytest.mark.parametrize("pool", list(POOLS))
def test_node_group_uses_its_own_launch_template(inv: Inventory, pool: str) -> None:
    """The node group is created from its own hardened launch template."""
    ng, lt = pool_resources(inv, pool)
    assert ref_attr(ng, "launchTemplate", "id") == (lt.urn, "id")
    assert ng.inputs["launchTemplate"]["id"] == lt.outputs["id"]


@pytest.mark.parametrize("pool", list(POOLS))
def test_launch_template_requires_imdsv2_hop_limit_1(inv: Inventory, pool: str) -> None:
    """IMDSv2 is required with a hop limit of 1: pods cannot reach the node's credentials."""
    _, lt = pool_resources(inv, pool)
    md = lt.inputs["metadataOptions"]
    assert md["httpTokens"] == "required"
    assert md["httpPutResponseHopLimit"] == 1
    assert md["httpEndpoint"] == "enabled"


@pytest.mark.parametrize("pool", list(POOLS))
def test_launch_template_disks_encrypted_no_ssh_no_userdata(inv: Inventory, pool: str) -> None:
    """Every block device is encrypted with the compute CMK; no SSH key and no user data."""
    _, lt = pool_resources(inv, pool)
    devices = lt.inputs["blockDeviceMappings"]
    assert devices
    for i, d in enumerate(devices):
        assert str(d["ebs"]["encrypted"]).lower() == "true"
        assert ref_attr(lt, "blockDeviceMappings", i, "ebs", "kmsKeyId") == (urn_of(inv, "compute-key"), "arn")
    assert not lt.inputs.get("keyName")
    assert not lt.inputs.get("userData")


def test_bottlerocket_pool_encrypts_both_volumes(custom: Inventory) -> None:
    """A Bottlerocket pool uses the NVIDIA Bottlerocket image and encrypts both its OS and data volumes."""
    ng, lt = pool_resources(custom, "rocket")
    assert ng.inputs["amiType"] == "BOTTLEROCKET_x86_64_NVIDIA"
    devices = lt.inputs["blockDeviceMappings"]
    assert {d["deviceName"] for d in devices} == {"/dev/xvda", "/dev/xvdb"}
    for i, d in enumerate(devices):
        assert str(d["ebs"]["encrypted"]).lower() == "true"
        assert ref_attr(lt, "blockDeviceMappings", i, "ebs", "kmsKeyId") == (urn_of(custom, "compute-key"), "arn")


@pytest.mark.parametrize("pool", list(POOLS))
def test_node_group_in_its_tier_subnets_only(inv: Inventory, pool: str) -> None:
    """Nodes use only the private subnets of the pool's declared tier."""
    tier = POOLS[pool][0]
    ng, _ = pool_resources(inv, pool)
    subnets = ng.inputs["subnetIds"]
    assert subnets
    for i in range(len(subnets)):
        urn, attr = ref_attr(ng, "subnetIds", i)
        assert attr == "id"
        assert re.fullmatch(rf"network-{tier}-\d+", subnet_name(urn)), subnet_name(urn)


@pytest.mark.parametrize("pool", list(POOLS))
def test_node_group_image_scaling_no_remote_access(inv: Inventory, pool: str) -> None:
    """NVIDIA AL2023 image, may scale to zero, no SSH remote access."""
    ng, _ = pool_resources(inv, pool)
    assert ng.inputs["amiType"] == "AL2023_x86_64_NVIDIA"
    assert ng.inputs["scalingConfig"]["minSize"] == 0
    assert not ng.inputs.get("remoteAccess")
    assert ref_attr(ng, "clusterName") == (cluster(inv).urn, "name")


@pytest.mark.parametrize("pool", list(POOLS))
def test_node_role_trust_and_policies(inv: Inventory, pool: str) -> None:
    """The node role is assumable only by EC2 in this account and has exactly the worker and ECR pull policies."""
    ng, _ = pool_resources(inv, pool)
    role_urn, attr = ref_attr(ng, "nodeRoleArn")
    assert attr == "arn"
    role = inv[role_urn]
    trust = policy(role, "assumeRolePolicy")["Statement"]
    assert len(trust) == 1
    assert trust[0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    assert trust[0]["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}
    attached = [a for a in inv.of_type(ATTACHMENT) if any(r.resource == role_urn for r in a.references)]
    assert sorted(a.inputs["policyArn"] for a in attached) == [
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    ]
    inline = [r for r in inv.of_type("aws:iam/rolePolicy:RolePolicy") if r.refs_to(role_urn)]
    assert not inline


@pytest.fixture(scope="module")
def environment() -> Any:
    """The Environment built from multi-tenant-gpu (its component objects), under mocks."""
    from hardstack.stacks.targets import synth_loaded

    box: dict[str, Any] = {}
    synth_loaded(load(STACK), on_built=lambda env: box.update(env=env))
    return box["env"]


@pytest.mark.parametrize("pool", list(POOLS))
def test_pool_scheduling_tolerates_taints_and_requires_pool(inv: Inventory, environment: Any, pool: str) -> None:
    """GpuNodePool.scheduling() tolerates every taint of the node group and requires the pool's nodes."""
    sched = environment.gpu_pools[pool].scheduling()
    ng, _ = pool_resources(inv, pool)
    effect = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}
    for taint in ng.inputs["taints"]:
        assert any(
            t["key"] == taint["key"] and t["effect"] == effect[taint["effect"]]
            and (t["operator"] == "Exists" or (t["operator"] == "Equal" and t["value"] == taint["value"]))
            for t in sched["tolerations"]
        ), taint
    terms = sched["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms
    label = ng.inputs["labels"]["hardstack.io/pool"]
    for term in terms:
        assert {"key": "hardstack.io/pool", "operator": "In", "values": [label]} in term["matchExpressions"]


# --- spec validation ---------------------------------------------------------------------------------------


def test_dedicated_pool_with_two_tenants_refused() -> None:
    """A dedicated pool cannot be shared by two tenants (one tenant is fine)."""
    GpuPoolSpec(name="pool", tenants=["alpha"], isolation="dedicated")
    with pytest.raises(ValidationError, match="exactly one tenant"):
        GpuPoolSpec(name="pool", tenants=["alpha", "beta"], isolation="dedicated")


def test_mig_pool_without_profile_refused() -> None:
    """A MIG pool must name its MIG profile."""
    GpuPoolSpec(name="pool", tenants=["alpha", "beta"], isolation="mig", mig_profile="all-1g.10gb",
                instance_types=["p4d.24xlarge"])
    with pytest.raises(ValidationError, match="mig_profile"):
        GpuPoolSpec(name="pool", tenants=["alpha", "beta"], isolation="mig", instance_types=["p4d.24xlarge"])
    with pytest.raises(ValidationError, match="no MIG-capable GPUs"):
        GpuPoolSpec(name="pool", tenants=["alpha"], isolation="mig", mig_profile="all-1g.10gb",
                    instance_types=["g6.2xlarge"])


def test_non_gpu_instance_type_refused() -> None:
    """GPU pools accept only NVIDIA GPU instance types."""
    with pytest.raises(ValidationError, match="not NVIDIA GPU"):
        GpuPoolSpec(name="pool", tenants=["alpha"], instance_types=["m5.large"])
    with pytest.raises(ValidationError, match="not NVIDIA GPU"):
        GpuPoolSpec(name="pool", tenants=["alpha"], instance_types=["g5.2xlarge", "m5.large"])


def test_pool_with_undeclared_tenant_refused() -> None:
    """Every tenant a pool names must be declared."""
    ComputeSpec.model_validate({"tenants": [{"name": "alpha"}], "gpu_pools": [{"name": "pool", "tenants": ["alpha"]}]})
    with pytest.raises(ValidationError, match="undeclared"):
        ComputeSpec.model_validate({"tenants": [{"name": "alpha"}],
                                    "gpu_pools": [{"name": "pool", "tenants": ["ghost"]}]})


def test_duplicate_tenant_names_refused() -> None:
    """A tenant name may appear only once."""
    with pytest.raises(ValidationError, match="duplicate tenant"):
        ComputeSpec.model_validate({"tenants": [{"name": "alpha"}, {"name": "alpha", "gpus": 1}]})


# --- tenants -----------------------------------------------------------------------------------------------


def tenant_res(inv: Inventory, tenant: str, type_token: str, name: str) -> Resource:
    found = [r for r in inv.of_type(type_token)
             if r.get("metadata", "name") == name and r.get("metadata", "namespace") == tenant]
    assert len(found) == 1, (tenant, type_token, name, len(found))
    return found[0]


@pytest.mark.parametrize("tenant", list(TENANT_GPUS))
def test_namespace_enforces_restricted_pss(inv: Inventory, tenant: str) -> None:
    """The tenant namespace enforces, audits and warns on the `restricted` Pod Security Standard."""
    ns = [n for n in inv.of_type(NAMESPACE) if n.get("metadata", "name") == tenant]
    assert len(ns) == 1
    labels = ns[0].inputs["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


@pytest.mark.parametrize("tenant", list(TENANT_GPUS))
def test_default_deny_all(inv: Inventory, tenant: str) -> None:
    """A policy selecting every pod denies all ingress and egress by default."""
    spec = tenant_res(inv, tenant, NETWORK_POLICY, "default-deny-all").inputs["spec"]
    assert spec["podSelector"] == {}
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert not spec.get("ingress")
    assert not spec.get("egress")


@pytest.mark.parametrize("tenant", list(TENANT_GPUS))
def test_allow_dns_only_to_kube_dns(inv: Inventory, tenant: str) -> None:
    """The DNS exception allows egress only to kube-dns in kube-system on port 53, and no ingress."""
    spec = tenant_res(inv, tenant, NETWORK_POLICY, "allow-dns").inputs["spec"]
    assert spec["policyTypes"] == ["Egress"]
    assert not spec.get("ingress")
    assert spec["egress"]
    for rule in spec["egress"]:
        assert rule["to"]
        for peer in rule["to"]:
            assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}
            assert peer["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
            assert "ipBlock" not in peer
        assert rule["ports"]
        assert {p["port"] for p in rule["ports"]} == {53}


@pytest.mark.parametrize("tenant", list(TENANT_GPUS))
def test_allow_inference_gateway_only_from_gateway_namespace(inv: Inventory, tenant: str) -> None:
    """Ingress from outside the namespace is allowed only from the inference gateway's namespace."""
    spec = tenant_res(inv, tenant, NETWORK_POLICY, "allow-inference-gateway").inputs["spec"]
    assert spec["policyTypes"] == ["Ingress"]
    assert not spec.get("egress")
    peers = [peer for rule in spec["ingress"] for peer in rule["from"]]
    assert peers == [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": ClusterSpec().inference_gateway_namespace}}}]


def test_gateway_namespace_follows_spec(custom: Inventory) -> None:
    """The allowed gateway namespace is the one declared in cluster.inference_gateway_namespace."""
    spec = tenant_res(custom, "alpha", NETWORK_POLICY, "allow-inference-gateway").inputs["spec"]
    peers = [peer for rule in spec["ingress"] for peer in rule["from"]]
    assert peers == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "edge-gw"}}}]


@pytest.mark.parametrize("tenant", list(TENANT_GPUS))
def test_gpu_quota_and_limit_range(inv: Inventory, tenant: str) -> None:
    """The tenant's quota caps GPU requests at its declared GPUs; container defaults come from a LimitRange."""
    hard = tenant_res(inv, tenant, "kubernetes:core/v1:ResourceQuota", "tenant-quota").inputs["spec"]["hard"]
    assert hard["requests.nvidia.com/gpu"] == str(TENANT_GPUS[tenant])
    ranges = [r for r in inv.of_type("kubernetes:core/v1:LimitRange") if r.get("metadata", "namespace") == tenant]
    assert len(ranges) == 1
    assert ranges[0].inputs["spec"]["limits"]


def test_gpu_quota_follows_spec(custom: Inventory) -> None:
    """The GPU quota is the tenant's declared `gpus`."""
    hard = tenant_res(custom, "alpha", "kubernetes:core/v1:ResourceQuota", "tenant-quota").inputs["spec"]["hard"]
    assert hard["requests.nvidia.com/gpu"] == "3"


@pytest.mark.parametrize("tenant", list(TENANT_GPUS))
def test_service_accounts_do_not_mount_tokens(inv: Inventory, tenant: str) -> None:
    """Neither the namespace's default service account nor the workload one mounts an API token."""
    default = tenant_res(inv, tenant, "kubernetes:core/v1:ServiceAccountPatch", "default")
    assert default.inputs["automountServiceAccountToken"] is False
    workload = tenant_res(inv, tenant, "kubernetes:core/v1:ServiceAccount", "workload")
    assert workload.inputs["automountServiceAccountToken"] is False


@pytest.mark.parametrize("tenant", list(TENANT_GPUS))
def test_persona_roles_least_privilege(inv: Inventory, tenant: str) -> None:
    """Persona roles name their verbs, resources and API groups (never `*`) and never grant secrets."""
    roles = [r for r in inv.of_type(ROLE_K8S) if r.get("metadata", "namespace") == tenant]
    assert {r.inputs["metadata"]["name"] for r in roles} == set(PERSONAS)
    for role in roles:
        assert role.inputs["rules"]
        for rule in role.inputs["rules"]:
            for key in ("verbs", "resources", "apiGroups"):
                assert rule[key], (role.name, key)
                assert not any("*" in v for v in rule[key]), (role.name, key, rule[key])
            assert not any(r == "secrets" or r.startswith("secrets/") for r in rule["resources"]), role.name
    # the one cluster-wide binding is Vault's token reviewer, which may only review tokens
    cluster_bindings = inv.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding")
    assert [b.inputs["roleRef"]["name"] for b in cluster_bindings] == ["system:auth-delegator"]
    assert [s["kind"] for b in cluster_bindings for s in b.inputs["subjects"]] == ["ServiceAccount"]


@pytest.mark.parametrize("tenant", list(TENANT_GPUS))
def test_role_bindings_to_persona_groups(inv: Inventory, tenant: str) -> None:
    """Each persona role is bound, in its namespace, only to the group `<tenant>:<persona>`."""
    for persona in PERSONAS:
        rb = tenant_res(inv, tenant, ROLE_BINDING, persona)
        assert rb.inputs["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": persona}
        assert rb.inputs["subjects"] == [
            {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": f"{tenant}:{persona}"}]


def test_role_binding_group_override(custom: Inventory) -> None:
    """A declared group override replaces the default group for that persona only."""
    subjects = {p: tenant_res(custom, "alpha", ROLE_BINDING, p).inputs["subjects"] for p in PERSONAS}
    assert [s["name"] for s in subjects["data-scientist"]] == ["okta:alpha-ds"]
    assert [s["name"] for s in subjects["mlops-engineer"]] == ["alpha:mlops-engineer"]
    assert [s["name"] for s in subjects["inference-client"]] == ["alpha:inference-client"]


# --- tags --------------------------------------------------------------------------------------------------

UNTAGGABLE = {"aws:iam/rolePolicy:RolePolicy", ATTACHMENT}
"""IAM inline policies and attachments have no tags in AWS."""


def test_cluster_and_pool_aws_resources_tagged(inv: Inventory) -> None:
    """Every taggable AWS resource of the cluster and pool components carries stack and component tags."""
    components = {r.urn: r.name for r in inv
                  if r.type in ("hardstack:cluster:EksCluster", "hardstack:gpu:GpuNodePool")}
    assert len(components) == 1 + len(POOLS)
    checked = 0
    for r in inv:
        if r.parent in components and r.type.startswith("aws:") and r.type not in UNTAGGABLE:
            tags = r.inputs.get("tags") or {}
            assert tags.get("hardstack:stack") == STACK, r.name
            assert tags.get("hardstack:component") == components[r.parent], r.name
            checked += 1
    assert checked >= 10


@pytest.mark.parametrize("tenant", list(TENANT_GPUS))
def test_tenant_workloads_reach_aws_only_inside_the_vpc(inv: Inventory, tenant: str) -> None:
    """Behind default deny, a tenant's pods reach AWS (for their Pod Identity role) only through the endpoints
    tier on 443 and the node's Pod Identity agent: no public address, no other port."""
    spec = tenant_res(inv, tenant, NETWORK_POLICY, "allow-aws").inputs["spec"]
    assert spec["policyTypes"] == ["Egress"] and not spec.get("ingress")
    rules = {(peer["ipBlock"]["cidr"], tuple((p["protocol"], p["port"]) for p in rule["ports"]))
             for rule in spec["egress"] for peer in rule["to"]}
    (endpoints,) = [cidr for cidr, ports in rules if ports == (("TCP", 443),)]
    assert rules == {(endpoints, (("TCP", 443),)), ("169.254.170.23/32", (("TCP", 80),))}
    subnets = {s.inputs["cidrBlock"] for s in inv.of_type("aws:ec2/subnet:Subnet")
               if s.inputs["tags"].get("hardstack:tier") == "endpoints"}
    assert subnets and all(ipaddress.ip_network(s).subnet_of(ipaddress.ip_network(endpoints)) for s in subnets)
