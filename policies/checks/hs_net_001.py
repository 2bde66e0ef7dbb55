"""HS_NET_001: a network that holds regulated data has no NAT gateway (no way out)."""

from hardstack.policies.checks.support import FAILED, PASSED, HardstackCheck, value
from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_NET_001",
    title="No NAT gateway in a network that holds regulated data",
    severity="HIGH",
    area="infrastructure",
    rationale="A route to the internet is the exfiltration channel of a compromised training job, a poisoned "
    "dependency or an injected agent. Regulated data stays in an air-gapped VPC that reaches AWS only "
    "through VPC endpoints.",
    remediation="Use `network.egress: none` (the default) and add the interface endpoints the workloads need.",
    owasp_llm=("LLM02: Sensitive Information Disclosure",),
    mitre_atlas=("AML.T0025: Exfiltration via Cyber Means",),
    resources=("aws_nat_gateway",),
)


class NoNatForRegulatedData(HardstackCheck):
    META = META

    def scan_resource_conf(self, conf):  # type: ignore[no-untyped-def, override]
        tags = value(conf, "tags") or {}
        return FAILED if isinstance(tags, dict) and tags.get("hardstack:classification") == "regulated" else PASSED


check = NoNatForRegulatedData()


def _nat(classification):  # type: ignore[no-untyped-def]
    import pulumi_aws as aws

    vpc = aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16")
    subnet = aws.ec2.Subnet("public", vpc_id=vpc.id, cidr_block="10.0.0.0/24")
    eip = aws.ec2.Eip("nat-ip", domain="vpc")
    aws.ec2.NatGateway(
        "nat", subnet_id=subnet.id, allocation_id=eip.id, tags={"hardstack:classification": classification}
    )


def passing_confidential_with_nat() -> None:
    _nat("confidential")


def failing_regulated_with_nat() -> None:
    _nat("regulated")
