"""HS_IAM_002: a role that people can assume requires MFA."""

from hardstack.policies.checks.support import FAILED, PASSED, HardstackCheck, allows, as_list, policy_document
from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_IAM_002",
    title="Roles people can assume require a recent MFA sign-in",
    severity="HIGH",
    area="identity",
    rationale="A role trusted by an account or its users can be assumed with a leaked access key alone; requiring "
    "`aws:MultiFactorAuthPresent` and bounding `aws:MultiFactorAuthAge` makes a stolen key useless against "
    "training data and models.",
    remediation="Add `Bool aws:MultiFactorAuthPresent: true` and `NumericLessThan aws:MultiFactorAuthAge` to the "
    "trust statement (hardstack's persona roles do), or trust a named role such as a credential broker instead.",
    mitre_atlas=("AML.T0012: Valid Accounts",),
    resources=("aws_iam_role",),
)


def people(principals: list[str]) -> bool:
    """An account, its root, its users or anyone: principals that are (or stand for) people. Named roles are
    workloads or brokers, which authenticate their callers themselves."""
    return any(":role/" not in p for p in principals)


def requires_mfa(condition: dict) -> bool:  # type: ignore[type-arg]
    def key(block: str, name: str) -> object:
        found = {k.lower(): v for k, v in (condition.get(block) or {}).items()}
        return found.get(name.lower())

    present = key("Bool", "aws:MultiFactorAuthPresent")
    age = key("NumericLessThan", "aws:MultiFactorAuthAge") or key("NumericLessThanEquals", "aws:MultiFactorAuthAge")
    return str(present).lower() == "true" and age is not None


class PeopleNeedMfa(HardstackCheck):
    META = META

    def scan_resource_conf(self, conf):  # type: ignore[no-untyped-def, override]
        for statement in allows(policy_document(conf, "assume_role_policy")):
            principal = statement.get("Principal")
            aws = [str(p) for p in as_list(principal.get("AWS", []))] if isinstance(principal, dict) else ["*"]
            if aws and people(aws) and not requires_mfa(statement.get("Condition") or {}):
                return FAILED
        return PASSED


check = PeopleNeedMfa()


def _role(condition: dict | None, principal: str = "arn:aws:iam::123456789012:root") -> None:  # type: ignore[type-arg]
    import json

    import pulumi_aws as aws

    statement = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    aws.iam.Role("people", assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))


MFA = {"Bool": {"aws:MultiFactorAuthPresent": "true"}, "NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}


def passing_recent_mfa() -> None:
    _role(MFA)


def passing_named_broker_role() -> None:
    _role(None, principal="arn:aws:iam::123456789012:role/vault-server")


def failing_no_condition() -> None:
    _role(None)


def failing_mfa_without_age() -> None:
    _role({"Bool": {"aws:MultiFactorAuthPresent": "true"}})
