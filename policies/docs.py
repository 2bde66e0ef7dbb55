"""docs/checks.md, generated from the check definitions (`make docs`); a test fails when it is stale."""

from __future__ import annotations

from .catalog import hardstack_checks
from .exceptions import NON_WAIVABLE_CHECKOV
from .listing import all_checks


def render() -> str:
    lines = [
        "# Checks",
        "",
        "Generated from the check definitions by `hardstack.policies.docs` (`make docs`). `hardstack checks` prints",
        "the same list. The gate runs hardstack's own checks and stock checkov's on every resource it can translate;",
        "a resource it cannot translate makes the gate answer *not verified* (exit 3), never *passed*.",
        "",
        "## hardstack's checks",
        "",
    ]
    for check_id, entry in hardstack_checks().items():
        m = entry.meta
        lines += [
            f"### {m.id}: {m.title}",
            "",
            f"- **Severity:** {m.severity}  ",
            f"- **Area:** {m.area}  ",
            f"- **Applies to:** {', '.join(f'`{r}`' for r in m.resources)}  ",
            f"- **Waivable:** {'yes, with a reason, owner and expiry' if m.waivable else 'never'}  ",
        ]
        if m.owasp_llm:
            lines.append(f"- **OWASP LLM Top 10:** {'; '.join(m.owasp_llm)}  ")
        if m.mitre_atlas:
            lines.append(f"- **MITRE ATLAS:** {'; '.join(m.mitre_atlas)}  ")
        lines += [
            f"- **Kind:** {_kind(entry)}; fixtures: "
            + ", ".join(f"`{n}`" for n in [*entry.passing, *entry.failing]),
            "",
            f"**Why.** {m.rationale}",
            "",
            f"**Fix.** {m.remediation}",
            "",
        ]
    lines += ["## Never waivable", "", "| check | control |", "|---|---|"]
    for check_id, entry in hardstack_checks().items():
        if not entry.meta.waivable:
            lines.append(f"| {check_id} | {entry.meta.title} |")
    for check_id, why in NON_WAIVABLE_CHECKOV.items():
        lines.append(f"| {check_id} | {why} |")
    lines += ["", "## checkov's checks on the resource types hardstack judges", "", "| check | title | applies to |",
              "|---|---|---|"]
    for row in all_checks():
        if row.engine == "checkov":
            lines.append(f"| {row.id} | {row.title.replace('|', '/')} | {', '.join(row.applies_to)} |")
    return "\n".join(lines + _audit_controls()) + "\n"


def _audit_controls() -> list[str]:
    """`hardstack audit`'s controls: what it judges on live resources, and the checks of `check` that hold the same
    control before deploy."""
    from .live.controls import CONTROLS, DRIFT, MISSING

    lines = ["", "## `hardstack audit`'s controls", "",
             "`hardstack audit` reads a live account with boto3. Account mode judges every resource of the region "
             "against these controls; stack mode reports drift and missing resources of a stack (the last two). "
             "No exception applies to a live result.", "",
             "| control | title | severity | applies to | the same control in `hardstack check` |",
             "|---|---|---|---|---|"]
    for c in CONTROLS:
        m = c.meta
        lines.append(f"| {m.id} | {m.title} | {m.severity} | {', '.join(m.resources)} | {', '.join(c.stack_checks)} |")
    for m in (DRIFT, MISSING):
        lines.append(f"| {m.id} | {m.title} | {m.severity} | every type stack mode compares | — |")
    return lines


def _kind(entry) -> str:  # type: ignore[no-untyped-def]
    if hasattr(entry.module, "evaluate"):
        return "evaluated by the gate across Kubernetes objects (`hardstack check` only)"
    if hasattr(entry.module, "evaluate_releases"):
        return "evaluated by the gate on the values of Helm releases (`hardstack check` only)"
    if hasattr(entry.module, "evaluate_plan"):
        return "evaluated by the gate across the whole plan (`hardstack check` only)"
    return "checkov graph check (YAML)" if entry.graph else "checkov Python check"


if __name__ == "__main__":  # pragma: no cover
    print(render(), end="")
