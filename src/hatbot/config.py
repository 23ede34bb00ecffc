"""Service settings: one pydantic-settings class, read from `HATBOT_*` variables or `.env`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the bot service reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="HATBOT_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # The model store: versioned artifact folders plus `production` and `staging` pointers.
    model_store: Path = Path("models")
    # Which pointer the service follows; a staging deployment sets `staging`.
    model_pointer: Literal["production", "staging"] = "production"
    host: str = "0.0.0.0"
    # PaaS hosts pass the port in $PORT; HATBOT_PORT wins when both are set. (No "port"
    # alias: names are case-insensitive, so it would match $PORT first.)
    port: int = Field(
        default=8000, ge=1, le=65535, validation_alias=AliasChoices("HATBOT_PORT", "PORT")
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # uvicorn worker processes of `hatbot serve`. 1 by measurement (docs/BENCHMARKS.md): on
    # 2 busy vCPU a second worker gave 1.3x the throughput at 16-64 connections, but 244 MB
    # (Pss) instead of 125 and the first answer after 3.9 s instead of 1.6.
    workers: int = Field(default=1, ge=1, le=64)
    # The host asks for 5 or 10 words; 50 leaves room for people while bounding the work.
    max_n_words: int = Field(default=50, ge=1, le=1000)
    # Longer than any English word; longer input is refused rather than processed.
    max_word_length: int = Field(default=64, ge=1, le=1024)
    # The host sends at most N_EXPLAIN hints (10 in the longest tournaments); people may send more.
    max_hints: int = Field(default=100, ge=1, le=10_000)
    # Hints a guess plays (the first distinct ones): the guesser replays every prefix,
    # so its work grows with the square of this; 100 hints took seconds and blocked the loop.
    max_played_hints: int = Field(default=10, ge=1, le=100)
    # Explain calls the estimate of the hat's kind remembers (the kind of each word, never
    # the word; hatbot.hat_kind); 0 turns the estimate off (the tournament's corpus hat).
    hat_memory: int = Field(default=100, ge=0, le=100_000)
    # Hints of the host's guess calls the estimate of its mode remembers (whether WordNet
    # knows each, never the hint; hatbot.host_mode); 0 turns the estimate off (guesses and
    # hints then suit either mode).
    mode_memory: int = Field(default=50, ge=0, le=100_000)
    # How often the service checks whether the pointer moved (seconds); 0 disables reloads.
    reload_interval: float = Field(default=5.0, ge=0)

    # Connections (uvicorn): a request's line, headers and body must arrive within
    # `request_timeout` seconds of its first byte (or of the connection, for the first one),
    # and its line and headers must stay under `max_header_bytes`; an idle kept-alive
    # connection closes after `keep_alive_timeout` seconds; past `max_connections` open
    # connections or requests, new requests get a 503. The host sends a ~200-byte GET and
    # waits 1 s; a slow or huge request is an attack or a bug.
    request_timeout: float = Field(default=10.0, gt=0, le=3600)
    max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    keep_alive_timeout: int = Field(default=5, ge=1, le=3600)
    max_connections: int = Field(default=1000, ge=1, le=100_000)
    # Seconds a stopping server waits for requests in flight before closing them.
    shutdown_timeout: int = Field(default=10, ge=0, le=3600)

    def server_options(self) -> dict[str, Any]:
        """Keyword arguments for `uvicorn.run` (or `uvicorn.Config`) bounding connections.

        The HTTP protocol is uvicorn's httptools one with the request deadline and header
        limit it lacks (`hatbot.server`); it reads `request_timeout` and `max_header_bytes`
        from the environment (`HATBOT_REQUEST_TIMEOUT`, `HATBOT_MAX_HEADER_BYTES`) in each
        worker process, as the app reads its settings.
        """
        return {
            "http": "hatbot.server:BoundedHttpToolsProtocol",
            "timeout_keep_alive": self.keep_alive_timeout,
            "limit_concurrency": self.max_connections,
            # Used only if the h11 protocol is chosen instead: its own header limit.
            "h11_max_incomplete_event_size": self.max_header_bytes,
            "timeout_graceful_shutdown": self.shutdown_timeout,
        }
