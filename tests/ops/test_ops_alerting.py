"""Alert delivery end to end: a real bot losing turns, the real Prometheus and Alertmanager
binaries, and a webhook receiver that must get the page.

The bot is the real app serving the tiny model over real uvicorn, with faults
injected into a share of host calls by a test-only middleware (faulty_bot.py): one
in ten answered 500, another one in ten answered after 1.2 s (20% of turns lost,
half slow, half failed). Prometheus scrapes it every second with the project's
rules, their windows shrunk (5m -> 4s ... 3d -> 15s) and nothing else changed, and
sends alerts to Alertmanager, configured from alertmanager/alertmanager.yml with
only the webhook URL and the waits shortened.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

# The production windows, scaled down for a 1 s scrape interval (a rate needs at least
# two samples in its window); their order is kept, so short windows stay short.
WINDOWS = {"5m": "4s", "30m": "6s", "1h": "10s", "6h": "12s", "3d": "15s"}
ERROR_EVERY = 10
SLOW_EVERY = 10
BURN_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shrink_windows(rules: dict[str, Any]) -> dict[str, Any]:
    """The rule file with every SLO window and `for` scaled down; fails if one is missed."""
    for group in rules["groups"]:
        for rule in group["rules"]:
            expr = rule["expr"]
            windows = set(re.findall(r"\[(\d+[smhd])\]", expr))
            if "record" in rule:
                assert windows and windows <= WINDOWS.keys(), (rule["record"], windows)
            rule["expr"] = re.sub(
                r"\[(\d+[smhd])\]", lambda m: f"[{WINDOWS.get(m[1], m[1])}]", expr
            )
            if "for" in rule:
                rule["for"] = "1s"
    return rules


class Receiver(ThreadingHTTPServer):
    """A webhook endpoint: keeps every JSON payload Alertmanager posts."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Hook)
        self.payloads: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hatbot-alerts"

    def alerts(self, name: str, status: str = "firing") -> list[dict[str, Any]]:
        with self.lock:
            return [
                alert
                for payload in self.payloads
                for alert in payload.get("alerts", [])
                if alert["labels"].get("alertname") == name and alert["status"] == status
            ]


class _Hook(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/hatbot-alerts":
            with self.server.lock:
                self.server.payloads.append(json.loads(body))
        self.send_response(200 if self.path == "/hatbot-alerts" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def faulty_bot(
    tiny_store: Path, daemon: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "--app-dir",
        str(Path(__file__).parent),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "faulty_bot:create",
    ]
    log = tmp_path_factory.mktemp("faulty-bot") / "bot.log"
    with daemon(
        argv,
        f"{url}/readyz",
        log,
        timeout=60,
        HATBOT_MODEL_STORE=str(tiny_store),
        HATBOT_LOG_LEVEL="warning",
        HATBOT_FAULT_ERROR_EVERY=str(ERROR_EVERY),
        HATBOT_FAULT_SLOW_EVERY=str(SLOW_EVERY),
    ):
        yield url


@pytest.fixture(scope="module")
def alertmanager(
    receiver: Receiver,
    repo: Path,
    require_tool: Callable[[str], str],
    daemon: Callable[..., Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    binary = require_tool("prometheus-alertmanager")
    work = tmp_path_factory.mktemp("alertmanager")
    config = yaml.safe_load((repo / "alertmanager" / "alertmanager.yml").read_text())
    (receiver_config,) = config["receivers"]
    (webhook,) = receiver_config["webhook_configs"]
    webhook["url"] = receiver.url
    config["route"]["group_wait"] = "1s"
    config["route"]["group_interval"] = "1s"
    (work / "alertmanager.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        binary,
        f"--config.file={work / 'alertmanager.yml'}",
        f"--storage.path={work / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    with daemon(argv, f"{url}/-/ready", work / "alertmanager.log"):
        yield url


@pytest.fixture(scope="module")
def prometheus(
    faulty_bot: str,
    alertmanager: str,
    repo: Path,
    tmp_path_factory: pytest.TempPathFactory,
    prometheus_server: Callable[[Path], contextlib.AbstractContextManager[str]],
) -> Iterator[str]:
    work = tmp_path_factory.mktemp("prometheus")
    config = yaml.safe_load((repo / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    rule_files = []
    for i, path in enumerate(config["rule_files"]):
        rules = shrink_windows(yaml.safe_load((repo / path).read_text()))
        (work / f"rules-{i}.yml").write_text(yaml.safe_dump(rules))
        rule_files.append(str(work / f"rules-{i}.yml"))
    config["rule_files"] = rule_files
    (manager,) = config["alerting"]["alertmanagers"]
    manager["static_configs"] = [{"targets": [alertmanager.removeprefix("http://")]}]
    (job,) = config["scrape_configs"]
    job["scrape_timeout"] = "1s"
    job["static_configs"] = [{"targets": [faulty_bot.removeprefix("http://")]}]
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    with prometheus_server(work / "prometheus.yml") as url:
        yield url


def host_traffic(bot: str, stop: threading.Event, counts: dict[int, int]) -> None:
    """What the host sends, until told to stop: explanations and guesses."""
    with httpx.Client(base_url=bot, timeout=10) as client:
        while not stop.is_set():
            for path, params in (
                ("/explain", {"word": "space", "n_words": 5}),
                ("/guess", {"words": ["space", "orbit"], "n_words": 5}),
            ):
                status = client.get(path, params=params).status_code
                counts[status] = counts.get(status, 0) + 1


def query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=10).json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def test_burn_pages_the_webhook(
    faulty_bot: str, prometheus: str, alertmanager: str, receiver: Receiver
) -> None:
    stop = threading.Event()
    counts: dict[int, int] = {}
    threads = [
        threading.Thread(target=host_traffic, args=(faulty_bot, stop, counts)) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + BURN_TIMEOUT
        while not receiver.alerts("HatbotErrorBudgetBurn") and time.monotonic() < deadline:
            time.sleep(0.25)
        lost = query(prometheus, "job_namespace:hatbot_turns_lost:ratio_rate5m")
        slow = query(
            prometheus,
            'sum(rate(http_request_duration_seconds_count{job="hatbot",'
            ' handler=~"/explain|/guess"}[15s]))'
            ' - sum(rate(http_request_duration_seconds_bucket{job="hatbot",'
            ' handler=~"/explain|/guess", le="1.0"}[15s]))',
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)

    (page, *_) = receiver.alerts("HatbotErrorBudgetBurn") or [None]
    alerts = httpx.get(f"{alertmanager}/api/v2/alerts", timeout=10).json()
    assert page is not None, f"no page within {BURN_TIMEOUT} s; Alertmanager holds {alerts}"
    assert page["labels"]["severity"] == "critical"
    assert page["labels"]["job"] == "hatbot"
    assert page["annotations"]["runbook_url"].startswith("docs/OPERATIONS.md#runbook-")
    assert "of host turns" in page["annotations"]["summary"]
    # Both halves of the SLI are measured from the real exposition: the 500s and the
    # answers later than the `le="1.0"` bucket.
    assert counts.get(500, 0) > 0 and counts.get(200, 0) > 0, counts
    assert slow and float(slow[0]["value"][1]) > 0, slow
    (ratio,) = lost
    assert 0.1 < float(ratio["value"][1]) <= 0.5, ratio
