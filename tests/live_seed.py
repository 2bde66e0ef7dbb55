"""Deploys a synthesized stack's AWS resources into a moto server with boto3, as `pulumi up` would have created
them (names, settings, tags, and references resolved to the created resources), for `hardstack audit` tests.
Only the resource types the audit compares are created (with what they need: subnets, a target group, a
certificate). Written from the Pulumi inputs to the create APIs — the reverse of the audit's own mapping."""

from __future__ import annotations

import json
from typing import Any

from hardstack.stacks.inventory import Inventory, Resource

KEY = "aws:kms/key:Key"
ALIAS = "aws:kms/alias:Alias"
BUCKET = "aws:s3/bucket:Bucket"
VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
WAF_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
REGISTRY_SCANNING = "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration"
REPOSITORY = "aws:ecr/repository:Repository"
CLUSTER = "aws:eks/cluster:Cluster"
TRAIL = "aws:cloudtrail/trail:Trail"
DETECTOR = "aws:guardduty/detector:Detector"


SELECTOR_KEYS = {"field": "Field", "equals": "Equals", "startsWiths": "StartsWith", "endsWiths": "EndsWith",
                 "notEquals": "NotEquals", "notStartsWiths": "NotStartsWith", "notEndsWiths": "NotEndsWith"}
"""A trail's advanced field selector: Pulumi's input names → CloudTrail's."""


def tag_list(tags: dict[str, str], key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    return [{key: k, value: v} for k, v in tags.items()]


class StackSeeder:
    """Creates the stack's resources; `created[urn]` is the ARN (or ID) each became."""

    def __init__(self, inventory: Inventory, client: Any, region: str = "us-east-1") -> None:
        self.inventory, self.client, self.region = inventory, client, region
        self.created: dict[str, str] = {}

    def ref(self, r: Resource, *path: str | int) -> str | None:
        """What input `path` of `r` refers to, as created (else the input's own value)."""
        for ref in r.references:
            if ref.path == path and ref.resource in self.created:
                return self.created[ref.resource]
        return r.get(*path)

    def siblings(self, type_token: str, urn: str, via: str = "bucket") -> list[Resource]:
        return [s for s in self.inventory.of_type(type_token)
                if any(ref.path == (via,) and ref.resource == urn for ref in s.references)]

    def seed(self, skip: set[str] = frozenset()) -> dict[str, str]:  # type: ignore[assignment]
        """Everything but the resources named in `skip` (Pulumi names)."""
        order = (self.keys, self.buckets, self.network, self.web_acls, self.load_balancers, self.registry,
                 self.clusters, self.trails, self.detectors)
        for step in order:
            step(skip)
        return self.created

    def each(self, type_token: str, skip: set[str]) -> list[Resource]:
        return [r for r in self.inventory.of_type(type_token) if r.name not in skip]

    # --- KMS -----------------------------------------------------------------------------------------------------
    def keys(self, skip: set[str]) -> None:
        kms = self.client("kms")
        for r in self.each(KEY, skip):
            meta = kms.create_key(Description=r.get("description", default=""), KeyUsage=r.get("keyUsage"),
                                  KeySpec=r.get("customerMasterKeySpec"), Policy=r.get("policy"),
                                  MultiRegion=bool(r.get("multiRegion")),
                                  Tags=tag_list(r.get("tags") or {}, "TagKey", "TagValue"))["KeyMetadata"]
            if r.get("enableKeyRotation"):
                kms.enable_key_rotation(KeyId=meta["KeyId"])
            self.created[r.urn] = meta["Arn"]
            for alias in self.siblings(ALIAS, r.urn, via="targetKeyId"):
                kms.create_alias(AliasName=alias.get("name"), TargetKeyId=meta["KeyId"])

    # --- S3 ------------------------------------------------------------------------------------------------------
    def bucket_name(self, r: Resource) -> str:
        (name,) = {s.get("bucket") for t in (
            "aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
            for s in self.siblings(t, r.urn)}
        return name

    def buckets(self, skip: set[str]) -> None:
        s3 = self.client("s3")
        buckets = self.each(BUCKET, skip)
        for r in buckets:
            name = self.bucket_name(r)
            locked = bool(self.siblings("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration", r.urn))
            s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=locked)
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_list(r.get("tags") or {})})
            self.created[r.urn] = name
        for r in buckets:
            self.configure_bucket(r, self.created[r.urn])
        # moto checks, at PutBucketLogging, that the target's policy lets the logging service write, but cannot read
        # a policy with a `"Principal": "*"` statement: logging first (under a policy granting just that), then
        # the buckets' own policies.
        for r in buckets:
            for log in self.siblings("aws:s3/bucketLogging:BucketLogging", r.urn):
                target = self.ref(log, "targetBucket")
                s3.put_bucket_policy(Bucket=target, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
                    "Action": ["s3:PutObject"], "Resource": f"arn:aws:s3:::{target}/*"}]}))
                s3.put_bucket_logging(Bucket=self.created[r.urn], BucketLoggingStatus={"LoggingEnabled": {
                    "TargetBucket": target, "TargetPrefix": log.get("targetPrefix")}})
        for r in buckets:
            for p in self.siblings("aws:s3/bucketPolicy:BucketPolicy", r.urn):
                s3.put_bucket_policy(Bucket=self.created[r.urn], Policy=p.get("policy"))

    def configure_bucket(self, r: Resource, name: str) -> None:
        s3 = self.client("s3")
        for sse in self.siblings("aws:s3/bucketServerSideEncryptionConfiguration:"
                                 "BucketServerSideEncryptionConfiguration", r.urn):
            default = {"SSEAlgorithm": sse.get("rules", 0, "applyServerSideEncryptionByDefault", "sseAlgorithm")}
            key = self.ref(sse, "rules", 0, "applyServerSideEncryptionByDefault", "kmsMasterKeyId")
            if key:
                default["KMSMasterKeyID"] = key
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [{
                "ApplyServerSideEncryptionByDefault": default,
                "BucketKeyEnabled": bool(sse.get("rules", 0, "bucketKeyEnabled"))}]})
        for v in self.siblings("aws:s3/bucketVersioning:BucketVersioning", r.urn):
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={
                "Status": v.get("versioningConfiguration", "status")})
        for b in self.siblings("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", r.urn):
            s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
                k[0].upper() + k[1:]: bool(b.get(k)) for k in
                ("blockPublicAcls", "ignorePublicAcls", "blockPublicPolicy", "restrictPublicBuckets")})
        for lock in self.siblings("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration", r.urn):
            s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
                "ObjectLockEnabled": lock.get("objectLockEnabled"),
                "Rule": {"DefaultRetention": {"Mode": lock.get("rule", "defaultRetention", "mode"),
                                              "Days": int(lock.get("rule", "defaultRetention", "days"))}}})
        for o in self.siblings("aws:s3/bucketOwnershipControls:BucketOwnershipControls", r.urn):
            s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls={"Rules": [
                {"ObjectOwnership": o.get("rule", "objectOwnership")}]})

    # --- VPC and flow logs -----------------------------------------------------------------------------------------
    def network(self, skip: set[str]) -> None:
        ec2 = self.client("ec2")
        for r in self.each(VPC, skip):
            vpc = ec2.create_vpc(CidrBlock=r.get("cidrBlock"), TagSpecifications=[
                {"ResourceType": "vpc", "Tags": tag_list(r.get("tags") or {})}])["Vpc"]
            for attribute in ("enableDnsSupport", "enableDnsHostnames"):
                if r.get(attribute) is not None:
                    ec2.modify_vpc_attribute(VpcId=vpc["VpcId"], **{
                        attribute[0].upper() + attribute[1:]: {"Value": bool(r.get(attribute))}})
            self.created[r.urn] = vpc["VpcId"]
        logs = self.client("logs")
        for r in self.each(FLOW_LOG, skip):
            vpc_id = self.ref(r, "vpcId")
            if vpc_id not in self.created.values():
                continue  # its VPC was not created
            group = f"/flow-logs/{r.name}"
            logs.create_log_group(logGroupName=group)
            answer = ec2.create_flow_logs(
                ResourceIds=[vpc_id], ResourceType="VPC", TrafficType=r.get("trafficType"),
                LogDestinationType=r.get("logDestinationType"), LogGroupName=group,
                DeliverLogsPermissionArn="arn:aws:iam::123456789012:role/flow-logs",
                MaxAggregationInterval=int(r.get("maxAggregationInterval")),
                TagSpecifications=[{"ResourceType": "vpc-flow-log", "Tags": tag_list(r.get("tags") or {})}])
            self.created[r.urn] = answer["FlowLogIds"][0]

    def subnets(self) -> list[str]:
        """Two subnets (two zones) of the stack's VPC, for the load balancer and the cluster."""
        if not hasattr(self, "_subnets"):
            ec2 = self.client("ec2")
            (vpc_urn,) = [r.urn for r in self.inventory.of_type(VPC)]
            vpc_id = self.created[vpc_urn]
            cidr = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]["CidrBlock"]
            base = cidr.split(".")[:2]
            self._subnets = [ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"{base[0]}.{base[1]}.{250 + i}.0/24",
                                               AvailabilityZone=f"{self.region}{zone}")["Subnet"]["SubnetId"]
                             for i, zone in enumerate("ab")]
        return self._subnets

    # --- WAF and load balancers ------------------------------------------------------------------------------------
    def web_acls(self, skip: set[str]) -> None:
        waf = self.client("wafv2")
        for r in self.each(WEB_ACL, skip):
            visibility = {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": r.name}
            rules = [{"Name": rule["name"], "Priority": rule["priority"], "Action": {"Block": {}},
                      "Statement": {"RateBasedStatement": {"Limit": 300, "AggregateKeyType": "IP"}},
                      "VisibilityConfig": visibility} for rule in r.get("rules") or []]
            default = {k.capitalize(): {} for k in r.get("defaultAction") or {"allow": {}}}
            summary = waf.create_web_acl(Name=r.get("name") or r.name, Scope=r.get("scope"), DefaultAction=default,
                                         Rules=rules, VisibilityConfig=visibility,
                                         Tags=tag_list(r.get("tags") or {}))["Summary"]
            self.created[r.urn] = summary["ARN"]

    def load_balancers(self, skip: set[str]) -> None:
        elb, waf = self.client("elbv2"), self.client("wafv2")
        for r in self.each(LOAD_BALANCER, skip):
            lb = elb.create_load_balancer(
                Name=r.get("name"), Subnets=self.subnets(), Type=r.get("loadBalancerType"),
                Scheme="internal" if r.get("internal") else "internet-facing",
                Tags=tag_list(r.get("tags") or {}))["LoadBalancers"][0]
            arn = lb["LoadBalancerArn"]
            self.created[r.urn] = arn
            attributes = {
                "routing.http.drop_invalid_header_fields.enabled": r.get("dropInvalidHeaderFields"),
                "routing.http.desync_mitigation_mode": r.get("desyncMitigationMode"),
                "deletion_protection.enabled": r.get("enableDeletionProtection"),
                "waf.fail_open.enabled": r.get("enableWafFailOpen"),
                "routing.http2.enabled": r.get("enableHttp2"),
                "access_logs.s3.enabled": r.get("accessLogs", "enabled"),
                "access_logs.s3.bucket": self.ref(r, "accessLogs", "bucket"),
                "access_logs.s3.prefix": r.get("accessLogs", "prefix"),
            }
            elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
                {"Key": k, "Value": str(v).lower() if isinstance(v, bool) else str(v)}
                for k, v in attributes.items() if v is not None])
            for association in self.siblings(WAF_ASSOCIATION, r.urn, via="resourceArn"):
                waf.associate_web_acl(WebACLArn=self.ref(association, "webAclArn"), ResourceArn=arn)
            self.listeners(r, arn, skip)

    def listeners(self, lb: Resource, lb_arn: str, skip: set[str]) -> None:
        elb = self.client("elbv2")
        vpc_id = self.client("ec2").describe_subnets(SubnetIds=self.subnets()[:1])["Subnets"][0]["VpcId"]
        target_group = elb.create_target_group(Name=f"tg-{lb.name}"[:32], Protocol="HTTPS", Port=8000,
                                               VpcId=vpc_id, TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
        certificate = self.client("acm").request_certificate(DomainName="chat.example.com",
                                                             ValidationMethod="DNS")["CertificateArn"]
        for r in self.each(LISTENER, skip):
            if not any(ref.path == ("loadBalancerArn",) and ref.resource == lb.urn for ref in r.references):
                continue
            actions = []
            for action in r.get("defaultActions") or []:
                if action["type"] == "redirect":
                    redirect = action["redirect"]
                    actions.append({"Type": "redirect", "RedirectConfig": {
                        "Protocol": redirect["protocol"], "Port": redirect["port"],
                        "StatusCode": redirect["statusCode"]}})
                else:
                    actions.append({"Type": action["type"], "TargetGroupArn": target_group})
            extra: dict[str, Any] = {}
            if r.get("protocol") in ("HTTPS", "TLS"):
                extra = {"SslPolicy": r.get("sslPolicy"), "Certificates": [{"CertificateArn": certificate}]}
            listener = elb.create_listener(LoadBalancerArn=lb_arn, Protocol=r.get("protocol"), Port=int(r.get("port")),
                                           DefaultActions=actions, Tags=tag_list(r.get("tags") or {}),
                                           **extra)["Listeners"][0]
            self.created[r.urn] = listener["ListenerArn"]

    # --- ECR and EKS -----------------------------------------------------------------------------------------------
    def registry(self, skip: set[str]) -> None:
        ecr = self.client("ecr")
        for r in self.each(REGISTRY_SCANNING, skip):
            ecr.put_registry_scanning_configuration(scanType=r.get("scanType"), rules=[
                {"scanFrequency": rule["scanFrequency"], "repositoryFilters": [
                    {"filter": f["filter"], "filterType": f["filterType"]} for f in rule["repositoryFilters"]]}
                for rule in r.get("rules") or []])
            self.created[r.urn] = "registry"
        for r in self.each(REPOSITORY, skip):
            encryption = {"encryptionType": r.get("encryptionConfigurations", 0, "encryptionType")}
            key = self.ref(r, "encryptionConfigurations", 0, "kmsKey")
            if key:
                encryption["kmsKey"] = key
            repo = ecr.create_repository(
                repositoryName=r.get("name"), imageTagMutability=r.get("imageTagMutability"),
                imageScanningConfiguration={"scanOnPush": bool(r.get("imageScanningConfiguration", "scanOnPush"))},
                encryptionConfiguration=encryption, tags=tag_list(r.get("tags") or {}))["repository"]
            self.created[r.urn] = repo["repositoryArn"]

    def clusters(self, skip: set[str]) -> None:
        eks = self.client("eks")
        for r in self.each(CLUSTER, skip):
            vpc = {"subnetIds": self.subnets(),
                   "endpointPublicAccess": bool(r.get("vpcConfig", "endpointPublicAccess")),
                   "endpointPrivateAccess": bool(r.get("vpcConfig", "endpointPrivateAccess"))}
            if r.get("vpcConfig", "publicAccessCidrs"):
                vpc["publicAccessCidrs"] = r.get("vpcConfig", "publicAccessCidrs")
            cluster = eks.create_cluster(
                name=r.get("name"), version=r.get("version"), roleArn=self.ref(r, "roleArn"),
                resourcesVpcConfig=vpc,
                logging={"clusterLogging": [{"types": r.get("enabledClusterLogTypes"), "enabled": True}]},
                encryptionConfig=[{"resources": r.get("encryptionConfig", "resources"),
                                   "provider": {"keyArn": self.ref(r, "encryptionConfig", "provider", "keyArn")}}],
                tags=r.get("tags") or {})["cluster"]
            self.created[r.urn] = cluster["arn"]

    # --- CloudTrail and GuardDuty ----------------------------------------------------------------------------------
    def trails(self, skip: set[str]) -> None:
        cloudtrail = self.client("cloudtrail")
        for r in self.each(TRAIL, skip):
            args: dict[str, Any] = {
                "Name": r.get("name"), "S3BucketName": self.ref(r, "s3BucketName"),
                "IsMultiRegionTrail": bool(r.get("isMultiRegionTrail")),
                "EnableLogFileValidation": bool(r.get("enableLogFileValidation")),
                "IncludeGlobalServiceEvents": bool(r.get("includeGlobalServiceEvents", default=True)),
                "TagsList": tag_list(r.get("tags") or {})}
            if self.ref(r, "kmsKeyId"):
                args["KmsKeyId"] = self.ref(r, "kmsKeyId")
            trail = cloudtrail.create_trail(**args)
            selectors = [{"Name": s["name"], "FieldSelectors": [
                {SELECTOR_KEYS[k]: v for k, v in f.items()} for f in s["fieldSelectors"]]}
                for s in r.get("advancedEventSelectors") or []]
            if selectors:
                cloudtrail.put_event_selectors(TrailName=trail["TrailARN"], AdvancedEventSelectors=selectors)
            if r.get("enableLogging", default=True):
                cloudtrail.start_logging(Name=trail["TrailARN"])
            self.created[r.urn] = trail["TrailARN"]

    def detectors(self, skip: set[str]) -> None:
        guardduty = self.client("guardduty")
        for r in self.each(DETECTOR, skip):
            features = [{"Name": f.get("name"), "Status": f.get("status"), "AdditionalConfiguration": [
                {"Name": c["name"], "Status": c["status"]} for c in f.get("additionalConfigurations") or []]}
                for f in self.siblings("aws:guardduty/detectorFeature:DetectorFeature", r.urn, via="detectorId")]
            args: dict[str, Any] = {"Enable": bool(r.get("enable", default=True)), "Tags": r.get("tags") or {},
                                    "Features": features}
            if r.get("findingPublishingFrequency"):
                args["FindingPublishingFrequency"] = r.get("findingPublishingFrequency")
            self.created[r.urn] = guardduty.create_detector(**args)["DetectorId"]
