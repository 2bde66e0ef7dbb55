"""Customer-managed keys: one per data classification in use, plus one for logs."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from .base import Spec

IamPrincipalArn = Annotated[str, StringConstraints(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:(root|role/[\w+=,.@/-]+|user/[\w+=,.@/-]+)$")]


class KmsSpec(Spec):
    """Settings shared by every customer-managed key the stack creates."""

    rotation_period_days: int = Field(365, ge=90, le=365)
    """Automatic rotation is always on; the key material rotates every this many days (90-365)."""

    administrators: list[IamPrincipalArn] = []
    """Principals allowed to administer (never use) the keys. Empty: the account root, which delegates
    administration to IAM policies; no principal gets encrypt/decrypt from the administrator statement."""
