"""The stack's signed registry: its repositories, upstream caches, and the CI identity that alone signs images.

Every image a blueprint names is an `ImageRef` into this registry; the cluster admits nothing else."""

from __future__ import annotations

import fnmatch
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from .base import Name, Spec, duplicates

ImageRef = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._/-]*[a-z0-9]@sha256:[0-9a-f]{64}$")]
"""`<repository>@sha256:<digest>`: a repository of the stack's registry (a declared family, or `<upstream>/<path>`
through a pull-through cache), always by digest, never by tag."""

RepositoryPattern = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._/-]*(/\*)?$")]
OidcProviderArn = Annotated[str, StringConstraints(pattern=r"^arn:aws(-[a-z]+)*:iam::\d{12}:oidc-provider/[\w./-]+$")]
OidcSubject = Annotated[str, StringConstraints(pattern=r"^[^*?\s]{1,256}$")]

UPSTREAMS: dict[str, str] = {
    "ecr-public": "public.ecr.aws",
    "quay": "quay.io",
    "k8s": "registry.k8s.io",
}
"""Upstream registries a pull-through cache may mirror (those ECR mirrors without stored credentials)."""


class PullThroughSpec(Spec):
    """An ECR pull-through cache of an upstream registry, limited to an allowlist of its repositories."""

    upstream: Literal["ecr-public", "quay", "k8s"]
    """The upstream registry (ecr-public: public.ecr.aws, quay: quay.io, k8s: registry.k8s.io); its images are
    referenced as `<upstream>/<repository>@sha256:...`."""

    allow: list[RepositoryPattern] = Field(min_length=1)
    """Upstream repositories that may be cached and run, e.g. `ubuntu/squid` or `nvidia/*`; nothing else is
    pulled (nodes may create and import only these) or admitted."""

    @field_validator("allow")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        dupes = duplicates(v)
        if dupes:
            raise ValueError(f"{dupes} listed more than once")
        return v


class CiSpec(Spec):
    """The CI pipeline that builds, pushes and signs images: it signs in through OpenID Connect federation."""

    oidc_provider_arn: OidcProviderArn
    """The IAM OIDC identity provider of your CI in this account, e.g.
    `arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com`."""

    subjects: list[OidcSubject] = Field(min_length=1)
    """The exact `sub` claims allowed to push and sign (no wildcards), e.g.
    `repo:acme/models:ref:refs/heads/main`."""

    audience: str = Field("sts.amazonaws.com", min_length=1, max_length=256)
    """The `aud` claim CI's tokens carry."""


class RegistrySpec(Spec):
    """ECR repositories per image family: immutable tags, scanned on push and continuously, encrypted with the
    stack's CMK, pullable only by the cluster's roles through the VPC endpoint; images signed with a KMS key
    only CI can use, and verified by the cluster at admission."""

    repositories: list[Name] = Field(min_length=1)
    """Image families; each is the repository `<stack>/<family>` and images are named `<family>@sha256:...`."""

    keep_images: int = Field(100, ge=10, le=10000)
    """Images kept per repository; older ones expire (signatures are kept with their images)."""

    pull_through: list[PullThroughSpec] = []
    """Upstream registries cached in the stack's registry. Unset: none (every image is built and signed by CI)."""

    ci: CiSpec
    """The only identity that may push to the repositories and sign with the signing key."""

    @field_validator("repositories")
    @classmethod
    def _unique_repositories(cls, v: list[str]) -> list[str]:
        dupes = duplicates(v)
        if dupes:
            raise ValueError(f"duplicate repositories {dupes}; allowed: each family once")
        clash = sorted(set(v) & set(UPSTREAMS))
        if clash:
            raise ValueError(f"repository names {clash} are pull-through prefixes; choose other names")
        return v

    @field_validator("pull_through")
    @classmethod
    def _one_cache_per_upstream(cls, v: list[PullThroughSpec]) -> list[PullThroughSpec]:
        dupes = duplicates([p.upstream for p in v])
        if dupes:
            raise ValueError(f"upstreams {dupes} declared more than once; allowed: one cache per upstream")
        return v

    def source_of(self, image: str) -> str | None:
        """Why `image` (an ImageRef) cannot come from this registry, or None when it can."""
        repository = image.split("@", 1)[0]
        if repository in self.repositories:
            return None
        upstream, _, path = repository.partition("/")
        cache = next((p for p in self.pull_through if p.upstream == upstream), None)
        if cache and path and any(fnmatch.fnmatchcase(path, pattern) for pattern in cache.allow):
            return None
        allowed = self.repositories + [f"{p.upstream}/{a}" for p in self.pull_through for a in p.allow]
        return f"repository {repository!r} is not in the stack's registry; allowed: {allowed}"

