"""HS_GPU_003: launch templates require IMDSv2 with a hop limit of 1."""

from hardstack.policies.checks.support import FAILED, PASSED, HardstackCheck, value
from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_GPU_003",
    title="Launch templates require IMDSv2 with a response hop limit of 1",
    severity="CRITICAL",
    area="identity",
    rationale="With IMDSv1 or a hop limit above 1, any pod on the node can take the node role's credentials "
    "(the classic SSRF-to-credentials path) and reach everything the node can: images, data, the cluster.",
    remediation="Set metadata_options http_tokens=required and http_put_response_hop_limit=1 (hardstack's "
    "GpuNodePool and SystemNodePool do); give workloads Pod Identity roles instead.",
    mitre_atlas=("AML.T0012: Valid Accounts",),
    waivable=False,
    resources=("aws_launch_template",),
)


class Imdsv2HopLimitOne(HardstackCheck):
    META = META

    def scan_resource_conf(self, conf):  # type: ignore[no-untyped-def, override]
        tokens = value(conf, "metadata_options", "http_tokens")
        hops = value(conf, "metadata_options", "http_put_response_hop_limit")
        endpoint = value(conf, "metadata_options", "http_endpoint", default="enabled")
        if endpoint == "disabled":
            return PASSED
        try:
            return PASSED if tokens == "required" and hops is not None and int(hops) <= 1 else FAILED
        except (TypeError, ValueError):
            return FAILED


check = Imdsv2HopLimitOne()


def _template(options):  # type: ignore[no-untyped-def]
    import pulumi_aws as aws

    aws.ec2.LaunchTemplate("nodes", metadata_options=options)


def passing_imdsv2_one_hop() -> None:
    _template({"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1})


def failing_two_hops() -> None:
    _template({"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 2})


def failing_imdsv1() -> None:
    _template({"http_endpoint": "enabled", "http_tokens": "optional", "http_put_response_hop_limit": 1})
