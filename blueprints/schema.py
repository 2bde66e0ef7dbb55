"""JSON Schemas of blueprint and stack files, for editors and CI."""

from __future__ import annotations

from typing import Any

from .blueprint import Blueprint, StackFile


def json_schema(kind: str = "blueprint") -> dict[str, Any]:
    model = {"blueprint": Blueprint, "stack": StackFile}[kind]
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"hardstack {kind} file"
    return schema
