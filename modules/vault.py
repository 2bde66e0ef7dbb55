"""Vault (or OpenBao) just-in-time access: people sign in through the identity provider plus TOTP, get a
policy per persona and AWS credentials that expire; workloads authenticate as themselves; everything audited."""

from __future__ import annotations

import base64
import ipaddress
import json
from typing import Any, Sequence
from urllib.parse import urlparse

import pulumi
import pulumi_kubernetes as k8s
import pulumi_vault as vault

from hardstack.blueprints.compute import TenantSpec
from hardstack.blueprints.identity import MAX_TTL_SECONDS, IdentitySpec, Persona, VaultSpec

from .base import HardenedComponent, deploy_secret
from .cluster import EksCluster
from .identity import JustInTimeRoles, tenant_group
from .tenancy import TENANT_SERVICE_ACCOUNT

Rules = dict[str, list[str]]
"""An ACL policy as data: path → capabilities."""

READ = ["read"]
ISSUE = ["read", "update"]
OWN = ["create", "read", "update", "delete"]
BROWSE = ["list", "read"]
USER = "{{identity.entity.aliases.%s.name}}"
"""Identity templating: the signed-in person's name at the human auth method (their `user_claim`)."""

WORKLOAD_AUDIENCE = "vault"
REVIEWER = "vault-token-reviewer"


def persona_rules(prefix: str, tenants: Sequence[str], accessor: str, jit: bool) -> dict[str, Rules]:
    """Each persona's (and each tenant's workload's) ACL policy: named paths under the stack's mounts only,
    never `*` alone, never `sudo`; per-person paths through identity templating."""
    kv, creds, me = f"{prefix}/kv", f"{prefix}/aws/creds", USER % accessor
    rules: dict[str, Rules] = {
        Persona.platform_admin.value: {
            **({f"{creds}/cluster-admin": ISSUE} if jit else {}),
            "sys/leases/lookup": ["update"],
            "sys/leases/revoke": ["update"],
        },
        Persona.inference_client.value: {f"{kv}/data/clients/{me}/*": READ},
    }
    for t in tenants:
        rules[f"{Persona.data_scientist.value}-{t}"] = {
            **({f"{creds}/training-{t}": ISSUE} if jit else {}),
            f"{kv}/data/tenants/{t}/datasets/*": READ,
            f"{kv}/metadata/tenants/{t}/datasets/*": BROWSE,
            f"{kv}/data/users/{me}/*": OWN,
            f"{kv}/metadata/users/{me}/*": BROWSE + ["delete"],
        }
        rules[f"{Persona.mlops_engineer.value}-{t}"] = {
            f"{kv}/data/tenants/{t}/serving/*": OWN,
            f"{kv}/metadata/tenants/{t}/serving/*": BROWSE,
        }
    return rules


def hcl(rules: Rules) -> str:
    """Rules as HCL; paths and capabilities are JSON-quoted, so no value can break out of its string."""
    return "".join(
        f"path {json.dumps(path)} {{\n  capabilities = {json.dumps(sorted(caps))}\n}}\n"
        for path, caps in sorted(rules.items())
    )


def audit_block(path: str, options: dict[str, str]) -> str:
    """The same audit device as server configuration: OpenBao (and Vault with API audit creation disabled) only
    enables audit devices declared in its config file."""
    body = "".join(f"    {k} = {json.dumps(v)}\n" for k, v in sorted(options.items()))
    return f"audit \"file\" {json.dumps(path)} {{\n  options {{\n{body}  }}\n}}\n"


def check_address(address: str | None) -> None:
    """The stack's `vault:address` must be HTTPS (plain HTTP only to this machine, for a local dev server)."""
    if not address:
        return
    url = urlparse(address)
    host = url.hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if url.scheme != "https" and not (url.scheme == "http" and loopback):
        raise ValueError(f"stack config vault:address is {address!r}; allowed: an https:// URL "
                         "(http:// only to 127.0.0.1 or localhost)")


class VaultJitAccess(HardenedComponent):
    """The stack's Vault configuration: a file audit device (values HMAC'd), human sign-in through OIDC/JWT with
    TOTP login MFA enforced, one role and ACL policy per persona (tenant personas per tenant), workload auth per
    tenant, a KV v2 mount, and an AWS secrets engine issuing assumed-role credentials for the just-in-time roles
    (15 minutes by default, one hour at most). Every TTL is bounded; no token or secret is in the program."""

    TYPE = "hardstack:vault:VaultJitAccess"

    def __init__(
        self,
        name: str,
        spec: VaultSpec,
        identity: IdentitySpec,
        *,
        region: pulumi.Input[str],
        tenants: Sequence[TenantSpec] = (),
        jit: JustInTimeRoles | None = None,
        cluster: EksCluster | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, opts=opts)
        check_address(pulumi.Config("vault").get("address"))
        stack = pulumi.get_stack()
        prefix = spec.mount_prefix or stack
        dashed = prefix.replace("/", "-")
        child = self.child_opts()
        humans = spec.humans
        self.prefix = prefix
        self.spec = spec

        audit_options = {"file_path": spec.audit_file, "log_raw": "false", "hmac_accessor": "true", "format": "json"}
        self.audit = vault.Audit(f"{name}-audit", type="file", path=f"{dashed}-file", options=audit_options, opts=child)
        self.audit_server_config = audit_block(f"{dashed}-file", audit_options)
        """For servers that refuse audit devices through the API (OpenBao): put this in their config file."""
        ttl = {"default_lease_ttl": f"{humans.token_ttl_seconds}s", "max_lease_ttl": f"{humans.token_max_ttl_seconds}s",
               "token_type": "default-service"}
        secret = deploy_secret("oidcClientSecret") if humans.method == "oidc" else None
        self.human_auth = vault.jwt.AuthBackend(
            f"{name}-humans",
            path=f"{prefix}/humans",
            type=humans.method,
            description=f"{stack}: people, through the identity provider, with TOTP",
            oidc_discovery_url=str(humans.discovery_url) if humans.discovery_url else None,
            oidc_client_id=humans.client_id,
            oidc_client_secret=secret,
            jwt_validation_pubkeys=list(humans.validation_public_keys) or None,
            bound_issuer=str(humans.discovery_url).rstrip("/") if humans.discovery_url else None,
            tune={**ttl, "listing_visibility": "unauth" if humans.method == "oidc" else "hidden"},
            opts=child,
        )
        self.totp = vault.identity.MfaTotp(
            f"{name}-totp",
            issuer=spec.totp_issuer or stack,
            algorithm="SHA1",  # what every authenticator app computes; HMAC-SHA1 is sound for TOTP
            digits=6,
            period=30,
            key_size=20,
            skew=1,
            max_validation_attempts=5,
            opts=child,
        )
        self.mfa = vault.identity.MfaLoginEnforcement(
            f"{name}-humans-mfa",
            name=f"{dashed}-humans",
            mfa_method_ids=[self.totp.method_id],
            auth_method_accessors=[self.human_auth.accessor],
            opts=child,
        )
        self.kv = vault.Mount(
            f"{name}-kv",
            path=f"{prefix}/kv",
            type="kv",
            options={"version": "2"},
            description=f"{stack}: per-person, per-tenant and client secrets",
            default_lease_ttl_seconds=spec.workload_token_ttl_seconds,
            max_lease_ttl_seconds=MAX_TTL_SECONDS,
            opts=child,
        )
        tenant_names = [t.name for t in tenants]
        rules = self.human_auth.accessor.apply(lambda acc: persona_rules(prefix, tenant_names, acc, jit is not None))
        policy_names = persona_rules(prefix, tenant_names, "x", jit is not None).keys()
        self.policies = {
            key: vault.Policy(f"{name}-{key}", name=f"{dashed}-{key}", policy=rules.apply(lambda r, k=key: hcl(r[k])),
                              opts=child)
            for key in policy_names
        }
        self.human_roles: dict[str, vault.jwt.AuthBackendRole] = {}
        groups = {p: identity.groups.get(p, f"{stack}:{p}") for p in ("platform-admin", "inference-client")}
        wanted = [(p, g) for p, g in groups.items()]
        for t in tenants:
            wanted += [(f"{p.value}-{t.name}", tenant_group(t, p)) for p in (Persona.data_scientist, Persona.mlops_engineer)]
        for key, group in wanted:
            self.human_roles[key] = vault.jwt.AuthBackendRole(
                f"{name}-{key}-login",
                backend=self.human_auth.path,
                role_name=key,
                role_type=humans.method,
                user_claim=humans.user_claim,
                groups_claim=humans.groups_claim,
                bound_audiences=humans.audiences,
                bound_claims={humans.groups_claim: group},
                allowed_redirect_uris=[str(u) for u in humans.redirect_uris] if humans.method == "oidc" else None,
                oidc_scopes=["openid", "email", "profile"] if humans.method == "oidc" else None,
                token_policies=[self.policies[key].name],
                token_ttl=humans.token_ttl_seconds,
                token_max_ttl=humans.token_max_ttl_seconds,
                token_explicit_max_ttl=humans.token_max_ttl_seconds,
                token_type="service",
                opts=child,
            )
        self._workload_auth(name, spec, cluster, prefix)
        for t in tenants:
            self.workload_access(f"workload-{t.name}", namespace=t.name, service_account=TENANT_SERVICE_ACCOUNT,
                                 rules={f"{prefix}/kv/data/tenants/{t.name}/workload/*": READ})
        self.aws = None
        self.credential_roles: dict[str, vault.aws.SecretBackendRole] = {}
        if jit is not None:
            self.aws = vault.aws.SecretBackend(
                f"{name}-aws",
                path=f"{prefix}/aws",
                region=region,
                description=f"{stack}: short-lived credentials for the just-in-time roles (Vault's own identity)",
                default_lease_ttl_seconds=spec.credential_ttl_seconds,
                max_lease_ttl_seconds=spec.credential_max_ttl_seconds,
                opts=child,
            )
            for role_name, role in jit.roles.items():
                self.credential_roles[role_name] = vault.aws.SecretBackendRole(
                    f"{name}-aws-{role_name}",
                    backend=self.aws.path,
                    name=role_name,
                    credential_type="assumed_role",
                    role_arns=[role.arn],
                    default_sts_ttl=spec.credential_ttl_seconds,
                    max_sts_ttl=spec.credential_max_ttl_seconds,
                    opts=child,
                )
        self.register_outputs({"human_auth_path": self.human_auth.path, "kv_path": self.kv.path,
                               "audit_server_config": self.audit_server_config})

    def _workload_auth(self, name: str, spec: VaultSpec, cluster: EksCluster | None, prefix: str) -> None:
        child = self.child_opts()
        self.workload_auth = vault.AuthBackend(
            f"{name}-workloads",
            type=spec.workload_auth,
            path=f"{prefix}/{spec.workload_auth}",
            description=f"{pulumi.get_stack()}: workloads",
            tune={"default_lease_ttl": f"{spec.workload_token_ttl_seconds}s", "max_lease_ttl": f"{MAX_TTL_SECONDS}s",
                  "token_type": "default-service"},
            opts=child,
        )
        self.workload_roles: dict[str, pulumi.CustomResource] = {}
        if spec.workload_auth == "kubernetes":
            assert cluster is not None, "kubernetes auth needs the cluster"
            vault.kubernetes.AuthBackendConfig(
                f"{name}-kubernetes-config",
                backend=self.workload_auth.path,
                kubernetes_host=cluster.cluster.endpoint,
                kubernetes_ca_cert=cluster.cluster.certificate_authority.apply(
                    lambda ca: base64.b64decode(ca["data"]).decode()),
                token_reviewer_jwt=self._token_reviewer(name, cluster),
                disable_local_ca_jwt=True,
                opts=child,
            )

    def _token_reviewer(self, name: str, cluster: EksCluster) -> pulumi.Output[str]:
        """The identity Vault checks workloads' tokens with (TokenReview): a service account allowed to do only
        that (`system:auth-delegator`); workloads' own service accounts need no such right."""
        o = pulumi.ResourceOptions(parent=self, provider=cluster.provider)
        meta = {"name": REVIEWER, "namespace": "kube-system", "labels": {"app.kubernetes.io/managed-by": "hardstack"}}
        account = k8s.core.v1.ServiceAccount(f"{name}-token-reviewer", metadata=meta,
                                             automount_service_account_token=False, opts=o)
        token = k8s.core.v1.Secret(
            f"{name}-token-reviewer-token",
            metadata={**meta, "annotations": {"kubernetes.io/service-account.name": REVIEWER}},
            type="kubernetes.io/service-account-token",
            opts=pulumi.ResourceOptions(parent=self, provider=cluster.provider, depends_on=[account]),
        )
        k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-token-reviewer-binding",
            metadata={"name": f"hardstack-{REVIEWER}", "labels": meta["labels"]},
            role_ref={"api_group": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"},
            subjects=[{"kind": "ServiceAccount", "name": REVIEWER, "namespace": "kube-system"}],
            opts=o,
        )
        return pulumi.Output.secret(token.data.apply(
            lambda d: base64.b64decode(d["token"]).decode() if d and d.get("token") else None))

    def workload_access(self, key: str, *, namespace: str, service_account: str, rules: Rules) -> vault.Policy:
        """An ACL policy of exactly `rules` and the login role through which one service account in one namespace
        (or, with AppRole, a single-use secret id) gets it, with tokens of bounded life."""
        child = self.child_opts()
        policy = vault.Policy(f"{self.component_name}-{key}", name=f"{self.prefix.replace('/', '-')}-{key}",
                              policy=hcl(rules), opts=child)
        self.policies[key] = policy
        token: dict[str, Any] = {"token_policies": [policy.name], "token_ttl": self.spec.workload_token_ttl_seconds,
                                 "token_max_ttl": MAX_TTL_SECONDS, "token_explicit_max_ttl": MAX_TTL_SECONDS,
                                 "token_type": "service"}
        if self.spec.workload_auth == "kubernetes":
            self.workload_roles[key] = vault.kubernetes.AuthBackendRole(
                f"{self.component_name}-{key}", backend=self.workload_auth.path, role_name=key,
                bound_service_account_names=[service_account], bound_service_account_namespaces=[namespace],
                audience=WORKLOAD_AUDIENCE, opts=child, **token)
        else:
            self.workload_roles[key] = vault.approle.AuthBackendRole(
                f"{self.component_name}-{key}", backend=self.workload_auth.path, role_name=key, bind_secret_id=True,
                secret_id_num_uses=1, secret_id_ttl=600, opts=child, **token)
        return policy
