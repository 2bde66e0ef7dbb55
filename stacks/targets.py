"""What `synth` and `check` accept as a target: a shipped blueprint, a blueprint or stack file, a Pulumi project."""

from __future__ import annotations

from pathlib import Path

from hardstack.blueprints.loader import catalog, load

from .inventory import Inventory
from .synth import run_program, synth_directory


def synth_target(target: str, stack: str = "dev") -> Inventory:
    path = Path(target)
    if path.is_dir():
        return synth_directory(path, stack=stack)
    if target not in catalog() and not path.exists():
        from hardstack.errors import InvalidInput

        raise InvalidInput(
            "no such target",
            received=target,
            allowed="a shipped blueprint (" + ", ".join(catalog()) + "), a blueprint or stack file, "
            "or a Pulumi project directory",
        )
    loaded = load(target)
    return synth_loaded(loaded)


def synth_loaded(loaded) -> Inventory:  # type: ignore[no-untyped-def]
    from .program import build

    bp = loaded.blueprint
    return run_program(lambda: build(bp), project=bp.name, stack=loaded.stack_name, region=bp.region)
