"""HS_IAM_003: no policy lets a principal pass any role."""

from fnmatch import fnmatchcase

from hardstack.policies.checks.support import (
    FAILED, GRANT_POLICIES, PASSED, HardstackCheck, allows, as_list, policy_document,
)
from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_IAM_003",
    title="iam:PassRole is never allowed on every role",
    severity="CRITICAL",
    area="identity",
    rationale="Whoever may pass any role to a service (a training job, a notebook, a node) runs code with that "
    "role's rights: with `iam:PassRole` on `*` every role of the account, administrators' included, is one job "
    "submission away.",
    remediation="Allow iam:PassRole only on the named role ARNs the principal must hand over, with an "
    "`iam:PassedToService` condition.",
    owasp_llm=("LLM06: Excessive Agency",),
    mitre_atlas=("AML.T0012: Valid Accounts",),
    resources=GRANT_POLICIES,
)


def passes_any_role(statement: dict) -> bool:  # type: ignore[type-arg]
    actions = [str(a).lower() for a in as_list(statement.get("Action", []))]
    resources = [str(r) for r in as_list(statement.get("Resource", []))]
    return any(fnmatchcase("iam:passrole", a) for a in actions) and any(r in ("*", "arn:aws:iam::*:role/*") or
                                                                       r.endswith(":role/*") for r in resources)


class NoPassRoleOnEverything(HardstackCheck):
    META = META

    def scan_resource_conf(self, conf):  # type: ignore[no-untyped-def, override]
        return FAILED if any(passes_any_role(s) for s in allows(policy_document(conf))) else PASSED


check = NoPassRoleOnEverything()


def _policy(resource: str) -> None:
    import json

    import pulumi_aws as aws

    aws.iam.Policy("pass", policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iam:PassRole"], "Resource": resource,
         "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}}]}))


def passing_named_role() -> None:
    _policy("arn:aws:iam::123456789012:role/training-job")


def failing_every_role() -> None:
    _policy("*")
