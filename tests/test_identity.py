"""Identity: the permission boundary, persona roles, just-in-time roles and tenants' workload roles.

Every test asserts the security property itself on the synthesized inventory (and what it is wired from), so
removing the property from `modules/identity.py`, `modules/iam.py` or `stacks/program.py` makes a test here fail.
Four blueprints are synthesized once each: the shipped `multi-tenant-gpu` (Vault, three tenants), VARIANT (every
identity setting away from its default, every bucket purpose, a tenant with a group override and one without
data), NO_VAULT (a cluster but no `identity.vault`) and, for the stack-wide properties, the shipped
`agent-sandbox` (its agents' roles). Every IAM policy document is also linted with parliament, and the
just-in-time roles are created, exactly as synthesized, in a moto server and assumed through STS as Vault's AWS
secrets engine would.
"""

from __future__ import annotations

import datetime
import fnmatch
import importlib
import importlib.resources
import json
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from hardstack.blueprints.blueprint import Blueprint
from hardstack.blueprints.identity import AWS_PERSONAS, Persona
from hardstack.blueprints.loader import load
from hardstack.modules.iam import PERSONA_TAG
from hardstack.modules.identity import (
    BOUNDARY_SERVICES,
    CLUSTER_ADMIN_POLICY,
    DENIED_DATA,
    LOG_READ_ACTIONS,
    PERSONA_DATA,
    PROTECTED_ACTIONS,
    SERVICE_LINKED_ROLES,
)
from hardstack.stacks.inventory import Inventory, Resource
from hardstack.stacks.mocks import ACCOUNT_ID
from hardstack.stacks.targets import synth_loaded

from .helpers import ref_attr
from .moto_server import moto_server

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
MANAGED_POLICY = "aws:iam/policy:Policy"
BOUNDARY = "hardstack:identity:PermissionsBoundary"
ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"
ACCESS_POLICY = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
POD_IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
CLUSTER = "aws:eks/cluster:Cluster"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
KEY = "aws:kms/key:Key"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
REPOSITORY_POLICY = "aws:ecr/repositoryPolicy:RepositoryPolicy"
TEMPLATE = "aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
CLUSTER_ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"
SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
CREDENTIAL_ROLE = "vault:aws/secretBackendRole:SecretBackendRole"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"

JIT_TAG = ("hardstack:access", "just-in-time")
SESSION_CAP = 3600
"""No role of the stack grants a session longer than one hour."""
PASS_ROLE = "iam:PassRole"
LIST = {"s3:ListBucket"}
READ = {"s3:GetObject", "s3:GetObjectVersion"}
WRITE = {"s3:AbortMultipartUpload", "s3:PutObject"}
"""The only S3 actions a data grant may carry: listing the bucket, reading objects, writing objects."""

POLICY_INPUTS = {
    (ROLE, "assumeRolePolicy"),
    (ROLE_POLICY, "policy"),
    (MANAGED_POLICY, "policy"),
    (BUCKET_POLICY, "policy"),
    (KEY, "policy"),
    (ENDPOINT, "policy"),
    (REPOSITORY_POLICY, "policy"),
    (TEMPLATE, "repositoryPolicy"),
    (TOPIC_POLICY, "policy"),
}
"""Where the stack's IAM policy documents live; a new kind must be classified here (and judged below)."""
RESOURCE_POLICIES = {(REPOSITORY_POLICY, "policy"), (TEMPLATE, "repositoryPolicy")}
"""ECR repository policies (and the copy a pull-through cache's creation template gives the repositories it
creates): resource policies, whose Allows name their principals."""

VARIANT: dict[str, Any] = {
    "name": "id-variant",
    "region": "eu-west-1",
    "classification": "confidential",
    "data": {"buckets": [
        {"name": "raw", "purpose": "training-data"},
        {"name": "features", "purpose": "feature-store"},
        {"name": "evals", "purpose": "evaluation-data"},
        {"name": "models", "purpose": "model-artifacts"},
        {"name": "serving-logs", "purpose": "inference-logs"},
        {"name": "misc", "purpose": "general"},
    ]},
    "compute": {"tenants": [
        {"name": "alpha", "groups": {"data-scientist": "okta:alpha-ds"}, "reads": ["features", "models"],
         "writes": ["evals", "models"]},
        {"name": "idle"},
    ]},
    "registry": {
        "repositories": ["alpha-train"],
        "keep_images": 20,
        "pull_through": [{"upstream": "quay", "allow": ["prometheus/*"]}],
        "ci": {
            "oidc_provider_arn": "arn:aws:iam::123456789012:oidc-provider/gitlab.example.com",
            "subjects": ["project_path:ml/alpha:ref_type:branch:ref:main", "project_path:ml/alpha:ref_type:tag:ref:v1"],
            "audience": "https://gitlab.example.com",
        },
    },
    "identity": {
        "trusted_account": "210987654321",
        "mfa_max_age_seconds": 900,
        "vault": {
            "server_role": "hc-vault",
            "server_account": "111122223333",
            "credential_ttl_seconds": 1200,
            "humans": {"discovery_url": "https://idp.example.com", "client_id": "hardstack-vault"},
        },
    },
}
"""Every identity setting away from its default, in another region; every bucket purpose; a tenant whose
data-scientist group is overridden and reads and writes (one bucket both), and a tenant with no data at all; a
registry whose CI identity is away from its defaults, with a pull-through cache (its creation-template role and
the nodes' cache grants are roles and grants of the stack too)."""

NO_VAULT: dict[str, Any] = {
    "name": "id-no-vault",
    "region": "us-east-1",
    "classification": "confidential",
    "data": {"buckets": [{"name": "raw", "purpose": "training-data"}]},
    "compute": {"tenants": [{"name": "alpha", "reads": ["raw"]}, {"name": "beta"}]},
    "registry": {
        "repositories": ["inference-server"],
        "ci": {
            "oidc_provider_arn": "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com",
            "subjects": ["repo:example-org/llm-serving:ref:refs/heads/main"],
        },
    },
}
"""A cluster with tenants but no `identity.vault`: nobody may reach the cluster."""


@dataclass
class Stack:
    bp: Blueprint
    inv: Inventory

    def __repr__(self) -> str:  # parametrized ids and assertion messages
        return self.bp.name


def synth_file(path: str | Path) -> Stack:
    loaded = load(path)
    return Stack(loaded.blueprint, synth_loaded(loaded))


def synth_dict(tmp_path_factory: pytest.TempPathFactory, blueprint: dict[str, Any]) -> Stack:
    """As the `synth_blueprint` fixture does (written as YAML first, as a user would), once per module."""
    path = tmp_path_factory.mktemp("bp") / f"{blueprint['name']}.yaml"
    path.write_text(yaml.safe_dump(blueprint))
    return synth_file(path)


@pytest.fixture(scope="module")
def mtg() -> Stack:
    """The shipped `multi-tenant-gpu` blueprint (identity.vault, three tenants with reads and writes)."""
    return synth_file("multi-tenant-gpu")


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Stack:
    return synth_dict(tmp_path_factory, VARIANT)


@pytest.fixture(scope="module")
def no_vault(tmp_path_factory: pytest.TempPathFactory) -> Stack:
    return synth_dict(tmp_path_factory, NO_VAULT)


@pytest.fixture(scope="module")
def agents() -> Stack:
    """The shipped `agent-sandbox` blueprint: its agents' roles are roles of the stack too."""
    return synth_file("agent-sandbox")


@pytest.fixture(scope="module")
def with_vault(mtg: Stack, variant: Stack) -> list[Stack]:
    return [mtg, variant]


@pytest.fixture(scope="module")
def every_stack(mtg: Stack, variant: Stack, no_vault: Stack, agents: Stack) -> list[Stack]:
    return [mtg, variant, no_vault, agents]


# --- reading policies ----------------------------------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def document(resource: Resource, key: str = "policy") -> dict[str, Any]:
    return json.loads(resource.inputs[key])


def statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return as_list(doc["Statement"])


def allows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in statements(doc) if s["Effect"] == "Allow"]


def actions(statement: dict[str, Any]) -> list[str]:
    return as_list(statement.get("Action", []))


def matches(pattern: str, action: str) -> bool:
    """IAM action matching: case-insensitive, `*` and `?` wildcards."""
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def walk(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, path + (i,))


def policy_documents(inv: Inventory) -> list[tuple[Resource, str, str]]:
    """Every input anywhere in the stack that is a JSON IAM policy document: (resource, input path, text)."""
    found = []
    for r in inv:
        for path, value in walk(r.inputs):
            if isinstance(value, str) and value.lstrip().startswith("{") and "Statement" in value:
                try:
                    doc = json.loads(value)
                except ValueError:
                    continue
                if isinstance(doc, dict) and "Statement" in doc:
                    found.append((r, ".".join(map(str, path)), value))
    return found


def roles(inv: Inventory) -> list[Resource]:
    return inv.of_type(ROLE)


def role_named(inv: Inventory, name: str) -> Resource:
    return inv.named(name, ROLE)


def is_jit(role: Resource) -> bool:
    return role.inputs.get("tags", {}).get(JIT_TAG[0]) == JIT_TAG[1]


def persona_roles(inv: Inventory) -> dict[str, Resource]:
    """People's persona roles (not the just-in-time ones) by persona."""
    found: dict[str, Resource] = {}
    for r in roles(inv):
        persona = r.inputs.get("tags", {}).get(PERSONA_TAG)
        if persona and not is_jit(r):
            assert persona not in found, f"two persona roles for {persona}"
            found[persona] = r
    return found


def jit_roles(inv: Inventory) -> dict[str, Resource]:
    """Just-in-time roles by their Vault role name (`cluster-admin`, `training-<tenant>`)."""
    return {r.name.removeprefix("jit-"): r for r in roles(inv) if is_jit(r)}


def inline_policies(inv: Inventory, role: Resource) -> list[Resource]:
    """The RolePolicies attached to `role` (wired to its id)."""
    return [p for p in inv.of_type(ROLE_POLICY) if any(x.path == ("role",) for x in p.refs_to(role.urn))]


def boundary_policy(inv: Inventory) -> Resource:
    components = inv.of_type(BOUNDARY)
    assert len(components) == 1, "exactly one permission boundary per stack"
    children = [r for r in inv.children(components[0].urn) if r.type == MANAGED_POLICY]
    assert len(children) == 1
    return children[0]


def the_cluster(inv: Inventory) -> Resource:
    found = inv.of_type(CLUSTER)
    assert len(found) == 1
    return found[0]


def buckets(inv: Inventory) -> dict[str, Resource]:
    """The stack's buckets by logical name."""
    return {b.inputs["tags"]["hardstack:component"]: b for b in inv.of_type(BUCKET)}


def bucket_access(inv: Inventory, role: Resource) -> dict[str, set[str]]:
    """What the role's inline policies allow on each bucket's objects: {"read"}, {"write"} or both, where read
    is exactly READ and write exactly WRITE. Also checks that no other S3 action is granted and that each grant
    is wired to the bucket it names."""
    by_arn = {b.outputs["arn"]: (name, b) for name, b in buckets(inv).items()}
    allowed_s3 = LIST | READ | WRITE
    granted: dict[str, set[str]] = {}
    for rp in inline_policies(inv, role):
        for s in allows(document(rp)):
            s3 = {a for a in actions(s) if a.lower().startswith("s3:")}
            assert s3 <= allowed_s3, f"{rp.name} grants S3 actions beyond list/read/write: {sorted(s3 - allowed_s3)}"
            for resource in as_list(s.get("Resource", [])):
                assert resource != "*" or not s3, f"{rp.name} grants S3 actions on every bucket"
                arn = resource.removesuffix("/*")
                if arn not in by_arn or not s3:
                    continue
                name, bucket = by_arn[arn]
                assert any(x.attribute == "arn" for x in rp.refs_to(bucket.urn)), f"{rp.name} not wired to {name}"
                if resource.endswith("/*"):
                    granted.setdefault(name, set()).update(s3)
    access: dict[str, set[str]] = {}
    for name, object_actions in granted.items():
        intent = {"read"} if object_actions & READ else set()
        intent |= {"write"} if object_actions & WRITE else set()
        expected = (READ if "read" in intent else set()) | (WRITE if "write" in intent else set())
        assert object_actions == expected, f"{role.name} on {name}: {sorted(object_actions)}"
        access[name] = intent
    return access


INTENT = {"read": {"read"}, "read-write": {"read", "write"}}


def expected_persona_access(inv: Inventory, persona: Persona) -> dict[str, set[str]]:
    """PERSONA_DATA applied to the stack's buckets by their purpose."""
    expected: dict[str, set[str]] = {}
    for name, bucket in buckets(inv).items():
        purpose = bucket.inputs["tags"]["hardstack:purpose"]
        for intent, purposes in PERSONA_DATA[persona].items():
            if purpose in {p.value for p in purposes}:
                expected[name] = INTENT[intent]
    return expected


def region_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if arn.startswith("arn:") and len(parts) > 5 else None


# --- the permission boundary ---------------------------------------------------------------------------------


def test_every_role_carries_the_boundary_and_at_most_an_hour(every_stack: list[Stack]) -> None:
    """Every role in the stack (service, node, persona, just-in-time, workload) has the stack's permission boundary,
    wired to the PermissionsBoundary's policy ARN, and a maximum session of one hour at most (and within what IAM
    accepts at all, read from the AWS API model)."""
    import botocore.session

    iam_range = (botocore.session.get_session().get_service_model("iam").operation_model("CreateRole")
                 .input_shape.members["MaxSessionDuration"].metadata)
    for stack in every_stack:
        inv = stack.inv
        boundary = boundary_policy(inv)
        assert len(roles(inv)) >= 8, stack
        for role in roles(inv):
            assert ref_attr(role, "permissionsBoundary") == (boundary.urn, "arn"), f"{stack}: {role.name}"
            assert role.inputs["permissionsBoundary"] == boundary.outputs["arn"], f"{stack}: {role.name}"
            duration = role.inputs["maxSessionDuration"]
            assert duration <= SESSION_CAP, f"{stack}: {role.name} allows {duration}s sessions"
            assert iam_range["min"] <= duration <= iam_range["max"], f"{stack}: IAM refuses {role.name}: {duration}s"


def test_boundary_confines_roles_to_the_stack_services_in_its_region(with_vault: list[Stack]) -> None:
    """The boundary allows only the stack's services, only in the stack's region (aws:RequestedRegion); besides,
    only service-linked roles of named services; and it denies every protected control outright."""
    for stack in with_vault:
        doc = document(boundary_policy(stack.inv))
        by_sid = {s["Sid"]: s for s in statements(doc)}
        assert set(by_sid) == {"StackServicesInItsRegion", "NamedServiceLinkedRoles", "NeverTamperWithControls"}

        services = by_sid["StackServicesInItsRegion"]
        assert services["Effect"] == "Allow"
        assert sorted(actions(services)) == sorted(f"{s}:*" for s in BOUNDARY_SERVICES)
        assert services["Condition"] == {"StringEquals": {"aws:RequestedRegion": stack.bp.region}}, stack

        linked = by_sid["NamedServiceLinkedRoles"]
        assert linked["Effect"] == "Allow"
        assert actions(linked) == ["iam:CreateServiceLinkedRole"]
        assert linked["Condition"] == {"StringEquals": {"iam:AWSServiceName": list(SERVICE_LINKED_ROLES)}}

        deny = by_sid["NeverTamperWithControls"]
        assert deny["Effect"] == "Deny" and deny["Resource"] == "*" and "Condition" not in deny
        assert set(actions(deny)) == set(PROTECTED_ACTIONS)
        for control in ("kms:ScheduleKeyDeletion", "kms:PutKeyPolicy", "logs:DeleteLogGroup", "ec2:DeleteFlowLogs",
                        "s3:PutBucketPolicy", "s3:BypassGovernanceRetention", "eks:CreateAccessEntry"):
            assert control in actions(deny)

        for s in allows(doc):
            assert "Condition" in s, f"{stack}: unconditioned Allow {s['Sid']} in the boundary"
            assert "NotAction" not in s and "NotResource" not in s
            assert not any(matches(a, PASS_ROLE) or a.lower().startswith(("iam:*", "sts:")) for a in actions(s))


def test_boundary_covers_every_inline_grant(every_stack: list[Stack]) -> None:
    """Each action an inline role policy allows is inside the boundary (its service is a boundary service, or it
    is iam:CreateServiceLinkedRole), none is a protected action, and no granted resource lies in another region:
    the boundary never silently nullifies a grant. Every inline policy belongs to a role of the stack."""
    for stack in every_stack:
        inv = stack.inv
        stack_roles = {r.urn for r in roles(inv)}
        policies = inv.of_type(ROLE_POLICY)
        assert policies, stack
        for rp in policies:
            assert ref_attr(rp, "role")[0] in stack_roles, f"{stack}: {rp.name} is on a role outside the stack"
            for s in allows(document(rp)):
                assert "NotAction" not in s, f"{stack}: {rp.name}"
                for action in actions(s):
                    service = action.split(":", 1)[0].lower()
                    assert service in BOUNDARY_SERVICES or action == "iam:CreateServiceLinkedRole", \
                        f"{stack}: {rp.name} grants {action}, which the boundary does not allow"
                    blocked = [p for p in PROTECTED_ACTIONS if matches(action, p) or matches(p, action)]
                    assert not blocked, f"{stack}: {rp.name} grants {action}, denied by the boundary"
                for resource in as_list(s.get("Resource", [])):
                    assert region_of(resource) in ("", None, stack.bp.region), \
                        f"{stack}: {rp.name} grants {resource} outside the boundary's region {stack.bp.region}"


# --- persona roles -------------------------------------------------------------------------------------------


def test_persona_roles_need_recent_mfa_from_the_trusted_account(every_stack: list[Stack]) -> None:
    """People's roles (data-scientist, mlops-engineer, platform-admin) trust only IAM principals of the trusted
    account (default: this account) signed in with MFA, and only within identity.mfa_max_age_seconds."""
    for stack in every_stack:
        identity = stack.bp.identity
        found = persona_roles(stack.inv)
        assert set(found) == {p.value for p in AWS_PERSONAS} == {"data-scientist", "mlops-engineer", "platform-admin"}
        account = identity.trusted_account or ACCOUNT_ID
        for persona, role in found.items():
            trust = statements(document(role, "assumeRolePolicy"))
            assert len(trust) == 1, f"{stack}: {persona}"
            (s,) = trust
            assert s["Effect"] == "Allow" and "NotPrincipal" not in s
            assert s["Principal"] == {"AWS": f"arn:aws:iam::{account}:root"}, f"{stack}: {persona}"
            assert "sts:AssumeRole" in actions(s)
            assert set(actions(s)) <= {"sts:AssumeRole", "sts:SetSourceIdentity"}
            assert s["Condition"]["Bool"] == {"aws:MultiFactorAuthPresent": "true"}
            age = s["Condition"]["NumericLessThan"]
            assert age == {"aws:MultiFactorAuthAge": str(identity.mfa_max_age_seconds)}, f"{stack}: {persona}"
            assert int(age["aws:MultiFactorAuthAge"]) <= 3600
            assert role.inputs["maxSessionDuration"] == 3600  # the shortest IAM accepts
    assert variant_setting(every_stack, "trusted_account") == "210987654321"
    assert variant_setting(every_stack, "mfa_max_age_seconds") == 900


def variant_setting(stacks: list[Stack], field: str) -> Any:
    """A VARIANT identity setting, to show the assertions above ran against non-default values too."""
    (variant,) = [s for s in stacks if s.bp.name == VARIANT["name"]]
    return getattr(variant.bp.identity, field)


def test_no_inference_client_role_and_no_cluster_access_for_personas(every_stack: list[Stack]) -> None:
    """Inference clients get no AWS role at all; no access entry or access policy names a persona role, so
    platform-admin (like every person) reaches the cluster only just in time."""
    for stack in every_stack:
        inv = stack.inv
        tagged = {r.inputs.get("tags", {}).get(PERSONA_TAG) for r in roles(inv)}
        assert Persona.inference_client.value not in tagged, stack
        assert not [r for r in roles(inv) if "inference-client" in r.name], stack
        people = {r.urn for r in persona_roles(inv).values()}
        for entry in inv.of_type(ACCESS_ENTRY) + inv.of_type(ACCESS_POLICY):
            principal = ref_attr(entry, "principalArn")[0]
            assert principal not in people, f"{stack}: {entry.name} gives a persona role standing cluster access"
            assert inv[principal].type == ROLE and is_jit(inv[principal]), f"{stack}: {entry.name}"
        admin = persona_roles(inv)[Persona.platform_admin.value]
        assert not [e for e in inv.of_type(ACCESS_ENTRY) if e.refs_to(admin.urn)]
        assert admin.outputs["arn"] not in {e.inputs["principalArn"] for e in inv.of_type(ACCESS_ENTRY)}


# --- just-in-time roles --------------------------------------------------------------------------------------


def test_jit_roles_trust_only_the_vault_server_role(with_vault: list[Stack]) -> None:
    """cluster-admin and training-<tenant> trust exactly one principal: the Vault server's role
    (identity.vault.server_role in server_account, default this account); nobody else may assume them."""
    for stack in with_vault:
        vault = stack.bp.identity.vault
        assert vault is not None
        found = jit_roles(stack.inv)
        assert set(found) == {"cluster-admin"} | {f"training-{t.name}" for t in stack.bp.compute.tenants}, stack
        broker = f"arn:aws:iam::{vault.server_account or ACCOUNT_ID}:role/{vault.server_role}"
        for name, role in found.items():
            trust = statements(document(role, "assumeRolePolicy"))
            assert trust == [{"Sid": "OnlyTheBroker", "Effect": "Allow", "Principal": {"AWS": broker},
                              "Action": ["sts:AssumeRole"]}], f"{stack}: {name}: {trust}"
            assert role.inputs["maxSessionDuration"] <= SESSION_CAP
    assert variant_setting(with_vault, "vault").server_role == "hc-vault"
    assert variant_setting(with_vault, "vault").server_account == "111122223333"


def test_each_jit_role_has_exactly_one_access_entry_and_nothing_else_has_one(with_vault: list[Stack]) -> None:
    """Every just-in-time role has one STANDARD access entry on the stack's cluster, wired to its ARN; the access
    entries of the stack are exactly those."""
    for stack in with_vault:
        inv = stack.inv
        cluster = the_cluster(inv)
        entries = inv.of_type(ACCESS_ENTRY)
        found = jit_roles(inv)
        assert sorted(ref_attr(e, "principalArn") for e in entries) == sorted((r.urn, "arn") for r in found.values())
        for entry in entries:
            assert entry.inputs["type"] == "STANDARD"
            assert ref_attr(entry, "clusterName") == (cluster.urn, "name")
            assert entry.inputs["principalArn"] == inv[ref_attr(entry, "principalArn")[0]].outputs["arn"]


def test_cluster_admin_gets_the_admin_policy_scoped_to_the_cluster(with_vault: list[Stack]) -> None:
    """cluster-admin, and only it, is associated with AmazonEKSClusterAdminPolicy, scoped to this cluster; its
    access entry maps to no Kubernetes group."""
    for stack in with_vault:
        inv = stack.inv
        admin = jit_roles(inv)["cluster-admin"]
        (association,) = inv.of_type(ACCESS_POLICY)
        assert ref_attr(association, "principalArn") == (admin.urn, "arn")
        assert ref_attr(association, "clusterName") == (the_cluster(inv).urn, "name")
        assert association.inputs["policyArn"] == f"arn:aws:eks::aws:cluster-access-policy/{CLUSTER_ADMIN_POLICY}"
        assert association.inputs["accessScope"] == {"type": "cluster"}
        (entry,) = [e for e in inv.of_type(ACCESS_ENTRY) if e.refs_to(admin.urn)]
        assert not entry.inputs.get("kubernetesGroups")


def test_training_roles_map_to_the_tenant_data_scientist_group_only(with_vault: list[Stack]) -> None:
    """training-<tenant> maps to exactly one Kubernetes group, `<tenant>:data-scientist` or the tenant's
    override, and that group is bound, by the tenant's RoleBinding in the tenant's namespace only, to the
    data-scientist Role: nothing cluster-wide, nothing in another tenant's namespace."""
    for stack in with_vault:
        inv = stack.inv
        bindings = inv.of_type(ROLE_BINDING) + inv.of_type(CLUSTER_ROLE_BINDING)
        for tenant in stack.bp.compute.tenants:
            group = tenant.groups.get("data-scientist", f"{tenant.name}:data-scientist")
            role = jit_roles(inv)[f"training-{tenant.name}"]
            (entry,) = [e for e in inv.of_type(ACCESS_ENTRY) if e.refs_to(role.urn)]
            assert entry.inputs["kubernetesGroups"] == [group], f"{stack}: {tenant.name}"
            assert not [a for a in inv.of_type(ACCESS_POLICY) if a.refs_to(role.urn)], "no EKS access policy"
            binding = [b for b in bindings if {"kind": "Group", "name": group, "apiGroup": "rbac.authorization.k8s.io"}
                       in b.inputs.get("subjects", [])]
            assert len(binding) == 1, f"{stack}: {group} bound by {[b.name for b in binding]}"
            (b,) = binding
            assert b.type == ROLE_BINDING and b.name == f"tenant-{tenant.name}-data-scientist-binding"
            assert b.inputs["metadata"]["namespace"] == tenant.name
            assert b.inputs["roleRef"] == {"name": "data-scientist", "kind": "Role",
                                           "apiGroup": "rbac.authorization.k8s.io"}
    (alpha,) = [e for e in variant_inv(with_vault).of_type(ACCESS_ENTRY) if e.name == "jit-training-alpha-access"]
    assert alpha.inputs["kubernetesGroups"] == ["okta:alpha-ds"]


def variant_inv(stacks: list[Stack]) -> Inventory:
    (variant,) = [s for s in stacks if s.bp.name == VARIANT["name"]]
    return variant.inv


def test_without_vault_nobody_has_standing_access_to_the_cluster(no_vault: Stack) -> None:
    """Without identity.vault there are no just-in-time roles, no access entries and no access policies at all,
    authentication is by access entries only (no aws-auth ConfigMap) and the creator gets no admin: no person
    has any access to the cluster. The persona roles still exist (for data, not for the cluster)."""
    inv = no_vault.inv
    assert no_vault.bp.identity.vault is None and no_vault.bp.compute is not None
    assert not jit_roles(inv)
    assert not inv.of_type(ACCESS_ENTRY)
    assert not inv.of_type(ACCESS_POLICY)
    assert not [r for r in inv if r.type.startswith("vault:")]
    assert the_cluster(inv).inputs["accessConfig"] == {"authenticationMode": "API",
                                                       "bootstrapClusterCreatorAdminPermissions": False}
    assert not [r for r in inv if r.type == "kubernetes:core/v1:ConfigMap" and
                r.inputs.get("metadata", {}).get("name") == "aws-auth"]
    assert set(persona_roles(inv)) == {p.value for p in AWS_PERSONAS}


# --- persona data --------------------------------------------------------------------------------------------


def test_persona_data_grants_follow_persona_data(with_vault: list[Stack]) -> None:
    """Each persona reads or writes exactly the buckets PERSONA_DATA gives it by purpose: the data scientist reads
    training data (never writes it), the MLOps engineer reads and writes model artifacts, the platform admin
    touches no bucket; and the MLOps engineer is explicitly denied training-data objects."""
    for stack in with_vault:
        inv = stack.inv
        found = persona_roles(inv)
        by_purpose = {name: b.inputs["tags"]["hardstack:purpose"] for name, b in buckets(inv).items()}
        for persona in AWS_PERSONAS:
            access = bucket_access(inv, found[persona.value])
            assert access == expected_persona_access(inv, persona), f"{stack}: {persona.value}: {access}"
            for name in access:
                assert by_purpose[name] != "training-data" or access[name] == {"read"}, f"{stack}: {persona.value}"

        scientist = bucket_access(inv, found["data-scientist"])
        mlops = bucket_access(inv, found["mlops-engineer"])
        for name, purpose in by_purpose.items():
            if purpose == "training-data":
                assert scientist[name] == {"read"}, f"{stack}: data-scientist on {name}"
                assert name not in mlops
            if purpose == "model-artifacts":
                assert mlops[name] == {"read", "write"}, f"{stack}: mlops-engineer on {name}"
        assert bucket_access(inv, found["platform-admin"]) == {}

        for persona in AWS_PERSONAS:
            denied_purposes = {p.value for p in DENIED_DATA.get(persona, ())}
            expected = {f"{buckets(inv)[n].outputs['arn']}/*" for n, p in by_purpose.items() if p in denied_purposes}
            denies = [s for rp in inline_policies(inv, found[persona.value]) for s in statements(document(rp))
                      if s["Effect"] == "Deny"]
            got = {r for s in denies for r in as_list(s["Resource"])}
            assert got == expected, f"{stack}: {persona.value} denies {got}"
            for s in denies:
                assert set(actions(s)) >= READ and "Condition" not in s
        assert DENIED_DATA[Persona.mlops_engineer] and "training-data" in by_purpose.values()
    assert set(by_purpose_of(variant_inv(with_vault)).values()) >= {"training-data", "feature-store",
                                                                    "evaluation-data", "model-artifacts",
                                                                    "inference-logs", "general"}


def by_purpose_of(inv: Inventory) -> dict[str, str]:
    return {name: b.inputs["tags"]["hardstack:purpose"] for name, b in buckets(inv).items()}


def test_platform_admin_reads_only_the_stacks_log_groups_and_metrics(with_vault: list[Stack]) -> None:
    """platform-admin's logs access is read-only and limited to the stack's log groups; its other grants are
    metric and alarm reads and describing this cluster."""
    for stack in with_vault:
        inv = stack.inv
        admin = persona_roles(inv)["platform-admin"]
        # the network's flow logs and the cluster's control-plane logs; the audit trail's and the WAF's logs are the
        # security team's to read (the trail records what platform admins do)
        log_groups = {f"{g.outputs['arn']}:*" for g in inv.of_type(LOG_GROUP)
                      if "hardstack:network:SegmentedVpc$" in g.urn or "hardstack:cluster:EksCluster$" in g.urn}
        assert log_groups, stack
        granted: set[str] = set()
        for rp in inline_policies(inv, admin):
            for s in allows(document(rp)):
                granted |= set(actions(s))
                logs = [a for a in actions(s) if a.startswith("logs:")]
                if logs:
                    assert set(logs) <= set(LOG_READ_ACTIONS), f"{stack}: {logs}"
                    assert set(as_list(s["Resource"])) == log_groups, f"{stack}: {s['Resource']}"
                if "eks:DescribeCluster" in actions(s):
                    assert s["Resource"] == the_cluster(inv).outputs["arn"]
        assert set(LOG_READ_ACTIONS) <= granted
        assert all(re.fullmatch(r"(logs|cloudwatch):(Get|List|Describe|Filter)\w+|eks:DescribeCluster", a)
                   for a in granted), f"{stack}: platform-admin may {sorted(granted)}"


SIGNATURE_ACTIONS = {"kms:Sign", "kms:Verify", "kms:GetPublicKey", "kms:DescribeKey"}
"""What may be granted on a signing key without a service condition: cosign (in CI, and in Kyverno's admission
controller) calls KMS itself, not through an AWS service, so kms:ViaService cannot apply. Signing is further held
to the CI role alone (here, and by the key policy's Deny, asserted in test_registry)."""


def test_kms_grants_only_through_a_service(every_stack: list[Stack]) -> None:
    """Every KMS permission a role policy grants names one of the stack's keys and holds only through an AWS
    service of the stack's region (kms:ViaService): nobody decrypts data outside S3, EBS, EKS or ECR (which
    encrypts the stack's images and, through a grant, the repositories its caches create).

    The one exception is signature work on a SIGN_VERIFY key (SIGNATURE_ACTIONS only, on signing keys only):
    only the CI role may sign; others may at most read the public key and verify."""
    for stack in every_stack:
        inv = stack.inv
        keys = {k.outputs["arn"] for k in inv.of_type(KEY)}
        signing_keys = {k.outputs["arn"] for k in inv.of_type(KEY) if k.inputs["keyUsage"] == "SIGN_VERIFY"}
        kms_statements = signature_statements = 0
        for rp in inv.of_type(ROLE_POLICY):
            for s in allows(document(rp)):
                if not any(a.lower().startswith("kms:") for a in actions(s)):
                    continue
                kms_statements += 1
                assert all(a.lower().startswith("kms:") for a in actions(s)), f"{stack}: {rp.name} mixes services"
                assert set(as_list(s["Resource"])) <= keys, f"{stack}: {rp.name} on {s['Resource']}"
                if set(as_list(s["Resource"])) <= signing_keys and "Condition" not in s:
                    signature_statements += 1
                    assert set(actions(s)) <= SIGNATURE_ACTIONS, f"{stack}: {rp.name}: {actions(s)}"
                    if "kms:Sign" in actions(s):
                        holder = inv[ref_attr(rp, "role")[0]]
                        assert holder.inputs["tags"].get("hardstack:purpose") == "ci-push-and-sign", \
                            f"{stack}: {rp.name} lets {holder.name}, not CI, sign"
                    continue
                via = as_list(s["Condition"]["StringEquals"]["kms:ViaService"])
                assert via and all(re.fullmatch(rf"(s3|ec2|eks|ecr)\.{re.escape(stack.bp.region)}\.amazonaws\.com",
                                                v) for v in via), f"{stack}: {rp.name}: {via}"
        assert kms_statements, stack
        assert signature_statements >= 2, f"{stack}: CI's signing and admission's verification were not judged"


# --- tenants' workload roles ---------------------------------------------------------------------------------


PLATFORM_POD_IDENTITIES = {("kyverno", "kyverno-admission-controller"): "admission-identity-role"}
"""Pod Identity roles of the platform itself, beside the tenants': Kyverno's admission controller reads image
signatures from the registry and the signing key's public key. Its service account is created by the Kyverno
chart (a Helm release), not as a resource of its own."""


def test_workload_roles_are_for_the_tenants_service_account_on_this_cluster(with_vault: list[Stack],
                                                                         no_vault: Stack) -> None:
    """Each tenant's workload role trusts only EKS Pod Identity acting for this account and this cluster
    (aws:SourceAccount, aws:SourceArn = the cluster's ARN, wired to it), and only its Pod Identity association
    hands it out: to the `workload` service account (which exists) in the tenant's namespace. The stack's Pod
    Identity associations are exactly those and the platform's own (PLATFORM_POD_IDENTITIES), whose roles are
    held to the same trust."""
    for stack in [*with_vault, no_vault]:
        inv = stack.inv
        cluster = the_cluster(inv)
        associations = inv.of_type(POD_IDENTITY)
        expected = {(t.name, "workload"): f"tenant-{t.name}-workload-role" for t in stack.bp.compute.tenants}
        expected |= PLATFORM_POD_IDENTITIES
        assert sorted((a.inputs["namespace"], a.inputs["serviceAccount"]) for a in associations) == sorted(expected), \
            stack
        for (namespace, service_account), role_name in expected.items():
            role = role_named(inv, role_name)
            (s,) = statements(document(role, "assumeRolePolicy"))
            assert s["Effect"] == "Allow" and s["Principal"] == {"Service": "pods.eks.amazonaws.com"}
            assert sorted(actions(s)) == ["sts:AssumeRole", "sts:TagSession"]
            assert s["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID},
                                      "ArnEquals": {"aws:SourceArn": cluster.outputs["arn"]}}, f"{stack}: {role_name}"
            assert [(x.attribute, x.match) for x in role.refs_to(cluster.urn)] == [("arn", "contains")]
            handed_out = [a for a in associations if a.refs_to(role.urn)]
            assert len(handed_out) == 1, f"{stack}: {role_name}"
            (association,) = handed_out
            assert ref_attr(association, "roleArn") == (role.urn, "arn")
            assert ref_attr(association, "clusterName") == (cluster.urn, "name")
            assert association.inputs["namespace"] == namespace
            assert association.inputs["serviceAccount"] == service_account
            if (namespace, service_account) in PLATFORM_POD_IDENTITIES:
                continue
            assert [sa for sa in inv.of_type(SERVICE_ACCOUNT) if sa.inputs["metadata"].get("namespace") == namespace
                    and sa.inputs["metadata"].get("name") == "workload"], f"{stack}: no workload service account"


def test_workload_roles_grant_exactly_the_tenants_reads_and_writes(with_vault: list[Stack], no_vault: Stack) -> None:
    """A tenant's workloads read exactly `reads` and write exactly `writes` (both where a bucket is in both);
    a tenant without reads or writes gets no policy at all."""
    checked_empty = False
    for stack in [*with_vault, no_vault]:
        inv = stack.inv
        for tenant in stack.bp.compute.tenants:
            role = role_named(inv, f"tenant-{tenant.name}-workload-role")
            expected: dict[str, set[str]] = {}
            for name in tenant.reads:
                expected.setdefault(name, set()).add("read")
            for name in tenant.writes:
                expected.setdefault(name, set()).add("write")
            assert bucket_access(inv, role) == expected, f"{stack}: {tenant.name}"
            if not expected:
                assert inline_policies(inv, role) == [], f"{stack}: {tenant.name} has a policy but no data"
                checked_empty = True
    assert checked_empty
    research = role_named(mtg_inv(with_vault), "tenant-research-workload-role")
    assert bucket_access(mtg_inv(with_vault), research) == {"training-data": {"read"}, "model-artifacts": {"write"}}
    alpha = role_named(variant_inv(with_vault), "tenant-alpha-workload-role")
    assert bucket_access(variant_inv(with_vault), alpha) == {"features": {"read"}, "evals": {"write"},
                                                             "models": {"read", "write"}}


def mtg_inv(stacks: list[Stack]) -> Inventory:
    (mtg,) = [s for s in stacks if s.bp.name == "multi-tenant-gpu"]
    return mtg.inv


# --- every policy document -----------------------------------------------------------------------------------


def test_no_policy_allows_wildcard_actions_or_pass_role(every_stack: list[Stack]) -> None:
    """No Allow statement in any policy document of the stack (inline role policies, the boundary, trust
    policies, bucket and key policies) has a wildcard action (or NotAction), except the boundary's per-service
    allow; none allows iam:PassRole. VPC endpoint policies grant nothing (they only narrow what principals that
    are already allowed may do through the endpoint): their wildcard allows must be limited to this account.
    ECR repository policies (and the creation templates' copies) allow only named roles of the stack, never
    everyone (nor through NotPrincipal)."""
    templates = 0
    for stack in every_stack:
        inv = stack.inv
        documents = policy_documents(inv)
        kinds = {(r.type, path) for r, path, _ in documents}
        assert kinds <= POLICY_INPUTS, f"{stack}: unclassified policy documents {kinds - POLICY_INPUTS}"
        assert {(ROLE, "assumeRolePolicy"), (ROLE_POLICY, "policy"), (MANAGED_POLICY, "policy"),
                (BUCKET_POLICY, "policy"), (KEY, "policy"), (REPOSITORY_POLICY, "policy")} <= kinds, stack
        boundary = boundary_policy(inv)
        stack_role_arns = {r.outputs["arn"] for r in roles(inv)}
        templates += (TEMPLATE, "repositoryPolicy") in kinds
        for resource, path, text in documents:
            where = f"{stack}: {resource.name}.{path}"
            for s in allows(json.loads(text)):
                assert "NotAction" not in s, where
                granted = actions(s)
                if (resource.type, path) in RESOURCE_POLICIES:
                    assert "NotPrincipal" not in s and set(s["Principal"]) == {"AWS"}, where
                    named = set(as_list(s["Principal"]["AWS"]))
                    assert named and named <= stack_role_arns, f"{where} allows {sorted(named - stack_role_arns)}"
                if resource.type == ENDPOINT:
                    if any("*" in a for a in granted):
                        condition = s.get("Condition", {}).get("StringEquals", {})
                        assert (condition.get("aws:PrincipalAccount") == ACCOUNT_ID or
                                condition.get("aws:ResourceAccount") == ACCOUNT_ID), where
                    continue
                assert not [a for a in granted if matches(a, PASS_ROLE)], f"{where} allows iam:PassRole"
                if resource.urn == boundary.urn and s.get("Sid") == "StackServicesInItsRegion":
                    assert all(re.fullmatch(r"[a-z0-9-]+:\*", a) for a in granted), where
                    continue
                wild = [a for a in granted if "*" in a or "?" in a]
                assert not wild, f"{where} allows wildcard actions {wild}"
    assert templates >= 2, "no pull-through cache's creation template was judged"


def parliament_api() -> types.ModuleType:
    """parliament 1.6.4 imports pkg_resources (setuptools) only to locate its own data files, and this venv has
    no setuptools: lend it a stand-in for that one call during the import, then take it away again so that no
    other code in the process mistakes it for setuptools."""
    if "parliament" in sys.modules:
        return sys.modules["parliament"]
    try:
        importlib.import_module("pkg_resources")
        return importlib.import_module("parliament")
    except ModuleNotFoundError:
        pass
    shim = types.ModuleType("pkg_resources")
    shim.resource_filename = (  # type: ignore[attr-defined]
        lambda package, name: str(importlib.resources.files(package) / name))
    sys.modules["pkg_resources"] = shim
    try:
        return importlib.import_module("parliament")
    finally:
        if sys.modules.get("pkg_resources") is shim:
            del sys.modules["pkg_resources"]


SEVERITIES = ["MUTE", "INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
NO_RESOURCE = "Statement contains neither Resource nor NotResource"
ARN_LIKE_ON_STRING = "Type mismatch: ArnLike requires a value of type Arn but given String"
TLS_DENY_UNKNOWN = {f"Unknown condition s3:TlsVersion for action s3:{a}"
                    for a in ("InitiateReplication", "PutAccessPointPublicAccessBlock")}


def documented_false_positive(resource: Resource, path: str, issue: str, detail: str) -> bool:
    """parliament findings that are wrong about these documents (each explained); everything else counts."""
    # Trust policies have no Resource element: IAM refuses one in a role's trust policy. parliament lints every
    # document as an identity policy.
    if path == "assumeRolePolicy" and issue == "MALFORMED" and detail == NO_RESOURCE:
        return True
    # ECR repository policies (and the creation templates' copy) apply to their repository: ECR's documented
    # repository policies carry no Resource element either.
    if (resource.type, path) in RESOURCE_POLICIES and issue == "MALFORMED" and detail == NO_RESOURCE:
        return True
    # An IAM OIDC identity provider ARN is a valid federated principal (IAM's web identity federation: the
    # registry's CI role); parliament knows only the built-in identity providers (Cognito, Amazon, Facebook,
    # Google). Only for the provider the role's own trust names.
    if issue == "UNKNOWN_FEDERATION_SOURCE":
        return (resource.type == ROLE and path == "assumeRolePolicy" and ":oidc-provider/" in detail
                and any(as_list((s.get("Principal") or {}).get("Federated", [])) == [detail]
                        for s in statements(document(resource, path))))
    # ecr:BatchImportUpstreamImage is authorized per repository (ECR documents granting it in repository and
    # registry policies on `repository/<prefix>/*`); parliament's action table lists it with resource `*` only.
    if issue == "RESOURCE_MISMATCH":
        return "'ecr:BatchImportUpstreamImage'" in detail and "CreateRepository" not in detail
    # parliament's Number type is the regex ^\d+$ (integers only); IAM's numeric operators take decimals, and
    # AWS's documented minimum-TLS bucket policy compares s3:TlsVersion with 1.2.
    if issue == "MISMATCHED_TYPE" and re.fullmatch(r"Type mismatch: \S+ requires a value of type Numeric but "
                                                   r"given \['\d+\.\d+'\]", detail):
        return True
    # The bucket policies' DenyOutdatedTls (AWS's documented statement) denies s3:* below TLS 1.2; parliament's
    # action table lists no s3:TlsVersion for two actions: s3:InitiateReplication (called by S3 Batch
    # Replication, an AWS service) and s3:PutAccessPointPublicAccessBlock (an account-level setting, not a bucket
    # action). AWS endpoints refuse TLS below 1.2 anyway; the statement is defence in depth.
    if resource.type == BUCKET_POLICY and issue == "UNKNOWN_CONDITION_FOR_ACTION" and detail in TLS_DENY_UNKNOWN:
        return True
    # The logs key lets CloudWatch Logs use it only for the account's log groups, with the statement AWS documents
    # ("Encrypt log data in CloudWatch Logs using AWS KMS"): ArnLike on kms:EncryptionContext:aws:logs:arn (a
    # String key holding an ARN) over the use actions including DescribeKey, which carries no encryption context
    # so that part never applies (fails closed).
    if resource.type == KEY and (
        (issue == "MISMATCHED_TYPE" and detail == ARN_LIKE_ON_STRING)
        or (issue == "UNKNOWN_CONDITION_FOR_ACTION"
            and detail == "Unknown condition kms:EncryptionContext:aws:logs:arn for action kms:DescribeKey")
    ):
        return "kms:EncryptionContext:aws:logs:arn" in resource.inputs["policy"]
    return False


def test_parliament_finds_nothing_medium_or_worse(every_stack: list[Stack]) -> None:
    """parliament (its Python API: the CLI needs a TTY) reports no finding of severity MEDIUM or higher on any
    IAM policy document of the stack, apart from the documented false positives above."""
    parliament = parliament_api()
    floor = SEVERITIES.index("MEDIUM")
    for stack in every_stack:
        findings = []
        linted = 0
        for resource, path, text in policy_documents(stack.inv):
            linted += 1
            for finding in parliament.analyze_policy_string(text).findings:
                finding = parliament.enhance_finding(finding)
                if SEVERITIES.index(finding.severity) < floor:
                    continue
                if documented_false_positive(resource, path, finding.issue, str(finding.detail)):
                    continue
                findings.append(f"{resource.name}.{path}: {finding.severity} {finding.issue}: {finding.detail} "
                                f"at {finding.location}")
        assert linted >= 20, stack
        assert not findings, f"{stack}: parliament reports\n" + "\n".join(sorted(set(findings)))


# --- Vault's credentials through STS (moto) ------------------------------------------------------------------


def credential_roles(stack: Stack) -> dict[str, tuple[Resource, Resource]]:
    """Vault's AWS secrets engine roles by name, each with the just-in-time role its roleArns reference."""
    found = {}
    for c in stack.inv.of_type(CREDENTIAL_ROLE):
        assert c.inputs["credentialType"] == "assumed_role"
        assert len(c.inputs["roleArns"]) == 1
        urn, attribute = ref_attr(c, "roleArns", 0)
        assert attribute == "arn"
        found[c.inputs["name"]] = (c, stack.inv[urn])
    return found


def test_vault_credentials_are_short_and_fit_the_roles(with_vault: list[Stack]) -> None:
    """Vault issues credentials for exactly the just-in-time roles, 15 minutes by default (the blueprint's
    credential_ttl_seconds), never longer than the role's maximum session."""
    for stack in with_vault:
        vault = stack.bp.identity.vault
        found = credential_roles(stack)
        assert {n: r.urn for n, (_, r) in found.items()} == {n: r.urn for n, r in jit_roles(stack.inv).items()}
        for name, (cred, role) in found.items():
            assert cred.inputs["roleArns"] == [role.outputs["arn"]]
            assert cred.inputs["defaultStsTtl"] == vault.credential_ttl_seconds, f"{stack}: {name}"
            assert cred.inputs["defaultStsTtl"] <= cred.inputs["maxStsTtl"] <= role.inputs["maxSessionDuration"]
    assert {c.inputs["defaultStsTtl"] for c, _ in credential_roles(with_vault[0]).values()} == {900}
    assert variant_setting(with_vault, "vault").credential_ttl_seconds == 1200


@dataclass
class Moto:
    url: str
    iam: Any
    sts: Any


@pytest.fixture(scope="module")
def moto_aws() -> Iterator[Moto]:
    """A moto server with boto3 clients holding dummy credentials."""
    import boto3

    with moto_server() as url:
        client = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
        yield Moto(url, boto3.client("iam", **client), boto3.client("sts", **client))


@pytest.fixture(scope="module")
def jit_in_moto(mtg: Stack, moto_aws: Moto) -> dict[str, tuple[Resource, dict[str, Any]]]:
    """multi-tenant-gpu's boundary and just-in-time roles created in moto exactly as synthesized (moto's account
    is the mocks' account, so the ARNs come out identical). By Vault role name: (credential role, IAM role)."""
    boundary = boundary_policy(mtg.inv)
    created = moto_aws.iam.create_policy(PolicyName=boundary.inputs["name"], PolicyDocument=boundary.inputs["policy"])
    assert created["Policy"]["Arn"] == boundary.outputs["arn"]
    found = {}
    for name, (cred, role) in credential_roles(mtg).items():
        made = moto_aws.iam.create_role(
            RoleName=role.outputs["name"],
            AssumeRolePolicyDocument=role.inputs["assumeRolePolicy"],
            MaxSessionDuration=role.inputs["maxSessionDuration"],
            PermissionsBoundary=role.inputs["permissionsBoundary"],
            Tags=[{"Key": k, "Value": v} for k, v in role.inputs["tags"].items()],
        )["Role"]
        assert made["Arn"] == role.outputs["arn"] == cred.inputs["roleArns"][0]
        found[name] = (cred, moto_aws.iam.get_role(RoleName=made["RoleName"])["Role"])
    return found


def assume_as_vault(moto_aws: Moto, role_arn: str, name: str, seconds: int) -> dict[str, Any]:
    """AssumeRole as Vault's AWS engine calls it for an assumed_role credential (session named after the person
    and the role, at most 64 characters)."""
    return moto_aws.sts.assume_role(RoleArn=role_arn, RoleSessionName=f"vault-alice-{name}"[:64],
                                    DurationSeconds=seconds)


def test_sts_issues_jit_credentials_that_expire_in_fifteen_minutes(jit_in_moto: dict[str, Any],
                                                                   moto_aws: Moto) -> None:
    """Created in moto as synthesized (trust, one-hour maximum, boundary), each just-in-time role assumed with
    Vault's defaultStsTtl yields credentials for that role that expire in about 15 minutes."""
    assert set(jit_in_moto) == {"cluster-admin", "training-research", "training-search", "training-fraud"}
    for name, (cred, role) in jit_in_moto.items():
        assert role["MaxSessionDuration"] == SESSION_CAP
        assert role["PermissionsBoundary"]["PermissionsBoundaryArn"].endswith(":policy/multi-tenant-gpu-boundary")
        trust = role["AssumeRolePolicyDocument"]
        trust = json.loads(trust) if isinstance(trust, str) else trust
        assert trust["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:role/vault-server"}

        ttl = cred.inputs["defaultStsTtl"]
        assert ttl == 900
        before = datetime.datetime.now(datetime.timezone.utc)
        issued = assume_as_vault(moto_aws, role["Arn"], name, ttl)
        lifetime = (issued["Credentials"]["Expiration"] - before).total_seconds()
        assert 900 - 30 <= lifetime <= 900 + 30, f"{name}: credentials live {lifetime}s"
        assert issued["AssumedRoleUser"]["Arn"] == \
            f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role['RoleName']}/vault-alice-{name}"
        assert issued["Credentials"]["SessionToken"] and issued["Credentials"]["AccessKeyId"]


def test_sts_session_limits_moto_enforces_and_what_the_stack_guarantees(jit_in_moto: dict[str, Any],
                                                                         moto_aws: Moto) -> None:
    """Asking for more than a role's maximum session (7200 s on a 3600 s role) is refused by real STS, but moto
    5.2 does not enforce MaxSessionDuration (nor, without IAM auth, the trust policy): it issues the 7200 s
    credentials, which this test pins so that a moto that starts refusing shows up. What is enforced here: the
    AWS API model (botocore) refuses sessions under 900 s and role maxima outside 3600-43200 s before the call;
    and the stack itself never lets Vault ask beyond the role: maxStsTtl <= the role's MaxSessionDuration as
    moto stores it."""
    import botocore.exceptions

    for name, (cred, role) in jit_in_moto.items():
        assert cred.inputs["maxStsTtl"] <= role["MaxSessionDuration"], name
    cred, role = jit_in_moto["cluster-admin"]

    before = datetime.datetime.now(datetime.timezone.utc)
    too_long = assume_as_vault(moto_aws, role["Arn"], "cluster-admin", 7200)
    lifetime = (too_long["Credentials"]["Expiration"] - before).total_seconds()
    assert 7200 - 30 <= lifetime <= 7200 + 30, "moto now limits sessions: assert the refusal here instead"

    with pytest.raises(botocore.exceptions.ParamValidationError, match="DurationSeconds.*valid min value: 900"):
        assume_as_vault(moto_aws, role["Arn"], "cluster-admin", 60)
    with pytest.raises(botocore.exceptions.ParamValidationError, match="MaxSessionDuration.*valid min value: 3600"):
        moto_aws.iam.create_role(RoleName="shorter-than-iam-allows", MaxSessionDuration=900,
                                 AssumeRolePolicyDocument=role_trust_text(role))


def role_trust_text(role: dict[str, Any]) -> str:
    trust = role["AssumeRolePolicyDocument"]
    return trust if isinstance(trust, str) else json.dumps(trust)
