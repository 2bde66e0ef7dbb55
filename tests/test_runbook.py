"""`hardstack runbook`: the incident-response runbook names only what the stack has, its commands and manifests
are valid as written, and no blueprint value escapes the quoting of the place it lands in."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import jmespath
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import hardstack.modules.base as base
from hardstack.blueprints.loader import LoadedBlueprint, catalog, load
from hardstack.errors import EXIT_INVALID, EXIT_NOT_VERIFIED, EXIT_OK
from hardstack.modules.runbook_sections import RUNBOOK_SECTIONS, runbook_link
from hardstack.policies.k8s_schema import validate_manifest
from hardstack.stacks import runbook as rb
from hardstack.stacks.inventory import Inventory, Resource
from hardstack.stacks.targets import synth_loaded

from .helpers import REGISTRY
from .runbook_helpers import (
    Block,
    bash_syntax_errors,
    blocks,
    code_spans,
    commands,
    computed_strings,
    literal_strings,
    prose,
    run_bash,
    without_code_spans,
)

HARDSTACK = Path(sys.executable).parent / "hardstack"
SHIPPED = sorted(catalog())
DIGEST = "sha256:" + "ab12" * 16
MOCK_ACCOUNT = "123456789012"

HOSTILE = "x`y`` $(touch /tmp/pwned) ${HOME} <script>alert(1)</script> <b>bold</b>\n```\n# injected\n'\"|*_[a](b)"
"""A value with every way out: code-span and fence breakers, command substitution, HTML, a heading, quotes."""

VOCABULARY = {
    "cosign verify", "hardstack up", "hardstack runbook", rb.QUARANTINE_POLICY, rb.REVOKE_POLICY, "image",
    "pulumi stack --show-urns", "pulumi up", "pulumi up --replace", "registry.ci.subjects", "sha256-<hex>.sig",
    "sudo", "sys/leases/revoke-prefix", "vault kv patch", "vault kv put",
}
"""The runbook's own words in code spans: commands, settings and its own object names (none is the stack's)."""


@dataclass
class Rendered:
    loaded: LoadedBlueprint
    inventory: Inventory
    text: str
    stand_ins: list[str]


@contextlib.contextmanager
def recording_stand_ins(into: list[str]) -> Iterator[None]:
    """Record the stack config secrets a synthesis stood in (the ones the program reads)."""
    original = base.standing_in_secrets

    @contextlib.contextmanager
    def recorded() -> Iterator[list[str]]:
        with original() as keys:
            yield keys
        into.extend(keys)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(base, "standing_in_secrets", recorded)
        yield


def rendered(loaded: LoadedBlueprint, **synth: Any) -> Rendered:
    keys: list[str] = []
    with recording_stand_ins(keys):
        inventory = synth_loaded(loaded, **synth)
    return Rendered(loaded, inventory, rb.render(inventory, loaded.blueprint), keys)


@pytest.fixture(scope="module")
def shipped() -> dict[str, Rendered]:
    return {name: rendered(load(name)) for name in SHIPPED}


def write_blueprint(tmp: Path, blueprint: dict[str, Any]) -> LoadedBlueprint:
    path = tmp / f"{blueprint['name']}.yaml"
    path.write_text(yaml.safe_dump(blueprint))
    return load(path)


NO_CLUSTER: dict[str, Any] = {
    "name": "data-only",
    "description": "Training data and models, no cluster.",
    "region": "us-east-1",
    "classification": "confidential",
    "data": {"buckets": [{"name": "corpus", "purpose": "training-data"},
                         {"name": "models", "purpose": "model-artifacts"}]},
    "identity": {"vault": {"workload_auth": "approle",
                           "humans": {"discovery_url": "https://idp.example.com", "client_id": "vault"}}},
}


@pytest.fixture(scope="module")
def no_cluster(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    return rendered(write_blueprint(tmp_path_factory.mktemp("nc"), NO_CLUSTER))


def hostile_blueprint() -> dict[str, Any]:
    return {
        "name": "hostile",
        "description": HOSTILE,
        "region": "us-east-1",
        "classification": "confidential",
        "data": {"buckets": [{"name": "corpus", "purpose": "training-data"},
                             {"name": "models", "purpose": "model-artifacts"}]},
        "compute": {"cluster": {"kubernetes_version": "1.33"},
                    "tenants": [{"name": "team", "gpus": 1, "reads": ["corpus"], "writes": ["models"]}],
                    "gpu_pools": [{"name": "gpus", "tenants": ["team"], "instance_types": ["g5.2xlarge"]}]},
        "registry": REGISTRY,
        "identity": {"vault": {"humans": {"discovery_url": "https://idp.example.com", "client_id": HOSTILE,
                                          "user_claim": HOSTILE}}},
        "endpoints": [{
            "name": "chat", "tenant": "team", "service": "server", "port": 8000, "scheme": "internet-facing",
            "domain_name": "chat.example.com", "zone_id": "Z0EXAMPLE",
            "auth": {"kind": "oidc", "issuer": "https://idp.example.com",
                     "authorization_endpoint": "https://idp.example.com/authorize",
                     "token_endpoint": "https://idp.example.com/token",
                     "user_info_endpoint": "https://idp.example.com/userinfo", "client_id": HOSTILE},
        }],
    }


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    return rendered(write_blueprint(tmp_path_factory.mktemp("hostile"), hostile_blueprint()))


def sh_blocks(text: str) -> list[Block]:
    return [b for b in blocks(text) if b.info == "sh"]


def section(text: str, anchor: str) -> str:
    """The Markdown of one `##` section."""
    title = RUNBOOK_SECTIONS[anchor]
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


# --- sections and anchors -----------------------------------------------------------------------------------------

def github_slug(heading: str) -> str:
    """The anchor GitHub (and GitLab, MkDocs' default) derives from a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_section_anchors_are_the_slugs_of_their_headings() -> None:
    assert list(RUNBOOK_SECTIONS) == ["quarantine-a-tenant", "block-a-compromised-image", "revoke-vault-leases",
                                      "roll-back-a-model", "rotate-keys", "trace-a-poisoned-dataset"]
    for anchor, heading in RUNBOOK_SECTIONS.items():
        assert github_slug(heading) == anchor
    assert runbook_link("https://wiki.example.com/runbook.md#old", "rotate-keys") == \
        "https://wiki.example.com/runbook.md#rotate-keys"
    with pytest.raises(ValueError, match="unknown runbook section"):
        runbook_link("https://wiki.example.com/runbook.md", "panic")


@pytest.mark.parametrize("name", SHIPPED)
def test_every_section_is_there_in_order_and_linked(shipped: dict[str, Rendered], name: str) -> None:
    text = shipped[name].text
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    assert headings == ["Contents", "Before you start", *RUNBOOK_SECTIONS.values()]
    links = re.findall(r"^- \[(.+)\]\(#([a-z-]+)\)$", text, flags=re.M)
    assert links == [("Before you start", "before-you-start"), *((h, a) for a, h in RUNBOOK_SECTIONS.items())]
    for target in re.findall(r"\]\(#([a-z-]+)\)", text):  # every link inside the runbook lands on a heading
        assert target in {github_slug(h) for h in headings}


# --- everything it names is the stack's ---------------------------------------------------------------------------

VAULT_MOUNTS = ("vault:index/mount:Mount", "vault:aws/secretBackend:SecretBackend", "vault:jwt/authBackend:AuthBackend",
                "vault:index/authBackend:AuthBackend")


def _names(inv: Inventory) -> dict[str, Any]:
    def meta(r: Resource, key: str) -> Any:
        return r.get("metadata", key)

    vault_roles = set()
    for t in ("vault:jwt/authBackendRole:AuthBackendRole", "vault:kubernetes/authBackendRole:AuthBackendRole",
              "vault:approle/authBackendRole:AuthBackendRole"):
        vault_roles |= {(r.inputs["backend"], r.inputs["roleName"]) for r in inv.of_type(t)}
    vault_roles |= {(r.inputs["backend"], r.inputs["name"])
                    for r in inv.of_type("vault:aws/secretBackendRole:SecretBackendRole")}
    stack = {r.inputs["tags"]["hardstack:stack"] for r in inv if "hardstack:stack" in (r.inputs.get("tags") or {})}
    return {
        "stack": stack.pop(),
        "cluster": {r.inputs["name"] for r in inv.of_type("aws:eks/cluster:Cluster")},
        "nodegroup": {r.inputs["nodeGroupName"]: r.inputs["scalingConfig"]
                      for r in inv.of_type("aws:eks/nodeGroup:NodeGroup")},
        "namespace": {meta(r, "name") for r in inv.of_type("kubernetes:core/v1:Namespace")}
        | {meta(r, "namespace") for r in inv if r.type.startswith("kubernetes:") and meta(r, "namespace")},
        "networkpolicy": {(meta(r, "namespace"), meta(r, "name")): r.inputs["spec"]
                          for r in inv.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")},
        "pod_identity": {(r.inputs["namespace"], r.inputs["serviceAccount"])
                         for r in inv.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")},
        "deployment": {(meta(r, "namespace"), meta(r, "name")): [c["name"] for c in
                                                                 r.inputs["spec"]["template"]["spec"]["containers"]]
                       for r in inv.of_type("kubernetes:apps/v1:Deployment")},
        "secret": {(meta(r, "namespace"), meta(r, "name")) for r in inv.of_type("kubernetes:core/v1:Secret")},
        "repository": {r.inputs["name"] for r in inv.of_type("aws:ecr/repository:Repository")},
        "alias": {r.inputs["name"]: r for r in inv.of_type("aws:kms/alias:Alias")},
        "log_group": {r.inputs["name"] for r in inv.of_type("aws:cloudwatch/logGroup:LogGroup") if "name" in r.inputs},
        "load_balancer": {r.inputs["name"] for r in inv.of_type("aws:lb/loadBalancer:LoadBalancer")},
        "record": {r.inputs["name"] for r in inv.of_type("aws:route53/record:Record")},
        "bucket": [r.inputs["tags"].get("hardstack:component") for r in inv.of_type("aws:s3/bucket:Bucket")],
        "trail": [r.inputs.get("tags", {}).get("hardstack:component")
                  for r in inv.of_type("aws:cloudtrail/trail:Trail")],
        "vault_mount": {r.inputs["path"] for t in VAULT_MOUNTS for r in inv.of_type(t)},
        "vault_role": vault_roles,
        "vault_policy": {r.inputs["name"]: r for r in inv.of_type("vault:index/policy:Policy")},
        "vault_k8s_role": {r.inputs["roleName"]: r
                           for r in inv.of_type("vault:kubernetes/authBackendRole:AuthBackendRole")},
        "cluster_policy": {meta(r, "name") for r in inv.of_type("kubernetes:kyverno.io/v1:ClusterPolicy")},
    }


def _runtime(value: str) -> bool:
    """A word the shell fills in when the command runs (a variable or command substitution)."""
    return "$" in value or value == ""


OPTION_KINDS = {"--cluster-name": "cluster", "--nodegroup-name": "nodegroup", "--namespace": "namespace",
                "-n": "namespace", "--service-account": "pod_identity", "--repository-name": "repository",
                "--repository-names": "repository", "--key-id": "alias", "--log-group-name": "log_group"}
ASSIGNMENT_KINDS = {"NS": "namespace", "REPOSITORY": "repository"}
LOOP_KINDS = {"repo": "repository", "alias": "alias", "role": "aws_role"}


def check_names(r: Rendered) -> tuple[list[str], set[str]]:
    """Every name a command of the runbook gives, checked against the inventory; (problems, kinds checked)."""
    inv, bp = r.inventory, r.loaded.blueprint
    names = _names(inv)
    problems: list[str] = []
    checked: set[str] = set()

    def need(kind: str, value: str, ok: bool) -> None:
        checked.add(kind)
        if not ok:
            problems.append(f"{kind} {value!r} is not the stack's")

    vault = bp.identity.vault
    aws_mounts = {p.inputs["path"] for p in inv.of_type("vault:aws/secretBackend:SecretBackend")}
    for block in sh_blocks(r.text):
        code = "\n".join(line for line in block.text.split("\n") if not line.lstrip().startswith("#"))
        for fn, value in re.findall(r"(?:^|\$\(|\s)(bucket|stack_arn s3|stack_arn cloudtrail|insights) ([^\s)\"]+)",
                                    code, flags=re.M):
            if fn in ("bucket", "stack_arn s3"):
                need("bucket", value, names["bucket"].count(value) == 1)
            elif fn == "stack_arn cloudtrail":
                need("trail", value, names["trail"].count(value) == 1)
            else:
                need("log_group", value, value in names["log_group"])
        for words in commands(block.text):
            if not words:
                continue
            for i, word in enumerate(words[:-1]):
                kind, value = OPTION_KINDS.get(word), words[i + 1]
                if kind and not _runtime(value):
                    if kind == "pod_identity":
                        ns = words[words.index("--namespace") + 1]
                        need(kind, value, (ns, value) in names[kind])
                    else:
                        need(kind, value, value in names[kind])
            head = words[0].split("=", 1)
            if len(head) == 2 and head[0] in ASSIGNMENT_KINDS and not _runtime(head[1]):
                need(ASSIGNMENT_KINDS[head[0]], head[1], head[1] in names[ASSIGNMENT_KINDS[head[0]]])
            if words[0] == "for" and words[1] in LOOP_KINDS:
                for value in [w for w in words[3:] if not _runtime(w)]:
                    kind = LOOP_KINDS[words[1]]
                    if kind == "aws_role":
                        need(kind, value, any((m, value) in names["vault_role"] for m in aws_mounts))
                    else:
                        need(kind, value, value in names[kind])
            if words[0] == "export" and words[1].startswith("AWS_REGION="):
                need("region", words[1], words[1] == f"AWS_REGION={bp.region}")
            if words[:3] == ["kubectl", "delete", "networkpolicy"]:
                ns, deleted = words[4], set(words[5:])
                allows = {n for (space, n), spec in names["networkpolicy"].items()
                          if space == ns and (spec.get("ingress") or spec.get("egress"))}
                need("networkpolicy", f"{ns}: {sorted(deleted)}", deleted == allows and bool(allows))
            if words[:3] == ["kubectl", "scale", "deployment"]:
                ns = words[words.index("-n") + 1]
                need("deployment", words[3], (ns, words[3]) in names["deployment"])
            if words[:3] == ["kubectl", "delete", "secret"]:
                need("secret", words[5], (words[4], words[5]) in names["secret"])
            if words[:3] == ["aws", "eks", "update-kubeconfig"]:
                need("cluster", words[4], words[4] in names["cluster"])
            if "--scaling-config" in words:
                group = names["nodegroup"].get(words[words.index("--nodegroup-name") + 1], {})
                need("scaling", words[-1], words[-1] == f"minSize=0,maxSize={group.get('maxSize')},desiredSize=0")
            if words[:3] == ["vault", "policy", "write"]:
                policy = words[3]
                bound = [role for role in names["vault_k8s_role"].values()
                         if policy in role.inputs["tokenPolicies"]]
                need("vault_policy", policy, policy in names["vault_policy"] and len(bound) == 1)
            if words[:2] == ["vault", "delete"]:
                m = re.fullmatch(r"auth/(.+)/role/([^/]+)", words[2])
                need("vault_role", words[2], bool(m) and (m[1], m[2]) in names["vault_role"])
            if words[:2] == ["vault", "read"] and not _runtime(words[-1]):
                m = re.fullmatch(r"(.+)/creds/([^/]+)", words[-1])
                need("vault_role", words[-1], bool(m) and (m[1], m[2]) in names["vault_role"])
            if words[:4] == ["vault", "lease", "revoke", "-prefix"]:
                prefix = words[4]
                mounts = {f"{m}/creds/" for m in aws_mounts} | {f"auth/{m}/" for m in names["vault_mount"]}
                need("vault_mount", prefix, prefix in mounts)
            if words[:2] == ["vault", "login"]:
                path = next(w.split("=", 1)[1] for w in words if w.startswith("-path="))
                role = next(w.split("=", 1)[1] for w in words if w.startswith("role="))
                need("vault_role", f"{path} {role}", (path, role) in names["vault_role"])
            for w in words:
                if w.startswith("-mount="):
                    need("vault_mount", w, w.split("=", 1)[1] in names["vault_mount"])
            if words[0] == "jq" and "--arg" in words and words[words.index("--arg") + 1] == "m":  # a Vault mount
                value = words[words.index("--arg") + 2]
                need("vault_mount", value, value.rstrip("/") in names["vault_mount"] and value.endswith("/"))
            if words[:4] == ["pulumi", "config", "set", "--secret"]:
                need("stack", words[5], words[5] == names["stack"])
                need("config_secret", words[6], words[6] in r.stand_ins)
            if words[:2] == ["pulumi", "up"]:
                need("stack", words[-1], words[-1] == names["stack"])
            for i, w in enumerate(words):
                if w.startswith("Key=hardstack:stack,Values="):
                    need("stack", w, w == f"Key=hardstack:stack,Values={names['stack']}")
    if vault is not None:  # prose names Vault's mounts, the humans' claim and the client
        for span in code_spans(prose(r.text)):
            if span.startswith("vault lease revoke -prefix "):
                need("vault_mount", span, span.split()[-1] in {f"auth/{m}/" for m in names["vault_mount"]})
    return problems, checked


@pytest.mark.parametrize("name", SHIPPED)
def test_every_name_in_a_command_is_the_stacks(shipped: dict[str, Rendered], name: str) -> None:
    """Cluster, node groups (with their sizes), namespaces, the NetworkPolicies to delete (exactly the namespace's
    allow policies), Pod Identity associations, deployments, repositories, key aliases, buckets (by their tags),
    log groups, Vault mounts, roles and policies, stack config secrets: each is one of the stack's."""
    problems, checked = check_names(shipped[name])
    assert problems == []
    assert {"cluster", "nodegroup" if shipped[name].loaded.blueprint.compute.gpu_pools else "cluster", "namespace",
            "networkpolicy", "pod_identity", "repository", "alias", "bucket", "log_group", "vault_mount",
            "vault_role", "vault_policy", "config_secret", "stack", "region", "aws_role"} <= checked


@pytest.mark.parametrize("name", SHIPPED)
def test_prose_names_only_the_stacks_own_values(shipped: dict[str, Rendered], name: str) -> None:
    """Every code span of the prose is a value the program set (an inventory literal) or the runbook's own word."""
    r = shipped[name]
    literals = literal_strings(r.inventory)
    aws_mounts = {p.inputs["path"] for p in r.inventory.of_type("vault:aws/secretBackend:SecretBackend")}
    humans = {p.inputs["path"] for p in r.inventory.of_type("vault:jwt/authBackend:AuthBackend")}
    derived = {f"{m}/creds/<role>" for m in aws_mounts} | {f"vault lease revoke -prefix auth/{h}/" for h in humans}
    strays = [s for s in code_spans(prose(r.text)) if s not in literals | VOCABULARY | derived]
    assert strays == []


@pytest.mark.parametrize("name", SHIPPED)
def test_nothing_the_mocks_made_up_is_named(shipped: dict[str, Rendered], name: str) -> None:
    """Ids, ARNs, generated bucket and role names exist only under synthesis: the runbook looks them up instead."""
    r = shipped[name]
    assert MOCK_ACCOUNT not in r.text
    leaked = sorted(v for v in computed_strings(r.inventory) if v in r.text)
    assert leaked == []


@pytest.mark.parametrize("name", SHIPPED)
def test_the_runbook_verifies_with_the_key_admission_trusts(shipped: dict[str, Rendered], name: str) -> None:
    """`cosign verify` uses the alias of exactly the key the admission policy verifies with, and ignores the
    transparency log exactly when the policy does."""
    r = shipped[name]
    policy = r.inventory.named("admission-verify-image-signatures")
    entry = policy.inputs["spec"]["rules"][0]["verifyImages"][0]["attestors"][0]["entries"][0]
    key_urn = next(ref.resource for ref in policy.references
                   if ref.path[-1] == "kms" and ref.resource.endswith("::registry-signing-key"))
    rollback = section(r.text, "roll-back-a-model")
    alias = re.search(r"describe-key --key-id (\S+) --query KeyMetadata.Arn", rollback)[1]
    target = next(ref.resource for ref in _names(r.inventory)["alias"][alias].references
                  if ref.path == ("targetKeyId",))
    assert target == key_urn
    assert ('--insecure-ignore-tlog=true' in rollback) == entry["keys"]["rekor"]["ignoreTlog"]
    assert 'cosign verify --key "awskms:///$SIGNING_KEY"' in rollback


@pytest.mark.parametrize("name", SHIPPED)
def test_every_symmetric_key_is_rotated_and_the_signing_key_explained(shipped: dict[str, Rendered],
                                                                      name: str) -> None:
    r = shipped[name]
    keys = {ref.resource: a for a, res in _names(r.inventory)["alias"].items() for ref in res.references
            if ref.path == ("targetKeyId",)}
    symmetric = {keys[k.urn] for k in r.inventory.of_type("aws:kms/key:Key")
                 if k.inputs["keyUsage"] == "ENCRYPT_DECRYPT"}
    rotate = section(r.text, "rotate-keys")
    loop = next(w for w in commands(rotate) if w[:2] == ["for", "alias"])
    assert set(loop[3:]) == symmetric
    signing = {keys[k.urn] for k in r.inventory.of_type("aws:kms/key:Key") if k.inputs["keyUsage"] == "SIGN_VERIFY"}
    assert all(f"`{a}`" in rotate and "is asymmetric" in rotate for a in signing)


def test_quarantine_covers_every_tenant_and_its_own_gpu_pools(shipped: dict[str, Rendered]) -> None:
    """multi-tenant-gpu: each tenant's node groups are scaled to zero, and a shared pool's other tenants named."""
    text = section(shipped["multi-tenant-gpu"].text, "quarantine-a-tenant")
    parts = re.split(r"^### ", text, flags=re.M)[1:]
    scaled = {p.split("\n", 1)[0]: re.findall(r"update-nodegroup-config .* --nodegroup-name (\S+)",
                                              p.replace("\\\n", "")) for p in parts}
    assert scaled == {"Tenant research": ["gpu-research-a100"], "Tenant search": ["gpu-search-l4", "gpu-shared-mig"],
                      "Tenant fraud": ["gpu-shared-mig"]}
    search = next(p for p in parts if p.startswith("Tenant search"))
    assert "The node group `gpu-shared-mig` also runs `fraud`" in search


def test_lineage_follows_reads_and_writes_to_the_endpoints(shipped: dict[str, Rendered]) -> None:
    mtg = section(shipped["multi-tenant-gpu"].text, "trace-a-poisoned-dataset")
    assert "- Read by: tenant `research`." in mtg
    assert "- Which write: `model-artifacts` (model-artifacts)." in mtg
    assert "- Read from there by: tenant `search`, tenant `fraud`." in mtg
    llm = section(shipped["llm-inference"].text, "trace-a-poisoned-dataset")
    assert "- Served by the endpoint: `chat` (`chat.inference.example.com`) of tenant `serving`." in llm
    assert "aws-waf-logs-llm-inference-endpoint-chat" in llm
    agents = section(shipped["agent-sandbox"].text, "trace-a-poisoned-dataset")
    assert "- Read by: agent `records-analyst`." in agents
    assert "`agent-sandbox/records-analyst`" in agents


# --- blocks that run ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SHIPPED)
def test_every_shell_block_parses(shipped: dict[str, Rendered], name: str) -> None:
    found = sh_blocks(shipped[name].text)
    assert found and all(b.info == "sh" for b in blocks(shipped[name].text))
    for block in found:
        assert bash_syntax_errors(block.text) == "", block.text


@pytest.mark.parametrize("name", SHIPPED)
def test_every_query_is_valid_jmespath(shipped: dict[str, Rendered], name: str) -> None:
    queries = [words[i + 1] for b in sh_blocks(shipped[name].text) for words in commands(b.text)
               for i, w in enumerate(words[:-1]) if w == "--query" and not _runtime(words[i + 1])]
    assert len(queries) > 5
    for query in queries:
        jmespath.compile(query)


def _before_you_start(text: str) -> str:
    return next(b.text for b in sh_blocks(text) if b.section == "Before you start" and "stack_arn()" in b.text)


def test_lookup_helpers_find_exactly_one_resource(shipped: dict[str, Rendered]) -> None:
    """`bucket` prints the name from the one ARN the stack's tags find, and refuses none or several."""
    helpers = _before_you_start(shipped["llm-inference"].text)
    fake = 'aws() { printf "%s\\n" "$FAKE"; }\n'
    one = run_bash(helpers + fake + 'FAKE="arn:aws:s3:::training-data-bucket-0a1b2c3"; bucket training-data')
    assert (one.returncode, one.stdout) == (0, "training-data-bucket-0a1b2c3\n")
    two = run_bash(helpers + fake + 'FAKE="$(printf "arn:aws:s3:::a\\tarn:aws:s3:::b")"; bucket training-data')
    assert two.returncode == 1 and "expected one resource" in two.stderr and two.stdout == ""
    none = run_bash(helpers + fake + 'FAKE=""; bucket training-data')
    assert none.returncode == 1 and "found: none" in none.stderr
    asked = run_bash(helpers + 'aws() { printf "%s\\n" "$@" >&2; echo arn:aws:s3:::x; }; stack_arn s3 training-data')
    assert "--resource-type-filters\ns3\n--tag-filters\nKey=hardstack:stack,Values=llm-inference\n" \
           "Key=hardstack:component,Values=training-data\n" in asked.stderr


def test_revoking_sessions_denies_credentials_issued_before_now(shipped: dict[str, Rendered]) -> None:
    helpers = _before_you_start(shipped["llm-inference"].text)
    proc = run_bash(helpers + 'aws() { printf "%s\\0" "$@"; }; revoke_sessions arn:aws:iam::111122223333:role/x-1')
    args = proc.stdout.split("\0")
    assert args[:6] == ["iam", "put-role-policy", "--role-name", "x-1", "--policy-name", rb.REVOKE_POLICY]
    document = json.loads(args[args.index("--policy-document") + 1])
    [statement] = document["Statement"]
    assert statement["Effect"] == "Deny" and statement["Action"] == "*" and statement["Resource"] == "*"
    issued_before = statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", issued_before)


def _applied(script: str, prelude: str = "") -> list[dict[str, Any]]:
    """What a block sends to `kubectl apply -f -`, run by bash with kubectl replaced by `cat`."""
    stub = 'kubectl() { if [ "$1" = apply ]; then cat; echo ---; fi; }\n'
    proc = run_bash(stub + prelude + script)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


@pytest.mark.parametrize("name", SHIPPED)
def test_quarantine_applies_a_valid_deny_all_to_each_namespace(shipped: dict[str, Rendered], name: str) -> None:
    r = shipped[name]
    version = r.loaded.blueprint.compute.cluster.kubernetes_version
    text = section(r.text, "quarantine-a-tenant")
    applied = [m for b in sh_blocks(text) if "kubectl apply" in b.text for m in _applied(b.text)]
    bp = r.loaded.blueprint
    workloads = [t.name for t in bp.compute.tenants] + [f"agent-{a.name}" for a in bp.agents]
    assert [m["metadata"]["namespace"] for m in applied] == workloads
    for manifest in applied:
        assert validate_manifest(manifest, version) == []
        assert manifest["kind"] == "NetworkPolicy" and manifest["metadata"]["name"] == rb.QUARANTINE_POLICY
        assert manifest["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}  # no rule: deny all
        assert manifest["metadata"]["namespace"] in _names(r.inventory)["namespace"]
        assert (manifest["metadata"]["namespace"], rb.QUARANTINE_POLICY) not in _names(r.inventory)["networkpolicy"]


@pytest.mark.parametrize("name", SHIPPED)
def test_blocking_an_image_applies_a_valid_enforced_kyverno_policy(shipped: dict[str, Rendered], name: str) -> None:
    r = shipped[name]
    version = r.loaded.blueprint.compute.cluster.kubernetes_version
    text = section(r.text, "block-a-compromised-image")
    [script] = [b.text for b in sh_blocks(text) if "kubectl apply" in b.text]
    [policy] = _applied(script, f"DIGEST={DIGEST}\n")
    assert validate_manifest(policy, version) == []
    assert policy["kind"] == "ClusterPolicy" and policy["metadata"]["name"] == f"block-image-{DIGEST[7:19]}"
    [rule] = policy["spec"]["rules"]
    assert rule["validate"]["failureAction"] == "Enforce" and "exclude" not in rule
    assert rule["match"] == {"any": [{"resources": {"kinds": ["Pod"]}}]}
    denied = f"!*@{DIGEST}"
    assert rule["validate"]["pattern"]["spec"] == {"=(ephemeralContainers)": [{"image": denied}],
                                                   "=(initContainers)": [{"image": denied}],
                                                   "containers": [{"image": denied}]}
    assert policy["metadata"]["name"] not in _names(r.inventory)["cluster_policy"]
    refused = run_bash('kubectl() { cat; }\nDIGEST=\'sha256:abc; rm -rf /\'\n' + script)
    assert refused.returncode != 0 and refused.stdout == ""  # not a digest: nothing is applied
    # ECR: the image and its signature, in the stack's repositories
    delete = next(w for b in sh_blocks(text) for w in commands(b.text) if w[:3] == ["aws", "ecr", "batch-delete-image"])
    assert delete[-2:] == ["imageDigest=$DIGEST", "imageTag=${DIGEST/:/-}.sig"]
    loop = next(w for b in sh_blocks(text) for w in commands(b.text) if w[:2] == ["for", "repo"])
    assert set(loop[3:]) == _names(r.inventory)["repository"]


def test_the_signature_tag_is_derived_as_cosign_names_it() -> None:
    proc = run_bash(f'DIGEST={DIGEST}; printf %s "${{DIGEST/:/-}}.sig"')
    assert proc.stdout == f"sha256-{DIGEST[7:]}.sig"


# --- stacks without a cluster, without a trail --------------------------------------------------------------------

def test_a_stack_without_a_cluster_gets_no_kubernetes(no_cluster: Rendered) -> None:
    text = no_cluster.text
    assert re.findall(r"^## (.+)$", text, flags=re.M) == ["Contents", "Before you start", "Revoke Vault leases",
                                                         "Rotate keys", "Trace a poisoned dataset"]
    assert "kubectl" not in text and "<<'YAML'" not in text and "namespace" not in text.lower()
    assert "NetworkPolic" not in text and "node group" not in text
    problems, checked = check_names(no_cluster)
    assert problems == [] and {"bucket", "alias", "vault_mount", "config_secret"} <= checked
    for block in sh_blocks(text):
        assert bash_syntax_errors(block.text) == ""


def _without(inventory: Inventory, drop: Any) -> Inventory:
    return Inventory([r for r in inventory if not drop(r)])


def test_without_a_trail_the_trace_falls_back_to_access_logs(shipped: dict[str, Rendered]) -> None:
    r = shipped["multi-tenant-gpu"]
    inv = _without(r.inventory, lambda res: res.type == "aws:cloudtrail/trail:Trail")
    text = rb.render(inv, r.loaded.blueprint)
    trace = section(text, "trace-a-poisoned-dataset")
    assert "has no CloudTrail trail of its own" in trace and "/audit/cloudtrail" not in trace
    assert "REST.GET.OBJECT" in trace and "lookup-events" in trace
    assert re.findall(r"^## (.+)$", text, flags=re.M)[2:] == list(RUNBOOK_SECTIONS.values())


def test_a_trail_without_a_log_group_is_read_from_its_bucket(shipped: dict[str, Rendered]) -> None:
    r = shipped["multi-tenant-gpu"]
    trail = r.inventory.of_type("aws:cloudtrail/trail:Trail")[0]
    cut = replace(trail, references=[x for x in trail.references if x.path != ("cloudWatchLogsGroupArn",)])
    inv = Inventory([cut if res.urn == trail.urn else res for res in r.inventory])
    trace = section(rb.render(inv, r.loaded.blueprint), "trace-a-poisoned-dataset")
    assert f"TRAIL={trail.inputs['name']}" in trace and "aws cloudtrail get-trail" in trace
    assert "insights /" not in trace


# --- no value escapes its quoting ---------------------------------------------------------------------------------

def test_hostile_values_never_reach_the_runbook_unquoted(hostile: Rendered) -> None:
    text = hostile.text
    assert HOSTILE not in text
    assert not re.search(r"^# injected", text, flags=re.M)
    assert [b.info for b in blocks(text)] == ["sh"] * len(blocks(text))  # no fence opened or closed by a value
    outside = without_code_spans(prose(text))
    for raw in ("<script>", "<b>", "$(touch", "](b)"):
        assert raw not in outside
    spans = code_spans(prose(text))
    assert HOSTILE.replace("\n", "\\n") in spans  # shown literally, as a code span, where it is named
    for block in sh_blocks(text):
        assert bash_syntax_errors(block.text) == ""
        assert "touch /tmp/pwned" not in block.text  # the value is named in prose only
    problems, _ = check_names(hostile)
    assert problems == []


SHELL_CORPUS = ["", " ", "plain-word", "it's", "a\nb", "tab\there", "$(id)", "`id`", "${HOME}", "x;rm -rf /", "\\",
                "'", '"', "\x01", "é ünïcode", "\u2028line", "\U0001f600", "-n", "a'b\nc'd"]


def test_shell_words_read_back_as_themselves() -> None:
    words = [rb.shell_word(v) for v in SHELL_CORPUS]
    assert all("\n" not in w for w in words)
    proc = run_bash("printf '%s\\0' " + " ".join(words))
    assert proc.stdout.split("\0")[:-1] == SHELL_CORPUS


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30))
def test_any_text_is_one_shell_word(value: str) -> None:
    word = rb.shell_word(value)
    assert "\n" not in word and "\r" not in word
    proc = subprocess.run(["bash", "-c", f"printf '%s' {word}"], capture_output=True, timeout=30)
    assert proc.stdout.decode("utf-8", "surrogatepass") == value


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_any_text_is_one_code_span(value: str) -> None:
    span = rb.code_span(value)
    assert "\n" not in span and "\r" not in span
    assert code_spans(f"a {span} b") == ["".join(c if c.isprintable() else ascii(c)[1:-1] for c in value)]


def test_values_without_a_filter_are_refused() -> None:
    env = rb.environment()
    with pytest.raises(rb.UnquotedValue):
        env.from_string("{{ x }}").render(x="anything")
    assert env.from_string("{{ x | sh }} {{ x | code }}").render(x="a b") == "'a b' `a b`"
    with pytest.raises(ValueError):
        env.from_string("{{ x | token }}").render(x="a b")


# --- the command ----------------------------------------------------------------------------------------------------

def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HARDSTACK), *args], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env={**os.environ})


def test_cli_writes_refuses_to_overwrite_and_replaces_with_force(tmp_path: Path) -> None:
    bp = tmp_path / "data-only.yaml"
    bp.write_text(yaml.safe_dump(NO_CLUSTER))
    out = tmp_path / "RUNBOOK.md"
    proc = run("runbook", str(bp), "--out", str(out))
    assert proc.returncode == EXIT_OK, proc.stderr
    first = out.read_text()
    assert first.startswith("# Incident response: stack `data-only`") and str(out) in proc.stderr
    out.write_text("my notes")
    proc = run("runbook", str(bp), "--out", str(out))
    assert proc.returncode == EXIT_INVALID and "refusing to overwrite" in proc.stderr and "--force" in proc.stderr
    assert "Traceback" not in proc.stderr and out.read_text() == "my notes"
    proc = run("runbook", str(bp), "--out", str(out), "--force")
    assert proc.returncode == EXIT_OK and out.read_text() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["RUNBOOK.md", "data-only.yaml"]  # no temporary file left


def test_cli_prints_to_stdout_and_refuses_bad_input(tmp_path: Path) -> None:
    bp = tmp_path / "data-only.yaml"
    bp.write_text(yaml.safe_dump(NO_CLUSTER))
    proc = run("runbook", str(bp))
    assert proc.returncode == EXIT_OK and proc.stdout.startswith("# Incident response")
    proc = run("runbook", "no-such-blueprint")
    assert proc.returncode == EXIT_INVALID and "no such target" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("runbook", str(bp), "--out", str(tmp_path))
    assert proc.returncode == EXIT_INVALID and "Traceback" not in proc.stderr


def test_cli_a_failure_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A runbook that cannot be written (a bug) exits 3 with a message and leaves no file."""
    from click.testing import CliRunner

    from hardstack.cli.main import main

    def broken(target: str, stack: str | None = None) -> str:
        raise rb.RunbookError("the inventory holds two clusters")

    monkeypatch.setattr(rb, "runbook_for", broken)
    out = tmp_path / "RUNBOOK.md"
    result = CliRunner().invoke(main, ["runbook", "llm-inference", "--out", str(out)])
    assert result.exit_code == EXIT_NOT_VERIFIED and "two clusters" in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_project_must_declare_one_stack_file() -> None:
    with pytest.raises(rb.InvalidInput, match="declares 0 stack files"):
        rb.blueprint_of([], "./project")


def test_a_pulumi_project_gets_the_runbook_of_its_stack_file() -> None:
    """A project generated by `hardstack new` declares its stack file: the runbook is that stack's (`dev`), with
    the names its deployment will have (the stack tag, the Vault mounts under the stack's name)."""
    project = Path(__file__).resolve().parent.parent / "examples" / "reference-stack"
    text = rb.runbook_for(str(project), "dev")
    assert text.startswith("# Incident response: stack `dev`")
    assert "Key=hardstack:stack,Values=dev" in text and "vault login -method=oidc -path=dev/humans" in text
    assert "--name dev-cluster" in text
    assert re.findall(r"^## (.+)$", text, flags=re.M)[2:] == list(RUNBOOK_SECTIONS.values())
