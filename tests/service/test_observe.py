"""`hatbot.app.RequestMetricsMiddleware` records exactly what prometheus-fastapi-instrumentator did.

The dashboard and the alerts query the instrumentator's metric names and labels; hatbot
records them in its own single-pass ASGI middleware. Two copies of one small app, one
behind the instrumentator's middleware (as hatbot was before) and one behind ours,
answer the same requests; their HTTP metrics must agree sample by sample (durations
only in their counts, since time differs).
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from prometheus_fastapi_instrumentator import Instrumentator

from hatbot.app import RequestMetricsMiddleware
from hatbot.metrics import LATENCY_BUCKETS, Metrics

pytestmark = pytest.mark.anyio


def small_app() -> FastAPI:
    app = FastAPI()

    @app.get("/words")
    async def words(n: int = 1) -> list[str]:
        if n < 1:
            raise HTTPException(422, "n must be positive")
        return ["word"] * n

    @app.post("/echo")
    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    @app.get("/items/{item}")
    async def item(item: int) -> int:
        return item

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    return app


def instrumented() -> FastAPI:
    """As hatbot's app was: the instrumentator's middleware and its defaults."""
    registry = CollectorRegistry()
    app = small_app()
    Instrumentator(excluded_handlers=["/metrics"], registry=registry).instrument(
        app, latency_lowr_buckets=LATENCY_BUCKETS
    ).expose(app, include_in_schema=False)
    return app


def observed() -> FastAPI:
    registry = CollectorRegistry()
    app = small_app()
    app.add_middleware(RequestMetricsMiddleware, metrics=Metrics.create(registry))
    Instrumentator(registry=registry).expose(app, include_in_schema=False)
    return app


async def play(app: FastAPI) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for n in (1, 3, 0, 2):
            await client.get("/words", params={"n": n})
        await client.get("/words", params={"n": "x"})
        await client.post("/echo", json={"a": "b" * 100})
        await client.post(
            "/echo", content=b"{not json", headers={"content-type": "application/json"}
        )
        await client.get("/items/7")
        await client.get("/items/8")
        await client.get("/nowhere")
        await client.get("/deeper/nowhere/metrics")
        await client.delete("/words")
        assert (await client.get("/boom")).status_code == 500
        await client.get("/metrics")
        text = (await client.get("/metrics")).text
    found = {}
    for family in text_string_to_metric_families(text):
        if not family.name.startswith("http_") or family.name == "http_requests_inprogress":
            continue
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            timed = family.name.startswith("http_request_duration")
            # A duration, or a bucket count that depends on it, is not compared.
            value = 0.0 if timed and not sample.name.endswith("_count") else sample.value
            found[(sample.name, tuple(sorted(sample.labels.items())))] = value
    return found


async def test_observe_records_what_the_instrumentator_recorded() -> None:
    reference, ours = await play(instrumented()), await play(observed())
    assert ours == reference
    # The comparison covers every family, labels and the cases that matter.
    names = {name for name, _ in ours}
    assert {
        "http_requests_total",
        "http_request_size_bytes_sum",
        "http_response_size_bytes_sum",
        "http_request_duration_highr_seconds_count",
        "http_request_duration_seconds_count",
    } <= names
    statuses = {dict(labels)["status"] for name, labels in ours if name == "http_requests_total"}
    assert statuses == {"2xx", "4xx", "5xx"}
    handlers = {dict(labels)["handler"] for name, labels in ours if name == "http_requests_total"}
    assert handlers == {"/words", "/echo", "/items/{item}", "/boom", "none"}


async def test_observe_counts_requests_in_progress_and_logs_each_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)
    app = small_app()
    seen: list[float] = []

    @app.get("/watch")
    async def watch() -> None:
        seen.append(metrics.in_progress.labels("GET", "/watch")._value.get())

    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    with caplog.at_level(logging.INFO, logger="hatbot"):
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await client.get("/watch")
            await client.get("/nowhere")
            await client.get("/boom")
    assert seen == [1.0]
    assert metrics.in_progress.labels("GET", "/watch")._value.get() == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "hatbot"]
    assert [line.rsplit(" ", 1)[0] for line in lines] == [
        "method=GET path=/watch status=200",
        "method=GET path=/nowhere status=404",
        "method=GET path=/boom status=500",
    ]
