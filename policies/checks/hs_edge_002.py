"""HS_EDGE_002: load balancer listeners speak TLS 1.3 only; plain HTTP only redirects to HTTPS."""

from hardstack.policies.checks.support import FAILED, PASSED, HardstackCheck, as_list, value
from hardstack.policies.meta import CheckMeta

TLS13_ONLY_PREFIX = "ELBSecurityPolicy-TLS13-1-3-"
"""Every Elastic Load Balancing policy that offers TLS 1.3 and nothing older starts with this (the FIPS and
post-quantum variants too); `ELBSecurityPolicy-TLS13-1-2-*` still allows TLS 1.2."""

META = CheckMeta(
    id="HS_EDGE_002",
    title="Load balancer listeners allow TLS 1.3 only and plain HTTP only to redirect to HTTPS",
    severity="HIGH",
    area="infrastructure",
    rationale="Prompts, completions and the bearer tokens that authorize them cross this listener. TLS 1.2 "
    "policies keep CBC and non-forward-secret suites and downgrade paths that TLS 1.3 removes; a listener that "
    "serves plain HTTP exposes all of it on the wire.",
    remediation=f"Set ssl_policy to ELBSecurityPolicy-TLS13-1-3-2021-06 (or another {TLS13_ONLY_PREFIX}* policy) "
    "on HTTPS and TLS listeners, and make an HTTP listener's only action a redirect to HTTPS (hardstack's "
    "WafEndpoint does both).",
    owasp_llm=("LLM02: Sensitive Information Disclosure",),
    mitre_atlas=("AML.T0024: Exfiltration via ML Inference API",),
    resources=("aws_lb_listener", "aws_alb_listener"),
)

ENCRYPTED = ("HTTPS", "TLS")


def redirects_to_https(conf) -> bool:  # type: ignore[no-untyped-def]
    actions = [a for a in as_list(conf.get("default_action") or []) if isinstance(a, dict)]
    return bool(actions) and all(
        value(a, "type") == "redirect" and value(a, "redirect", "protocol") == "HTTPS" for a in actions)


class ListenerTls13(HardstackCheck):
    META = META

    def scan_resource_conf(self, conf):  # type: ignore[no-untyped-def, override]
        protocol = value(conf, "protocol") or "HTTP"  # an ALB listener without a protocol serves HTTP
        if protocol in ENCRYPTED:
            return PASSED if str(value(conf, "ssl_policy") or "").startswith(TLS13_ONLY_PREFIX) else FAILED
        if protocol == "HTTP":
            return PASSED if redirects_to_https(conf) else FAILED
        return PASSED  # TCP/UDP: the load balancer passes bytes through and terminates no TLS of its own


check = ListenerTls13()


def _listener(protocol, *, policy=None, redirect=False):  # type: ignore[no-untyped-def]
    import pulumi_aws as aws

    lb = aws.lb.LoadBalancer("endpoint", internal=True, load_balancer_type="application")
    tg = aws.lb.TargetGroup("pods", target_type="ip", protocol="HTTPS", port=8443, vpc_id="vpc-0123456789abcdef0")
    action = ({"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "status_code": "HTTP_301"}}
              if redirect else {"type": "forward", "target_group_arn": tg.arn})
    args = {"ssl_policy": policy, "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/abc"} \
        if protocol in ENCRYPTED else {}
    aws.lb.Listener("listener", load_balancer_arn=lb.arn, port=443 if protocol in ENCRYPTED else 80,
                    protocol=protocol, default_actions=[action], **args)


def passing_tls13_only() -> None:
    _listener("HTTPS", policy="ELBSecurityPolicy-TLS13-1-3-2021-06")


def passing_http_redirected_to_https() -> None:
    _listener("HTTP", redirect=True)


def failing_tls12_allowed() -> None:
    _listener("HTTPS", policy="ELBSecurityPolicy-TLS13-1-2-2021-06")


def failing_default_policy() -> None:
    _listener("HTTPS")


def failing_plain_http_forward() -> None:
    _listener("HTTP")
