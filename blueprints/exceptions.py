"""Exceptions to the gate, declared as data: which check, on which resource, why, who owns it, until when."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator

from .base import Spec

CheckId = Annotated[str, StringConstraints(pattern=r"^(CKV2?_[A-Z0-9]+_\d+|HS_[A-Z]+_\d{3})$")]

MIN_REASON_LENGTH = 20


class ExceptionSpec(Spec):
    """A failed check accepted on purpose. It shows as skipped, with its reason, owner and expiry, in every
    report; once expired it fails the gate again. Some checks cannot be excepted at all."""

    check: CheckId
    """The check's ID, e.g. CKV_AWS_144 or HS_DATA_001."""

    resource: str = Field(min_length=1)
    """The resource: its Pulumi name, URN or checkov address, or a glob over Pulumi names (`*-bucket`).
    It must match at least one resource of the stack."""

    reason: str
    """Why the check does not apply or the risk is accepted (at least 20 characters)."""

    owner: str = Field(min_length=2, max_length=200)
    """Who answers for the exception (a person or team, e.g. an e-mail address)."""

    expires: dt.date
    """The last day the exception holds (YYYY-MM-DD); afterwards the check fails the gate again."""

    @field_validator("reason")
    @classmethod
    def _reason_says_something(cls, v: str) -> str:
        if len(" ".join(v.split())) < MIN_REASON_LENGTH:
            raise ValueError(f"a reason must say something: at least {MIN_REASON_LENGTH} characters")
        return v


class ExceptionsFile(Spec):
    """Exceptions for a Pulumi project directory (`hardstack check DIR --exceptions FILE`)."""

    exceptions: list[ExceptionSpec] = []
    """Failed checks accepted on purpose."""
