"""HS_IAM_004: every role carries a permission boundary and a session of at most one hour."""

from hardstack.policies.checks.support import FAILED, PASSED, HardstackCheck, value
from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_IAM_004",
    title="Roles have a permission boundary and sessions of at most one hour",
    severity="MEDIUM",
    area="identity",
    rationale="A boundary caps what any later policy can grant a role (no tampering with keys, logs or object "
    "lock, no other region); a one-hour session limits how long stolen credentials stay useful.",
    remediation="Set `permissions_boundary` to the stack's boundary and `max_session_duration` to 3600 or less "
    "(hardstack's roles do).",
    mitre_atlas=("AML.T0012: Valid Accounts",),
    resources=("aws_iam_role",),
)


class BoundedRoles(HardstackCheck):
    META = META

    def scan_resource_conf(self, conf):  # type: ignore[no-untyped-def, override]
        session = value(conf, "max_session_duration", default=3600)
        try:
            short = int(session) <= 3600
        except (TypeError, ValueError):
            short = False
        return PASSED if value(conf, "permissions_boundary") and short else FAILED


check = BoundedRoles()


def _role(boundary: bool, session: int = 3600) -> None:
    import json

    import pulumi_aws as aws

    cap = aws.iam.Policy("boundary", policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": ["kms:ScheduleKeyDeletion"], "Resource": "*"}]}))
    aws.iam.Role("role", max_session_duration=session, permissions_boundary=cap.arn if boundary else None,
                 assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": [
                     {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))


def passing_bounded_one_hour() -> None:
    _role(True)


def failing_no_boundary() -> None:
    _role(False)


def failing_twelve_hour_session() -> None:
    _role(True, 43200)
