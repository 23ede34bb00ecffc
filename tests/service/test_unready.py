"""A real server without a model says what it is preparing, then serves the first model.

`hatbot serve --bootstrap` binds at once while a trainer (another process) writes
`<store>/.progress.json` (`hatbot.progress`); here the test is the trainer: it writes the
progress file, then copies the tiny model into the store and points production at it.
Until then `/healthz` is 200, `/readyz` 503 with the trainer's progress, the host routes
and the typed API 503 with a message saying so, the page and `/metrics` show it too.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from hatbot import progress
from hatbot.index import WordIndex

MODEL_ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/explain", {"params": {"word": "space", "n_words": 5}}),
    ("GET", "/guess", {"params": {"words": ["nasa", "orbit"], "n_words": 5}}),
    ("POST", "/v1/explain", {"json": {"word": "space"}}),
    ("POST", "/v1/guess", {"json": {"words": ["nasa"]}}),
    ("GET", "/v1/model", {}),
]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def eventually(check: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait until `check()` holds (the service re-reads the progress file once a second)."""
    deadline = time.monotonic() + timeout  # a bound against hangs, not a timing claim
    while not check():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.1)


def refused_with(http: httpx.Client, detail: str) -> None:
    for method, path, request in MODEL_ROUTES:
        response = http.request(method, path, **request)
        assert response.status_code == 503, (path, response.text)
        assert response.json() == {"detail": detail}, path
        assert response.headers["retry-after"] == "5"


def test_a_service_without_a_model_says_what_it_prepares_then_serves(
    tmp_path: Path, tiny_store: Path, tiny_index: WordIndex, server: Any, bots: ModuleType
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    url, process = server(store, HATBOT_RELOAD_INTERVAL="0.2")
    try:
        with httpx.Client(base_url=url, timeout=30.0) as http:
            # Nothing is known yet: no model, no trainer.
            assert http.get("/healthz").json() == {"status": "ok", "model_version": None}
            ready = http.get("/readyz")
            assert ready.status_code == 503 and ready.json() == {"status": "not ready"}
            assert http.head("/healthz").status_code == 200
            assert http.head("/readyz").status_code == 503
            refused_with(http, "no model is loaded yet; retry shortly")
            assert not [k for k in samples(http.get("/metrics").text) if "training" in k[0]]

            # A trainer at work.
            started = time.time()
            snapshot = progress.Progress(
                stage="train", step="fastText own", done=4, of=9, model="quick", started=started
            )
            progress.write(store, snapshot)
            eventually(lambda: http.get("/readyz").json()["status"] == "training")
            body = http.get("/readyz").json()
            detail = "no model yet: training the first one, stage train 4/9 (fastText own); "
            detail += "retry shortly"
            assert body == {**snapshot.as_dict(), "updated": body["updated"], "detail": detail}
            assert body["updated"] >= started
            refused_with(http, detail)
            page = http.get("/")
            assert page.status_code == 200
            assert "Preparing the first model: " + detail in page.text
            assert 'data-state="not-ready"' in page.text
            found = samples(http.get("/metrics").text)
            assert found[("hatbot_training_progress_ratio", ())] == 4 / 9
            labels = (("model", "quick"), ("stage", "train"), ("status", "training"))
            assert found[("hatbot_training_info", labels)] == 1
            assert found[("hatbot_training_updated_timestamp_seconds", ())] == body["updated"]
            assert found[("hatbot_model_loaded", ())] == 0

            # The trainer failed.
            progress.write(
                store, snapshot.but(status="failed", message="fastText ran out of memory")
            )
            eventually(lambda: http.get("/readyz").json()["status"] == "failed")
            failed = http.get("/readyz").json()
            assert failed["message"] == "fastText ran out of memory"
            reason = "no model yet: training the first one failed: fastText ran out of memory"
            assert failed["detail"] == reason
            refused_with(http, reason)
            found = samples(http.get("/metrics").text)
            labels = (("model", "quick"), ("stage", "train"), ("status", "failed"))
            assert found[("hatbot_training_info", labels)] == 1

            # A broken progress file is ignored, not shown.
            (store / progress.FILE).write_text('{"status": "training", "done": "many"}')
            eventually(lambda: http.get("/readyz").json() == {"status": "not ready"})

            # The first model lands: the service loads it and serves.
            version = tiny_index.version
            shutil.copytree(tiny_store / version, store / version)
            progress.write(store, snapshot.but(status="done", stage="promote", done=1, of=1))
            (store / "production").write_text(version + "\n")
            eventually(lambda: http.get("/readyz").status_code == 200, timeout=120)
            assert http.get("/readyz").json() == {"status": "ready", "model_version": version}
            assert http.get("/healthz").json() == {"status": "ok", "model_version": version}
            assert http.head("/readyz").status_code == 200
            answer = http.get("/explain", params={"word": tiny_index.words[60], "n_words": 5})
            assert answer.status_code == 200 and len(answer.json()) == 5
            assert f"Model {version} is serving." in http.get("/").text
            found = samples(http.get("/metrics").text)
            assert found[("hatbot_model_loaded", ())] == 1
            # The progress file is re-read at most once a second (serving.PROGRESS_TTL).
            ratio = ("hatbot_training_progress_ratio", ())
            eventually(lambda: samples(http.get("/metrics").text).get(ratio) == 1)
    finally:
        bots.stop_bot(process)
