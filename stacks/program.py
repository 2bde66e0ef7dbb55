"""A Blueprint assembled into hardstack components: the program `pulumi up` runs and the gate judges."""

from __future__ import annotations

from dataclasses import dataclass, field

from hardstack.blueprints.base import Classification
from hardstack.blueprints.blueprint import Blueprint
from hardstack.blueprints.data import ACCESS_LOG_BUCKET


@dataclass
class Environment:
    """Handles on what the program built, for users who add their own resources next to it."""

    keys: dict[str, object] = field(default_factory=dict)
    buckets: dict[str, object] = field(default_factory=dict)
    network: object | None = None


def build(bp: Blueprint) -> Environment:
    """Create every component the blueprint declares (must run inside a Pulumi program)."""
    from hardstack.modules.kms import CustomerManagedKey
    from hardstack.modules.network import SegmentedVpc
    from hardstack.modules.storage import AccessLogBucket, EncryptedBucket

    env = Environment()
    tags = dict(bp.tags)
    logs_key = CustomerManagedKey(
        "logs",
        bp.kms,
        description=f"{bp.name}: flow logs, server access logs and other log data",
        via_services=("logs", "s3"),
        service_principals=("logs", "s3-access-logging"),
        tags=tags,
    )
    env.keys["logs"] = logs_key
    env.network = SegmentedVpc("network", bp.network, logs_key, classification=bp.classification, tags=tags)

    if bp.data.buckets:
        access_logs = AccessLogBucket(ACCESS_LOG_BUCKET, logs_key, retention_days=bp.data.access_log_days, tags=tags)
        env.buckets[ACCESS_LOG_BUCKET] = access_logs
        classes = sorted(
            {b.effective_classification(bp.classification) for b in bp.data.buckets}, key=lambda c: c.rank
        )
        for cls in classes:
            env.keys[f"data-{cls.value}"] = CustomerManagedKey(
                f"data-{cls.value}",
                bp.kms,
                description=f"{bp.name}: {cls.value} data at rest",
                via_services=("s3",),
                tags=tags,
            )
        for spec in bp.data.buckets:
            cls: Classification = spec.effective_classification(bp.classification)
            env.buckets[spec.name] = EncryptedBucket(
                spec.name,
                spec,
                env.keys[f"data-{cls.value}"],  # type: ignore[arg-type]
                classification=bp.classification,
                access_logs=access_logs,
                tags=tags,
            )
    return env
