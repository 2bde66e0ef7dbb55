"""A hardened EKS cluster: private endpoint, CMK-encrypted secrets and logs, pinned add-ons, GPU runtime."""

from __future__ import annotations

import json
from typing import Mapping

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from hardstack.blueprints.compute import ClusterSpec
from hardstack.blueprints.network import Tier

from .base import HardenedComponent
from .iam import service_role
from .kms import CustomerManagedKey
from .network import SegmentedVpc

CONTROL_PLANE_LOGS = ("api", "audit", "authenticator", "controllerManager", "scheduler")
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
GPU_NODE_LABEL = "hardstack.io/gpu"
TENANT_LABEL = "hardstack.io/tenant"
SANDBOX_HANDLERS = {"gvisor": "runsc", "kata": "kata-qemu"}


class EksCluster(HardenedComponent):
    """An EKS cluster whose API endpoint is private (public only from an explicit allowlist), whose secrets are
    envelope-encrypted with the stack's CMK, whose five control-plane log types go to a CMK-encrypted log group,
    authenticated through access entries (no aws-auth ConfigMap), with pinned managed add-ons (VPC CNI with
    network policy enforcement, CoreDNS, kube-proxy, EBS CSI, Pod Identity agent), a default StorageClass that
    encrypts volumes with the CMK, and an `nvidia` RuntimeClass that schedules onto GPU nodes only."""

    TYPE = "hardstack:cluster:EksCluster"

    def __init__(
        self,
        name: str,
        spec: ClusterSpec,
        network: SegmentedVpc,
        key: CustomerManagedKey,
        log_key: CustomerManagedKey,
        *,
        boundary: pulumi.Input[str],
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, tags=tags, opts=opts)
        self.spec = spec
        self.cluster_name = f"{pulumi.get_stack()}-{name}"
        self.boundary = boundary
        child = self.child_opts()
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs",
            name=f"/aws/eks/{self.cluster_name}/cluster",
            retention_in_days=spec.log_retention_days,
            kms_key_id=log_key.arn,
            tags=self.tags,
            opts=child,
        )
        self.role = service_role(f"{name}-cluster-role", "eks.amazonaws.com", ["AmazonEKSClusterPolicy"],
                                 boundary=boundary, parent=self, tags=self.tags)
        aws.iam.RolePolicy(
            f"{name}-secrets-encryption",
            role=self.role.id,
            policy=key.use_statement(("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt"), "eks").apply(
                lambda st: json.dumps({"Version": "2012-10-17", "Statement": [st]})
            ),
            opts=child,
        )
        subnets = [s.id for tier in (Tier.inference, Tier.training) for s in network.subnets[tier]]
        public = bool(spec.public_access_cidrs)
        self.cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=self.cluster_name,
            role_arn=self.role.arn,
            version=spec.kubernetes_version,
            vpc_config={
                "subnet_ids": subnets,
                "endpoint_private_access": True,
                "endpoint_public_access": public,
                "public_access_cidrs": [str(c) for c in spec.public_access_cidrs] if public else None,
            },
            encryption_config={"provider": {"key_arn": key.arn}, "resources": ["secrets"]},
            enabled_cluster_log_types=list(CONTROL_PLANE_LOGS),
            access_config={"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": False},
            bootstrap_self_managed_addons=False,
            deletion_protection=True,
            upgrade_policy={"support_type": "STANDARD"},
            tags=self.tags,
            opts=self.child_opts(depends_on=[self.log_group]),
        )
        self.name: pulumi.Output[str] = self.cluster.name
        self._addons(name, key)
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=pulumi.Output.all(self.cluster.endpoint, self.cluster.certificate_authority, self.cluster.name)
            .apply(lambda a: json.dumps(_kubeconfig(*a))),
            enable_server_side_apply=True,
            opts=child,
        )
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=self.provider)
        self.storage_class = k8s.storage.v1.StorageClass(
            f"{name}-encrypted-gp3",
            metadata={
                "name": "encrypted-gp3",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            provisioner="ebs.csi.aws.com",
            parameters={"type": "gp3", "encrypted": "true", "kmsKeyId": key.arn},
            reclaim_policy="Retain",
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            opts=k8s_opts,
        )
        self.gpu_runtime = k8s.node.v1.RuntimeClass(
            f"{name}-nvidia-runtime",
            metadata={"name": "nvidia"},
            handler="nvidia",
            scheduling={
                "node_selector": {GPU_NODE_LABEL: "true"},
                "tolerations": [{"key": GPU_TAINT["key"], "operator": "Exists", "effect": GPU_TAINT["effect"]}],
            },
            opts=k8s_opts,
        )
        self.sandbox_runtime = None
        if spec.sandbox_runtime != "none":
            self.sandbox_runtime = k8s.node.v1.RuntimeClass(
                f"{name}-sandboxed-runtime",
                metadata={"name": "sandboxed"},
                handler=SANDBOX_HANDLERS[spec.sandbox_runtime],
                opts=k8s_opts,
            )
        self.register_outputs({"name": self.cluster.name, "endpoint": self.cluster.endpoint})

    def _addons(self, name: str, key: CustomerManagedKey) -> None:
        versions = self.spec.addons
        cni_role = service_role(f"{name}-vpc-cni-role", "pods.eks.amazonaws.com", ["AmazonEKS_CNI_Policy"],
                                boundary=self.boundary, parent=self, tags=self.tags)
        ebs_role = service_role(f"{name}-ebs-csi-role", "pods.eks.amazonaws.com", ["service-role/AmazonEBSCSIDriverPolicy"],
                                boundary=self.boundary, parent=self, tags=self.tags)
        aws.iam.RolePolicy(
            f"{name}-ebs-csi-cmk",
            role=ebs_role.id,
            policy=pulumi.Output.all(key.arn, key.region).apply(lambda a: json.dumps(_ebs_key_policy(*a))),
            opts=self.child_opts(),
        )
        self.addons: dict[str, aws.eks.Addon] = {}
        wanted = [
            ("eks-pod-identity-agent", versions.pod_identity_agent, None, None),
            ("vpc-cni", versions.vpc_cni, {"enableNetworkPolicy": "true"}, ("aws-node", cni_role)),
            ("kube-proxy", versions.kube_proxy, None, None),
            ("coredns", versions.coredns, None, None),
            ("aws-ebs-csi-driver", versions.ebs_csi_driver, None, ("ebs-csi-controller-sa", ebs_role)),
        ]
        for addon, version, configuration, identity in wanted:
            self.addons[addon] = aws.eks.Addon(
                f"{name}-{addon}",
                cluster_name=self.cluster.name,
                addon_name=addon,
                addon_version=version,
                configuration_values=json.dumps(configuration) if configuration else None,
                pod_identity_associations=[{"service_account": identity[0], "role_arn": identity[1].arn}]
                if identity else None,
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="OVERWRITE",
                tags=self.tags,
                opts=self.child_opts(),
            )


def _kubeconfig(endpoint: str, certificate_authority: dict, cluster_name: str) -> dict:
    """Authenticates with short-lived tokens from `aws eks get-token`; no static credentials."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": endpoint,
                                                        "certificate-authority-data": certificate_authority["data"]}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "current-context": cluster_name,
        "users": [{"name": cluster_name, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", cluster_name, "--output", "json"],
        }}}],
    }


def _ebs_key_policy(key_arn: str, region: str) -> dict:
    """The EBS CSI driver creates volumes encrypted with the CMK: it needs grants for EC2, through EC2 only."""
    via_ec2 = {"kms:ViaService": f"ec2.{region}.amazonaws.com"}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["kms:CreateGrant"],
                "Resource": key_arn,
                "Condition": {"StringEquals": via_ec2, "Bool": {"kms:GrantIsForAWSResource": "true"}},
            },
            {
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKeyWithoutPlaintext",
                           "kms:ReEncryptFrom", "kms:ReEncryptTo"],
                "Resource": key_arn,
                "Condition": {"StringEquals": via_ec2},
            },
        ],
    }
