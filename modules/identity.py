"""Who may do what in AWS: a permission boundary on every role, persona roles for people (MFA, one hour),
just-in-time roles only a credential broker can assume, and one least-privilege role per tenant's workloads."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pulumi
import pulumi_aws as aws

from hardstack.blueprints.compute import TenantSpec
from hardstack.blueprints.data import Purpose
from hardstack.blueprints.identity import AWS_PERSONAS, IdentitySpec, Persona

from .base import HardenedComponent, account_and_partition
from .cluster import EksCluster
from .iam import PERSONA_TAG, broker_trust, document, human_trust, inline_policy, role, service_trust
from .storage import OBJECT_READ_ACTIONS, EncryptedBucket

BOUNDARY_SERVICES = ("autoscaling", "cloudwatch", "ec2", "ecr", "eks", "eks-auth", "elasticloadbalancing", "kms",
                     "logs", "s3", "sns")
"""What any role of the stack may ever do, in the stack's region only: the services its components use."""

PROTECTED_ACTIONS = (
    "ec2:DeleteFlowLogs", "eks:AssociateAccessPolicy", "eks:CreateAccessEntry", "eks:DeleteCluster",
    "eks:UpdateClusterConfig", "kms:DisableKey", "kms:DisableKeyRotation", "kms:PutKeyPolicy",
    "kms:ScheduleKeyDeletion", "logs:DeleteLogGroup", "logs:DeleteRetentionPolicy", "logs:DisassociateKmsKey",
    "s3:BypassGovernanceRetention", "s3:DeleteBucket", "s3:DeleteBucketPolicy", "s3:PutBucketObjectLockConfiguration",
    "s3:PutBucketPolicy", "s3:PutBucketPublicAccessBlock", "s3:PutEncryptionConfiguration",
)
"""Never allowed to a role of the stack, whatever its policies say: the controls that protect everything else."""

SERVICE_LINKED_ROLES = ("autoscaling.amazonaws.com", "eks.amazonaws.com", "eks-nodegroup.amazonaws.com",
                        "elasticloadbalancing.amazonaws.com")

CLUSTER_ADMIN_POLICY = "AmazonEKSClusterAdminPolicy"
OBSERVE_ACTIONS = ("cloudwatch:GetMetricData", "cloudwatch:ListMetrics")
"""Reads that IAM cannot scope to a resource."""
LOG_READ_ACTIONS = ("logs:DescribeLogStreams", "logs:FilterLogEvents", "logs:GetLogEvents")

PERSONA_DATA: dict[Persona, dict[str, tuple[Purpose, ...]]] = {
    Persona.data_scientist: {
        "read": (Purpose.training_data, Purpose.feature_store),
        "read-write": (Purpose.evaluation_data,),
    },
    Persona.mlops_engineer: {
        "read": (Purpose.inference_logs,),
        "read-write": (Purpose.model_artifacts,),
    },
    Persona.platform_admin: {},
}
"""Which data sets each persona reads or writes, by purpose."""

DENIED_DATA: dict[Persona, tuple[Purpose, ...]] = {Persona.mlops_engineer: (Purpose.training_data,)}
"""Data a persona must never read, denied explicitly so that no later grant can open it."""


class PermissionsBoundary(HardenedComponent):
    """The boundary every role of the stack carries: the stack's services in its region only, service-linked
    roles of named services only, and never the actions that would switch off keys, logs, object lock or
    cluster access control."""

    TYPE = "hardstack:identity:PermissionsBoundary"

    def __init__(self, name: str, *, tags: Mapping[str, str] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, tags=tags, opts=opts)
        _, _, region = account_and_partition()
        self.policy = aws.iam.Policy(
            f"{name}-policy",
            name=f"{pulumi.get_stack()}-{name}",
            description="hardstack permission boundary: the stack's services, its region, no control tampering",
            policy=region.apply(lambda r: document(boundary_statements(r))),
            tags={**self.tags, "hardstack:purpose": "permissions-boundary"},
            opts=self.child_opts(),
        )
        self.arn: pulumi.Output[str] = self.policy.arn
        self.register_outputs({"arn": self.arn})


def boundary_statements(region: str) -> list[dict[str, Any]]:
    return [
        {
            "Sid": "StackServicesInItsRegion",
            "Effect": "Allow",
            "Action": [f"{s}:*" for s in BOUNDARY_SERVICES],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:RequestedRegion": region}},
        },
        {
            "Sid": "NamedServiceLinkedRoles",
            "Effect": "Allow",
            "Action": ["iam:CreateServiceLinkedRole"],
            "Resource": "*",
            "Condition": {"StringEquals": {"iam:AWSServiceName": list(SERVICE_LINKED_ROLES)}},
        },
        {"Sid": "NeverTamperWithControls", "Effect": "Deny", "Action": list(PROTECTED_ACTIONS), "Resource": "*"},
    ]


class PersonaRoles(HardenedComponent):
    """One role per person-facing persona (data-scientist, mlops-engineer, platform-admin): assumable only with
    MFA signed in within the bound, for one hour at most, under the boundary, granted the stack's data by
    purpose and nothing of the cluster (cluster access is just in time, through Vault)."""

    TYPE = "hardstack:identity:PersonaRoles"

    def __init__(
        self,
        name: str,
        spec: IdentitySpec,
        boundary: PermissionsBoundary,
        *,
        buckets: Mapping[str, EncryptedBucket],
        cluster: EksCluster | None = None,
        log_groups: Sequence[aws.cloudwatch.LogGroup] = (),
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, tags=tags, opts=opts)
        account, partition, region = account_and_partition()
        trusted = pulumi.Output.from_input(spec.trusted_account) if spec.trusted_account else account
        trust = pulumi.Output.all(trusted, partition).apply(lambda a: human_trust(a[0], a[1], spec.mfa_max_age_seconds))
        self.roles: dict[Persona, aws.iam.Role] = {}
        for persona in AWS_PERSONAS:
            created = role(f"{name}-{persona.value}", trust, boundary=boundary.arn, parent=self,
                           tags={**self.tags, PERSONA_TAG: persona.value})
            self.roles[persona] = created
            for intent, purposes in PERSONA_DATA[persona].items():
                for bucket in buckets.values():
                    if bucket.spec.purpose in purposes:
                        {"read": bucket.grant_read, "read-write": bucket.grant_read_write}[intent](created)
            denied = [b.arn for b in buckets.values() if b.spec.purpose in DENIED_DATA.get(persona, ())]
            if denied:
                inline_policy(f"{name}-{persona.value}-no-raw-data", created, pulumi.Output.all(*denied).apply(
                    lambda arns: [{"Sid": "NeverRawTrainingData", "Effect": "Deny",
                                   "Action": list(OBJECT_READ_ACTIONS), "Resource": [f"{a}/*" for a in arns]}]), self)
        admin = self.roles[Persona.platform_admin]
        observe: list[Any] = [{"Sid": "Metrics", "Effect": "Allow", "Action": list(OBSERVE_ACTIONS), "Resource": "*"},
                              pulumi.Output.all(account, partition, region).apply(lambda a: {
                                  "Sid": "Alarms", "Effect": "Allow", "Action": ["cloudwatch:DescribeAlarms"],
                                  "Resource": f"arn:{a[1]}:cloudwatch:{a[2]}:{a[0]}:alarm:*"})]
        if log_groups:
            observe.append(pulumi.Output.all(*[g.arn for g in log_groups]).apply(lambda arns: {
                "Sid": "StackLogs", "Effect": "Allow", "Action": list(LOG_READ_ACTIONS),
                "Resource": sorted(f"{a}:*" for a in arns)}))
        inline_policy(f"{name}-platform-admin-observe", admin, observe, self)
        if cluster is not None:
            for persona in (Persona.mlops_engineer, Persona.platform_admin):
                inline_policy(f"{name}-{persona.value}-describe-cluster", self.roles[persona],
                              cluster.cluster.arn.apply(describe_cluster), self)
        self.register_outputs({p.value: r.arn for p, r in self.roles.items()})


def describe_cluster(arn: str) -> list[dict[str, Any]]:
    """Enough to write a kubeconfig; what the caller may do inside is the access entry's business."""
    return [{"Sid": "DescribeCluster", "Effect": "Allow", "Action": ["eks:DescribeCluster"], "Resource": arn}]


class JustInTimeRoles(HardenedComponent):
    """The only ways into the cluster for people: `cluster-admin` (EKS cluster admin policy) and, per tenant,
    `training-<tenant>` (the tenant's data-scientist group, bound in its namespace). Only the credential broker's
    role may assume them, so every session is issued by Vault after an MFA sign-in and expires."""

    TYPE = "hardstack:identity:JustInTimeRoles"

    def __init__(
        self,
        name: str,
        spec: IdentitySpec,
        boundary: PermissionsBoundary,
        cluster: EksCluster,
        *,
        tenants: Sequence[TenantSpec] = (),
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, tags=tags, opts=opts)
        assert spec.vault is not None, "just-in-time roles need a credential broker (identity.vault)"
        account, partition, _ = account_and_partition()
        broker_account = pulumi.Output.from_input(spec.vault.server_account) if spec.vault.server_account else account
        trust = pulumi.Output.all(broker_account, partition).apply(
            lambda a: broker_trust(a[0], a[1], spec.vault.server_role))  # type: ignore[union-attr]
        self.roles: dict[str, aws.iam.Role] = {}

        def jit_role(role_name: str, persona: Persona, groups: list[str]) -> aws.iam.Role:
            created = role(f"{name}-{role_name}", trust, boundary=boundary.arn, parent=self,
                           tags={**self.tags, PERSONA_TAG: persona.value, "hardstack:access": "just-in-time"})
            inline_policy(f"{name}-{role_name}-describe-cluster", created, cluster.cluster.arn.apply(describe_cluster),
                          self)
            entry = aws.eks.AccessEntry(
                f"{name}-{role_name}-access",
                cluster_name=cluster.name,
                principal_arn=created.arn,
                type="STANDARD",
                kubernetes_groups=groups or None,
                tags=self.tags,
                opts=self.child_opts(),
            )
            self.roles[role_name] = created
            self.entries[role_name] = entry
            return created

        self.entries: dict[str, aws.eks.AccessEntry] = {}
        jit_role("cluster-admin", Persona.platform_admin, [])
        aws.eks.AccessPolicyAssociation(
            f"{name}-cluster-admin-policy",
            cluster_name=cluster.name,
            principal_arn=self.roles["cluster-admin"].arn,
            policy_arn=partition.apply(lambda p: f"arn:{p}:eks::aws:cluster-access-policy/{CLUSTER_ADMIN_POLICY}"),
            access_scope={"type": "cluster"},
            opts=self.child_opts(depends_on=[self.entries["cluster-admin"]]),
        )
        for tenant in tenants:
            jit_role(f"training-{tenant.name}", Persona.data_scientist, [tenant_group(tenant, Persona.data_scientist)])
        self.register_outputs({n: r.arn for n, r in self.roles.items()})


def tenant_group(tenant: TenantSpec, persona: Persona) -> str:
    """The identity-provider group of a tenant's persona, as the tenant's RoleBindings name it."""
    return tenant.groups.get(persona.value, f"{tenant.name}:{persona.value}")  # type: ignore[call-overload]


class WorkloadRole(HardenedComponent):
    """A workload's AWS role through EKS Pod Identity: only one service account in one namespace gets it, and it
    reads and writes exactly the buckets named."""

    TYPE = "hardstack:identity:WorkloadRole"

    def __init__(
        self,
        name: str,
        boundary: PermissionsBoundary,
        cluster: EksCluster,
        *,
        namespace: str,
        service_account: str,
        buckets: Mapping[str, EncryptedBucket],
        reads: Sequence[str] = (),
        writes: Sequence[str] = (),
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, tags=tags, opts=opts)
        account, _, _ = account_and_partition()
        trust = pulumi.Output.all(account, cluster.cluster.arn).apply(
            lambda a: service_trust("pods.eks.amazonaws.com", a[0], a[1]))
        self.role = role(f"{name}-role", trust, boundary=boundary.arn, parent=self,
                         tags={**self.tags, "hardstack:namespace": namespace})
        for bucket_name in sorted(set(reads) - set(writes)):
            buckets[bucket_name].grant_read(self.role)
        for bucket_name in sorted(set(writes) - set(reads)):
            buckets[bucket_name].grant_write(self.role)
        for bucket_name in sorted(set(reads) & set(writes)):
            buckets[bucket_name].grant_read_write(self.role)
        self.association = aws.eks.PodIdentityAssociation(
            f"{name}-pod-identity",
            cluster_name=cluster.name,
            namespace=namespace,
            service_account=service_account,
            role_arn=self.role.arn,
            tags=self.tags,
            opts=self.child_opts(),
        )
        self.register_outputs({"role": self.role.arn})
