"""CustomResourceDefinitions hardstack emits objects of, vendored from their projects' release tags, so that the
gate validates those objects (HS_K8S_005) against the very schema the cluster's API server will apply.

Each file in `crd_schemas/` is the gzip of a JSON document: where the CRD came from (repository, tag, path, sha256 of
the file at that tag) and the CRD reduced to what validation reads (group, kind, scope and each version's name,
served/storage flags and openAPIV3Schema). Schema `description`s are dropped: they are most of the bytes and carry
no constraint. `vendor` produces such a file from a CRD's YAML; crd_schemas/README.md lists each one's provenance.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
from importlib import resources
from typing import Any, Mapping

import yaml

DIRECTORY = "crd_schemas"

_SCHEMA_MAPS = ("properties", "patternProperties", "definitions")
_SCHEMA_NODES = ("items", "additionalProperties", "not", "additionalItems")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")


def _without_descriptions(node: Any) -> Any:
    """A schema node without `description`s at any depth; property *names* (a field called `description`) stay."""
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "description":
            continue
        if key in _SCHEMA_MAPS and isinstance(value, Mapping):
            out[key] = {name: _without_descriptions(v) for name, v in value.items()}
        elif key in _SCHEMA_NODES and isinstance(value, Mapping):
            out[key] = _without_descriptions(value)
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_without_descriptions(v) for v in value]
        else:
            out[key] = value
    return out


def compact(crd: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a CRD that validation reads."""
    spec = crd["spec"]
    return {
        "apiVersion": crd["apiVersion"],
        "kind": crd["kind"],
        "metadata": {"name": crd["metadata"]["name"]},
        "spec": {
            "group": spec["group"],
            "names": {"kind": spec["names"]["kind"], "plural": spec["names"]["plural"]},
            "scope": spec["scope"],
            "versions": [
                {
                    "name": v["name"],
                    "served": v.get("served", True),
                    "storage": v.get("storage", False),
                    "schema": {"openAPIV3Schema": _without_descriptions(v["schema"]["openAPIV3Schema"])},
                }
                for v in spec["versions"]
            ],
        },
    }


class _KubernetesYaml(yaml.SafeLoader):
    """YAML as Kubernetes reads it: a bare `=` is the string "=" (PyYAML follows YAML 1.1, where it is the `value`
    type; prometheus-operator's CRDs list `=` among the match types of Alertmanager matchers)."""


_KubernetesYaml.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def vendor(source: bytes, *, repository: str, tag: str, path: str) -> bytes:
    """The vendored file for one CRD: `source` is the CRD's YAML as published at `tag` of `repository`."""
    crd = yaml.load(source, Loader=_KubernetesYaml)  # a SafeLoader
    document = {
        "source": {"repository": repository, "tag": tag, "path": path,
                   "sha256": hashlib.sha256(source).hexdigest()},
        "crd": compact(crd),
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return gzip.compress(text, mtime=0)


@functools.lru_cache(maxsize=None)
def bundled() -> tuple[dict[str, Any], ...]:
    """Every vendored document ({"source": ..., "crd": ...}), in file-name order."""
    folder = resources.files("hardstack.policies") / DIRECTORY
    return tuple(
        json.loads(gzip.decompress(entry.read_bytes()))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".json.gz")
    )


def bundled_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → openAPIV3Schema of every served version of every vendored CRD."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for document in bundled():
        spec = document["crd"]["spec"]
        for version in spec["versions"]:
            if version["served"]:
                schema = version["schema"]["openAPIV3Schema"]
                out[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = schema
    return out
