"""Service settings: one pydantic-settings class, read from `HATBOT_*` variables or `.env`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

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
    # How often the service checks whether the pointer moved (seconds); 0 disables reloads.
    reload_interval: float = Field(default=5.0, ge=0)
