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
        return fn()
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

    Exit codes: 0 passed, 1 violations, 2 invalid input or usage, 3 not verified (the gate could not run).
    """
    ctx.obj = Context(debug)


@main.command()
@click.argument("target")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory for inventory.json.")
@click.option("--stack", default=None, help="Stack name for a Pulumi project directory (default: dev).")
@click.option("--force", is_flag=True, help="Write into a non-empty directory hardstack did not create.")
@click.pass_context
def synth(ctx: click.Context, target: str, out_dir: Path, stack: str | None, force: bool) -> None:
    """Synthesize TARGET under mocks and write DIR/inventory.json.

    TARGET is a shipped blueprint's name, a blueprint or stack file, or a Pulumi Python project directory.
    """

    def body() -> None:
        from hardstack.stacks.outdir import write_files
        from hardstack.stacks.targets import synth_target

        inventory = synth_target(target, stack=stack or "dev")
        write_files(out_dir, {"inventory.json": inventory.dumps()}, force=force)
        click.echo(f"synthesized {len(inventory)} resources → {out_dir / 'inventory.json'}")

    _run(ctx, body)


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
