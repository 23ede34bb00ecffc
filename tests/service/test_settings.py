"""Settings: `HATBOT_*` variables (or `.env`), `$PORT` as the PaaS fallback, fail-fast checks.

Each test runs in an empty folder (no `.env`) with every HATBOT_* and PORT variable
removed, so the machine's environment cannot leak in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from pydantic import ValidationError

from hatbot.config import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("HATBOT_") or name.upper() == "PORT":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_settings_defaults_without_environment() -> None:
    settings = Settings()
    assert settings.port == 8000
    assert settings.host == "0.0.0.0"
    assert settings.model_store == Path("models")
    assert settings.model_pointer == "production"
    assert (settings.max_n_words, settings.max_word_length, settings.max_hints) == (50, 64, 100)
    assert settings.max_played_hints == 10
    assert settings.reload_interval == 5.0
    assert settings.workers == 1


def test_settings_read_hatbot_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "HATBOT_MODEL_STORE": "/srv/models",
        "HATBOT_MODEL_POINTER": "staging",
        "HATBOT_HOST": "127.0.0.1",
        "HATBOT_LOG_LEVEL": "debug",
        "HATBOT_MAX_N_WORDS": "7",
        "HATBOT_MAX_WORD_LENGTH": "20",
        "HATBOT_MAX_HINTS": "12",
        "HATBOT_MAX_PLAYED_HINTS": "4",
        "HATBOT_RELOAD_INTERVAL": "0.2",
        "HATBOT_WORKERS": "3",
        "HATBOT_HAT_MEMORY": "0",
        "HATBOT_MODE_MEMORY": "30",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.model_store == Path("/srv/models")
    assert settings.model_pointer == "staging"
    assert settings.host == "127.0.0.1"
    assert settings.log_level == "debug"
    assert (settings.max_n_words, settings.max_word_length, settings.max_hints) == (7, 20, 12)
    assert settings.max_played_hints == 4
    assert settings.reload_interval == 0.2
    assert settings.workers == 3
    assert (settings.hat_memory, settings.mode_memory) == (0, 30)


@pytest.mark.parametrize(
    ("env", "port"),
    [
        ({}, 8000),
        ({"PORT": "9001"}, 9001),
        ({"HATBOT_PORT": "9002"}, 9002),
        ({"PORT": "9001", "HATBOT_PORT": "9002"}, 9002),
        ({"port": "9003"}, 9003),
    ],
)
def test_settings_port_falls_back_to_port_and_hatbot_port_wins(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], port: int
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings().port == port


def test_settings_explicit_port_beats_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9001")
    monkeypatch.setenv("HATBOT_PORT", "9002")
    assert Settings(port=7000).port == 7000  # what `hatbot serve --port` passes


def test_settings_read_dotenv_and_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    Path(".env").write_text("HATBOT_MAX_N_WORDS=9\nHATBOT_MAX_HINTS=11\n")
    monkeypatch.setenv("HATBOT_MAX_HINTS", "13")
    settings = Settings()
    assert settings.max_n_words == 9
    assert settings.max_hints == 13


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HATBOT_PORT", "0"),
        ("HATBOT_PORT", "70000"),
        ("PORT", "http"),
        ("HATBOT_MAX_N_WORDS", "0"),
        ("HATBOT_MAX_WORD_LENGTH", "-1"),
        ("HATBOT_MAX_HINTS", "many"),
        ("HATBOT_MAX_PLAYED_HINTS", "0"),
        ("HATBOT_RELOAD_INTERVAL", "-1"),
        ("HATBOT_MODEL_POINTER", "prod"),
        ("HATBOT_LOG_LEVEL", "loud"),
        ("HATBOT_WORKERS", "0"),
    ],
)
def test_settings_invalid_value_fails_fast(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_serve_listens_on_hatbot_port_over_port(tiny_store: Path, bots: ModuleType) -> None:
    """The real `hatbot serve` without --port: HATBOT_PORT wins, PORT is ignored then."""
    wanted, other = bots.free_port(), bots.free_port()
    env = {
        **os.environ,
        "HATBOT_MODEL_STORE": str(tiny_store),
        "HATBOT_LOG_LEVEL": "warning",
        "HATBOT_HOST": "127.0.0.1",
        "HATBOT_PORT": str(wanted),
        "PORT": str(other),
    }
    process = subprocess.Popen([sys.executable, "-m", "hatbot.cli", "serve"], env=env)
    try:
        bots.wait_ready(f"http://127.0.0.1:{wanted}", process)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{other}/healthz", timeout=5.0)
    finally:
        bots.stop_bot(process)


def test_serve_listens_on_port_without_hatbot_port(tiny_store: Path, bots: ModuleType) -> None:
    port = bots.free_port()
    env = {
        **os.environ,
        "HATBOT_MODEL_STORE": str(tiny_store),
        "HATBOT_LOG_LEVEL": "warning",
        "HATBOT_HOST": "127.0.0.1",
        "PORT": str(port),
    }
    process = subprocess.Popen([sys.executable, "-m", "hatbot.cli", "serve"], env=env)
    try:
        bots.wait_ready(f"http://127.0.0.1:{port}", process)
    finally:
        bots.stop_bot(process)
