"""What a stack's Kyverno ClusterPolicies enforce about images, read the way Kyverno 1.19 reads them (the supply
chain checks HS_SUPPLY_001..003 ask these questions of the Kubernetes objects a stack declares).

Kyverno resolves a rule's failure action from the rule itself (`validate.failureActionOverrides`, then
`validate.failureAction`, or the `failureAction` of its `verifyImages` entries), and only when the rule says nothing
from the policy's deprecated `validationFailureActionOverrides` and `validationFailureAction` (default Audit). Here
any override to Audit counts as Audit: some namespace is then only audited.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

POLICY_API_VERSIONS = ("kyverno.io/v1", "kyverno.io/v2beta1")
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_WILDCARDS = ("*", "?")


def cluster_policies(objects: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, Mapping[str, Any]]]:
    """(address, manifest) of every Kyverno ClusterPolicy, sorted by address."""
    return sorted((a, m) for a, m in objects.items()
                  if m.get("kind") == "ClusterPolicy" and m.get("apiVersion") in POLICY_API_VERSIONS)


def namespaces(objects: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Addresses of every Namespace the stack declares."""
    return sorted(a for a, m in objects.items() if m.get("kind") == "Namespace" and m.get("apiVersion") == "v1")


def _spec(policy: Mapping[str, Any]) -> Mapping[str, Any]:
    return policy.get("spec") or {}


def _action(value: Any) -> str | None:
    return str(value).capitalize() if value else None


def _spec_action(spec: Mapping[str, Any]) -> str:
    if any(_action(o.get("action")) == "Audit" for o in spec.get("validationFailureActionOverrides") or []):
        return "Audit"
    return _action(spec.get("validationFailureAction")) or "Audit"


def fails_open(policy: Mapping[str, Any]) -> bool:
    """The policy's webhook lets requests through when Kyverno cannot answer."""
    spec = _spec(policy)
    failure = (spec.get("webhookConfiguration") or {}).get("failurePolicy") or spec.get("failurePolicy") or "Fail"
    return failure == "Ignore"


def _kinds(block: Mapping[str, Any] | None) -> set[str]:
    block = block or {}
    found = set((block.get("resources") or {}).get("kinds") or [])
    for each in (block.get("any") or []) + (block.get("all") or []):
        found |= set((each.get("resources") or {}).get("kinds") or [])
    return found


def matches_pods(rule: Mapping[str, Any]) -> bool:
    """The rule applies to Pods (and so, through Kyverno's generated rules and the Pods themselves, to workloads)."""
    return bool(_kinds(rule.get("match")) & {"Pod", "v1/Pod", "*"})


def _rules(policy: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    if _spec(policy).get("admission", True) is False:  # never consulted at admission
        return
    for rule in _spec(policy).get("rules") or []:
        if matches_pods(rule):
            yield rule


def _signed(entry: Mapping[str, Any]) -> bool:
    """A verifyImages entry that requires a signature from named signers."""
    attestors = entry.get("attestors") or []
    return bool(
        (entry.get("imageReferences") or entry.get("image"))
        and entry.get("required", True) is not False
        and attestors
        and all(any(e.get("keys") or e.get("keyless") or e.get("certificates") for e in (a.get("entries") or []))
                for a in attestors)
    )


def signature_verifications(policy: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(rule name, failure action) of each verifyImages entry that requires signatures on Pods' images."""
    spec = _spec(policy)
    found = []
    for rule in _rules(policy):
        for entry in rule.get("verifyImages") or []:
            if _signed(entry):
                found.append((str(rule.get("name")), _action(entry.get("failureAction")) or _spec_action(spec)))
    return found


def _validate_action(spec: Mapping[str, Any], validate: Mapping[str, Any]) -> str:
    overrides = validate.get("failureActionOverrides") or []
    if any(_action(o.get("action")) == "Audit" for o in overrides):
        return "Audit"
    return _action(validate.get("failureAction")) or _spec_action(spec)


def _anchored(pattern: Any) -> bool:
    """An image pattern that names its registry: every alternative starts with a host without wildcards."""
    if not isinstance(pattern, str) or not pattern.strip():
        return False
    for alternative in pattern.split("|"):
        host = alternative.strip().split("/", 1)[0]
        if "/" not in alternative or not host or any(w in host for w in _WILDCARDS) or host.startswith("!"):
            return False
    return True


def _image_patterns(pattern: Mapping[str, Any], key: str) -> list[Any]:
    """The image patterns a Kyverno pattern sets for one container list (`containers`, `=(initContainers)`...)."""
    spec = pattern.get("spec") if isinstance(pattern, Mapping) else None
    if not isinstance(spec, Mapping):
        return []
    found = []
    for name, containers in spec.items():
        if name.strip("=()^+X<") == key and isinstance(containers, list):
            found += [c.get("image") for c in containers if isinstance(c, Mapping)]
    return found


def _restricts(pattern: Mapping[str, Any]) -> bool:
    """Every container list's images are held to anchored registry patterns."""
    for key in CONTAINER_LISTS:
        images = _image_patterns(pattern, key)
        if not images or not all(_anchored(p) for p in images):
            return False
    return True


def registry_restrictions(policy: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(rule name, failure action) of each rule holding every container, init container and ephemeral container of
    Pods to named registries (a `validate.pattern`, or every alternative of `validate.anyPattern`)."""
    spec = _spec(policy)
    found = []
    for rule in _rules(policy):
        validate = rule.get("validate") or {}
        patterns = [validate["pattern"]] if isinstance(validate.get("pattern"), Mapping) else \
            list(validate.get("anyPattern") or [])
        if patterns and all(isinstance(p, Mapping) and _restricts(p) for p in patterns):
            found.append((str(rule.get("name")), _validate_action(spec, validate)))
    return found


def pod_specs(manifest: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The Pod spec of a Pod or of a workload's template (CronJobs: their job template's)."""
    kind = manifest.get("kind")
    spec = manifest.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec") or {})
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"):
        return (spec.get("template") or {}).get("spec") or {}
    return None


def images(pod_spec: Mapping[str, Any]) -> list[str]:
    """Every image a Pod spec runs, containers, init containers and ephemeral containers alike."""
    return [str(c.get("image")) for key in CONTAINER_LISTS for c in pod_spec.get(key) or [] if isinstance(c, Mapping)]
