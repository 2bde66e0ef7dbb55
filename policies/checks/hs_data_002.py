"""HS_DATA_002: a bucket's default encryption uses a customer-managed key of this stack."""

from hardstack.policies.checks.support import FAILED, PASSED, HardstackCheck, is_reference, value
from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_DATA_002",
    title="Bucket encryption uses a customer-managed KMS key created by this stack",
    severity="CRITICAL",
    area="data",
    rationale="SSE-S3 and the AWS-managed aws/s3 key cannot be scoped, audited per use, or revoked; a key from "
    "outside the stack escapes its key policy. Training data and model weights need a key whose policy this "
    "stack controls.",
    remediation="Encrypt with the stack's CMK (hardstack's EncryptedBucket does); never name a literal key ARN "
    "or alias from elsewhere.",
    owasp_llm=("LLM02: Sensitive Information Disclosure",),
    mitre_atlas=("AML.T0035: ML Artifact Collection",),
    waivable=False,
    resources=("aws_s3_bucket_server_side_encryption_configuration",),
)


class StackKeyEncryption(HardstackCheck):
    META = META

    def scan_resource_conf(self, conf):  # type: ignore[no-untyped-def, override]
        rules = conf.get("rule") or []
        if not rules:
            return FAILED
        for rule in rules:
            algorithm = value(rule, "apply_server_side_encryption_by_default", "sse_algorithm")
            key = value(rule, "apply_server_side_encryption_by_default", "kms_master_key_id")
            if algorithm not in ("aws:kms", "aws:kms:dsse") or not is_reference(key, "aws_kms_key"):
                return FAILED
        return PASSED


check = StackKeyEncryption()


def _sse(algorithm, key=None):  # type: ignore[no-untyped-def]
    import pulumi_aws as aws

    bucket = aws.s3.Bucket("data")
    default = {"sse_algorithm": algorithm}
    if key is not None:
        default["kms_master_key_id"] = key
    aws.s3.BucketServerSideEncryptionConfiguration(
        "data-sse", bucket=bucket.id, rules=[{"apply_server_side_encryption_by_default": default}]
    )


def passing_stack_cmk() -> None:
    import pulumi_aws as aws

    _sse("aws:kms", aws.kms.Key("data-key", enable_key_rotation=True).arn)


def failing_sse_s3() -> None:
    _sse("AES256")


def failing_aws_managed_key() -> None:
    _sse("aws:kms")


def failing_key_from_elsewhere() -> None:
    _sse("aws:kms", "arn:aws:kms:us-east-1:999999999999:key/11111111-2222-3333-4444-555555555555")
