"""Prometheus configuration and alert rules, checked by the real promtool."""

from __future__ import annotations

import re
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


def test_check_rules_passes(
    promtool: str, repo: Path, alert_rules: list[dict[str, Any]], load_yaml: Callable[[Path], Any]
) -> None:
    result = run_promtool(promtool, repo, "check", "rules", "prometheus/alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    groups = load_yaml(repo / "prometheus" / "alerts.yml")["groups"]
    records = [rule for group in groups for rule in group["rules"] if "record" in rule]
    assert len(records) == 5, "one lost-turn ratio per SLO window"
    assert f"{len(alert_rules) + len(records)} rules found" in result.stdout + result.stderr


TEST_FILES = ("prometheus/alerts_test.yml", "prometheus/alerts_days_test.yml")


def test_test_rules_pass(promtool: str, repo: Path) -> None:
    result = run_promtool(promtool, repo, "test", "rules", *TEST_FILES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (result.stdout + result.stderr).count("SUCCESS") == len(TEST_FILES)


def test_check_alertmanager_config_passes(repo: Path, require_tool: Callable[[str], str]) -> None:
    amtool = require_tool("amtool")
    result = subprocess.run(
        [amtool, "check-config", "alertmanager/alertmanager.yml"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 receivers" in result.stdout


def test_alerts_routed_to_alertmanager(
    prometheus_config: dict[str, Any], compose: dict[str, Any]
) -> None:
    (manager,) = prometheus_config["alerting"]["alertmanagers"]
    (static,) = manager["static_configs"]
    assert static["targets"] == ["alertmanager:9093"]
    assert "alertmanager" in compose["services"]


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
    assert alert_rule.get("annotations", {}).get("description")
    assert 'job="hatbot"' in alert_rule["expr"], "select the bot's job explicitly"


def test_alert_runbook_is_a_docs_section(alert_rule: dict[str, Any], repo: Path) -> None:
    """runbook_url names a heading of docs/OPERATIONS.md (GitHub/GitLab anchor style)."""
    url = alert_rule["annotations"]["runbook_url"]
    path, _, anchor = url.partition("#")
    assert path == "docs/OPERATIONS.md" and anchor == f"runbook-{alert_rule['alert'].lower()}"
    headings = [
        line.lstrip("#").strip()
        for line in (repo / path).read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    ]
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
    assert anchor in anchors, f"no section for {anchor} in {path}"


def test_unit_tests_cover_alert_firing_and_quiet(
    alert_rule: dict[str, Any], repo: Path, load_yaml: Callable[[Path], Any]
) -> None:
    cases = [
        case
        for path in TEST_FILES
        for test in load_yaml(repo / path)["tests"]
        for case in test.get("alert_rule_test", [])
        if case["alertname"] == alert_rule["alert"]
    ]
    assert any(case.get("exp_alerts") for case in cases), "no test shows it firing"
    assert any(not case.get("exp_alerts") for case in cases), "no test shows it quiet"
