"""Fixtures for the service tests: the app served in-process (lifespan run) and real bots.

`tiny_store`, `tiny_index` and `live_bot` come from tests/conftest.py; its
`start_bot` and `stop_bot` helpers are handed out by the `bots` fixture, so the
tests work in any pytest import mode.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.types import Receive, Scope, Send

from hatbot.app import create_app
from hatbot.config import Settings


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    # Module scope, so a module's in-process app (and its loaded model) is shared by its tests.
    return "asyncio"


@contextlib.asynccontextmanager
async def serve_in_process(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to a fresh app whose lifespan has run (model loaded)."""
    app = create_app(settings, registry=CollectorRegistry())
    async with app.router.lifespan_context(app) as state:

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            # A server hands each request a shallow copy of the lifespan state, as uvicorn does.
            await app({**scope, "state": dict(state or {})}, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport, base_url="http://hatbot") as client:
            yield client


@pytest.fixture(scope="session")
def in_process() -> Callable[[Settings], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]:
    """`async with in_process(settings) as client:` serves a fresh app for one test."""
    return serve_in_process


# What `hatbot serve` runs once cli.py passes `Settings.server_options()` to uvicorn: the app
# and the bounded connections, one process, on the port given.
SERVER = """
import sys, uvicorn
from hatbot.app import create_app
from hatbot.config import Settings
settings = Settings(host="127.0.0.1", port=int(sys.argv[1]))
uvicorn.run(create_app(settings), host=settings.host, port=settings.port, loop="asyncio",
            log_level=settings.log_level, access_log=False, **settings.server_options())
"""


def start_server(bots: ModuleType, store: Path, **env: str) -> tuple[str, subprocess.Popen[bytes]]:
    """A real uvicorn process serving the app over `store`, once `/healthz` answers (it may
    have no model: `/readyz` is not awaited)."""
    port = bots.free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port)],
        env={**os.environ, "HATBOT_MODEL_STORE": str(store), "HATBOT_LOG_LEVEL": "warning", **env},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return url, process
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            bots.stop_bot(process)
            raise RuntimeError(f"the server at {url} did not start")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def server(bots: ModuleType) -> Callable[..., tuple[str, subprocess.Popen[bytes]]]:
    """`server(store, **env)` starts a real server (see `start_server`); stop it with
    `bots.stop_bot(process)`."""
    return functools.partial(start_server, bots)
