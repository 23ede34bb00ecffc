"""Fixtures for the operations tests: the repository's ops files and the tools that check them.

Helpers are fixtures (not imports) so the tests work in any pytest import mode.
Tests asking for `alert_rule` or `dashboard_query` run once per alert rule or per
dashboard query (see `pytest_generate_tests`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _in_ci() -> bool:
    # CI sets CI=true; there a missing tool is a broken machine, not a reason to skip.
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _require_tool(name: str) -> str:
    """An executable's path, from PATH or this interpreter's venv; skip (fail on CI) if absent."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found:
        return found
    message = f"`{name}` is not installed (Debian package or Poetry dev dependency)"
    if _in_ci():
        pytest.fail(f"{message}; CI must install it")
    pytest.skip(message)


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _alert_rules() -> list[dict[str, Any]]:
    groups = _yaml(REPO / "prometheus" / "alerts.yml")["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def _dashboards() -> dict[str, dict[str, Any]]:
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((REPO / "grafana" / "dashboards").glob("*.json"))
    }


def all_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """All panels of a dashboard, those nested in collapsed rows included."""
    found = []
    for panel in dashboard.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def _dashboard_queries() -> list[tuple[str, str, str]]:
    return [
        (name, f"{panel.get('title')}/{target.get('refId')}", target.get("expr", ""))
        for name, dashboard in _dashboards().items()
        for panel in all_panels(dashboard)
        if panel.get("type") != "row"
        for target in panel.get("targets", [])
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "alert_rule" in metafunc.fixturenames:
        rules = _alert_rules()
        metafunc.parametrize("alert_rule", rules, ids=[rule["alert"] for rule in rules])
    if "dashboard_query" in metafunc.fixturenames:
        queries = _dashboard_queries()
        metafunc.parametrize(
            "dashboard_query", queries, ids=[f"{name}:{where}" for name, where, _ in queries]
        )


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def require_tool() -> Callable[[str], str]:
    """`require_tool(name)`: the executable's path, or skip (fail under CI=true)."""
    return _require_tool


@pytest.fixture(scope="session")
def load_yaml() -> Callable[[Path], Any]:
    return _yaml


@pytest.fixture(scope="session")
def prometheus_config() -> dict[str, Any]:
    return dict(_yaml(REPO / "prometheus.yml"))


@pytest.fixture(scope="session")
def alert_rules() -> list[dict[str, Any]]:
    return _alert_rules()


@pytest.fixture(scope="session")
def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard of grafana/dashboards, by file name."""
    return _dashboards()


@pytest.fixture(scope="session")
def panels_of() -> Callable[[dict[str, Any]], list[dict[str, Any]]]:
    return all_panels


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return dict(_yaml(REPO / "docker-compose.yml"))


@contextlib.contextmanager
def _daemon(
    argv: Sequence[str], ready_url: str, log: Path, timeout: float = 30.0, **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process, up once `ready_url` answers 200; always stopped on exit."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(argv), stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env}
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                pytest.fail(f"{argv[0]} exited: {log.read_text(errors='replace')[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"{argv[0]} was not ready in {timeout} s: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def daemon() -> Callable[..., contextlib.AbstractContextManager[subprocess.Popen[bytes]]]:
    """`with daemon(argv, ready_url, log_path, **env) as process:` a server, stopped after."""
    return _daemon


@pytest.fixture(scope="session")
def prometheus_server(
    require_tool: Callable[[str], str],
) -> Callable[[Path], contextlib.AbstractContextManager[str]]:
    """`with prometheus_server(config) as url:` the real Prometheus on `config` (its data
    and log beside it) on a free port, up once ready, stopped after."""
    binary = require_tool("prometheus")

    @contextlib.contextmanager
    def start(config: Path) -> Iterator[str]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        url = f"http://127.0.0.1:{port}"
        argv = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={config.parent / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        with _daemon(argv, f"{url}/-/ready", config.parent / "prometheus.log"):
            yield url

    return start
