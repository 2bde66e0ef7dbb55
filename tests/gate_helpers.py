"""Running the gate on fixtures and mutated stacks, for the policy tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from hardstack.blueprints.loader import load
from hardstack.policies.gate import GateReport, run_gate
from hardstack.stacks.inventory import Inventory
from hardstack.stacks.targets import synth_loaded


def synth_with_transform(target: str | Path, transform: Callable[[Any], Any] | None = None) -> tuple[Inventory, Any]:
    """The target blueprint synthesized with an optional Pulumi stack transform (as a user would weaken it)."""
    loaded = load(target)
    return synth_loaded(loaded, transform=transform), loaded


def gate(target: str | Path, transform: Callable[[Any], Any] | None = None) -> GateReport:
    inventory, loaded = synth_with_transform(target, transform)
    return run_gate(inventory, target=str(target), exceptions=loaded.blueprint.exceptions, locate=loaded.locate)


def failed(report: GateReport) -> set[tuple[str, str]]:
    """(check ID, Pulumi resource name) of every failed result."""
    return {(r.check_id, r.resource.rsplit("::", 1)[1]) for r in report.results if r.status == "failed"}


def transform_of(type_token: str, change: Callable[[dict[str, Any]], dict[str, Any] | None],
                 name: str | None = None) -> Callable[[Any], Any]:
    """A Pulumi transform changing the properties of resources of one type (optionally one name)."""
    import pulumi

    def transform(args: Any) -> Any:
        if args.type_ == type_token and (name is None or args.name == name):
            props = change(dict(args.props))
            if props is not None:
                return pulumi.ResourceTransformResult(props, args.opts)
        return None

    return transform


