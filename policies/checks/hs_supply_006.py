"""HS_SUPPLY_006: ECR repository policies allow pulls only through the VPC endpoint."""

from fnmatch import fnmatchcase

from hardstack.policies.checks.support import FAILED, PASSED, HardstackCheck, as_list, policy_document, statements
from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_SUPPLY_006",
    title="ECR repository policies allow pulls only through the VPC endpoint",
    severity="HIGH",
    area="supply chain",
    rationale="Model-serving images carry weights, prompts and code: pulled from anywhere with a leaked node or "
    "workload credential they are exfiltrated whole. Within the account IAM policies allow pulls on their own, "
    "so only an explicit Deny of pulls not through the stack's ECR endpoint (`aws:SourceVpce`) confines them "
    "to the VPC; the named roles it spares (CI, which signs from outside) are the only exceptions.",
    remediation="Add a repository policy statement (and the same in repository creation templates) denying "
    "ecr:BatchGetImage and ecr:GetDownloadUrlForLayer to Principal `*` when `StringNotEquals aws:SourceVpce` is "
    "the endpoint, sparing only named roles (`ArnNotEquals aws:PrincipalArn`), as hardstack's SignedRegistry does.",
    owasp_llm=("LLM03: Supply Chain",),
    mitre_atlas=("AML.T0010: ML Supply Chain Compromise", "AML.T0035: ML Artifact Collection"),
    resources=("aws_ecr_repository_policy", "aws_ecr_repository_creation_template"),
)

PULLS = ("ecr:batchgetimage", "ecr:getdownloadurlforlayer")
ENDPOINT_KEY = "aws:sourcevpce"
PRINCIPAL_KEY = "aws:principalarn"


def everyone(principal: object) -> bool:
    if principal == "*":
        return True
    return isinstance(principal, dict) and "*" in [str(p) for p in as_list(principal.get("AWS", []))]


def covers_pulls(statement: dict) -> bool:  # type: ignore[type-arg]
    actions = [str(a).lower() for a in as_list(statement.get("Action", []))]
    return all(any(fnmatchcase(pull, a) for a in actions) for pull in PULLS)


def outside_the_endpoint(condition: dict) -> bool:  # type: ignore[type-arg]
    """`StringNotEquals aws:SourceVpce <endpoint ids>`, sparing at most named roles: nothing else narrows the
    deny (IfExists would spare requests through no endpoint at all)."""
    endpoints: list[str] = []
    for operator, keys in condition.items():
        if not isinstance(keys, dict):
            return False
        for key, values in keys.items():
            op, k, vals = str(operator).lower(), str(key).lower(), [str(v) for v in as_list(values)]
            if op == "stringnotequals" and k == ENDPOINT_KEY:
                endpoints.extend(vals)
            elif op in ("arnnotequals", "stringnotequals") and k == PRINCIPAL_KEY:
                if not all(":role/" in v and "*" not in v and "?" not in v for v in vals):
                    return False
            else:
                return False
    return bool(endpoints) and all(e.startswith("vpce-") for e in endpoints)


class PullsOnlyThroughTheEndpoint(HardstackCheck):
    META = META

    def scan_resource_conf(self, conf):  # type: ignore[no-untyped-def, override]
        key = "repository_policy" if self.entity_type == "aws_ecr_repository_creation_template" else "policy"
        for st in statements(policy_document(conf, key)):
            if st.get("Effect") != "Deny" or "NotAction" in st or "NotPrincipal" in st:
                continue
            if everyone(st.get("Principal")) and covers_pulls(st) and outside_the_endpoint(st.get("Condition") or {}):
                return PASSED
        return FAILED


check = PullsOnlyThroughTheEndpoint()

_NODES = "arn:aws:iam::123456789012:role/nodes"
_CI = "arn:aws:iam::123456789012:role/ci"
_ALLOW = {"Effect": "Allow", "Principal": {"AWS": _NODES}, "Action": list(PULLS),
          "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-0123456789abcdef0"}}}
_DENY = {"Effect": "Deny", "Principal": "*", "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
         "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-0123456789abcdef0"},
                       "ArnNotEquals": {"aws:PrincipalArn": _CI}}}


def _repository(statements_):  # type: ignore[no-untyped-def]
    import json

    import pulumi_aws as aws

    repository = aws.ecr.Repository("images", name="stack/images", image_tag_mutability="IMMUTABLE")
    aws.ecr.RepositoryPolicy("images-policy", repository=repository.name,
                             policy=json.dumps({"Version": "2012-10-17", "Statement": statements_}))


def passing_deny_outside_the_endpoint() -> None:
    _repository([_ALLOW, _DENY])


def passing_creation_template_with_the_deny() -> None:
    import json

    import pulumi_aws as aws

    aws.ecr.RepositoryCreationTemplate("cache", prefix="ecr-public", applied_fors=["PULL_THROUGH_CACHE"],
                                       repository_policy=json.dumps({"Version": "2012-10-17",
                                                                     "Statement": [_ALLOW, _DENY]}))


def failing_endpoint_condition_on_the_allow_only() -> None:
    _repository([_ALLOW])


def failing_deny_if_exists() -> None:
    _repository([_ALLOW, {**_DENY, "Condition": {
        "StringNotEqualsIfExists": {"aws:SourceVpce": "vpce-0123456789abcdef0"}}}])


def failing_creation_template_without_a_policy() -> None:
    import pulumi_aws as aws

    aws.ecr.RepositoryCreationTemplate("cache", prefix="ecr-public", applied_fors=["PULL_THROUGH_CACHE"])
