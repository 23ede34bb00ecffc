"""The monitoring stack end to end: the real bot, the real Prometheus, the real dashboard queries.

`live_bot` (tests/conftest.py) serves a tiny real model from a uvicorn process.
A real Prometheus (/usr/bin/prometheus) scrapes it every second with the
project's own prometheus.yml (target and interval rewritten) and alert rules.
After real traffic, every query of every dashboard panel must return data: a
panel showing "No data" on a bot that just served requests is a broken panel.
"""

from __future__ import annotations

import contextlib
import math
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

# Grafana's variables, replaced as Grafana would for a 1 s scrape interval and a
# short dashboard range. $__rate_interval is at least four scrape intervals.
GRAFANA_VARIABLES = {
    "__rate_interval": "30s",
    "__interval": "5s",
    "__range": "5m",
    # "All" of a multi-value template variable (its allValue).
    "namespace": ".*",
    "instance": ".*",
}
# The SLO alerts count a refused host call (the malformed one send_traffic makes) as a
# lost turn, as the host does: on this traffic they must fire, not stay quiet.
SLO_ALERTS = {"HatbotErrorBudgetBurn", "HatbotErrorBudgetLeak"}
SCRAPE_INTERVAL = "1s"
TRAFFIC_ROUNDS = 3
UNKNOWN_WORD = "zqxjvwkp"  # not a word of any corpus


def grafana_to_promql(expr: str) -> str:
    """`expr` with Grafana's `$var` / `${var}` replaced; fails on a variable it cannot fill."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in GRAFANA_VARIABLES:
            pytest.fail(f"unknown Grafana variable ${name} in {expr}")
        return GRAFANA_VARIABLES[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", fill, expr)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape_config_for(bot_url: str, repo: Path) -> dict[str, Any]:
    """The project's prometheus.yml, pointed at the test bot and scraping every second."""
    config = yaml.safe_load((repo / "prometheus.yml").read_text(encoding="utf-8"))
    config["global"]["scrape_interval"] = SCRAPE_INTERVAL
    config["global"]["evaluation_interval"] = SCRAPE_INTERVAL
    config["rule_files"] = [str(repo / path) for path in config["rule_files"]]
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "hatbot"]
    job["static_configs"] = [{"targets": [urlsplit(bot_url).netloc]}]
    job["scrape_timeout"] = SCRAPE_INTERVAL  # may not exceed the interval
    return dict(config)


def query(prometheus: str, promql: str) -> dict[str, Any]:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=10)
    body = response.json()
    assert response.status_code == 200, f"{promql}: {body}"
    assert body["status"] == "success", f"{promql}: {body}"
    return dict(body["data"])


def wait_for_scrape_after(prometheus: str, moment: float, timeout: float = 30) -> None:
    """Block until Prometheus holds a successful scrape of the bot taken after `moment`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # timestamp() of a bare selector is the scrape's time (of an expression, it is now).
        scraped = query(prometheus, 'timestamp(up{job="hatbot"})')["result"]
        up = query(prometheus, 'up{job="hatbot"}')["result"]
        if scraped and float(scraped[0]["value"][1]) > moment and up and up[0]["value"][1] == "1":
            return
        time.sleep(0.25)
    targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=10).json()
    pytest.fail(f"no successful scrape of the bot after {moment}: {targets}")


@pytest.fixture(scope="module")
def prometheus(
    live_bot: str,
    repo: Path,
    tmp_path_factory: pytest.TempPathFactory,
    prometheus_server: Callable[[Path], contextlib.AbstractContextManager[str]],
) -> Iterator[str]:
    """A real Prometheus scraping `live_bot`; always stopped at the end of the module."""
    config = tmp_path_factory.mktemp("prometheus") / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config_for(live_bot, repo)), encoding="utf-8")
    with prometheus_server(config) as url:
        yield url


def send_traffic(bot: str) -> None:
    """What the host and a person send: explanations, guesses, a bad request, unknown words."""
    with httpx.Client(base_url=bot, timeout=10) as client:
        assert client.get("/").status_code == 200
        assert client.get("/v1/model").status_code == 200
        hints: list[str] = []
        for word in ["space", "car", "game", UNKNOWN_WORD]:
            response = client.get("/explain", params={"word": word, "n_words": 5})
            assert response.status_code == 200, response.text
            answer = response.json()
            assert isinstance(answer, list)
            hints = hints or answer
        for words in [hints or ["space"], [UNKNOWN_WORD], [*(hints or ["space"]), UNKNOWN_WORD]]:
            response = client.get("/guess", params={"words": words, "n_words": 5})
            assert response.status_code == 200, response.text
        # A malformed host call: n_words is not a number.
        assert (
            client.get("/explain", params={"word": "space", "n_words": "many"}).status_code == 422
        )


@pytest.fixture(scope="module")
def scraped_traffic(live_bot: str, prometheus: str) -> str:
    """Prometheus, after several rounds of traffic each followed by a scrape (so rates are > 0)."""
    for _ in range(TRAFFIC_ROUNDS):
        send_traffic(live_bot)
        wait_for_scrape_after(prometheus, time.time())
    return prometheus


def test_scrape_bot_target_up(scraped_traffic: str) -> None:
    targets = httpx.get(f"{scraped_traffic}/api/v1/targets", timeout=10).json()["data"][
        "activeTargets"
    ]
    assert [(t["labels"]["job"], t["health"]) for t in targets] == [("hatbot", "up")]


def test_load_alert_rules_healthy(
    scraped_traffic: str, alert_rules: list[dict[str, Any]], repo: Path
) -> None:
    groups = httpx.get(f"{scraped_traffic}/api/v1/rules", timeout=10).json()["data"]["groups"]
    loaded = {rule["name"]: rule for group in groups for rule in group["rules"]}
    source = yaml.safe_load((repo / "prometheus" / "alerts.yml").read_text(encoding="utf-8"))
    records = {r["record"] for g in source["groups"] for r in g["rules"] if "record" in r}
    assert set(loaded) == {rule["alert"] for rule in alert_rules} | records
    # Evaluated at least once, without error. The first evaluation may still be
    # pending right after start, so wait for it briefly.
    deadline = time.monotonic() + 15
    while (
        any(rule.get("health") != "ok" for rule in loaded.values()) and time.monotonic() < deadline
    ):
        time.sleep(0.5)
        groups = httpx.get(f"{scraped_traffic}/api/v1/rules", timeout=10).json()["data"]["groups"]
        loaded = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert {name: rule.get("health") for name, rule in loaded.items()} == dict.fromkeys(
        loaded, "ok"
    )


def test_query_alert_expr_evaluates(scraped_traffic: str, alert_rule: dict[str, Any]) -> None:
    query(scraped_traffic, alert_rule["expr"])


def test_query_alert_quiet_on_healthy_bot(scraped_traffic: str, alert_rule: dict[str, Any]) -> None:
    # A healthy, fast bot with a model trips none of the alert conditions but the SLO's.
    result = query(scraped_traffic, alert_rule["expr"])["result"]
    assert (result != []) is (alert_rule["alert"] in SLO_ALERTS), result


def test_query_slo_ratio_is_refused_share(scraped_traffic: str) -> None:
    """On the real exposition the lost-turn ratio is exactly the refused host calls'
    share: every answer was fast (the `le="1.0"` bucket holds them all), none failed."""
    window = "1h"  # longer than the test: the whole traffic, as increase() sees it
    host = 'job="hatbot", handler=~"/explain|/guess"'
    lost = query(scraped_traffic, "job_namespace:hatbot_turns_lost:ratio_rate1h")["result"]
    refused = query(
        scraped_traffic,
        f'sum(rate(http_requests_total{{{host}, status!="2xx"}}[{window}]))'
        f" / sum(rate(http_requests_total{{{host}}}[{window}]))",
    )["result"]
    slow = query(
        scraped_traffic,
        f"sum(rate(http_request_duration_seconds_count{{{host}}}[{window}]))"
        f' - sum(rate(http_request_duration_seconds_bucket{{{host}, le="1.0"}}[{window}]))',
    )["result"]
    assert len(lost) == 1 and len(refused) == 1 and len(slow) == 1, (lost, refused, slow)
    assert float(slow[0]["value"][1]) == 0
    assert float(refused[0]["value"][1]) > 0
    assert float(lost[0]["value"][1]) == pytest.approx(float(refused[0]["value"][1]), rel=0.05)


def test_query_dashboard_annotations_evaluate(
    scraped_traffic: str, dashboards: dict[str, dict[str, Any]]
) -> None:
    exprs = [
        a["expr"]
        for d in dashboards.values()
        for a in d["annotations"]["list"]
        if a.get("datasource", {}).get("uid") == "prometheus"
    ]
    assert len(exprs) >= 2, "model loads and refusals are annotated"
    for expr in exprs:
        query(scraped_traffic, grafana_to_promql(expr))


def test_query_panel_returns_data(
    scraped_traffic: str, dashboard_query: tuple[str, str, str]
) -> None:
    _, where, expr = dashboard_query
    promql = grafana_to_promql(expr)
    data = query(scraped_traffic, promql)
    if data["resultType"] == "scalar":
        values = [data["result"][1]]
    else:
        values = [sample["value"][1] for sample in data["result"]]
    assert values, f"panel {where} shows no data: {promql}"
    assert any(math.isfinite(float(value)) for value in values), (
        f"panel {where}: only NaN/Inf: {values}"
    )


def test_query_model_version_matches_bot(scraped_traffic: str, live_bot: str) -> None:
    result = query(scraped_traffic, 'count by (version) (hatbot_model_info{job="hatbot"})')[
        "result"
    ]
    versions = [sample["metric"]["version"] for sample in result]
    assert len(versions) == 1, result
    assert versions[0], result
    assert versions[0] in httpx.get(f"{live_bot}/v1/model", timeout=10).text


def test_query_counts_traffic_sent(scraped_traffic: str) -> None:
    explains = query(
        scraped_traffic,
        'sum by (status) (http_requests_total{job="hatbot", handler="/explain"})',
    )["result"]
    by_status = {s["metric"]["status"]: float(s["value"][1]) for s in explains}
    assert by_status.get("2xx", 0) >= 4 * TRAFFIC_ROUNDS
    assert by_status.get("4xx", 0) >= TRAFFIC_ROUNDS
    unknown = query(
        scraped_traffic, 'sum by (endpoint) (hatbot_unknown_words_total{job="hatbot"})'
    )["result"]
    assert {s["metric"]["endpoint"] for s in unknown} == {"explain", "guess"}
