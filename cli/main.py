"""The `hardstack` command: parse, call, print, exit code. No logic of its own."""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

import click

from hardstack.errors import EXIT_NOT_VERIFIED, HardstackError


class Context:
    def __init__(self, debug: bool) -> None:
        self.debug = debug


def _run(ctx: click.Context, fn: Callable[[], Any]) -> Any:
    """Run a command body: hardstack errors become a message and their exit code, anything else exit 3."""
    debug = ctx.find_object(Context).debug if ctx.find_object(Context) else False
    try:
        return fn() or 0
    except HardstackError as e:
        if debug:
            traceback.print_exc()
        click.echo(f"error: {e}", err=True)
        ctx.exit(e.exit_code)
    except (KeyboardInterrupt, click.exceptions.Exit, click.ClickException):
        raise
    except Exception as e:  # noqa: BLE001 — any other failure: say so, no traceback without --debug
        if debug:
            traceback.print_exc()
        click.echo(f"error: internal error: {type(e).__name__}: {e} (run with --debug for details)", err=True)
        ctx.exit(EXIT_NOT_VERIFIED)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="hardstack")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """hardstack: hardened AI environments on AWS and Kubernetes, verified before apply.

    Exit codes: 0 passed, 1 violations, 2 invalid input or usage, 3 not verified (the gate could not run),
    4 a tool hardstack drives (the Pulumi CLI) is missing or failed.
    """
    ctx.obj = Context(debug)


STACK_OPTION = click.option("--stack", default=None, help="Stack of a Pulumi project directory (default: dev).")


def _synth_files(inventory) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """inventory.json, and what stock checkov reads (plan.json, manifests/) when every type can be translated."""
    from hardstack.errors import GateError
    from hardstack.policies.bridge import bridge

    files = {"inventory.json": inventory.dumps()}
    try:
        files.update(bridge(inventory).files())
    except GateError as e:
        click.echo(f"warning: {e}; plan.json is not written", err=True)
    return files


@main.command()
@click.argument("target")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory for inventory.json, plan.json and manifests/.")
@STACK_OPTION
@click.option("--force", is_flag=True, help="Write into a non-empty directory hardstack did not create.")
@click.pass_context
def synth(ctx: click.Context, target: str, out_dir: Path, stack: str | None, force: bool) -> None:
    """Synthesize TARGET under mocks and write DIR/inventory.json, DIR/plan.json and DIR/manifests/.

    TARGET is a shipped blueprint's name, a blueprint or stack file, or a Pulumi Python project directory.
    `checkov -d DIR --external-checks-dir "$(hardstack checks-dir)"` then judges DIR as `hardstack check` does.
    """

    def body() -> None:
        from hardstack.stacks.outdir import write_files
        from hardstack.stacks.targets import synthesize

        inventory = synthesize(target, stack).inventory
        write_files(out_dir, _synth_files(inventory), force=force)
        click.echo(f"synthesized {len(inventory)} resources → {out_dir}")

    _run(ctx, body)


@main.command()
@click.argument("target")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "sarif", "junit"]), default="table",
              show_default=True, help="Report format.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the report to FILE.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also write what `synth` writes, and the report, to DIR.")
@click.option("--exceptions", "exceptions_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Exceptions for a Pulumi project directory (a YAML file with `exceptions:`).")
@STACK_OPTION
@click.option("--force", is_flag=True, help="Write into a non-empty --out-dir hardstack did not create.")
@click.pass_context
def check(ctx: click.Context, target: str, fmt: str, output: Path | None, out_dir: Path | None,
          exceptions_file: Path | None, stack: str | None, force: bool) -> None:
    """Synthesize TARGET and judge it with checkov and hardstack's checks.

    Exit codes: 0 passed, 1 violations, 2 invalid input or usage, 3 not verified (the gate could not run).
    """

    def body() -> int:
        from hardstack.policies.worker import CheckovWorker

        with CheckovWorker() as worker:  # forked first: loading checkov overlaps with synthesis
            return judge(worker)

    def judge(worker) -> int:  # type: ignore[no-untyped-def]
        from hardstack.policies.formats import render
        from hardstack.policies.gate import run_gate
        from hardstack.stacks.outdir import write_files
        from hardstack.stacks.targets import synthesize

        synthesized = synthesize(target, stack, exceptions_file)
        report = run_gate(synthesized.inventory, target=target, exceptions=synthesized.exceptions,
                          locate=synthesized.locate, engine=worker)
        if out_dir is not None:
            files = _synth_files(synthesized.inventory)
            files[f"report.{ {'table': 'txt', 'junit': 'xml'}.get(fmt, fmt) }"] = render(report, fmt)
            write_files(out_dir, files, force=force)
        return _emit(report, fmt, output)

    ctx.exit(_run(ctx, body))


def _emit(report: Any, fmt: str, output: Path | None) -> int:
    """Print the report (or write it to `output`, with a one-line summary); the exit code of its verdict."""
    from hardstack.policies.formats import render
    from hardstack.stacks.outdir import write_file

    text = render(report, fmt, color=output is None and sys.stdout.isatty())
    if output is not None:
        write_file(output, text)
        s = report.summary()
        click.echo(f"{'passed' if report.passed else 'FAILED'}: {s['failed']} failed, {s['skipped']} skipped, "
                   f"{s['passed']} passed → {output}", err=True)
    else:
        click.echo(text, nl=False)
    return 0 if report.passed else 1


def _audit_epilog() -> str:
    from hardstack.policies.live.permissions import REQUIRED_ACTIONS

    return "\b\nRead-only IAM actions the audit makes:\n" + "\n".join(f"  {a}" for a in REQUIRED_ACTIONS)


@main.command(epilog=_audit_epilog())
@click.argument("target", required=False)
@click.option("--region", help="The region to read. Default: the stack's region (stack mode), else AWS_REGION or "
              "the profile's region.")
@click.option("--endpoint-url", help="Send every AWS API call to this URL (a local AWS emulator, for testing).")
@click.option("--profile", help="The AWS profile whose credentials the audit uses.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "sarif", "junit"]), default="table",
              show_default=True, help="Report format.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the report to FILE.")
@STACK_OPTION
@click.pass_context
def audit(ctx: click.Context, target: str | None, region: str | None, endpoint_url: str | None,
          profile: str | None, fmt: str, output: Path | None, stack: str | None) -> None:
    """Read a live AWS account with boto3 and judge it, in the formats of `check`.

    Without TARGET (account mode): every KMS key, bucket, VPC, load balancer and listener, trail, ECR repository,
    EKS cluster and GuardDuty detector of the region, against hardstack's controls. With TARGET (stack mode):
    TARGET is synthesized as `check` does, the resources it declares are found by their hardstack:stack and
    hardstack:component tags and compared with their declaration; drifted and missing resources fail.

    Exit codes: 0 passed, 1 failed (violations, drift or missing resources), 2 invalid input or usage, 3 not
    verified (a read failed: access denied, no or rejected credentials, endpoint unreachable, an API error).
    """

    def body() -> int:
        from hardstack.policies.live.account import audit_account
        from hardstack.policies.live.session import LiveSession
        from hardstack.policies.live.stack import audit_stack, stack_region
        from hardstack.stacks.targets import synthesize

        if target is None:
            if stack is not None:
                raise click.UsageError("--stack needs a TARGET (a Pulumi project directory)")
            report = audit_account(LiveSession(region=region, endpoint_url=endpoint_url, profile=profile))
        else:
            inventory = synthesize(target, stack).inventory
            session = LiveSession(region=region or stack_region(target, stack), endpoint_url=endpoint_url,
                                  profile=profile)
            report = audit_stack(inventory, session, target=target)
        return _emit(report, fmt, output)

    ctx.exit(_run(ctx, body))


@main.command()
@click.argument("target")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report to FILE (required for html; md goes to stdout without it).")
@click.option("--format", "fmt", type=click.Choice(["html", "md"]), default="html", show_default=True,
              help="html: one self-contained page; md: threat model and failures, for pull-request comments.")
@click.option("--exceptions", "exceptions_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Exceptions for a Pulumi project directory (a YAML file with `exceptions:`).")
@STACK_OPTION
@click.pass_context
def report(ctx: click.Context, target: str, out: Path | None, fmt: str, exceptions_file: Path | None,
           stack: str | None) -> None:
    """Judge TARGET as `check` does and write a report: architecture picture, threat model, verdicts.

    Exit codes as for `check`: 0 passed, 1 violations (the report is still written), 2 invalid input or usage,
    3 not verified; 4 when Graphviz's `dot`, which lays out the picture, is missing.
    """
    if fmt == "html" and out is None:
        raise click.UsageError("--format html needs --out FILE (the page is written to a file)")

    def body() -> int:
        from hardstack.policies.worker import CheckovWorker

        with CheckovWorker() as worker:
            return judge(worker)

    def judge(worker) -> int:  # type: ignore[no-untyped-def]
        from hardstack.policies.gate import run_gate
        from hardstack.policies.report_html import render_html
        from hardstack.policies.report_md import render_markdown
        from hardstack.stacks.outdir import write_file
        from hardstack.stacks.targets import synthesize

        synthesized = synthesize(target, stack, exceptions_file)
        judged = run_gate(synthesized.inventory, target=target, exceptions=synthesized.exceptions,
                          locate=synthesized.locate, engine=worker)
        text = (render_html if fmt == "html" else render_markdown)(judged, synthesized.inventory)
        if out is None:
            click.echo(text, nl=False)
        else:
            write_file(out, text)
            s = judged.summary()
            click.echo(f"{'passed' if judged.passed else 'FAILED'}: {s['failed']} failed, {s['skipped']} skipped, "
                       f"{s['passed']} passed → {out}", err=True)
        return 0 if judged.passed else 1

    ctx.exit(_run(ctx, body))


def _deploy(ctx: click.Context, action: str, target: str, stack: str | None, exceptions_file: Path | None) -> None:
    def body() -> int:
        from hardstack.policies.deploy import deploy
        from hardstack.policies.formats import render
        from hardstack.policies.worker import CheckovWorker

        with CheckovWorker() as worker:
            done = deploy(action, target, stack=stack, exceptions_file=exceptions_file, engine=worker,
                          on_output=lambda line: click.echo(line, nl=False))
        if done.report is not None and not done.ran:
            click.echo(render(done.report, "table"), nl=False)
            click.echo(f"pulumi {action} did not run: the gate failed", err=True)
            return 1
        if done.report is not None:
            click.echo(f"gate passed on inventory {done.report.inventory_digest}; pulumi {action} done", err=True)
        return 0

    ctx.exit(_run(ctx, body))


EXCEPTIONS_OPTION = click.option("--exceptions", "exceptions_file", type=click.Path(dir_okay=False, path_type=Path),
                                 help="Exceptions for a Pulumi project directory.")


@main.command()
@click.argument("target")
@STACK_OPTION
@EXCEPTIONS_OPTION
@click.pass_context
def up(ctx: click.Context, target: str, stack: str | None, exceptions_file: Path | None) -> None:
    """Run the gate on TARGET, then `pulumi up` only if it passed (the update records the inventory digest)."""
    _deploy(ctx, "up", target, stack, exceptions_file)


@main.command()
@click.argument("target")
@STACK_OPTION
@EXCEPTIONS_OPTION
@click.pass_context
def preview(ctx: click.Context, target: str, stack: str | None, exceptions_file: Path | None) -> None:
    """Run the gate on TARGET, then `pulumi preview` only if it passed."""
    _deploy(ctx, "preview", target, stack, exceptions_file)


@main.command()
@click.argument("target")
@STACK_OPTION
@click.option("--yes", is_flag=True, help="Confirm: destroy every resource of the stack.")
@click.pass_context
def destroy(ctx: click.Context, target: str, stack: str | None, yes: bool) -> None:
    """`pulumi destroy` of TARGET's stack (asks for --yes; no gate: nothing is created)."""
    if not yes:
        click.echo("error: destroy removes every resource of the stack; confirm with --yes", err=True)
        ctx.exit(2)
    _deploy(ctx, "destroy", target, stack, None)


@main.command("new")
@click.argument("blueprint")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--stack", default="dev", show_default=True, help="The Pulumi stack to set up (a name).")
@click.option("--name", "project", help="The Pulumi project's name. Default: the blueprint's name.")
@click.option("--force", is_flag=True,
              help="Write into a non-empty DIRECTORY: replaces only the files `new` generates, keeps the rest.")
@click.pass_context
def new_command(ctx: click.Context, blueprint: str, directory: Path, stack: str, project: str | None,
                force: bool) -> None:
    """Create a Pulumi project in DIRECTORY that deploys BLUEPRINT (a shipped blueprint's name or a blueprint file).

    It holds the program and its stack file, the Pulumi project and stack settings, CI for GitHub and GitLab
    running `hardstack check` and bandit, a pre-commit hook and checkov's settings. `hardstack check DIRECTORY`
    judges it.
    """

    def body() -> None:
        from hardstack.stacks.scaffold import new_project

        made = new_project(blueprint, directory, stack=stack, project=project, force=force)
        click.echo(f"created the Pulumi project {made.project} (stack {made.stack}) in {directory}: "
                   f"{len(made.files)} files")
        click.echo("next:")
        click.echo(f"  hardstack check {directory} --stack {made.stack}")
        click.echo(f"  cd {directory} && pulumi stack init {made.stack} && pulumi up"
                   f"    # or: hardstack up {directory} --stack {made.stack}")

    _run(ctx, body)


@main.command("runbook")
@click.argument("target")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the runbook to FILE (default: standard output).")
@STACK_OPTION
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@click.pass_context
def runbook_command(ctx: click.Context, target: str, out: Path | None, stack: str | None, force: bool) -> None:
    """Write TARGET's incident-response runbook (Markdown), with the stack's own names in every command.

    Sections: quarantine a tenant, block a compromised image, revoke Vault leases, roll back a model, rotate keys,
    trace a poisoned dataset (each where the stack has something it acts on). Exit codes: 0 written, 2 invalid
    input or usage (FILE exists without --force), 3 the runbook could not be written.
    """

    def body() -> None:
        from hardstack.stacks.runbook import check_out, runbook_for, write_runbook

        if out is not None:
            check_out(out, force)  # before synthesis: refuse at once, not after it
        text = runbook_for(target, stack)
        if out is None:
            click.echo(text, nl=False)
            return
        write_runbook(out, text, force=force)
        click.echo(f"wrote the incident-response runbook of {target} → {out}", err=True)

    _run(ctx, body)


@main.command("checks")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def checks_command(ctx: click.Context, fmt: str) -> None:
    """List every check the gate runs (hardstack's own and checkov's) and every control `audit` judges live
    resources by (engine `audit`), with ID, title and severity."""

    def body() -> None:
        from hardstack.policies.listing import all_checks

        rows = all_checks()
        if fmt == "json":
            click.echo(json.dumps([r.__dict__ for r in rows], indent=2))
            return
        width = max(len(r.id) for r in rows)
        for r in rows:
            flag = " (never waivable)" if not r.waivable and r.engine != "audit" else ""  # audit takes no exceptions
            click.echo(f"{r.id:<{width}} {r.engine:<9} {r.severity or '-':<9} {r.title}{flag}")

    _run(ctx, body)


@main.command("checks-dir")
def checks_dir() -> None:
    """Print the directory of hardstack's checks, for `checkov --external-checks-dir`."""
    from hardstack.policies.engine import CHECKS_DIR

    click.echo(str(CHECKS_DIR))


@main.command()
@click.argument("kind", type=click.Choice(["blueprint", "stack"]), default="blueprint")
@click.pass_context
def schema(ctx: click.Context, kind: str) -> None:
    """Print the JSON Schema of blueprint files (default) or stack files."""

    def body() -> None:
        from hardstack.blueprints.schema import json_schema

        click.echo(json.dumps(json_schema(kind), indent=2))

    _run(ctx, body)


@main.command()
@click.pass_context
def blueprints(ctx: click.Context) -> None:
    """List the shipped blueprints."""

    def body() -> None:
        from hardstack.blueprints.loader import catalog, load

        for name in catalog():
            bp = load(name).blueprint
            click.echo(f"{name:<24} {bp.classification.value:<13} {bp.description}")

    _run(ctx, body)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
