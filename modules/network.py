"""A VPC segmented into private tiers per AZ, with ACLs between tiers, flow logs and private AWS endpoints."""

from __future__ import annotations

from dataclasses import dataclass

import json
from typing import Any, Mapping, Sequence

import pulumi
import pulumi_aws as aws

from hardstack.blueprints.base import Classification
from hardstack.blueprints.endpoints import EndpointSpec
from hardstack.blueprints.network import PRIVATE_TIERS, NetworkSpec, Tier

from .base import HardenedComponent, account_and_partition
from .kms import CustomerManagedKey
from .segmentation import NAT_TIERS, EndpointFlows, acl_rules, endpoint_flows

FLOW_LOG_WRITE_ACTIONS = ("logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents")
FLOW_LOG_AGGREGATION_SECONDS = 60

AWS_OWNED_BUCKETS = ("prod-{region}-starport-layer-bucket",)
"""Buckets owned by AWS that private nodes must read through the S3 gateway endpoint: ECR keeps image layers
in this one."""


class SegmentedVpc(HardenedComponent):
    """A VPC whose private tiers (ingress, inference, training, data, endpoints) each get one subnet per AZ,
    their own route tables and network ACL. No subnet assigns public IPs; the default security group, ACL and
    route table are managed with no rules; all traffic is flow-logged to a CMK-encrypted log group; AWS APIs are
    reached through an S3 gateway endpoint (limited to this account's buckets) and private interface endpoints.
    Public subnets exist only for NAT gateways (`egress: nat`) or internet-facing endpoints. The ACLs admit the
    inference `endpoints` the stack declares, and nothing more for them: their callers on the listener ports into
    the load balancers' tier (ingress, or public for internet-facing ones), the load balancers to the inference
    tier on each endpoint's port, and for OIDC or JWT the load balancers to the identity provider (HTTPS out of
    the public tier); see `segmentation.acl_rules`. Every resource is tagged with the class of the data the
    network carries (`classification`)."""

    TYPE = "hardstack:network:SegmentedVpc"

    def __init__(
        self,
        name: str,
        spec: NetworkSpec,
        log_key: CustomerManagedKey,
        *,
        boundary: pulumi.Input[str],
        classification: Classification = Classification.regulated,
        endpoints: Sequence[EndpointSpec] = (),
        extra_interface_endpoints: Sequence[str] = (),
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, tags=tags, opts=opts)
        self.tags = {**self.tags, "hardstack:classification": classification.value}
        self.spec = spec
        self.boundary = boundary
        self.plan = spec.plan()
        self.endpoint_flows: tuple[EndpointFlows, ...] = tuple(endpoint_flows(e, spec.cidr) for e in endpoints)
        """What the declared endpoints need of the ACLs; an endpoint built on this network must be one of them."""
        self.public = spec.egress == "nat" or any(f.tier is Tier.public for f in self.endpoint_flows)
        account, partition, region = account_and_partition()
        child = self.child_opts()

        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=str(spec.cidr),
            enable_dns_support=True,
            enable_dns_hostnames=True,
            instance_tenancy="default",
            tags={**self.tags, "Name": f"{name}-vpc"},
            opts=child,
        )
        self.vpc_id: pulumi.Output[str] = self.vpc.id
        self.default_security_group = aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg", vpc_id=self.vpc.id, ingress=[], egress=[], tags=self.tags, opts=child
        )
        self.default_network_acl = aws.ec2.DefaultNetworkAcl(
            f"{name}-default-acl",
            default_network_acl_id=self.vpc.default_network_acl_id,
            ingress=[],
            egress=[],
            tags=self.tags,
            opts=self.child_opts(ignore_changes=["subnetIds"]),
        )
        self.default_route_table = aws.ec2.DefaultRouteTable(
            f"{name}-default-rt",
            default_route_table_id=self.vpc.default_route_table_id,
            routes=[],
            tags=self.tags,
            opts=child,
        )

        azs = aws.get_availability_zones_output(state="available")
        tiers = [t for t in PRIVATE_TIERS] + ([Tier.public] if self.public else [])
        self.subnets: dict[Tier, list[aws.ec2.Subnet]] = {}
        self.route_tables: dict[Tier, list[aws.ec2.RouteTable]] = {}
        for tier in tiers:
            self.subnets[tier], self.route_tables[tier] = [], []
            for i, cidr in enumerate(self.plan[tier].subnets):
                subnet_name = f"{name}-{tier.value}-{i + 1}"
                subnet = aws.ec2.Subnet(
                    subnet_name,
                    vpc_id=self.vpc.id,
                    cidr_block=str(cidr),
                    availability_zone=azs.names.apply(lambda names, i=i: _az(names, i, spec.availability_zones)),
                    map_public_ip_on_launch=False,
                    assign_ipv6_address_on_creation=False,
                    tags={**self.tags, "Name": subnet_name, "hardstack:tier": tier.value},
                    opts=child,
                )
                table = aws.ec2.RouteTable(
                    f"{subnet_name}-rt",
                    vpc_id=self.vpc.id,
                    tags={**self.tags, "Name": f"{subnet_name}-rt", "hardstack:tier": tier.value},
                    opts=child,
                )
                aws.ec2.RouteTableAssociation(
                    f"{subnet_name}-rta", subnet_id=subnet.id, route_table_id=table.id, opts=child
                )
                self.subnets[tier].append(subnet)
                self.route_tables[tier].append(table)

        self.network_acls: dict[Tier, aws.ec2.NetworkAcl] = {}
        for tier in tiers:
            rules = acl_rules(tier, self.plan, spec.egress, self.endpoint_flows)
            self.network_acls[tier] = aws.ec2.NetworkAcl(
                f"{name}-{tier.value}-acl",
                vpc_id=self.vpc.id,
                subnet_ids=[s.id for s in self.subnets[tier]],
                ingress=[r.as_args() for r in rules if r.direction == "ingress"],
                egress=[r.as_args() for r in rules if r.direction == "egress"],
                tags={**self.tags, "Name": f"{name}-{tier.value}-acl", "hardstack:tier": tier.value},
                opts=child,
            )

        self._internet(name, child)
        self._flow_logs(name, log_key, account, partition, region, child)
        self._endpoints(name, region, account, partition, extra_interface_endpoints, child)

        self.subnet_ids: dict[Tier, list[pulumi.Output[str]]] = {
            t: [s.id for s in subnets] for t, subnets in self.subnets.items()
        }
        self.register_outputs(
            {
                "vpcId": self.vpc.id,
                "subnetIds": {t.value: ids for t, ids in self.subnet_ids.items()},
                "flowLogGroup": self.flow_log_group.name,
            }
        )

    def _internet(self, name: str, child: pulumi.ResourceOptions) -> None:
        self.internet_gateway = None
        self.nat_gateways: list[aws.ec2.NatGateway] = []
        if not self.public:
            return
        self.internet_gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=self.vpc.id, tags=self.tags, opts=child
        )
        for i, table in enumerate(self.route_tables[Tier.public]):
            aws.ec2.Route(
                f"{name}-public-{i + 1}-internet",
                route_table_id=table.id,
                destination_cidr_block="0.0.0.0/0",
                gateway_id=self.internet_gateway.id,
                opts=child,
            )
        if self.spec.egress != "nat":
            return
        for i, subnet in enumerate(self.subnets[Tier.public]):
            eip = aws.ec2.Eip(f"{name}-nat-{i + 1}-eip", domain="vpc", tags=self.tags, opts=child)
            nat = aws.ec2.NatGateway(
                f"{name}-nat-{i + 1}",
                subnet_id=subnet.id,
                allocation_id=eip.id,
                connectivity_type="public",
                tags=self.tags,
                opts=self.child_opts(depends_on=[self.internet_gateway]),
            )
            self.nat_gateways.append(nat)
            for tier in NAT_TIERS:
                aws.ec2.Route(
                    f"{name}-{tier.value}-{i + 1}-nat",
                    route_table_id=self.route_tables[tier][i].id,
                    destination_cidr_block="0.0.0.0/0",
                    nat_gateway_id=nat.id,
                    opts=child,
                )

    def _flow_logs(
        self,
        name: str,
        log_key: CustomerManagedKey,
        account: pulumi.Output[str],
        partition: pulumi.Output[str],
        region: pulumi.Output[str],
        child: pulumi.ResourceOptions,
    ) -> None:
        self.flow_log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=f"/hardstack/{pulumi.get_stack()}/{name}/vpc-flow-logs",
            retention_in_days=self.spec.flow_log_retention_days,
            kms_key_id=log_key.arn,
            tags=self.tags,
            opts=child,
        )
        assume = pulumi.Output.all(account, partition, region).apply(
            lambda a: json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            "Condition": {
                                "StringEquals": {"aws:SourceAccount": a[0]},
                                "ArnLike": {"aws:SourceArn": f"arn:{a[1]}:ec2:{a[2]}:{a[0]}:vpc-flow-log/*"},
                            },
                        }
                    ],
                }
            )
        )
        self.flow_log_role = aws.iam.Role(
            f"{name}-flow-logs-role",
            assume_role_policy=assume,
            max_session_duration=3600,
            permissions_boundary=self.boundary,
            tags=self.tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs-write",
            role=self.flow_log_role.id,
            policy=self.flow_log_group.arn.apply(
                lambda arn: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {"Effect": "Allow", "Action": list(FLOW_LOG_WRITE_ACTIONS), "Resource": f"{arn}:*"}
                        ],
                    }
                )
            ),
            opts=child,
        )
        self.flow_log = aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=self.flow_log_group.arn,
            iam_role_arn=self.flow_log_role.arn,
            max_aggregation_interval=FLOW_LOG_AGGREGATION_SECONDS,
            tags=self.tags,
            opts=child,
        )

    def _endpoints(
        self,
        name: str,
        region: pulumi.Output[str],
        account: pulumi.Output[str],
        partition: pulumi.Output[str],
        extra: Sequence[str],
        child: pulumi.ResourceOptions,
    ) -> None:
        private_tables = [t.id for tier in PRIVATE_TIERS for t in self.route_tables[tier]]
        self.s3_endpoint = aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=self.vpc.id,
            service_name=region.apply(lambda r: f"com.amazonaws.{r}.s3"),
            vpc_endpoint_type="Gateway",
            route_table_ids=private_tables,
            policy=pulumi.Output.all(account, partition, region).apply(lambda a: json.dumps(s3_endpoint_policy(*a))),
            tags={**self.tags, "Name": f"{name}-s3"},
            opts=child,
        )
        self.endpoint_security_group = aws.ec2.SecurityGroup(
            f"{name}-endpoints-sg",
            vpc_id=self.vpc.id,
            description="HTTPS from the private tiers to AWS interface endpoints; no egress",
            ingress=[
                {
                    "description": f"HTTPS from the {tier.value} tier",
                    "protocol": "tcp",
                    "from_port": 443,
                    "to_port": 443,
                    "cidr_blocks": [str(self.plan[tier].block)],
                }
                for tier in PRIVATE_TIERS
                if tier is not Tier.endpoints
            ],
            egress=[],
            revoke_rules_on_delete=True,
            tags={**self.tags, "Name": f"{name}-endpoints-sg"},
            opts=child,
        )
        self.interface_endpoints: dict[str, aws.ec2.VpcEndpoint] = {}
        perimeter = account.apply(lambda a: json.dumps(interface_endpoint_policy(a)))
        for service in self.spec.all_interface_endpoints(tuple(extra)):
            self.interface_endpoints[service] = aws.ec2.VpcEndpoint(
                f"{name}-{service.replace('.', '-')}" + ("-interface" if service == "s3" else ""),  # beside the gateway
                vpc_id=self.vpc.id,
                service_name=region.apply(lambda r, s=service: f"com.amazonaws.{r}.{s}"),
                vpc_endpoint_type="Interface",
                private_dns_enabled=service != "s3",  # S3's names stay on the gateway; pods name this one
                subnet_ids=[s.id for s in self.subnets[Tier.endpoints]],
                security_group_ids=[self.endpoint_security_group.id],
                policy=perimeter,
                tags={**self.tags, "Name": f"{name}-{service}"},
                opts=child,
            )


    @property
    def aws_access(self) -> "AwsAccess | None":
        """How pods reach AWS from behind default-deny NetworkPolicies, when the VPC has an S3 interface endpoint."""
        s3 = self.interface_endpoints.get("s3")
        if s3 is None:
            return None
        url = s3.dns_entries.apply(lambda entries: "https://bucket." + _dns_name(entries[0]).removeprefix("*."))
        return AwsAccess(str(self.plan[Tier.endpoints].block), url)


POD_IDENTITY_AGENT = "169.254.170.23/32"
"""The EKS Pod Identity agent on every node, from which pods get their role's credentials."""


@dataclass(frozen=True)
class AwsAccess:
    """AWS for pods without a route out: the endpoints tier on 443 (interface endpoints that serve this account's
    principals only, S3 among them, named through `AWS_ENDPOINT_URL_S3`) and the node's Pod Identity agent."""

    endpoints_cidr: str
    s3_endpoint_url: pulumi.Output[str]

    def egress(self) -> list[dict[str, Any]]:
        return [
            {"to": [{"ip_block": {"cidr": self.endpoints_cidr}}], "ports": [{"protocol": "TCP", "port": 443}]},
            {"to": [{"ip_block": {"cidr": POD_IDENTITY_AGENT}}], "ports": [{"protocol": "TCP", "port": 80}]},
        ]

    def environment(self) -> list[dict[str, Any]]:
        return [{"name": "AWS_ENDPOINT_URL_S3", "value": self.s3_endpoint_url}]


def _dns_name(entry: Any) -> str:
    return getattr(entry, "dns_name", None) or entry.get("dnsName") or entry.get("dns_name")


def s3_endpoint_policy(account: str, partition: str, region: str) -> dict[str, Any]:
    """S3 through the gateway endpoint reaches this account's buckets and the AWS-owned ones ECR needs, no
    other: data cannot be copied to a bucket of another account from inside the VPC."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OwnAccountBucketsOnly",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:ResourceAccount": account}},
            },
            {
                "Sid": "AwsOwnedImageLayers",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": [f"arn:{partition}:s3:::{b.format(region=region)}/*" for b in AWS_OWNED_BUCKETS],
            },
        ],
    }


def interface_endpoint_policy(account: str) -> dict[str, Any]:
    """Interface endpoints serve this account's principals only (a data perimeter)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OwnAccountPrincipalsOnly",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "*",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalAccount": account}},
            }
        ],
    }


def _az(names: list[str], index: int, wanted: int) -> str:
    if len(names) < wanted:
        raise ValueError(f"the region has {len(names)} available AZs; network.availability_zones asks for {wanted}")
    return names[index]
