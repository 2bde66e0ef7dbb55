"""The stack's signed registry: ECR repositories hardened when they are created (by the stack, or by ECR on a
pull-through cache's first pull), pullable only by the cluster's roles through the stack's VPC endpoint, and a
signing key that only CI can sign with."""

from __future__ import annotations

import json
import re
from typing import Any, Mapping, Sequence

import pulumi
import pulumi_aws as aws
from pydantic import TypeAdapter, ValidationError

from hardstack.blueprints.supply_chain import UPSTREAMS, ImageRef, RegistrySpec

from .base import HardenedComponent, account_and_partition
from .charts import MIRROR_PREFIX
from .iam import inline_policy, role, service_trust
from .kms import DELETION_WINDOW_DAYS, KEY_ADMIN_ACTIONS, CustomerManagedKey

PULL_ACTIONS = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
"""Reading an image: its manifest and its layers (what a node, Kyverno reading signatures, and cosign do)."""
PUSH_ACTIONS = ("ecr:BatchCheckLayerAvailability", "ecr:CompleteLayerUpload", "ecr:InitiateLayerUpload",
                "ecr:PutImage", "ecr:UploadLayerPart")
"""Writing an image or a signature (a signature is an image manifest under the tag `sha256-<digest>.sig`)."""
SIGN_IN_ACTIONS = ("ecr:GetAuthorizationToken",)
"""The registry's login token: IAM cannot scope it to a repository (it grants nothing by itself)."""
PULL_THROUGH_ACTIONS = ("ecr:BatchImportUpstreamImage", "ecr:CreateRepository")
"""What a node needs for a pull-through cache's first pull of an image: ECR creates the repository and imports it."""
TEMPLATE_ROLE_ACTIONS = ("ecr:CreateRepository", "ecr:TagResource")
TEMPLATE_KEY_ACTIONS = ("kms:CreateGrant", "kms:DescribeKey", "kms:RetireGrant")
"""What ECR needs, as the creation templates' role, to create a cached repository encrypted with the stack's CMK
and tagged like the stack's other resources."""
SIGN_ACTIONS = ("kms:DescribeKey", "kms:GetPublicKey", "kms:Sign")
VERIFY_ACTIONS = ("kms:DescribeKey", "kms:GetPublicKey", "kms:Verify")

SIGNING_KEY_SPEC = "ECC_NIST_P256"
"""cosign's KMS signer signs with ECDSA P-256 / SHA-256. Asymmetric KMS keys cannot rotate their material: a new
key (and a new public key in the admission policy) replaces an old one."""
CI_TAG = ("hardstack:purpose", "ci-push-and-sign")
INSPECTOR_ROLE = "aws-service-role/inspector2.amazonaws.com/AWSServiceRoleForAmazonInspector2"
"""Amazon Inspector's service-linked role (only Inspector can assume it), which enhanced scanning acts as, outside
any VPC endpoint: the repository policies' pull denies spare it so that they can never stop continuous scanning."""

_REPOSITORY_PATH = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")


class SignedRegistry(HardenedComponent):
    """ECR repositories `<stack>/<family>` per image family and `<stack>/platform/<path>` per mirrored platform
    image: tags immutable (a tag never moves to another digest, and a signature, tagged `sha256-<digest>.sig`, is
    never replaced: each image is signed once), scanned on push and continuously (registry-level enhanced
    scanning), encrypted with the stack's CMK, the newest `keep_images` images kept.

    * Pull-through caches of allowlisted upstream repositories create their repositories from creation templates
      carrying the same hardening (CMK, immutable tags, lifecycle, repository policy).
    * Repository policies (`allow_pulls`): only the roles named may pull, only through the stack's ECR VPC
      endpoint; only CI may push.
    * Signing: an ECC P-256 KMS key whose policy denies `kms:Sign` to every principal but the CI role, which CI
      assumes through OpenID Connect federation, for the exact subjects declared.
    """

    TYPE = "hardstack:registry:SignedRegistry"

    def __init__(
        self,
        name: str,
        spec: RegistrySpec,
        key: CustomerManagedKey,
        *,
        boundary: pulumi.Input[str],
        ecr_endpoint_id: pulumi.Input[str],
        mirrors: Sequence[str] = (),
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, tags=tags, opts=opts)
        self.spec = spec
        self.key = key
        self.boundary = boundary
        self.ecr_endpoint_id = pulumi.Output.from_input(ecr_endpoint_id)
        self.mirrors = checked_mirrors(mirrors)
        self.stack = pulumi.get_stack()
        self._pulls_allowed = False
        account, partition, region = account_and_partition()
        self._account, self._partition, self._region = account, partition, region
        self.lifecycle_policy = lifecycle_policy(spec.keep_images)

        family_names = {family: f"{name}-{family}" for family in spec.repositories}
        mirror_names = {path: f"{name}-mirror-{path.replace('/', '-')}" for path in self.mirrors}
        clash = sorted(set(family_names.values()) & set(mirror_names.values()))
        if clash or len(set(mirror_names.values())) != len(mirror_names):
            raise ValueError(f"mirrors {list(self.mirrors)} and repositories {spec.repositories} give resources the "
                             f"same name {clash}; allowed: names distinct once '/' is read as '-'")
        self.repositories: dict[str, aws.ecr.Repository] = {
            family: self._repository(resource_name, f"{self.stack}/{family}")
            for family, resource_name in family_names.items()
        }
        self.mirror_repositories: dict[str, aws.ecr.Repository] = {
            path: self._repository(resource_name, f"{self.stack}/{MIRROR_PREFIX}/{path}")
            for path, resource_name in mirror_names.items()
        }
        first = next(iter(self.repositories.values()))
        self.host: pulumi.Output[str] = first.repository_url.apply(lambda url: url.split("/", 1)[0])
        self.mirror_registry: pulumi.Output[str] = pulumi.Output.concat(self.host, f"/{self.stack}/{MIRROR_PREFIX}")

        self.scanning = registry_scanning(f"{name}-scanning", self.child_opts())

        self.ci_role = role(f"{name}-ci", ci_trust(spec), boundary=boundary, parent=self,
                            tags={**self.tags, CI_TAG[0]: CI_TAG[1]})
        self.signing_key = aws.kms.Key(
            f"{name}-signing-key",
            description=f"{self.stack}: signs the stack's container images (cosign); only CI may sign",
            key_usage="SIGN_VERIFY",
            customer_master_key_spec=SIGNING_KEY_SPEC,
            enable_key_rotation=False,
            deletion_window_in_days=DELETION_WINDOW_DAYS,
            is_enabled=True,
            multi_region=False,
            bypass_policy_lockout_safety_check=False,
            policy=pulumi.Output.all(self.ci_role.arn, account, partition).apply(
                lambda a: json.dumps(signing_key_policy(a[0], a[1], a[2], key.spec.administrators), indent=2)),
            tags=self.tags,
            opts=self.child_opts(),
        )
        self.signing_alias = aws.kms.Alias(
            f"{name}-signing-alias",
            name=f"alias/hardstack/{self.stack}/{name}-signing",
            target_key_id=self.signing_key.key_id,
            opts=self.child_opts(),
        )
        self.signing_key_arn: pulumi.Output[str] = self.signing_key.arn
        pushed = [r.arn for r in self.all_repositories().values()]
        inline_policy(f"{name}-ci-push-and-sign", self.ci_role,
                      pulumi.Output.all(self.signing_key.arn, *pushed).apply(lambda a: ci_statements(a[1:], a[0])),
                      self)

        self.template_role: aws.iam.Role | None = None
        if spec.pull_through:
            self.template_role = role(f"{name}-cache-template", account.apply(
                lambda a: service_trust("ecr.amazonaws.com", a)), boundary=boundary, parent=self, tags=self.tags)
            inline_policy(f"{name}-cache-template-create", self.template_role, pulumi.Output.all(
                account, partition, region, key.use_statement(TEMPLATE_KEY_ACTIONS, "ecr"),
            ).apply(lambda a: [{
                "Sid": "CreateCachedRepositories",
                "Effect": "Allow",
                "Action": list(TEMPLATE_ROLE_ACTIONS),
                "Resource": [repository_arn(a[1], a[2], a[0], f"{p.upstream}/{allowed}")
                             for p in spec.pull_through for allowed in p.allow],
            }, a[3]]), self)

        self.register_outputs({
            "host": self.host,
            "mirrorRegistry": self.mirror_registry,
            "signingKeyArn": self.signing_key_arn,
            "ciRoleArn": self.ci_role.arn,
            "repositoryUrls": {f: r.repository_url for f, r in self.repositories.items()},
        })

    def _repository(self, resource_name: str, repository_name: str) -> aws.ecr.Repository:
        repository = aws.ecr.Repository(
            resource_name,
            name=repository_name,
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "KMS", "kms_key": self.key.arn}],
            force_delete=False,
            tags=self.tags,
            opts=self.child_opts(),
        )
        aws.ecr.LifecyclePolicy(f"{resource_name}-lifecycle", repository=repository.name,
                                policy=self.lifecycle_policy, opts=self.child_opts())
        return repository

    def all_repositories(self) -> dict[str, aws.ecr.Repository]:
        """The stack's own repositories (families, then mirrors) by repository name under the stack's prefix."""
        return {**{f: r for f, r in self.repositories.items()},
                **{f"{MIRROR_PREFIX}/{p}": r for p, r in self.mirror_repositories.items()}}

    # --- who may pull --------------------------------------------------------------------------------------

    def allow_pulls(self, role_arns: Sequence[pulumi.Input[str]]) -> None:
        """Let exactly these roles (the cluster's nodes, workloads and admission controller) pull, and only
        through the stack's ECR endpoint: a repository policy on every repository, and the same policy in the
        creation template of every pull-through cache, created here with its cache rule (a cache never exists
        without the template that hardens what it creates). Call once, after every role exists: ECR refuses a
        policy naming a role it cannot find."""
        if self._pulls_allowed:
            raise RuntimeError(f"{self.component_name}: allow_pulls was already called; pass every role at once")
        self._pulls_allowed = True
        name = self.component_name

        def text(ci_pushes: bool) -> pulumi.Output[str]:
            return pulumi.Output.all(self.ecr_endpoint_id, self.ci_role.arn, self._account, self._partition,
                                     *role_arns).apply(
                lambda a: json.dumps(repository_policy(
                    a[4:], ci_role_arn=a[1], endpoint_id=a[0],
                    inspector_role_arn=f"arn:{a[3]}:iam::{a[2]}:role/{INSPECTOR_ROLE}", ci_pushes=ci_pushes),
                    indent=2))

        own = text(ci_pushes=True)
        for resource_name, repository in self._by_resource_name().items():
            aws.ecr.RepositoryPolicy(f"{resource_name}-policy", repository=repository.name, policy=own,
                                     opts=self.child_opts())
        if not self.spec.pull_through:
            return
        cached = text(ci_pushes=False)
        assert self.template_role is not None
        for cache in self.spec.pull_through:
            template = aws.ecr.RepositoryCreationTemplate(
                f"{name}-{cache.upstream}-template",
                prefix=cache.upstream,
                description=f"{self.stack}: repositories the {cache.upstream} pull-through cache creates",
                applied_fors=["PULL_THROUGH_CACHE"],
                custom_role_arn=self.template_role.arn,
                encryption_configurations=[{"encryption_type": "KMS", "kms_key": self.key.arn}],
                image_tag_mutability="IMMUTABLE",
                lifecycle_policy=self.lifecycle_policy,
                repository_policy=cached,
                resource_tags=self.tags,
                opts=self.child_opts(),
            )
            aws.ecr.PullThroughCacheRule(
                f"{name}-{cache.upstream}-cache",
                ecr_repository_prefix=cache.upstream,
                upstream_registry_url=UPSTREAMS[cache.upstream],
                opts=self.child_opts(depends_on=[template]),
            )

    def _by_resource_name(self) -> dict[str, aws.ecr.Repository]:
        return {r.pulumi_resource_name: r for r in self.all_repositories().values()}

    def grant_pull_through(self, role_: aws.iam.Role) -> aws.iam.RolePolicy | None:
        """Let `role_` (a node role) trigger the first pull of an allowlisted upstream image: create its cached
        repository and import it, for the allowlisted upstream repositories only. None without a cache."""
        if not self.spec.pull_through:
            return None
        patterns = [f"{p.upstream}/{allowed}" for p in self.spec.pull_through for allowed in p.allow]
        return inline_policy(
            f"{self.component_name}-pull-through-{role_.pulumi_resource_name}", role_,
            pulumi.Output.all(self._account, self._partition, self._region).apply(lambda a: [{
                "Sid": "CacheAllowlistedUpstreamImages",
                "Effect": "Allow",
                "Action": list(PULL_THROUGH_ACTIONS),
                "Resource": [repository_arn(a[1], a[2], a[0], p) for p in patterns],
            }]), self)

    def grant_verify(self, role_: aws.iam.Role) -> aws.iam.RolePolicy:
        """Let `role_` (an admission controller) read the signing key's public key and verify with it."""
        return inline_policy(
            f"{self.component_name}-verify-{role_.pulumi_resource_name}", role_,
            self.signing_key.arn.apply(lambda arn: [{
                "Sid": "VerifyImageSignatures", "Effect": "Allow", "Action": list(VERIFY_ACTIONS), "Resource": arn}]),
            self)

    # --- names for the cluster -----------------------------------------------------------------------------

    def image(self, ref: str) -> pulumi.Output[str]:
        """An ImageRef (`<family>@sha256:...` or `<upstream>/<path>@sha256:...`) as the full reference a pod
        runs: `<host>/<stack>/<family>@sha256:...` or `<host>/<upstream>/<path>@sha256:...`."""
        try:
            TypeAdapter(ImageRef).validate_python(ref)
        except ValidationError:
            raise ValueError(f"image {ref!r} is not `<repository>@sha256:<64 hex digits>`") from None
        wrong_source = self.spec.source_of(ref)
        if wrong_source:
            raise ValueError(f"image {ref!r}: {wrong_source}")
        repository, digest = ref.split("@", 1)
        path = f"{self.stack}/{repository}" if repository in self.spec.repositories else repository
        return pulumi.Output.concat(self.host, "/", path, "@", digest)

    def signed_patterns(self) -> list[pulumi.Output[str]]:
        """Image patterns whose signatures admission verifies with the signing key: everything under the stack's
        prefix (its families and the platform mirrors; CI, which alone pushes there, signs each image)."""
        return [pulumi.Output.concat(self.host, f"/{self.stack}/*")]

    def cached_patterns(self) -> list[pulumi.Output[str]]:
        """Image patterns of the allowlisted upstream repositories served by the pull-through caches, e.g.
        `<host>/ecr-public/nvidia/*`: admitted by digest, not signed by CI."""
        return [pulumi.Output.concat(self.host, f"/{p.upstream}/{allowed}")
                for p in self.spec.pull_through for allowed in p.allow]


def registry_scanning(name: str, opts: pulumi.ResourceOptions) -> aws.ecr.RegistryScanningConfiguration:
    """Enhanced (Amazon Inspector) scanning, continuous, of every repository of the registry, those the caches
    create included: images are rescanned as new vulnerabilities are published, not only when pushed.

    The scanning configuration is a per-account-and-region singleton, not a resource of this stack alone: two
    stacks in one account and region write the same setting (both write this one), and destroying a stack
    resets the registry to basic scanning. Deploying it needs `inspector2:Enable` (ECR turns Inspector on)."""
    return aws.ecr.RegistryScanningConfiguration(
        name,
        scan_type="ENHANCED",
        rules=[{"scan_frequency": "CONTINUOUS_SCAN",
                "repository_filters": [{"filter": "*", "filter_type": "WILDCARD"}]}],
        opts=opts,
    )


def checked_mirrors(mirrors: Sequence[str]) -> tuple[str, ...]:
    """Upstream repository paths to mirror, each a valid ECR repository path and listed once."""
    seen: list[str] = []
    for path in mirrors:
        if not _REPOSITORY_PATH.fullmatch(path):
            raise ValueError(f"mirror {path!r} is not a repository path; allowed: lower-case segments joined by '/'")
        if path in seen:
            raise ValueError(f"mirror {path!r} listed more than once")
        seen.append(path)
    return tuple(seen)


def repository_arn(partition: str, region: str, account: str, path: str) -> str:
    return f"arn:{partition}:ecr:{region}:{account}:repository/{path}"


def lifecycle_policy(keep_images: int) -> str:
    """Expire all but the newest `keep_images` images. ECR counts every manifest as an image, signatures included;
    a signature is pushed after its image, so it is never expired while its image is kept."""
    return json.dumps({"rules": [{
        "rulePriority": 1,
        "description": f"Keep the newest {keep_images} images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep_images},
        "action": {"type": "expire"},
    }]}, indent=2)


def ci_trust(spec: RegistrySpec) -> str:
    """Only tokens of the CI's OIDC provider, for the declared audience and one of the exact declared subjects."""
    host = spec.ci.oidc_provider_arn.split(":oidc-provider/", 1)[1]
    subjects: str | list[str] = spec.ci.subjects[0] if len(spec.ci.subjects) == 1 else list(spec.ci.subjects)
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "DeclaredCiPipelinesOnly",
        "Effect": "Allow",
        "Principal": {"Federated": spec.ci.oidc_provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{host}:aud": spec.ci.audience, f"{host}:sub": subjects}},
    }]}, indent=2)


def ci_statements(repository_arns: Sequence[str], signing_key_arn: str) -> list[dict[str, Any]]:
    """CI pushes and signs the stack's images: push to its repositories, read what cosign reads there (the image
    it signs and existing signatures), sign with the stack's key. Nothing else."""
    arns = sorted(repository_arns)
    return [
        {"Sid": "RegistrySignIn", "Effect": "Allow", "Action": list(SIGN_IN_ACTIONS), "Resource": "*"},
        {"Sid": "PushToTheStackRepositories", "Effect": "Allow", "Action": list(PUSH_ACTIONS), "Resource": arns},
        {"Sid": "ReadWhatSigningReads", "Effect": "Allow", "Action": list(PULL_ACTIONS), "Resource": arns},
        {"Sid": "SignWithTheStackKey", "Effect": "Allow", "Action": list(SIGN_ACTIONS), "Resource": signing_key_arn},
    ]


def signing_key_policy(ci_role_arn: str, account: str, partition: str,
                       administrators: Sequence[str] = ()) -> dict[str, Any]:
    """Administrators administer (never sign: the same administration actions as every CMK of the stack); the
    account may read the public key and verify; the CI role signs; every other principal is denied signing
    outright, whatever IAM policies or grants say."""
    root = f"arn:{partition}:iam::{account}:root"
    admins = list(administrators) or [root]
    return {"Version": "2012-10-17", "Statement": [
        {
            "Sid": "KeyAdministrationWithoutUse",
            "Effect": "Allow",
            "Principal": {"AWS": admins if len(admins) > 1 else admins[0]},
            "Action": list(KEY_ADMIN_ACTIONS),
            "Resource": "*",
        },
        {
            "Sid": "AccountVerifiesSignatures",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": list(VERIFY_ACTIONS),
            "Resource": "*",
        },
        {
            "Sid": "CiSigns",
            "Effect": "Allow",
            "Principal": {"AWS": ci_role_arn},
            "Action": list(SIGN_ACTIONS),
            "Resource": "*",
        },
        {
            "Sid": "NobodyElseSigns",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "kms:Sign",
            "Resource": "*",
            "Condition": {"ArnNotEquals": {"aws:PrincipalArn": ci_role_arn}},
        },
    ]}


def repository_policy(pullers: Sequence[str], *, ci_role_arn: str, endpoint_id: str, inspector_role_arn: str,
                      ci_pushes: bool) -> dict[str, Any]:
    """Pulls by the named roles through the endpoint only; pushes by CI only (and, for repositories a cache
    creates, by nobody: ECR alone imports into them). Same-account IAM policies allow on their own, so the
    limits are explicit denies: no pull but through the endpoint, no pull by another principal, no push but by
    CI. CI (which signs from outside the VPC) and Inspector's scanning role are the only exceptions."""
    exempt = sorted({ci_role_arn, inspector_role_arn})
    statements: list[dict[str, Any]] = []
    if pullers:
        statements.append({
            "Sid": "PullByTheStackRolesThroughTheEndpoint",
            "Effect": "Allow",
            "Principal": {"AWS": sorted(set(pullers))},
            "Action": list(PULL_ACTIONS),
            "Condition": {"StringEquals": {"aws:SourceVpce": endpoint_id}},
        })
    if ci_pushes:
        statements.append({
            "Sid": "PushAndSignByCi",
            "Effect": "Allow",
            "Principal": {"AWS": ci_role_arn},
            "Action": sorted(PUSH_ACTIONS + PULL_ACTIONS),
        })
    statements.extend([
        {
            "Sid": "DenyPullsOutsideTheEndpoint",
            "Effect": "Deny",
            "Principal": "*",
            "Action": list(PULL_ACTIONS),
            "Condition": {"StringNotEquals": {"aws:SourceVpce": endpoint_id},
                          "ArnNotEquals": {"aws:PrincipalArn": exempt}},
        },
        {
            "Sid": "DenyPullsByOtherPrincipals",
            "Effect": "Deny",
            "Principal": "*",
            "Action": list(PULL_ACTIONS),
            "Condition": {"ArnNotEquals": {"aws:PrincipalArn": sorted(set(pullers) | set(exempt))}},
        },
        {
            "Sid": "DenyPushesByOthers" if ci_pushes else "DenyPushes",
            "Effect": "Deny",
            "Principal": "*",
            "Action": list(PUSH_ACTIONS),
            **({"Condition": {"ArnNotEquals": {"aws:PrincipalArn": ci_role_arn}}} if ci_pushes else {}),
        },
    ])
    return {"Version": "2012-10-17", "Statement": statements}

