"""`hardstack runbook`: a Markdown incident-response runbook written for one stack.

Every name the runbook gives is one the stack's program sets itself and the synthesized inventory records as a
literal input: the cluster, node groups, namespaces and NetworkPolicies, repositories, key aliases, Vault mounts,
roles and policies, load balancers, log groups, ClusterPolicies. What AWS assigns only at deploy time (bucket names,
key ids, role names, the account) is never copied from the synthesis, where it is made up: the runbook's commands
look it up from the stack's tags (`hardstack:stack`, `hardstack:component`), its key aliases and its Pod Identity
associations. A name the program did not set literally makes rendering fail rather than print a guess.

What the inventory cannot say (which tenant reads which bucket, the identity provider's client ids, the stack
config secrets) comes from the blueprint the stack was built from.

The template is rendered as scaffold's are (`stacks/scaffold.py`): undefined values are errors and every inserted
value must pass a filter for where it lands: `sh` (a bash word), `code` (a Markdown code span), `md` (prose),
`yaml` (a YAML scalar), `token` (a plain word, refused otherwise: for the few places inside a quoted string),
`anchor` (one of the runbook's own anchors); anything else is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import jinja2

from hardstack.blueprints.blueprint import Blueprint
from hardstack.blueprints.data import Purpose
from hardstack.blueprints.identity import Persona
from hardstack.blueprints.loader import LoadedBlueprint
from hardstack.errors import EXIT_NOT_VERIFIED, HardstackError, InvalidInput
from hardstack.modules.agents import namespace_of
from hardstack.modules.base import COMPONENT_TAG, STACK_TAG
from hardstack.modules.cluster import TENANT_LABEL
from hardstack.modules.registry import MIRROR_PREFIX
from hardstack.modules.runbook_sections import (
    BLOCK_A_COMPROMISED_IMAGE,
    QUARANTINE_A_TENANT,
    REVOKE_VAULT_LEASES,
    ROLL_BACK_A_MODEL,
    ROTATE_KEYS,
    RUNBOOK_SECTIONS,
    TRACE_A_POISONED_DATASET,
)

from .inventory import Inventory, Resource
from .scaffold import Quoted, UnquotedValue, checked_token, markdown_text, quoting_environment, yaml_string

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates" / "runbook"
TEMPLATE = "runbook.md.j2"

VAULT_OIDC_SECRET = "hardstack:oidcClientSecret"
"""The stack config secret holding Vault's OIDC client secret (`modules/vault.py` reads it)."""

DATASET_PURPOSES = (Purpose.training_data, Purpose.feature_store, Purpose.evaluation_data)
"""Buckets a model learns from: where a poisoned dataset starts."""

REVOKE_POLICY = "hardstack-revoke-older-sessions"
"""The inline policy that ends a role's sessions issued before a moment (AWS's own way to revoke them)."""

QUARANTINE_POLICY = "hardstack-quarantine"
"""The deny-all NetworkPolicy the runbook applies; not one of the stack's, so `pulumi up` leaves it in place."""

DIGEST_PLACEHOLDER = "sha256:DIGEST"
"""Where the block-image ClusterPolicy takes the digest (the runbook's command substitutes it)."""
NAME_PLACEHOLDER = "DIGEST12"
"""Where that policy's name takes the digest's first twelve hex digits."""


class RunbookError(HardstackError):
    """The inventory does not hold what the runbook needs in the form it needs it (a bug, not bad input)."""

    exit_code = EXIT_NOT_VERIFIED


# --- quoting ------------------------------------------------------------------------------------------------------

_SH_PLAIN = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def _defined(value: Any) -> Any:
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    return value


def _word_text(value: Any, filter_name: str) -> str:
    _defined(value)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"the {filter_name} filter takes a string or number, not {type(value).__name__}")
    return str(value)


def shell_word(value: Any) -> Quoted:
    """One bash word reading back as exactly `value`: plain words as themselves, anything else single-quoted, and
    text with line breaks or other control characters as `$'...'` with escapes (so no value spans two lines of a
    code block, where a line could close the block)."""
    text = _word_text(value, "sh")
    if "\x00" in text:
        raise ValueError(f"a shell word cannot hold a NUL character: {value!r}")
    if _SH_PLAIN.fullmatch(text):
        return Quoted(text)
    if all(ch.isprintable() for ch in text):
        return Quoted("'" + text.replace("'", "'\\''") + "'")
    out = []
    for ch in text:
        if ch in "\\'":
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return Quoted("$'" + "".join(out) + "'")


def code_span(value: Any) -> Quoted:
    """A Markdown code span showing `value` literally: a fence of more backticks than any run inside it, control
    characters shown as escapes (a line break would end the paragraph the span is in)."""
    text = _word_text(value, "code")
    if not text:
        raise ValueError("an empty value has no code span")
    text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    # CommonMark strips one space from each end of a span that begins and ends with one (and is not all spaces)
    edge = text[0] == "`" or text[-1] == "`" or (text[0] == " " and text[-1] == " " and text.strip() != "")
    pad = " " if edge else ""
    return Quoted(f"{fence}{pad}{text}{pad}{fence}")


def section_anchor(value: Any) -> Quoted:
    """One of the runbook's own anchors (a section's, or `before-you-start`)."""
    _defined(value)
    if value in RUNBOOK_SECTIONS or value == "before-you-start":
        return Quoted(value)
    raise ValueError(f"not a runbook anchor: {value!r}")


def _only_quoted(value: Any) -> Any:
    if isinstance(value, Quoted):
        return value
    raise UnquotedValue(f"a value reached the runbook template without a quoting filter (sh, code, md, yaml, token, "
                        f"anchor): {value!r}")


def environment() -> jinja2.Environment:
    """The runbook template's environment: undefined values are errors and every inserted value must be quoted."""
    # Markdown with bash and YAML blocks, each value quoted for its place by the filters below.
    env = quoting_environment(TEMPLATE_DIR, _only_quoted)
    env.filters.update(sh=shell_word, code=code_span, md=markdown_text, yaml=yaml_string, token=checked_token,
                       anchor=section_anchor)
    return env


# --- what the stack holds -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pool:
    """A GPU node group and the tenants it runs."""

    node_group: str
    max_size: int
    tenants: tuple[str, ...]


@dataclass(frozen=True)
class Workload:
    """A tenant or an agent: a namespace of its own, with its identity in AWS and in Vault."""

    kind: str  # "tenant" | "agent"
    name: str
    namespace: str
    allow_policies: tuple[str, ...]
    pools: tuple[Pool, ...]
    service_accounts: tuple[str, ...]
    deployments: tuple[tuple[str, str], ...]  # (deployment, its first container) the stack runs here
    vault_role: str | None
    vault_policy: str | None
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    repositories: tuple[str, ...]


@dataclass(frozen=True)
class Key:
    """A KMS key of the stack, by its alias."""

    alias: str
    description: str
    symmetric: bool


@dataclass(frozen=True)
class Bucket:
    """A bucket of the stack, found at run time by its tags; where its server access logs go."""

    component: str
    purpose: str
    access_logs: str | None  # the access-log bucket's component
    access_log_prefix: str | None


@dataclass(frozen=True)
class Endpoint:
    name: str
    tenant: str
    domain: str | None
    load_balancer: str
    waf_log_group: str | None
    service: str | None
    port: int | None
    client_secret_config: str | None
    client_id: str | None
    access_logs: str | None  # the bucket component the load balancer logs to
    access_log_prefix: str | None


@dataclass(frozen=True)
class Vault:
    humans_path: str
    humans_method: str
    admin_role: str | None
    user_claim: str
    client_id: str | None
    discovery_url: str | None
    kv_path: str | None
    aws_path: str | None
    aws_roles: tuple[str, ...]
    workload_path: str | None
    workload_method: str | None
    oidc_secret: str | None
    static_keys: bool  # the AWS secrets engine holds an access key of its own (else it uses Vault's identity)


@dataclass(frozen=True)
class Trail:
    """A CloudTrail trail of the stack (from the audit component when the stack has one)."""

    name: str | None
    component: str | None
    bucket: str | None  # component of the bucket it delivers to
    log_group: str | None


@dataclass(frozen=True)
class Signing:
    """The key that signs the stack's images and the admission policy that verifies with it (with a cluster)."""

    alias: str
    resource: str  # the key's resource name in the stack
    policy: str | None
    ignore_tlog: bool


@dataclass(frozen=True)
class Lineage:
    """What a dataset bucket reached: who trained on it, what they wrote, who serves that, and where."""

    dataset: Bucket
    trainers: tuple[Workload, ...]  # none: people train on it (the stack's persona roles read datasets by purpose)
    outputs: tuple[Bucket, ...]
    consumers: tuple[Workload, ...]
    endpoints: tuple[Endpoint, ...]
    repositories: tuple[str, ...]


@dataclass(frozen=True)
class Facts:
    stack: str
    blueprint: str
    description: str
    region: str
    cluster: str | None
    cluster_policies: tuple[str, ...]
    workloads: tuple[Workload, ...]
    pools: tuple[Pool, ...]
    repositories: tuple[str, ...]
    families: tuple[str, ...]
    cache_prefixes: tuple[str, ...]
    signing: Signing | None
    keys: tuple[Key, ...]
    buckets: tuple[Bucket, ...]
    endpoints: tuple[Endpoint, ...]
    vault: Vault | None
    jit_cluster_admin: str | None  # the Vault AWS role issuing the just-in-time cluster-admin credentials
    token_reviewer_secret: tuple[str, str] | None  # (namespace, name)
    trails: tuple[Trail, ...]
    lineage: tuple[Lineage, ...]
    config_secrets: tuple[str, ...]
    sections: tuple[str, ...] = field(default=())

    @property
    def tenants(self) -> tuple[Workload, ...]:
        return tuple(w for w in self.workloads if w.kind == "tenant")

    @property
    def agents(self) -> tuple[Workload, ...]:
        return tuple(w for w in self.workloads if w.kind == "agent")

    @property
    def named(self) -> list[str]:
        """What kinds of the stack's own names the runbook gives."""
        kinds = [("its cluster", bool(self.cluster)), ("GPU node groups", bool(self.pools)),
                 ("namespaces and NetworkPolicies", bool(self.cluster and self.workloads)),
                 ("repositories", bool(self.repositories)), ("key aliases", bool(self.keys)),
                 ("Vault mounts, roles and policies", self.vault is not None),
                 ("load balancers", bool(self.endpoints)), ("log groups", bool(self.trail_log_group or self.endpoints))]
        return [k for k, present in kinds if present]

    @property
    def tools(self) -> list[str]:
        """The command-line tools the runbook's commands use."""
        return (["the AWS CLI v2", "jq", "GNU date"] + (["kubectl"] if self.cluster else [])
                + (["the Vault CLI"] if self.vault else []) + (["cosign"] if ROLL_BACK_A_MODEL in self.sections else [])
                + (["Pulumi"] if self.config_secrets else []))

    @property
    def trail_log_group(self) -> str | None:
        """The log group a trail of the stack delivers to (where data events can be queried)."""
        return next((t.log_group for t in self.trails if t.log_group), None)

    @property
    def insights(self) -> bool:
        """Whether the runbook queries a log group (and defines its `insights` helper)."""
        return bool(self.trail_log_group) or any(e.waf_log_group for e in self.endpoints)


def literal(resource: Resource, *path: str | int) -> Any:
    """An input the program set itself: refused when it was computed from another resource's output (under
    synthesis such a value is the mocks' invention, not what the deployment will hold)."""
    value = resource.get(*path)
    if value is None:
        raise RunbookError(f"{resource.name} ({resource.type}) has no input {'.'.join(map(str, path))}")
    for ref in resource.references:
        if ref.path[: len(path)] == tuple(path) or tuple(path)[: len(ref.path)] == ref.path:
            raise RunbookError(f"{resource.name}: input {'.'.join(map(str, path))} is computed by another "
                               "resource; the runbook names only what the program sets")
    return value


def _tags(resource: Resource) -> dict[str, str]:
    tags = resource.inputs.get("tags")
    return tags if isinstance(tags, dict) else {}


def _parent_type(inventory: Inventory, resource: Resource) -> str | None:
    try:
        return inventory[resource.parent].type if resource.parent else None
    except KeyError:
        return None


def _referenced(resource: Resource, *path: str | int, type_token: str | None = None) -> str | None:
    """The URN of the resource (of `type_token`, when given) that the input at `path` was computed from."""
    found = [r.resource for r in resource.references if r.path == tuple(path)
             and (type_token is None or _urn_type(r.resource) == type_token)]
    return found[0] if found else None


def _urn_type(urn: str) -> str:
    """The resource type a URN names (`urn:pulumi:<stack>::<project>::<parent types$>type::name`)."""
    return urn.split("::")[2].split("$")[-1]


class _Reader:
    """Reads the facts out of an inventory and its blueprint."""

    def __init__(self, inventory: Inventory, bp: Blueprint) -> None:
        self.inv = inventory
        self.bp = bp

    def of(self, type_token: str) -> list[Resource]:
        return self.inv.of_type(type_token)

    def stack(self) -> str:
        stacks = {_tags(r)[STACK_TAG] for r in self.inv if STACK_TAG in _tags(r)}
        if len(stacks) != 1:
            raise RunbookError(f"the inventory's resources carry {len(stacks)} different {STACK_TAG} tags; "
                               "expected exactly one")
        return stacks.pop()

    def cluster(self) -> str | None:
        clusters = self.of("aws:eks/cluster:Cluster")
        if len(clusters) > 1:
            raise RunbookError(f"the runbook describes a stack of at most one EKS cluster; the inventory holds "
                               f"{len(clusters)}")
        return literal(clusters[0], "name") if clusters else None

    def pools(self) -> list[Pool]:
        found = []
        for group in self.of("aws:eks/nodeGroup:NodeGroup"):
            if _parent_type(self.inv, group) != "hardstack:gpu:GpuNodePool":
                continue
            tenants = tuple(_tags(group).get("hardstack:tenants", "").split())
            found.append(Pool(literal(group, "nodeGroupName"), literal(group, "scalingConfig", "maxSize"), tenants))
        return sorted(found, key=lambda p: p.node_group)

    def buckets(self) -> list[Bucket]:
        logging = {}
        for log in self.of("aws:s3/bucketLogging:BucketLogging"):
            source, target = _referenced(log, "bucket"), _referenced(log, "targetBucket")
            if source and target:
                logging[source] = (self._component(self.inv[target]), literal(log, "targetPrefix"))
        found = []
        for bucket in self.of("aws:s3/bucket:Bucket"):
            target, prefix = logging.get(bucket.urn, (None, None))
            found.append(Bucket(self._component(bucket), _tags(bucket).get("hardstack:purpose", ""), target, prefix))
        components = [b.component for b in found]
        if len(set(components)) != len(components):
            raise RunbookError(f"buckets share a {COMPONENT_TAG} tag: {sorted(components)}; the runbook finds each "
                               "bucket by its tags")
        return sorted(found, key=lambda b: b.component)

    @staticmethod
    def _component(resource: Resource) -> str:
        component = _tags(resource).get(COMPONENT_TAG)
        if not component:
            raise RunbookError(f"{resource.name} ({resource.type}) has no {COMPONENT_TAG} tag")
        return component

    def keys(self) -> list[Key]:
        aliases: dict[str, list[str]] = {}
        for alias in self.of("aws:kms/alias:Alias"):
            key = _referenced(alias, "targetKeyId")
            if key:
                aliases.setdefault(key, []).append(literal(alias, "name"))
        found = []
        for key in self.of("aws:kms/key:Key"):
            names = sorted(aliases.get(key.urn, []))
            if not names:
                raise RunbookError(f"the KMS key {key.name} has no alias; the runbook names keys by their aliases")
            symmetric = key.get("keyUsage", default="ENCRYPT_DECRYPT") == "ENCRYPT_DECRYPT" and key.get(
                "customerMasterKeySpec", default="SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT"
            found.append(Key(names[0], str(key.get("description", default="")), symmetric))
        return sorted(found, key=lambda k: k.alias)

    def repositories(self) -> tuple[list[str], list[str], list[str]]:
        """(every repository, the image families' repositories, pull-through cache prefixes)."""
        names = sorted(literal(r, "name") for r in self.of("aws:ecr/repository:Repository"))
        families = [n for n in names if f"/{MIRROR_PREFIX}/" not in n]
        caches = sorted(literal(r, "ecrRepositoryPrefix")
                        for r in self.of("aws:ecr/pullThroughCacheRule:PullThroughCacheRule"))
        return names, families, caches

    def cluster_policies(self) -> list[Resource]:
        return sorted(self.of("kubernetes:kyverno.io/v1:ClusterPolicy"), key=lambda r: literal(r, "metadata", "name"))

    def signing(self) -> Signing | None:
        """The signing key, found through the admission policy that verifies with it; without a cluster, the
        stack's one signing key."""
        aliases = {_referenced(a, "targetKeyId"): literal(a, "name") for a in self.of("aws:kms/alias:Alias")}
        for policy in self.cluster_policies():
            for i, rule in enumerate(policy.get("spec", "rules", default=[]) or []):
                for j, verify in enumerate(rule.get("verifyImages") or []):
                    for k, attestor in enumerate(verify.get("attestors") or []):
                        for m, entry in enumerate(attestor.get("entries") or []):
                            path = ("spec", "rules", i, "verifyImages", j, "attestors", k, "entries", m, "keys", "kms")
                            key = _referenced(policy, *path, type_token="aws:kms/key:Key")
                            if not key:
                                continue
                            if key not in aliases:
                                raise RunbookError("the image signing key has no alias")
                            keys = entry.get("keys") or {}
                            return Signing(aliases[key], self.inv[key].name, literal(policy, "metadata", "name"),
                                           bool((keys.get("rekor") or {}).get("ignoreTlog")))
        signers = [k for k in self.of("aws:kms/key:Key") if k.get("keyUsage") == "SIGN_VERIFY" and k.urn in aliases]
        if len(signers) == 1:
            return Signing(aliases[signers[0].urn], signers[0].name, None, False)
        return None

    def workloads(self, pools: list[Pool], families: list[str], stack_prefix: str | None) -> list[Workload]:
        bp = self.bp
        namespaces = {}
        for ns in self.of("kubernetes:core/v1:Namespace"):
            namespaces[literal(ns, "metadata", "name")] = ns
        policies: dict[str, list[Resource]] = {}
        for policy in self.of("kubernetes:networking.k8s.io/v1:NetworkPolicy"):
            policies.setdefault(literal(policy, "metadata", "namespace"), []).append(policy)
        identities: dict[str, list[str]] = {}
        for assoc in self.of("aws:eks/podIdentityAssociation:PodIdentityAssociation"):
            identities.setdefault(literal(assoc, "namespace"), []).append(literal(assoc, "serviceAccount"))
        deployments: dict[str, list[tuple[str, str]]] = {}
        for dep in self.of("kubernetes:apps/v1:Deployment"):
            containers = dep.get("spec", "template", "spec", "containers", default=[]) or []
            deployments.setdefault(literal(dep, "metadata", "namespace"), []).append(
                (literal(dep, "metadata", "name"), containers[0]["name"] if containers else ""))
        vault_roles = {literal(r, "roleName"): r for t in ("vault:kubernetes/authBackendRole:AuthBackendRole",
                                                            "vault:approle/authBackendRole:AuthBackendRole")
                       for r in self.of(t)}
        vault_policies = {literal(p, "name") for p in self.of("vault:index/policy:Policy")}

        def vault_of(key: str) -> tuple[str | None, str | None]:
            role = vault_roles.get(key)
            if role is None:
                return None, None
            named = [p for p in role.get("tokenPolicies", default=[]) or [] if p in vault_policies]
            return key, (named[0] if named else None)

        def allows(ns: str) -> tuple[str, ...]:
            return tuple(sorted(literal(p, "metadata", "name") for p in policies.get(ns, [])
                                if p.get("spec", "ingress") or p.get("spec", "egress")))

        found = []
        tenants = bp.compute.tenants if bp.compute else []
        for tenant in tenants:
            ns = namespaces.get(tenant.name)
            if ns is None or (ns.get("metadata", "labels", default={}) or {}).get(TENANT_LABEL) != tenant.name:
                raise RunbookError(f"tenant {tenant.name!r} has no namespace labelled {TENANT_LABEL} in the inventory")
            role, policy = vault_of(f"workload-{tenant.name}")
            found.append(Workload(
                "tenant", tenant.name, tenant.name, allows(tenant.name),
                tuple(p for p in pools if tenant.name in p.tenants), tuple(sorted(identities.get(tenant.name, []))),
                tuple(sorted(deployments.get(tenant.name, []))), role, policy, tuple(tenant.reads),
                tuple(tenant.writes), tuple(families)))
        for agent in bp.agents:
            name = namespace_of(agent.name)
            if name not in namespaces:
                raise RunbookError(f"agent {agent.name!r} has no namespace {name!r} in the inventory")
            role, policy = vault_of(f"agent-{agent.name}")
            family = agent.image.split("@", 1)[0]
            repository = f"{stack_prefix}/{family}" if stack_prefix else None
            found.append(Workload(
                "agent", agent.name, name, allows(name), (), tuple(sorted(identities.get(name, []))),
                tuple(sorted(deployments.get(name, []))), role, policy,
                tuple(r for r in agent.reads if not r.startswith("secret:")), (),
                (repository,) if repository in families else ()))
        return found

    def endpoints(self, buckets: list[Bucket]) -> list[Endpoint]:
        found = []
        specs = {e.name: e for e in self.bp.endpoints}
        for component in self.of("hardstack:endpoint:WafEndpoint"):
            children = self.inv.children(component.urn)
            by_type: dict[str, list[Resource]] = {}
            for child in children:
                by_type.setdefault(child.type, []).append(child)
            tags = next((_tags(c) for c in children if _tags(c).get("hardstack:endpoint")), {})
            name = tags.get("hardstack:endpoint")
            if not name or name not in specs:
                raise RunbookError(f"the endpoint component {component.name} names no declared endpoint")
            spec = specs[name]
            lbs = by_type.get("aws:lb/loadBalancer:LoadBalancer", [])
            if len(lbs) != 1:
                raise RunbookError(f"endpoint {name!r} has {len(lbs)} load balancers")
            lb = lbs[0]
            records = [r for r in by_type.get("aws:route53/record:Record", []) if r.get("type") in ("A", "AAAA")]
            groups = [literal(g, "name") for g in by_type.get("aws:cloudwatch/logGroup:LogGroup", [])
                      if str(g.get("name", default="")).startswith("aws-waf-logs-")]
            bindings = by_type.get("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding", [])
            log_bucket = _referenced(lb, "accessLogs", "bucket")
            oidc = spec.auth.kind == "oidc"
            found.append(Endpoint(
                name, tags.get("hardstack:tenant", spec.tenant),
                literal(records[0], "name") if records else None,
                literal(lb, "name"), groups[0] if groups else None,
                literal(bindings[0], "spec", "serviceRef", "name") if bindings else None,
                literal(bindings[0], "spec", "serviceRef", "port") if bindings else None,
                spec.client_secret_config, getattr(spec.auth, "client_id", None) if oidc else None,
                self._component(self.inv[log_bucket]) if log_bucket else None,
                literal(lb, "accessLogs", "prefix") if log_bucket else None,
            ))
        return sorted(found, key=lambda e: e.name)

    def vault(self) -> Vault | None:
        humans = self.of("vault:jwt/authBackend:AuthBackend")
        if not humans:
            return None
        if len(humans) > 1:
            raise RunbookError("the runbook describes stacks with one human sign-in method in Vault")
        human = humans[0]
        spec = self.bp.identity.vault
        assert spec is not None
        admin = [literal(r, "roleName") for r in self.of("vault:jwt/authBackendRole:AuthBackendRole")
                 if literal(r, "roleName") == Persona.platform_admin.value]
        kv = [literal(m, "path") for m in self.of("vault:index/mount:Mount") if m.get("type") == "kv"]
        engines = self.of("vault:aws/secretBackend:SecretBackend")
        roles = sorted(literal(r, "name") for r in self.of("vault:aws/secretBackendRole:SecretBackendRole"))
        workloads = self.of("vault:index/authBackend:AuthBackend")
        method = literal(human, "type")
        has_secret = method == "oidc" and human.get("oidcClientSecret") is not None
        return Vault(
            literal(human, "path"), method, admin[0] if admin else None, spec.humans.user_claim,
            spec.humans.client_id if method == "oidc" else None,
            str(spec.humans.discovery_url) if spec.humans.discovery_url else None,
            kv[0] if kv else None, literal(engines[0], "path") if engines else None, tuple(roles),
            literal(workloads[0], "path") if workloads else None,
            literal(workloads[0], "type") if workloads else None,
            VAULT_OIDC_SECRET if has_secret else None,
            bool(engines and engines[0].get("accessKey")),
        )

    def token_reviewer(self) -> tuple[str, str] | None:
        for secret in self.of("kubernetes:core/v1:Secret"):
            if secret.get("type") == "kubernetes.io/service-account-token" and _parent_type(
                    self.inv, secret) == "hardstack:vault:VaultJitAccess":
                return literal(secret, "metadata", "namespace"), literal(secret, "metadata", "name")
        return None

    def trails(self) -> list[Trail]:
        found = []
        for trail in self.of("aws:cloudtrail/trail:Trail"):
            name = trail.get("name")
            if name is not None and _referenced(trail, "name"):
                name = None
            bucket = _referenced(trail, "s3BucketName")
            group_urn = _referenced(trail, "cloudWatchLogsGroupArn")
            group = None
            if group_urn:
                candidate = self.inv[group_urn]
                if candidate.get("name") is not None and not _referenced(candidate, "name"):
                    group = literal(candidate, "name")
            bucket_component = _tags(self.inv[bucket]).get(COMPONENT_TAG) if bucket else None
            found.append(Trail(name, _tags(trail).get(COMPONENT_TAG), bucket_component, group))
        return sorted(found, key=lambda t: (t.name or "", t.component or ""))


def _lineage(buckets: list[Bucket], workloads: list[Workload], endpoints: list[Endpoint]) -> list[Lineage]:
    by_name = {b.component: b for b in buckets}
    datasets = [b for b in buckets if b.purpose in {p.value for p in DATASET_PURPOSES}]
    found = []
    for dataset in datasets:
        trainers = [w for w in workloads if dataset.component in w.reads]
        outputs = sorted({o for w in trainers for o in w.writes if o in by_name}) if trainers else sorted(
            b.component for b in buckets if b.purpose == Purpose.model_artifacts.value)
        consumers = [w for w in workloads if w not in trainers and set(w.reads) & set(outputs)]
        reached = {w.name for w in trainers + consumers if w.kind == "tenant"}
        served = [e for e in endpoints if e.tenant in reached]
        repositories = sorted({r for w in trainers + consumers for r in w.repositories})
        found.append(Lineage(dataset, tuple(trainers), tuple(by_name[o] for o in outputs), tuple(consumers),
                             tuple(served), tuple(repositories)))
    return found


def facts(inventory: Inventory, bp: Blueprint) -> Facts:
    """What the runbook names, read from the inventory (names) and the blueprint (who reads and writes what)."""
    reader = _Reader(inventory, bp)
    stack = reader.stack()
    cluster = reader.cluster()
    pools = reader.pools()
    repositories, families, caches = reader.repositories()
    prefixes = {n.split("/", 1)[0] for n in families}
    workloads = reader.workloads(pools, families, prefixes.pop() if len(prefixes) == 1 else None)
    buckets = reader.buckets()
    endpoints = reader.endpoints(buckets)
    vault = reader.vault()
    jit = None
    if vault is not None and vault.aws_path and cluster and "cluster-admin" in vault.aws_roles:
        jit = "cluster-admin"
    secrets = ([vault.oidc_secret] if vault and vault.oidc_secret else []) + [
        f"hardstack:{e.client_secret_config}" for e in endpoints if e.client_secret_config]
    signing = reader.signing()
    found = Facts(
        stack=stack, blueprint=bp.name, description=bp.description, region=bp.region, cluster=cluster,
        cluster_policies=tuple(literal(p, "metadata", "name") for p in reader.cluster_policies()),
        workloads=tuple(workloads), pools=tuple(pools), repositories=tuple(repositories), families=tuple(families),
        cache_prefixes=tuple(caches), signing=signing, keys=tuple(reader.keys()), buckets=tuple(buckets),
        endpoints=tuple(endpoints), vault=vault, jit_cluster_admin=jit, token_reviewer_secret=reader.token_reviewer(),
        trails=tuple(reader.trails()), lineage=tuple(_lineage(buckets, workloads, endpoints)),
        config_secrets=tuple(secrets),
    )
    return Facts(**{**found.__dict__, "sections": tuple(sections_of(found))})


def sections_of(f: Facts) -> list[str]:
    """The sections a stack gets, in the runbook's order: each only where the stack has something it acts on."""
    present = {
        QUARANTINE_A_TENANT: bool(f.cluster and f.workloads),
        BLOCK_A_COMPROMISED_IMAGE: bool(f.repositories),
        REVOKE_VAULT_LEASES: f.vault is not None,
        ROLL_BACK_A_MODEL: bool(f.families and f.signing),
        ROTATE_KEYS: bool(f.keys or f.config_secrets),
        TRACE_A_POISONED_DATASET: bool(f.lineage),
    }
    return [anchor for anchor in RUNBOOK_SECTIONS if present[anchor]]


def render(inventory: Inventory, bp: Blueprint) -> str:
    """The runbook's Markdown."""
    found = facts(inventory, bp)
    env = environment()
    return env.get_template(TEMPLATE).render(
        f=found, titles=RUNBOOK_SECTIONS, QUARANTINE_POLICY=QUARANTINE_POLICY, REVOKE_POLICY=REVOKE_POLICY,
        DIGEST_PLACEHOLDER=DIGEST_PLACEHOLDER, NAME_PLACEHOLDER=NAME_PLACEHOLDER,
        STACK_TAG=STACK_TAG, COMPONENT_TAG=COMPONENT_TAG, **{a.upper().replace("-", "_"): a for a in RUNBOOK_SECTIONS})


# --- targets ------------------------------------------------------------------------------------------------------

def blueprint_of(loaded: Iterable[LoadedBlueprint], target: str) -> Blueprint:
    """The one blueprint a target was built from."""
    found = list(loaded)
    if len(found) != 1:
        raise InvalidInput(
            "the runbook is written from the blueprint a stack is built from; this program declares "
            f"{len(found)} stack files",
            received=target,
            allowed="a shipped blueprint, a blueprint or stack file, or a Pulumi project whose program loads one "
            "stack file and calls `declare_exceptions` with it (as `hardstack new` generates)",
        )
    return found[0].blueprint


def runbook_for(target: str, stack: str | None = None) -> str:
    """Synthesize `target` and write its runbook (nothing is written to disk)."""
    from .targets import synthesize

    synthesized = synthesize(target, stack)
    return render(synthesized.inventory, blueprint_of(synthesized.blueprints, target))


def check_out(path: Path, force: bool) -> None:
    """Refuse an output path that is a directory, or an existing file without `force`."""
    path = Path(path)
    if path.is_dir():
        raise InvalidInput("is a directory", file=str(path), allowed="a file path")
    if path.exists() and not force:
        raise InvalidInput("exists; refusing to overwrite it", file=str(path), allowed="a new file, or --force")


def write_runbook(path: Path, text: str, *, force: bool = False) -> None:
    """Write the runbook to `path` in one step (a temporary file, then a rename): a failure leaves no partial file,
    and an existing file is replaced only with `force`."""
    from .outdir import write_file

    check_out(path, force)
    write_file(Path(path), text)
