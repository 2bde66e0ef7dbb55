"""The Vault configuration as synthesized: wiring, bounds, secrets kept secret, settings validated."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from hardstack.blueprints.identity import HumanAuthSpec, VaultSpec
from hardstack.blueprints.loader import load
from hardstack.errors import SynthError
from hardstack.modules.vault import check_address, hcl, persona_rules
from hardstack.policies.checks.hs_vault_002 import rules as read_policy
from hardstack.policies.checks.hs_vault_002 import too_wide
from hardstack.stacks.inventory import Inventory
from hardstack.stacks.mocks import SECRET
from hardstack.stacks.targets import synth_loaded

from .helpers import ref_attr

BLUEPRINT = "multi-tenant-gpu"
TENANTS = ("research", "search", "fraud")


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return synth_loaded(load(BLUEPRINT))


def of(inventory: Inventory, token: str) -> dict[str, Any]:
    return {r.name: r for r in inventory.of_type(token)}


def test_people_sign_in_with_totp_enforced_on_their_auth_method(inventory: Inventory) -> None:
    (humans,) = inventory.of_type("vault:jwt/authBackend:AuthBackend")
    (totp,) = inventory.of_type("vault:identity/mfaTotp:MfaTotp")
    (enforcement,) = inventory.of_type("vault:identity/mfaLoginEnforcement:MfaLoginEnforcement")
    assert ref_attr(enforcement, "authMethodAccessors", 0)[0] == humans.urn
    assert ref_attr(enforcement, "mfaMethodIds", 0)[0] == totp.urn
    assert humans.inputs["type"] == "oidc" and humans.inputs["oidcDiscoveryUrl"].startswith("https://")
    assert totp.inputs["digits"] == 6 and totp.inputs["period"] == 30 and totp.inputs["maxValidationAttempts"] == 5


def test_the_oidc_client_secret_is_a_pulumi_secret(inventory: Inventory) -> None:
    (humans,) = inventory.of_type("vault:jwt/authBackend:AuthBackend")
    assert humans.inputs["oidcClientSecret"] == SECRET


def test_a_login_role_per_persona_bound_to_its_group_with_bounded_tokens(inventory: Inventory) -> None:
    roles = {r.inputs["roleName"]: r.inputs for r in inventory.of_type("vault:jwt/authBackendRole:AuthBackendRole")}
    expected = {"platform-admin", "inference-client"} | {f"{p}-{t}" for p in ("data-scientist", "mlops-engineer")
                                                         for t in TENANTS}
    assert set(roles) == expected
    assert roles["data-scientist-research"]["boundClaims"] == {"groups": "research:data-scientist"}
    assert roles["platform-admin"]["boundClaims"] == {"groups": f"{BLUEPRINT}:platform-admin"}
    for role in roles.values():
        assert role["tokenTtl"] <= role["tokenMaxTtl"] <= 3600 and role["tokenExplicitMaxTtl"] <= 3600
        assert role["boundAudiences"] and len(role["tokenPolicies"]) == 1


def test_workloads_log_in_as_their_tenants_service_account(inventory: Inventory) -> None:
    roles = {r.inputs["roleName"]: r.inputs for r in
             inventory.of_type("vault:kubernetes/authBackendRole:AuthBackendRole")}
    assert set(roles) == {f"workload-{t}" for t in TENANTS}
    for tenant in TENANTS:
        role = roles[f"workload-{tenant}"]
        assert role["boundServiceAccountNames"] == ["workload"]
        assert role["boundServiceAccountNamespaces"] == [tenant]
        assert role["tokenPolicies"] == [f"{BLUEPRINT}-workload-{tenant}"] and role["tokenMaxTtl"] <= 3600


def test_aws_credentials_are_assumed_roles_of_fifteen_minutes(inventory: Inventory) -> None:
    (engine,) = inventory.of_type("vault:aws/secretBackend:SecretBackend")
    assert "accessKey" not in engine.inputs and "secretKey" not in engine.inputs  # Vault's own identity, no keys
    assert engine.inputs["defaultLeaseTtlSeconds"] == 900 and engine.inputs["maxLeaseTtlSeconds"] == 3600
    roles = of(inventory, "vault:aws/secretBackendRole:SecretBackendRole")
    iam = {r.urn: r.name for r in inventory.of_type("aws:iam/role:Role")}
    assert {r.inputs["name"] for r in roles.values()} == {"cluster-admin"} | {f"training-{t}" for t in TENANTS}
    for role in roles.values():
        assert role.inputs["credentialType"] == "assumed_role"
        assert role.inputs["defaultStsTtl"] == 900 and role.inputs["maxStsTtl"] == 3600
        target, attribute = ref_attr(role, "roleArns", 0)
        assert attribute == "arn" and iam[target] == f"jit-{role.inputs['name']}"


def test_audit_device_hmacs_everything(inventory: Inventory) -> None:
    (audit,) = inventory.of_type("vault:index/audit:Audit")
    assert audit.inputs["type"] == "file" and audit.inputs["options"]["log_raw"] == "false"
    assert audit.inputs["options"]["hmac_accessor"] == "true"


def test_persona_policies_name_paths_and_never_grant_sudo(inventory: Inventory) -> None:
    policies = inventory.of_type("vault:index/policy:Policy")
    assert len(policies) == 2 + 3 * len(TENANTS)
    for p in policies:
        found = read_policy(p.inputs["policy"])
        assert found and not too_wide(found), p.name
        assert all(path.startswith((f"{BLUEPRINT}/", "sys/leases/")) for path in found), found


def test_per_person_paths_use_the_human_mounts_accessor(inventory: Inventory) -> None:
    (humans,) = inventory.of_type("vault:jwt/authBackend:AuthBackend")
    policy = of(inventory, "vault:index/policy:Policy")["vault-data-scientist-research"]
    found = read_policy(policy.inputs["policy"])
    personal = [p for p in found if "/users/" in p]
    assert personal and all("{{identity.entity.aliases.auth_oidc_" in p for p in personal)
    assert any(r.resource == humans.urn and r.attribute == "accessor" and r.match == "contains"
               for r in policy.references), policy.references


def test_without_vault_there_is_no_vault_configuration(synth_blueprint) -> None:  # type: ignore[no-untyped-def]
    inv = synth_blueprint({"name": "plain", "region": "us-east-1"})
    assert not [r for r in inv if r.type.startswith("vault:")]


def test_hcl_quotes_every_path() -> None:
    text = hcl({'evil"} path "*" {': ["read"]})
    found = read_policy(text)
    assert found is not None and len(found) == 1 and not too_wide(found)  # one path, the whole string
    assert list(found)[0].replace('\\"', '"') == 'evil"} path "*" {'


def test_rules_never_name_a_bare_wildcard() -> None:
    for name, rules in persona_rules("stack", ["a", "b"], "auth_jwt_1234", jit=True).items():
        assert not too_wide(rules), name


@pytest.mark.parametrize("address", ["https://vault.internal:8200", "http://127.0.0.1:8200", "http://localhost:8200",
                                     None])
def test_vault_address_https_or_local(address: str | None) -> None:
    check_address(address)


@pytest.mark.parametrize("address", ["http://vault.internal:8200", "ftp://vault", "vault.internal:8200"])
def test_vault_address_over_plain_http_is_refused(address: str) -> None:
    with pytest.raises(ValueError, match="allowed: an https:// URL"):
        check_address(address)


def test_plain_http_vault_address_in_stack_config_fails_synthesis() -> None:
    from hardstack.stacks.mocks import SECRET as S
    from hardstack.stacks.program import build
    from hardstack.stacks.synth import run_program

    bp = load(BLUEPRINT).blueprint
    with pytest.raises(SynthError, match="vault:address"):
        run_program(lambda: build(bp), project=bp.name, stack="dev", region=bp.region,
                    config={"vault:address": "http://vault.internal:8200", "hardstack:oidcClientSecret": S},
                    secret_keys=["hardstack:oidcClientSecret"])


@pytest.mark.parametrize(
    "humans, message",
    [
        ({"method": "oidc", "client_id": "v"}, "needs discovery_url and client_id"),
        ({"method": "oidc", "discovery_url": "http://idp.example.com", "client_id": "v"}, "is not HTTPS"),
        ({"method": "jwt", "validation_public_keys": ["k"]}, "needs bound_audiences"),
        ({"method": "jwt", "bound_audiences": ["v"]}, "exactly one of discovery_url and validation_public_keys"),
        ({"method": "oidc", "discovery_url": "https://i.example.com", "client_id": "v", "token_max_ttl_seconds": 7200},
         "less than or equal to 3600"),
    ],
)
def test_human_sign_in_settings_are_validated(humans: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        HumanAuthSpec(**humans)


def test_credential_ttls_are_bounded() -> None:
    humans = {"method": "jwt", "validation_public_keys": ["k"], "bound_audiences": ["vault"]}
    with pytest.raises(ValidationError, match="less than or equal to 3600"):
        VaultSpec(humans=humans, credential_max_ttl_seconds=7200)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="larger than credential_max_ttl_seconds"):
        VaultSpec(humans=humans, credential_ttl_seconds=3600, credential_max_ttl_seconds=900)  # type: ignore[arg-type]


def test_workload_tokens_are_reviewed_by_a_delegator_only_account(inventory: Inventory) -> None:
    """Vault checks workloads' tokens with TokenReview as a dedicated account bound to system:auth-delegator;
    its token reaches Vault as a Pulumi secret, never as a value in the program."""
    (config,) = inventory.of_type("vault:kubernetes/authBackendConfig:AuthBackendConfig")
    assert config.inputs["tokenReviewerJwt"] == SECRET and config.inputs["disableLocalCaJwt"] is True
    (secret,) = [r for r in inventory.of_type("kubernetes:core/v1:Secret") if r.name == "vault-token-reviewer-token"]
    assert any(r.resource == secret.urn for r in config.references), config.references
    assert secret.inputs["type"] == "kubernetes.io/service-account-token"
    reviewer = secret.inputs["metadata"]["annotations"]["kubernetes.io/service-account.name"]
    (binding,) = [r for r in inventory.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding")
                  if r.inputs["roleRef"]["name"] == "system:auth-delegator"]
    assert binding.inputs["subjects"] == [{"kind": "ServiceAccount", "name": reviewer, "namespace": "kube-system"}]


def test_audit_device_is_also_given_as_server_config(inventory: Inventory) -> None:
    from hardstack.modules.vault import audit_block

    (audit,) = inventory.of_type("vault:index/audit:Audit")
    block = audit_block(audit.inputs["path"], audit.inputs["options"])
    assert block.startswith(f'audit "file" "{audit.inputs["path"]}" {{') and 'log_raw = "false"' in block
