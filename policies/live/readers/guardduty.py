"""GuardDuty: the region's detectors (at most one per account and region), each with its status, finding
frequency, protections (features, and their additional configurations as `FEATURE/CONFIGURATION`) and tags."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..resource import LiveResource, tag_dict

if TYPE_CHECKING:
    from . import LiveAccount


def detectors(account: "LiveAccount") -> list[LiveResource]:
    s = account.session
    found = []
    for detector_id in s.pages("guardduty", "ListDetectors", "the GuardDuty detectors", "DetectorIds"):
        arn = s.arn("guardduty", f"detector/{detector_id}")
        detector = s.call("guardduty", "GetDetector", arn, DetectorId=detector_id) or {}
        features = {}
        for feature in detector.get("Features") or []:
            features[feature["Name"]] = feature.get("Status")
            for extra in feature.get("AdditionalConfiguration") or []:
                features[f"{feature['Name']}/{extra['Name']}"] = extra.get("Status")
        facts = {"GetDetector.Status": detector.get("Status"),
                 "GetDetector.FindingPublishingFrequency": detector.get("FindingPublishingFrequency"),
                 "GetDetector.Features": features}
        found.append(LiveResource("guardduty-detector", arn, detector_id, tag_dict(detector.get("Tags")), facts))
    return found
