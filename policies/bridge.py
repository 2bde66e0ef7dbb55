"""Inventory → what stock checkov reads: a Terraform plan (JSON) for `aws:*` resources, Kubernetes manifests
for `kubernetes:*` resources. References stay references, so checkov's graph checks see the connections."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from hardstack.errors import GateError
from hardstack.stacks.inventory import Inventory, Resource

from .terraform_schema import Field, package_of, resource_fields, snake, to_terraform
from .terraform_types import PROVIDER_RESOURCE_PREFIX, PROVIDERS, TERRAFORM_TYPES

TERRAFORM_VERSION = "1.9.8"
"""Stated in the plan: checkov scans nothing (and says nothing) when the plan lacks a version."""

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
"""A Helm release: its objects are rendered by Helm at deploy time, so the gate never sees them. It stands unjudged
only when it installs a reviewed chart at its pin (hardstack.modules.charts); any other makes the stack not verified.
Its values are judged (HS_SUPPLY_007): a reviewed chart run with other values is not what was reviewed."""
RELEASE_KIND = "HelmRelease"
"""A Helm release's address: `HelmRelease.<namespace>.<release name>`, beside the manifests' `Kind.namespace.name`."""
PLAN_FILE = "plan.json"
MANIFEST_DIR = "manifests"

_IDENT = re.compile(r"[^A-Za-z0-9_-]")


@dataclass
class Bridged:
    """The files for checkov and, for each judged resource, its checkov address."""

    plan: dict[str, Any] | None
    manifests: dict[str, str]
    address_of: dict[str, str] = field(default_factory=dict)  # URN → address (checkov's; a Helm release's own)
    urn_of: dict[str, str] = field(default_factory=dict)  # address → URN
    not_judged: dict[str, str] = field(default_factory=dict)  # URN → why (components, providers)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)  # Kubernetes address → manifest
    releases: dict[str, dict[str, Any]] = field(default_factory=dict)  # Helm release address → its inputs

    def workload_of_pod(self, address: str) -> str | None:
        """The URN of the workload whose pod template checkov's Kubernetes graph turned into `address`
        (`Pod.<namespace>.<workload name>.<template labels>`)."""
        for known, urn in self.urn_of.items():
            kind, _, rest = known.partition(".")
            if kind in WORKLOAD_KINDS and address.startswith(f"Pod.{rest}."):
                return urn
        return None

    def reviewed_releases(self) -> list[str]:
        """One line per Helm release standing unjudged because it installs a reviewed chart at its pin."""
        return sorted(f"not judged: {urn.rsplit('::', 1)[1]}: {why}" for urn, why in self.not_judged.items()
                      if urn.split("::")[2].rsplit("$", 1)[-1] == HELM_RELEASE)

    def files(self) -> dict[str, str]:
        out = dict(self.manifests)
        if self.plan is not None:
            out[PLAN_FILE] = json.dumps(self.plan, indent=2, sort_keys=True) + "\n"
        return out


def bridge(inventory: Inventory) -> Bridged:
    planned = tuple(f"{p}:" for p in PROVIDERS)
    aws = [r for r in inventory if r.custom and r.type.startswith(planned)]
    kube = [r for r in inventory if r.custom and r.type.startswith("kubernetes:") and r.type != HELM_RELEASE]
    releases = [r for r in inventory if r.custom and r.type == HELM_RELEASE]
    other = [
        r for r in inventory
        if r.custom and not r.type.startswith((*planned, "kubernetes:", PROVIDER_RESOURCE_PREFIX))
    ]
    unmapped = sorted({r.type for r in aws if r.type not in TERRAFORM_TYPES})
    if unmapped or other:
        raise GateError(
            "not verified: no translation for resource types "
            + ", ".join(unmapped + sorted({r.type for r in other}))
            + "; hardstack cannot judge them, so the stack is not verified"
        )
    _rendered_by_the_provider(inventory)
    out = Bridged(plan=None, manifests={})
    for r in inventory:
        if not r.custom:
            out.not_judged[r.urn] = "component (its children are judged)"
        elif r.type.startswith(PROVIDER_RESOURCE_PREFIX):
            out.not_judged[r.urn] = "provider configuration"
    unreviewed = []
    for r in releases:
        why = reviewed_release(r)
        if why is None:
            unreviewed.append(r)
        else:
            out.not_judged[r.urn] = why  # what it renders; its values are judged (`releases`)
    if unreviewed:
        raise GateError(
            "not verified: Helm releases of charts hardstack has not reviewed at these versions: "
            + "; ".join(_describe_release(r) for r in unreviewed)
            + "; their objects are rendered at deploy time and cannot be judged, so the stack is not verified "
            "(reviewed: " + ", ".join(_reviewed_charts()) + ")"
        )
    _addresses(aws, out)
    if aws:
        out.plan = _plan(aws, out.address_of)
    for r in kube:
        path, address, text = _manifest(r)
        out.manifests[path] = text
        out.objects[address] = yaml.safe_load(text)
        out.address_of[r.urn], out.urn_of[address] = address, r.urn
    for r in releases:
        address = f"{RELEASE_KIND}.{r.inputs.get('namespace') or 'default'}.{r.inputs.get('name') or r.name}"
        if address in out.urn_of:  # the same release name twice: a deploy would fail, the gate still names each
            address = f"{address}_{hashlib.sha256(r.urn.encode()).hexdigest()[:8]}"
        out.releases[address] = {k: v for k, v in r.inputs.items() if k not in ("id", "urn")}
        out.address_of[r.urn], out.urn_of[address] = address, r.urn
    return out


def reviewed_release(r: Resource) -> str | None:
    """Why a Helm release may stand unjudged: it installs a reviewed chart at exactly its pinned version, from exactly
    its pinned https repository, without a post-renderer (which could rewrite anything the chart renders). None
    otherwise."""
    from hardstack.modules.charts import REVIEWED

    chart = REVIEWED.get(str(r.inputs.get("chart")))
    repository = (r.inputs.get("repositoryOpts") or {}).get("repo")
    if chart is None or r.inputs.get("version") != chart.version or repository != chart.repository:
        return None
    if r.inputs.get("postrender"):
        return None
    return (f"Helm release of the reviewed chart {chart.name} {chart.version} (app {chart.app_version}) from "
            f"{chart.repository}: {chart.review}")


def _describe_release(r: Resource) -> str:
    repository = (r.inputs.get("repositoryOpts") or {}).get("repo") or "no repository"
    post = ", with a post-renderer" if r.inputs.get("postrender") else ""
    return f"{r.name} (chart {r.inputs.get('chart')!r} version {r.inputs.get('version') or 'unpinned'} " \
           f"from {repository}{post})"


def _reviewed_charts() -> list[str]:
    from hardstack.modules.charts import REVIEWED

    return [f"{c.name} {c.version} from {c.repository}" for c in REVIEWED.values()]


def _rendered_by_the_provider(inventory: Inventory) -> None:
    """Fail closed on Kubernetes components whose objects the provider renders (Helm charts, kustomizations, YAML
    decoded by the provider): under the mocks they hold no children, so nothing of what they deploy is judged."""
    parents = {r.parent for r in inventory}
    hidden = sorted(f"{r.name} ({r.type})" for r in inventory
                    if not r.custom and r.type.startswith("kubernetes:") and r.urn not in parents)
    if hidden:
        raise GateError(
            "not verified: " + ", ".join(hidden) + " deploy objects rendered at deploy time, which hardstack cannot "
            "judge; declare the objects as resources, or install a reviewed chart as a pinned Helm release"
        )


def terraform_addresses(resources: list[Resource]) -> dict[str, str]:
    """URN → the Terraform address the gate names each of these AWS resources by (pass every resource of a type,
    so that names colliding within the type are told apart as the gate tells them apart)."""
    out = Bridged(plan=None, manifests={})
    _addresses(resources, out)
    return out.address_of


def _addresses(resources: list[Resource], out: Bridged) -> None:
    taken: set[str] = set()
    for r in resources:
        name = _IDENT.sub("_", r.name)
        if not name or not (name[0].isalpha() or name[0] == "_"):
            name = f"r_{name}"
        address = f"{TERRAFORM_TYPES[r.type]}.{name}"
        if address in taken:  # same type and name under different parents
            address = f"{address}_{hashlib.sha256(r.urn.encode()).hexdigest()[:8]}"
        taken.add(address)
        out.address_of[r.urn], out.urn_of[address] = address, r.urn


def _plan(resources: list[Resource], address_of: dict[str, str]) -> dict[str, Any]:
    planned, configured = [], []
    for r in resources:
        tf_type = TERRAFORM_TYPES[r.type]
        address = address_of[r.urn]
        name = address.split(".", 1)[1]
        package = package_of(r.type)
        fields = resource_fields(r.type, tf_type)
        values = to_terraform(r.inputs, fields, package)
        expressions: dict[str, Any] = {}
        for ref in r.references:
            target = address_of.get(ref.resource)
            if target is None or ref.attribute is None:
                continue  # a dependency whose value is not found in the input is not a Terraform reference
            path, index = _tf_path(ref.path, fields, package)
            refs = [f"{target}.{snake(ref.attribute)}", target]
            if ref.match == "exact" and index is not None:
                # an element of a list (`subnet_ids = [aws_subnet.a.id, ...]`): the element names its source, as
                # in HCL, so that checkov connects every element and not only the first
                _set_element(values, path, index, refs[0])
            elif ref.match == "exact":
                _remove(values, path)  # computed from another resource: unknown at plan time, as Terraform says
            _add_expression(expressions, path, refs)
        planned.append(
            {
                "address": address,
                "mode": "managed",
                "type": tf_type,
                "name": name,
                "provider_name": PROVIDERS[r.type.split(":")[0]],
                "schema_version": 0,
                "values": values,
            }
        )
        configured.append(
            {
                "address": address,
                "mode": "managed",
                "type": tf_type,
                "name": name,
                "provider_config_key": r.type.split(":")[0],
                "expressions": expressions,
                "schema_version": 0,
            }
        )
    return {
        "format_version": "1.2",
        "terraform_version": TERRAFORM_VERSION,
        "planned_values": {"root_module": {"resources": planned}},
        "configuration": {"root_module": {"resources": configured}},
    }


def _tf_path(
    path: tuple[str | int, ...], fields: dict[str, Field], package: str
) -> tuple[tuple[str | int, ...], int | None]:
    """A reference's input path in Terraform terms, cut at the attribute that holds the reference, and the index
    of the element when the reference is one element of a list of values."""
    from .terraform_schema import block_fields

    out: list[str | int] = []
    current = fields
    i = 0
    while i < len(path):
        key = path[i]
        if not isinstance(key, str):
            break
        f = current.get(key) or Field(snake(key), "value")
        out.append(f.tf_name)
        if f.kind == "block" and f.args_class:
            out.append(0)
            current = block_fields(package, f.args_class)
            i += 1
        elif f.kind == "blocks" and f.args_class and i + 1 < len(path) and isinstance(path[i + 1], int):
            out.append(path[i + 1])
            current = block_fields(package, f.args_class)
            i += 2
        else:  # a value, a list of values or a map: the reference is on this attribute
            element = path[i + 1] if i + 1 == len(path) - 1 and isinstance(path[i + 1], int) else None
            return tuple(out), element if f.kind == "value" else None
    while out and isinstance(out[-1], int):  # a whole block: the reference is on the block's attribute
        out.pop()
    return tuple(out), None


def _set_element(values: dict[str, Any], path: tuple[str | int, ...], index: int, reference: str) -> None:
    node: Any = values
    for key in path:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(node, list) and index < len(node):
        node[index] = reference


def _remove(values: dict[str, Any], path: tuple[str | int, ...]) -> None:
    node: Any = values
    for key in path[:-1]:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(node, dict):
        node.pop(path[-1], None)


def _add_expression(expressions: dict[str, Any], path: tuple[str | int, ...], refs: list[str]) -> None:
    node: Any = expressions
    for key, nxt in zip(path, path[1:]):
        if isinstance(key, int):
            while len(node) <= key:
                node.append({})
            node = node[key]
        else:
            node = node.setdefault(key, [] if isinstance(nxt, int) else {})
    leaf = node.setdefault(path[-1], {"references": []})
    for ref in refs:
        if ref not in leaf["references"]:
            leaf["references"].append(ref)


def _manifest(r: Resource) -> tuple[str, str, str]:
    body = {k: v for k, v in r.inputs.items() if k not in ("id", "urn")}
    kind = body.get("kind") or r.type.rsplit(":", 1)[-1]
    api_version = body.get("apiVersion") or _api_version(r.type)
    body = {"apiVersion": api_version, "kind": kind, **{k: v for k, v in body.items() if k not in ("apiVersion", "kind")}}
    meta = body.setdefault("metadata", {})
    name = meta.get("name") or r.name
    meta["name"] = name
    namespace = meta.get("namespace") or "default"  # checkov's address for cluster-scoped objects too
    address = f"{kind}.{namespace}.{name}"
    folder = meta.get("namespace") or "_cluster"
    path = f"{MANIFEST_DIR}/{folder}/{kind.lower()}-{name}.yaml"
    return path, address, yaml.safe_dump(body, sort_keys=True)


def _api_version(token: str) -> str:
    group_version = token.split(":")[1]  # e.g. core/v1, apps/v1, networking.k8s.io/v1
    group, _, version = group_version.rpartition("/")
    return version if group == "core" else f"{group}/{version}"
