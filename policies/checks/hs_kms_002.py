"""HS_KMS_002: a key scheduled for deletion stays recoverable for 30 days."""

from hardstack.policies.checks.support import FAILED, PASSED, HardstackCheck, value
from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_KMS_002",
    title="KMS key deletion window is 30 days",
    severity="MEDIUM",
    area="data",
    rationale="Deleting a key destroys every model and data set encrypted with it; the longest window AWS allows "
    "leaves time to notice a malicious or mistaken deletion and cancel it.",
    remediation="Set `deletion_window_in_days` to 30 (hardstack's CustomerManagedKey does).",
    resources=("aws_kms_key",),
)


class KeyDeletionWindow(HardstackCheck):
    META = META

    def scan_resource_conf(self, conf):  # type: ignore[no-untyped-def, override]
        days = value(conf, "deletion_window_in_days", default=30)
        try:
            return PASSED if int(days) >= 30 else FAILED
        except (TypeError, ValueError):
            return FAILED


check = KeyDeletionWindow()


def passing_thirty_days() -> None:
    import pulumi_aws as aws

    aws.kms.Key("key", enable_key_rotation=True, deletion_window_in_days=30)


def failing_seven_days() -> None:
    import pulumi_aws as aws

    aws.kms.Key("key", enable_key_rotation=True, deletion_window_in_days=7)
