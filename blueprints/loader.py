"""Blueprint and stack files → a validated Blueprint, with errors that point at file, line and field."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from hardstack.errors import InvalidInput, InvalidInputs

from .blueprint import Blueprint, StackFile
from .yamlsource import LDict, LList, load_yaml, locate

MAX_EXTENDS_DEPTH = 8


@dataclass(frozen=True)
class LoadedBlueprint:
    """A validated blueprint, the stack it is deployed as, and where its settings came from."""

    blueprint: Blueprint
    stack_name: str
    source: str
    tree: LDict

    def locate(self, *path: Any) -> tuple[str, int] | None:
        return locate(self.tree, path)


def catalog_dir() -> Path:
    return Path(str(resources.files("hardstack.blueprints") / "catalog"))


def catalog() -> dict[str, Path]:
    """The shipped blueprints by name."""
    return {p.stem: p for p in sorted(catalog_dir().glob("*.yaml"))}


def is_stack_file(tree: LDict) -> bool:
    return "blueprint" in tree


def load(path_or_name: str | Path) -> LoadedBlueprint:
    """Load a shipped blueprint by name, or a blueprint or stack file by path."""
    path = _resolve_ref(str(path_or_name), base=None)
    tree = load_yaml(path)
    if is_stack_file(tree):
        return _load_stack(tree, path)
    merged = _resolve_extends(tree, path, chain=[])
    bp = validate(merged, Blueprint)
    return LoadedBlueprint(bp, bp.name, str(path), merged)


def _resolve_ref(ref: str, base: Path | None, tree: LDict | None = None, key: str = "") -> Path:
    shipped = catalog()
    if ref in shipped:
        return shipped[ref]
    path = Path(ref)
    if base is not None and not path.is_absolute():
        path = base.parent / path
    if path.exists():
        return path
    where = locate(tree, (key,)) if tree is not None else None
    raise InvalidInput(
        "no such blueprint",
        file=where[0] if where else None,
        line=where[1] if where else None,
        field=key or None,
        received=ref,
        allowed="a shipped blueprint (" + ", ".join(shipped) + ") or a path to a YAML file",
    )


def _resolve_extends(tree: LDict, path: Path, chain: list[Path]) -> LDict:
    if "extends" not in tree:
        return tree
    ref = tree["extends"]
    if not isinstance(ref, str):
        raise _at(tree, "extends", "must be a blueprint name or path", received=ref)
    parent_path = _resolve_ref(ref, base=path, tree=tree, key="extends")
    if parent_path.resolve() in [p.resolve() for p in chain + [path]] or len(chain) >= MAX_EXTENDS_DEPTH:
        raise _at(tree, "extends", "blueprints extend each other in a cycle (or deeper than 8)", received=ref)
    parent_tree = load_yaml(parent_path)
    if is_stack_file(parent_tree):
        raise _at(tree, "extends", "names a stack file; allowed: a blueprint", received=ref)
    parent = _resolve_extends(parent_tree, parent_path, chain + [path])
    if not tree.get("exceptions"):
        return merge(parent, tree)
    own = LDict({k: v for k, v in tree.items() if k != "exceptions"}, loc=tree.loc)
    own.locs.update({k: v for k, v in tree.locs.items() if k != "exceptions"})
    return _append(merge(parent, own), "exceptions", tree["exceptions"])  # inherited, then the blueprint's own


def _load_stack(tree: LDict, path: Path) -> LoadedBlueprint:
    stack = validate(tree, StackFile)
    bp_path = _resolve_ref(stack.blueprint, base=path, tree=tree, key="blueprint")
    bp_tree = load_yaml(bp_path)
    if is_stack_file(bp_tree):
        raise _at(tree, "blueprint", "names another stack file; allowed: a blueprint", received=stack.blueprint)
    base = _resolve_extends(bp_tree, bp_path, chain=[])
    overrides = tree.get("overrides") or LDict(loc=locate(tree, ("overrides",)))
    merged = merge(base, overrides)
    if tree.get("exceptions"):
        merged = _append(merged, "exceptions", tree["exceptions"])
    bp = validate(merged, Blueprint)
    return LoadedBlueprint(bp, stack.name or bp.name, str(path), merged)


def _append(tree: LDict, key: str, items: LList) -> LDict:
    """`tree` with `items` appended to its list `key`, each keeping its own location."""
    out = LDict(tree, loc=tree.loc)
    out.locs.update(tree.locs)
    existing = tree.get(key) or LList()
    combined = LList(list(existing) + list(items), loc=getattr(existing, "loc", None))
    combined.locs.update(getattr(existing, "locs", {}))
    for j, _ in enumerate(items):
        if j in getattr(items, "locs", {}):
            combined.locs[len(existing) + j] = items.locs[j]
    out[key] = combined
    out.locs.setdefault(key, getattr(items, "loc", None) or ("", 0))
    return out


def merge(base: Any, over: Any) -> Any:
    """Deep-merge `over` onto `base`: mappings key by key, lists of named mappings by name, else replace."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = LDict(base, loc=getattr(base, "loc", None))
        out.locs.update(getattr(base, "locs", {}))
        for key, value in over.items():
            out[key] = merge(base[key], value) if key in base else value
            if key in getattr(over, "locs", {}):
                out.locs[key] = over.locs[key]
        return out
    if _named_list(base) and _named_list(over):
        out_list = LList(base, loc=getattr(base, "loc", None))
        out_list.locs.update(getattr(base, "locs", {}))
        index = {item["name"]: i for i, item in enumerate(out_list)}
        for j, item in enumerate(over):
            if item["name"] in index:
                i = index[item["name"]]
                out_list[i] = merge(out_list[i], item)
            else:
                i = len(out_list)
                out_list.append(item)
                index[item["name"]] = i
            if j in getattr(over, "locs", {}):
                out_list.locs[i] = over.locs[j]
        return out_list
    return over


def _named_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(i, dict) and "name" in i for i in value)


def _at(tree: LDict, key: str, message: str, received: Any = None) -> InvalidInput:
    where = locate(tree, (key,))
    return InvalidInput(
        message, file=where[0] if where else None, line=where[1] if where else None, field=key, received=received
    )


def validate(tree: LDict, model: type[BaseModel]) -> Any:
    """Validate a located tree; every error names file, line, field path, the value and what is allowed."""
    try:
        return model.model_validate(tree)
    except ValidationError as e:
        raise InvalidInputs([_translate(err, tree, model) for err in e.errors(include_url=False)]) from None


def _translate(err: Any, tree: LDict, model: type[BaseModel]) -> InvalidInput:
    loc = tuple(k for k in err["loc"] if k != "[key]")
    where = locate(tree, loc)
    field = _field_path(loc) or "(top level)"
    kind = err["type"]
    msg = err["msg"]
    received = err.get("input")
    allowed = None
    if kind == "extra_forbidden":
        known = _fields_at(model, loc[:-1])
        msg = "unknown setting"
        received = loc[-1] if loc else received
        allowed = ", ".join(known) if known else None
    elif kind == "missing":
        msg, received = "required setting is missing", None
    elif kind in ("value_error", "assertion_error"):
        msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if isinstance(received, (dict, list)):  # a whole section: the message names what is wrong in it
            received = None
    else:
        msg = msg[0].lower() + msg[1:]
    if isinstance(received, (dict, list)) and len(repr(received)) > 120:
        received = type(received).__name__
    return InvalidInput(
        msg,
        file=where[0] if where else None,
        line=where[1] if where else None,
        field=field,
        received=received,
        allowed=allowed,
    )


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for key in loc:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The settings a model accepts at `loc` (for 'unknown setting' messages)."""
    annotation: Any = model
    for key in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(key))
            if field is None:
                return []
            annotation = field.annotation
        elif typing.get_origin(annotation) in (list, dict):
            annotation = typing.get_args(annotation)[-1]
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    if origin is typing.Annotated:
        return typing.get_args(annotation)[0]
    return annotation
