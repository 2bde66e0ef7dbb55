"""HS_NET_003: the S3 gateway endpoint reaches only this account's buckets."""

from hardstack.policies.checks.support import FAILED, PASSED, HardstackCheck, as_list, policy_document, statements, value
from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_NET_003",
    title="S3 gateway endpoint policy limits access to this account's buckets",
    severity="HIGH",
    area="infrastructure",
    rationale="Without a resource-account condition, anything inside the VPC can copy training data or model "
    "weights to a bucket of any other account through the endpoint, even in an air-gapped VPC.",
    remediation="Give the endpoint a policy allowing S3 only where aws:ResourceAccount is this account (plus "
    "named AWS-owned buckets), as hardstack's SegmentedVpc does.",
    owasp_llm=("LLM02: Sensitive Information Disclosure",),
    mitre_atlas=("AML.T0025: Exfiltration via Cyber Means",),
    resources=("aws_vpc_endpoint",),
)


class S3EndpointPerimeter(HardstackCheck):
    META = META

    def scan_resource_conf(self, conf):  # type: ignore[no-untyped-def, override]
        service = str(value(conf, "service_name") or "")
        kind = value(conf, "vpc_endpoint_type") or "Gateway"
        if not service.endswith(".s3") or kind != "Gateway":
            return PASSED
        for st in statements(policy_document(conf)):
            if st.get("Effect") != "Allow":
                continue
            scoped = "aws:ResourceAccount" in st.get("Condition", {}).get("StringEquals", {})
            named = all(r != "*" and not str(r).startswith("arn:aws:s3:::*") for r in as_list(st.get("Resource", "*")))
            if not (scoped or named):
                return FAILED
        return PASSED if policy_document(conf) else FAILED


check = S3EndpointPerimeter()


def _endpoint(policy):  # type: ignore[no-untyped-def]
    import json

    import pulumi_aws as aws

    vpc = aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16")
    args = {"policy": json.dumps(policy)} if policy else {}
    aws.ec2.VpcEndpoint("s3", vpc_id=vpc.id, service_name="com.amazonaws.us-east-1.s3", vpc_endpoint_type="Gateway", **args)


def passing_own_account_only() -> None:
    _endpoint({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*",
               "Resource": "*", "Condition": {"StringEquals": {"aws:ResourceAccount": "123456789012"}}}]})


def failing_default_full_access() -> None:
    _endpoint(None)


def failing_any_bucket() -> None:
    _endpoint({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*",
               "Resource": "*"}]})
