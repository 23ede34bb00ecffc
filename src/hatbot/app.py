"""The application factory: settings in, a FastAPI app out; the model loads in the lifespan.

Also the request-metrics middleware. Routes live in `hatbot.api`, the model and its hot
swap in `hatbot.serving`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import logging
import os
import time
from collections.abc import AsyncIterator, Collection
from typing import TypedDict

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_fastapi_instrumentator.routing import get_route_name
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import hatbot
from hatbot.api import CONTENT_SECURITY_POLICY, router
from hatbot.config import Settings
from hatbot.metrics import Metrics, TrainingProgressCollector
from hatbot.serving import ModelManager

log = logging.getLogger("hatbot")
# Route names remembered per (method, path): bounded, since any path may be asked for.
ROUTE_CACHE = 1024
# The methods recorded by name; any other (a scanner's QUERY, PROPFIND...) is `other`, so a
# client cannot add series to the metrics.
METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
# Requests in progress are tracked for what players and people ask (the dashboard's panel):
# probes and scrapes take microseconds.
IN_PROGRESS = (
    ("GET", "/explain"),
    ("GET", "/guess"),
    ("POST", "/v1/explain"),
    ("POST", "/v1/guess"),
)


class RequestMetricsMiddleware:
    """Per-request metrics and the access log, in one pure ASGI middleware.

    It records what prometheus-fastapi-instrumentator's middleware records (requests by
    method, status class and route template; request and response Content-Length;
    latency, in two histograms), hatbot's in-progress gauge, and one log line per request
    (`method=GET path=/explain status=200 ms=8.41`). The route template is resolved once
    per request with the instrumentator's resolver (and remembered per method and path);
    a request no route matches is labelled `none`, `/metrics` is not measured, and a
    method outside METHODS is labelled `other`. `in_progress`, when given, lists the
    (method, route) pairs the in-progress gauge tracks (their series exist from the start);
    by default it tracks every route.
    Measured: 0.36 ms of CPU per trivial request with the instrumentator's middleware
    and Starlette's `BaseHTTPMiddleware` for the log, against 0.07 ms for the bare app
    (docs/BENCHMARKS.md).
    """

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        in_progress: Collection[tuple[str, str]] | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.routes: dict[tuple[str, str, str], str | None] = {}
        self.tracked = None if in_progress is None else frozenset(in_progress)
        for method, handler in self.tracked or ():
            metrics.in_progress.labels(method, handler)

    def route(self, scope: Scope) -> str | None:
        key = (scope["method"], scope["path"], scope.get("root_path", ""))
        try:
            return self.routes[key]
        except KeyError:
            name = get_route_name(HTTPConnection(scope), should_include_root_path=False)
            if len(self.routes) < ROUTE_CACHE:
                self.routes[key] = name
            return name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method: str = scope["method"] if scope["method"] in METHODS else "other"
        route = self.route(scope)
        # The instrumentator's exclusion: a search for `/metrics` in the template (or path).
        measured = "/metrics" not in (route or scope["path"])
        handler = route or "none"
        status = 500
        response_size = 0

        async def sending(message: Message) -> None:
            nonlocal status, response_size
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name == b"content-length":
                        response_size = int(value)
            await send(message)

        tracked = measured and route is not None
        if tracked and self.tracked is not None:
            tracked = (method, handler) in self.tracked
        in_progress = self.metrics.in_progress.labels(method, handler) if tracked else None
        if in_progress is not None:
            in_progress.inc()
        try:
            await self.app(scope, receive, sending)
        finally:
            duration = max(time.perf_counter() - started, 0.0)
            if in_progress is not None:
                in_progress.dec()
            if measured:
                m = self.metrics
                m.requests.labels(method, f"{str(status)[0]}xx", handler).inc()
                m.request_size.labels(handler).observe(request_size(scope))
                m.response_size.labels(handler).observe(response_size)
                m.latency_highr.observe(duration)
                m.latency.labels(method, handler).observe(duration)
            log.info(
                "method=%s path=%s status=%d ms=%.2f", method, scope["path"], status, duration * 1e3
            )


def request_size(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value)
    return 0


# Swagger UI and ReDoc as the package fastapi-offline ships them, served by the app (FastAPI's
# self-hosting recipe), not from a CDN: the docs work offline, in CI and behind a firewall.
DOCS_ASSETS = str(importlib.resources.files("fastapi_offline") / "static")


def add_docs(app: FastAPI) -> None:
    """`/docs` (Swagger UI) and `/redoc` (ReDoc) from local assets. Their content security
    policy keeps the browser from fetching anything elsewhere (ReDoc's footer logo)."""
    app.mount("/docs-assets", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")
    openapi_url = str(app.openapi_url)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}/docs-assets/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs-assets/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs-assets/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )
        page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return page

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}/docs-assets/redoc.standalone.js",
            redoc_favicon_url=f"{root}/docs-assets/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return page


class State(TypedDict):
    settings: Settings
    models: ModelManager
    metrics: Metrics


def create_app(
    settings: Settings | None = None, registry: CollectorRegistry | None = None
) -> FastAPI:
    """Build the service; nothing is loaded until the lifespan starts."""
    settings = settings or Settings()
    # No `*_created` series (one per counter, summary and histogram child): no dashboard or
    # alert reads them, and they were a sixth of the exposition.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = registry or CollectorRegistry()
    ProcessCollector(registry=registry)
    metrics = Metrics.create(registry)
    models = ModelManager(settings, metrics)
    training = TrainingProgressCollector(models.progress)
    registry.register(training)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        await models.refresh()
        if models.current is None:
            log.warning(
                "no %s model in %s yet: not ready", settings.model_pointer, settings.model_store
            )
        watcher = asyncio.create_task(models.watch()) if settings.reload_interval > 0 else None
        try:
            yield {"settings": settings, "models": models, "metrics": metrics}
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher

    app = FastAPI(
        title="hatbot",
        version=hatbot.__version__,
        summary="A bot for The Hat word game.",
        description=(
            "`GET /explain` and `GET /guess` speak the tournament host's protocol "
            "(a bare JSON list of words); `/v1/...` is the same with typed JSON for "
            "people and programs."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # No call to swagger.io's online validator.
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.include_router(router)
    add_docs(app)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    app.add_middleware(RequestMetricsMiddleware, metrics=metrics, in_progress=IN_PROGRESS)
    exposition = registry
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        # Several workers (`hatbot serve --workers N`): every worker's counters, gauges and
        # histograms from the shared files, plus this worker's model version (an Info, which
        # the files cannot hold; all workers follow the same pointer). Process metrics
        # (`process_*`) are per process and left out.
        exposition = CollectorRegistry()
        MultiProcessCollector(exposition)  # type: ignore[no-untyped-call]
        exposition.register(metrics.model_info)
        exposition.register(training)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        return Response(generate_latest(exposition), media_type=CONTENT_TYPE_LATEST)

    return app
