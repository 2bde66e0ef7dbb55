"""HS_NET_002: flow logs record all traffic, accepted and rejected."""

from hardstack.policies.checks.support import FAILED, PASSED, HardstackCheck, value
from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_NET_002",
    title="VPC flow logs capture ALL traffic",
    severity="MEDIUM",
    area="operations",
    rationale="Exfiltration of model weights or data goes out over accepted connections; a flow log of "
    "rejected traffic only cannot show it.",
    remediation="Set `traffic_type` to ALL (hardstack's SegmentedVpc does).",
    mitre_atlas=("AML.T0025: Exfiltration via Cyber Means",),
    resources=("aws_flow_log",),
)


class FlowLogsAllTraffic(HardstackCheck):
    META = META

    def scan_resource_conf(self, conf):  # type: ignore[no-untyped-def, override]
        return PASSED if value(conf, "traffic_type") == "ALL" else FAILED


check = FlowLogsAllTraffic()


def _flow(traffic):  # type: ignore[no-untyped-def]
    import pulumi_aws as aws

    vpc = aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16")
    logs = aws.cloudwatch.LogGroup("flows", retention_in_days=365)
    aws.ec2.FlowLog("flow", vpc_id=vpc.id, traffic_type=traffic, log_destination=logs.arn)


def passing_all() -> None:
    _flow("ALL")


def failing_rejected_only() -> None:
    _flow("REJECT")
