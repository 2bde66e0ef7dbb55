"""HS_DATA_003: a bucket policy refuses plain HTTP and TLS older than 1.2."""

from hardstack.policies.checks.support import FAILED, PASSED, HardstackCheck, as_list, policy_document, statements
from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_DATA_003",
    title="Bucket policy denies requests without TLS and with TLS older than 1.2",
    severity="HIGH",
    area="data",
    rationale="Training data, model weights and prompts logged for evaluation cross the network; the bucket "
    "itself must refuse plaintext and weak TLS whatever the client does.",
    remediation="Add Deny statements on aws:SecureTransport = false and NumericLessThan s3:TlsVersion 1.2 "
    "(hardstack's EncryptedBucket does).",
    owasp_llm=("LLM02: Sensitive Information Disclosure",),
    mitre_atlas=("AML.T0025: Exfiltration via Cyber Means",),
    resources=("aws_s3_bucket_policy",),
)


def _denies(doc, test, key, ok):  # type: ignore[no-untyped-def]
    for st in statements(doc):
        if st.get("Effect") != "Deny" or st.get("Principal") not in ("*", {"AWS": "*"}):
            continue
        if not any(a in ("s3:*", "*") for a in as_list(st.get("Action", []))):
            continue
        for v in as_list(st.get("Condition", {}).get(test, {}).get(key, [])):
            if ok(str(v)):
                return True
    return False


def _tls_version_ok(v: str) -> bool:
    try:
        return float(v) >= 1.2
    except ValueError:
        return False


class TlsOnlyBucketPolicy(HardstackCheck):
    META = META

    def scan_resource_conf(self, conf):  # type: ignore[no-untyped-def, override]
        doc = policy_document(conf)
        plaintext = _denies(doc, "Bool", "aws:SecureTransport", lambda v: v.lower() == "false")
        old_tls = _denies(doc, "NumericLessThan", "s3:TlsVersion", _tls_version_ok)
        return PASSED if plaintext and old_tls else FAILED


check = TlsOnlyBucketPolicy()


def _policy(statements_):  # type: ignore[no-untyped-def]
    import json

    import pulumi_aws as aws

    bucket = aws.s3.Bucket("data")
    aws.s3.BucketPolicy(
        "data-policy",
        bucket=bucket.id,
        policy=bucket.arn.apply(
            lambda arn: json.dumps(
                {"Version": "2012-10-17", "Statement": [dict(s, Resource=[arn, f"{arn}/*"]) for s in statements_]}
            )
        ),
    )


_NO_HTTP = {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


def passing_tls12_and_https() -> None:
    _policy([_NO_HTTP, {**_NO_HTTP, "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}}}])


def failing_https_only() -> None:
    _policy([_NO_HTTP])


def failing_tls10_floor() -> None:
    _policy([_NO_HTTP, {**_NO_HTTP, "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.0"}}}])
