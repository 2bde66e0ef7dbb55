"""The system node group: CPU nodes for cluster services and agents, hardened like the GPU nodes.

A small program (network, keys, cluster, one GPU pool, the system nodes) is synthesized under mocks; every test
asserts the property on the system node group's own resources and what they are wired from, so removing it from
`modules/nodes.py` makes a test here fail.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from hardstack.blueprints.compute import ClusterSpec, GpuPoolSpec, SystemNodesSpec
from hardstack.blueprints.kms import KmsSpec
from hardstack.blueprints.network import NetworkSpec
from hardstack.modules.nodes import JOIN_ADDONS, NODE_POLICIES
from hardstack.policies.gate import GateReport, run_gate
from hardstack.stacks.inventory import Inventory, Resource
from hardstack.stacks.mocks import ACCOUNT_ID
from hardstack.stacks.synth import run_program

from .gate_helpers import failed, transform_of
from .helpers import policy, ref_attr

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
SUBNET = "aws:ec2/subnet:Subnet"
STACK = "nodes-test"
SIZED = SystemNodesSpec(instance_types=["m7i.xlarge", "m6i.xlarge"], min_size=3, max_size=6, disk_gib=80)


def program(system: SystemNodesSpec, waits: dict[str, Any] | None = None, transform: Any = None) -> Any:
    """Keys, boundary, network, cluster, an inference GPU pool and the system nodes, as stacks/program.py wires
    them. `waits` receives, per node group name, the resources it was told to wait for (and the cluster); `transform`
    (a Pulumi transform) weakens what the program builds."""

    def run() -> None:
        import pulumi

        from hardstack.modules.cluster import EksCluster
        from hardstack.modules.gpu import GpuNodePool
        from hardstack.modules.identity import PermissionsBoundary
        from hardstack.modules.kms import CustomerManagedKey
        from hardstack.modules.network import SegmentedVpc
        from hardstack.modules.nodes import SystemNodePool

        if waits is not None:
            def record(args: Any) -> None:
                if args.type_ == NODE_GROUP:
                    waits[args.name] = list(args.opts.depends_on or [])

            pulumi.runtime.register_stack_transformation(record)
        if transform is not None:
            pulumi.runtime.register_resource_transform(transform)
        logs = CustomerManagedKey("logs", KmsSpec(), description="logs", via_services=("logs",),
                                  service_principals=("logs",))
        key = CustomerManagedKey("compute", KmsSpec(), description="compute", via_services=("eks", "ec2"),
                                 service_principals=("autoscaling",))
        boundary = PermissionsBoundary("boundary")
        network = SegmentedVpc("network", NetworkSpec(), logs, boundary=boundary.arn,
                               extra_interface_endpoints=("ec2", "eks", "eks-auth", "autoscaling"))
        cluster = EksCluster("cluster", ClusterSpec(), network, key, logs, boundary=boundary.arn)
        if waits is not None:
            waits["cluster"] = cluster
        SystemNodePool("system", system, cluster, network, key, tags={"team": "platform"})
        GpuNodePool("gpu-serve", GpuPoolSpec(name="serve", tenants=["alpha"]), cluster, network, key)

    return run


def synth(system: SystemNodesSpec, waits: dict[str, Any] | None = None, transform: Any = None) -> Inventory:
    return run_program(program(system, waits, transform), project=STACK, stack="dev", region="us-east-1")


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return synth(SystemNodesSpec())


@pytest.fixture(scope="module")
def sized() -> Inventory:
    return synth(SIZED)


def node_group(inv: Inventory) -> Resource:
    return inv.named("system-nodes", NODE_GROUP)


def launch_template(inv: Inventory) -> Resource:
    return inv.named("system-launch-template", LAUNCH_TEMPLATE)


# --- the component ---------------------------------------------------------------------------------------------


def test_component_and_child_names(inv: Inventory) -> None:
    """One SystemNodePool whose children are named from it: the node role, launch template and node group."""
    (component,) = [r for r in inv if r.type == "hardstack:nodes:SystemNodePool"]
    assert component.name == "system"
    children = {r.name for r in inv.children(component.urn)}
    assert {"system-node-role", "system-launch-template", "system-nodes"} <= children
    assert node_group(inv).inputs["nodeGroupName"] == "system"
    assert ref_attr(node_group(inv), "clusterName") == (inv.named("cluster-eks").urn, "name")


def test_node_group_uses_this_launch_template(inv: Inventory) -> None:
    """The node group is created from its own launch template (its id and latest version)."""
    ng, lt = node_group(inv), launch_template(inv)
    assert ref_attr(ng, "launchTemplate", "id") == (lt.urn, "id")
    assert ng.inputs["launchTemplate"]["id"] == lt.outputs["id"]
    assert ng.inputs["launchTemplate"]["version"] == str(lt.outputs["latestVersion"])


# --- the launch template ---------------------------------------------------------------------------------------


def test_launch_template_requires_imdsv2_hop_limit_1(inv: Inventory) -> None:
    """IMDSv2 is required with a hop limit of 1: pods on the system nodes cannot take the node role's credentials."""
    md = launch_template(inv).inputs["metadataOptions"]
    assert md["httpEndpoint"] == "enabled"
    assert md["httpTokens"] == "required"
    assert md["httpPutResponseHopLimit"] == 1
    assert md["instanceMetadataTags"] == "disabled"


def test_root_volume_encrypted_with_compute_key(inv: Inventory) -> None:
    """The one (root) volume is encrypted with the compute CMK, wired to its arn, and sized from the spec."""
    lt = launch_template(inv)
    (device,) = lt.inputs["blockDeviceMappings"]
    assert device["deviceName"] == "/dev/xvda"
    assert str(device["ebs"]["encrypted"]).lower() == "true"
    assert ref_attr(lt, "blockDeviceMappings", 0, "ebs", "kmsKeyId") == (inv.named("compute-key").urn, "arn")
    assert device["ebs"]["kmsKeyId"] == inv.named("compute-key").outputs["arn"]
    assert device["ebs"]["volumeSize"] == SystemNodesSpec().disk_gib
    assert device["ebs"]["volumeType"] == "gp3"


def test_no_ssh_no_user_data_no_public_interface(inv: Inventory) -> None:
    """No SSH key, no user data, no network interface that could ask for a public IP, no remote access."""
    lt = launch_template(inv)
    assert not lt.inputs.get("keyName")
    assert not lt.inputs.get("userData")
    assert not lt.inputs.get("networkInterfaces")
    assert not node_group(inv).inputs.get("remoteAccess")


def test_detailed_monitoring_as_the_gpu_pools(inv: Inventory) -> None:
    """Instances are monitored in detail, as the GPU pools' are."""
    assert launch_template(inv).inputs["monitoring"] == {"enabled": True}
    assert inv.named("gpu-serve-launch-template").inputs["monitoring"] == {"enabled": True}


def test_instances_and_volumes_tagged(inv: Inventory) -> None:
    """Instances and volumes carry the component's tags (stack, component, declared)."""
    lt = launch_template(inv)
    specs = {s["resourceType"]: s["tags"] for s in lt.inputs["tagSpecifications"]}
    assert set(specs) == {"instance", "volume"}
    for tags in [*specs.values(), lt.inputs["tags"], node_group(inv).inputs["tags"]]:
        assert tags["hardstack:component"] == "system"
        assert tags["hardstack:stack"] == "dev"
        assert tags["team"] == "platform"


# --- placement -------------------------------------------------------------------------------------------------


def test_nodes_in_every_private_inference_subnet(inv: Inventory) -> None:
    """The nodes use the inference tier's subnets (one per AZ) and no other: the tier the control plane, the
    inference GPU pools and the load balancers' targets share; none of them assigns public IPs."""
    ng = node_group(inv)
    subnets = ng.inputs["subnetIds"]
    urns = []
    for i in range(len(subnets)):
        urn, attr = ref_attr(ng, "subnetIds", i)
        assert attr == "id"
        urns.append(urn)
    names = sorted(inv[u].name for u in urns)
    inference = sorted(s.name for s in inv.of_type(SUBNET) if s.inputs["tags"]["hardstack:tier"] == "inference")
    assert names == inference and len(names) == NetworkSpec().availability_zones
    assert all(re.fullmatch(r"network-inference-\d+", n) for n in names)
    for urn in urns:
        assert inv[urn].inputs["mapPublicIpOnLaunch"] is False


def test_same_tier_as_the_inference_gpu_pool_and_in_the_cluster(inv: Inventory) -> None:
    """Every system subnet is also a cluster subnet and an inference GPU pool's subnet."""
    def subnets(r: Resource, prop: str, *path: str) -> set[str]:
        return {ref.resource for ref in r.references if ref.path[:len(path) + 1] == (prop, *path)}

    system = subnets(node_group(inv), "subnetIds")
    assert system == subnets(inv.named("gpu-serve-nodes"), "subnetIds")
    assert system <= subnets(inv.named("cluster-eks"), "vpcConfig", "subnetIds")


# --- the image, labels and taints --------------------------------------------------------------------------------


def test_standard_al2023_image_on_demand(inv: Inventory) -> None:
    """Amazon Linux 2023 standard x86_64 (no GPU driver), on-demand capacity."""
    ng = node_group(inv)
    assert ng.inputs["amiType"] == "AL2023_x86_64_STANDARD"
    assert ng.inputs["capacityType"] == "ON_DEMAND"


def test_system_label_and_no_taint(inv: Inventory) -> None:
    """Labelled hardstack.io/system=true and untainted (so CoreDNS and CPU workloads schedule here); none of the
    GPU labels that the nvidia RuntimeClass or GPU pools select."""
    ng = node_group(inv)
    assert ng.inputs["labels"] == {"hardstack.io/system": "true"}
    assert not ng.inputs.get("taints")


# --- sizes -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec_fixture", ["inv", "sized"])
def test_sizes_and_instance_types_from_spec(spec_fixture: str, request: pytest.FixtureRequest) -> None:
    """Instance types, node counts (desired starts at the minimum) and disk size are the spec's."""
    inv: Inventory = request.getfixturevalue(spec_fixture)
    spec = SIZED if spec_fixture == "sized" else SystemNodesSpec()
    ng = node_group(inv)
    assert ng.inputs["instanceTypes"] == spec.instance_types
    assert ng.inputs["scalingConfig"] == {"minSize": spec.min_size, "maxSize": spec.max_size,
                                          "desiredSize": spec.min_size}
    assert ng.inputs["updateConfig"] == {"maxUnavailable": 1}
    assert launch_template(inv).inputs["blockDeviceMappings"][0]["ebs"]["volumeSize"] == spec.disk_gib


def test_at_least_two_nodes() -> None:
    """Admission control must survive losing a node: fewer than two nodes, or min above max, is refused."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        SystemNodesSpec(min_size=1)
    with pytest.raises(ValidationError, match="larger than max_size"):
        SystemNodesSpec(min_size=4, max_size=3)


# --- the node role -----------------------------------------------------------------------------------------------


def test_node_role_trust_policies_and_boundary(inv: Inventory) -> None:
    """The node role is assumable only by EC2 in this account, for an hour at most, under the permission
    boundary, and has exactly the worker and ECR pull policies (no inline grants of its own)."""
    ng = node_group(inv)
    role_urn, attr = ref_attr(ng, "nodeRoleArn")
    assert attr == "arn"
    role = inv[role_urn]
    assert role.name == "system-node-role"
    trust = policy(role, "assumeRolePolicy")["Statement"]
    assert trust == [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": ["sts:AssumeRole"],
                      "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}}]
    assert role.inputs["maxSessionDuration"] == 3600
    assert ref_attr(role, "permissionsBoundary") == (inv.named("boundary-policy").urn, "arn")
    attached = [a for a in inv.of_type(ATTACHMENT) if a.refs_to(role_urn)]
    assert sorted(a.inputs["policyArn"] for a in attached) == sorted(
        f"arn:aws:iam::aws:policy/{p}" for p in NODE_POLICIES)
    assert NODE_POLICIES == ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly")
    assert not [r for r in inv.of_type("aws:iam/rolePolicy:RolePolicy") if r.refs_to(role_urn)]


def test_system_and_gpu_roles_are_distinct(inv: Inventory) -> None:
    """System and GPU nodes have separate roles: a grant to one never reaches the other."""
    assert ref_attr(node_group(inv), "nodeRoleArn")[0] != ref_attr(inv.named("gpu-serve-nodes"), "nodeRoleArn")[0]


# --- ordering ----------------------------------------------------------------------------------------------------


def test_system_nodes_wait_only_for_the_addons_nodes_need() -> None:
    """The system nodes wait for the CNI, kube-proxy and the Pod Identity agent, and not for CoreDNS or the EBS
    CSI controller, which need a node to run on (waiting for them would never end); GPU pools wait for all."""
    waits: dict[str, Any] = {}
    synth(SystemNodesSpec(), waits)
    addons = waits["cluster"].addons
    system, gpu = waits["system-nodes"], waits["gpu-serve-nodes"]
    assert {id(r) for r in system} == {id(addons[a]) for a in JOIN_ADDONS}
    assert set(JOIN_ADDONS) == {"vpc-cni", "kube-proxy", "eks-pod-identity-agent"}
    assert not any(r is addons["coredns"] or r is addons["aws-ebs-csi-driver"] for r in system)
    assert {id(r) for r in gpu} == {id(a) for a in addons.values()}


# --- the gate ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report(inv: Inventory) -> GateReport:
    return run_gate(inv, target=STACK)


def system_results(inv: Inventory, report: GateReport) -> list[Any]:
    ours = {r.urn for r in inv.children(inv.named("system").urn)}
    ours |= {ref.resource for ref in node_group(inv).references if ref.path[:1] == ("subnetIds",)}
    return [r for r in report.results if r.resource in ours]


def test_gate_passes_every_check_on_the_system_nodes(inv: Inventory, report: GateReport) -> None:
    """No check (checkov's or hardstack's) fails on the system node group, its launch template, role or subnets."""
    results = system_results(inv, report)
    assert results
    assert [(r.check_id, r.resource) for r in results if r.status == "failed"] == []


@pytest.mark.parametrize("check_id, resource", [
    ("HS_GPU_001", "system-nodes"),  # CPU nodes: not required to carry the GPU taint
    ("HS_GPU_003", "system-launch-template"),
    ("CKV_AWS_79", "system-launch-template"),
    ("CKV_AWS_341", "system-launch-template"),
    ("HS_GPU_004", "network-inference-1"),
])
def test_node_checks_apply_and_pass(inv: Inventory, report: GateReport, check_id: str, resource: str) -> None:
    """The node checks judge the system node group's own resources, and pass."""
    urn = inv.named(resource).urn
    found = {r.status for r in report.results if r.check_id == check_id and r.resource == urn}
    assert found == {"passed"}, (check_id, resource, found)


def _metadata(**changes: Any) -> Any:
    return lambda p: {**p, "metadataOptions": {**p["metadataOptions"], **changes}}


MUTATIONS = {
    "two-hops": (LAUNCH_TEMPLATE, "system-launch-template", _metadata(httpPutResponseHopLimit=2),
                 {"HS_GPU_003", "CKV_AWS_341"}),
    "imdsv1": (LAUNCH_TEMPLATE, "system-launch-template", _metadata(httpTokens="optional"),
               {"HS_GPU_003", "CKV_AWS_79"}),
    "gpu-instances-untainted": (NODE_GROUP, "system-nodes", lambda p: {**p, "instanceTypes": ["g5.2xlarge"]},
                                {"HS_GPU_001"}),
}
"""Weakening the system nodes (as a user's transform would) makes the gate fail these checks on that resource."""


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_weakened_system_nodes_fail_the_gate(mutation: str) -> None:
    type_token, name, change, checks = MUTATIONS[mutation]
    inv = synth(SystemNodesSpec(), transform=transform_of(type_token, change, name))
    assert {(c, name) for c in checks} <= failed(run_gate(inv, target=STACK))


# --- the architecture picture ------------------------------------------------------------------------------------


def test_picture_shows_system_nodes_apart_from_gpu_pools(inv: Inventory) -> None:
    """The report's topology reads the system node group as system nodes in the inference tier, not as a GPU pool,
    and the picture draws it so."""
    from xml.etree import ElementTree as ET

    from hardstack.policies.architecture import render_svg
    from hardstack.policies.topology import read

    (cluster,) = read(inv).clusters
    assert [p.name for p in cluster.pools] == ["serve"]
    (nodes,) = cluster.system_nodes
    assert (nodes.name, nodes.instance_types, nodes.max_size) == ("system", ("m7i.large",), 4)
    assert {tier for _, tier in nodes.tiers} == {"inference"}
    svg = ET.fromstring(render_svg(inv))
    shown = "\n".join("".join(t.itertext()) for t in svg.iter("{http://www.w3.org/2000/svg}text"))
    assert "system nodes system" in shown and "GPU pool system" not in shown


# --- the shipped program -----------------------------------------------------------------------------------------


def test_program_wires_system_nodes_to_the_compute_key_and_registry() -> None:
    """In a shipped blueprint the system nodes use the compute CMK and the cluster, and their role may pull from
    the stack's registry (its repository policies name it)."""
    from hardstack.stacks.targets import synth_target

    shipped = synth_target("multi-tenant-gpu")
    lt, ng = launch_template(shipped), node_group(shipped)
    assert ref_attr(lt, "blockDeviceMappings", 0, "ebs", "kmsKeyId") == (shipped.named("compute-key").urn, "arn")
    assert ref_attr(ng, "clusterName") == (shipped.named("cluster-eks").urn, "name")
    role = shipped.named("system-node-role")
    assert any(r.refs_to(role.urn) for r in shipped.of_type("aws:ecr/repositoryPolicy:RepositoryPolicy"))
