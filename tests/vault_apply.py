"""Apply an Inventory's `vault:*` resources to a real Vault/OpenBao server, as the Pulumi provider would.

Each resource type is mapped to the API calls the provider makes; references to other Vault resources are
resolved to the values the server returned (a mount's accessor, the TOTP method's id): `exact` replaces the
input, `contains` substitutes the mock value inside the text (the accessor inside a policy's HCL). Inputs that come
from other providers (the EKS endpoint, IAM role ARNs) keep their synthesized values. `vault:aws/*` resources are
not applied (OpenBao has no AWS secrets engine) but returned, so that tests can assert them. Any other type raises,
and so does a server that ignores a parameter: nothing is skipped silently.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from typing import Any, Callable

import hvac

from hardstack.stacks.inventory import Inventory, Resource

SKIPPED_PREFIXES = ("vault:aws/",)
"""Not available on OpenBao: returned to the caller instead of applied."""

Outputs = dict[str, Any]


@dataclass
class Applied:
    outputs: dict[str, Outputs] = field(default_factory=dict)
    """URN → the real values of the attributes other resources refer to (id, accessor, ...)."""
    skipped: list[Resource] = field(default_factory=list)
    """The `vault:aws/*` resources, not applied."""


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def body(inputs: dict[str, Any], *without: str) -> dict[str, Any]:
    """Top-level inputs as API parameters (camelCase → snake_case; nested maps such as bound_claims as they are)."""
    out = {snake(k): v for k, v in inputs.items() if k not in without}
    secret = [k for k, v in out.items() if v == "[secret]"]
    if secret:
        raise ValueError(f"inputs {secret} are secrets; an inventory does not hold their values")
    return out


WRITE_ONLY = {"oidc_client_secret", "token_reviewer_jwt"}
"""Parameters the server keeps but never returns."""


def write(client: hvac.Client, path: str, data: dict[str, Any], stored_at: str | None = None) -> dict[str, Any]:
    """Write; then make sure the server kept every parameter: no warning that it ignored some (answers with a
    body) and, read back from `stored_at`, every parameter is there (OpenBao drops warnings from empty answers)."""
    response = client.write_data(path, data=data)
    answer = response if isinstance(response, dict) else {}
    ignored = [w for w in answer.get("warnings") or [] if "ignored" in w.lower()]
    if stored_at is not None:
        ignored += sorted(set(data) - set(client.read(stored_at)["data"]) - WRITE_ONLY)
    if ignored:
        raise ValueError(f"{path}: the server ignored {ignored}")
    return answer


_JWT_CONFIG_KEYS = ("oidcDiscoveryUrl", "oidcDiscoveryCaPem", "oidcClientId", "oidcClientSecret", "jwksUrl",
                    "jwksCaPem", "jwtValidationPubkeys", "boundIssuer", "defaultRole", "jwtSupportedAlgs",
                    "oidcResponseMode", "oidcResponseTypes", "providerConfig", "namespaceInState")
"""Inputs of `vault:jwt/authBackend` that go to auth/<path>/config rather than sys/auth/<path>."""


def _auth_backend(client: hvac.Client, r: Resource, inputs: dict[str, Any]) -> Outputs:
    path = inputs["path"]
    write(client, f"sys/auth/{path}", body(inputs, "path", "tune", *_JWT_CONFIG_KEYS))
    if "tune" in inputs:
        write(client, f"sys/auth/{path}/tune", body(inputs["tune"]), stored_at=f"sys/auth/{path}/tune")
    if r.type == "vault:jwt/authBackend:AuthBackend":
        config = body({k: v for k, v in inputs.items() if k in _JWT_CONFIG_KEYS})
        write(client, f"auth/{path}/config", config, stored_at=f"auth/{path}/config")
    accessor = client.read("sys/auth")["data"][f"{path}/"]["accessor"]
    return {"id": path, "path": path, "accessor": accessor}


def _mount(client: hvac.Client, r: Resource, inputs: dict[str, Any]) -> Outputs:
    path = inputs["path"]
    unknown = set(inputs) - {"path", "type", "description", "options", "defaultLeaseTtlSeconds", "maxLeaseTtlSeconds"}
    if unknown:
        raise ValueError(f"{r.name}: inputs {sorted(unknown)} are not mapped to the mounts API")
    write(client, f"sys/mounts/{path}", {
        "type": inputs["type"],
        "description": inputs.get("description", ""),
        "options": inputs.get("options", {}),
        "config": {"default_lease_ttl": inputs.get("defaultLeaseTtlSeconds", 0),
                   "max_lease_ttl": inputs.get("maxLeaseTtlSeconds", 0)},
    })
    return {"id": path, "path": path, "accessor": client.read("sys/mounts")["data"][f"{path}/"]["accessor"]}


def _audit(client: hvac.Client, r: Resource, inputs: dict[str, Any]) -> Outputs:
    unknown = set(inputs) - {"path", "type", "options", "description", "local"}
    if unknown:
        raise ValueError(f"{r.name}: inputs {sorted(unknown)} are not mapped to the audit API")
    write(client, f"sys/audit/{inputs['path']}", body(inputs, "path"))
    return {"id": inputs["path"]}


def _role(client: hvac.Client, r: Resource, inputs: dict[str, Any]) -> Outputs:
    path = f"auth/{inputs['backend']}/role/{inputs['roleName']}"
    write(client, path, body(inputs, "backend", "roleName"), stored_at=path)
    return {"id": path}


def _approle_role(client: hvac.Client, r: Resource, inputs: dict[str, Any]) -> Outputs:
    out = _role(client, r, inputs)
    return {**out, "roleId": client.read(f"{out['id']}/role-id")["data"]["role_id"]}


def _backend_config(client: hvac.Client, r: Resource, inputs: dict[str, Any]) -> Outputs:
    path = f"auth/{inputs['backend']}/config"
    write(client, path, body(inputs, "backend"), stored_at=path)
    return {"id": path}


def _totp(client: hvac.Client, r: Resource, inputs: dict[str, Any]) -> Outputs:
    method_id = write(client, "identity/mfa/method/totp", body(inputs))["data"]["method_id"]  # warns if it ignores
    return {"id": method_id, "methodId": method_id}


def _login_enforcement(client: hvac.Client, r: Resource, inputs: dict[str, Any]) -> Outputs:
    path = f"identity/mfa/login-enforcement/{inputs['name']}"
    write(client, path, body(inputs, "name"), stored_at=path)
    return {"id": inputs["name"], "name": inputs["name"]}


def _policy(client: hvac.Client, r: Resource, inputs: dict[str, Any]) -> Outputs:
    path = f"sys/policies/acl/{inputs['name']}"
    write(client, path, {"policy": inputs["policy"]}, stored_at=path)
    return {"id": inputs["name"], "name": inputs["name"]}


APPLIERS: dict[str, Callable[[hvac.Client, Resource, dict[str, Any]], Outputs]] = {
    "vault:index/audit:Audit": _audit,
    "vault:jwt/authBackend:AuthBackend": _auth_backend,
    "vault:index/authBackend:AuthBackend": _auth_backend,
    "vault:jwt/authBackendRole:AuthBackendRole": _role,
    "vault:appRole/authBackendRole:AuthBackendRole": _approle_role,
    "vault:kubernetes/authBackendRole:AuthBackendRole": _role,
    "vault:kubernetes/authBackendConfig:AuthBackendConfig": _backend_config,
    "vault:identity/mfaTotp:MfaTotp": _totp,
    "vault:identity/mfaLoginEnforcement:MfaLoginEnforcement": _login_enforcement,
    "vault:index/mount:Mount": _mount,
    "vault:index/policy:Policy": _policy,
}


def resolve(inventory: Inventory, r: Resource, applied: Applied) -> dict[str, Any]:
    """The resource's inputs with references to applied resources replaced by the server's real values."""
    inputs = copy.deepcopy(r.inputs)
    for ref in r.references:
        if ref.resource not in applied.outputs or ref.match == "dependency":
            continue  # another provider's value (kept as synthesized), or ordering only
        real = applied.outputs[ref.resource].get(ref.attribute)  # type: ignore[arg-type]
        if real is None:
            raise KeyError(f"{r.name}: {list(ref.path)} refers to {ref.attribute!r} of {ref.resource}, "
                           "which the applier does not know")
        *parents, last = ref.path
        node: Any = inputs
        for key in parents:
            node = node[key]
        if ref.match == "exact":
            node[last] = real
        elif ref.match == "contains":
            mock = inventory[ref.resource].outputs.get(ref.attribute) or _mock_value(inventory, ref.resource,
                                                                                    ref.attribute)
            if not mock or mock not in node[last]:
                raise ValueError(f"{r.name}: the synthesized {ref.attribute} {mock!r} is not in {list(ref.path)}")
            node[last] = node[last].replace(mock, real)
        else:
            raise ValueError(f"{r.name}: unknown reference match {ref.match!r}")
    return inputs


def _mock_value(inventory: Inventory, urn: str, attribute: str | None) -> str | None:
    """The synthesized value of `attribute` of `urn`, from any exact reference to it (inventories read from JSON
    carry no outputs)."""
    for other in inventory:
        for ref in other.references:
            if ref.resource == urn and ref.attribute == attribute and ref.match == "exact":
                return other.get(*ref.path)
    return None


def apply(inventory: Inventory, client: hvac.Client) -> Applied:
    """Apply every `vault:*` resource of the inventory, in dependency order."""
    resources = {r.urn: r for r in inventory if r.type.startswith("vault:")}
    applied = Applied()
    graph = {urn: {ref.resource for ref in r.references if ref.resource in resources} for urn, r in resources.items()}
    for urn in TopologicalSorter(graph).static_order():
        r = resources[urn]
        if r.type.startswith(SKIPPED_PREFIXES):
            applied.skipped.append(r)
            continue
        if r.type not in APPLIERS:
            raise NotImplementedError(f"{r.name}: no mapping for resource type {r.type}")
        try:
            applied.outputs[urn] = APPLIERS[r.type](client, r, resolve(inventory, r, applied))
        except hvac.exceptions.VaultError as e:
            raise RuntimeError(f"{r.type} {r.name}: the server refused it: {e}") from e
    return applied
