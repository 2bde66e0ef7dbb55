"""HS_DATA_004: every bucket has a bucket policy (graph check: hs_data_004.yaml)."""

from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_DATA_004",
    title="Every bucket has a bucket policy",
    severity="HIGH",
    area="data",
    rationale="Without a bucket policy nothing on the bucket itself enforces TLS or the encryption key; a "
    "bucket of training data or models then depends on every client behaving.",
    remediation="Attach the hardened policy (hardstack's EncryptedBucket does).",
    owasp_llm=("LLM02: Sensitive Information Disclosure",),
    resources=("aws_s3_bucket",),
)


def passing_bucket_with_policy() -> None:
    from hardstack.policies.checks.hs_data_003 import passing_tls12_and_https

    passing_tls12_and_https()


def failing_bucket_without_policy() -> None:
    import pulumi_aws as aws

    aws.s3.Bucket("data")
