"""Fixtures for the game engine tests: the host's lexicon, a corpus slice, tiny baseline
models and bots served by real uvicorn processes (`corpus_archive` and `tiny_index`
come from tests/conftest.py).

Helpers are fixtures (not imports) so the tests work in any pytest import mode.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from itertools import islice
from pathlib import Path
from typing import Any

import httpx
import pytest

HERE = Path(__file__).resolve().parent
# Documents of the corpus slice the tiny baseline models learn from.
SLICE_DOCUMENTS = 300
# fastText arguments that make a baseline model tiny (the recipe stays the library's).
TINY_ARGS = {"dim": 16, "epoch": 2, "bucket": 20_000}


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _missing(message: str) -> None:
    # On CI a missing input is a broken machine, not a reason to skip.
    if _in_ci():
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def lexicon() -> Any:
    """The host's own tools: NLTK's Snowball stemmer and WordNet 3.0 (Debian files)."""
    from hatbot.game.lexicon import NltkLexicon, WordNetMissingError

    try:
        return NltkLexicon()
    except WordNetMissingError as exc:
        _missing(str(exc))


@pytest.fixture(scope="session")
def corpus_slice(corpus_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The first documents of the corpus, cleaned and raw, one document per line."""
    from hatbot.pipeline.corpus import clean_text, iter_documents
    from hatbot.pipeline.params import PreprocessParams

    folder = tmp_path_factory.mktemp("corpus-slice")
    params = PreprocessParams()
    clean, raw = folder / "clean.txt", folder / "raw.txt"
    with clean.open("w") as clean_f, raw.open("w") as raw_f:
        for doc in islice(iter_documents(corpus_archive), SLICE_DOCUMENTS):
            raw_f.write(" ".join(doc.split()) + "\n")
            words = clean_text(doc, params)
            if words:
                clean_f.write(words + "\n")
    return {"clean": clean, "raw": raw}


@pytest.fixture(scope="session")
def baseline_models(
    corpus_slice: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """Both baseline models, tiny, trained once per session in spawn workers."""
    from hatbot.pipeline.panel import train_baseline_models

    out = tmp_path_factory.mktemp("baselines")
    return train_baseline_models(
        corpus_slice["clean"], corpus_slice["raw"], out, seed=0, args=TINY_ARGS
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def serve_bot() -> Iterator[Callable[[str, Mapping[str, list[str]]], str]]:
    """Start `tests/game/served_bot.py` in a real uvicorn process; returns its URL.

    `mode` picks the behaviour ("good", "slow", "malformed"), `table` the words it
    knows (word -> hints). Every process started here is stopped at module end.
    """
    processes: list[subprocess.Popen[bytes]] = []

    def start(mode: str, table: Mapping[str, list[str]]) -> str:
        port = _free_port()
        env = {
            **os.environ,
            "HATBOT_TEST_BOT_MODE": mode,
            "HATBOT_TEST_BOT_TABLE": json.dumps(dict(table)),
        }
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "served_bot:app",
                "--app-dir",
                str(HERE),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                error = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"the {mode} bot exited with {process.returncode}: {error}")
            try:
                if httpx.get(url + "/", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the {mode} bot did not answer at {url} within 30 s")

    yield start
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()
