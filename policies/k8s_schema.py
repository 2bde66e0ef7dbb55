"""Kubernetes manifests checked against the OpenAPI schemas of a pinned Kubernetes version, every error reported.

The schemas are the JSON-schema renderings that the `kubernetes-validate` package bundles (one folder per minor
version). We use its "local-strict" flavour: one file per kind whose `$ref`s point into a shared
`_definitions.json`, with `additionalProperties: false` on every object so that an unknown field is an error, as it
is for `kubectl apply` (server-side field validation is Strict by default). We read the files ourselves rather than
call `kubernetes_validate.validate()`, which stops at the first error and has no answer for kinds it does not know.

A kind without a bundled schema is an error, unless its schema was registered with `register_crd_schema` (or
`register_crd` from a CustomResourceDefinition manifest) or is one of the CRDs hardstack vendors (`crds.py`: Kyverno's
ClusterPolicy, the AWS Load Balancer Controller's TargetGroupBinding, the Prometheus operator's PrometheusRule and
AlertmanagerConfig); a registered schema takes precedence.
CRD schemas are OpenAPI v3 structural schemas; they are translated to JSON schema with the Kubernetes semantics for
`nullable`, `x-kubernetes-int-or-string`, `x-kubernetes-preserve-unknown-fields` and `x-kubernetes-embedded-resource`,
and pruning made strict (an unknown field is an error). CEL rules (`x-kubernetes-validations`) and `format` are not checked.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema.exceptions
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

FLAVOUR = "local-strict"
_DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"
_OBJECT_META = f"{_DEFINITIONS_ID}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_VERSION_ARG = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?$")
_SCHEMA_DIR = re.compile(r"^v(\d+)\.(\d+)\.0-" + re.escape(FLAVOUR) + r"$")


@dataclass(frozen=True)
class SchemaError:
    kind: str
    name: str
    namespace: str
    path: str  # e.g. "spec.template.spec.containers[0].image"; "" for the manifest itself
    message: str

    def __str__(self) -> str:
        where = f"{self.kind}/{self.namespace + '/' if self.namespace else ''}{self.name}"
        return f"{where}: {self.path or '<root>'}: {self.message}"


def _schemas_root() -> Path:
    spec = importlib.util.find_spec("kubernetes_validate")  # located, not imported
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("kubernetes-validate is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"


def _bundled_versions() -> tuple[str, ...]:
    found = []
    for entry in _schemas_root().iterdir():
        m = _SCHEMA_DIR.match(entry.name)
        if m and (entry / "_definitions.json").is_file():
            found.append((int(m[1]), int(m[2])))
    return tuple(f"{major}.{minor}" for major, minor in sorted(found))


SUPPORTED_VERSIONS: tuple[str, ...] = _bundled_versions()
"""Kubernetes minor versions ("1.33") whose schemas are bundled, oldest first."""


def _normalise_version(version: str) -> str:
    m = _VERSION_ARG.match(str(version).strip())
    minor = f"{m[1]}.{m[2]}" if m else None
    if minor not in SUPPORTED_VERSIONS:
        raise ValueError(
            f"unsupported Kubernetes version {version!r}; supported: {', '.join(SUPPORTED_VERSIONS)}"
        )
    return minor


def _schema_dir(version: str) -> Path:
    return _schemas_root() / f"v{version}.0-{FLAVOUR}"


@functools.lru_cache(maxsize=None)
def _registry(version: str) -> Registry:
    definitions = json.loads((_schema_dir(version) / "_definitions.json").read_text())
    return Registry().with_resource(_DEFINITIONS_ID, Resource.from_contents(definitions))


def _group_version(api_version: str) -> tuple[str, str]:
    group, _, ver = api_version.rpartition("/")
    return group, ver


@functools.lru_cache(maxsize=None)
def _builtin_validator(version: str, api_version: str, kind: str) -> Draft202012Validator | None:
    """The validator of a built-in kind, or None when the version bundles no schema for (apiVersion, kind)."""
    group, ver = _group_version(api_version)
    if not ver or not re.fullmatch(r"[A-Za-z0-9]+", kind):
        return None
    # kubernetes-json-schema names a kind's file <kind>-<first label of the group>-<version>.json (no group: core)
    stem = "-".join(p for p in (kind.lower(), group.split(".")[0], ver) if p)
    path = _schema_dir(version) / f"{stem}.json"
    if not path.is_file():
        return None
    schema = json.loads(path.read_text())
    # the file name drops all but the group's first label, and files exist for non-kind types too (DeploymentSpec):
    # only a schema that declares this very group/version/kind answers for it
    gvks = schema.get("x-kubernetes-group-version-kind") or []
    if not any((g.get("group", ""), g.get("version"), g.get("kind")) == (group, ver, kind) for g in gvks):
        return None
    return Draft202012Validator(schema, registry=_registry(version))


# ---------------------------------------------------------------------------------------------------------------
# CRD schemas

_crd_lock = threading.Lock()
_crd_schemas: dict[tuple[str, str], dict[str, Any]] = {}  # (apiVersion, kind) → OpenAPI v3 schema
_crd_validators: dict[tuple[str, str, str], Draft202012Validator] = {}  # (k8s version, apiVersion, kind)


def register_crd_schema(group: str, version: str, kind: str, openapi_schema: dict[str, Any]) -> None:
    """Register the OpenAPI v3 schema (a CRD version's `schema.openAPIV3Schema`) of a custom resource kind.

    Consulted only for kinds that the Kubernetes version's bundled schemas do not know. Registering again replaces.
    """
    if not group or not version or not kind:
        raise ValueError("a CRD schema needs a group, a version and a kind")
    if not isinstance(openapi_schema, Mapping):
        raise TypeError("openapi_schema must be a mapping (the CRD's openAPIV3Schema)")
    api_version = f"{group}/{version}"
    schema = copy.deepcopy(dict(openapi_schema))
    try:  # fail here, not mid-gate
        Draft202012Validator.check_schema(_crd_json_schema(schema, api_version, kind))
    except jsonschema.exceptions.SchemaError as e:
        raise ValueError(f"invalid schema for {api_version} {kind}: {e.message}") from e
    with _crd_lock:
        _crd_schemas[(api_version, kind)] = schema
        for key in [k for k in _crd_validators if k[1:] == (api_version, kind)]:
            del _crd_validators[key]


def unregister_crd_schema(group: str, version: str, kind: str) -> None:
    api_version = f"{group}/{version}"
    with _crd_lock:
        _crd_schemas.pop((api_version, kind), None)
        for key in [k for k in _crd_validators if k[1:] == (api_version, kind)]:
            del _crd_validators[key]


def register_crd(crd: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Register the schema of every served version of a CustomResourceDefinition; returns its (group, version, kind)s."""
    spec = crd.get("spec") or {}
    group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
    registered = []
    for entry in spec.get("versions") or []:
        schema = (entry.get("schema") or {}).get("openAPIV3Schema")
        if entry.get("served", True) and schema is not None:
            register_crd_schema(group, entry["name"], kind, schema)
            registered.append((group, entry["name"], kind))
    return registered


def _crd_validator(version: str, api_version: str, kind: str) -> Draft202012Validator | None:
    key = (version, api_version, kind)
    validator = _crd_validators.get(key)
    if validator is None:
        with _crd_lock:
            schema = _crd_schemas.get((api_version, kind)) or _vendored_schemas().get((api_version, kind))
            if schema is None:
                return None
            validator = Draft202012Validator(_crd_json_schema(schema, api_version, kind), registry=_registry(version))
            _crd_validators[key] = validator
    return validator


@functools.lru_cache(maxsize=1)
def _vendored_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """The CRDs hardstack vendors, consulted after the registered ones (unregistering never removes them)."""
    from .crds import bundled_schemas

    return bundled_schemas()


def _crd_json_schema(schema: dict[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    root = _openapi(schema)
    root.setdefault("type", "object")
    props = root.setdefault("properties", {})
    props["apiVersion"] = {"const": api_version}
    props["kind"] = {"const": kind}
    meta = schema.get("properties", {}).get("metadata")
    props["metadata"] = {"$ref": _OBJECT_META}
    if isinstance(meta, Mapping) and (meta.keys() - {"type", "description"}):
        # a CRD may only narrow name/generateName; ObjectMeta closes the object
        narrowed = _openapi({**meta, "x-kubernetes-preserve-unknown-fields": True})
        props["metadata"] = {"allOf": [{"$ref": _OBJECT_META}, narrowed]}
    return root


_OPENAPI_SCHEMA_KEYS = ("items", "not", "additionalItems")
_OPENAPI_LIST_KEYS = ("allOf", "anyOf", "oneOf")


def _openapi(node: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAPI v3 structural schema node as JSON schema 2020-12, with the Kubernetes extensions applied."""
    out: dict[str, Any] = {k: v for k, v in node.items() if not k.startswith("x-") and k not in ("nullable", "format")}
    if "properties" in node:
        out["properties"] = {k: _openapi(v) for k, v in node["properties"].items()}
    if isinstance(node.get("additionalProperties"), Mapping):
        out["additionalProperties"] = _openapi(node["additionalProperties"])
    if isinstance(node.get("patternProperties"), Mapping):
        out["patternProperties"] = {k: _openapi(v) for k, v in node["patternProperties"].items()}
    for key in _OPENAPI_SCHEMA_KEYS:
        if isinstance(node.get(key), Mapping):
            out[key] = _openapi(node[key])
    for key in _OPENAPI_LIST_KEYS:
        if isinstance(node.get(key), list):
            out[key] = [_openapi(v) for v in node[key]]
    for bound, exclusive in (("maximum", "exclusiveMaximum"), ("minimum", "exclusiveMinimum")):
        if isinstance(node.get(exclusive), bool):  # OpenAPI 3.0's boolean flag → 2020-12's number
            out.pop(exclusive)
            if node[exclusive] and bound in node:
                out[exclusive] = out.pop(bound)

    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("allOf", []).append({"type": ["integer", "string"]})
    if node.get("x-kubernetes-embedded-resource"):
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props["metadata"] = {"$ref": _OBJECT_META}
    if out.get("type") == "object" and "additionalProperties" not in node and not node.get(
        "x-kubernetes-preserve-unknown-fields"
    ):
        out["additionalProperties"] = False  # pruning, made strict
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        out = {"anyOf": [{"type": "null"}, out]} if "type" not in out else out
    return out


# ---------------------------------------------------------------------------------------------------------------
# validation


def _render(path: Iterable[Any]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_$][\w$-]*", str(part)):
            text += f".{part}" if text else str(part)
        else:  # a map key such as nvidia.com/gpu
            text += f"[{json.dumps(str(part))}]"
    return text


def _sort_key(path: tuple[Any, ...]) -> tuple[tuple[int, Any], ...]:
    return tuple((0, p) if isinstance(p, int) else (1, str(p)) for p in path)


def _flatten(error: ValidationError) -> list[tuple[tuple[Any, ...], str]]:
    """(path, message) pairs for one jsonschema error: one per unknown or missing field, at that field's path."""
    path = tuple(error.absolute_path)
    instance = error.instance
    if error.validator == "additionalProperties" and error.validator_value is False and isinstance(instance, dict):
        schema = error.schema
        known = schema.get("properties", {})
        patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
        extras = [k for k in instance if k not in known and not any(p.search(k) for p in patterns)]
        if extras:
            return [((*path, k), f"unknown field {k!r}") for k in extras]
    if error.validator == "required" and isinstance(instance, dict):
        missing = [k for k in error.validator_value if k not in instance]
        if missing:
            return [((*path, k), f"required field {k!r} is missing") for k in missing]
    if error.validator == "oneOf" and instance is None:
        return []  # IntOrString / Quantity: null is "not set", as everywhere else in these schemas
    return [(path, error.message)]


def _identity(manifest: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = manifest.get("metadata") if isinstance(manifest.get("metadata"), Mapping) else {}
    return (
        str(manifest.get("kind") or ""),
        str(meta.get("name") or meta.get("generateName") or ""),
        str(meta.get("namespace") or ""),
    )


def validate_manifest(manifest: dict[str, Any], version: str) -> list[SchemaError]:
    """Every schema error of one manifest for Kubernetes `version` ("1.33"), sorted by path; [] when valid."""
    version = _normalise_version(version)
    if not isinstance(manifest, Mapping):
        return [SchemaError("", "", "", "", f"a manifest must be a mapping, not {type(manifest).__name__}")]
    kind, name, namespace = _identity(manifest)
    api_version = manifest.get("apiVersion")
    if not isinstance(api_version, str) or not api_version or not kind:
        return [SchemaError(kind, name, namespace, "", "a manifest needs a string apiVersion and kind")]
    validator = _builtin_validator(version, api_version, kind) or _crd_validator(version, api_version, kind)
    if validator is None:
        return [
            SchemaError(
                kind,
                name,
                namespace,
                "",
                f"no schema is known for apiVersion {api_version!r} kind {kind!r} in Kubernetes {version} "
                "(not a built-in kind, and no CRD schema registered for it)",
            )
        ]
    found: dict[tuple[tuple[Any, ...], str], None] = {}
    for error in validator.iter_errors(manifest):
        for item in _flatten(error):
            found.setdefault(item, None)
    ordered = sorted(found, key=lambda item: (_sort_key(item[0]), item[1]))
    return [SchemaError(kind, name, namespace, _render(path), message) for path, message in ordered]


def validate_manifests(manifests: Iterable[dict[str, Any]], version: str) -> list[SchemaError]:
    """Every schema error of every manifest, in the manifests' order."""
    version = _normalise_version(version)
    errors: list[SchemaError] = []
    for manifest in manifests:
        errors.extend(validate_manifest(manifest, version))
    return errors
