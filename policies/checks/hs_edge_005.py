"""HS_EDGE_005: a load balancer listener authenticates callers before it forwards to its targets."""

from hardstack.policies.checks.support import FAILED, PASSED, HardstackCheck, as_list, value
from hardstack.policies.meta import CheckMeta

AUTHENTICATING_ACTIONS = ("authenticate-oidc", "authenticate-cognito", "jwt-validation")
"""Listener actions that let a request through only with a valid sign-in or token (the load balancer refuses a
forward placed before them, so one present means it runs first)."""

META = CheckMeta(
    id="HS_EDGE_005",
    title="Load balancer listeners authenticate callers before forwarding to the model",
    severity="CRITICAL",
    area="model",
    rationale="A listener that forwards without authentication lets anyone who reaches it query the model: "
    "nothing ties a request to a caller, so neither quotas nor revocation nor an audit trail can stop extraction "
    "or abuse, and the per-client rate limit has no client to count.",
    remediation="Authenticate before the forward: an authenticate-oidc action for people, a jwt-validation action "
    "or mutual TLS in verify mode for machines (hardstack's WafEndpoint always sets one).",
    owasp_llm=("LLM10: Unbounded Consumption",),
    mitre_atlas=("AML.T0040: ML Model Inference API Access", "AML.T0024: Exfiltration via ML Inference API"),
    resources=("aws_lb_listener", "aws_alb_listener"),
)


class AuthenticatedForward(HardstackCheck):
    META = META

    def scan_resource_conf(self, conf):  # type: ignore[no-untyped-def, override]
        actions = [a for a in as_list(conf.get("default_action") or []) if isinstance(a, dict)]
        types = {value(a, "type") for a in actions}
        if "forward" not in types:
            return PASSED  # redirects and fixed responses reach no target
        if types & set(AUTHENTICATING_ACTIONS):
            return PASSED
        return PASSED if value(conf, "mutual_authentication", "mode") == "verify" else FAILED


check = AuthenticatedForward()


def _listener(auth=None, mtls=None):  # type: ignore[no-untyped-def]
    import pulumi_aws as aws

    lb = aws.lb.LoadBalancer("endpoint", internal=True, load_balancer_type="application")
    tg = aws.lb.TargetGroup("pods", target_type="ip", protocol="HTTPS", port=8443, vpc_id="vpc-0123456789abcdef0")
    actions = ([auth] if auth else []) + [{"type": "forward", "order": 2 if auth else 1, "target_group_arn": tg.arn}]
    extra = {}
    if mtls:
        store = aws.lb.TrustStore("clients", ca_certificates_bundle_s3_bucket="pki", ca_certificates_bundle_s3_key="ca.pem")
        extra["mutual_authentication"] = {"mode": mtls, "trust_store_arn": store.arn}
    aws.lb.Listener("https", load_balancer_arn=lb.arn, port=443, protocol="HTTPS",
                    ssl_policy="ELBSecurityPolicy-TLS13-1-3-2021-06",
                    certificate_arn="arn:aws:acm:us-east-1:123456789012:certificate/abc", default_actions=actions,
                    **extra)


def passing_jwt_validation() -> None:
    _listener({"type": "jwt-validation", "order": 1, "jwt_validation": {
        "issuer": "https://idp.example.com", "jwks_endpoint": "https://idp.example.com/jwks.json"}})


def passing_oidc() -> None:
    _listener({"type": "authenticate-oidc", "order": 1, "authenticate_oidc": {
        "issuer": "https://idp.example.com", "authorization_endpoint": "https://idp.example.com/authorize",
        "token_endpoint": "https://idp.example.com/token", "user_info_endpoint": "https://idp.example.com/userinfo",
        "client_id": "endpoint", "client_secret": "not-a-secret"}})


def passing_mutual_tls_verify() -> None:
    _listener(mtls="verify")


def failing_forward_without_authentication() -> None:
    _listener()


def failing_mutual_tls_passthrough() -> None:
    _listener(mtls="passthrough")
