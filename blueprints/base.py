"""Shared building blocks of every spec: strict models, names, data classification."""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints


def duplicates(items: list[str]) -> list[str]:
    """The items listed more than once, sorted."""
    return sorted({x for x in items if items.count(x) > 1})


class Spec(BaseModel):
    """A blueprint section: unknown keys are refused and each field documents its secure default."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


Name = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$"),
]
"""Lower-case DNS label of 2-32 characters: safe as an AWS, Kubernetes and Pulumi name."""


class Classification(str, enum.Enum):
    """How sensitive data is; a higher class turns on stricter controls."""

    public = "public"
    internal = "internal"
    confidential = "confidential"
    regulated = "regulated"

    @property
    def rank(self) -> int:
        return list(Classification).index(self)

    def at_least(self, other: "Classification") -> bool:
        return self.rank >= other.rank
