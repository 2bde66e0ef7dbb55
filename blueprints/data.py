"""Data sets: encrypted buckets with their classification and purpose."""

from __future__ import annotations

import enum
from typing import Literal

from pydantic import Field, model_validator

from .base import Classification, Name, Spec


ACCESS_LOG_BUCKET = "access-logs"
"""The name of the dedicated server access log bucket every stack with buckets gets."""


class Purpose(str, enum.Enum):
    """What a bucket holds; it decides defaults such as object lock."""

    training_data = "training-data"
    model_artifacts = "model-artifacts"
    feature_store = "feature-store"
    evaluation_data = "evaluation-data"
    inference_logs = "inference-logs"
    audit_logs = "audit-logs"
    general = "general"


class ObjectLockSpec(Spec):
    """Write-once retention for a bucket's objects."""

    enabled: bool = True
    """Object lock on. Turning it off where it is required is a gate violation that needs an exception."""

    mode: Literal["COMPLIANCE", "GOVERNANCE"] = "COMPLIANCE"
    """COMPLIANCE: nobody, the account root included, can shorten retention or delete a locked version."""

    days: int = Field(365, ge=1, le=36500)
    """Default retention of every new object version, in days."""


class BucketSpec(Spec):
    """A data set kept in its own encrypted, versioned, private bucket."""

    name: Name
    """Logical name; the bucket's physical name is derived from it."""

    purpose: Purpose
    """What the bucket holds (training-data, model-artifacts, feature-store, evaluation-data, inference-logs,
    audit-logs, general)."""

    classification: Classification | None = None
    """Data class of this bucket. Unset: the blueprint's classification."""

    object_lock: ObjectLockSpec | None = None
    """Unset: COMPLIANCE-mode retention of 365 days for audit-logs buckets and for regulated data, off otherwise."""

    noncurrent_version_days: int = Field(90, ge=1, le=36500)
    """Overwritten and deleted versions are kept this many days, then expire."""

    expiration_days: int | None = Field(None, ge=1, le=36500)
    """Current objects expire after this many days. Unset: they never expire."""

    @model_validator(mode="after")
    def _lock_outlives_versions(self) -> "BucketSpec":
        if self.expiration_days and self.object_lock and self.object_lock.enabled:
            if self.expiration_days < self.object_lock.days:
                raise ValueError(
                    f"expiration_days ({self.expiration_days}) is shorter than the object lock retention "
                    f"({self.object_lock.days} days); allowed: expiration_days >= object_lock.days"
                )
        return self

    def effective_classification(self, default: Classification) -> Classification:
        return self.classification or default

    def effective_object_lock(self, default: Classification) -> ObjectLockSpec | None:
        """The object lock the bucket gets: the declared one, else the secure default for its purpose and class."""
        if self.object_lock is not None:
            return self.object_lock if self.object_lock.enabled else None
        if self.purpose is Purpose.audit_logs or self.effective_classification(default) is Classification.regulated:
            return ObjectLockSpec()
        return None


class DataSpec(Spec):
    """The stack's data sets."""

    buckets: list[BucketSpec] = []
    """Buckets to create; names are unique. Server access logs of all of them go to one dedicated log bucket."""

    access_log_days: int = Field(365, ge=365, le=36500)
    """Server access logs are kept (object-locked) this many days."""

    @model_validator(mode="after")
    def _unique_names(self) -> "DataSpec":
        seen: set[str] = {ACCESS_LOG_BUCKET}
        for b in self.buckets:
            if b.name == ACCESS_LOG_BUCKET:
                raise ValueError(f"bucket name {b.name!r} is reserved for the server access log bucket")
            if b.name in seen:
                raise ValueError(f"duplicate bucket name {b.name!r}; allowed: each name once")
            seen.add(b.name)
        return self
