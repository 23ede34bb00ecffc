"""uvicorn's httptools HTTP protocol with the two bounds it lacks: a deadline for receiving a
request, and a size limit on its request line and headers.

uvicorn times out only idle kept-alive connections, and only after a first response: a
connection that never sends a request, a request whose headers trickle in (slowloris) or
whose body stops short of its Content-Length is held open for good, and httptools reads
headers of any size (uvicorn issue #157 lists both as open). An ASGI middleware cannot help:
the app is called only once the headers are complete. `Settings.server_options()` selects
this protocol; its limits come from the settings in the environment of each worker.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from hatbot.config import Settings

log = logging.getLogger("hatbot")


@functools.cache
def limits() -> tuple[float, int]:
    """This process's (request_timeout, max_header_bytes), read once from the environment."""
    settings = Settings()
    return settings.request_timeout, settings.max_header_bytes


class _HeadersTooLarge(Exception):
    """Raised inside a parser callback to stop parsing an oversized request."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """A request must arrive whole within `request_timeout` seconds of its first byte (the
    first one, of the connection), with its line and headers under `max_header_bytes`.

    Too slow: the connection is closed (with a 408 if part of a request came). Too large:
    a 431 and the connection closed. The deadline stops once the request is read, so a
    slow answer is never cut.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.request_timeout, self.max_header_bytes = limits()
        self._deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._too_large = False
        # True from a request's first byte until it is read whole.
        self._partial = False

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.request_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        responding = self.cycle is not None and self.cycle.response_started
        if self._partial and not responding:
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                b"content-length: 37\r\nconnection: close\r\n\r\n"
                b"the request did not arrive in time.\r\n"
            )
        log.warning("closed a connection whose request did not arrive in time")
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # A kept-alive connection's next request: its deadline runs from its first byte.
        if self.cycle is None or self.cycle.response_complete:
            self._arm()
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        if not self._too_large:
            super().send_400_response(msg)
            return
        body = f"request line and headers over {self.max_header_bytes} bytes\n".encode()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            + f"content-length: {len(body)}\r\n".encode()
            + b"connection: close\r\n\r\n"
            + body
        )
        self.transport.close()

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes:
            self._too_large = True
            # httptools turns an exception in a callback into HttpParserCallbackError, an
            # HttpParserError, which uvicorn answers with `send_400_response`.
            raise _HeadersTooLarge

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._partial = True
        self._header_bytes = 0
        self._arm()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_message_complete(self) -> None:
        self._partial = False
        self._disarm()
        super().on_message_complete()
