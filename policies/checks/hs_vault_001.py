"""HS_VAULT_001: no Vault role issues tokens or credentials that live longer than an hour."""

from hardstack.policies.checks.support import FAILED, PASSED, HardstackCheck, value
from hardstack.policies.meta import CheckMeta

BOUND_SECONDS = 3600
TOKEN_ROLES = ("vault_jwt_auth_backend_role", "vault_kubernetes_auth_backend_role", "vault_approle_auth_backend_role")
CREDENTIAL_ROLES = ("vault_aws_secret_backend_role",)

META = CheckMeta(
    id="HS_VAULT_001",
    title="Vault roles bound token and credential lifetimes to one hour",
    severity="HIGH",
    area="identity",
    rationale="Just-in-time access is only as short as its longest lease: a role without a max TTL inherits "
    "Vault's system maximum (32 days by default), turning a stolen token or AWS credential into standing access "
    "to the GPU cluster and its data.",
    remediation="Set `token_max_ttl` (and `token_explicit_max_ttl`) on auth roles and `max_sts_ttl` on AWS roles "
    "to 3600 seconds or less, with the default TTL no longer than the maximum (hardstack's VaultJitAccess does).",
    mitre_atlas=("AML.T0012: Valid Accounts",),
    resources=TOKEN_ROLES + CREDENTIAL_ROLES,
)


def seconds(conf: dict, key: str) -> int | None:  # type: ignore[type-arg]
    raw = value(conf, key)
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


class BoundedLifetimes(HardstackCheck):
    META = META

    def scan_resource_conf(self, conf):  # type: ignore[no-untyped-def, override]
        if "max_sts_ttl" in conf or "default_sts_ttl" in conf or "credential_type" in conf:
            longest, default = seconds(conf, "max_sts_ttl"), seconds(conf, "default_sts_ttl")
        else:
            longest = min((t for t in (seconds(conf, "token_max_ttl"), seconds(conf, "token_explicit_max_ttl")) if t),
                          default=None)
            default = seconds(conf, "token_ttl")
        bounded = longest is not None and 0 < longest <= BOUND_SECONDS
        return PASSED if bounded and (default or 0) <= longest else FAILED  # type: ignore[operator]


check = BoundedLifetimes()


def _roles(max_ttl: int | None, max_sts_ttl: int | None) -> None:
    import pulumi_vault as vault

    humans = vault.jwt.AuthBackend("humans", path="humans", type="jwt", jwt_validation_pubkeys=["-----BEGIN PUBLIC KEY-----"])
    vault.jwt.AuthBackendRole("person", backend=humans.path, role_name="person", role_type="jwt", user_claim="email",
                              bound_audiences=["vault"], token_ttl=900, token_max_ttl=max_ttl)
    engine = vault.aws.SecretBackend("aws", path="aws", max_lease_ttl_seconds=3600)
    vault.aws.SecretBackendRole("admin", backend=engine.path, name="admin", credential_type="assumed_role",
                                role_arns=["arn:aws:iam::123456789012:role/admin"], default_sts_ttl=900,
                                max_sts_ttl=max_sts_ttl)


def passing_one_hour() -> None:
    _roles(3600, 3600)


def failing_token_without_max_ttl() -> None:
    _roles(None, 3600)


def failing_twelve_hour_credentials() -> None:
    _roles(3600, 43200)
