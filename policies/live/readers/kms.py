"""KMS: the account's customer managed keys (AWS managed keys rotate on AWS's schedule and are not judged), their
tags and aliases; rotation and the key policy are read when a verdict needs them."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from ..resource import LiveResource, tag_dict

if TYPE_CHECKING:
    from . import LiveAccount

ROTATABLE_SPEC = "SYMMETRIC_DEFAULT"
ROTATABLE_ORIGIN = "AWS_KMS"
"""KMS rotates only symmetric encryption keys whose material it generated: asymmetric, HMAC, imported and custom
key store keys cannot rotate automatically, so rotation is not asked of them."""
ROTATABLE_STATE = "Enabled"
"""A disabled key or one pending deletion encrypts nothing; its rotation is not judged."""


def keys(account: "LiveAccount") -> list[LiveResource]:
    s = account.session
    aliases: dict[str, list[str]] = defaultdict(list)
    for alias in s.pages("kms", "ListAliases", "the KMS aliases", "Aliases"):
        if alias.get("TargetKeyId"):
            aliases[alias["TargetKeyId"]].append(alias["AliasName"])
    found = []
    for key in s.pages("kms", "ListKeys", "the KMS keys", "Keys"):
        arn = key["KeyArn"]
        meta = (s.call("kms", "DescribeKey", arn, KeyId=key["KeyId"]) or {})["KeyMetadata"]
        if meta.get("KeyManager") != "CUSTOMER":
            continue
        tags = tag_dict(list(s.pages("kms", "ListResourceTags", arn, "Tags", KeyId=key["KeyId"])), "TagKey", "TagValue")
        facts = {f"DescribeKey.{k}": meta.get(k) for k in
                 ("KeyState", "Enabled", "KeySpec", "KeyUsage", "Origin", "MultiRegion", "Description")}
        facts["ListAliases.AliasName"] = sorted(aliases.get(key["KeyId"], []))
        found.append(LiveResource("kms-key", arn, key["KeyId"], tags, facts, more=_settings(account)))
    return found


def rotatable(key: LiveResource) -> bool:
    return (key.facts["DescribeKey.KeySpec"] == ROTATABLE_SPEC and key.facts["DescribeKey.Origin"] == ROTATABLE_ORIGIN
            and key.facts["DescribeKey.KeyState"] == ROTATABLE_STATE)


def _settings(account: "LiveAccount"):  # type: ignore[no-untyped-def]
    def read(key: LiveResource) -> dict[str, Any]:
        s = account.session
        policy = (s.call("kms", "GetKeyPolicy", key.arn, KeyId=key.name, PolicyName="default") or {}).get("Policy")
        out = {"GetKeyPolicy.Policy": json.loads(policy) if policy else None,
               "GetKeyRotationStatus.KeyRotationEnabled": None}
        if rotatable(key):
            status = s.call("kms", "GetKeyRotationStatus", key.arn, KeyId=key.name) or {}
            out["GetKeyRotationStatus.KeyRotationEnabled"] = status.get("KeyRotationEnabled")
        return out

    return read
