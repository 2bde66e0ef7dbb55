"""The blueprint reference (docs/blueprint-reference.md), generated from the specs so it cannot go stale."""

from __future__ import annotations

import enum
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from .blueprint import Blueprint, StackFile


def render() -> str:
    lines = [
        "# Blueprint reference",
        "",
        "Generated from the specs by `hardstack.blueprints.reference` (`make docs`); a test fails when it is stale.",
        "Every setting is optional unless marked required, and its default is the strictest secure option.",
        "",
    ]
    seen: set[type[BaseModel]] = set()
    for title, model in (("Blueprint file", Blueprint), ("Stack file", StackFile)):
        lines += [f"## {title}", ""]
        _section(model, "", lines, seen)
    return "\n".join(lines).rstrip() + "\n"


def _section(model: type[BaseModel], prefix: str, lines: list[str], seen: set[type[BaseModel]]) -> None:
    nested: list[tuple[str, type[BaseModel]]] = []
    lines += [f"### `{prefix or model.__name__}`" if prefix else f"`{model.__name__}`: {_doc(model)}", ""]
    if prefix:
        lines += [_doc(model), ""]
    lines += ["| setting | type | default | what it does |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        default = "required" if field.is_required() else _fmt_default(field.default)
        desc = " ".join((field.description or "").split()).replace("|", "\\|")
        lines.append(f"| `{name}` | {_type(field.annotation)} | {default} | {desc} |")
        inner = _model_in(field.annotation)
        if inner is not None and inner not in seen:
            seen.add(inner)
            suffix = "[]" if typing.get_origin(_strip(field.annotation)) is list else ""
            suffix = ".<key>" if typing.get_origin(_strip(field.annotation)) is dict else suffix
            nested.append((f"{prefix + '.' if prefix else ''}{name}{suffix}", inner))
    lines.append("")
    for path, inner in nested:
        _section(inner, path, lines, seen)


def _doc(model: type[BaseModel]) -> str:
    return " ".join((model.__doc__ or "").split())


def _strip(annotation: Any) -> Any:
    if typing.get_origin(annotation) is typing.Annotated:
        return typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _strip(args[0])
    return annotation


def _model_in(annotation: Any) -> type[BaseModel] | None:
    annotation = _strip(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (list, dict):
        return _model_in(typing.get_args(annotation)[-1])
    return None


def _type(annotation: Any) -> str:
    optional = typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in typing.get_args(
        annotation
    )
    a = _strip(annotation)
    origin = typing.get_origin(a)
    if origin is list:
        text = f"list of {_type(typing.get_args(a)[0])}"
    elif origin is dict:
        k, v = typing.get_args(a)
        text = f"map {_type(k)} → {_type(v)}"
    elif origin is typing.Literal:
        text = " \\| ".join(f"`{x}`" for x in typing.get_args(a))
    elif isinstance(a, type) and issubclass(a, enum.Enum):
        text = " \\| ".join(f"`{m.value}`" for m in a)
    elif isinstance(a, type) and issubclass(a, BaseModel):
        text = "mapping"
    elif isinstance(a, type):
        text = {"str": "string", "int": "integer", "bool": "boolean", "IPv4Network": "IPv4 CIDR"}.get(
            a.__name__, a.__name__
        )
    else:
        text = "any"
    return f"{text} (optional)" if optional and "optional" not in text else text


def _fmt_default(value: Any) -> str:
    if value is PydanticUndefined or value is None:
        return "unset"
    if isinstance(value, enum.Enum):
        return f"`{value.value}`"
    if isinstance(value, BaseModel):
        return "see below"
    if value in ([], {}, ""):
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


if __name__ == "__main__":  # pragma: no cover
    print(render(), end="")
