"""Why an audit could not read what it needs. Every one of them means *not verified* (exit 3): an audit that could
not read a setting never reports it as passed, so it stops and says what to fix instead of reporting at all."""

from __future__ import annotations

from hardstack.errors import GateError


class NotVerified(GateError):
    """The audit could not read the account; nothing is reported as passed."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"not verified: {problem}")


class AccessDenied(NotVerified):
    """The identity running the audit may not make one of its reads."""

    def __init__(self, action: str, resource: str, principal: str | None) -> None:
        self.action, self.resource, self.principal = action, resource, principal
        who = principal or "the identity running the audit"
        super().__init__(
            f"access denied: {action} on {resource}; grant {who} {action} on it "
            "(`hardstack audit --help` lists every read-only action the audit makes)")


class CredentialsMissing(NotVerified):
    def __init__(self) -> None:
        super().__init__("no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                         "or pass --profile")


class CredentialsRejected(NotVerified):
    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(f"AWS rejected the credentials ({code}): {message}")


class Unreachable(NotVerified):
    def __init__(self, endpoint: str, reason: str) -> None:
        self.endpoint = endpoint
        super().__init__(f"cannot reach {endpoint}: {reason}")


class ApiFailed(NotVerified):
    """An AWS API error that is neither a denial nor a credentials problem (throttling past retries, a service
    error, a service not offered in the region)."""

    def __init__(self, action: str, resource: str, code: str, message: str) -> None:
        self.action, self.resource, self.code = action, resource, code
        super().__init__(f"{action} on {resource} failed: {code}: {message}")
