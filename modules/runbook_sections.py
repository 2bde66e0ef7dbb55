"""The sections of a stack's incident-response runbook (`hardstack runbook`) and their anchors.

Alerts link to these anchors (a PrometheusRule's `runbook_url` annotation ends in `#<anchor>`), so they are a public
contract: each is the anchor Markdown renderers (GitHub, GitLab, MkDocs) derive from the section's heading, and a
renamed heading would break every alert that links to it. The runbook renders each section a stack has something for,
under exactly these headings and in this order.
"""

from __future__ import annotations

QUARANTINE_A_TENANT = "quarantine-a-tenant"
BLOCK_A_COMPROMISED_IMAGE = "block-a-compromised-image"
REVOKE_VAULT_LEASES = "revoke-vault-leases"
ROLL_BACK_A_MODEL = "roll-back-a-model"
ROTATE_KEYS = "rotate-keys"
TRACE_A_POISONED_DATASET = "trace-a-poisoned-dataset"

RUNBOOK_SECTIONS: dict[str, str] = {
    QUARANTINE_A_TENANT: "Quarantine a tenant",
    BLOCK_A_COMPROMISED_IMAGE: "Block a compromised image",
    REVOKE_VAULT_LEASES: "Revoke Vault leases",
    ROLL_BACK_A_MODEL: "Roll back a model",
    ROTATE_KEYS: "Rotate keys",
    TRACE_A_POISONED_DATASET: "Trace a poisoned dataset",
}
"""Anchor → heading, in the runbook's order."""


def runbook_link(base_url: str, section: str) -> str:
    """The link to one section of a published runbook (`<base_url>#<anchor>`); refuses an unknown section, so that
    an alert never links to an anchor the runbook does not have."""
    if section not in RUNBOOK_SECTIONS:
        raise ValueError(f"unknown runbook section {section!r}; allowed: {', '.join(RUNBOOK_SECTIONS)}")
    return f"{base_url.split('#', 1)[0]}#{section}"
