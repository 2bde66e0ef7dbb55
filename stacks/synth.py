"""Run a Pulumi program in-process under mocks and record what it would deploy as an Inventory."""

from __future__ import annotations

import contextlib
import logging
import os
import runpy
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator

from hardstack.errors import InvalidInput, SynthError

from .inventory import Inventory, Resource
from .references import match_references

log = logging.getLogger("hardstack.synth")


def run_program(
    program: Callable[[], Any],
    *,
    project: str,
    stack: str,
    region: str,
    config: dict[str, Any] | None = None,
    secret_keys: list[str] | None = None,
    source: str | None = None,
) -> Inventory:
    """Run `program` under recording mocks and return the Inventory of everything it registered."""
    import pulumi
    from pulumi.runtime import settings
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from hardstack.modules.base import standing_in_secrets

    from .mocks import ProviderLikeMocks, RecordingMonitor

    mocks = ProviderLikeMocks(region)
    monitor = RecordingMonitor(mocks)
    cfg = {"aws:region": region, **(config or {})}
    settings.reset_options(project=project, stack=stack)
    pulumi.runtime.set_all_config({k: _config_str(v) for k, v in cfg.items()}, secret_keys or [])
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    try:
        with _quiet_pulumi_log(), _no_source_positions(), standing_in_secrets():
            _sync_await(run_pulumi_func(program))
    except Exception as e:  # the program itself failed: say where, in its own code
        raise SynthError(_describe(e, source)) from e
    finally:
        pulumi.runtime.set_all_config({}, [])
    outputs_of = {urn: rec["outputs"] for urn, rec in monitor.records.items()}
    stack_urn = getattr(monitor, "stack_urn", None)
    resources = []
    for urn in monitor.order:
        rec = monitor.records[urn]
        resources.append(
            Resource(
                urn=urn,
                type=rec["type"],
                name=rec["name"],
                parent=None if rec["parent"] == stack_urn else rec["parent"],
                inputs=rec["inputs"],
                references=match_references(rec["inputs"], rec["deps"], outputs_of),
                custom=rec["custom"],
                outputs=rec["outputs"],
            )
        )
    return Inventory(resources)


def _config_str(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value)


@contextlib.contextmanager
def _no_source_positions() -> Iterator[None]:
    """The SDK captures a stack trace per resource for the engine's source positions, which mocks discard;
    at about a millisecond a resource it is the largest avoidable cost of synthesis."""
    from pulumi.runtime import resource as runtime_resource

    original = getattr(runtime_resource, "_get_stack_trace", None)
    if original is None:
        yield
        return
    from pulumi.runtime.proto import source_pb2

    runtime_resource._get_stack_trace = lambda: source_pb2.StackTrace()  # type: ignore[attr-defined]
    try:
        yield
    finally:
        runtime_resource._get_stack_trace = original  # type: ignore[attr-defined]


@contextlib.contextmanager
def _quiet_pulumi_log() -> Iterator[None]:
    logger = logging.getLogger()
    old = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(old)


def _describe(e: BaseException, source: str | None) -> str:
    """The failure in the program's own file and line when it has one, else the exception."""
    frames = traceback.extract_tb(e.__traceback__)
    if source:
        root = str(Path(source).resolve())
        own = [f for f in frames if f.filename.startswith(root)]
        if own:
            f = own[-1]
            return f"{f.filename}:{f.lineno}: the program failed: {type(e).__name__}: {e}"
    return f"the program failed: {type(e).__name__}: {e}"


def read_project(directory: Path) -> dict[str, Any]:
    """Pulumi.yaml of a Python project directory, checked."""
    from hardstack.blueprints.yamlsource import load_yaml

    for candidate in ("Pulumi.yaml", "Pulumi.yml"):
        if (directory / candidate).is_file():
            project_file = directory / candidate
            break
    else:
        raise InvalidInput("no Pulumi.yaml in the directory", file=str(directory), allowed="a Pulumi project directory")
    project = load_yaml(project_file)
    runtime = project.get("runtime")
    runtime_name = runtime.get("name") if isinstance(runtime, dict) else runtime
    if runtime_name != "python":
        raise InvalidInput(
            "only Python programs can be synthesized",
            file=str(project_file),
            line=project.locs.get("runtime", (None, None))[1],
            field="runtime",
            received=runtime_name,
            allowed="python",
        )
    if not isinstance(project.get("name"), str):
        raise InvalidInput("project name missing", file=str(project_file), field="name")
    return dict(project, _file=str(project_file))


def stack_config(directory: Path, project: str, stack: str) -> tuple[dict[str, Any], list[str]]:
    """Config of Pulumi.<stack>.yaml (keys namespaced as the engine does); encrypted values become secrets."""
    from hardstack.blueprints.yamlsource import load_yaml

    path = directory / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        return {}, []
    data = load_yaml(path).get("config") or {}
    config: dict[str, Any] = {}
    secrets: list[str] = []
    for key, value in data.items():
        full = key if ":" in key else f"{project}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[full] = "[secret]"
            secrets.append(full)
        else:
            config[full] = value
    return config, secrets


def synth_directory(directory: Path, stack: str = "dev", region: str | None = None) -> Inventory:
    """Synthesize a user's Pulumi Python project directory (Pulumi.yaml + its main module)."""
    directory = directory.resolve()
    project = read_project(directory)
    name = project["name"]
    main = project.get("main") or "__main__.py"
    main_path = directory / main
    if main_path.is_dir():
        main_path = main_path / "__main__.py"
    if not main_path.is_file():
        raise InvalidInput("the project's main program is missing", file=project["_file"], received=str(main_path))
    config, secrets = stack_config(directory, name, stack)
    region = region or config.get("aws:region") or "us-east-1"

    def program() -> None:
        runpy.run_path(str(main_path), run_name="__main__")

    with _program_dir(directory):
        return run_program(
            program, project=name, stack=stack, region=region, config=config, secret_keys=secrets,
            source=str(directory),
        )


@contextlib.contextmanager
def _program_dir(directory: Path) -> Iterator[None]:
    old_cwd, old_path = os.getcwd(), list(sys.path)
    old_modules = set(sys.modules)
    os.chdir(directory)
    sys.path.insert(0, str(directory))
    try:
        yield
    finally:
        os.chdir(old_cwd)
        sys.path[:] = old_path
        for mod in set(sys.modules) - old_modules:  # the program's own modules must not leak into the next run
            module_file = getattr(sys.modules[mod], "__file__", None) or ""
            if module_file.startswith(str(directory)):
                del sys.modules[mod]
