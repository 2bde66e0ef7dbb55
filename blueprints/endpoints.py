"""Inference endpoints: a TLS 1.3 load balancer behind a WAF in front of a tenant's Service, never without
authentication."""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Annotated, Literal, Union

from pydantic import Field, StringConstraints, model_validator

from .base import Name, Spec
from .network import LogRetentionDays

DomainName = Annotated[str, StringConstraints(pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")]
HttpsUrl = Annotated[str, StringConstraints(pattern=r"^https://[A-Za-z0-9.-]+(:\d+)?(/[\w./~%-]*)?$")]
ZoneId = Annotated[str, StringConstraints(pattern=r"^Z[A-Z0-9]{1,31}$")]
CertificateArn = Annotated[str, StringConstraints(pattern=r"^arn:aws(-[a-z]+)*:acm:[a-z0-9-]+:\d{12}:certificate/[\w-]+$")]
S3Uri = Annotated[str, StringConstraints(pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[\w./!*'()-]+$")]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-3-2021-06"
"""The listener's TLS policy: TLS 1.3 only."""


class OidcAuthSpec(Spec):
    """People sign in with your identity provider (the load balancer's OIDC authentication); the client secret
    is the stack config secret `hardstack:oidcClientSecret-<endpoint>`."""

    kind: Literal["oidc"]
    issuer: HttpsUrl
    """The identity provider's issuer."""

    authorization_endpoint: HttpsUrl
    """Its authorization endpoint."""

    token_endpoint: HttpsUrl
    """Its token endpoint."""

    user_info_endpoint: HttpsUrl
    """Its user-info endpoint."""

    client_id: str = Field(min_length=1, max_length=256)
    """The client registered for this endpoint."""

    session_seconds: int = Field(3600, ge=300, le=43200)
    """How long a sign-in lasts before the load balancer asks again."""


class JwtAuthSpec(Spec):
    """Machines present a bearer JWT, verified by the load balancer (signature, issuer, expiry, audience)."""

    kind: Literal["jwt"]
    issuer: HttpsUrl
    """The token issuer (`iss`)."""

    jwks_endpoint: HttpsUrl
    """Where the issuer publishes its signing keys."""

    audience: str = Field(min_length=1, max_length=256)
    """The audience (`aud`) tokens must carry."""


class MtlsAuthSpec(Spec):
    """Machines present a client certificate issued by your CA (mutual TLS, verify mode)."""

    kind: Literal["mtls"]
    ca_bundle: S3Uri
    """The PEM bundle of the client CAs, as an S3 object, e.g. `s3://pki-bucket/inference/ca.pem`."""


AuthSpec = Annotated[Union[OidcAuthSpec, JwtAuthSpec, MtlsAuthSpec], Field(discriminator="kind")]


class WafSpec(Spec):
    """The web ACL in front of the endpoint: AWS managed rules (common, known bad inputs, IP reputation,
    anonymous IPs), rate limits per client IP and per client identity, a request-body limit; logged to a
    CMK-encrypted log group with credentials redacted."""

    requests_per_ip: int = Field(300, ge=10, le=2_000_000)
    """Requests one client IP may send in 5 minutes; more are blocked."""

    requests_per_client: int = Field(600, ge=10, le=2_000_000)
    """Requests one client identity (its bearer token, sign-in session or TLS fingerprint) may send in
    5 minutes; more are blocked. Slows model extraction and credential stuffing."""

    max_body_kb: int = Field(8, ge=1, le=8)
    """Largest request body (prompt) in KB; larger ones are blocked (a load balancer's WAF inspects 8 KB)."""

    allow_countries: list[CountryCode] = []
    """ISO country codes requests may come from. Unset: any."""

    log_retention_days: LogRetentionDays = 365
    """WAF logs are kept this many days (one of CloudWatch's values of at least a year)."""



class EndpointSpec(Spec):
    """An inference endpoint: an HTTPS-only load balancer (TLS 1.3, HTTP redirected, invalid headers dropped,
    strictest desync mitigation, deletion protection, access logs) with a WAF, forwarding to a tenant's
    Service; only the load balancer reaches the Service's pods."""

    name: Name
    """The endpoint's name."""

    tenant: Name
    """The tenant whose Service serves the endpoint."""

    service: Name
    """The Service (in the tenant's namespace) the endpoint forwards to."""

    port: int = Field(ge=1, le=65535)
    """The Service's port. Its pods serve TLS on it (any certificate: the load balancer encrypts to them but
    does not verify them), its targetPort equals it, and they answer `GET /health` with 200."""

    scheme: Literal["internal", "internet-facing"] = "internal"
    """`internal`: reachable inside the VPC only. `internet-facing`: in the public tier, reachable from the
    internet (always behind the WAF)."""

    domain_name: DomainName
    """The endpoint's name in DNS, and its certificate's."""

    zone_id: ZoneId | None = None
    """A Route 53 hosted zone for `domain_name`: an ACM certificate is issued (validated in DNS) and the name
    points at the load balancer. Set this or `certificate_arn`."""

    certificate_arn: CertificateArn | None = None
    """An existing ACM certificate for `domain_name` instead."""

    allowed_cidrs: list[IPv4Network] = []
    """Who may connect. Unset: the VPC (internal) or anywhere (internet-facing); an internet-facing endpoint's
    CIDRs lie outside the VPC. Endpoints of one scheme share their tier's network ACL, where each CIDR takes one
    inbound rule per listener port (443, and 80 when HTTP is redirected) and one outbound rule for the replies;
    AWS allows 20 of each per ACL by default, so about 6 distinct CIDRs fit across the internet-facing endpoints
    (5 with `egress: nat`) and 8 across the internal ones; more is refused with the count."""

    auth: AuthSpec
    """How callers authenticate (never optional): `oidc` for people, `jwt` or `mtls` for machines. An internal
    endpoint uses `mtls`: the load balancer has no route to an identity provider there."""

    waf: WafSpec = WafSpec()
    """The web ACL's limits."""

    @model_validator(mode="after")
    def _one_certificate(self) -> "EndpointSpec":
        if (self.zone_id is None) == (self.certificate_arn is None):
            raise ValueError("set exactly one of zone_id (a certificate is issued) or certificate_arn")
        if self.scheme == "internal" and self.auth.kind != "mtls":
            raise ValueError(f"auth {self.auth.kind!r} needs the load balancer to reach the identity provider over "
                             "the internet, which an internal endpoint cannot; allowed: auth kind mtls for an "
                             "internal endpoint, or scheme internet-facing")
        return self

    @property
    def client_secret_config(self) -> str | None:
        """For `oidc` endpoints, the key of the stack config secret holding the client secret (in the
        `hardstack` namespace: `pulumi config set --secret hardstack:oidcClientSecret-<endpoint>`)."""
        return f"oidcClientSecret-{self.name}" if self.auth.kind == "oidc" else None
