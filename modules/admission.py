"""Admission control of images: the cluster runs only images from the stack's registry, by digest, and only those
signed by the stack's signing key (which only CI can use).

Kyverno (a pinned, reviewed chart, run from the stack's mirror) holds three ClusterPolicies, all enforced, all on
every Pod outside kube-system and kyverno (Kyverno derives the matching rules for Deployments, StatefulSets, Jobs and
the other Pod controllers, and registers its webhook for ephemeral containers with Pods):

- `verify-image-signatures`: an image of the stack's repositories must carry a cosign signature that verifies with
  the public half of the KMS signing key; the tag is resolved and pinned to the digest that was verified.
- `restrict-image-registries`: every container, init container and ephemeral container runs an image of the stack's
  repositories or of its allowlisted upstream caches; anything else is refused.
- `require-image-digests`: every image is referenced by digest, so what runs is what was verified or cached.

The webhooks fail closed: when Kyverno is down, Pods are refused rather than admitted unchecked. PolicyExceptions are
switched off, so that nobody with access to the cluster can exempt a workload; exceptions are blueprint data, shown
in every report.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s

from .base import HardenedComponent
from .charts import KYVERNO, release
from .cluster import EksCluster
from .iam import inline_policy
from .identity import PermissionsBoundary, WorkloadRole
from .registry import PULL_ACTIONS, SignedRegistry

NAMESPACE = KYVERNO.namespace
ADMISSION_SERVICE_ACCOUNT = "kyverno-admission-controller"
"""The admission controller's service account, as the chart names it for a release called `kyverno`."""
GUARDDUTY_NAMESPACE = "amazon-guardduty"
"""Where GuardDuty's runtime monitoring add-on runs its agent (managed by AWS, pulled from its registry)."""
EXCLUDED_NAMESPACES = ("kube-system", NAMESPACE, GUARDDUTY_NAMESPACE)
"""Where the policies do not apply: EKS's own add-ons and GuardDuty's runtime agent (managed by AWS, pulled from
its registries) and Kyverno itself (its webhooks cannot admit their own Pods). Kyverno's default filters also skip kube-public and kube-node-lease;
hardstack removes those filters, so that these two namespaces are checked like any other."""

WEBHOOK_TIMEOUT_SECONDS = 30
"""The longest a webhook may take (Kubernetes' maximum): verification reads the registry and KMS."""

ECR_AUTH_ACTIONS = ("ecr:GetAuthorizationToken",)
"""Registry sign-in; IAM cannot scope it to a repository."""
ECR_READ_ACTIONS = PULL_ACTIONS
"""Reading manifests and signatures (stored beside the image as `sha256-<digest>.sig`), as the repository policies
let the stack's roles do."""
SIGNATURE_KEY_ACTIONS = ("kms:DescribeKey", "kms:GetPublicKey")
"""Verification needs the public key only: cosign verifies locally, so neither kms:Verify nor kms:Sign."""

CREDENTIAL_PROVIDERS = ("amazon",)
"""The only registry credentials Kyverno uses: the ECR helper, with the admission controller's Pod Identity role."""

MATCH_PODS = {"any": [{"resources": {"kinds": ["Pod"]}}]}
EXCLUDE_SYSTEM = {"any": [{"resources": {"namespaces": list(EXCLUDED_NAMESPACES)}}]}
VERIFY_POLICY = "verify-image-signatures"
REGISTRIES_POLICY = "restrict-image-registries"
DIGEST_POLICY = "require-image-digests"


def kms_key_uri(key_arn: str) -> str:
    """The signing key as cosign names a KMS key: `awskms:///<arn>` (no endpoint: the region's, through the VPC)."""
    return f"awskms:///{key_arn}"


def _policy_spec(rules: list[dict[str, Any]], *, background: bool) -> dict[str, Any]:
    return {
        "admission": True,
        "background": background,
        "webhookConfiguration": {"failurePolicy": "Fail", "timeoutSeconds": WEBHOOK_TIMEOUT_SECONDS},
        "rules": rules,
    }


def verify_images_spec(signed_patterns: Sequence[str], key_arn: str) -> dict[str, Any]:
    """Images of the stack's repositories carry a valid signature of the signing key, checked at admission.

    No transparency log: the signature is made with a private KMS key in an account whose VPC has no route to a public
    log, so there is no Rekor entry or certificate timestamp to check; trust rests on the key alone (only CI may sign
    with it). Not in background scans: each Pod is verified when admitted, and a rescan every hour would re-read every
    image's signature."""
    return _policy_spec([{
        "name": "signed-by-the-stack-key",
        "match": MATCH_PODS,
        "exclude": EXCLUDE_SYSTEM,
        "verifyImages": [{
            "type": "Cosign",
            "imageReferences": list(signed_patterns),
            "failureAction": "Enforce",
            "required": True,
            "verifyDigest": True,
            "mutateDigest": True,
            "useCache": True,
            "imageRegistryCredentials": {"allowInsecureRegistry": False, "providers": list(CREDENTIAL_PROVIDERS)},
            "attestors": [{
                "count": 1,
                "entries": [{"keys": {
                    "kms": kms_key_uri(key_arn),
                    "rekor": {"ignoreTlog": True},
                    "ctlog": {"ignoreSCT": True},
                }}],
            }],
        }],
    }], background=False)


def _containers_pattern(value: str) -> dict[str, Any]:
    """A Kyverno pattern requiring `value` of the image of every container, init container and ephemeral
    container (`=(...)`: checked when present)."""
    return {"spec": {
        "=(ephemeralContainers)": [{"image": value}],
        "=(initContainers)": [{"image": value}],
        "containers": [{"image": value}],
    }}


def registries_spec(allowed_patterns: Sequence[str]) -> dict[str, Any]:
    """Every image comes from the stack's repositories or its allowlisted caches."""
    if not allowed_patterns:
        raise ValueError("an allowlist of image registries needs at least one pattern")
    return _policy_spec([{
        "name": "only-the-stack-registry",
        "match": MATCH_PODS,
        "exclude": EXCLUDE_SYSTEM,
        "validate": {
            "failureAction": "Enforce",
            "message": "images may only come from the stack's registry: " + ", ".join(allowed_patterns),
            "pattern": _containers_pattern(" | ".join(allowed_patterns)),
        },
    }], background=True)


def digests_spec() -> dict[str, Any]:
    """Every image is referenced by digest."""
    return _policy_spec([{
        "name": "images-by-digest",
        "match": MATCH_PODS,
        "exclude": EXCLUDE_SYSTEM,
        "validate": {
            "failureAction": "Enforce",
            "message": "images must be referenced by digest (<repository>@sha256:<digest>), never by tag alone",
            "pattern": _containers_pattern("*@sha256:*"),
        },
    }], background=True)


def kyverno_values() -> dict[str, Any]:
    """Values of the Kyverno chart beyond those its review depends on, which `charts.release` adds from
    `charts.KYVERNO.hardened` (images from the mirror, fail-closed webhooks, no PolicyExceptions, three admission
    replicas, no namespace filtered out but kube-system and kyverno)."""
    return {
        "crds": {"install": True},
        "config": {"excludeKyvernoNamespace": True},
        "features": {"registryClient": {"credentialHelpers": list(CREDENTIAL_PROVIDERS)}},
        "admissionController": {"rbac": {"serviceAccount": {"name": ADMISSION_SERVICE_ACCOUNT}}},
        "webhooksCleanup": {"enabled": True},
    }


def admission_statements(repository_arns: Sequence[str], key_arn: str) -> list[dict[str, Any]]:
    """What the admission controller's role may do: read the stack's repositories, read the signing key's public
    half. Nothing else."""
    return [
        {"Sid": "RegistrySignIn", "Effect": "Allow", "Action": list(ECR_AUTH_ACTIONS), "Resource": "*"},
        {"Sid": "ReadSignedImages", "Effect": "Allow", "Action": list(ECR_READ_ACTIONS),
         "Resource": sorted(repository_arns)},
        {"Sid": "SigningKeyPublicHalf", "Effect": "Allow", "Action": list(SIGNATURE_KEY_ACTIONS), "Resource": key_arn},
    ]


def _repository_arns(registry: SignedRegistry) -> list[pulumi.Output[str]]:
    """Every repository under the signed patterns: the image families and the platform mirrors."""
    return [r.arn for r in registry.all_repositories().values()]


class ImageAdmission(HardenedComponent):
    """Kyverno admitting only signed images of the stack's registry, by digest, in every namespace but kube-system
    and kyverno; its admission controller reads the registry and the signing key's public half through Pod Identity."""

    TYPE = "hardstack:admission:ImageAdmission"

    def __init__(
        self,
        name: str,
        cluster: EksCluster,
        registry: SignedRegistry,
        *,
        boundary: PermissionsBoundary,
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, tags=tags, opts=opts)
        in_cluster = pulumi.ResourceOptions(parent=self, provider=cluster.provider)
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": NAMESPACE, "labels": {
                "app.kubernetes.io/managed-by": "hardstack",
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
                "pod-security.kubernetes.io/audit": "restricted",
                "pod-security.kubernetes.io/warn": "restricted",
            }},
            opts=in_cluster,
        )
        self.identity = WorkloadRole(f"{name}-identity", boundary, cluster, namespace=NAMESPACE,
                                     service_account=ADMISSION_SERVICE_ACCOUNT, buckets={}, tags=tags,
                                     opts=pulumi.ResourceOptions(parent=self))
        self.role = self.identity.role
        self.role_policy = inline_policy(
            f"{name}-verify-images", self.role,
            pulumi.Output.all(pulumi.Output.all(*_repository_arns(registry)), registry.signing_key_arn).apply(
                lambda a: admission_statements(a[0], a[1])),
            self)
        self.release = release(f"{name}-kyverno", KYVERNO, mirror_registry=registry.mirror_registry,
                               values=kyverno_values(), provider=cluster.provider, parent=self,
                               depends_on=[self.namespace, self.identity.association, self.role_policy])
        signed = pulumi.Output.from_input(registry.signed_patterns())
        cached = pulumi.Output.from_input(registry.cached_patterns())
        specs: dict[str, pulumi.Input[dict[str, Any]]] = {
            VERIFY_POLICY: pulumi.Output.all(signed, registry.signing_key_arn).apply(
                lambda a: verify_images_spec(a[0], a[1])),
            REGISTRIES_POLICY: pulumi.Output.all(signed, cached).apply(lambda a: registries_spec([*a[0], *a[1]])),
            DIGEST_POLICY: digests_spec(),
        }
        after_release = pulumi.ResourceOptions(parent=self, provider=cluster.provider, depends_on=[self.release])
        self.policies = {
            policy: k8s.apiextensions.CustomResource(
                f"{name}-{policy}",
                api_version="kyverno.io/v1",
                kind="ClusterPolicy",
                metadata={"name": policy, "labels": {"app.kubernetes.io/managed-by": "hardstack"}},
                spec=spec,
                opts=after_release,
            )
            for policy, spec in specs.items()
        }
        self.register_outputs({"role": self.role.arn, "namespace": NAMESPACE, "policies": list(self.policies)})
