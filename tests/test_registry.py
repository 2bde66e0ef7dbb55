"""The signed registry: hardened repositories, pull-through caches that harden what they create, pulls only by the
stack's roles through its VPC endpoint, and a signing key only CI can sign with.

A small program (boundary, the registry's CMK, the ECR endpoint, node, workload and admission roles, the registry
with two families, two mirrors and two pull-through caches) is synthesized under mocks in another region; every
test asserts the property on what it synthesizes and what it is wired from, so removing it from
`modules/registry.py` (or the ECR grant statements of `modules/kms.py`) makes a test here fail. Resource and key
policies are judged by what they decide for a given caller (a small evaluator of the operators they use), linted
with parliament, and the repositories, their policies and the signing key are created in a moto server; stock
checkov and hardstack's checks judge the small program, and weakening the shipped blueprints fails the gate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import pytest

from hardstack.blueprints.kms import KmsSpec
from hardstack.blueprints.supply_chain import UPSTREAMS, RegistrySpec
from hardstack.modules.kms import KEY_ADMIN_ACTIONS
from hardstack.modules.registry import (
    INSPECTOR_ROLE,
    PULL_ACTIONS,
    PULL_THROUGH_ACTIONS,
    PUSH_ACTIONS,
    SIGN_ACTIONS,
    SIGN_IN_ACTIONS,
    TEMPLATE_KEY_ACTIONS,
    TEMPLATE_ROLE_ACTIONS,
    VERIFY_ACTIONS,
)
from hardstack.policies.gate import GateReport, run_gate
from hardstack.stacks.inventory import Inventory, Resource
from hardstack.stacks.mocks import ACCOUNT_ID
from hardstack.stacks.synth import run_program

from .gate_helpers import failed, gate, transform_of
from .helpers import policy, ref_attr, statements
from .moto_server import moto_server

REPOSITORY = "aws:ecr/repository:Repository"
REPOSITORY_POLICY = "aws:ecr/repositoryPolicy:RepositoryPolicy"
LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
SCANNING = "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration"
CACHE_RULE = "aws:ecr/pullThroughCacheRule:PullThroughCacheRule"
TEMPLATE = "aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate"
KEY = "aws:kms/key:Key"
ALIAS = "aws:kms/alias:Alias"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
COMPONENT = "hardstack:registry:SignedRegistry"

STACK = "registry-test"
REGION = "eu-west-1"
ROOT = f"arn:aws:iam::{ACCOUNT_ID}:root"
KEY_ADMIN = f"arn:aws:iam::{ACCOUNT_ID}:role/key-admins"
INSPECTOR = f"arn:aws:iam::{ACCOUNT_ID}:role/{INSPECTOR_ROLE}"
PROVIDER_HOST = "token.actions.githubusercontent.com"
MIRRORS = ("kyverno/kyverno", "eks/aws-load-balancer-controller")
DIGEST = "sha256:" + "ab" * 32
SPEC = RegistrySpec.model_validate({
    "repositories": ["inference-server", "trainer"],
    "keep_images": 40,
    "pull_through": [{"upstream": "ecr-public", "allow": ["ubuntu/squid", "nvidia/*"]},
                     {"upstream": "k8s", "allow": ["pause"]}],
    "ci": {"oidc_provider_arn": f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{PROVIDER_HOST}",
           "subjects": ["repo:acme/models:ref:refs/heads/main", "repo:acme/serving:ref:refs/heads/main"],
           "audience": "sts.acme.example"},
})
"""Every registry setting away from its default: two families, 40 images kept, two caches (one with a wildcard
pattern), two CI subjects and another audience."""
BARE = RegistrySpec.model_validate({
    "repositories": ["only"],
    "ci": {"oidc_provider_arn": f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{PROVIDER_HOST}",
           "subjects": ["repo:acme/only:ref:refs/heads/main"]},
})
"""No cache, no mirror, and (as a stack without a cluster) nobody allowed to pull."""


@dataclass
class Synth:
    inv: Inventory
    values: dict[str, Any]
    """What the component's methods returned, resolved."""
    errors: dict[str, str]

    def one(self, type_token: str) -> Resource:
        found = self.inv.of_type(type_token)
        assert len(found) == 1, [r.name for r in found]
        return found[0]


def program(spec: RegistrySpec, values: dict[str, Any], errors: dict[str, str], *, mirrors: tuple[str, ...],
            with_roles: bool, transform: Any = None) -> Callable[[], None]:
    def run() -> None:
        import pulumi
        import pulumi_aws as aws

        from hardstack.modules.iam import role, service_trust
        from hardstack.modules.identity import PermissionsBoundary
        from hardstack.modules.kms import CustomerManagedKey
        from hardstack.modules.registry import SignedRegistry

        if transform is not None:
            pulumi.runtime.register_resource_transform(transform)
        boundary = PermissionsBoundary("boundary")
        key = CustomerManagedKey("registry", KmsSpec(administrators=[KEY_ADMIN]), description="images",
                                 via_services=("ecr",))
        endpoint = aws.ec2.VpcEndpoint("ecr-dkr", vpc_id="vpc-0123456789abcdef0", vpc_endpoint_type="Interface",
                                       service_name=f"com.amazonaws.{REGION}.ecr.dkr")
        registry = SignedRegistry("registry", spec, key, boundary=boundary.arn, ecr_endpoint_id=endpoint.id,
                                  mirrors=mirrors, tags={"team": "ml-platform"})
        if with_roles:
            trust = service_trust("ec2.amazonaws.com", ACCOUNT_ID)
            roles = {n: role(f"{n}-role", trust, boundary=boundary.arn, parent=boundary, tags={})
                     for n in ("gpu-nodes", "system-nodes", "workload", "admission", "outsider")}
            values["pull-through-none"] = None
            for n in ("gpu-nodes", "system-nodes"):
                registry.grant_pull_through(roles[n])
            registry.grant_verify(roles["admission"])
            registry.allow_pulls([roles[n].arn for n in ("gpu-nodes", "system-nodes", "workload", "admission")])
        else:
            node = role("nodes-role", service_trust("ec2.amazonaws.com", ACCOUNT_ID), boundary=boundary.arn,
                        parent=boundary, tags={})
            values["pull-through-none"] = registry.grant_pull_through(node)
            registry.allow_pulls([])
        try:
            registry.allow_pulls([])
        except RuntimeError as e:
            errors["twice"] = str(e)
        for name, ref in (("not-in-registry", f"other@{DIGEST}"), ("tag", "inference-server:latest"),
                          ("not-allowlisted", f"ecr-public/debian/debian@{DIGEST}")):
            try:
                registry.image(ref)
            except ValueError as e:
                errors[name] = str(e)
        store = values.__setitem__
        if spec.repositories[0] == "inference-server":
            registry.image(f"inference-server@{DIGEST}").apply(lambda v: store("family", v))
            registry.image(f"ecr-public/nvidia/cuda@{DIGEST}").apply(lambda v: store("cached", v))
        pulumi.Output.all(*registry.signed_patterns()).apply(lambda v: store("signed", v))
        pulumi.Output.all(*registry.cached_patterns()).apply(lambda v: store("cached-patterns", v))
        registry.mirror_registry.apply(lambda v: store("mirror-registry", v))
        registry.host.apply(lambda v: store("host", v))
        store("attributes", {"repositories": sorted(registry.repositories),
                             "mirrors": sorted(registry.mirror_repositories)})
        registry.signing_key_arn.apply(lambda v: store("signing-key-arn", v))
        registry.ci_role.arn.apply(lambda v: store("ci-role-arn", v))

    return run


def synth(spec: RegistrySpec, *, mirrors: tuple[str, ...] = MIRRORS, with_roles: bool = True,
          transform: Any = None) -> Synth:
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    inv = run_program(program(spec, values, errors, mirrors=mirrors, with_roles=with_roles, transform=transform),
                      project=STACK, stack=STACK, region=REGION)
    return Synth(inv, values, errors)


@pytest.fixture(scope="module")
def full() -> Synth:
    return synth(SPEC)


@pytest.fixture(scope="module")
def bare() -> Synth:
    return synth(BARE, mirrors=(), with_roles=False)


# --- judging policies by what they decide ----------------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _condition_holds(condition: dict[str, Any], context: dict[str, str | None]) -> bool:
    """The operators the registry's policies use, as IAM evaluates them (keys case-insensitive; a negated operator
    on a key the request does not carry holds)."""
    for operator, keys in condition.items():
        for key, values in keys.items():
            actual = context.get(key.lower())
            wanted = [str(v) for v in as_list(values)]
            if operator in ("StringEquals", "ArnEquals"):
                holds = actual is not None and actual in wanted
            elif operator in ("StringNotEquals", "ArnNotEquals"):
                holds = actual is None or actual not in wanted
            elif operator == "Bool":
                holds = actual is not None and actual.lower() == wanted[0].lower()
            else:
                raise AssertionError(f"operator {operator} is not modelled here")
            if not holds:
                return False
    return True


def _principal_matches(principal: Any, caller: str) -> bool:
    if principal == "*":
        return True
    named = [str(p) for p in as_list(principal.get("AWS", []))]
    return caller in named or "*" in named


def decide(doc: dict[str, Any], *, caller: str, action: str, source_vpce: str | None = None) -> str:
    """What a resource or key policy says about `caller` doing `action`: "deny" (an explicit deny: nothing else
    can allow it), "allow" (the policy alone allows it) or "silent" (left to the caller's IAM policies)."""
    context = {"aws:principalarn": caller, "aws:sourcevpce": source_vpce}
    verdicts = set()
    for st in as_list(doc["Statement"]):
        assert "NotAction" not in st and "NotPrincipal" not in st
        if action.lower() not in [a.lower() for a in as_list(st["Action"])]:
            continue
        if _principal_matches(st["Principal"], caller) and _condition_holds(st.get("Condition", {}), context):
            verdicts.add(st["Effect"])
    return "deny" if "Deny" in verdicts else "allow" if "Allow" in verdicts else "silent"


def role_arn(s: Synth, name: str) -> str:
    return s.inv.named(name, ROLE).outputs["arn"]


def endpoint_id(s: Synth) -> str:
    return s.one(ENDPOINT).outputs["id"]


def component(s: Synth) -> Resource:
    return s.one(COMPONENT)


def repositories(s: Synth) -> dict[str, Resource]:
    """The registry's repositories by repository name."""
    return {r.inputs["name"]: r for r in s.inv.of_type(REPOSITORY)}


def expected_repositories(spec: RegistrySpec, mirrors: tuple[str, ...]) -> set[str]:
    return {f"{STACK}/{f}" for f in spec.repositories} | {f"{STACK}/platform/{m}" for m in mirrors}


def wired_to(resource: Resource, path: str, target: Resource) -> Resource:
    """The resource whose input `path` is a reference to `target`'s name (a repository's id is its name)."""
    urn, attribute = ref_attr(resource, path)
    assert urn == target.urn and attribute in ("id", "name"), resource.name
    return resource


def policy_of(s: Synth, repository: Resource) -> dict[str, Any]:
    found = [p for p in s.inv.of_type(REPOSITORY_POLICY) if ref_attr(p, "repository")[0] == repository.urn]
    assert len(found) == 1, f"{repository.name}: {len(found)} repository policies"
    wired_to(found[0], "repository", repository)
    assert found[0].inputs["repository"] == repository.outputs["name"]
    return policy(found[0])


# --- repositories --------------------------------------------------------------------------------------------


def test_one_hardened_repository_per_family_and_mirror(full: Synth) -> None:
    """`<stack>/<family>` per family and `<stack>/platform/<path>` per mirrored image, each with immutable tags, scan
    on push, encrypted with THIS CMK (a reference to its ARN, not a literal or the AWS managed key), never
    force-deleted with its images, tagged like the stack."""
    repos = repositories(full)
    assert set(repos) == expected_repositories(SPEC, MIRRORS)
    cmk = full.inv.named("registry-key", KEY)
    for name, repo in repos.items():
        assert repo.parent == component(full).urn
        assert repo.inputs["imageTagMutability"] == "IMMUTABLE", name
        assert repo.inputs["imageScanningConfiguration"] == {"scanOnPush": True}, name
        (encryption,) = repo.inputs["encryptionConfigurations"]
        assert encryption == {"encryptionType": "KMS", "kmsKey": cmk.outputs["arn"]}, name
        assert ref_attr(repo, "encryptionConfigurations", 0, "kmsKey") == (cmk.urn, "arn"), name
        assert repo.inputs["forceDelete"] is False, name
        assert repo.inputs["tags"]["team"] == "ml-platform" and repo.inputs["tags"]["hardstack:stack"] == STACK


def test_component_attributes(full: Synth) -> None:
    """`repositories` holds the families (mirrors apart); `host` is the registry's host, read from a repository's
    URL; the signing key and CI role are the ones in the inventory."""
    assert full.values["attributes"] == {"repositories": sorted(SPEC.repositories), "mirrors": sorted(MIRRORS)}
    assert full.values["host"] == f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com"
    assert full.values["signing-key-arn"] == full.inv.named("registry-signing-key", KEY).outputs["arn"]
    assert full.values["ci-role-arn"] == full.inv.named("registry-ci", ROLE).outputs["arn"]


def test_lifecycle_keeps_the_newest_images(full: Synth) -> None:
    """Every repository has exactly one lifecycle policy, wired to it, expiring all but the newest `keep_images`
    images (counting every manifest, so a signature, pushed after its image, outlives no kept image)."""
    repos = repositories(full)
    policies = full.inv.of_type(LIFECYCLE)
    assert len(policies) == len(repos)
    for repo in repos.values():
        (lifecycle,) = [p for p in policies if ref_attr(p, "repository")[0] == repo.urn]
        wired_to(lifecycle, "repository", repo)
        assert json.loads(lifecycle.inputs["policy"]) == {"rules": [{
            "rulePriority": 1,
            "description": f"Keep the newest {SPEC.keep_images} images",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": SPEC.keep_images},
            "action": {"type": "expire"},
        }]}


def test_registry_scans_every_repository_continuously(full: Synth, bare: Synth) -> None:
    """One registry scanning configuration (a per-account-and-region singleton): enhanced, continuous, for every
    repository (the caches' too)."""
    for s in (full, bare):
        scanning = s.one(SCANNING)
        assert scanning.inputs["scanType"] == "ENHANCED"
        assert scanning.inputs["rules"] == [{"scanFrequency": "CONTINUOUS_SCAN",
                                             "repositoryFilters": [{"filter": "*", "filterType": "WILDCARD"}]}]


def test_registry_cmk_lets_ecr_create_grants_for_repositories_only(full: Synth) -> None:
    """ECR creates a grant on the CMK for each repository: the key allows CreateGrant to the account only through
    ECR in the region and only for AWS resources, RetireGrant only through ECR, and neither to the administrators."""
    sts = statements(full.inv.named("registry-key", KEY))
    through = {"kms:CallerAccount": ACCOUNT_ID, "kms:ViaService": [f"ecr.{REGION}.amazonaws.com"]}
    create = sts["GrantsOnlyThroughServicesForAwsResources"]
    assert create["Principal"] == {"AWS": ROOT} and create["Action"] == ["kms:CreateGrant"]
    assert create["Condition"] == {"StringEquals": through, "Bool": {"kms:GrantIsForAWSResource": "true"}}
    retire = sts["GrantsRetiredOnlyThroughServices"]
    assert retire["Action"] == ["kms:RetireGrant"] and retire["Condition"] == {"StringEquals": through}
    assert sts["KeyUseOnlyThroughServices"]["Condition"]["StringEquals"] == through
    assert sts["KeyAdministrationWithoutUse"]["Principal"] == {"AWS": KEY_ADMIN}
    assert "kms:CreateGrant" not in sts["KeyAdministrationWithoutUse"]["Action"]


# --- who may pull, who may push ----------------------------------------------------------------------------------


def test_every_repository_has_one_policy_wired_to_it(full: Synth) -> None:
    """A repository policy per repository (families and mirrors), wired to its name, all with the same text, which
    names THIS endpoint (wired from the endpoint's id) and THIS CI role."""
    texts = set()
    ci = full.inv.named("registry-ci", ROLE)
    endpoint = full.one(ENDPOINT)
    for repo in repositories(full).values():
        doc = policy_of(full, repo)
        texts.add(json.dumps(doc, sort_keys=True))
    assert len(texts) == 1
    for p in full.inv.of_type(REPOSITORY_POLICY):
        assert {r.attribute for r in p.refs_to(endpoint.urn)} == {"id"}, p.name
        assert {r.attribute for r in p.refs_to(ci.urn)} == {"arn"}, p.name


def test_only_the_named_roles_pull_and_only_through_the_endpoint(full: Synth) -> None:
    """Decided by each repository's policy: the named roles may pull through the endpoint (the policy alone allows
    it); the same roles from outside the VPC or through another endpoint, and any other principal of the account
    (whatever its IAM policies say), are denied explicitly."""
    vpce = endpoint_id(full)
    pullers = [role_arn(full, f"{n}-role") for n in ("gpu-nodes", "system-nodes", "workload", "admission")]
    outsider = role_arn(full, "outsider-role")
    for repo in repositories(full).values():
        doc = policy_of(full, repo)
        for action in PULL_ACTIONS:
            for caller in pullers:
                assert decide(doc, caller=caller, action=action, source_vpce=vpce) == "allow", (repo.name, caller)
                assert decide(doc, caller=caller, action=action) == "deny", (repo.name, caller)
                assert decide(doc, caller=caller, action=action, source_vpce="vpce-0ther") == "deny"
            for caller in (outsider, ROOT, KEY_ADMIN):
                assert decide(doc, caller=caller, action=action, source_vpce=vpce) == "deny", (repo.name, caller)
        (allow,) = [s for s in doc["Statement"] if s["Effect"] == "Allow" and "ecr:BatchGetImage" in s["Action"]
                    and s["Principal"]["AWS"] != role_arn(full, "registry-ci")]
        assert sorted(allow["Action"]) == sorted(PULL_ACTIONS)
        assert sorted(allow["Principal"]["AWS"]) == sorted(pullers)


def test_only_ci_pushes_and_ci_signs_from_outside(full: Synth) -> None:
    """CI alone may push (the policy allows it and denies every other principal, the pulling roles included), and
    CI (which signs from outside the VPC) may read what it signs without the endpoint. Inspector's scanning role
    is spared the pull denies; nobody else is."""
    ci = role_arn(full, "registry-ci")
    others = [role_arn(full, f"{n}-role") for n in ("gpu-nodes", "outsider")] + [ROOT, INSPECTOR]
    for repo in repositories(full).values():
        doc = policy_of(full, repo)
        for action in PUSH_ACTIONS:
            assert decide(doc, caller=ci, action=action) == "allow", (repo.name, action)
            for caller in others:
                assert decide(doc, caller=caller, action=action, source_vpce=endpoint_id(full)) == "deny"
        for action in PULL_ACTIONS:
            assert decide(doc, caller=ci, action=action) == "allow"
            assert decide(doc, caller=INSPECTOR, action=action) == "silent"
    assert not set(PULL_ACTIONS) & set(PUSH_ACTIONS), "a push action in the pull list would let pullers push"


def test_without_pullers_nobody_but_ci_pulls(bare: Synth) -> None:
    """A stack without a cluster allows no pull at all: no Allow statement for pulls, every principal but CI (and
    Inspector's scanning) denied, through the endpoint or not."""
    (repo,) = repositories(bare).values()
    doc = policy_of(bare, repo)
    assert [s["Sid"] for s in doc["Statement"] if s["Effect"] == "Allow"] == ["PushAndSignByCi"]
    for action in PULL_ACTIONS:
        for caller in (role_arn(bare, "nodes-role"), ROOT):
            assert decide(doc, caller=caller, action=action, source_vpce=endpoint_id(bare)) == "deny"
        assert decide(doc, caller=role_arn(bare, "registry-ci"), action=action) == "allow"


def test_allow_pulls_is_called_once(full: Synth) -> None:
    """A second call would write a second policy per repository: refused, with the reason."""
    assert "already called" in full.errors["twice"]
    assert len(full.inv.of_type(REPOSITORY_POLICY)) == len(repositories(full))


# --- pull-through caches -------------------------------------------------------------------------------------------


def test_one_cache_rule_and_hardening_template_per_upstream(full: Synth) -> None:
    """Per declared upstream: a cache rule (prefix = the upstream's name, its registry's URL) and a creation
    template for that prefix, applied to pull-through repositories, with THIS CMK, immutable tags, the same
    lifecycle and the same policy as the stack's repositories minus CI's push (nobody pushes into a cache)."""
    rules = {r.inputs["ecrRepositoryPrefix"]: r for r in full.inv.of_type(CACHE_RULE)}
    templates = {t.inputs["prefix"]: t for t in full.inv.of_type(TEMPLATE)}
    upstreams = {p.upstream for p in SPEC.pull_through}
    assert set(rules) == set(templates) == upstreams
    cmk = full.inv.named("registry-key", KEY)
    lifecycle = full.inv.of_type(LIFECYCLE)[0].inputs["policy"]
    repo_policy = policy_of(full, next(iter(repositories(full).values())))
    for upstream in upstreams:
        assert rules[upstream].inputs["upstreamRegistryUrl"] == UPSTREAMS[upstream]
        assert "credentialArn" not in rules[upstream].inputs
        t = templates[upstream]
        assert t.inputs["appliedFors"] == ["PULL_THROUGH_CACHE"]
        assert t.inputs["imageTagMutability"] == "IMMUTABLE"
        assert t.inputs["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": cmk.outputs["arn"]}]
        assert ref_attr(t, "encryptionConfigurations", 0, "kmsKey") == (cmk.urn, "arn")
        assert t.inputs["lifecyclePolicy"] == lifecycle
        assert t.inputs["resourceTags"]["hardstack:stack"] == STACK
        cached = json.loads(t.inputs["repositoryPolicy"])
        own = {s["Sid"]: s for s in repo_policy["Statement"]}
        by_sid = {s["Sid"]: s for s in cached["Statement"]}
        assert set(own) - set(by_sid) == {"PushAndSignByCi", "DenyPushesByOthers"}
        assert set(by_sid) - set(own) == {"DenyPushes"}
        for sid in set(own) & set(by_sid):
            assert by_sid[sid] == own[sid], sid
        assert "Condition" not in by_sid["DenyPushes"]
        for action in PUSH_ACTIONS:
            assert decide(cached, caller=role_arn(full, "registry-ci"), action=action) == "deny"


def test_creation_templates_act_through_their_own_narrow_role(full: Synth) -> None:
    """ECR needs a role of ours to create KMS-encrypted, tagged repositories: only ECR for this account may assume
    it (boundary, one hour); it may create and tag only the allowlisted cached repositories and use only THIS CMK,
    only through ECR."""
    role = full.inv.named("registry-cache-template", ROLE)
    (trust,) = policy(role, "assumeRolePolicy")["Statement"]
    assert trust["Principal"] == {"Service": "ecr.amazonaws.com"} and trust["Action"] == ["sts:AssumeRole"]
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}
    assert role.inputs["maxSessionDuration"] == 3600 and role.inputs["permissionsBoundary"]
    for t in full.inv.of_type(TEMPLATE):
        assert ref_attr(t, "customRoleArn") == (role.urn, "arn")
    (grant,) = [p for p in full.inv.of_type(ROLE_POLICY) if ref_attr(p, "role")[0] == role.urn]
    create, use_key = policy(grant)["Statement"]
    assert create["Action"] == list(TEMPLATE_ROLE_ACTIONS)
    assert create["Resource"] == [f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/{p.upstream}/{a}"
                                  for p in SPEC.pull_through for a in p.allow]
    assert use_key["Action"] == sorted(TEMPLATE_KEY_ACTIONS)
    assert use_key["Resource"] == full.inv.named("registry-key", KEY).outputs["arn"]
    assert use_key["Condition"] == {"StringEquals": {"kms:ViaService": f"ecr.{REGION}.amazonaws.com"}}


def test_nodes_may_cache_only_allowlisted_upstream_repositories(full: Synth) -> None:
    """`grant_pull_through` gives each node role one policy: import and create exactly the allowlisted upstream
    repositories; the workload, admission and other roles get none."""
    allowed = [f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/{p.upstream}/{a}"
               for p in SPEC.pull_through for a in p.allow]
    for name in ("gpu-nodes", "system-nodes", "workload", "admission", "outsider"):
        role = full.inv.named(f"{name}-role", ROLE)
        grants = [p for p in full.inv.of_type(ROLE_POLICY) if ref_attr(p, "role")[0] == role.urn
                  and "BatchImportUpstreamImage" in p.inputs["policy"]]
        if name not in ("gpu-nodes", "system-nodes"):
            assert not grants, name
            continue
        (grant,) = grants
        assert grant.name == f"registry-pull-through-{name}-role"
        (st,) = policy(grant)["Statement"]
        assert st["Effect"] == "Allow" and st["Action"] == list(PULL_THROUGH_ACTIONS)
        assert st["Resource"] == allowed


def test_without_a_cache_there_is_nothing_to_cache(bare: Synth) -> None:
    """No cache rule, template, template role or node grant when the registry declares no pull-through cache."""
    for type_token in (CACHE_RULE, TEMPLATE):
        assert not bare.inv.of_type(type_token)
    assert bare.values["pull-through-none"] is None
    assert {r.name for r in bare.inv.of_type(ROLE)} == {"nodes-role", "registry-ci"}
    assert not [p.name for p in bare.inv.of_type(ROLE_POLICY) if "BatchImportUpstreamImage" in p.inputs["policy"]]


# --- the signing identity ---------------------------------------------------------------------------------------


def test_signing_key_is_a_p256_signing_key_that_cannot_be_lost_quickly(full: Synth) -> None:
    """ECC P-256 for SIGN_VERIFY (cosign's KMS signer), enabled, single-region, 30-day deletion window, lockout
    check kept; no rotation (KMS cannot rotate asymmetric keys), with a stack-scoped alias wired to it."""
    key = full.inv.named("registry-signing-key", KEY)
    assert key.inputs["keyUsage"] == "SIGN_VERIFY"
    assert key.inputs["customerMasterKeySpec"] == "ECC_NIST_P256"
    assert key.inputs["enableKeyRotation"] is False
    assert key.inputs["deletionWindowInDays"] == 30 and key.inputs["isEnabled"] is True
    assert key.inputs["multiRegion"] is False and key.inputs["bypassPolicyLockoutSafetyCheck"] is False
    alias = full.inv.named("registry-signing-alias", ALIAS)
    assert alias.inputs["name"] == f"alias/hardstack/{STACK}/registry-signing"
    assert ref_attr(alias, "targetKeyId")[0] == key.urn and alias.inputs["targetKeyId"] == key.outputs["keyId"]


def test_only_ci_may_sign(full: Synth) -> None:
    """Decided by the key policy: CI may sign; the account root (whatever IAM grants), the key administrators,
    the nodes and any other role are denied kms:Sign explicitly. The Deny names THIS CI role (wired)."""
    key = full.inv.named("registry-signing-key", KEY)
    doc = policy(key)
    ci = full.inv.named("registry-ci", ROLE)
    assert decide(doc, caller=ci.outputs["arn"], action="kms:Sign") == "allow"
    for caller in (ROOT, KEY_ADMIN, role_arn(full, "gpu-nodes-role"), role_arn(full, "admission-role"), INSPECTOR):
        assert decide(doc, caller=caller, action="kms:Sign") == "deny", caller
    assert {r.attribute for r in key.refs_to(ci.urn)} == {"arn"}
    for st in doc["Statement"]:
        if st["Effect"] == "Allow" and "kms:Sign" in as_list(st["Action"]):
            assert st["Principal"] == {"AWS": ci.outputs["arn"]}, st


def test_administrators_administer_and_the_account_verifies(full: Synth) -> None:
    """The blueprint's key administrators get the administration actions every CMK of the stack has (no use,
    no CreateGrant); the account may read the public key and verify, nothing more."""
    sts = statements(full.inv.named("registry-signing-key", KEY))
    admin = sts["KeyAdministrationWithoutUse"]
    assert admin["Principal"] == {"AWS": KEY_ADMIN} and admin["Action"] == list(KEY_ADMIN_ACTIONS)
    assert not {"kms:Sign", "kms:CreateGrant", "kms:Verify"} & set(admin["Action"])
    account = sts["AccountVerifiesSignatures"]
    assert account["Principal"] == {"AWS": ROOT} and account["Action"] == list(VERIFY_ACTIONS)
    assert set(sts) == {"KeyAdministrationWithoutUse", "AccountVerifiesSignatures", "CiSigns", "NobodyElseSigns"}


def test_ci_role_trusts_only_the_declared_pipelines(full: Synth) -> None:
    """Web identity from THE declared OIDC provider only, with the declared audience and exactly the declared
    subjects (StringEquals: no pattern), under the boundary, for an hour at most."""
    role = full.inv.named("registry-ci", ROLE)
    (st,) = policy(role, "assumeRolePolicy")["Statement"]
    assert st["Effect"] == "Allow" and st["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert st["Principal"] == {"Federated": SPEC.ci.oidc_provider_arn}
    assert st["Condition"] == {"StringEquals": {f"{PROVIDER_HOST}:aud": "sts.acme.example",
                                                f"{PROVIDER_HOST}:sub": SPEC.ci.subjects}}
    assert role.inputs["maxSessionDuration"] == 3600
    boundary = full.inv.named("boundary-policy")
    assert ref_attr(role, "permissionsBoundary") == (boundary.urn, "arn")
    assert role.inputs["tags"]["hardstack:purpose"] == "ci-push-and-sign"


def test_ci_role_pushes_to_the_stack_repositories_and_signs_with_the_stack_key(full: Synth) -> None:
    """CI's one policy: the registry login (unscopable), push and read on exactly the stack's repositories
    (families and mirrors, wired to each), sign with exactly THIS key. No other action, no wildcard."""
    role = full.inv.named("registry-ci", ROLE)
    (grant,) = [p for p in full.inv.of_type(ROLE_POLICY) if ref_attr(p, "role")[0] == role.urn]
    by_sid = statements(grant)
    arns = sorted(r.outputs["arn"] for r in repositories(full).values())
    assert by_sid["RegistrySignIn"]["Action"] == list(SIGN_IN_ACTIONS) and by_sid["RegistrySignIn"]["Resource"] == "*"
    assert by_sid["PushToTheStackRepositories"] == {"Sid": "PushToTheStackRepositories", "Effect": "Allow",
                                                    "Action": list(PUSH_ACTIONS), "Resource": arns}
    assert by_sid["ReadWhatSigningReads"]["Action"] == list(PULL_ACTIONS)
    assert by_sid["ReadWhatSigningReads"]["Resource"] == arns
    key = full.inv.named("registry-signing-key", KEY)
    assert by_sid["SignWithTheStackKey"]["Action"] == list(SIGN_ACTIONS)
    assert by_sid["SignWithTheStackKey"]["Resource"] == key.outputs["arn"]
    assert set(by_sid) == {"RegistrySignIn", "PushToTheStackRepositories", "ReadWhatSigningReads",
                           "SignWithTheStackKey"}
    for repo in repositories(full).values():
        assert {r.attribute for r in grant.refs_to(repo.urn)} == {"arn"}, repo.name
    for st in by_sid.values():
        assert all("*" not in a for a in st["Action"]), st


def test_grant_verify_reads_the_public_key_of_this_key_only(full: Synth) -> None:
    key = full.inv.named("registry-signing-key", KEY)
    grant = full.inv.named("registry-verify-admission-role", ROLE_POLICY)
    (st,) = policy(grant)["Statement"]
    assert st["Action"] == list(VERIFY_ACTIONS) and st["Resource"] == key.outputs["arn"]
    assert "kms:Sign" not in st["Action"]


# --- names for the cluster ----------------------------------------------------------------------------------------


def test_image_references_and_patterns(full: Synth) -> None:
    """Families resolve under the stack's prefix, cached images under their upstream's; admission verifies
    signatures of everything under the stack's prefix and admits exactly the allowlisted cached patterns; charts
    pull their images from the stack's mirror."""
    host = f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com"
    assert full.values["family"] == f"{host}/{STACK}/inference-server@{DIGEST}"
    assert full.values["cached"] == f"{host}/ecr-public/nvidia/cuda@{DIGEST}"
    assert full.values["signed"] == [f"{host}/{STACK}/*"]
    assert full.values["cached-patterns"] == [f"{host}/ecr-public/ubuntu/squid", f"{host}/ecr-public/nvidia/*",
                                              f"{host}/k8s/pause"]
    assert full.values["mirror-registry"] == f"{host}/{STACK}/platform"
    for repo in repositories(full).values():
        assert repo.outputs["repositoryUrl"].startswith(f"{host}/{STACK}/")


def test_images_outside_the_registry_are_refused(full: Synth, bare: Synth) -> None:
    """An image of no family, a tag instead of a digest, an upstream image off the allowlist: errors naming why."""
    assert "not in the stack's registry" in full.errors["not-in-registry"]
    assert "sha256" in full.errors["tag"]
    assert "not in the stack's registry" in full.errors["not-allowlisted"]
    assert bare.values["cached-patterns"] == []


def test_mirrors_must_be_repository_paths() -> None:
    from hardstack.modules.registry import checked_mirrors

    assert checked_mirrors(MIRRORS) == MIRRORS
    for bad in (("Kyverno/kyverno",), ("kyverno//kyverno",), ("kyverno/kyverno", "kyverno/kyverno")):
        with pytest.raises(ValueError):
            checked_mirrors(bad)


@pytest.mark.parametrize("families, mirrors", [(["mirror-kyverno-kyverno"], ("kyverno/kyverno",)),
                                                (["serving"], ("kyverno/kyverno", "kyverno-kyverno"))])
def test_repositories_whose_resource_names_clash_are_refused(families: list[str], mirrors: tuple[str, ...]) -> None:
    """A family and a mirror (or two mirrors) that would share a Pulumi resource name are refused before anything
    is created, naming the clash."""
    from hardstack.errors import SynthError

    spec = BARE.model_copy(update={"repositories": families})
    with pytest.raises(SynthError, match="same name"):
        synth(spec, mirrors=mirrors, with_roles=False)


# --- parliament ---------------------------------------------------------------------------------------------------


def registry_documents(s: Synth) -> list[tuple[Resource, str, str]]:
    """Every IAM policy document the registry writes (and the CMK's, which it relies on)."""
    from .test_identity import policy_documents

    urns = {component(s).urn, s.inv.named("registry-key", KEY).urn}
    return [(r, path, text) for r, path, text in policy_documents(s.inv)
            if r.parent in urns or r.urn in urns or "pull-through" in r.name or "verify" in r.name]


def documented_false_positive(resource: Resource, path: str, issue: str, detail: str) -> bool:
    """parliament findings that are wrong about these documents (each explained); everything else counts."""
    # ECR repository policies (and the creation templates' copy) apply to their repository: ECR's documented
    # policies carry no Resource element. Trust policies have none either. parliament lints every document as an
    # identity policy.
    if issue == "MALFORMED" and detail == "Statement contains neither Resource nor NotResource":
        return resource.type in (REPOSITORY_POLICY, TEMPLATE, ROLE)
    # An IAM OIDC identity provider ARN is a valid federated principal (IAM's web identity federation);
    # parliament knows only the built-in identity providers (Cognito, Amazon, Facebook, Google).
    if issue == "UNKNOWN_FEDERATION_SOURCE":
        return resource.type == ROLE and detail == SPEC.ci.oidc_provider_arn
    # ecr:BatchImportUpstreamImage is authorized per repository (ECR documents granting it in repository and
    # registry policies on `repository/<prefix>/*`); parliament's action table lists it with resource `*` only.
    if issue == "RESOURCE_MISMATCH":
        return "'ecr:BatchImportUpstreamImage'" in detail and "CreateRepository" not in detail
    return False


def test_parliament_finds_nothing_medium_or_worse(full: Synth) -> None:
    """parliament reports no finding of severity MEDIUM or higher on the CI role's trust and policy, the
    repository and template policies, both key policies and the node and template grants."""
    from .test_identity import SEVERITIES, parliament_api

    parliament = parliament_api()
    floor = SEVERITIES.index("MEDIUM")
    documents = registry_documents(full)
    kinds = {(r.type, path) for r, path, _ in documents}
    assert {(REPOSITORY_POLICY, "policy"), (TEMPLATE, "repositoryPolicy"), (KEY, "policy"),
            (ROLE, "assumeRolePolicy"), (ROLE_POLICY, "policy")} <= kinds
    findings = []
    for resource, path, text in documents:
        for finding in parliament.analyze_policy_string(text).findings:
            finding = parliament.enhance_finding(finding)
            if SEVERITIES.index(finding.severity) < floor:
                continue
            if not documented_false_positive(resource, path, finding.issue, str(finding.detail)):
                findings.append(f"{resource.name}.{path}: {finding.severity} {finding.issue}: {finding.detail}")
    assert not findings, "\n".join(sorted(set(findings)))


# --- moto: created as synthesized ----------------------------------------------------------------------------------


@dataclass
class Moto:
    ecr: Any
    kms: Any
    iam: Any


@pytest.fixture(scope="module")
def moto_aws() -> Iterator[Moto]:
    """A moto server in the program's region."""
    import boto3

    with moto_server() as url:
        client = dict(endpoint_url=url, region_name=REGION, aws_access_key_id="testing",
                      aws_secret_access_key="testing")
        yield Moto(boto3.client("ecr", **client), boto3.client("kms", **client), boto3.client("iam", **client))


@pytest.fixture(scope="module")
def in_moto(full: Synth, moto_aws: Moto) -> dict[str, Any]:
    """The registry's CMK and signing key, scanning configuration and repositories (settings, lifecycle and
    repository policies exactly as synthesized, the CMK's moto ARN in place of the mock's) created in moto."""
    cmk_in = full.inv.named("registry-key", KEY).inputs
    cmk = moto_aws.kms.create_key(Policy=cmk_in["policy"], KeyUsage=cmk_in["keyUsage"],
                                  KeySpec=cmk_in["customerMasterKeySpec"])["KeyMetadata"]
    signing_in = full.inv.named("registry-signing-key", KEY).inputs
    signing = moto_aws.kms.create_key(Policy=signing_in["policy"], KeyUsage=signing_in["keyUsage"],
                                      KeySpec=signing_in["customerMasterKeySpec"])["KeyMetadata"]
    scanning = full.one(SCANNING).inputs
    moto_aws.ecr.put_registry_scanning_configuration(scanType=scanning["scanType"], rules=scanning["rules"])
    mock_cmk_arn = full.inv.named("registry-key", KEY).outputs["arn"]
    for name, repo in repositories(full).items():
        (encryption,) = repo.inputs["encryptionConfigurations"]
        assert encryption["kmsKey"] == mock_cmk_arn
        moto_aws.ecr.create_repository(
            repositoryName=name, imageTagMutability=repo.inputs["imageTagMutability"],
            imageScanningConfiguration=repo.inputs["imageScanningConfiguration"],
            encryptionConfiguration={"encryptionType": encryption["encryptionType"], "kmsKey": cmk["Arn"]})
        (lifecycle,) = [p for p in full.inv.of_type(LIFECYCLE) if ref_attr(p, "repository")[0] == repo.urn]
        moto_aws.ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=lifecycle.inputs["policy"])
        moto_aws.ecr.set_repository_policy(repositoryName=name, policyText=json.dumps(policy_of(full, repo)))
    return {"cmk": cmk, "signing": signing}


def test_moto_accepts_the_repositories_as_synthesized(full: Synth, moto_aws: Moto, in_moto: dict[str, Any]) -> None:
    """moto validates the lifecycle policy (ECR's rule schema) and the repository policy (IAM's document rules) and
    returns every repository immutable, scanned on push, KMS-encrypted with the CMK, and continuously scanned."""
    names = sorted(repositories(full))
    found = {r["repositoryName"]: r for r in moto_aws.ecr.describe_repositories(repositoryNames=names)["repositories"]}
    assert sorted(found) == names
    for name, r in found.items():
        assert r["imageTagMutability"] == "IMMUTABLE"
        assert r["imageScanningConfiguration"] == {"scanOnPush": True}
        assert r["encryptionConfiguration"] == {"encryptionType": "KMS", "kmsKey": in_moto["cmk"]["Arn"]}
        lifecycle = moto_aws.ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"]
        assert json.loads(lifecycle)["rules"][0]["selection"]["countNumber"] == SPEC.keep_images
        text = moto_aws.ecr.get_repository_policy(repositoryName=name)["policyText"]
        assert json.loads(text)["Statement"][0]["Condition"] == {"StringEquals": {"aws:SourceVpce": endpoint_id(full)}}
    scans = moto_aws.ecr.batch_get_repository_scanning_configuration(repositoryNames=names)
    assert {c["scanFrequency"] for c in scans["scanningConfigurations"]} == {"CONTINUOUS_SCAN"}
    assert moto_aws.ecr.get_registry_scanning_configuration()["scanningConfiguration"]["scanType"] == "ENHANCED"


def test_moto_refuses_retagging_an_immutable_repository(moto_aws: Moto, in_moto: dict[str, Any]) -> None:
    """A tag once pushed cannot be moved to another image (a mutable control repository accepts the same push)."""
    from botocore.exceptions import ClientError

    def manifest(n: int) -> str:
        return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                                      "digest": "sha256:" + str(n) * 64}, "layers": []})

    name = f"{STACK}/inference-server"
    moto_aws.ecr.put_image(repositoryName=name, imageManifest=manifest(1), imageTag="v1")
    with pytest.raises(ClientError) as refused:
        moto_aws.ecr.put_image(repositoryName=name, imageManifest=manifest(2), imageTag="v1")
    assert refused.value.response["Error"]["Code"] in ("ImageTagAlreadyExistsException", "ImageAlreadyExistsException")
    moto_aws.ecr.create_repository(repositoryName="control/mutable", imageTagMutability="MUTABLE")
    moto_aws.ecr.put_image(repositoryName="control/mutable", imageManifest=manifest(1), imageTag="v1")
    moto_aws.ecr.put_image(repositoryName="control/mutable", imageManifest=manifest(2), imageTag="v1")


def test_moto_signs_with_the_signing_key_as_cosign_verifies(moto_aws: Moto, in_moto: dict[str, Any]) -> None:
    """The key, created as synthesized, offers ECDSA_SHA_256 only; a signature it makes verifies against its
    public key (as cosign and Kyverno verify), and fails for other content. moto signs RAW messages only (it
    ignores MessageType=DIGEST, which cosign uses), so a RAW payload is signed here."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    key = in_moto["signing"]
    assert key["KeySpec"] == "ECC_NIST_P256" and key["KeyUsage"] == "SIGN_VERIFY"
    assert key["SigningAlgorithms"] == ["ECDSA_SHA_256"]
    payload = json.dumps({"critical": {"image": {"docker-manifest-digest": DIGEST}}}).encode()
    signature = moto_aws.kms.sign(KeyId=key["KeyId"], Message=payload, MessageType="RAW",
                                  SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    public = load_der_public_key(moto_aws.kms.get_public_key(KeyId=key["KeyId"])["PublicKey"])
    assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"
    public.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        public.verify(signature, payload + b" ", ec.ECDSA(hashes.SHA256()))
    stored = moto_aws.kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"]
    assert json.loads(stored)["Statement"][-1]["Sid"] == "NobodyElseSigns"


def test_moto_accepts_the_ci_role_as_synthesized(full: Synth, moto_aws: Moto) -> None:
    """IAM's document rules (as moto applies them) accept the CI role's trust, one-hour sessions, boundary and
    policy, and the template role's."""
    boundary = full.inv.named("boundary-policy")
    arn = moto_aws.iam.create_policy(PolicyName=boundary.inputs["name"],
                                     PolicyDocument=boundary.inputs["policy"])["Policy"]["Arn"]
    for name in ("registry-ci", "registry-cache-template"):
        role = full.inv.named(name, ROLE)
        made = moto_aws.iam.create_role(RoleName=name, AssumeRolePolicyDocument=role.inputs["assumeRolePolicy"],
                                        MaxSessionDuration=role.inputs["maxSessionDuration"],
                                        PermissionsBoundary=arn)["Role"]
        assert made["MaxSessionDuration"] == 3600
        for grant in [p for p in full.inv.of_type(ROLE_POLICY) if ref_attr(p, "role")[0] == role.urn]:
            moto_aws.iam.put_role_policy(RoleName=name, PolicyName=grant.name, PolicyDocument=grant.inputs["policy"])
        assert moto_aws.iam.list_role_policies(RoleName=name)["PolicyNames"]


# --- the gate ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report(full: Synth) -> GateReport:
    return run_gate(full.inv, target=STACK)


def results_for(report: GateReport, name: str) -> dict[str, str]:
    return {r.check_id: r.status for r in report.results if r.resource.rsplit("::", 1)[1] == name}


def test_checkov_and_hardstack_checks_pass_on_every_registry_resource(full: Synth, report: GateReport) -> None:
    """Real checkov and hardstack's checks on the small program: nothing fails, and each resource got the checks
    that judge it (tags, scanning, CMK on repositories; not public and endpoint-only on policies; only CI signs on
    the signing key). CKV_AWS_7 (rotation) answers UNKNOWN for an asymmetric key, which checkov drops: no result."""
    assert not failed(report), sorted(failed(report))
    for repo in repositories(full).values():
        assert {"CKV_AWS_51", "CKV_AWS_136", "CKV_AWS_163"} <= set(results_for(report, repo.name)), repo.name
    for p in full.inv.of_type(REPOSITORY_POLICY):
        assert {"CKV_AWS_32", "HS_SUPPLY_006"} <= set(results_for(report, p.name)), p.name
    for t in full.inv.of_type(TEMPLATE):
        assert "HS_SUPPLY_006" in results_for(report, t.name)
    signing = results_for(report, "registry-signing-key")
    assert {"HS_SUPPLY_005", "HS_KMS_001", "HS_KMS_002", "CKV_AWS_33", "CKV_AWS_227"} <= set(signing)
    assert "CKV_AWS_7" not in signing and results_for(report, "registry-key")["CKV_AWS_7"] == "passed"
    for role in ("registry-ci", "registry-cache-template"):
        assert {"HS_IAM_002", "HS_IAM_004", "CKV_AWS_393"} <= set(results_for(report, role)), role
    assert {"HS_IAM_001", "HS_IAM_003"} <= set(results_for(report, "registry-ci-push-and-sign"))


def _set(**values: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def change(props: dict[str, Any]) -> dict[str, Any]:
        props.update(values)
        return props

    return change


def _edit_policy(key: str, edit: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
                 ) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def change(props: dict[str, Any]) -> dict[str, Any]:
        doc = json.loads(props[key])
        doc["Statement"] = edit(doc["Statement"])
        props[key] = json.dumps(doc)
        return props

    return change


def _without(sid: str) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
    return lambda sts: [s for s in sts if s.get("Sid") != sid]


def _adding(statement: dict[str, Any]) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
    return lambda sts: [*sts, statement]


def _admin_signs(sts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**s, "Action": [*s["Action"], "kms:Sign"]} if s.get("Sid") == "KeyAdministrationWithoutUse" else s
            for s in sts]


PUBLIC_PULL = {"Sid": "Anyone", "Effect": "Allow", "Principal": "*", "Action": ["ecr:BatchGetImage"]}
MUTATIONS: dict[str, tuple[Callable[[Any], Any], str, str]] = {
    # name: (Pulumi transform, expected failed check, a Pulumi resource name it fails on)
    "mutable-tags": (transform_of(REPOSITORY, _set(imageTagMutability="MUTABLE"), name="registry-inference-server"),
                     "CKV_AWS_51", "registry-inference-server"),
    "no-scan-on-push": (transform_of(REPOSITORY, _set(imageScanningConfiguration={"scanOnPush": False})),
                        "CKV_AWS_163", "registry-mirror-kyverno-kyverno"),
    "aes256-instead-of-the-cmk": (transform_of(REPOSITORY, _set(encryptionConfigurations=[
        {"encryptionType": "AES256"}])), "CKV_AWS_136", "registry-inference-server"),
    "anyone-may-sign": (transform_of(KEY, _edit_policy("policy", _without("NobodyElseSigns")),
                                     name="registry-signing-key"), "HS_SUPPLY_005", "registry-signing-key"),
    "administrators-may-sign": (transform_of(KEY, _edit_policy("policy", _admin_signs), name="registry-signing-key"),
                                "HS_KMS_001", "registry-signing-key"),
    "pulls-from-anywhere": (transform_of(REPOSITORY_POLICY, _edit_policy("policy", _without(
        "DenyPullsOutsideTheEndpoint"))), "HS_SUPPLY_006", "registry-inference-server-policy"),
    "public-pulls": (transform_of(REPOSITORY_POLICY, _edit_policy("policy", _adding(PUBLIC_PULL))),
                     "CKV_AWS_32", "registry-mirror-eks-aws-load-balancer-controller-policy"),
    "ci-pushes-anywhere": (transform_of(ROLE_POLICY, _edit_policy("policy", _adding(
        {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"})), name="registry-ci-push-and-sign"),
        "HS_IAM_001", "registry-ci-push-and-sign"),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_weakening_the_registry_fails_the_gate(mutation: str) -> None:
    """The shipped llm-inference blueprint weakened through a Pulumi transform fails the named check on the named
    resource."""
    transform, check_id, resource = MUTATIONS[mutation]
    weakened = gate("llm-inference", transform)
    assert (check_id, resource) in failed(weakened), sorted(failed(weakened))


def test_weakening_a_cache_template_fails_the_gate() -> None:
    """agent-sandbox caches ECR Public: a creation template whose policy lets cached images be pulled from anywhere
    fails HS_SUPPLY_006 on the template."""
    transform = transform_of(TEMPLATE, _edit_policy("repositoryPolicy", _without("DenyPullsOutsideTheEndpoint")))
    weakened = gate("agent-sandbox", transform)
    assert ("HS_SUPPLY_006", "registry-ecr-public-template") in failed(weakened), sorted(failed(weakened))


@pytest.mark.parametrize("blueprint", ["llm-inference", "agent-sandbox"])
def test_shipped_registries_pass_the_gate(blueprint: str) -> None:
    """Every result on the shipped blueprints' registry resources passes (other components are judged elsewhere)."""
    shipped = gate(blueprint)
    mine = [r for r in shipped.results if "hardstack:registry:SignedRegistry" in r.resource]
    assert len(mine) > 40
    assert {r.status for r in mine} == {"passed"}, sorted((r.check_id, r.resource) for r in mine
                                                          if r.status != "passed")
