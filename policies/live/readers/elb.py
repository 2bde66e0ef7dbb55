"""Elastic Load Balancing (v2): the region's load balancers and their listeners, with tags; when a verdict needs them
a load balancer's attributes and (application load balancers) the WAF web ACL associated with it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..resource import LiveResource, tag_dict

if TYPE_CHECKING:
    from ..session import LiveSession
    from . import LiveAccount

TAGS_PER_CALL = 20
"""DescribeTags takes at most 20 ARNs."""
APPLICATION = "application"
"""Only application load balancers can have a WAF web ACL."""


def load_balancers(account: "LiveAccount") -> list[LiveResource]:
    s = account.session
    found = [
        LiveResource("load-balancer", lb["LoadBalancerArn"], lb["LoadBalancerName"], facts={
            "DescribeLoadBalancers.Scheme": lb.get("Scheme"), "DescribeLoadBalancers.Type": lb.get("Type"),
            "DescribeLoadBalancers.LoadBalancerName": lb["LoadBalancerName"]}, more=_attributes(account))
        for lb in s.pages("elbv2", "DescribeLoadBalancers", "the load balancers", "LoadBalancers")
    ]
    _tag(s, found)
    return found


def listeners(account: "LiveAccount") -> list[LiveResource]:
    s = account.session
    found = []
    for lb in account.resources("load-balancer"):
        for listener in s.pages("elbv2", "DescribeListeners", lb.arn, "Listeners", LoadBalancerArn=lb.arn):
            facts = {f"DescribeListeners.{k}": listener.get(k) for k in
                     ("LoadBalancerArn", "Port", "Protocol", "SslPolicy", "DefaultActions")}
            found.append(LiveResource("listener", listener["ListenerArn"], f"{lb.name}-{listener['Port']}",
                                      facts=facts))
    _tag(s, found)
    return found


def _tag(s: "LiveSession", resources: list[LiveResource]) -> None:
    by_arn = {r.arn: r for r in resources}
    arns = list(by_arn)
    for start in range(0, len(arns), TAGS_PER_CALL):
        chunk = arns[start:start + TAGS_PER_CALL]
        answer = s.call("elbv2", "DescribeTags", ", ".join(chunk), ResourceArns=chunk) or {}
        for described in answer.get("TagDescriptions") or []:
            if described.get("ResourceArn") in by_arn:
                by_arn[described["ResourceArn"]].tags = tag_dict(described.get("Tags"))


def _attributes(account: "LiveAccount"):  # type: ignore[no-untyped-def]
    def read(lb: LiveResource) -> dict[str, Any]:
        s = account.session
        answer = s.call("elbv2", "DescribeLoadBalancerAttributes", lb.arn, LoadBalancerArn=lb.arn) or {}
        out: dict[str, Any] = {f"DescribeLoadBalancerAttributes.{a['Key']}": a.get("Value")
                               for a in answer.get("Attributes") or []}
        acl = None
        if lb.facts["DescribeLoadBalancers.Type"] == APPLICATION:
            association = s.call("wafv2", "GetWebACLForResource", lb.arn, ResourceArn=lb.arn) or {}
            acl = (association.get("WebACL") or {}).get("ARN")
        out["GetWebACLForResource.WebACL.ARN"] = acl
        return out

    return read
