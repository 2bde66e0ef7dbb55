"""HS_VAULT_003: people's sign-in methods enforce login MFA (graph check: hs_vault_003.yaml)."""

from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_VAULT_003",
    title="Vault sign-in methods for people enforce login MFA",
    severity="HIGH",
    area="identity",
    rationale="Vault hands out cluster-admin and training credentials; if a phished identity-provider session or "
    "password is enough to sign in, those credentials are one phish away.",
    remediation="Enforce a TOTP (or other) MFA method on the auth method with an identity MFA login enforcement "
    "that names its accessor (hardstack's VaultJitAccess does).",
    mitre_atlas=("AML.T0012: Valid Accounts",),
    resources=("vault_jwt_auth_backend", "vault_auth_backend"),
)


def _humans(mfa: bool, kind: str = "jwt") -> None:
    import pulumi_vault as vault

    if kind == "jwt":
        humans = vault.jwt.AuthBackend("humans", path="humans", type="oidc", oidc_discovery_url="https://idp.example.com",
                                       oidc_client_id="vault", oidc_client_secret="s")
    else:
        humans = vault.AuthBackend("humans", path="humans", type=kind)
    if mfa:
        totp = vault.identity.MfaTotp("totp", issuer="stack")
        vault.identity.MfaLoginEnforcement("mfa", name="humans", mfa_method_ids=[totp.method_id],
                                           auth_method_accessors=[humans.accessor])


def passing_oidc_with_totp() -> None:
    _humans(True)


def passing_workload_auth() -> None:
    _humans(False, "approle")


def failing_oidc_without_mfa() -> None:
    _humans(False)


def failing_userpass_without_mfa() -> None:
    _humans(False, "userpass")
