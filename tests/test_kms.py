"""Customer-managed keys: rotation, recoverability, and a key policy that separates administration from use.

Every test asserts the security property itself (and where it is wired from), so removing the property from
`modules/kms.py` or `stacks/program.py` makes a test here fail.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Callable

import pytest

from hardstack.stacks.inventory import Inventory, Resource
from hardstack.stacks.mocks import ACCOUNT_ID

from .helpers import ref_attr, statements

KEY = "aws:kms/key:Key"
ALIAS = "aws:kms/alias:Alias"
REGION = "us-east-1"
STACK = "llm-inference"
ROOT = f"arn:aws:iam::{ACCOUNT_ID}:root"

DATA_KEYS = ("data-confidential", "data-regulated")
"""llm-inference declares confidential (its default) and regulated (training-data) buckets."""
TRAIL_KEYS = ("audit-trail",)
"""The audit trail's own key (its statements for CloudTrail, its log group and topic are asserted in test_audit)."""
ALL_KEYS = ("logs", "compute", "registry") + DATA_KEYS + TRAIL_KEYS
"""The stack's symmetric CMKs (ENCRYPT_DECRYPT): logs, compute secrets, container images at rest, data, the trail."""
SIGNING_KEYS = ("registry-signing",)
"""Asymmetric SIGN_VERIFY keys (the registry's cosign key). KMS cannot rotate asymmetric key material, and a
signer calls KMS directly (never through a service, so no kms:ViaService): these keys are held to the same
policy rules as every key except where noted; their signing-specific settings are asserted in test_registry."""

USE_PATTERNS = ("kms:encrypt", "kms:decrypt", "kms:generatedatakey*", "kms:reencrypt*", "kms:sign")
"""Cryptographic use, matched case-insensitively (IAM action names are case-insensitive). Signing is the use
of a signing key (Verify and GetPublicKey only read its public half)."""
SIGN = "kms:sign"
DELEGATION = "kms:creategrant"

ADMIN_SID = "KeyAdministrationWithoutUse"
USE_SID = "KeyUseOnlyThroughServices"
LOGS_SID = "CloudWatchLogsForThisAccount"
ACCESS_LOG_SID = "S3ServerAccessLogDeliveryForThisAccount"


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def actions(statement: dict[str, Any]) -> list[str]:
    return [a.lower() for a in as_list(statement.get("Action", []))]


def is_use(action: str) -> bool:
    return any(fnmatch.fnmatchcase(action.lower(), p) for p in USE_PATTERNS)


def principals(statement: dict[str, Any]) -> list[str]:
    """Every principal value of a statement ("*" for the anonymous principal)."""
    p = statement.get("Principal")
    if p == "*":
        return ["*"]
    return [v for values in (p or {}).values() for v in as_list(values)]


def keys(inv: Inventory) -> dict[str, Resource]:
    """The stack's KMS keys by component name (data-regulated-key -> data-regulated)."""
    return {k.name.removesuffix("-key"): k for k in inv.of_type(KEY)}


def minimal_blueprint(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "region": REGION,
        "classification": "confidential",
        "data": {"buckets": [{"name": "datasets", "purpose": "general"}]},
        **extra,
    }


# --- key settings -----------------------------------------------------------------------------------------


def test_every_key_rotates_yearly_and_is_recoverable(reference_inventory: Inventory) -> None:
    """Every key can be recovered for the maximum 30 days after a deletion is scheduled, is single-region, enabled
    and keeps the policy lockout check; every CMK is a symmetric encryption key that rotates its material (365
    days by default). The only keys that do not rotate are the declared signing keys (asymmetric)."""
    found = reference_inventory.of_type(KEY)
    assert {k.name for k in found} == {f"{n}-key" for n in ALL_KEYS + SIGNING_KEYS}
    for key in found:
        assert key.get("deletionWindowInDays") == 30, key.name
        assert key.get("multiRegion") is False, key.name
        assert key.get("bypassPolicyLockoutSafetyCheck") is False, key.name
        assert key.get("isEnabled") is True, key.name
        if key.name.removesuffix("-key") in SIGNING_KEYS:
            # Asymmetric: KMS refuses rotation for it (its P-256 spec and no-rotation are in test_registry).
            assert key.get("keyUsage") == "SIGN_VERIFY", key.name
            continue
        assert key.get("enableKeyRotation") is True, key.name
        assert key.get("rotationPeriodInDays") == 365, key.name
        assert key.get("keyUsage") == "ENCRYPT_DECRYPT", key.name
        assert key.get("customerMasterKeySpec") == "SYMMETRIC_DEFAULT", key.name


def test_rotation_period_comes_from_the_blueprint(synth_blueprint: Callable[[dict], Inventory]) -> None:
    """`kms.rotation_period_days` is what every key of the stack rotates with (rotation stays on)."""
    inv = synth_blueprint(minimal_blueprint("rotation", kms={"rotation_period_days": 180}))
    found = inv.of_type(KEY)
    assert found, "the blueprint created no key"
    for key in found:
        assert key.get("enableKeyRotation") is True, key.name
        assert key.get("rotationPeriodInDays") == 180, key.name


# --- key policy -------------------------------------------------------------------------------------------


def test_administrators_cannot_use_or_delegate_use(reference_inventory: Inventory) -> None:
    """The administrator statement (root delegating to IAM by default) grants no Encrypt/Decrypt/
    GenerateDataKey*/ReEncrypt* and no CreateGrant, so administering a key never implies reading its data."""
    for name, key in keys(reference_inventory).items():
        admin = statements(key)[ADMIN_SID]
        assert admin["Effect"] == "Allow"
        assert principals(admin) == [ROOT], name
        granted = actions(admin)
        assert "kms:schedulekeydeletion" in granted and "kms:putkeypolicy" in granted, name
        assert not [a for a in granted if is_use(a)], f"{name}: administrators may use the key: {granted}"
        assert DELEGATION not in granted, f"{name}: administrators may grant themselves use"


def test_no_wildcard_actions_and_no_anonymous_principal(reference_inventory: Inventory) -> None:
    """No key policy statement grants `kms:*` or any wildcard action (nor uses NotAction), and no Allow names
    the anonymous principal `*` (nor uses NotPrincipal)."""
    for name, key in keys(reference_inventory).items():
        for sid, st in statements(key).items():
            assert "NotAction" not in st and "NotPrincipal" not in st, (name, sid)
            for action in actions(st):
                assert "*" not in action, f"{name}/{sid}: wildcard action {action!r}"
            if st["Effect"] == "Allow":
                assert "*" not in principals(st), f"{name}/{sid}: allows everyone"
                assert principals(st), f"{name}/{sid}: an Allow without a principal"


def test_use_is_always_conditioned(reference_inventory: Inventory) -> None:
    """Every Allow that grants cryptographic use carries a condition: nobody may use a key unconditionally.

    Signing keys are the one narrow exception: a signer (cosign in CI) calls kms:Sign directly, so no service
    condition can apply. There, each Allow of kms:Sign names exactly one principal and the policy denies
    kms:Sign to every other principal (a Deny on `*` conditioned on that principal's ARN), whatever IAM says."""
    for name, key in keys(reference_inventory).items():
        sts = statements(key)
        for sid, st in sts.items():
            if st["Effect"] != "Allow" or not any(is_use(a) for a in actions(st)):
                continue
            if name in SIGNING_KEYS and [a for a in actions(st) if is_use(a)] == [SIGN]:
                (signer,) = principals(st)
                assert any(
                    d["Effect"] == "Deny" and d.get("Principal") == "*" and SIGN in actions(d)
                    and d.get("Condition") == {"ArnNotEquals": {"aws:PrincipalArn": signer}}
                    for d in sts.values()
                ), f"{name}/{sid}: {signer} may sign, but nobody else is denied signing"
                continue
            assert st.get("Condition"), f"{name}/{sid}: unconditional use of the key"


def test_data_keys_are_usable_only_through_s3_by_this_account(reference_inventory: Inventory) -> None:
    """Data keys may be used by this account's principals only through S3 in the stack's region
    (kms:ViaService) and only as this account (kms:CallerAccount); no service principal may use them."""
    found = keys(reference_inventory)
    for name in DATA_KEYS:
        sts = statements(found[name])
        use = sts[USE_SID]
        assert use["Effect"] == "Allow"
        assert principals(use) == [ROOT], name
        assert {"kms:decrypt", "kms:generatedatakey", "kms:encrypt"} <= set(actions(use)), name
        assert use["Condition"] == {
            "StringEquals": {
                "kms:CallerAccount": ACCOUNT_ID,
                "kms:ViaService": [f"s3.{REGION}.amazonaws.com"],
            }
        }, name
        assert set(sts) == {ADMIN_SID, USE_SID}, f"{name}: unexpected statements {sorted(sts)}"
        for st in sts.values():
            assert "Service" not in (st.get("Principal") or {}), f"{name}: a service principal may use it"


def test_registry_key_is_usable_only_through_ecr_by_this_account(reference_inventory: Inventory) -> None:
    """The registry key (images at rest) may be used, and delegated by grant, by this account's principals only
    through ECR in the stack's region; grants only for AWS resources (ECR's per-repository grant); no service
    principal may use it. (The grant statements are detailed in test_registry.)"""
    sts = statements(keys(reference_inventory)["registry"])
    through = {"kms:CallerAccount": ACCOUNT_ID, "kms:ViaService": [f"ecr.{REGION}.amazonaws.com"]}
    use = sts[USE_SID]
    assert principals(use) == [ROOT] and use["Condition"] == {"StringEquals": through}
    for sid, st in sts.items():
        assert "Service" not in (st.get("Principal") or {}), f"registry/{sid}: a service principal may use it"
        if sid != ADMIN_SID:
            assert st["Condition"]["StringEquals"] == through, f"registry/{sid}: usable outside ECR"
        if DELEGATION in actions(st):
            assert st["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}, sid


def test_logs_key_use_is_limited_to_logs_and_s3_of_this_account(reference_inventory: Inventory) -> None:
    """The logs key's account statement is limited to CloudWatch Logs and S3 in the region, as this account."""
    use = statements(keys(reference_inventory)["logs"])[USE_SID]
    assert principals(use) == [ROOT]
    condition = use["Condition"]
    assert set(condition) == {"StringEquals"}
    assert condition["StringEquals"]["kms:CallerAccount"] == ACCOUNT_ID
    assert sorted(as_list(condition["StringEquals"]["kms:ViaService"])) == [
        f"logs.{REGION}.amazonaws.com",
        f"s3.{REGION}.amazonaws.com",
    ]


def test_logs_key_service_principals_are_scoped_to_this_account(reference_inventory: Inventory) -> None:
    """CloudWatch Logs may use the logs key only for this account's log groups (encryption-context ArnLike),
    and S3 server access log delivery only for this account (aws:SourceAccount): no confused deputy."""
    sts = statements(keys(reference_inventory)["logs"])
    by_service: dict[str, list[dict[str, Any]]] = {}
    for st in sts.values():
        for service in as_list((st.get("Principal") or {}).get("Service", [])):
            by_service.setdefault(service, []).append(st)
    assert set(by_service) == {f"logs.{REGION}.amazonaws.com", "logging.s3.amazonaws.com"}

    (logs,) = by_service[f"logs.{REGION}.amazonaws.com"]
    assert logs is sts[LOGS_SID] and logs["Effect"] == "Allow"
    assert logs["Condition"] == {
        "ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:*"}
    }

    (delivery,) = by_service["logging.s3.amazonaws.com"]
    assert delivery is sts[ACCESS_LOG_SID] and delivery["Effect"] == "Allow"
    assert delivery["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}
    assert "kms:generatedatakey" in actions(delivery)
    assert DELEGATION not in actions(delivery)


def test_blueprint_administrators_replace_the_account_root(synth_blueprint: Callable[[dict], Inventory]) -> None:
    """`kms.administrators` become the key administrators instead of root, and still get no use: the admin role
    appears in no statement that grants cryptographic use."""
    admin_role = f"arn:aws:iam::{ACCOUNT_ID}:role/key-admins"
    inv = synth_blueprint(minimal_blueprint("admins", kms={"administrators": [admin_role]}))
    found = keys(inv)
    assert set(found) == {"logs", "data-confidential", *TRAIL_KEYS}
    for name, key in found.items():
        sts = statements(key)
        admin = sts[ADMIN_SID]
        assert admin["Principal"] == {"AWS": admin_role}, name
        assert ROOT not in principals(admin), name
        assert not [a for a in actions(admin) if is_use(a) or a == DELEGATION], name
        for sid, st in sts.items():
            if any(is_use(a) for a in actions(st)):
                assert admin_role not in principals(st), f"{name}/{sid}: the administrator may use the key"


# --- one key per classification, each with its alias ----------------------------------------------------


def test_one_key_per_classification_in_use_plus_logs(reference_inventory: Inventory) -> None:
    """A separate CMK per data classification the stack uses (no regulated data under the confidential key)
    and a dedicated logs key, each its own component; no key for classes the blueprint does not use."""
    found = keys(reference_inventory)
    assert set(found) == {"logs", "compute", "registry", "data-confidential", "data-regulated", *SIGNING_KEYS,
                          *TRAIL_KEYS}
    assert "data-internal" not in found and "data-public" not in found
    arns = {k.outputs["arn"] for k in found.values()}
    assert len(arns) == len(found), "keys share an ARN"
    for name, key in found.items():
        if name in SIGNING_KEYS:
            # The signing key belongs to the registry that signs with it (a CustomerManagedKey is symmetric).
            assert key.parent == f"urn:pulumi:{STACK}::{STACK}::hardstack:registry:SignedRegistry::registry"
            assert key.get("tags", "hardstack:component") == "registry"
            continue
        if name in TRAIL_KEYS:
            # The trail's key belongs to the trail it encrypts (a CustomerManagedKey child of the AuditTrail).
            assert key.parent == (f"urn:pulumi:{STACK}::{STACK}::hardstack:audit:AuditTrail"
                                  f"$hardstack:kms:CustomerManagedKey::{name}")
            assert key.get("tags", "hardstack:component") == name
            continue
        assert key.parent == f"urn:pulumi:{STACK}::{STACK}::hardstack:kms:CustomerManagedKey::{name}"
        assert key.get("tags", "hardstack:component") == name


def test_every_key_has_a_stack_scoped_alias_wired_to_it(reference_inventory: Inventory) -> None:
    """Each key has exactly one alias `alias/hardstack/<stack>/<name>` whose targetKeyId is computed from that
    key (a reference to its id, not a literal or another key)."""
    found = keys(reference_inventory)
    aliases = reference_inventory.of_type(ALIAS)
    assert len(aliases) == len(found)
    by_name = {a.get("name"): a for a in aliases}
    for name, key in found.items():
        alias = by_name[f"alias/hardstack/{STACK}/{name}"]
        urn, attribute = ref_attr(alias, "targetKeyId")
        assert urn == key.urn, f"{alias.get('name')} targets another key"
        assert attribute in ("id", "keyId")
        assert alias.get("targetKeyId") == key.outputs["keyId"]


# --- the component on its own ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bare_key_inventory() -> Inventory:
    """A CustomerManagedKey with no services and no service principals, in stack "s" of project "p"."""
    from hardstack.blueprints.kms import KmsSpec
    from hardstack.modules.kms import CustomerManagedKey
    from hardstack.stacks.synth import run_program

    return run_program(
        lambda: CustomerManagedKey("k", KmsSpec(), description="bare"), project="p", stack="s", region=REGION
    )


def test_key_without_services_is_usable_by_nobody(bare_key_inventory: Inventory) -> None:
    """Without `via_services` or service principals the policy has only the administrator statement: no
    principal at all may use the key."""
    key = bare_key_inventory.named("k-key")
    sts = statements(key)
    assert set(sts) == {ADMIN_SID}
    assert not [a for st in sts.values() for a in actions(st) if is_use(a)]


def test_alias_is_named_after_the_stack_not_the_project(bare_key_inventory: Inventory) -> None:
    """The alias path carries the Pulumi stack name, so two stacks of one project get distinct aliases."""
    alias = bare_key_inventory.named("k-alias")
    assert alias.get("name") == "alias/hardstack/s/k"
    assert ref_attr(alias, "targetKeyId")[0] == bare_key_inventory.named("k-key").urn


def test_unknown_service_principal_is_refused() -> None:
    """A service principal the module has no scoped statement for is an error, never a blanket grant."""
    from hardstack.modules.kms import service_principal_statements

    with pytest.raises(ValueError, match="unknown service principal"):
        service_principal_statements("ec2", ACCOUNT_ID, "aws", REGION)
