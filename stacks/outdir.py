"""Writing output files so that a failed run leaves nothing half-written and nothing of the user's is lost."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hardstack.errors import InvalidInput

MARKER = ".hardstack-output"
"""Marks a directory as hardstack's output, which later runs may overwrite."""


def write_files(out_dir: Path, files: dict[str, str], *, force: bool = False) -> list[Path]:
    """Write `files` (relative path → text) into `out_dir`.

    Everything is first written to a staging directory beside `out_dir`, then each file is moved into place
    with an atomic rename. A directory that holds files and was not written by hardstack is refused unless
    `force` is given.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidInput("exists and is not a directory", file=str(out_dir), allowed="a directory path")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MARKER).exists() and not force:
        raise InvalidInput(
            "the output directory holds files hardstack did not write; refusing to overwrite them",
            file=str(out_dir),
            allowed="an empty or new directory, a directory hardstack wrote before, or --force",
        )
    for rel in files:
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise ValueError(f"output path {rel!r} escapes the output directory")
    parent = out_dir.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".hardstack-staging-", dir=parent))
    try:
        for rel, text in {**files, MARKER: "written by hardstack; files here are regenerated\n"}.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for rel in sorted({**files, MARKER: ""}):
            dest = out_dir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, dest)
            written.append(dest)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_file(path: Path, text: str, *, mode: int | None = None) -> None:
    """Write one file atomically (a temporary file beside it, then a rename); `mode`: its permissions (else
    the temporary file's, owner only)."""
    path = Path(path)
    if path.is_dir():
        raise InvalidInput("is a directory", file=str(path), allowed="a file path")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
