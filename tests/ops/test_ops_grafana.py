"""Grafana provisioning and dashboards: structure checks (no Grafana server runs here)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Panels = Callable[[dict[str, Any]], list[dict[str, Any]]]
# An aggregation over the replicas: Kubernetes may run several pods of the bot.
AGGREGATION = re.compile(r"\b(sum|count|max|min|avg)\b\s*(by\s*\([^)]*\)\s*)?\(")
PANEL_TYPES_WITHOUT_QUERIES = {"row", "text"}


@pytest.fixture(scope="module")
def datasource(repo: Path, load_yaml: Callable[[Path], Any]) -> dict[str, Any]:
    sources = load_yaml(repo / "grafana/provisioning/datasources/prometheus.yml")["datasources"]
    assert len(sources) == 1
    return dict(sources[0])


def test_datasource_has_fixed_uid(
    datasource: dict[str, Any], prometheus_config: dict[str, Any]
) -> None:
    assert datasource["uid"] == "prometheus"
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    # $__rate_interval is computed from timeInterval: it must be the real scrape interval.
    assert datasource["jsonData"]["timeInterval"] == prometheus_config["global"]["scrape_interval"]


def test_provider_points_at_mounted_dashboards(
    repo: Path, load_yaml: Callable[[Path], Any], compose: dict[str, Any]
) -> None:
    providers = load_yaml(repo / "grafana/provisioning/dashboards/hatbot.yml")["providers"]
    (provider,) = providers
    assert provider["type"] == "file"
    mounts = dict(volume.split(":")[:2] for volume in compose["services"]["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"


def test_dashboards_exist(dashboards: dict[str, dict[str, Any]]) -> None:
    assert "hatbot.json" in dashboards


def test_dashboard_has_unique_panel_ids(
    dashboards: dict[str, dict[str, Any]], panels_of: Panels
) -> None:
    for name, dashboard in dashboards.items():
        ids = [panel.get("id") for panel in panels_of(dashboard)]
        assert all(isinstance(i, int) for i in ids), name
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
        assert dashboard.get("uid"), f"{name}: a fixed uid keeps links stable"


def test_panel_uses_provisioned_datasource(
    dashboards: dict[str, dict[str, Any]], panels_of: Panels, datasource: dict[str, Any]
) -> None:
    wanted = {"type": datasource["type"], "uid": datasource["uid"]}
    for name, dashboard in dashboards.items():
        for panel in panels_of(dashboard):
            if panel.get("type") in PANEL_TYPES_WITHOUT_QUERIES:
                continue
            where = f"{name}: panel {panel.get('title')!r}"
            assert panel.get("datasource") == wanted, where
            assert panel.get("targets"), f"{where} has no query"
            for target in panel["targets"]:
                # A target may omit its datasource (it inherits the panel's) but not name another.
                assert target.get("datasource", wanted) == wanted, where
                assert target.get("expr", "").strip(), f"{where}: target without expr"
                assert target.get("refId"), where


def test_panel_layout_fits_grid(dashboards: dict[str, dict[str, Any]], panels_of: Panels) -> None:
    for name, dashboard in dashboards.items():
        for panel in panels_of(dashboard):
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, (
                f"{name}: {panel.get('title')} is wider than the grid"
            )
            assert grid["h"] > 0
            assert grid["w"] > 0


def test_query_aggregates_replicas(dashboard_query: tuple[str, str, str]) -> None:
    _, _, expr = dashboard_query
    assert AGGREGATION.search(expr), f"aggregate across replicas (sum by ...): {expr}"
    assert 'job="hatbot"' in expr, f"select the bot's job explicitly: {expr}"


def test_dashboard_covers_issue_topics(dashboards: dict[str, dict[str, Any]]) -> None:
    """The panels the operations issue asked for, found by the metrics they query."""
    exprs = " ".join(query for _, _, query in _queries(dashboards))
    for needle in [
        "up{",
        "http_requests_total",
        "histogram_quantile(0.5,",
        "histogram_quantile(0.95,",
        "histogram_quantile(0.99,",
        'status="5xx"',
        "hatbot_model_info",
        "hatbot_unknown_words_total",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "http_requests_inprogress",
        'le="1.0"',
        "[28d]",
        "job_namespace:hatbot_turns_lost:ratio_rate5m",
        'handler=~"/explain|/guess"',
        "hatbot_host_soft_probability",
        "hatbot_hat_everyday_probability",
    ]:
        assert needle in exprs, f"no panel queries {needle}"


def test_dashboard_filters_by_namespace_and_instance(
    dashboards: dict[str, dict[str, Any]], panels_of: Panels
) -> None:
    dashboard = dashboards["hatbot.json"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(variables) == {"namespace", "instance"}
    for variable in variables.values():
        assert variable["includeAll"] and variable["allValue"] == ".*"
        assert 'job="hatbot"' in variable["query"]["query"]
    for panel in panels_of(dashboard):
        for target in panel.get("targets", []):
            assert 'namespace=~"$namespace"' in target["expr"], panel["title"]


def test_latency_panels_show_host_routes_only(
    dashboards: dict[str, dict[str, Any]], panels_of: Panels
) -> None:
    for panel in panels_of(dashboards["hatbot.json"]):
        for target in panel.get("targets", []):
            if "histogram_quantile" in target["expr"]:
                assert 'handler=~"/explain|/guess"' in target["expr"], panel["title"]


def test_process_panels_survive_several_workers(
    dashboards: dict[str, dict[str, Any]], panels_of: Panels
) -> None:
    """Per-replica process metrics are aggregated, and say why they are absent with workers."""
    found = 0
    for panel in panels_of(dashboards["hatbot.json"]):
        exprs = [t["expr"] for t in panel.get("targets", [])]
        if any("process_" in e for e in exprs):
            found += 1
            assert all(re.match(r"^(max|sum) by \(instance\)", e) for e in exprs), exprs
            assert "several workers" in panel["fieldConfig"]["defaults"]["noValue"]
    assert found == 2


def test_annotations_mark_model_swaps(dashboards: dict[str, dict[str, Any]]) -> None:
    exprs = " ".join(a.get("expr", "") for a in dashboards["hatbot.json"]["annotations"]["list"])
    assert "hatbot_model_loads_total" in exprs
    assert "hatbot_model_load_failures_total" in exprs


def _queries(dashboards: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [
        (name, str(panel.get("title")), target.get("expr", ""))
        for name, dashboard in dashboards.items()
        for panel in dashboard.get("panels", [])
        for target in panel.get("targets", [])
    ]
