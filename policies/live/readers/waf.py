"""WAF (v2, regional): the region's web ACLs with their tags; when a verdict needs them their default action and
the names of their rules. (Which web ACL protects a load balancer is read with the load balancer.)"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..resource import LiveResource, tag_dict

if TYPE_CHECKING:
    from . import LiveAccount

SCOPE = "REGIONAL"
"""Web ACLs of load balancers are regional (CloudFront's are global and not read)."""
PAGE = 100
"""WAF's largest page."""


def web_acls(account: "LiveAccount") -> list[LiveResource]:
    s = account.session
    found = []
    for acl in s.pages("wafv2", "ListWebACLs", "the WAF web ACLs", "WebACLs", marker=("NextMarker", "NextMarker"),
                       Scope=SCOPE, Limit=PAGE):
        # a resource has at most 50 tags: one page of PAGE holds them all
        answer = s.call("wafv2", "ListTagsForResource", acl["ARN"], ResourceARN=acl["ARN"], Limit=PAGE) or {}
        tags = (answer.get("TagInfoForResource") or {}).get("TagList") or []
        found.append(LiveResource("web-acl", acl["ARN"], acl["Name"], tag_dict(tags),
                                  {"ListWebACLs.Id": acl["Id"]}, more=_acl(account)))
    return found


def _acl(account: "LiveAccount"):  # type: ignore[no-untyped-def]
    def read(acl: LiveResource) -> dict[str, Any]:
        answer = account.session.call("wafv2", "GetWebACL", acl.arn, Name=acl.name, Scope=SCOPE,
                                      Id=acl.facts["ListWebACLs.Id"]) or {}
        web_acl = answer.get("WebACL") or {}
        default = sorted((web_acl.get("DefaultAction") or {}).keys())
        return {"GetWebACL.DefaultAction": default[0].lower() if default else None,
                "GetWebACL.Rules.Name": sorted(r["Name"] for r in web_acl.get("Rules") or [])}

    return read
