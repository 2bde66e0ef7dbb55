"""Who may do what: persona roles in AWS, just-in-time access through Vault."""

from __future__ import annotations

import enum
from typing import Annotated, Literal

from pydantic import AnyUrl, Field, StringConstraints, field_validator, model_validator

from .base import Spec

AccountId = Annotated[str, StringConstraints(pattern=r"^\d{12}$")]
IamName = Annotated[str, StringConstraints(pattern=r"^[\w+=,.@-]{1,64}$")]
VaultPath = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9/_-]{0,62}[a-z0-9]$")]

MAX_TTL_SECONDS = 3600
"""No Vault token or credential the stack issues outlives one hour."""


class Persona(str, enum.Enum):
    """The people and clients the stack serves."""

    data_scientist = "data-scientist"
    """Training data and experiments; no production serving."""
    mlops_engineer = "mlops-engineer"
    """Deploys and operates models; no raw training data."""
    inference_client = "inference-client"
    """Calls inference endpoints; nothing else."""
    platform_admin = "platform-admin"
    """Break glass and alerting; cluster administration only just in time."""


AWS_PERSONAS = (Persona.data_scientist, Persona.mlops_engineer, Persona.platform_admin)
"""Personas with an AWS role. Inference clients have none: endpoints authenticate them (OIDC, mTLS or JWT)."""


class HumanAuthSpec(Spec):
    """How people sign in to Vault: the identity provider's tokens, then a TOTP code (login MFA)."""

    method: Literal["oidc", "jwt"] = "oidc"
    """`oidc`: browser sign-in through the identity provider (the client secret is the stack's secret config
    `hardstack:oidcClientSecret`). `jwt`: people present an ID token the identity provider signed."""

    discovery_url: AnyUrl | None = None
    """The identity provider's issuer URL (OIDC discovery); required for `oidc`, else give
    `validation_public_keys`."""

    validation_public_keys: list[str] = []
    """PEM public keys that sign the identity provider's tokens (`jwt` only), instead of discovery."""

    client_id: str | None = None
    """The OIDC client id registered for Vault (`oidc` only, required there)."""

    bound_audiences: list[str] = []
    """Audiences a token must carry. Unset: the client id (`oidc`); required for `jwt`."""

    user_claim: str = "email"
    """The claim that names the person (their Vault alias; per-user paths use it)."""

    groups_claim: str = "groups"
    """The claim listing the person's groups; each persona's Vault role requires its group in it."""

    redirect_uris: list[AnyUrl] = [AnyUrl("http://localhost:8250/oidc/callback")]
    """Where the identity provider may send people back to (`oidc`). Unset: the Vault CLI's local callback."""

    token_ttl_seconds: int = Field(1800, ge=300, le=MAX_TTL_SECONDS)
    """A person's Vault token lives this long..."""

    token_max_ttl_seconds: int = Field(MAX_TTL_SECONDS, ge=300, le=MAX_TTL_SECONDS)
    """...and cannot be renewed past this."""

    @field_validator("discovery_url")
    @classmethod
    def _https(cls, v: AnyUrl | None) -> AnyUrl | None:
        if v is not None and v.scheme != "https":
            raise ValueError(f"{v} is not HTTPS; allowed: an https:// issuer URL")
        return v

    @model_validator(mode="after")
    def _complete(self) -> "HumanAuthSpec":
        if self.method == "oidc" and (self.discovery_url is None or not self.client_id):
            raise ValueError("method oidc needs discovery_url and client_id")
        if self.method == "oidc" and self.validation_public_keys:
            raise ValueError("validation_public_keys is for method jwt; oidc discovers the keys")
        if self.method == "jwt" and bool(self.discovery_url) == bool(self.validation_public_keys):
            raise ValueError("method jwt needs exactly one of discovery_url and validation_public_keys")
        if self.method == "jwt" and not self.bound_audiences:
            raise ValueError("method jwt needs bound_audiences: a token for another audience must not log in")
        if self.token_ttl_seconds > self.token_max_ttl_seconds:
            raise ValueError("token_ttl_seconds is larger than token_max_ttl_seconds")
        return self

    @property
    def audiences(self) -> list[str]:
        return list(self.bound_audiences) or [str(self.client_id)]


class VaultSpec(Spec):
    """Vault (or OpenBao) as the only way to the cluster: people sign in with MFA and get AWS credentials that
    expire; workloads authenticate as their service account. The address and namespace are the stack's config
    (`vault:address`, `vault:namespace`), never the blueprint."""

    mount_prefix: VaultPath | None = None
    """Mount paths of this stack's auth methods and engines start with this. Unset: the stack's name."""

    humans: HumanAuthSpec
    """People's sign-in."""

    workload_auth: Literal["kubernetes", "approle"] = "kubernetes"
    """`kubernetes`: each tenant's `workload` service account logs in with its token (needs compute).
    `approle`: a role per tenant with single-use secret ids, for workloads outside the cluster."""

    workload_token_ttl_seconds: int = Field(900, ge=60, le=MAX_TTL_SECONDS)
    """A workload's Vault token lives this long (renewable up to one hour)."""

    credential_ttl_seconds: int = Field(900, ge=900, le=MAX_TTL_SECONDS)
    """Default lifetime of AWS credentials Vault issues (assumed role)."""

    credential_max_ttl_seconds: int = Field(MAX_TTL_SECONDS, ge=900, le=MAX_TTL_SECONDS)
    """Longest lifetime a person may ask for."""

    server_role: IamName = "vault-server"
    """The IAM role the Vault server runs as; only it may assume the just-in-time roles."""

    server_account: AccountId | None = None
    """The account of the Vault server's role. Unset: this stack's account."""

    audit_file: str = Field("/vault/audit/hardstack.log", pattern=r"^/[\w./-]+$")
    """The audit device's file on the Vault server (sensitive values are HMAC'd, never logged raw)."""

    totp_issuer: str | None = Field(None, pattern=r"^[\w .-]{1,64}$")
    """The name authenticator apps show for the TOTP secret. Unset: the stack's name."""

    @model_validator(mode="after")
    def _ttls(self) -> "VaultSpec":
        if self.credential_ttl_seconds > self.credential_max_ttl_seconds:
            raise ValueError("credential_ttl_seconds is larger than credential_max_ttl_seconds")
        return self


class IdentitySpec(Spec):
    """Persona roles in AWS and just-in-time access through Vault."""

    trusted_account: AccountId | None = None
    """The account whose IAM users may assume the persona roles, signed in with MFA. Unset: this account."""

    mfa_max_age_seconds: int = Field(3600, ge=300, le=3600)
    """Persona roles refuse sessions whose MFA sign-in is older than this (`aws:MultiFactorAuthAge`)."""

    groups: dict[Literal["platform-admin", "inference-client"], str] = {}
    """Identity-provider group of each stack-wide persona in Vault. Unset: `<stack>:<persona>`. Tenant personas
    use their tenant's groups (`compute.tenants[].groups`)."""

    vault: VaultSpec | None = None
    """Vault just-in-time access. Unset: no Vault configuration, and nobody has access to the cluster."""
