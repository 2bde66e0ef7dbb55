"""The Inventory: every resource a program registers, its resolved inputs and what they were computed from."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterator

Path = list[str | int]


@dataclass(frozen=True)
class Reference:
    """Input `path` of a resource was computed from `attribute` of the resource `resource` (a URN).

    `attribute` is None when the dependency is known but no output value could be matched;
    `match` is "exact" when the input equals the attribute, "contains" when it embeds it (e.g. an ARN in a policy).
    """

    path: tuple[str | int, ...]
    resource: str
    attribute: str | None
    match: str = "exact"

    def to_json(self) -> dict[str, Any]:
        return {"path": list(self.path), "resource": self.resource, "attribute": self.attribute, "match": self.match}


@dataclass
class Resource:
    urn: str
    type: str
    name: str
    parent: str | None
    inputs: dict[str, Any]
    references: list[Reference] = field(default_factory=list)
    custom: bool = True
    outputs: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "custom": self.custom,
            "inputs": self.inputs,
            "references": [r.to_json() for r in self.references],
        }

    def refs_to(self, urn: str) -> list[Reference]:
        return [r for r in self.references if r.resource == urn]

    def get(self, *path: str | int, default: Any = None) -> Any:
        node: Any = self.inputs
        for key in path:
            try:
                node = node[key]
            except (KeyError, IndexError, TypeError):
                return default
        return node


@dataclass
class Inventory:
    resources: list[Resource]

    def __post_init__(self) -> None:
        self.resources.sort(key=lambda r: r.urn)
        self._by_urn = {r.urn: r for r in self.resources}

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources)

    def __len__(self) -> int:
        return len(self.resources)

    def __getitem__(self, urn: str) -> Resource:
        return self._by_urn[urn]

    def of_type(self, type_token: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_token]

    def named(self, name: str, type_token: str | None = None) -> Resource:
        found = [r for r in self.resources if r.name == name and (type_token is None or r.type == type_token)]
        if len(found) != 1:
            raise KeyError(f"{len(found)} resources named {name!r}" + (f" of type {type_token}" if type_token else ""))
        return found[0]

    def children(self, urn: str) -> list[Resource]:
        return [r for r in self.resources if r.parent == urn]

    def to_json(self) -> dict[str, Any]:
        return {"resources": [r.to_json() for r in self.resources]}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Inventory":
        return cls(
            [
                Resource(
                    urn=r["urn"],
                    type=r["type"],
                    name=r["name"],
                    parent=r["parent"],
                    inputs=r["inputs"],
                    custom=r.get("custom", True),
                    references=[
                        Reference(tuple(x["path"]), x["resource"], x["attribute"], x.get("match", "exact"))
                        for x in r["references"]
                    ],
                )
                for r in data["resources"]
            ]
        )
