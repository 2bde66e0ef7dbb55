"""Safe YAML loading that remembers where every value came from (file and line)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hardstack.errors import InvalidInput

Location = tuple[str, int]


class LDict(dict):
    """A mapping that knows the file and line of each of its values."""

    def __init__(self, *args: Any, loc: Location | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loc = loc
        self.locs: dict[Any, Location] = {}


class LList(list):
    """A sequence that knows the file and line of each of its items."""

    def __init__(self, *args: Any, loc: Location | None = None) -> None:
        super().__init__(*args)
        self.loc = loc
        self.locs: dict[int, Location] = {}


class _Loader(yaml.SafeLoader):
    """SafeLoader (no arbitrary objects) building LDict/LList and refusing duplicate keys."""

    filename = "<input>"


def _mapping(loader: _Loader, node: yaml.MappingNode) -> LDict:
    loader.flatten_mapping(node)
    out = LDict(loc=(loader.filename, node.start_mark.line + 1))
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, (str, int, bool)):
            raise InvalidInput("mapping keys must be plain strings", file=loader.filename, line=line, received=key)
        if key in out:
            raise InvalidInput(
                f"duplicate key {key!r} (first at line {out.locs[key][1]})",
                file=loader.filename,
                line=line,
                allowed="each key once per mapping",
            )
        out[key] = loader.construct_object(value_node, deep=True)
        out.locs[key] = (loader.filename, line)
    return out


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> LList:
    out = LList(loc=(loader.filename, node.start_mark.line + 1))
    for i, item in enumerate(node.value):
        out.append(loader.construct_object(item, deep=True))
        out.locs[i] = (loader.filename, item.start_mark.line + 1)
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def load_yaml(path: Path) -> LDict:
    """Load a YAML file whose top level must be a mapping; errors name the file and line."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput("file not found", file=name) from None
    except IsADirectoryError:
        raise InvalidInput("is a directory, expected a YAML file", file=name) from None
    except UnicodeDecodeError as e:
        raise InvalidInput(f"not UTF-8 text ({e.reason})", file=name) from None
    except OSError as e:
        raise InvalidInput(f"cannot be read: {e.strerror}", file=name) from None
    return parse_yaml(text, name)


def parse_yaml(text: str, name: str) -> LDict:
    loader = _Loader(text)
    loader.filename = name
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise InvalidInput(
            f"invalid YAML: {e.problem or e.context}", file=name, line=mark.line + 1 if mark else None
        ) from None
    except yaml.YAMLError as e:
        raise InvalidInput(f"invalid YAML: {e}", file=name) from None
    finally:
        loader.dispose()
    if not isinstance(data, LDict):
        raise InvalidInput(
            "the top level must be a mapping of settings",
            file=name,
            line=1,
            received=type(data).__name__ if data is not None else "an empty document",
        )
    return data


def locate(tree: Any, path: tuple[Any, ...]) -> Location | None:
    """The location of the deepest value along `path` that the tree knows."""
    found: Location | None = getattr(tree, "loc", None)
    node = tree
    for key in path:
        locs = getattr(node, "locs", None)
        if locs is None or key not in locs:
            break
        found = locs[key]
        node = node[key]
    return found
