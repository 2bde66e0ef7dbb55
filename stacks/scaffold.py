"""`hardstack new`: a ready Pulumi project for a blueprint, rendered from templates that never let a value become
code.

Two layers keep blueprint and command-line values out of the generated code. Every name the user gives (the
stack, the project) must be a `Name` before anything is rendered. And every value a template inserts goes through
a filter for where it lands: `yaml` (a JSON string, which YAML reads back as the same string), `py` (a Python
literal), or `name` / `token` / `md` for the few places that take a checked word or prose; the environment
refuses any value that reached a template without one of them. Everything is rendered, and each YAML and Python
file parsed back, before the first file is written.
"""

from __future__ import annotations

import ast
import json
import os
import re
import typing
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable

import jinja2
import yaml

from hardstack.blueprints.base import Name
from hardstack.blueprints.loader import LoadedBlueprint, catalog, is_stack_file, load
from hardstack.blueprints.yamlsource import load_yaml, locate
from hardstack.errors import InvalidInput

from .outdir import write_file

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates" / "project"

STACK_FILE = "stack.yaml"
"""The project's stack file, next to `__main__.py`."""

BLUEPRINT_FILE = "blueprint.yaml"
"""Where a blueprint given as a file is copied to, inside the project."""

PYTHON_VERSION = "3.11"
PYTHON_IMAGE = "python:3.11-slim"
BANDIT_REQUIREMENT = "bandit==1.9.4"

TEMPLATES: dict[str, str] = {
    "Pulumi.yaml": "Pulumi.yaml.j2",
    "Pulumi.{stack}.yaml": "Pulumi.stack.yaml.j2",
    "__main__.py": "__main__.py.j2",
    "requirements.txt": "requirements.txt.j2",
    STACK_FILE: "stack.yaml.j2",
    ".checkov.yaml": "checkov.yaml.j2",
    ".github/workflows/hardstack.yml": "github-workflow.yml.j2",
    ".gitlab-ci.yml": "gitlab-ci.yml.j2",
    ".pre-commit-config.yaml": "pre-commit-config.yaml.j2",
    "README.md": "README.md.j2",
    ".gitignore": "gitignore.j2",
}
"""Each generated file (its path in the project; `{stack}` is the stack's name) and its template."""

NAME_PATTERN: str = next(m.pattern for m in typing.get_args(Name)[1:] if getattr(m, "pattern", None))
NAME_ALLOWED = (f"a name: lower-case letters, digits and '-', 2 to 32 characters, starting with a letter and not "
                f"ending with '-' ({NAME_PATTERN})")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=:/@-]*")

# What a YAML double-quoted scalar may hold as itself: printable characters that are not line breaks (YAML 1.1
# reads NEL, LS and PS as line breaks and folds them). Anything else is written as a \uXXXX escape.
_YAML_ESCAPE = re.compile("[^\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")


class Quoted(str):
    """Text a filter made safe for the place the template inserts it."""


class UnquotedValue(jinja2.TemplateError):
    """A template inserted a value without a quoting filter (a bug in the template, never in the input)."""


def _defined(value: Any) -> Any:
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()  # StrictUndefined: the template names a value it was not given
    return value


def yaml_string(value: Any) -> Quoted:
    """A YAML scalar reading back as exactly `value`: a JSON string (or number or boolean), non-printable
    characters and line breaks escaped."""
    _defined(value)
    if not isinstance(value, (str, int, bool)):
        raise TypeError(f"the yaml filter takes a string, number or boolean, not {type(value).__name__}")
    text = json.dumps(value, ensure_ascii=False)
    return Quoted(_YAML_ESCAPE.sub(lambda m: f"\\u{ord(m.group()):04x}", text))


def python_literal(value: Any) -> Quoted:
    """A Python literal evaluating to exactly `value` (`repr`: one line, quotes and newlines escaped)."""
    _defined(value)
    if not (value is None or isinstance(value, (str, int, bool))):
        raise TypeError(f"the py filter takes a string, number, boolean or None, not {type(value).__name__}")
    return Quoted(repr(value))


def checked_name(value: Any) -> Quoted:
    """A `Name`, as itself: safe in YAML, Python comments, shell words and Markdown."""
    _defined(value)
    if isinstance(value, str) and re.fullmatch(NAME_PATTERN, value):
        return Quoted(value)
    raise ValueError(f"not a name: {value!r}; allowed: {NAME_ALLOWED}")


def checked_token(value: Any) -> Quoted:
    """A word of letters, digits and `._+=:/@-` (a file name, version or image), as itself."""
    _defined(value)
    if isinstance(value, str) and _TOKEN.fullmatch(value):
        return Quoted(value)
    raise ValueError(f"not a plain word: {value!r}")


def markdown_text(value: Any) -> Quoted:
    """Prose for one Markdown line: whitespace collapsed, HTML and Markdown syntax escaped."""
    _defined(value)
    text = " ".join(str(value).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return Quoted(re.sub(r"([\\`*_\[\]{}()#+!|~])", r"\\\1", text))


def _only_quoted(value: Any) -> Any:
    if isinstance(value, Quoted):
        return value
    raise UnquotedValue(f"a value reached a template without a quoting filter (yaml, py, name, token, md): {value!r}")


def quoting_environment(template_dir: Path, finalize: Callable[[Any], Any]) -> jinja2.Environment:
    """A template environment where undefined values are errors and `finalize` refuses any value that did not
    pass a quoting filter. Not HTML (no autoescape): each value is quoted for the language it lands in."""
    return jinja2.Environment(  # nosec B701
        loader=jinja2.FileSystemLoader(str(template_dir)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=finalize,
    )


def environment() -> jinja2.Environment:
    """The project templates' environment: YAML, Python and Markdown, each value quoted by the filters below."""
    env = quoting_environment(TEMPLATE_DIR, _only_quoted)
    env.filters.update(yaml=yaml_string, py=python_literal, name=checked_name, token=checked_token, md=markdown_text)
    return env


def render(context: dict[str, Any]) -> dict[str, str]:
    """Every generated file (project path → text), each YAML and Python file parsed back as a last check."""
    env = environment()
    files = {path.format(stack=checked_name(context["stack"])): env.get_template(template).render(context)
             for path, template in TEMPLATES.items()}
    for path, text in files.items():
        if path.endswith((".yaml", ".yml")):
            yaml.safe_load(text)
        elif path.endswith(".py"):
            ast.parse(text, filename=path)
    return files


def check_name(value: str, field: str) -> str:
    """A name the user gave on the command line: refused unless it is a `Name`."""
    if not re.fullmatch(NAME_PATTERN, value):
        raise InvalidInput("not a valid name", field=field, received=value, allowed=NAME_ALLOWED)
    return value


def installed_version() -> str:
    try:
        return version("hardstack")
    except PackageNotFoundError:  # pragma: no cover - hardstack runs installed
        raise InvalidInput("hardstack is not installed as a package; requirements.txt cannot pin it") from None


@dataclass(frozen=True)
class Project:
    """What `hardstack new` generates: the files (project path → text) and the blueprint they deploy."""

    files: dict[str, str]
    loaded: LoadedBlueprint
    stack: str
    project: str


def plan(blueprint: str, *, stack: str = "dev", project: str | None = None) -> Project:
    """Load and validate the blueprint, then render the project; nothing is written."""
    check_name(stack, "--stack")
    if project is not None:
        check_name(project, "--name")
    loaded, ref, copy = _blueprint_source(blueprint)
    bp = loaded.blueprint
    vault = bp.identity.vault
    context = {
        "project": project or bp.name,
        "stack": stack,
        "description": bp.description,
        "region": bp.region,
        "blueprint_ref": ref,
        "shipped": copy is None,
        "stack_file": STACK_FILE,
        "vault": vault is not None,
        "oidc": vault is not None and vault.humans.method == "oidc",
        "endpoint_secrets": [e.client_secret_config for e in bp.endpoints if e.client_secret_config],
        "registry": bp.registry is not None,
        "endpoints": [e.name for e in bp.endpoints],
        "hardstack_version": installed_version(),
        "python_version": PYTHON_VERSION,
        "python_image": PYTHON_IMAGE,
        "bandit_requirement": BANDIT_REQUIREMENT,
    }
    files = render(context)
    if copy is not None:
        files[BLUEPRINT_FILE] = copy
    return Project(files, loaded, stack, context["project"])


def _blueprint_source(blueprint: str) -> tuple[LoadedBlueprint, str, str | None]:
    """The loaded blueprint, how the stack file names it, and the text to copy into the project (for a file)."""
    loaded = load(blueprint)  # a bad blueprint fails here, with file, line and field
    shipped = catalog()
    if blueprint in shipped:
        return loaded, blueprint, None
    path = Path(blueprint)
    tree = load_yaml(path)
    if is_stack_file(tree):
        where = locate(tree, ("blueprint",))
        raise InvalidInput(
            "is a stack file; `hardstack new` starts from a blueprint and writes the stack file itself",
            file=str(path), line=where[1] if where else None, field="blueprint",
            allowed="a shipped blueprint (" + ", ".join(shipped) + ") or a blueprint file",
        )
    parent = tree.get("extends")
    if isinstance(parent, str) and parent not in shipped:
        where = locate(tree, ("extends",))
        raise InvalidInput(
            f"extends another blueprint file; the project gets a copy of this file as {BLUEPRINT_FILE} only, "
            "so the blueprint it extends would be missing",
            file=str(path), line=where[1] if where else None, field="extends", received=parent,
            allowed="a self-contained blueprint file, or one extending a shipped blueprint (" + ", ".join(shipped) + ")",
        )
    return loaded, BLUEPRINT_FILE, path.read_text(encoding="utf-8")


def new_project(blueprint: str, directory: Path, *, stack: str = "dev", project: str | None = None,
                force: bool = False) -> Project:
    """Generate the project into `directory`: a new or empty one, or with `force` a non-empty one, where only the
    files generated here are replaced and every other file is kept. Nothing is written when anything fails
    before the first write; each file is written atomically (a temporary file, then a rename)."""
    made = plan(blueprint, stack=stack, project=project)
    directory = Path(directory)
    _check_directory(directory, made.files, force)
    for rel in sorted(made.files):
        write_file(directory / rel, made.files[rel], mode=0o644 & ~_umask())
    return made


def _check_directory(directory: Path, files: dict[str, str], force: bool) -> None:
    if directory.exists() and not directory.is_dir():
        raise InvalidInput("exists and is not a directory", file=str(directory), allowed="a new or empty directory")
    if not directory.is_dir() or not any(directory.iterdir()):
        return
    if not force:
        raise InvalidInput(
            "the directory is not empty; refusing to write a project into it",
            file=str(directory),
            allowed="a new or empty directory, or --force (which replaces only the files `hardstack new` "
            "generates and keeps every other file)",
        )
    for rel in files:  # before the first write: every target must be a file or free
        for parent in Path(rel).parents[:-1]:
            if (directory / parent).exists() and not (directory / parent).is_dir():
                raise InvalidInput("is a file where the project needs a directory", file=str(directory / parent))
        if (directory / rel).is_dir():
            raise InvalidInput("is a directory where the project writes a file", file=str(directory / rel))


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current
