"""checkov in a forked worker process, so that importing it (its largest cost) overlaps with synthesis.

The worker is forked before the Pulumi runtime starts any thread, loads checkov and hardstack's checks, then
waits for one scan request. Whatever goes wrong in it reaches the caller as a GateError: not verified.
"""

from __future__ import annotations

import json
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
        self._ready: tuple[set[str], dict[str, Any]] | None = None

    def _receive(self) -> Any:
        try:
            kind, payload = self._conn.recv()
        except (EOFError, OSError) as e:
            raise GateError(f"not verified: the checkov worker stopped ({type(e).__name__})") from e
        if kind == "error":
            raise GateError(payload)
        return payload

    def _wait_ready(self) -> tuple[set[str], dict[str, Any]]:
        if self._ready is None:
            self._ready = self._receive()
        return self._ready

    def known_check_ids(self) -> set[str]:
        return self._wait_ready()[0]

    def check_metas(self) -> dict[str, Any]:
        return self._wait_ready()[1]

    def scan_all(self, directory: Path, plan_file: str | None, manifest_dir: str | None, checks: list[str] | None,
                 objects: dict[str, Any], version: str, releases: dict[str, Any]) -> Any:
        """checkov's scan and the gate's own Kubernetes and Helm release checks, both in the worker (this process
        never loads checkov): (findings, seen)."""
        self._wait_ready()
        self._conn.send((str(directory), plan_file, manifest_dir, checks, objects, version, releases))
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
        conn.send(("ok", (engine.known_check_ids(), engine.check_metas())))
        request = conn.recv()
    except EOFError:
        return
    except Exception as e:  # noqa: BLE001
        conn.send(("error", f"not verified: checkov cannot be loaded: {type(e).__name__}: {e}"))
        return
    directory, plan_file, manifest_dir, checks, objects, version, releases = request
    try:
        findings, seen = engine.scan(Path(directory), plan_file, manifest_dir, checks)
        plan = json.loads((Path(directory) / plan_file).read_text(encoding="utf-8")) if plan_file else None
        conn.send(("ok", (findings + engine.native(objects, version, checks, releases, plan), seen)))
    except WorkerGateError as e:
        conn.send(("error", str(e)))
    except Exception as e:  # noqa: BLE001
        conn.send(("error", f"not verified: checkov failed: {type(e).__name__}: {e}\n{traceback.format_exc()}"))
