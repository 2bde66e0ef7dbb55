"""HS_EDGE_003: a web ACL blocks clients over a rate limit."""

import json

from hardstack.policies.checks.support import FAILED, PASSED, HardstackCheck, as_list, value
from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_EDGE_003",
    title="Web ACLs have a blocking rate-based rule",
    severity="HIGH",
    area="model",
    rationale="Each inference request costs GPU time, and model extraction and credential stuffing need many "
    "requests: without a rate limit one client can exhaust the endpoint's capacity and budget, or query the model "
    "until it is copied.",
    remediation="Add rate-based rules that block, per client IP and per client identity (hardstack's WafEndpoint "
    "adds both, with the limits of the endpoint's `waf` settings).",
    owasp_llm=("LLM10: Unbounded Consumption",),
    mitre_atlas=("AML.T0029: Denial of ML Service", "AML.T0024: Exfiltration via ML Inference API",
                 "AML.T0040: ML Model Inference API Access"),
    resources=("aws_wafv2_web_acl",),
)


def _blocking_rate_rules(conf) -> int:  # type: ignore[no-untyped-def]
    found = 0
    for rule in as_list(conf.get("rule") or []):
        if isinstance(rule, dict) and value(rule, "statement", "rate_based_statement") and \
                value(rule, "action", "block") is not None:
            found += 1
    rule_json = value(conf, "rule_json")
    if isinstance(rule_json, str) and rule_json:
        try:
            rules = json.loads(rule_json)
        except json.JSONDecodeError:
            rules = []
        found += sum(1 for r in rules if isinstance(r, dict) and (r.get("Statement") or {}).get("RateBasedStatement")
                     and "Block" in (r.get("Action") or {}))
    return found


class RateLimited(HardstackCheck):
    META = META

    def scan_resource_conf(self, conf):  # type: ignore[no-untyped-def, override]
        return PASSED if _blocking_rate_rules(conf) else FAILED


check = RateLimited()


def _acl(rules):  # type: ignore[no-untyped-def]
    import pulumi_aws as aws

    aws.wafv2.WebAcl("acl", scope="REGIONAL", default_action={"allow": {}}, rules=rules, visibility_config={
        "cloudwatch_metrics_enabled": True, "metric_name": "acl", "sampled_requests_enabled": True})


def _rate_rule(action):  # type: ignore[no-untyped-def]
    return {"name": "rate-per-ip", "priority": 0, "action": {action: {}},
            "statement": {"rate_based_statement": {"limit": 300, "aggregate_key_type": "IP"}},
            "visibility_config": {"cloudwatch_metrics_enabled": True, "metric_name": "rate",
                                  "sampled_requests_enabled": True}}


def passing_blocking_rate_rule() -> None:
    _acl([_rate_rule("block")])


def failing_no_rules() -> None:
    _acl([])


def failing_rate_rule_only_counts() -> None:
    _acl([_rate_rule("count")])
