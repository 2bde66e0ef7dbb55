"""HS_VAULT_002: no Vault policy grants every path or sudo."""

from __future__ import annotations

import json
from typing import Any

from hardstack.policies.checks.support import FAILED, PASSED, HardstackCheck, value
from hardstack.policies.meta import CheckMeta

META = CheckMeta(
    id="HS_VAULT_002",
    title="Vault policies name their paths and never grant sudo",
    severity="HIGH",
    area="identity",
    rationale="A `*` path grants every secret, credential and engine in the Vault (other stacks' included) and "
    "`sudo` reaches root-protected endpoints such as revoking every lease or reading raw storage; a persona's "
    "policy with either is an administrator's.",
    remediation="Grant capabilities on named paths under the stack's mounts (identity templating for per-person "
    "paths), and keep sudo to break-glass root operations outside the stack's personas.",
    owasp_llm=("LLM06: Excessive Agency",),
    mitre_atlas=("AML.T0012: Valid Accounts",),
    resources=("vault_policy",),
)

EVERYTHING = {"*", "+", "+/*", "+/+/*", "/*"}


def rules(text: str) -> dict[str, list[str]] | None:
    """A Vault policy (HCL or JSON) as path → capabilities; None when it cannot be read."""
    try:
        doc: Any = json.loads(text)
    except json.JSONDecodeError:
        import hcl2

        try:
            doc = hcl2.loads(text)
        except Exception:  # noqa: BLE001 - an unreadable policy fails the check
            return None
    paths = doc.get("path") if isinstance(doc, dict) else None
    blocks = paths if isinstance(paths, list) else [paths or {}]
    out: dict[str, list[str]] = {}
    for block in blocks:
        for path, body in (block or {}).items():
            caps = (body[0] if isinstance(body, list) else body or {}).get("capabilities", [])
            while caps and isinstance(caps[0], list):
                caps = [c for inner in caps for c in inner]
            out[str(path).strip('"')] = [str(c) for c in caps]
    return out


def too_wide(found: dict[str, list[str]]) -> bool:
    return any(path in EVERYTHING or "sudo" in caps or "root" in caps for path, caps in found.items())


class NamedPathsNoSudo(HardstackCheck):
    META = META

    def scan_resource_conf(self, conf):  # type: ignore[no-untyped-def, override]
        found = rules(str(value(conf, "policy") or ""))
        return PASSED if found and not too_wide(found) else FAILED


check = NamedPathsNoSudo()


def _policy(text: str) -> None:
    import pulumi_vault as vault

    vault.Policy("persona", name="persona", policy=text)


def passing_named_paths() -> None:
    _policy('path "stack/kv/data/tenants/a/*" {\n  capabilities = ["read"]\n}\n')


def failing_every_path() -> None:
    _policy('path "*" {\n  capabilities = ["read", "list"]\n}\n')


def failing_sudo() -> None:
    _policy('path "sys/leases/revoke-prefix/*" {\n  capabilities = ["update", "sudo"]\n}\n')
