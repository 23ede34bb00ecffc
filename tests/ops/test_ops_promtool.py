"""Prometheus configuration and alert rules, checked by the real promtool."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def run_promtool(promtool: str, repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], cwd=repo, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def promtool(require_tool: Callable[[str], str]) -> str:
    return require_tool("promtool")


def test_check_config_passes(promtool: str, repo: Path) -> None:
    result = run_promtool(promtool, repo, "check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    # The config must really point at the alert rules, not merely parse.
    assert "1 rule files found" in result.stdout + result.stderr


def test_check_rules_passes(promtool: str, repo: Path, alert_rules: list[dict[str, Any]]) -> None:
    result = run_promtool(promtool, repo, "check", "rules", "prometheus/alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(alert_rules)} rules found" in result.stdout + result.stderr


def test_test_rules_pass(promtool: str, repo: Path) -> None:
    result = run_promtool(promtool, repo, "test", "rules", "prometheus/alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_scrape_config_targets_bot(
    prometheus_config: dict[str, Any], compose: dict[str, Any]
) -> None:
    jobs = {job["job_name"]: job for job in prometheus_config["scrape_configs"]}
    assert set(jobs) == {"hatbot"}
    targets = [t for static in jobs["hatbot"]["static_configs"] for t in static["targets"]]
    assert targets == ["bot:8000"]
    # The target is the compose service `bot` on the port it listens on.
    assert "bot" in compose["services"]
    assert compose["services"]["bot"]["environment"]["HATBOT_PORT"] == "8000"
    assert prometheus_config["rule_files"] == ["prometheus/alerts.yml"]


def test_alert_has_for_severity_summary(alert_rule: dict[str, Any]) -> None:
    assert alert_rule["alert"].startswith("Hatbot")
    assert alert_rule.get("for"), "every alert needs a `for:`"
    assert alert_rule.get("labels", {}).get("severity") in {"critical", "warning"}
    assert alert_rule.get("annotations", {}).get("summary")
    assert 'job="hatbot"' in alert_rule["expr"], "select the bot's job explicitly"


def test_unit_tests_cover_alert_firing_and_quiet(
    alert_rule: dict[str, Any], repo: Path, load_yaml: Callable[[Path], Any]
) -> None:
    cases = [
        case
        for test in load_yaml(repo / "prometheus" / "alerts_test.yml")["tests"]
        for case in test.get("alert_rule_test", [])
        if case["alertname"] == alert_rule["alert"]
    ]
    assert any(case.get("exp_alerts") for case in cases), "no test shows it firing"
    assert any(not case.get("exp_alerts") for case in cases), "no test shows it quiet"
