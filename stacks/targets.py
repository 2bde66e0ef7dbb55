"""What `synth` and `check` accept as a target: a shipped blueprint, a blueprint or stack file, a Pulumi project."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hardstack.blueprints.exceptions import ExceptionsFile, ExceptionSpec
from hardstack.blueprints.loader import LoadedBlueprint, catalog, load, validate
from hardstack.blueprints.yamlsource import load_yaml, locate
from hardstack.errors import InvalidInput

from .inventory import Inventory
from .synth import run_program, synth_directory


@dataclass
class Synthesized:
    """A synthesized target and the exceptions declared for it (with where each came from)."""

    target: str
    inventory: Inventory
    exceptions: list[ExceptionSpec] = field(default_factory=list)
    locate: Callable[..., tuple[str, int] | None] = lambda *path: None


def synthesize(target: str, stack: str | None = None, exceptions_file: Path | None = None) -> Synthesized:
    path = Path(target)
    if path.is_dir():
        inventory = synth_directory(path, stack=stack or "dev")
        if exceptions_file is None:
            return Synthesized(target, inventory)
        tree = load_yaml(exceptions_file)
        declared = validate(tree, ExceptionsFile)
        return Synthesized(target, inventory, list(declared.exceptions), lambda *p: locate(tree, p))
    if target not in catalog() and not path.exists():
        raise InvalidInput(
            "no such target",
            received=target,
            allowed="a shipped blueprint (" + ", ".join(catalog()) + "), a blueprint or stack file, "
            "or a Pulumi project directory",
        )
    if exceptions_file is not None:
        raise InvalidInput("--exceptions is for Pulumi project directories; declare exceptions in the blueprint "
                           "or stack file", received=str(exceptions_file))
    loaded = load(target)
    return Synthesized(target, synth_loaded(loaded), list(loaded.blueprint.exceptions), loaded.locate)


def synth_target(target: str, stack: str = "dev") -> Inventory:
    return synthesize(target, stack).inventory


def synth_loaded(
    loaded: LoadedBlueprint,
    *,
    transform: Callable[..., Any] | None = None,
    on_built: Callable[[Any], None] | None = None,
) -> Inventory:
    """A loaded blueprint's program under mocks; `transform` is registered as a stack-wide Pulumi transform and
    `on_built` receives the built Environment (for tests and programs that extend it)."""
    import pulumi

    from .program import build
    from .synth import with_deploy_secrets

    bp = loaded.blueprint
    config, secret_keys = with_deploy_secrets({}, [])

    def program() -> None:
        if transform is not None:
            pulumi.runtime.register_resource_transform(transform)
        env = build(bp)
        if on_built is not None:
            on_built(env)

    return run_program(program, project=bp.name, stack=loaded.stack_name, region=bp.region, config=config,
                       secret_keys=secret_keys)
