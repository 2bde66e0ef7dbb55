"""HS_OPS_001: every bucket of training data or models has its object reads and writes recorded by a logging trail
(evaluated by the gate across the plan: a trail may select a bucket by reference, by name or not at all, for all
buckets, and may record reads only; checkov's graph can follow the reference but not judge the selector)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Iterator

from hardstack.policies.checks.support import watched_buckets
from hardstack.policies.meta import CheckMeta

if TYPE_CHECKING:
    from hardstack.policies.native import PlanResource

    Fields = dict[str, list[tuple[int, dict[str, Any]]]]

META = CheckMeta(
    id="HS_OPS_001",
    title="The trail records S3 data events of training-data and model buckets",
    severity="HIGH",
    area="operations",
    rationale="Management events record who changed a bucket's settings, not who read a training set or replaced a "
    "model: those are S3 data events, which no trail records unless it selects them. Without them a poisoned "
    "training set or a swapped model file cannot be traced to whoever wrote it, nor a copied training set to "
    "whoever read it.",
    remediation="Record every object read and write of the bucket in a logging trail: an advanced event selector "
    "with eventCategory Data, resources.type AWS::S3::Object and resources.ARN starting with the bucket's ARN and "
    "`/`, without readOnly, eventName or other narrowing (hardstack's AuditTrail does for the purposes in "
    "`audit.data_events`, training data and models by default).",
    owasp_llm=("LLM04: Data and Model Poisoning", "LLM02: Sensitive Information Disclosure"),
    mitre_atlas=("AML.T0020: Poison Training Data", "AML.T0035: ML Artifact Collection",
                 "AML.T0025: Exfiltration via Cyber Means"),
    resources=("aws_s3_bucket",),
)

S3_OBJECT = "AWS::S3::Object"
BOTH = frozenset({"read", "write"})
SELECTING = {"eventCategory", "resources.type", "resources.ARN", "readOnly"}
"""Advanced selector fields that do not narrow which object events of a bucket are recorded (beyond read/write)."""
_WHOLE_BUCKET = re.compile(r"^arn:[^:]+:s3:::([^/]+)/?$")
_EVERY_BUCKET = re.compile(r"^arn:[^:]+:s3(:::)?$")
_REFERENCE = re.compile(r"^aws_s3_bucket\.[^.]+\.(arn|bucket|id)$")
_MODES = {"All": BOTH, "ReadOnly": frozenset({"read"}), "WriteOnly": frozenset({"write"})}


def evaluate_plan(resources: dict[str, PlanResource]) -> Iterator[tuple[str, str, str | None]]:
    buckets = watched_buckets(resources)
    if not buckets:
        return
    recorded: dict[str, set[str]] = {a: set() for a in buckets}
    for trail in (r for r in resources.values() if r.type == "aws_cloudtrail"):
        if trail.get("enable_logging") is False:
            continue
        for address, modes in _recorded_by(trail, buckets):
            recorded[address] |= modes
    for address in sorted(buckets):
        missing = sorted(BOTH - recorded[address])
        if missing:
            yield address, "failed", f"no logging trail records its object {' or '.join(f'{m}s' for m in missing)}"
        else:
            yield address, "passed", None


def _recorded_by(trail: PlanResource, buckets: dict[str, PlanResource]) -> Iterator[tuple[str, frozenset[str]]]:
    """(bucket, {"read", "write"} or part of it) for every watched bucket whose object events the trail selects."""
    for i, selector in enumerate(trail.get("advanced_event_selector") or []):
        fields: Fields = {}
        for j, field in enumerate(selector.get("field_selector") or []):
            fields.setdefault(field.get("field"), []).append((j, field))
        if not (_only(fields, "eventCategory", "Data") and _only(fields, "resources.type", S3_OBJECT)):
            continue
        if set(fields) - SELECTING:
            continue  # eventName, eventSource...: some object events only
        modes = set(BOTH)
        for _, field in fields.get("readOnly", []):
            modes &= _read_only_modes(field)
        targets = set(buckets)
        for j, field in fields.get("resources.ARN", []):
            path = ("advanced_event_selector", i, "field_selector", j)
            if set(field) - {"field", "starts_with", "not_starts_with", "not_equals"}:
                targets = set()  # equals, ends_with...: some objects only
            if "starts_with" in field:
                targets &= _whole_buckets(trail, (*path, "starts_with"), field["starts_with"], buckets)
            for excluding in ("not_starts_with", "not_equals"):
                if excluding in field:  # any exclusion touching a bucket leaves some of its objects unrecorded
                    targets -= _named(trail, (*path, excluding), field[excluding], buckets)
        for address in targets:
            yield address, frozenset(modes)
    for i, selector in enumerate(trail.get("event_selector") or []):
        modes = _MODES.get(selector.get("read_write_type") or "All", frozenset())
        for j, resource in enumerate(selector.get("data_resource") or []):
            if resource.get("type") != S3_OBJECT:
                continue
            path = ("event_selector", i, "data_resource", j, "values")
            for address in _whole_buckets(trail, path, resource.get("values") or [], buckets):
                yield address, modes


def _only(fields: Fields, name: str, wanted: str) -> bool:
    found = fields.get(name, [])
    return bool(found) and all(f.get("equals") == [wanted] and set(f) <= {"field", "equals"} for _, f in found)


def _read_only_modes(field: dict[str, Any]) -> set[str]:
    """readOnly equals ["true"] records reads, ["false"] writes; not_equals the other way round."""
    modes: set[str] = set()
    for value in field.get("equals") or []:
        modes.add("read" if str(value).lower() == "true" else "write")
    for value in field.get("not_equals") or []:
        modes.add("write" if str(value).lower() == "true" else "read")
    return modes


def _whole_buckets(trail: PlanResource, path: tuple[Any, ...], values: list[Any],
                   buckets: dict[str, PlanResource]) -> set[str]:
    """The buckets all of whose objects these prefixes select: by reference (when every prefix is a whole bucket's,
    the bucket a reference names is selected whole), by literal bucket name, or every bucket (`arn:aws:s3`)."""
    values = [str(v) for v in values]
    if any(_EVERY_BUCKET.match(v) for v in values):
        return set(buckets)
    found = {a for a, b in buckets.items() for v in values
             if (m := _WHOLE_BUCKET.match(v)) and m.group(1) == b.get("bucket")}
    found |= {v.rsplit(".", 1)[0] for v in values if _REFERENCE.match(v)}
    if all(_WHOLE_BUCKET.match(v) or _REFERENCE.match(v) for v in values):
        found |= trail.references(*path)
    return found & set(buckets)


def _named(trail: PlanResource, path: tuple[Any, ...], values: list[Any], buckets: dict[str, PlanResource]) -> set[str]:
    """Every bucket a value names, by reference or by its literal name, whatever part of it the value selects."""
    values = [str(v) for v in values]
    names = {b.get("bucket"): a for a, b in buckets.items() if b.get("bucket")}
    found = {a for v in values for name, a in names.items() if re.match(rf"^arn:[^:]+:s3:::{re.escape(name)}(/|$)", v)}
    found |= {v.rsplit(".", 1)[0] for v in values if _REFERENCE.match(v)}
    return (found | trail.references(*path)) & set(buckets)


# --- fixtures ------------------------------------------------------------------------------------------------------


def _stack(selectors: Any = None, legacy: Any = None, logging: bool = True, purpose: str = "training-data") -> None:
    """A bucket tagged with `purpose` and, when selectors are given, a trail whose selectors are built from it."""
    import pulumi_aws as aws

    bucket = aws.s3.Bucket("data", tags={"hardstack:purpose": purpose})
    if selectors is None and legacy is None:
        return
    kwargs: dict[str, Any] = {}
    if selectors is not None:
        kwargs["advanced_event_selectors"] = selectors(bucket)
    if legacy is not None:
        kwargs["event_selectors"] = legacy(bucket)
    aws.cloudtrail.Trail("trail", s3_bucket_name="audit-logs", is_multi_region_trail=True,
                         enable_log_file_validation=True, enable_logging=logging, **kwargs)


def _data(bucket, *extra, starts=lambda arn: f"{arn}/"):  # type: ignore[no-untyped-def]
    return [{"name": "data", "field_selectors": [
        {"field": "eventCategory", "equals": ["Data"]},
        {"field": "resources.type", "equals": [S3_OBJECT]},
        {"field": "resources.ARN", "starts_withs": [bucket.arn.apply(starts)]},
        *extra]}]


def passing_bucket_arn_selected() -> None:
    _stack(lambda b: _data(b))


def passing_every_bucket_selected() -> None:
    _stack(lambda b: [{"name": "all", "field_selectors": [{"field": "eventCategory", "equals": ["Data"]},
                                                          {"field": "resources.type", "equals": [S3_OBJECT]}]}])


def passing_legacy_selector_read_and_write() -> None:
    _stack(legacy=lambda b: [{"read_write_type": "All", "include_management_events": True,
                              "data_resources": [{"type": S3_OBJECT, "values": [b.arn.apply(lambda a: f"{a}/")]}]}])


def failing_no_trail() -> None:
    _stack()


def failing_reads_only() -> None:
    _stack(lambda b: _data(b, {"field": "readOnly", "equals": ["true"]}))


def failing_one_prefix_only() -> None:
    _stack(lambda b: _data(b, starts=lambda arn: f"{arn}/manifests/"))


def failing_bucket_excluded_from_every_bucket() -> None:
    _stack(lambda b: [{"name": "all-but", "field_selectors": [
        {"field": "eventCategory", "equals": ["Data"]}, {"field": "resources.type", "equals": [S3_OBJECT]},
        {"field": "resources.ARN", "not_starts_withs": [b.arn.apply(lambda arn: f"{arn}/")]}]}])


def failing_trail_not_logging() -> None:
    _stack(lambda b: _data(b), logging=False)


def failing_legacy_selector_writes_only() -> None:
    _stack(legacy=lambda b: [{"read_write_type": "WriteOnly", "include_management_events": True,
                              "data_resources": [{"type": S3_OBJECT, "values": [b.arn.apply(lambda a: f"{a}/")]}]}])
