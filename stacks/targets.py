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
    blueprints: list[LoadedBlueprint] = field(default_factory=list)
    """The blueprints or stack files the target was built from (for a Pulumi project: those its program declared)."""


def synthesize(target: str, stack: str | None = None, exceptions_file: Path | None = None) -> Synthesized:
    path = Path(target)
    if path.is_dir():
        from .program import collect_declared

        with collect_declared() as loaded:  # exceptions of the stack files the program declared
            inventory = synth_directory(path, stack=stack or "dev")
        sources: list[tuple[list[ExceptionSpec], Callable[..., tuple[str, int] | None]]] = [
            (list(each.blueprint.exceptions), each.locate) for each in loaded
        ]
        if exceptions_file is not None:
            tree = load_yaml(exceptions_file)
            declared = validate(tree, ExceptionsFile)
            sources.append((list(declared.exceptions), lambda *p: locate(tree, p)))
        return Synthesized(target, inventory, *_combined(sources), blueprints=list(loaded))
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
    return Synthesized(target, synth_loaded(loaded), list(loaded.blueprint.exceptions), loaded.locate, [loaded])


def _combined(
    sources: list[tuple[list[ExceptionSpec], Callable[..., tuple[str, int] | None]]],
) -> tuple[list[ExceptionSpec], Callable[..., tuple[str, int] | None]]:
    """Exceptions from several files as one list, each still located in its own file."""
    specs: list[ExceptionSpec] = []
    origin: list[tuple[Callable[..., tuple[str, int] | None], int]] = []
    for exceptions, where in sources:
        for j, spec in enumerate(exceptions):
            specs.append(spec)
            origin.append((where, j))

    def locate_combined(*path: Any) -> tuple[str, int] | None:
        if len(path) >= 2 and path[0] == "exceptions" and isinstance(path[1], int) and 0 <= path[1] < len(origin):
            where, j = origin[path[1]]
            return where("exceptions", j, *path[2:])
        return None

    return specs, locate_combined


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
    bp = loaded.blueprint

    def program() -> None:
        if transform is not None:
            pulumi.runtime.register_resource_transform(transform)
        env = build(bp)
        if on_built is not None:
            on_built(env)

    return run_program(program, project=bp.name, stack=loaded.stack_name, region=bp.region)
