"""EC2: the region's VPCs and flow logs (each VPC also carries the flow logs attached to it), and when a verdict
needs them a VPC's DNS attributes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..resource import LiveResource, tag_dict

if TYPE_CHECKING:
    from . import LiveAccount

FLOW_LOG_FIELDS = ("ResourceId", "TrafficType", "LogDestinationType", "LogDestination", "FlowLogStatus",
                   "MaxAggregationInterval")


def flow_logs(account: "LiveAccount") -> list[LiveResource]:
    s = account.session
    return [
        LiveResource("flow-log", s.arn("ec2", f"vpc-flow-log/{f['FlowLogId']}"), f["FlowLogId"],
                     tag_dict(f.get("Tags")), {f"DescribeFlowLogs.{k}": f.get(k) for k in FLOW_LOG_FIELDS})
        for f in s.pages("ec2", "DescribeFlowLogs", "the VPC flow logs", "FlowLogs")
    ]


def vpcs(account: "LiveAccount") -> list[LiveResource]:
    s = account.session
    logs = account.resources("flow-log")
    found = []
    for vpc in s.pages("ec2", "DescribeVpcs", "the VPCs", "Vpcs"):
        attached = [f.facts for f in logs if f.facts["DescribeFlowLogs.ResourceId"] == vpc["VpcId"]]
        facts = {"DescribeVpcs.CidrBlock": vpc.get("CidrBlock"), "DescribeVpcs.IsDefault": vpc.get("IsDefault"),
                 "DescribeFlowLogs": attached}
        found.append(LiveResource("vpc", s.arn("ec2", f"vpc/{vpc['VpcId']}"), vpc["VpcId"], tag_dict(vpc.get("Tags")),
                                  facts, more=_dns(account)))
    return found


def _dns(account: "LiveAccount"):  # type: ignore[no-untyped-def]
    def read(vpc: LiveResource) -> dict[str, Any]:
        out = {}
        for attribute, key in (("enableDnsSupport", "EnableDnsSupport"), ("enableDnsHostnames", "EnableDnsHostnames")):
            answer = account.session.call("ec2", "DescribeVpcAttribute", vpc.arn, VpcId=vpc.name, Attribute=attribute)
            out[f"DescribeVpcAttribute.{key}"] = ((answer or {}).get(key) or {}).get("Value")
        return out

    return read
