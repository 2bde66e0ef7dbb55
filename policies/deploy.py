"""`up`, `preview` and `destroy` through the Pulumi Automation API, with the gate first: nothing is applied
unless the gate passed on the same program, and the update records the inventory digest it passed."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hardstack.errors import ToolError

INSTALL_PULUMI = ("the Pulumi CLI is not installed (no `pulumi` on PATH); install it "
                  "(https://www.pulumi.com/docs/iac/download-install/) and run again")


@dataclass
class Deployment:
    """What happened: the gate's report, and Pulumi's summary when it ran."""

    report: Any
    ran: bool
    summary: str = ""


def require_pulumi() -> str:
    found = shutil.which("pulumi")
    if found is None:
        raise ToolError(INSTALL_PULUMI)
    return found


def deploy(
    action: str,
    target: str,
    *,
    stack: str | None = None,
    exceptions_file: Path | None = None,
    engine: Any = None,
    on_output: Callable[[str], Any] = print,
) -> Deployment:
    """Gate TARGET, then run `pulumi <action>` on it only when the gate passed (destroy needs no gate)."""
    from .gate import run_gate

    require_pulumi()
    report = None
    if action != "destroy":
        from hardstack.stacks.targets import synthesize

        synthesized = synthesize(target, stack, exceptions_file)
        report = run_gate(synthesized.inventory, target=target, exceptions=synthesized.exceptions,
                          locate=synthesized.locate, engine=engine)
        if not report.passed:
            return Deployment(report, ran=False)
    passed = f"the gate passed on inventory {report.inventory_digest}; " if report else ""
    workspace = _stack(target, stack, passed)
    message = f"hardstack gate passed on inventory {report.inventory_digest}" if report else "hardstack destroy"
    try:
        if action == "up":
            result = workspace.up(message=message, on_output=on_output)
        elif action == "preview":
            result = workspace.preview(message=message, on_output=on_output)
        else:
            result = workspace.destroy(message=message, on_output=on_output)
    except Exception as e:  # noqa: BLE001 - Pulumi's own failure, reported as such
        raise ToolError(f"{passed}pulumi {action} failed: {type(e).__name__}: {str(e).strip()[:2000]}") from e
    return Deployment(report, ran=True, summary=str(getattr(result, "summary", "") or getattr(result, "change_summary", "")))


def _stack(target: str, stack: str | None, passed: str) -> Any:
    """The Pulumi stack: a project directory's own, or an inline program building a blueprint or stack file."""
    import pulumi.automation as auto

    path = Path(target)
    try:
        if path.is_dir():
            return auto.create_or_select_stack(stack or "dev", work_dir=str(path.resolve()))
        from hardstack.blueprints.loader import load
        from hardstack.stacks.program import build

        loaded = load(target)
        bp = loaded.blueprint
        # Pulumi keeps the project and stack settings of an inline program in its work dir: hardstack's own folder
        work_dir = (path.resolve().parent if path.exists() else Path.cwd()) / ".hardstack" / "pulumi" / bp.name
        work_dir.mkdir(parents=True, exist_ok=True)
        selected = auto.create_or_select_stack(loaded.stack_name, project_name=bp.name, program=lambda: build(bp),
                                               opts=auto.LocalWorkspaceOptions(work_dir=str(work_dir)))
        selected.set_config("aws:region", auto.ConfigValue(bp.region))
        return selected
    except Exception as e:  # noqa: BLE001 - e.g. no backend logged in, no such project
        raise ToolError(f"{passed}cannot open the Pulumi stack: {type(e).__name__}: {str(e).strip()[:2000]}") from e
