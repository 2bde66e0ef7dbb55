"""HS_DATA_001: buckets for regulated data or audit logs are object-locked (graph check: hs_data_001.yaml)."""

from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_DATA_001",
    title="Buckets holding regulated data or audit logs have object lock with a default retention",
    severity="HIGH",
    area="data",
    rationale="Poisoned or tampered training data and erased audit trails are undetectable after the fact; "
    "write-once retention keeps the versions a poisoning investigation and an auditor need.",
    remediation="Leave `object_lock` unset (the default for regulated and audit-logs buckets) or set "
    "`object_lock: {mode: COMPLIANCE, days: 365}`.",
    owasp_llm=("LLM04: Data and Model Poisoning",),
    mitre_atlas=("AML.T0020: Poison Training Data",),
    resources=("aws_s3_bucket",),
)


def _bucket(name, tags, lock):  # type: ignore[no-untyped-def]
    import pulumi_aws as aws

    bucket = aws.s3.Bucket(name, object_lock_enabled=lock, tags=tags)
    if lock:
        aws.s3.BucketObjectLockConfiguration(
            f"{name}-lock",
            bucket=bucket.id,
            rule={"default_retention": {"mode": "COMPLIANCE", "days": 365}},
        )


def passing_regulated_locked() -> None:
    _bucket("records", {"hardstack:classification": "regulated"}, True)


def passing_unclassified_unlocked() -> None:
    _bucket("scratch", {"hardstack:classification": "internal"}, False)


def failing_regulated_unlocked() -> None:
    _bucket("records", {"hardstack:classification": "regulated"}, False)


def failing_audit_lock_without_retention() -> None:
    import pulumi_aws as aws

    aws.s3.Bucket("trail", object_lock_enabled=True, tags={"hardstack:purpose": "audit-logs"})
