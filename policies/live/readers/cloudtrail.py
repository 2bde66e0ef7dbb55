"""CloudTrail: every trail that records this region (its own and multi-region trails of other home regions), with
the tags of the trails whose home is this region; when a verdict needs them whether the trail is logging and
which events it records."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..resource import LiveResource, tag_dict

if TYPE_CHECKING:
    from . import LiveAccount

TRAIL_FIELDS = ("HomeRegion", "IsMultiRegionTrail", "LogFileValidationEnabled", "IncludeGlobalServiceEvents",
                "IsOrganizationTrail", "KmsKeyId", "S3BucketName", "CloudWatchLogsLogGroupArn")
TAGS_PER_CALL = 20
"""ListTags takes at most 20 trail ARNs, all of the region the call is made in."""


def trails(account: "LiveAccount") -> list[LiveResource]:
    s = account.session
    answer = s.call("cloudtrail", "DescribeTrails", "the CloudTrail trails", includeShadowTrails=True) or {}
    found = [LiveResource("trail", t["TrailARN"], t["Name"], more=_status(account),
                          facts={f"DescribeTrails.{k}": t.get(k) for k in TRAIL_FIELDS})
             for t in answer.get("trailList") or []]
    home = [t for t in found if t.facts["DescribeTrails.HomeRegion"] == s.region]
    by_arn = {t.arn: t for t in home}
    arns = list(by_arn)
    for start in range(0, len(arns), TAGS_PER_CALL):
        chunk = arns[start:start + TAGS_PER_CALL]
        for tagged in s.pages("cloudtrail", "ListTags", ", ".join(chunk), "ResourceTagList", ResourceIdList=chunk):
            if tagged.get("ResourceId") in by_arn:
                by_arn[tagged["ResourceId"]].tags = tag_dict(tagged.get("TagsList"))
    return found


def _status(account: "LiveAccount"):  # type: ignore[no-untyped-def]
    def read(trail: LiveResource) -> dict[str, Any]:
        s = account.session
        status = s.call("cloudtrail", "GetTrailStatus", trail.arn, Name=trail.arn) or {}
        selectors = s.call("cloudtrail", "GetEventSelectors", trail.arn, TrailName=trail.arn) or {}
        return {"GetTrailStatus.IsLogging": status.get("IsLogging"),
                "GetEventSelectors.Management": records_management(selectors),
                "GetEventSelectors.S3DataPrefixes": s3_data_prefixes(selectors)}

    return read


def _fields(selector: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    return {f["Field"]: f for f in selector.get("FieldSelectors") or []}


def records_management(selectors: dict[str, Any]) -> bool:
    """Management events, read and write, are recorded: by an advanced selector of that category recording both, or a
    basic selector including them for reads and writes (a trail without selectors records them too)."""
    advanced = selectors.get("AdvancedEventSelectors") or []
    basic = selectors.get("EventSelectors") or []
    if not advanced and not basic:
        return True
    for selector in advanced:
        fields = _fields(selector)
        if fields.get("eventCategory", {}).get("Equals") == ["Management"] and "readOnly" not in fields:
            return True
    return any(s.get("IncludeManagementEvents", True) and s.get("ReadWriteType", "All") == "All" for s in basic)


def s3_data_prefixes(selectors: dict[str, Any]) -> list[str]:
    """The S3 ARN prefixes whose object reads and writes are recorded as data events."""
    out = []
    for selector in selectors.get("AdvancedEventSelectors") or []:
        fields = _fields(selector)
        if fields.get("eventCategory", {}).get("Equals") == ["Data"] and \
                fields.get("resources.type", {}).get("Equals") == ["AWS::S3::Object"] and "readOnly" not in fields:
            out += (fields.get("resources.ARN") or {}).get("StartsWith") or []
    for selector in selectors.get("EventSelectors") or []:
        if selector.get("ReadWriteType", "All") == "All":
            out += [v for d in selector.get("DataResources") or [] if d.get("Type") == "AWS::S3::Object"
                    for v in d.get("Values") or []]
    return sorted(out)
