"""checkov in a forked worker process, so that importing it (its largest cost) overlaps with synthesis.

The worker is forked before the Pulumi runtime starts any thread, loads checkov and hardstack's checks, then
waits for one scan request. Whatever goes wrong in it reaches the caller as a GateError: not verified.
"""

from __future__ import annotations

import multiprocessing
import traceback
from pathlib import Path
from typing import Any

from hardstack.errors import GateError


class CheckovWorker:
    def __init__(self) -> None:
        ctx = multiprocessing.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child,), name="hardstack-checkov")  # not daemonic: checkov forks
        self._proc.start()
        child.close()
        self._ids: set[str] | None = None

    def _receive(self) -> Any:
        try:
            kind, payload = self._conn.recv()
        except (EOFError, OSError) as e:
            raise GateError(f"not verified: the checkov worker stopped ({type(e).__name__})") from e
        if kind == "error":
            raise GateError(payload)
        return payload

    def known_check_ids(self) -> set[str]:
        if self._ids is None:
            self._ids = self._receive()
        return self._ids

    def scan(self, directory: Path, plan_file: str | None, manifest_dir: str | None,
             checks: list[str] | None = None) -> Any:
        self.known_check_ids()
        self._conn.send((str(directory), plan_file, manifest_dir, checks))
        return self._receive()

    def close(self) -> None:
        self._conn.close()
        self._proc.join(timeout=5)
        if self._proc.is_alive():
            self._proc.kill()

    def __enter__(self) -> "CheckovWorker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _serve(conn: Any) -> None:
    from hardstack.errors import GateError as WorkerGateError

    from . import engine

    try:
        conn.send(("ok", engine.known_check_ids()))
        request = conn.recv()
    except EOFError:
        return
    except Exception as e:  # noqa: BLE001
        conn.send(("error", f"not verified: checkov cannot be loaded: {type(e).__name__}: {e}"))
        return
    directory, plan_file, manifest_dir, checks = request
    try:
        conn.send(("ok", engine.scan(Path(directory), plan_file, manifest_dir, checks)))
    except WorkerGateError as e:
        conn.send(("error", str(e)))
    except Exception as e:  # noqa: BLE001
        conn.send(("error", f"not verified: checkov failed: {type(e).__name__}: {e}\n{traceback.format_exc()}"))
