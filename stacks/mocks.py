"""Pulumi mocks that answer like a provider would: unique ids and ARNs per resource, a recording monitor."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

ACCOUNT_ID = "123456789012"
SECRET = "[secret]"
"""What a secret input is recorded as: the inventory never holds a secret's value."""

_SIG = rpc._special_sig_key
_SECRET_SIG = rpc._special_secret_sig
_RESOURCE_SIG = rpc._special_resource_sig
_ASSET_SIG = rpc._special_asset_sig
_ARCHIVE_SIG = rpc._special_archive_sig

# Physical id prefixes EC2 uses, so that ids look (and are matched) like the real ones.
_EC2_ID_PREFIX = {
    "aws:ec2/vpc:Vpc": "vpc",
    "aws:ec2/subnet:Subnet": "subnet",
    "aws:ec2/securityGroup:SecurityGroup": "sg",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "sg",
    "aws:ec2/routeTable:RouteTable": "rtb",
    "aws:ec2/networkAcl:NetworkAcl": "acl",
    "aws:ec2/internetGateway:InternetGateway": "igw",
    "aws:ec2/natGateway:NatGateway": "nat",
    "aws:ec2/eip:Eip": "eipalloc",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce",
    "aws:ec2/flowLog:FlowLog": "fl",
    "aws:ec2/launchTemplate:LaunchTemplate": "lt",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "rtbassoc",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "sgr",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "sgr",
}


def _digest(urn: str, n: int = 17) -> str:
    return hashlib.sha256(urn.encode()).hexdigest()[:n]


def normalize(value: Any) -> Any:
    """Mocks and protobuf turn every number into a float: whole numbers go back to int."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """A wire value (protobuf JSON) as plain data: secrets redacted, resource references as URNs."""
    if isinstance(value, dict):
        sig = value.get(_SIG)
        if sig == _SECRET_SIG:
            return SECRET
        if sig == _RESOURCE_SIG:
            return value.get("urn")
        if sig in (_ASSET_SIG, _ARCHIVE_SIG):
            return {k: v for k, v in value.items() if k in ("path", "uri", "hash")} or {"asset": True}
        return {k: _plain(v) for k, v in value.items() if v != rpc.UNKNOWN}
    if isinstance(value, list):
        return [_plain(v) for v in value if v != rpc.UNKNOWN]
    return normalize(value)


class ProviderLikeMocks(pulumi_mocks.Mocks):
    """Outputs a provider would compute: ids and ARNs that embed a hash of the resource's URN (so every value
    is unique and a reference can be matched to exactly one attribute), names for autonamed resources."""

    def __init__(self, region: str) -> None:
        self.region = region

    def outputs(self, urn: str, type_: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        state = dict(inputs)
        h = _digest(urn)
        pkg, module, _ = (type_.split(":") + ["", ""])[:3]
        if pkg == "vault":
            return self._vault(type_, name, h, state)
        if pkg != "aws":
            rid = f"{name}-{h[:8]}"
            state.setdefault("id", rid)
            return rid, state
        service = module.split("/")[0]
        kind = type_.rsplit(":", 1)[-1]
        if type_ in _EC2_ID_PREFIX:
            rid = f"{_EC2_ID_PREFIX[type_]}-{h}"
            arn = f"arn:aws:ec2:{self.region}:{ACCOUNT_ID}:{_kebab(kind)}/{rid}"
        elif type_ == "aws:kms/key:Key":
            rid = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{_digest(urn + 'k', 4)}-{_digest(urn + 'k', 16)[4:16]}"
            arn = f"arn:aws:kms:{self.region}:{ACCOUNT_ID}:key/{rid}"
            state["keyId"] = rid
        elif type_ in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"):
            rid = inputs.get("bucket") or f"{name}-{h[:12]}"
            arn = f"arn:aws:s3:::{rid}"
            state.update(
                bucket=rid,
                bucketDomainName=f"{rid}.s3.amazonaws.com",
                bucketRegionalDomainName=f"{rid}.s3.{self.region}.amazonaws.com",
            )
        elif service == "iam":
            rid = inputs.get("name") or f"{name}-{h[:7]}"
            arn = f"arn:aws:iam::{ACCOUNT_ID}:{_kebab(kind)}/{rid}"
            state.setdefault("name", rid)
            state.setdefault("uniqueId", f"AROA{h.upper()}")
        elif type_ == "aws:sns/topic:Topic":  # a topic's ARN names no resource type
            rid = inputs.get("name") or f"{name}-{h[:8]}"
            arn = f"arn:aws:sns:{self.region}:{ACCOUNT_ID}:{rid}"
            state.setdefault("name", rid)
        elif type_ == "aws:cloudwatch/logGroup:LogGroup":
            rid = inputs.get("name") or f"{name}-{h[:7]}"
            arn = f"arn:aws:logs:{self.region}:{ACCOUNT_ID}:log-group:{rid}"
            state.setdefault("name", rid)
        else:
            rid = inputs.get("name") or f"{name}-{h[:8]}"
            arn = f"arn:aws:{service}:{self.region}:{ACCOUNT_ID}:{_kebab(kind)}/{rid}"
            if "name" not in inputs:
                state["name"] = rid
        state.setdefault("arn", arn)
        state["id"] = rid
        state.setdefault("tagsAll", inputs.get("tags") or {})
        if type_ == "aws:ec2/vpc:Vpc":
            state.update(
                defaultSecurityGroupId=f"sg-{_digest(urn + 'dsg')}",
                defaultNetworkAclId=f"acl-{_digest(urn + 'dacl')}",
                mainRouteTableId=f"rtb-{_digest(urn + 'mrt')}",
                defaultRouteTableId=f"rtb-{_digest(urn + 'mrt')}",
                ownerId=ACCOUNT_ID,
            )
        if type_ == "aws:ec2/vpcEndpoint:VpcEndpoint":
            state.setdefault("prefixListId", f"pl-{h[:8]}")
            if inputs.get("vpcEndpointType") == "Interface":
                service = str(inputs.get("serviceName", "")).rsplit(".", 1)[-1]
                state.setdefault("dnsEntries", [{"dnsName": f"*.{rid}.{service}.{self.region}.vpce.amazonaws.com",
                                                 "hostedZoneId": "Z7HUB22UULQXV"}])
        if type_ == "aws:eks/cluster:Cluster":
            state.update(
                endpoint=f"https://{h.upper()[:32]}.gr7.{self.region}.eks.amazonaws.com",
                certificateAuthority={"data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="},
                identities=[{"oidcs": [{"issuer": f"https://oidc.eks.{self.region}.amazonaws.com/id/{h.upper()[:32]}"}]}],
                status="ACTIVE",
            )
            state["vpcConfig"] = {**(inputs.get("vpcConfig") or {}), "clusterSecurityGroupId": f"sg-{_digest(urn + 'csg')}"}
        if type_ == "aws:ecr/repository:Repository":
            state.update(registryId=ACCOUNT_ID, repositoryUrl=f"{ACCOUNT_ID}.dkr.ecr.{self.region}.amazonaws.com/{rid}")
        if type_ in ("aws:ecr/pullThroughCacheRule:PullThroughCacheRule",
                     "aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate",
                     "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration"):
            state.setdefault("registryId", ACCOUNT_ID)
        if type_ in ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer"):
            state.update(dnsName=f"{rid}-{h[:10]}.{self.region}.elb.amazonaws.com", zoneId="Z35SXDOTRQ7X7K",
                         arnSuffix=f"app/{rid}/{h[:16]}",
                         arn=f"arn:aws:elasticloadbalancing:{self.region}:{ACCOUNT_ID}:loadbalancer/app/{rid}/{h[:16]}")
        if type_ in ("aws:lb/targetGroup:TargetGroup", "aws:alb/targetGroup:TargetGroup"):
            state.update(arnSuffix=f"targetgroup/{rid}/{h[:16]}",
                         arn=f"arn:aws:elasticloadbalancing:{self.region}:{ACCOUNT_ID}:targetgroup/{rid}/{h[:16]}")
        if type_ == "aws:acm/certificate:Certificate":
            domain = inputs.get("domainName") or rid
            state.setdefault("domainValidationOptions", [{
                "domainName": domain, "resourceRecordName": f"_{h[:16]}.{domain}.", "resourceRecordType": "CNAME",
                "resourceRecordValue": f"_{_digest(urn + 'acm', 16)}.acm-validations.aws."}])
        if type_ == "aws:route53/record:Record":
            state.setdefault("fqdn", str(inputs.get("name") or rid).rstrip("."))
        if type_ == "aws:ec2/launchTemplate:LaunchTemplate":
            state.update(latestVersion=1, defaultVersion=1)
        return rid, state

    @staticmethod
    def _vault(type_: str, name: str, h: str, state: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Vault answers with the mount's accessor and the MFA method's id, which other resources refer to."""
        kind = type_.rsplit(":", 1)[-1]
        rid = state.get("path") or state.get("name") or f"{name}-{h[:8]}"
        if kind == "AuthBackend":
            state.setdefault("accessor", f"auth_{state.get('type', 'jwt')}_{h[:8]}")
        if type_ == "vault:identity/mfaTotp:MfaTotp":
            rid = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{_digest(name + 'm', 4)}-{_digest(name + 'm', 12)}"
            state.update(methodId=rid, type="totp")
        state.setdefault("id", rid)
        return rid, state

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return self.outputs(f"{args.typ}::{args.name}", args.typ, args.name, args.inputs)

    def call(self, args: pulumi_mocks.MockCallArgs) -> dict[str, Any]:
        tok, a = args.token, args.args
        if tok == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/hardstack-synth",
                "userId": "AIDAHARDSTACKSYNTH",
                "id": ACCOUNT_ID,
            }
        if tok == "aws:index/getRegion:getRegion":
            region = a.get("region") or a.get("name") or self.region
            return {"name": region, "region": region, "id": region, "endpoint": f"ec2.{region}.amazonaws.com"}
        if tok == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws", "reverseDnsPrefix": "com.amazonaws"}
        if tok == "aws:index/getAvailabilityZones:getAvailabilityZones":
            letters = "abcdef"
            return {
                "names": [f"{self.region}{c}" for c in letters],
                "zoneIds": [f"use1-az{i + 1}" for i in range(len(letters))],
                "id": self.region,
            }
        if tok == "aws:iam/getPolicyDocument:getPolicyDocument":
            doc = policy_document(a)
            return {"json": json.dumps(doc, indent=2), "minifiedJson": json.dumps(doc), "id": _digest(json.dumps(doc))}
        return dict(a)


def policy_document(args: dict[str, Any]) -> dict[str, Any]:
    """The JSON `aws.iam.get_policy_document` would return for these arguments."""
    statements = []
    for s in args.get("statements") or []:
        out: dict[str, Any] = {}
        if s.get("sid"):
            out["Sid"] = s["sid"]
        out["Effect"] = s.get("effect") or "Allow"
        for key, tf in (("actions", "Action"), ("notActions", "NotAction"), ("resources", "Resource"),
                        ("notResources", "NotResource")):
            if s.get(key):
                vals = s[key]
                out[tf] = vals[0] if len(vals) == 1 else vals
        for key, tf in (("principals", "Principal"), ("notPrincipals", "NotPrincipal")):
            if s.get(key):
                principal: dict[str, Any] = {}
                for p in s[key]:
                    ids = p.get("identifiers") or []
                    if p.get("type") == "*":
                        principal = "*"  # type: ignore[assignment]
                        break
                    principal[p["type"]] = ids[0] if len(ids) == 1 else ids
                out[tf] = principal
        if s.get("conditions"):
            cond: dict[str, dict[str, Any]] = {}
            for c in s["conditions"]:
                vals = c.get("values") or []
                cond.setdefault(c["test"], {})[c["variable"]] = vals[0] if len(vals) == 1 else vals
            out["Condition"] = cond
        statements.append(out)
    return {"Version": args.get("version") or "2012-10-17", "Statement": statements}


def _kebab(name: str) -> str:
    return "".join("-" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that records, per resource, its inputs as the engine receives them (secrets redacted)
    and the URNs each top-level input property was computed from."""

    def __init__(self, mocks: ProviderLikeMocks) -> None:
        super().__init__(mocks)
        self.records: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []
        self.transforms_of: dict[str, list[Any]] = {}

    def _transformed(self, request: Any, urn: str) -> Any:
        """Run Pulumi transforms as the engine does (the base mock monitor skips them): the resource's own,
        then each ancestor's from the nearest up, then the stack's. Returns the (possibly new) properties."""
        own = pulumi_mocks._resolve_callbacks(request.transforms)
        self.transforms_of[urn] = own
        chain = list(own)
        parent = request.parent or None
        while parent and parent in self.records:
            chain.extend(self.transforms_of.get(parent, []))
            parent = self.records[parent]["parent"]
        chain.extend(self._stack_transforms)
        if not chain:
            return request.object
        import inspect

        from pulumi import ResourceOptions
        from pulumi.resource import ResourceTransformArgs

        props = rpc.deserialize_properties(request.object)
        for transform in chain:
            result = transform(ResourceTransformArgs(bool(request.custom), request.type, request.name, props,
                                                     ResourceOptions()))
            if inspect.isawaitable(result):
                result = _sync_await(result)
            if result is not None:
                props = result.props
        return _sync_await(rpc.serialize_properties(props, {}))

    stack_urn: str | None = None

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """URNs as the engine makes them: children of the stack do not carry the stack's type."""
        return super().make_urn("" if parent == self.stack_urn else parent, type_, name)

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            self.stack_urn = urn
            return resource_pb2.RegisterResourceResponse(urn=urn)
        _ensure_event_loop()
        obj = self._transformed(request, urn)
        wire = json_format.MessageToDict(obj, preserving_proto_field_name=True)
        inputs = normalize(rpc.deserialize_properties(obj))
        deps = {
            prop: sorted(set(pd.urns))
            for prop, pd in request.propertyDependencies.items()
            if len(pd.urns)
        }
        if request.custom:
            rid, state = self.mocks.outputs(urn, request.type, request.name, inputs)  # type: ignore[attr-defined]
        else:
            rid, state = "", {}
        out = _sync_await(rpc.serialize_properties(state, {}))
        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, rid, state)
        self.records[urn] = {
            "urn": urn,
            "type": request.type,
            "name": request.name,
            "parent": request.parent or None,
            "custom": bool(request.custom),
            "inputs": _plain(wire),
            "deps": deps,
            "outputs": normalize(state),
        }
        self.order.append(urn)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=rid, object=out)
