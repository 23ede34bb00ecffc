"""`hatbot serve` with several worker processes: one port, metrics summed over the workers.

With HATBOT_WORKERS=2 uvicorn runs two workers behind one socket; prometheus_client's
multiprocess mode sums their metrics through files, so a scrape counts every request
whichever worker answers the scrape and whichever answered the requests.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import httpx
from prometheus_client.parser import text_string_to_metric_families

from hatbot.index import WordIndex

REQUESTS = 40


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_two_workers_answer_and_count_every_request(
    tiny_store: Path, tiny_index: WordIndex, bots: ModuleType, tmp_path: Path
) -> None:
    folder = tmp_path / "metrics"
    url, process = bots.start_bot(
        tiny_store, HATBOT_WORKERS="2", PROMETHEUS_MULTIPROC_DIR=str(folder)
    )
    try:
        words = [w for w, ok in zip(tiny_index.words, tiny_index.eligible, strict=True) if ok]
        for word in words[:REQUESTS]:
            # A new connection each time, so both workers get requests.
            reply = httpx.get(f"{url}/explain", params={"word": word, "n_words": 5}, timeout=30)
            assert reply.status_code == 200 and isinstance(reply.json(), list)
        first, second = scrape(url), scrape(url)
        explained = (("handler", "/explain"), ("method", "GET"), ("status", "2xx"))
        for found in (first, second):
            assert found[("http_requests_total", explained)] == REQUESTS
            assert found[("hatbot_answers_total", (("endpoint", "explain"),))] == REQUESTS
            assert found[("hatbot_model_loaded", ())] == 1
            # The workers' estimates, the newest one: tournament words, no guess call yet.
            assert found[("hatbot_hat_everyday_probability", ())] < 0.01
            assert found[("hatbot_host_soft_probability", ())] == 0.5
            in_progress = (("handler", "/explain"), ("method", "GET"))
            assert found[("http_requests_inprogress", in_progress)] == 0
        # Two workers wrote their values (files are named by process id).
        pids = {p.stem.rsplit("_", 1)[1] for p in folder.glob("*.db")}
        assert len(pids) == 2, sorted(folder.iterdir())
    finally:
        bots.stop_bot(process)
