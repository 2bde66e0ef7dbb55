"""HS_EDGE_001: an internet-facing load balancer has a WAF web ACL associated (graph check: hs_edge_001.yaml)."""

from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_EDGE_001",
    title="Internet-facing load balancers have a WAF web ACL associated",
    severity="CRITICAL",
    area="infrastructure",
    rationale="An inference endpoint reachable from the internet without a WAF takes every request to the model: "
    "floods that run up GPU cost, scripted extraction queries and exploit payloads all reach the servers. Unlike "
    "checkov's CKV2_AWS_28 this also fails internet-facing network load balancers, which cannot carry a WAF and so "
    "cannot front an inference endpoint.",
    remediation="Put the endpoint behind an Application Load Balancer with a WAFv2 web ACL associated "
    "(hardstack's WafEndpoint does), or make the load balancer internal.",
    owasp_llm=("LLM10: Unbounded Consumption",),
    mitre_atlas=("AML.T0029: Denial of ML Service", "AML.T0040: ML Model Inference API Access",
                 "AML.T0049: Exploit Public-Facing Application"),
    waivable=False,
    resources=("aws_lb", "aws_alb"),
)


def _load_balancer(*, internal: bool, kind: str = "application", waf: bool = False) -> None:
    import pulumi_aws as aws

    vpc = aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16")
    subnets = [aws.ec2.Subnet(f"public-{i}", vpc_id=vpc.id, cidr_block=f"10.0.{i}.0/24") for i in (1, 2)]
    lb = aws.lb.LoadBalancer("endpoint", internal=internal, load_balancer_type=kind, subnets=[s.id for s in subnets])
    if waf:
        acl = aws.wafv2.WebAcl("acl", scope="REGIONAL", default_action={"allow": {}}, visibility_config={
            "cloudwatch_metrics_enabled": True, "metric_name": "acl", "sampled_requests_enabled": True})
        aws.wafv2.WebAclAssociation("acl-association", resource_arn=lb.arn, web_acl_arn=acl.arn)


def passing_internet_facing_with_web_acl() -> None:
    _load_balancer(internal=False, waf=True)


def passing_internal() -> None:
    _load_balancer(internal=True)


def failing_internet_facing_without_web_acl() -> None:
    _load_balancer(internal=False)


def failing_internet_facing_network_load_balancer() -> None:
    _load_balancer(internal=False, kind="network")
