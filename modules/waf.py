"""The rules of an inference endpoint's web ACL, as data: what each blocks and in which order WAF evaluates them.

Cheap, decisive rules come first (who may connect at all, then rate limits, then the body limit), AWS managed
rule groups last, so that a flood from one client is refused before the managed rules spend capacity on it.
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

import pulumi

from hardstack.blueprints.endpoints import WafSpec

RATE_WINDOW_SECONDS = 300
"""The window rate-based rules count in: the limits of WafSpec are per 5 minutes."""

MANAGED_RULE_GROUPS = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesAnonymousIpList",
)
"""AWS managed rule groups, all rules blocking: common web exploits (OWASP Top 10), known bad inputs (Log4j and
other exploit payloads), addresses AWS threat intelligence lists as bots or attackers, and anonymising proxies, VPNs
and hosting providers (requests that hide who sends them)."""

OIDC_SESSION_COOKIE = "AWSELBAuthSessionCookie"
"""The cookie the load balancer keeps a signed-in person's session in; it splits a large session over
`<name>-0`, `<name>-1`…, and the first part is always present."""

AuthKind = Literal["oidc", "jwt", "mtls"]

NONE_TRANSFORMATION = [{"priority": 0, "type": "NONE"}]
"""Keys and sizes are taken as sent: a bearer token or a cookie is case-sensitive."""


def client_identity_key(kind: AuthKind) -> dict[str, Any]:
    """What identifies one caller to the per-client rate limit, by how callers authenticate.

    * `jwt`: the `Authorization` header, i.e. the bearer token (one token = one client).
    * `oidc`: the load balancer's session cookie (one sign-in session = one person).
    * `mtls`: the TLS client's JA4 fingerprint. WAF never sees the client certificate (the load balancer
      terminates mutual TLS before WAF inspects the request), so the closest per-client key it offers is the
      fingerprint of the client's TLS stack. Clients built on the same TLS library share a fingerprint, so this
      limit is per kind of client rather than per certificate; the per-IP limit still applies to each address.
      Requests without a fingerprint are not counted here (`NO_MATCH`) but are by the per-IP rule.
    """
    if kind == "jwt":
        return {"header": {"name": "authorization", "text_transformations": NONE_TRANSFORMATION}}
    if kind == "oidc":
        return {"cookie": {"name": f"{OIDC_SESSION_COOKIE}-0", "text_transformations": NONE_TRANSFORMATION}}
    if kind == "mtls":
        return {"ja4_fingerprint": {"fallback_behavior": "NO_MATCH"}}
    raise ValueError(f"unknown auth kind {kind!r}; allowed: oidc, jwt, mtls")


def _visibility(metric: str) -> dict[str, Any]:
    return {"cloudwatch_metrics_enabled": True, "metric_name": metric, "sampled_requests_enabled": True}


def _rule(name: str, priority: int, statement: dict[str, Any], metric_prefix: str) -> dict[str, Any]:
    return {
        "name": name,
        "priority": priority,
        "action": {"block": {}},
        "statement": statement,
        "visibility_config": _visibility(f"{metric_prefix}-{name}"),
    }


def web_acl_rules(
    spec: WafSpec,
    kind: AuthKind,
    *,
    metric_prefix: str,
    ip_allowlist_arn: pulumi.Input[str] | None = None,
) -> list[dict[str, Any]]:
    """The web ACL's rules (WebAcl `rules`), every one blocking:

    1. `ip-allowlist` (when given): requests from outside the allowed addresses;
    2. `geo-allowlist` (when `allow_countries` is set): requests from any other country;
    3. `rate-per-ip`: more than `requests_per_ip` requests in 5 minutes from one address;
    4. `rate-per-client`: more than `requests_per_client` in 5 minutes from one client identity;
    5. `body-size`: request bodies (prompts) over `max_body_kb`; bodies beyond what WAF inspects (8 KB at a load
       balancer) match too (`oversize_handling: MATCH`), so an oversized prompt is blocked, never let through
       uninspected;
    6. the AWS managed rule groups of MANAGED_RULE_GROUPS, none of their rules overridden to count.
    """
    rules: list[dict[str, Any]] = []
    if ip_allowlist_arn is not None:
        rules.append(_rule("ip-allowlist", len(rules), {
            "not_statement": {"statement": {"ip_set_reference_statement": {"arn": ip_allowlist_arn}}}},
            metric_prefix))
    if spec.allow_countries:
        rules.append(_rule("geo-allowlist", len(rules), {
            "not_statement": {"statement": {"geo_match_statement": {"country_codes": sorted(spec.allow_countries)}}}},
            metric_prefix))
    rules.append(_rule("rate-per-ip", len(rules), {"rate_based_statement": {
        "limit": spec.requests_per_ip,
        "aggregate_key_type": "IP",
        "evaluation_window_sec": RATE_WINDOW_SECONDS,
    }}, metric_prefix))
    rules.append(_rule("rate-per-client", len(rules), {"rate_based_statement": {
        "limit": spec.requests_per_client,
        "aggregate_key_type": "CUSTOM_KEYS",
        "evaluation_window_sec": RATE_WINDOW_SECONDS,
        "custom_keys": [client_identity_key(kind)],
    }}, metric_prefix))
    rules.append(_rule("body-size", len(rules), {"size_constraint_statement": {
        "comparison_operator": "GT",
        "size": spec.max_body_kb * 1024,
        "field_to_match": {"body": {"oversize_handling": "MATCH"}},
        "text_transformations": NONE_TRANSFORMATION,
    }}, metric_prefix))
    first = len(rules)
    rules.extend(managed_rule_group(group, first + i, metric_prefix) for i, group in enumerate(MANAGED_RULE_GROUPS))
    return rules


def managed_rule_group(group: str, priority: int, metric_prefix: str) -> dict[str, Any]:
    """An AWS managed rule group whose own actions apply (`override_action: none`): none counts instead of blocks."""
    return {
        "name": group,
        "priority": priority,
        "override_action": {"none": {}},
        "statement": {"managed_rule_group_statement": {"vendor_name": "AWS", "name": group}},
        "visibility_config": _visibility(f"{metric_prefix}-{group}"),
    }


REDACTED_HEADERS = ("authorization", "cookie")
"""Credentials never written to the WAF log: bearer tokens and session cookies."""


def redacted_fields(headers: Sequence[str] = REDACTED_HEADERS) -> list[dict[str, Any]]:
    return [{"single_header": {"name": h}} for h in headers]
