"""`hatbot serve --bootstrap` on an empty store: the port answers at once, says what it is
preparing, serves a quick model within the first minutes, then swaps in the full one,
with a client polling all along and never refused; training never runs in the serving
process, which ends up holding what a plain `hatbot serve` of the same model holds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from hatbot.pipeline.run import is_quick
from hatbot.store import ModelStore


def vm_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


class Poller(threading.Thread):
    """Asks `/v1/explain` over and over; records every answer's status and model version."""

    def __init__(self, url: str, word: str) -> None:
        super().__init__(daemon=True)
        self.url, self.word = url, word
        self.answers: list[tuple[int, str | None]] = []
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            while not self.stop.is_set():
                try:
                    response = client.post(
                        f"{self.url}/v1/explain", json={"word": self.word, "n_words": 5}
                    )
                    body = response.json() if response.status_code == 200 else {}
                    self.answers.append((response.status_code, body.get("model_version")))
                except httpx.HTTPError as exc:  # refused, reset or timed out: a lost turn
                    self.errors.append(repr(exc))
                time.sleep(0.05)


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}")


def test_bootstrap_answers_at_once_then_quick_then_full(
    bots: ModuleType,
    tiny_corpus: Path,
    tiny_paths: Any,
    tiny_params_file: Path,
    tiny_index: Any,
    tmp_path: Path,
) -> None:
    data, models = tmp_path / "data", tmp_path / "models"
    # The session's tiny run trained the full model's fastText models already: reused.
    shutil.copytree(tiny_paths.data, data)
    port = bots.free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HATBOT_MODEL_STORE": str(models), "HATBOT_RELOAD_INTERVAL": "0.5"}
    command = [sys.executable, "-m", "hatbot.cli", "serve", "--bootstrap"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--source", str(tiny_corpus)]
    command += ["--params", str(tiny_params_file), "--data-dir", str(data)]
    command += ["--tracking-dir", str(tmp_path / "mlruns")]
    server = subprocess.Popen(command, env={**env, "HATBOT_LOG_LEVEL": "warning"})
    word = tiny_index.words[int(tiny_index.eligible.argmax())]
    poller = Poller(url, word)
    try:
        # The port answers while the first model trains, and says what it is doing.
        def preparing() -> dict[str, Any] | None:
            try:
                health = httpx.get(f"{url}/healthz", timeout=1.0)
                ready = httpx.get(f"{url}/readyz", timeout=1.0)
            except httpx.HTTPError:
                return None
            assert health.status_code == 200
            if ready.status_code == 503 and ready.json().get("status") == "training":
                return dict(ready.json())
            return None

        status = wait_for(preparing, 30, "/readyz says it is training")
        assert status["stage"] in ("fetch", "train", "evaluate", "promote")
        assert status["model"] == "quick"
        early = httpx.get(f"{url}/explain", params={"word": "space", "n_words": 5})
        assert early.status_code == 503 and "training" in early.text
        metrics = httpx.get(f"{url}/metrics").text
        assert "hatbot_training_progress_ratio" in metrics
        poller.start()

        # The quick model lands first and answers.
        store = ModelStore(models)
        # The waits only catch a hang (no speed is asserted here): generous for a loaded machine.
        quick = wait_for(lambda: store.read("production"), 1200, "a quick model in production")
        assert is_quick(json.loads((store.path(quick) / "manifest.json").read_text()))
        wait_for(
            lambda: httpx.get(f"{url}/readyz").status_code == 200, 30, "ready on the quick model"
        )
        answer = httpx.get(f"{url}/explain", params={"word": "space", "n_words": 5})
        assert answer.status_code == 200 and len(answer.json()) == 5

        # Then the full model replaces it, by the usual promotion.
        full = wait_for(
            lambda: (v := store.read("production")) != quick and v, 2400, "the full model"
        )
        assert not is_quick(json.loads((store.path(full) / "manifest.json").read_text()))
        wait_for(lambda: httpx.get(f"{url}/v1/model").json().get("version") == full, 30, "the swap")
        time.sleep(1.0)
        poller.stop.set()
        poller.join()

        served = [version for code, version in poller.answers if code == 200]
        assert not poller.errors, poller.errors[:3]
        first_ok = next(i for i, (code, _) in enumerate(poller.answers) if code == 200)
        assert all(code == 200 for code, _ in poller.answers[first_ok:])
        assert served[0] == quick and served[-1] == full

        # Training ran elsewhere: the serving process holds what a plain serve holds.
        bootstrapped = vm_rss_kb(server.pid)
        plain_url, plain = bots.start_bot(models)
        try:
            httpx.get(f"{plain_url}/explain", params={"word": "space", "n_words": 5})
            httpx.get(f"{url}/explain", params={"word": "space", "n_words": 5})
            plain_kb = vm_rss_kb(plain.pid)
        finally:
            bots.stop_bot(plain)
        assert bootstrapped < 1.25 * plain_kb + 20_000, (bootstrapped, plain_kb)
    finally:
        poller.stop.set()
        bots.stop_bot(server)
