"""Connections to a real server are bounded: slow, idle or oversized requests are cut off.

The server runs with `Settings.server_options()` (uvicorn with hatbot's bounded httptools
protocol) and short limits, and raw sockets play the hostile clients: one that connects
and says nothing, a slowloris trickling headers, a body shorter than its Content-Length,
a 10 MB header, an idle kept-alive connection. Each is closed (or refused) within a bound,
and the host's ordinary request is still answered by the same server.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from hatbot.config import Settings

REQUEST_TIMEOUT = 1.0
KEEP_ALIVE = 1
MAX_HEADER_BYTES = 16 * 1024
# How long a client may wait before the server must have closed on it: the limit plus
# room for a loaded machine (a bound against hangs, not a latency claim).
CLOSED_WITHIN = 15.0


@pytest.fixture(scope="module")
def bounded(tiny_store: Path, server: Any, bots: ModuleType) -> Iterator[tuple[str, int]]:
    url, process = server(
        tiny_store,
        HATBOT_REQUEST_TIMEOUT=str(REQUEST_TIMEOUT),
        HATBOT_KEEP_ALIVE_TIMEOUT=str(KEEP_ALIVE),
        HATBOT_MAX_HEADER_BYTES=str(MAX_HEADER_BYTES),
    )
    try:
        yield url, int(url.rsplit(":", 1)[1])
    finally:
        bots.stop_bot(process)


@contextlib.contextmanager
def connection(port: int) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=CLOSED_WITHIN)
    try:
        yield sock
    finally:
        sock.close()


def read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took."""
    started = time.monotonic()
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        except TimeoutError:
            pytest.fail(f"the server kept the connection open for {CLOSED_WITHIN} s")
        if not chunk:
            break
        received += chunk
    return received, time.monotonic() - started


def host_request_answers(url: str) -> None:
    response = httpx.get(f"{url}/guess", params={"words": ["nasa"], "n_words": 5}, timeout=60)
    assert response.status_code == 200 and isinstance(response.json(), list)


def test_server_options_bound_connections() -> None:
    options = Settings(keep_alive_timeout=3, max_connections=50).server_options()
    assert options["http"] == "hatbot.server:BoundedHttpToolsProtocol"
    assert options["timeout_keep_alive"] == 3
    assert options["limit_concurrency"] == 50
    assert options["h11_max_incomplete_event_size"] == Settings().max_header_bytes


def test_a_connection_that_sends_nothing_is_closed(bounded: tuple[str, int]) -> None:
    url, port = bounded
    with connection(port) as sock:
        received, waited = read_until_closed(sock)
    assert received == b""  # nothing was asked, nothing is answered
    assert REQUEST_TIMEOUT * 0.9 <= waited < CLOSED_WITHIN
    host_request_answers(url)


def test_slowloris_headers_are_cut_off(bounded: tuple[str, int]) -> None:
    url, port = bounded
    with connection(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: hatbot\r\n")
        started = time.monotonic()
        # A header line every 0.2 s, never the blank line that ends them, until the server
        # answers or closes.
        while not select.select([sock], [], [], 0.2)[0]:
            assert time.monotonic() - started < CLOSED_WITHIN, "the request was never cut off"
            try:
                sock.sendall(b"X-Slow: aaaaaaaaaa\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
        received, _ = read_until_closed(sock)
        waited = time.monotonic() - started
    # A 408, unless the reset of a header line sent as it closed got there first.
    assert received.startswith(b"HTTP/1.1 408 ") or received == b"", received
    assert REQUEST_TIMEOUT * 0.9 <= waited < CLOSED_WITHIN
    host_request_answers(url)


def test_a_body_shorter_than_its_content_length_is_cut_off(bounded: tuple[str, int]) -> None:
    url, port = bounded
    with connection(port) as sock:
        sock.sendall(
            b"POST /v1/explain HTTP/1.1\r\nHost: hatbot\r\ncontent-type: application/json\r\n"
            b"content-length: 100\r\n\r\n"
            b'{"word": "sp'
        )
        received, waited = read_until_closed(sock)
    assert received.startswith(b"HTTP/1.1 408 "), received
    assert REQUEST_TIMEOUT * 0.9 <= waited < CLOSED_WITHIN
    host_request_answers(url)


def test_a_ten_megabyte_header_is_refused(bounded: tuple[str, int]) -> None:
    url, port = bounded
    with connection(port) as sock:
        sent = threading.Event()

        def send() -> None:
            with contextlib.suppress(OSError):
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: hatbot\r\nX-Big: ")
                sock.sendall(b"a" * 10_000_000 + b"\r\n\r\n")
            sent.set()

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        received, waited = read_until_closed(sock)
        sender.join(CLOSED_WITHIN)
    assert received.startswith(b"HTTP/1.1 431 "), received[:200]
    assert f"over {MAX_HEADER_BYTES} bytes".encode() in received
    assert waited < CLOSED_WITHIN
    host_request_answers(url)


def test_headers_within_the_limit_are_answered(bounded: tuple[str, int]) -> None:
    url, _ = bounded
    response = httpx.get(f"{url}/healthz", headers={"X-Padding": "a" * 8000}, timeout=60)
    assert response.status_code == 200


def test_an_idle_kept_alive_connection_is_closed(bounded: tuple[str, int]) -> None:
    url, port = bounded
    with connection(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: hatbot\r\n\r\n")
        received, waited = read_until_closed(sock)
    assert received.startswith(b"HTTP/1.1 200 "), received
    assert b'"status":"ok"' in received
    assert waited < CLOSED_WITHIN
    host_request_answers(url)
