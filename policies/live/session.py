"""One AWS account and region, read through boto3. Every call goes through `LiveSession.call` or `.pages`, which
turn botocore's failures into hardstack's (a denied call names its IAM action and resource, an unreachable endpoint
its URL) and let only the "not configured" answers a caller expects through as `None`."""

from __future__ import annotations

import re
from typing import Any, Iterator

from hardstack.errors import InvalidInput

from .errors import AccessDenied, ApiFailed, CredentialsMissing, CredentialsRejected, NotVerified, Unreachable
from .permissions import OPERATIONS, iam_action

DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException",
                    "AuthorizationError", "Forbidden", "ForbiddenException"})
"""Error codes AWS services answer a call the caller's policies do not allow with."""
REJECTED = frozenset({"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
                      "InvalidSignatureException", "ExpiredToken", "ExpiredTokenException", "InvalidAccessKeyId",
                      "AuthFailure", "InvalidToken", "TokenRefreshRequired"})
"""Error codes meaning the credentials themselves were refused (unknown, expired, wrongly signed)."""

CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 60
MAX_ATTEMPTS = 4
"""botocore's standard retry mode: throttling and transient errors are retried with backoff up to this many
attempts; past that the audit stops, not verified."""

_WRAPPED_CODE = re.compile(r"<Code>([^<]+)</Code>")
_WRAPPED_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")


class LiveSession:
    """Clients for one region (and, for testing, one endpoint URL), the account and identity they act as, and
    the calls made so far (service, operation)."""

    def __init__(self, *, region: str | None = None, endpoint_url: str | None = None,
                 profile: str | None = None) -> None:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import InvalidRegionError, ProfileNotFound, UnknownRegionError

        try:
            self._session = boto3.Session(profile_name=profile, region_name=region)
        except ProfileNotFound:
            raise InvalidInput("no such AWS profile", field="--profile", received=profile,
                               allowed="a profile of the AWS config or credentials file") from None
        if not self._session.region_name:
            raise InvalidInput("no AWS region given", field="--region",
                               allowed="--region, AWS_REGION or AWS_DEFAULT_REGION, or a profile with a region")
        self.region: str = self._session.region_name
        self.endpoint_url = endpoint_url
        try:
            self.partition: str = self._session.get_partition_for_region(self.region)
        except (UnknownRegionError, InvalidRegionError):
            raise InvalidInput("not a region of any AWS partition", field="--region", received=self.region,
                               allowed="an AWS region such as us-east-1") from None
        self._config = Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S,
                              retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
                              user_agent_extra="hardstack-audit")
        self._clients: dict[str, Any] = {
            # the first call says at once whether the endpoint answers and the credentials are accepted
            "sts": self._session.client("sts", endpoint_url=endpoint_url, config=self._config.merge(
                Config(retries={"mode": "standard", "max_attempts": 1}))),
        }
        self.calls: set[tuple[str, str]] = set()
        self.principal: str | None = None
        who = self.call("sts", "GetCallerIdentity", "the caller's identity")
        assert who is not None
        self.account: str = who["Account"]
        self.principal = who.get("Arn")

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (f"arn:{self.partition}:{service}:{self.region if region else ''}:"
                f"{self.account if account else ''}:{resource}")

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(service, endpoint_url=self.endpoint_url,
                                                          config=self._config)
        return self._clients[service]

    def call(self, service: str, operation: str, resource: str, *, absent: tuple[str, ...] = (),
             **params: Any) -> dict[str, Any] | None:
        """`operation` of `service` on `resource` (named in errors); None when AWS answers with one of the error
        codes in `absent` (the setting is not configured), every other failure raises NotVerified."""
        from botocore import xform_name

        method = getattr(self.client(self._known(service, operation)), xform_name(operation))
        try:
            response = method(**params)
        except Exception as e:  # noqa: BLE001 — every failure is translated, none passes silently
            if _code(e) in absent:
                return None
            raise self._translate(e, service, operation, resource) from e
        response.pop("ResponseMetadata", None)
        return response

    def pages(self, service: str, operation: str, resource: str, items: str, *,
              marker: tuple[str, str] | None = None, **params: Any) -> Iterator[Any]:
        """Every item under `items` of every page. botocore's paginator where the API has one; otherwise `marker`
        names the response field holding the next page's token and the request parameter it goes back in."""
        from botocore import xform_name

        client = self.client(self._known(service, operation))
        try:
            if marker is None:
                for page in client.get_paginator(xform_name(operation)).paginate(**params):
                    yield from page.get(items) or []
                return
            token_out, token_in = marker
            method = getattr(client, xform_name(operation))
            request = dict(params)
            while True:
                page = method(**request)
                yield from page.get(items) or []
                token = page.get(token_out)
                if not token:
                    return
                request = {**params, token_in: token}
        except NotVerified:
            raise
        except Exception as e:  # noqa: BLE001
            raise self._translate(e, service, operation, resource) from e

    def _known(self, service: str, operation: str) -> str:
        if (service, operation) not in OPERATIONS:  # a programming error: the permission list would be incomplete
            raise AssertionError(f"{service}:{operation} is not in hardstack.policies.live.permissions.OPERATIONS")
        self.calls.add((service, operation))
        return service

    def _translate(self, error: Exception, service: str, operation: str, resource: str) -> NotVerified:
        from botocore.exceptions import (
            ClientError,
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
            PartialCredentialsError,
            ReadTimeoutError,
        )

        action = iam_action(service, operation)
        if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
            return CredentialsMissing()
        if isinstance(error, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)):
            endpoint = self.endpoint_url or getattr(self.client(service).meta, "endpoint_url", service)
            return Unreachable(endpoint, f"{type(error).__name__} calling {action}")
        if isinstance(error, ClientError):
            code, message = _code(error), _message(error)
            if code in DENIED:
                return AccessDenied(action, resource, self.principal)
            if code in REJECTED:
                return CredentialsRejected(code, message)
            return ApiFailed(action, resource, code, message)
        return ApiFailed(action, resource, type(error).__name__, str(error))


def _code(error: Exception) -> str:
    """The AWS error code of a ClientError ('' for other errors). Some endpoints (moto among them) answer a
    JSON-protocol service's error with an XML body, which botocore reports as code '403' with the XML as message:
    the code is then read from that XML."""
    info = getattr(error, "response", {}).get("Error", {}) if hasattr(error, "response") else {}
    code = str(info.get("Code", ""))
    if code.isdigit():
        found = _WRAPPED_CODE.search(str(info.get("Message", "")))
        if found:
            return found.group(1)
    return code


def _message(error: Exception) -> str:
    info = getattr(error, "response", {}).get("Error", {})
    message = str(info.get("Message", ""))
    found = _WRAPPED_MESSAGE.search(message)
    return (found.group(1) if found else message).strip()
