"""The application factory: settings in, a FastAPI app out; the model loads in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_fastapi_instrumentator.routing import get_route_name
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import hatbot
from hatbot.config import Settings
from hatbot.index import EXPLANATION_DEPTH, WordIndex
from hatbot.metrics import Metrics
from hatbot.store import ModelStore
from hatbot.strategy import Strategy

log = logging.getLogger("hatbot")
# Route names remembered per (method, path): bounded, since any path may be asked for.
ROUTE_CACHE = 1024


@dataclass(frozen=True)
class Model:
    """A loaded, warmed-up model: what a request holds on to while it is answered.

    `precomputed`: the artifact's explanation table agrees with this code's strategy, so
    explanations are looked up in it (`hatbot.api.explain_words`) rather than computed.
    """

    index: WordIndex
    strategy: Strategy
    precomputed: bool = False

    @property
    def version(self) -> str:
        return self.index.version


def table_agrees(index: WordIndex, strategy: Strategy, samples: int = 3) -> bool:
    """True when the precomputed explanations of a few words (spread over the table) equal
    what the running strategy says for them: an artifact exported by an older strategy
    is then served live, never with stale explanations beside new guesses."""
    table = index.explanations
    if table is None or len(table) == 0:
        return False
    explained = np.flatnonzero(table.rows >= 0)
    picks = explained[np.linspace(0, len(explained) - 1, samples).astype(np.int64)]
    for i in dict.fromkeys(int(i) for i in picks):
        word = index.words[i]
        if index.explanation(word, EXPLANATION_DEPTH) != strategy.explain(word, EXPLANATION_DEPTH):
            return False
    return True


def load_model(folder: object) -> Model:
    """Load an artifact folder, check its explanation table, warm it up with one guess."""
    from pathlib import Path

    index = WordIndex(Path(str(folder)))
    strategy = Strategy(index)
    precomputed = table_agrees(index, strategy)
    if index.explanations is None:
        log.info("model %s has no precomputed explanations: explaining live", index.version)
    elif not precomputed:
        log.warning(
            "model %s: the precomputed explanations differ from this code's strategy; "
            "explaining live",
            index.version,
        )
    probe = index.words[min(len(index) - 1, 100)]
    strategy.guess(strategy.explain(probe, 5)[:2] or [probe], 5)
    for proxy in index.proxies:
        for twin in proxy.twins:
            twin.release()
    return Model(index, strategy, precomputed)


class ModelManager:
    """Owns the serving model and swaps in a new one when the store's pointer moves.

    A request reads `current` once and keeps that model to the end, so a swap
    never disturbs requests in flight. A broken new artifact is refused with a
    log line and the old model keeps serving.
    """

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.store = ModelStore(settings.model_store)
        self.pointer = settings.model_pointer
        self.interval = settings.reload_interval
        self.metrics = metrics
        self.current: Model | None = None
        self._failed: str | None = None

    async def refresh(self) -> None:
        """Load the version the pointer names, if it is not the one serving (or known bad)."""
        try:
            version = self.store.read(self.pointer)
        except OSError as exc:
            log.warning("cannot read the %s pointer: %s", self.pointer, exc)
            return
        serving = self.current.version if self.current else None
        if version is None or version in (serving, self._failed):
            return
        started = time.perf_counter()
        try:
            model = await asyncio.to_thread(load_model, self.store.path(version))
        except Exception as exc:  # whatever breaks a new artifact, the old model keeps serving
            self._failed = version
            self.metrics.model_load_failures.inc()
            log.error("refused model %s, still serving %s: %s", version, serving, exc)
            return
        self.current = model
        self._failed = None
        # The heap is now mostly long-lived (imports, the model): move it out of the garbage
        # collector's sight, so the collections that requests trigger walk only what they
        # allocate (the Instagram gc.freeze recipe; docs/BENCHMARKS.md measures it). What is
        # frozen is still freed by reference counting: the model holds no cycles.
        gc.collect()
        gc.freeze()
        self.metrics.model_loads.inc()
        self.metrics.model_info.info({"version": model.version})
        self.metrics.model_loaded.set(1)
        log.info(
            "serving model %s (%d words), loaded in %.2f s",
            model.version,
            len(model.index),
            time.perf_counter() - started,
        )

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.refresh()
            except Exception:  # a dead watcher would silently stop all future updates
                log.exception("checking the %s pointer failed", self.pointer)


class Observe:
    """Per-request metrics and the access log, in one pure ASGI middleware.

    It records what prometheus-fastapi-instrumentator's middleware records (requests by
    method, status class and route template; request and response Content-Length;
    latency, in two histograms), hatbot's in-progress gauge, and one log line per request
    (`method=GET path=/explain status=200 ms=8.41`). The route template is resolved once
    per request with the instrumentator's resolver (and remembered per method and path);
    a request no route matches is labelled `none`, `/metrics` is not measured.
    Measured: 0.36 ms of CPU per trivial request with the instrumentator's middleware
    and Starlette's `BaseHTTPMiddleware` for the log, against 0.07 ms for the bare app
    (docs/BENCHMARKS.md).
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.routes: dict[tuple[str, str, str], str | None] = {}

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
        method: str = scope["method"]
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

        in_progress = (
            self.metrics.in_progress.labels(method, handler) if measured and route else None
        )
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


class State(TypedDict):
    settings: Settings
    models: ModelManager
    metrics: Metrics


def create_app(
    settings: Settings | None = None, registry: CollectorRegistry | None = None
) -> FastAPI:
    """Build the service; nothing is loaded until the lifespan starts."""
    from hatbot.api import router

    settings = settings or Settings()
    registry = registry or CollectorRegistry()
    ProcessCollector(registry=registry)
    metrics = Metrics.create(registry)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        models = ModelManager(settings, metrics)
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
    )
    app.include_router(router)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    app.add_middleware(Observe, metrics=metrics)
    exposition = registry
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        # Several workers (`hatbot serve --workers N`): every worker's counters, gauges and
        # histograms from the shared files, plus this worker's model version (an Info, which
        # the files cannot hold; all workers follow the same pointer). Process metrics
        # (`process_*`) are per process and left out.
        exposition = CollectorRegistry()
        MultiProcessCollector(exposition)  # type: ignore[no-untyped-call]
        exposition.register(metrics.model_info)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        return Response(generate_latest(exposition), media_type=CONTENT_TYPE_LATEST)

    return app
