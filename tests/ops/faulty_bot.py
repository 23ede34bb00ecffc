"""The real hatbot app with faults injected into a share of host calls, for alerting tests.

Served by real uvicorn (`uvicorn --factory faulty_bot:create`), it answers every
`HATBOT_FAULT_ERROR_EVERY`-th host call (`/explain`, `/guess`) with a 500 and delays
every `HATBOT_FAULT_SLOW_EVERY`-th one (offset by half) by `HATBOT_FAULT_DELAY`
seconds before answering normally. The fault sits inside the app's own `Observe`
middleware, so the metrics record these calls exactly as they would a real fault.
Nothing of this is in `src/`: production code has no fault switch.
"""

from __future__ import annotations

import asyncio
import itertools
import os

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from hatbot.app import create_app

HOST_CALLS = ("/explain", "/guess")


class Faults:
    """Pure ASGI middleware: a deterministic share of host calls fail or answer late."""

    def __init__(self, app: ASGIApp, error_every: int, slow_every: int, delay: float) -> None:
        self.app = app
        self.error_every = error_every
        self.slow_every = slow_every
        self.delay = delay
        self.calls = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in HOST_CALLS:
            await self.app(scope, receive, send)
            return
        n = next(self.calls)
        if self.error_every and n % self.error_every == 0:
            body = b'{"detail":"injected fault"}'
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        if self.slow_every and n % self.slow_every == self.slow_every // 2:
            await asyncio.sleep(self.delay)
        await self.app(scope, receive, send)


def create() -> ASGIApp:
    """`hatbot.app.create_app()` (settings from HATBOT_*), faults innermost."""
    app = create_app()
    # add_middleware() would wrap Observe from outside, hiding the faults from the
    # metrics; appended last, the middleware runs between Observe and the routes.
    app.user_middleware.append(
        Middleware(
            Faults,  # type: ignore[arg-type]
            error_every=int(os.environ.get("HATBOT_FAULT_ERROR_EVERY", "0")),
            slow_every=int(os.environ.get("HATBOT_FAULT_SLOW_EVERY", "0")),
            delay=float(os.environ.get("HATBOT_FAULT_DELAY", "1.2")),
        )
    )
    return app
