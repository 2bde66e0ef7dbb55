"""HS_KMS_001: a key's policy separates key administrators from key users."""

from fnmatch import fnmatchcase

from hardstack.policies.checks.support import FAILED, PASSED, HardstackCheck, as_list, policy_document, statements
from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_KMS_001",
    title="KMS key policy separates key administration from key use",
    severity="HIGH",
    area="data",
    rationale="Whoever can both change a key's policy and decrypt can read every training set and model the "
    "key protects without leaving a policy trail; `kms:*` (the default key policy) grants exactly that.",
    remediation="Give administrators administration actions only (no Decrypt/Encrypt/GenerateDataKey/ReEncrypt/Sign, "
    "no CreateGrant) and users use actions only, as hardstack's CustomerManagedKey does.",
    owasp_llm=("LLM02: Sensitive Information Disclosure",),
    mitre_atlas=("AML.T0035: ML Artifact Collection",),
    resources=("aws_kms_key",),
)

ADMIN = ("kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:CreateGrant", "kms:DisableKey")
USE = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:Sign")
"""Use of a key: encryption keys' data, and a signing key's signatures (which admission trusts)."""


def _grants(actions: list[str], wanted: tuple[str, ...]) -> bool:
    return any(fnmatchcase(w.lower(), str(a).lower()) for a in actions for w in wanted)


class KeyDutiesSeparated(HardstackCheck):
    META = META

    def scan_resource_conf(self, conf):  # type: ignore[no-untyped-def, override]
        doc = policy_document(conf)
        if doc is None:  # the default key policy: kms:* for the account
            return FAILED
        for st in statements(doc):
            if st.get("Effect") != "Allow" or "NotAction" in st:
                continue
            actions = as_list(st.get("Action", []))
            if _grants(actions, ADMIN) and _grants(actions, USE):
                return FAILED
        return PASSED


check = KeyDutiesSeparated()


def _key(statements_):  # type: ignore[no-untyped-def]
    import json

    import pulumi_aws as aws

    args = {"policy": json.dumps({"Version": "2012-10-17", "Statement": statements_})} if statements_ else {}
    aws.kms.Key("key", enable_key_rotation=True, deletion_window_in_days=30, **args)


_ROOT = {"AWS": "arn:aws:iam::123456789012:root"}


def passing_separated() -> None:
    _key([
        {"Effect": "Allow", "Principal": _ROOT, "Action": ["kms:PutKeyPolicy", "kms:ScheduleKeyDeletion"], "Resource": "*"},
        {"Effect": "Allow", "Principal": _ROOT, "Action": ["kms:Decrypt", "kms:Encrypt"], "Resource": "*",
         "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}},
    ])


def failing_kms_star() -> None:
    _key([{"Effect": "Allow", "Principal": _ROOT, "Action": "kms:*", "Resource": "*"}])


def failing_default_policy() -> None:
    _key(None)


def failing_admin_can_sign() -> None:
    _key([{"Effect": "Allow", "Principal": _ROOT, "Action": ["kms:PutKeyPolicy", "kms:Sign"], "Resource": "*"}])


def failing_admin_can_decrypt() -> None:
    _key([{"Effect": "Allow", "Principal": _ROOT, "Action": ["kms:PutKeyPolicy", "kms:Decrypt"], "Resource": "*"}])
