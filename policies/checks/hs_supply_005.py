"""HS_SUPPLY_005: only CI may sign: the signing key's policy denies kms:Sign to every other principal."""

from fnmatch import fnmatchcase

from checkov.common.models.enums import CheckResult

from hardstack.policies.checks.support import (
    FAILED, PASSED, HardstackCheck, as_list, policy_document, statements, value,
)
from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_SUPPLY_005",
    title="Only CI may sign: the signing key's policy denies kms:Sign to every other principal",
    severity="HIGH",
    area="supply chain",
    rationale="Admission admits whatever the signing key signed: any principal able to call kms:Sign on it can make "
    "a backdoored model server or a poisoned dependency pass verification. IAM policies, grants and the account's "
    "delegation can each allow kms:Sign; only an explicit Deny in the key policy, sparing the CI role alone, keeps "
    "signing to CI whatever is granted later.",
    remediation="Add a key policy statement denying kms:Sign to Principal `*` unless `aws:PrincipalArn` is the CI "
    "role's ARN (`ArnNotEquals`), as hardstack's SignedRegistry does.",
    owasp_llm=("LLM03: Supply Chain",),
    mitre_atlas=("AML.T0010: ML Supply Chain Compromise",),
    resources=("aws_kms_key",),
)

PRINCIPAL_KEY = "aws:principalarn"
SPARING_OPERATORS = ("arnnotequals", "arnnotlike", "stringnotequals", "stringnotlike")


def everyone(principal: object) -> bool:
    if principal == "*":
        return True
    return isinstance(principal, dict) and "*" in [str(p) for p in as_list(principal.get("AWS", []))]


def denies_sign(statement: dict) -> bool:  # type: ignore[type-arg]
    actions = [str(a).lower() for a in as_list(statement.get("Action", []))]
    return any(fnmatchcase("kms:sign", a) for a in actions)


def spares_at_most_one_role(condition: dict) -> bool:  # type: ignore[type-arg]
    """The Deny's condition only exempts one named role (no wildcard), or nothing at all. Any other condition
    (a source VPC, a tag, IfExists) would leave signing open to everyone outside it."""
    spared: list[str] = []
    for operator, keys in condition.items():
        if str(operator).lower() not in SPARING_OPERATORS or not isinstance(keys, dict):
            return False
        for key, values in keys.items():
            if str(key).lower() != PRINCIPAL_KEY:
                return False
            spared.extend(str(v) for v in as_list(values))
    return len(spared) <= 1 and all(":role/" in s and "*" not in s and "?" not in s for s in spared)


class OnlyCiSigns(HardstackCheck):
    META = META

    def scan_resource_conf(self, conf):  # type: ignore[no-untyped-def, override]
        if str(value(conf, "key_usage", default="ENCRYPT_DECRYPT")).upper() != "SIGN_VERIFY":
            return CheckResult.UNKNOWN  # not a signing key
        for st in statements(policy_document(conf)):
            if st.get("Effect") != "Deny" or "NotAction" in st or "NotPrincipal" in st:
                continue
            if everyone(st.get("Principal")) and denies_sign(st) and spares_at_most_one_role(st.get("Condition") or {}):
                return PASSED
        return FAILED


check = OnlyCiSigns()

_CI = "arn:aws:iam::123456789012:role/ci-signer"
_ROOT = {"AWS": "arn:aws:iam::123456789012:root"}


def _signing_key(statements_):  # type: ignore[no-untyped-def]
    import json

    import pulumi_aws as aws

    aws.kms.Key("signing", key_usage="SIGN_VERIFY", customer_master_key_spec="ECC_NIST_P256",
                deletion_window_in_days=30,
                policy=json.dumps({"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Principal": _ROOT, "Action": ["kms:PutKeyPolicy"], "Resource": "*"},
                    {"Effect": "Allow", "Principal": {"AWS": _CI}, "Action": ["kms:Sign"], "Resource": "*"},
                    *statements_,
                ]}))


def passing_deny_all_but_ci() -> None:
    _signing_key([{"Effect": "Deny", "Principal": "*", "Action": "kms:Sign", "Resource": "*",
                   "Condition": {"ArnNotEquals": {"aws:PrincipalArn": _CI}}}])


def failing_no_deny() -> None:
    _signing_key([])


def failing_deny_spares_every_role() -> None:
    _signing_key([{"Effect": "Deny", "Principal": "*", "Action": "kms:Sign", "Resource": "*",
                   "Condition": {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/*"}}}])


def failing_deny_only_outside_a_vpc() -> None:
    _signing_key([{"Effect": "Deny", "Principal": "*", "Action": "kms:Sign", "Resource": "*",
                   "Condition": {"StringNotEquals": {"aws:SourceVpc": "vpc-0123456789abcdef0"}}}])
