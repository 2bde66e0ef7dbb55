"""HS_IAM_001: no policy grants a wildcard action."""

from hardstack.policies.checks.support import (
    FAILED, GRANT_POLICIES, PASSED, HardstackCheck, allows, as_list, is_boundary, policy_document,
)
from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_IAM_001",
    title="IAM policies grant named actions, never wildcards",
    severity="HIGH",
    area="identity",
    rationale="`s3:*` or `*` grants every action the service has and every one it will add, including deleting "
    "training data, rewriting bucket policies and exporting models; least privilege starts with naming actions.",
    remediation="List the actions the role needs (hardstack's grant methods do). Permission boundaries, which cap "
    "roles rather than grant, may name services; hardstack's boundary is tagged `hardstack:purpose: "
    "permissions-boundary`.",
    owasp_llm=("LLM06: Excessive Agency",),
    mitre_atlas=("AML.T0012: Valid Accounts",),
    resources=GRANT_POLICIES,
)


def wildcard_actions(statement: dict) -> list[str]:  # type: ignore[type-arg]
    if "NotAction" in statement:
        return ["NotAction"]
    return [str(a) for a in as_list(statement.get("Action", [])) if "*" in str(a)]


class NoWildcardActions(HardstackCheck):
    META = META

    def scan_resource_conf(self, conf):  # type: ignore[no-untyped-def, override]
        if is_boundary(conf):
            return PASSED
        found = [a for s in allows(policy_document(conf)) for a in wildcard_actions(s)]
        return FAILED if found else PASSED


check = NoWildcardActions()


def _policy(actions: list[str]) -> None:
    import json

    import pulumi_aws as aws

    role = aws.iam.Role("role", assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": []}))
    aws.iam.RolePolicy("grant", role=role.id, policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": actions, "Resource": "arn:aws:s3:::training-data/*"}]}))


def passing_named_actions() -> None:
    _policy(["s3:GetObject", "s3:GetObjectVersion"])


def failing_service_wildcard() -> None:
    _policy(["s3:*"])


def failing_prefix_wildcard() -> None:
    _policy(["s3:Get*"])
