"""Fixtures for the service tests: the app served in-process (lifespan run) and real bots.

`tiny_store`, `tiny_index` and `live_bot` come from tests/conftest.py; its
`start_bot` and `stop_bot` helpers are handed out by the `bots` fixture, so the
tests work in any pytest import mode.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

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
