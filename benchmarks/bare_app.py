"""A bare FastAPI app with hatbot's trivial route and nothing else: the framework's own floor.

    python -m uvicorn benchmarks.bare_app:app --port 8001

Compared with `hatbot serve`'s `/healthz` it shows what hatbot's middleware
(route lookup for the in-progress gauge, access log line, Prometheus
instrumentation) costs per request.
"""

from fastapi import FastAPI

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/explain")
async def explain(word: str, n_words: int) -> list[str]:
    """Answers the probe, so the benchmark can time its start like the bots'."""
    return [word] * n_words
