"""A real moto server on 127.0.0.1, for tests that ask AWS's API (as moto implements it) about what hardstack emits."""

from __future__ import annotations

import contextlib
from typing import Iterator

from .openbao import free_port


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A fresh moto server on a free port; yields its URL; always stopped."""
    import requests
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        requests.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()
        yield url
        requests.post(f"{url}/moto-api/reset", timeout=10)
    finally:
        server.stop()
