"""HS_EDGE_004: a web ACL logs its requests, with credentials redacted (graph check: hs_edge_004.yaml)."""

from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_EDGE_004",
    title="Web ACLs log requests with the authorization header redacted",
    severity="MEDIUM",
    area="infrastructure",
    rationale="Without WAF logs there is no record of who was rate-limited or blocked, so extraction attempts and "
    "floods against an inference endpoint go unnoticed and cannot be investigated; logs that keep the "
    "Authorization header hand every caller's bearer token to whoever reads them.",
    remediation="Add a logging configuration to the web ACL that redacts the authorization header (hardstack's "
    "WafEndpoint logs to a CMK-encrypted aws-waf-logs-* log group and redacts the authorization and cookie "
    "headers).",
    owasp_llm=("LLM10: Unbounded Consumption",),
    mitre_atlas=("AML.T0024: Exfiltration via ML Inference API", "AML.T0029: Denial of ML Service"),
    resources=("aws_wafv2_web_acl",),
)


def _acl(logging: bool, redact: tuple[str, ...] = ("authorization",)) -> None:
    import pulumi_aws as aws

    acl = aws.wafv2.WebAcl("acl", scope="REGIONAL", default_action={"allow": {}}, visibility_config={
        "cloudwatch_metrics_enabled": True, "metric_name": "acl", "sampled_requests_enabled": True})
    if logging:
        group = aws.cloudwatch.LogGroup("waf-logs", name="aws-waf-logs-acl", retention_in_days=365)
        aws.wafv2.WebAclLoggingConfiguration("acl-logging", resource_arn=acl.arn, log_destination_configs=[group.arn],
                                             redacted_fields=[{"single_header": {"name": h}} for h in redact])


def passing_logged_with_authorization_redacted() -> None:
    _acl(True, ("authorization", "cookie"))


def failing_not_logged() -> None:
    _acl(False)


def failing_logged_with_authorization_kept() -> None:
    _acl(True, ("cookie",))
