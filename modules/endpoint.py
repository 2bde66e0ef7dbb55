"""Inference endpoints: a TLS 1.3 load balancer behind a WAF in front of a tenant's Service, never without
authentication, bound to the Service's pods by the AWS Load Balancer Controller; and the bucket its access logs
go to."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, Mapping

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from hardstack.blueprints.endpoints import TLS_POLICY, EndpointSpec
from hardstack.blueprints.network import Tier

from . import charts, waf
from .base import DesignException, HardenedComponent, account_and_partition, deploy_secret
from .cluster import EksCluster
from .iam import document, inline_policy, role, service_trust
from .identity import PermissionsBoundary
from .kms import CustomerManagedKey
from .network import SegmentedVpc
from .nodes import SYSTEM_LABEL, SYSTEM_TIER
from .segmentation import endpoint_flows
from .storage import ABORT_INCOMPLETE_UPLOAD_DAYS, MIN_TLS_VERSION, AccessLogBucket

if TYPE_CHECKING:
    from .registry import SignedRegistry

# --- the access log bucket ----------------------------------------------------------------------------------------

ELB_LOG_DELIVERY = "logdelivery.elasticloadbalancing.amazonaws.com"
"""The service that writes load balancer access logs in regions opened from August 2022 on."""
ELB_LOG_ACCOUNTS = {
    "us-east-1": "127311923021", "us-east-2": "033677994240", "us-west-1": "027434742980",
    "us-west-2": "797873946194", "af-south-1": "098369216593", "ap-east-1": "754344448648",
    "ap-southeast-3": "589379963580", "ap-south-1": "718504428378", "ap-northeast-3": "383597477331",
    "ap-northeast-2": "600734575887", "ap-southeast-1": "114774131450", "ap-southeast-2": "783225319266",
    "ap-northeast-1": "582318560864", "ca-central-1": "985666609251", "eu-central-1": "054676820928",
    "eu-west-1": "156460612806", "eu-west-2": "652711504416", "eu-south-1": "635631232127",
    "eu-west-3": "009996457667", "eu-north-1": "897822967062", "me-south-1": "076674570225",
    "sa-east-1": "507241528517", "us-gov-west-1": "048591011584", "us-gov-east-1": "190560391635",
}
"""Regions opened before August 2022 deliver access logs from Elastic Load Balancing's account of the region (AWS's
published table), not from the service principal."""
ACCESS_LOG_PREFIX = "load-balancers"
"""Every load balancer writes under `<prefix>/<endpoint>/AWSLogs/<account>/`."""
ACCESS_LOG_DAYS = 365
"""Access logs are kept a year, then expire."""
NONCURRENT_LOG_DAYS = 90
"""A deleted or overwritten log object stays recoverable this long."""


class EndpointLogs(HardenedComponent):
    """The bucket load balancers write their access logs to: public access blocked, ACLs disabled, versioned,
    reachable only over TLS 1.2+, logs kept a year, its own server access logs sent to the stack's access log
    bucket, and only Elastic Load Balancing's log delivery may write, and only under this account's prefix.

    It is encrypted with S3-managed keys (SSE-S3), not the stack's CMK: load balancers deliver access logs only
    to SSE-S3 buckets. Uploads that ask for any other encryption are refused."""

    TYPE = "hardstack:endpoint:EndpointLogs"
    DESIGN_EXCEPTIONS = (
        DesignException(
            check="CKV_AWS_145",
            resource_type="aws:s3/bucket:Bucket",
            reason="Elastic Load Balancing delivers access logs only to buckets encrypted with S3-managed keys "
            "(SSE-S3), so the load balancer access log bucket cannot use a KMS key.",
        ),
        DesignException(
            check="HS_DATA_002",
            resource_type="aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            reason="Load balancers refuse to deliver access logs to a bucket whose default encryption is a KMS key, "
            "so this bucket's default encryption is SSE-S3 (AES256), and its policy refuses any other.",
        ),
    )

    def __init__(
        self,
        name: str,
        *,
        access_logs: AccessLogBucket | None,
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, tags=tags, opts=opts)
        self.tags = {**self.tags, "hardstack:classification": "confidential",
                     "hardstack:purpose": "load-balancer-access-logs"}
        self.prefix = ACCESS_LOG_PREFIX
        account, partition, region = account_and_partition()
        child = self.child_opts()
        self.bucket = aws.s3.Bucket(f"{name}-bucket", force_destroy=False, tags=self.tags, opts=child)
        self.id: pulumi.Output[str] = self.bucket.id
        self.arn: pulumi.Output[str] = self.bucket.arn
        self.public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block", bucket=self.bucket.id, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True, opts=child)
        self.ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership", bucket=self.bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=child)
        self.encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=self.bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}], opts=child)
        self.versioning = aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=self.bucket.id,
            versioning_configuration={"status": "Enabled", "mfa_delete": "Disabled"}, opts=child)
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=self.bucket.id, rules=[
                {"id": "abort-incomplete-uploads", "status": "Enabled", "filter": {},
                 "abort_incomplete_multipart_upload": {"days_after_initiation": ABORT_INCOMPLETE_UPLOAD_DAYS}},
                {"id": "expire-logs", "status": "Enabled", "filter": {}, "expiration": {"days": ACCESS_LOG_DAYS},
                 "noncurrent_version_expiration": {"noncurrent_days": NONCURRENT_LOG_DAYS}},
            ], opts=self.child_opts(depends_on=[self.versioning]))
        self.logging = None
        if access_logs is not None:
            self.logging = aws.s3.BucketLogging(
                f"{name}-access-logging", bucket=self.bucket.id, target_bucket=access_logs.id,
                target_prefix=f"{name}/",
                target_object_key_format={"partitioned_prefix": {"partition_date_source": "EventTime"}}, opts=child)
        self.notifications = aws.s3.BucketNotification(f"{name}-events", bucket=self.bucket.id, eventbridge=True,
                                                       opts=child)
        self.policy = aws.s3.BucketPolicy(
            f"{name}-policy", bucket=self.bucket.id,
            policy=pulumi.Output.all(self.bucket.arn, account, partition, region).apply(
                lambda a: json.dumps(self.policy_document(*a), indent=2)),
            opts=self.child_opts(depends_on=[self.public_access_block]))
        self.register_outputs({"arn": self.arn, "bucket": self.bucket.bucket})

    def log_prefix(self, endpoint: str) -> str:
        """Where the load balancer of `endpoint` writes (its access logs land under `<prefix>/AWSLogs/...`)."""
        return f"{self.prefix}/{endpoint}"

    def policy_document(self, bucket_arn: str, account: str, partition: str = "aws", region: str = "") -> dict[str, Any]:
        everything = [bucket_arn, f"{bucket_arn}/*"]
        elb_account = ELB_LOG_ACCOUNTS.get(region)
        writer = ({"AWS": f"arn:{partition}:iam::{elb_account}:root"} if elb_account
                  else {"Service": ELB_LOG_DELIVERY})
        return {"Version": "2012-10-17", "Statement": [
            {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
             "Resource": everything, "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            {"Sid": "DenyOutdatedTls", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": everything,
             "Condition": {"NumericLessThan": {"s3:TlsVersion": MIN_TLS_VERSION}}},
            {"Sid": "DenyUploadsWithOtherEncryption", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
             "Resource": f"{bucket_arn}/*",
             "Condition": {"Null": {"s3:x-amz-server-side-encryption": "false"},
                           "StringNotEquals": {"s3:x-amz-server-side-encryption": "AES256"}}},
            {"Sid": "LoadBalancerAccessLogDelivery", "Effect": "Allow", "Principal": writer,
             "Action": "s3:PutObject", "Resource": f"{bucket_arn}/{self.prefix}/*/AWSLogs/{account}/*"},
        ]}


# --- the AWS Load Balancer Controller ----------------------------------------------------------------------------

CONTROLLER_SERVICE_ACCOUNT = "aws-load-balancer-controller"
CONTROLLER_DESCRIBE_ACTIONS = (
    "ec2:DescribeVpcs",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
)
"""What binding a target group reads: the target group (its type, protocol and VPC, checked by the controller's
webhook) and its targets' health, and the VPC's CIDRs (pod addresses inside them are registered by address). These
calls cannot be scoped to a resource."""
CONTROLLER_TARGET_ACTIONS = ("elasticloadbalancing:DeregisterTargets", "elasticloadbalancing:RegisterTargets")
"""What binding a target group changes: its targets. Allowed on the stack's endpoint target groups only (granted
per target group by `LoadBalancerController.grant_targets`)."""


class LoadBalancerController(HardenedComponent):
    """The AWS Load Balancer Controller, installed only to keep target groups bound to Services' pods
    (TargetGroupBinding). hardstack creates the load balancers, listeners and target groups itself, so the
    controller creates none: no IngressClass, the ingress class annotation ignored, its Service controller,
    Gateway API controllers and Service and Ingress webhooks switched off, no WAF or Shield add-ons. It runs two
    replicas on the system nodes from the stack's mirror of its image, and its Pod Identity role may only describe
    target groups, their health and the VPC, and register targets in the stack's endpoint target groups; it may
    change no security group (the rule that lets a load balancer reach the pods is the endpoint's own)."""

    TYPE = "hardstack:endpoint:LoadBalancerController"

    def __init__(
        self,
        name: str,
        cluster: EksCluster,
        network: SegmentedVpc,
        *,
        boundary: PermissionsBoundary,
        registry: "SignedRegistry",
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, tags=tags, opts=opts)
        chart = charts.LOAD_BALANCER_CONTROLLER
        account, _, region = account_and_partition()
        trust = pulumi.Output.all(account, cluster.cluster.arn).apply(
            lambda a: service_trust("pods.eks.amazonaws.com", a[0], a[1]))
        self.role = role(f"{name}-role", trust, boundary=boundary.arn, parent=self,
                         tags={**self.tags, "hardstack:namespace": chart.namespace})
        self.describe_policy = inline_policy(f"{name}-describe", self.role, [
            {"Sid": "DescribeTargetGroupsAndVpc", "Effect": "Allow", "Action": list(CONTROLLER_DESCRIBE_ACTIONS),
             "Resource": "*"}], self)
        self.association = aws.eks.PodIdentityAssociation(
            f"{name}-pod-identity", cluster_name=cluster.name, namespace=chart.namespace,
            service_account=CONTROLLER_SERVICE_ACCOUNT, role_arn=self.role.arn, tags=self.tags,
            opts=self.child_opts())
        self.values = controller_values(cluster.cluster_name, region, network.vpc_id)
        self.release = charts.release(f"{name}-release", chart, mirror_registry=registry.mirror_registry,
                                      values=self.values, provider=cluster.provider, parent=self,
                                      depends_on=[self.association, self.describe_policy])
        self.register_outputs({"role": self.role.arn})

    def grant_targets(self, endpoint: str, target_group: aws.lb.TargetGroup) -> aws.iam.RolePolicy:
        """Let the controller register and deregister targets in `target_group`, and in no other."""
        return inline_policy(f"{self.component_name}-targets-{endpoint}", self.role, target_group.arn.apply(
            lambda arn: [{"Sid": "BindTargetGroup", "Effect": "Allow", "Action": list(CONTROLLER_TARGET_ACTIONS),
                          "Resource": arn}]), self)


def controller_values(cluster_name: pulumi.Input[str], region: pulumi.Input[str],
                      vpc_id: pulumi.Input[str]) -> dict[str, Any]:
    """The chart's values beyond those its review depends on, which `charts.release` adds from
    `charts.LOAD_BALANCER_CONTROLLER.hardened` (TargetGroupBindings only, everything else it could reconcile and
    its webhooks switched off, two replicas, unprivileged, its image from the mirror): where it runs and what it
    may use."""
    return {
        "clusterName": cluster_name,
        "region": region,
        "vpcId": vpc_id,
        "podDisruptionBudget": {"maxUnavailable": 1},
        "image": {"pullPolicy": "IfNotPresent"},
        "serviceAccount": {"create": True, "name": CONTROLLER_SERVICE_ACCOUNT},
        "nodeSelector": {SYSTEM_LABEL: "true"},
        "podSecurityContext": {"fsGroup": 65534},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
    }


# --- the endpoint ------------------------------------------------------------------------------------------------

HTTPS_PORT, HTTP_PORT = 443, 80
ANYWHERE = "0.0.0.0/0"
SERVING_TIER = SYSTEM_TIER
"""Where the pods an endpoint forwards to run: the load balancer's tiers (ingress, public) reach only the inference
tier, where the system and inference nodes are."""
TARGET_PROTOCOL = "HTTPS"
"""The load balancer re-encrypts to the pods: prompts and completions never cross the VPC in plaintext (the VPC CNI
does not encrypt pod traffic). The Service's pods serve TLS on the port, with any certificate: a load balancer does
not verify its targets' certificates, so a self-signed one will do. (checkov's CKV_AWS_378 refuses plain-HTTP
target groups for the same reason.)"""
HEALTH_CHECK_PATH = "/health"
"""The inference servers' health path (vLLM, TGI, llama.cpp): a target gets requests only while it answers 200."""
HSTS = "max-age=31536000"
"""Browsers that reached the endpoint once use HTTPS only, for a year."""
AUTH_ACTIONS = {"oidc": "authenticate-oidc", "jwt": "jwt-validation"}
"""The listener action that authenticates each caller before the forward (mTLS authenticates in the handshake)."""


MAX_NAME = 32
"""The longest name a load balancer, target group or trust store may have."""


def physical_name(stack: str, endpoint: str, kind: str, *identity: object) -> str:
    """`<kind>-<endpoint>-<digest>` in at most 32 characters (Pulumi's own names for these would not fit: it adds
    random characters to the child's name). The digest covers the stack, the endpoint, the kind and `identity`, the
    settings that cannot change in place: a change that replaces the resource gives it a new name, so the new one
    can be created before the old one goes. The kind comes first: a load balancer name may not begin with
    `internal-`."""
    digest = hashlib.sha256("/".join(map(str, (stack, endpoint, kind, *identity))).encode()).hexdigest()[:8]
    return f"{f'{kind}-{endpoint}'[:MAX_NAME - 9].rstrip('-')}-{digest}"


def callers(spec: EndpointSpec, vpc_cidr: str) -> list[str]:
    """Who may connect: the declared CIDRs, else the VPC (internal) or anywhere (internet-facing)."""
    if spec.allowed_cidrs:
        return sorted(str(c) for c in spec.allowed_cidrs)
    return [vpc_cidr] if spec.scheme == "internal" else [ANYWHERE]


def redirects_http(spec: EndpointSpec, vpc_cidr: str) -> bool:
    """Whether port 80 is open to redirect HTTP to HTTPS: only for a bounded set of callers. Open to anywhere, a
    redirect would invite clients to send their bearer token or session cookie across the internet in cleartext
    before being redirected, so port 80 stays closed (and checkov's CKV_AWS_260 refuses port 80 from anywhere)."""
    return ANYWHERE not in callers(spec, vpc_cidr)


class WafEndpoint(HardenedComponent):
    """An inference endpoint in front of a tenant's Service:

    * an ALB, internal in the ingress tier or internet-facing in the public tier, with deletion protection, invalid
      header fields dropped, the strictest desync mitigation and access logs to the endpoint log bucket;
    * an HTTPS listener with the TLS 1.3-only policy, an ACM certificate (DNS-validated in the given zone, the name
      aliased to the ALB) or the given one, and authentication that is never optional: OIDC sign-in, JWT
      validation or mutual TLS in verify mode, always before the forward; HTTP redirected to HTTPS where port 80
      is open at all (see `redirects_http`); HSTS and no server header in responses;
    * a security group admitting 443 (80) only from the allowed callers and sending only to the serving tier on the
      Service's port (and, for OIDC and JWT, HTTPS to the identity provider); the nodes' security group admits the
      ALB's security group on that port, nothing else new;
    * a WAFv2 web ACL on the ALB (see `waf.web_acl_rules`) logging to a CMK-encrypted log group with the
      authorization header and cookies redacted;
    * in the tenant's namespace, a TargetGroupBinding of the Service to the IP target group (HTTPS, see
      TARGET_PROTOCOL) and a NetworkPolicy that lets only the ALB's subnets reach the Service's port.

    The Service's pods serve TLS on `spec.port` (the Service's targetPort equals its port)."""

    TYPE = "hardstack:endpoint:WafEndpoint"

    def __init__(
        self,
        name: str,
        spec: EndpointSpec,
        network: SegmentedVpc,
        cluster: EksCluster,
        logs_key: CustomerManagedKey,
        *,
        logs: EndpointLogs,
        controller: LoadBalancerController,
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, tags=tags, opts=opts)
        self.spec = spec
        self.tags = {**self.tags, "hardstack:endpoint": spec.name, "hardstack:tenant": spec.tenant}
        internet_facing = spec.scheme == "internet-facing"
        tier = Tier.public if internet_facing else Tier.ingress
        if endpoint_flows(spec, network.spec.cidr) not in network.endpoint_flows:
            raise ValueError(f"endpoint {spec.name!r} is not among the network's endpoints: build the network with it "
                             "in `endpoints`, so that its subnets and network ACLs admit the endpoint's traffic")
        vpc_cidr = str(network.spec.cidr)
        self.callers = callers(spec, vpc_cidr)
        self.alb_subnet_cidrs = [str(c) for c in network.plan[tier].subnets]
        account, partition, region = account_and_partition()
        child = self.child_opts()

        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-alb-sg",
            vpc_id=network.vpc_id,
            description=f"Endpoint {spec.name}: HTTPS from its callers; to the {SERVING_TIER.value} tier on port "
                        f"{spec.port} only",
            ingress=self._ingress(vpc_cidr),
            egress=self._egress(network),
            revoke_rules_on_delete=True,
            tags={**self.tags, "Name": f"{name}-alb-sg"},
            opts=child,
        )
        self.to_pods = aws.vpc.SecurityGroupIngressRule(
            f"{name}-alb-to-pods",
            security_group_id=cluster.cluster.vpc_config.cluster_security_group_id,
            referenced_security_group_id=self.security_group.id,
            ip_protocol="tcp",
            from_port=spec.port,
            to_port=spec.port,
            description=f"Endpoint {spec.name}'s load balancer to the pods of {spec.tenant}/{spec.service}",
            tags=self.tags,
            opts=child,
        )
        stack = pulumi.get_stack()
        self.load_balancer = aws.lb.LoadBalancer(
            f"{name}-alb",
            name=physical_name(stack, spec.name, "alb", spec.scheme),
            load_balancer_type="application",
            internal=not internet_facing,
            subnets=[s.id for s in network.subnets[tier]],
            security_groups=[self.security_group.id],
            ip_address_type="ipv4",
            drop_invalid_header_fields=True,
            desync_mitigation_mode="strictest",
            enable_deletion_protection=True,
            enable_waf_fail_open=False,
            enable_http2=True,
            xff_header_processing_mode="append",
            access_logs={"bucket": logs.id, "prefix": logs.log_prefix(spec.name), "enabled": True},
            tags=self.tags,
            opts=self.child_opts(depends_on=[logs.policy]),  # ELB writes a test object when logging is enabled
        )
        self.target_group = aws.lb.TargetGroup(
            f"{name}-tg",
            name=physical_name(stack, spec.name, "tg", TARGET_PROTOCOL, spec.port),
            target_type="ip",
            protocol=TARGET_PROTOCOL,
            protocol_version="HTTP1",
            port=spec.port,
            vpc_id=network.vpc_id,
            health_check={"enabled": True, "protocol": TARGET_PROTOCOL, "path": HEALTH_CHECK_PATH,
                          "port": "traffic-port", "matcher": "200"},
            tags=self.tags,
            opts=child,
        )
        self.certificate_arn = self._certificate(name, spec)
        self.trust_store = self._trust_store(name, spec)
        self.https_listener = aws.lb.Listener(
            f"{name}-https",
            load_balancer_arn=self.load_balancer.arn,
            port=HTTPS_PORT,
            protocol="HTTPS",
            ssl_policy=TLS_POLICY,
            certificate_arn=self.certificate_arn,
            default_actions=self._actions(),
            mutual_authentication={"mode": "verify", "trust_store_arn": self.trust_store.arn,
                                   "ignore_client_certificate_expiry": False}
            if self.trust_store is not None else None,
            routing_http_response_strict_transport_security_header_value=HSTS,
            routing_http_response_x_content_type_options_header_value="nosniff",
            routing_http_response_server_enabled=False,
            tags=self.tags,
            opts=child,
        )
        self.http_listener = None
        if redirects_http(spec, vpc_cidr):
            self.http_listener = aws.lb.Listener(
                f"{name}-http-redirect",
                load_balancer_arn=self.load_balancer.arn,
                port=HTTP_PORT,
                protocol="HTTP",
                default_actions=[{"type": "redirect", "redirect": {
                    "protocol": "HTTPS", "port": str(HTTPS_PORT), "status_code": "HTTP_301"}}],
                tags=self.tags,
                opts=child,
            )
        self._alias(name, spec)
        self._web_acl(name, spec, logs_key, account, partition, region, internet_facing)
        self.controller_grant = controller.grant_targets(spec.name, self.target_group)
        self._kubernetes(name, spec, network, cluster, controller)
        self.register_outputs({
            "loadBalancer": self.load_balancer.arn,
            "dnsName": self.load_balancer.dns_name,
            "webAcl": self.web_acl.arn,
            "targetGroup": self.target_group.arn,
        })

    # --- network ---

    def _ingress(self, vpc_cidr: str) -> list[dict[str, Any]]:
        ports = [HTTPS_PORT] + ([HTTP_PORT] if redirects_http(self.spec, vpc_cidr) else [])
        return [{"description": f"{'HTTPS' if port == HTTPS_PORT else 'HTTP, redirected to HTTPS'} from the "
                                f"endpoint's callers", "protocol": "tcp", "from_port": port, "to_port": port,
                 "cidr_blocks": list(self.callers)} for port in ports]

    def _egress(self, network: SegmentedVpc) -> list[dict[str, Any]]:
        rules = [{"description": f"to {self.spec.tenant}/{self.spec.service} in the {SERVING_TIER.value} tier",
                  "protocol": "tcp", "from_port": self.spec.port, "to_port": self.spec.port,
                  "cidr_blocks": [str(network.plan[SERVING_TIER].block)]}]
        if self.spec.auth.kind in ("oidc", "jwt"):  # the ALB itself fetches tokens or signing keys
            rules.append({"description": "HTTPS to the identity provider (tokens, user info, signing keys)",
                          "protocol": "tcp", "from_port": HTTPS_PORT, "to_port": HTTPS_PORT,
                          "cidr_blocks": [ANYWHERE]})
        return rules

    # --- TLS and authentication ---

    def _certificate(self, name: str, spec: EndpointSpec) -> pulumi.Output[str]:
        """The listener's certificate: the given one, or one ACM issues after DNS validation in the zone."""
        self.certificate = self.validation_record = self.validation = None
        if spec.certificate_arn is not None:
            return pulumi.Output.from_input(spec.certificate_arn)
        self.certificate = aws.acm.Certificate(
            f"{name}-certificate",
            domain_name=spec.domain_name,
            validation_method="DNS",
            options={"certificate_transparency_logging_preference": "ENABLED"},
            tags=self.tags,
            opts=self.child_opts(),
        )
        option = self.certificate.domain_validation_options.apply(lambda opts: _validation_option(opts))
        self.validation_record = aws.route53.Record(
            f"{name}-certificate-validation",
            zone_id=spec.zone_id,
            name=option.apply(lambda o: o["name"]),
            type=option.apply(lambda o: o["type"]),
            records=[option.apply(lambda o: o["value"])],
            ttl=60,
            allow_overwrite=False,
            opts=self.child_opts(),
        )
        self.validation = aws.acm.CertificateValidation(
            f"{name}-certificate-validated",
            certificate_arn=self.certificate.arn,
            validation_record_fqdns=[self.validation_record.fqdn],
            opts=self.child_opts(),
        )
        return self.validation.certificate_arn

    def _trust_store(self, name: str, spec: EndpointSpec) -> aws.lb.TrustStore | None:
        if spec.auth.kind != "mtls":
            return None
        bucket, _, key = spec.auth.ca_bundle.removeprefix("s3://").partition("/")
        return aws.lb.TrustStore(
            f"{name}-trust-store",
            name=physical_name(pulumi.get_stack(), spec.name, "ts"),
            ca_certificates_bundle_s3_bucket=bucket,
            ca_certificates_bundle_s3_key=key,
            tags=self.tags,
            opts=self.child_opts(),
        )

    def _actions(self) -> list[dict[str, Any]]:
        """Authenticate, then forward. mTLS verifies the client certificate in the handshake, before any action."""
        auth = self.spec.auth
        actions: list[dict[str, Any]] = []
        if auth.kind == "oidc":
            actions.append({"type": AUTH_ACTIONS["oidc"], "order": 1, "authenticate_oidc": {
                "issuer": auth.issuer,
                "authorization_endpoint": auth.authorization_endpoint,
                "token_endpoint": auth.token_endpoint,
                "user_info_endpoint": auth.user_info_endpoint,
                "client_id": auth.client_id,
                "client_secret": deploy_secret(self.spec.client_secret_config),  # type: ignore[arg-type]
                "scope": "openid",
                "session_cookie_name": waf.OIDC_SESSION_COOKIE,
                "session_timeout": auth.session_seconds,
                "on_unauthenticated_request": "authenticate",
            }})
        elif auth.kind == "jwt":
            actions.append({"type": AUTH_ACTIONS["jwt"], "order": 1, "jwt_validation": {
                "issuer": auth.issuer,
                "jwks_endpoint": auth.jwks_endpoint,
                "additional_claims": [{"name": "aud", "format": "single-string", "values": [auth.audience]}],
            }})
        actions.append({"type": "forward", "order": len(actions) + 1, "target_group_arn": self.target_group.arn})
        return actions

    def _alias(self, name: str, spec: EndpointSpec) -> None:
        self.alias = None
        if spec.zone_id is None:
            return
        self.alias = aws.route53.Record(
            f"{name}-alias",
            zone_id=spec.zone_id,
            name=spec.domain_name,
            type="A",
            aliases=[{"name": self.load_balancer.dns_name, "zone_id": self.load_balancer.zone_id,
                      "evaluate_target_health": True}],
            allow_overwrite=False,
            opts=self.child_opts(),
        )

    # --- WAF ---

    def _web_acl(self, name: str, spec: EndpointSpec, logs_key: CustomerManagedKey, account: pulumi.Output[str],
                 partition: pulumi.Output[str], region: pulumi.Output[str], internet_facing: bool) -> None:
        child = self.child_opts()
        self.ip_allowlist = None
        if internet_facing and spec.allowed_cidrs:
            self.ip_allowlist = aws.wafv2.IpSet(
                f"{name}-ip-allowlist", scope="REGIONAL", ip_address_version="IPV4",
                addresses=sorted(str(c) for c in spec.allowed_cidrs),
                description=f"Endpoint {spec.name}: the only addresses it serves", tags=self.tags, opts=child)
        metric = f"{pulumi.get_stack()}-{name}"
        self.web_acl = aws.wafv2.WebAcl(
            f"{name}-web-acl",
            scope="REGIONAL",
            description=f"Endpoint {spec.name}: allowlists, rate limits, body limit, AWS managed rules",
            default_action={"allow": {}},
            rules=waf.web_acl_rules(spec.waf, spec.auth.kind, metric_prefix=metric,
                                    ip_allowlist_arn=self.ip_allowlist.arn if self.ip_allowlist else None),
            visibility_config={"cloudwatch_metrics_enabled": True, "metric_name": metric,
                               "sampled_requests_enabled": True},
            tags=self.tags,
            opts=child,
        )
        self.association = aws.wafv2.WebAclAssociation(
            f"{name}-web-acl-association", resource_arn=self.load_balancer.arn, web_acl_arn=self.web_acl.arn,
            opts=child)
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-waf-logs",
            name=f"aws-waf-logs-{pulumi.get_stack()}-{name}",  # WAF logs only to groups named aws-waf-logs-*
            retention_in_days=spec.waf.log_retention_days,
            kms_key_id=logs_key.arn,
            tags=self.tags,
            opts=child,
        )
        self.log_delivery_policy = aws.cloudwatch.LogResourcePolicy(
            f"{name}-waf-log-delivery",
            policy_name=f"{pulumi.get_stack()}-{name}-waf-logs",
            policy_document=pulumi.Output.all(self.log_group.arn, account, partition, region).apply(
                lambda a: document([waf_log_delivery_statement(*a)])),
            opts=child,
        )
        self.logging = aws.wafv2.WebAclLoggingConfiguration(
            f"{name}-waf-logging",
            resource_arn=self.web_acl.arn,
            log_destination_configs=[self.log_group.arn],
            redacted_fields=waf.redacted_fields(),
            opts=self.child_opts(depends_on=[self.log_delivery_policy]),
        )

    # --- Kubernetes ---

    def _kubernetes(self, name: str, spec: EndpointSpec, network: SegmentedVpc, cluster: EksCluster,
                    controller: LoadBalancerController) -> None:
        labels = {"app.kubernetes.io/managed-by": "hardstack", "hardstack.io/endpoint": spec.name}
        in_ns = pulumi.ResourceOptions(parent=self, provider=cluster.provider)
        self.target_group_binding = k8s.apiextensions.CustomResource(
            f"{name}-target-group-binding",
            api_version="elbv2.k8s.aws/v1beta1",
            kind="TargetGroupBinding",
            metadata={"name": f"endpoint-{spec.name}", "namespace": spec.tenant, "labels": labels},
            spec={
                "serviceRef": {"name": spec.service, "port": spec.port},
                "targetGroupARN": self.target_group.arn,
                "targetType": "ip",
                "targetGroupProtocol": TARGET_PROTOCOL,
                "ipAddressType": "ipv4",
                "vpcID": network.vpc_id,
            },
            opts=pulumi.ResourceOptions(parent=self, provider=cluster.provider,
                                        depends_on=[controller.release, self.controller_grant]),
        )
        self.network_policy = k8s.networking.v1.NetworkPolicy(
            f"{name}-allow-load-balancer",
            metadata={"name": f"allow-endpoint-{spec.name}", "namespace": spec.tenant, "labels": labels},
            spec={
                "pod_selector": {},
                "policy_types": ["Ingress"],
                "ingress": [{
                    "from": [{"ip_block": {"cidr": c}} for c in self.alb_subnet_cidrs],
                    "ports": [{"protocol": "TCP", "port": spec.port}],
                }],
            },
            opts=in_ns,
        )


def _validation_option(options: Any) -> dict[str, str]:
    """The DNS record ACM asks for (one: the certificate names only the endpoint's domain)."""
    first = (options or [{}])[0]
    get = first.get if isinstance(first, dict) else lambda k: getattr(first, k, None)
    return {"name": get("resource_record_name") or get("resourceRecordName"),
            "type": get("resource_record_type") or get("resourceRecordType"),
            "value": get("resource_record_value") or get("resourceRecordValue")}


def waf_log_delivery_statement(log_group_arn: str, account: str, partition: str, region: str) -> dict[str, Any]:
    """CloudWatch Logs lets WAF's log delivery write into this log group only, for this account's web ACLs only."""
    return {
        "Sid": "WafLogDelivery",
        "Effect": "Allow",
        "Principal": {"Service": "delivery.logs.amazonaws.com"},
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": f"{log_group_arn}:log-stream:*",
        "Condition": {
            "StringEquals": {"aws:SourceAccount": account},
            "ArnLike": {"aws:SourceArn": f"arn:{partition}:logs:{region}:{account}:*"},
        },
    }
