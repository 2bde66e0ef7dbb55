"""Reading a rendered runbook back: its fenced blocks, here-documents, shell commands and code spans."""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass
from typing import Any, Iterator

from hardstack.stacks.inventory import Inventory, Resource


@dataclass(frozen=True)
class Block:
    """A fenced code block: its info string, its text (dedented to the fence) and the section it is in."""

    info: str
    text: str
    section: str


_FENCE = re.compile(r"^( *)(`{3,})(.*)$")


def blocks(markdown: str) -> list[Block]:
    """Every fenced code block (CommonMark backtick fences, also indented inside list items)."""
    found, lines, section = [], markdown.split("\n"), ""
    i = 0
    while i < len(lines):
        if lines[i].startswith("## "):
            section = lines[i][3:]
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = len(m[1]), m[2], m[3].strip()
        body = []
        i += 1
        while i < len(lines) and not re.fullmatch(r" *" + fence + r"`* *", lines[i]):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"unclosed fence {fence!r} ({info})")
        found.append(Block(info, "\n".join(body) + "\n", section))
        i += 1
    return found


def prose(markdown: str) -> str:
    """The Markdown outside fenced blocks."""
    out, inside, fence = [], False, ""
    for line in markdown.split("\n"):
        m = _FENCE.match(line)
        if not inside and m:
            inside, fence = True, m[2]
            continue
        if inside and re.fullmatch(r" *" + fence + r"`* *", line):
            inside = False
            continue
        if not inside:
            out.append(line)
    return "\n".join(out)


def code_spans(text: str) -> list[str]:
    """The contents of the inline code spans of some prose (CommonMark: a run of n backticks up to the next run of
    exactly n; one leading and trailing space stripped when both are there)."""
    spans, i = [], 0
    while True:
        m = re.compile(r"(?<!`)(`+)(?!`)").search(text, i)
        if not m:
            return spans
        close = re.compile(r"(?<!`)" + m[1] + r"(?!`)").search(text, m.end())
        if not close:
            return spans
        content = text[m.end():close.start()].replace("\n", " ")
        if content[:1] == " " and content[-1:] == " " and content.strip():
            content = content[1:-1]
        spans.append(content)
        i = close.end()


def without_code_spans(text: str) -> str:
    out, i = [], 0
    while True:
        m = re.compile(r"(?<!`)(`+)(?!`)").search(text, i)
        close = re.compile(r"(?<!`)" + m[1] + r"(?!`)").search(text, m.end()) if m else None
        if not m or not close:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:m.start()])
        i = close.end()


_HEREDOC = re.compile(r"<<'(\w+)'")


_OPERATORS = set("();|&")


def commands(script: str) -> Iterator[list[str]]:
    """The words of each simple command of a script (the parts of a logical line between `|`, `&&`, `;` and the
    parentheses of `$(...)`): here-document bodies dropped, continued lines joined, comments removed, quotes removed
    as the shell removes them. A word the shell fills in at run time keeps its `$`."""
    lines, out, i = script.split("\n"), [], 0
    while i < len(lines):
        line = lines[i]
        m = _HEREDOC.search(line)
        i += 1
        if m:
            while lines[i] != m[1]:
                i += 1
            i += 1
        while line.endswith("\\") and i < len(lines):
            line = line[:-1] + " " + lines[i].lstrip()
            i += 1
        out.append(_HEREDOC.sub("", line))
    for line in out:
        lexer = shlex.shlex(line, posix=True, punctuation_chars="();|&")
        lexer.whitespace_split = True
        try:
            tokens = list(lexer)
        except ValueError:  # a line of a multi-line jq program or of a quoted string spanning lines
            continue
        words: list[str] = []
        for token in tokens + [";"]:
            if set(token) <= _OPERATORS:
                if token.startswith("(") and words and words[-1].endswith("$"):
                    words[-1] = words[-1] + "(...)"  # the word is a command substitution: filled in at run time
                    yield words[:-1] if words[-1] == "$(...)" else words
                    words = []
                    continue
                if words:
                    yield words
                words = []
            else:
                words.append(token)
                for inner in re.findall(r"\$\(([^()]*)\)", token):  # a substitution inside a word
                    yield from commands(inner)


def bash_syntax_errors(script: str) -> str:
    """bash -n's complaints about a script ('' when it parses)."""
    proc = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, timeout=30)
    return proc.stderr


def run_bash(script: str, *, timeout: int = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=timeout)


def literal_strings(inventory: Inventory) -> set[str]:
    """Every string (and number) input some resource's program set itself: no reference on its path or above it."""
    found: set[str] = set()

    def walk(resource: Resource, node: Any, path: tuple[Any, ...]) -> None:
        if any(path[: len(ref.path)] == ref.path for ref in resource.references):
            return  # computed from another resource: under synthesis, the mocks' invention
        if isinstance(node, dict):
            for k, v in node.items():
                walk(resource, v, path + (k,))
        elif isinstance(node, list):
            for j, v in enumerate(node):
                walk(resource, v, path + (j,))
        elif isinstance(node, str):
            found.add(node)
        elif isinstance(node, int) and not isinstance(node, bool):
            found.add(str(node))

    for resource in inventory:
        walk(resource, resource.inputs, ())
    return found


def computed_strings(inventory: Inventory) -> set[str]:
    """Values only the mocks made up (ids, ARNs, generated names): provider outputs that no program set."""
    literals = literal_strings(inventory)
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, str) and len(node) >= 8 and node not in literals:
            found.add(node)

    for resource in inventory:
        walk(resource.outputs)
    return found
