"""Shared fixtures: a tiny real model trained once per session, and a real bot serving it.

The tiny model is trained by the real pipeline (fastText in fresh processes)
on a slice of the real corpus, so every test exercises real vectors.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus" / "20news-19997.tar.gz"
# Small but real: enough text for meaningful neighbours, seconds to train.
TINY_DOCUMENTS = 800
TINY_PARAMS = [
    "train.dim=24",
    "train.epoch=5",
    "train.min_count=3",
    "evaluate.hat_size=40",
    "strategy.min_hint_count=5",
]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def corpus_archive() -> Path:
    if not CORPUS.is_file():
        if in_ci():
            pytest.fail(f"the corpus is missing at {CORPUS}")
        pytest.skip(f"the corpus is not at {CORPUS}")
    return CORPUS


@pytest.fixture(scope="session")
def tiny_corpus(corpus_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of TINY_DOCUMENTS posts spread over all newsgroups of the real corpus."""
    from hatbot.pipeline.corpus import iter_documents

    folder = tmp_path_factory.mktemp("tiny-corpus")
    documents = list(iter_documents(corpus_archive))
    step = max(1, len(documents) // TINY_DOCUMENTS)
    for i, text in enumerate(documents[::step][:TINY_DOCUMENTS]):
        (folder / f"{i:05d}.txt").write_text(text, encoding="latin-1")
    return folder


@pytest.fixture(scope="session")
def tiny_paths(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Data store, model store and tracking folder of a trained tiny model in production."""
    from hatbot.pipeline.params import Params
    from hatbot.pipeline.run import Paths, fetch, train
    from hatbot.store import ModelStore

    root = tmp_path_factory.mktemp("tiny-run")
    paths = Paths(data=root / "data", models=root / "models", tracking=root / "mlruns")
    params = Params.load(None, [*TINY_PARAMS, f"data.source={tiny_corpus}"])
    fetch(paths, params)
    version = train(paths, params)
    ModelStore(paths.models).point("production", version)
    return paths


@pytest.fixture(scope="session")
def tiny_params(tiny_corpus: Path):  # type: ignore[no-untyped-def]
    from hatbot.pipeline.params import Params

    return Params.load(None, [*TINY_PARAMS, f"data.source={tiny_corpus}"])


@pytest.fixture(scope="session")
def tiny_store(tiny_paths) -> Path:  # type: ignore[no-untyped-def]
    """The model store folder holding the tiny model as `production`."""
    return Path(tiny_paths.models)


@pytest.fixture(scope="session")
def tiny_index(tiny_store: Path):  # type: ignore[no-untyped-def]
    from hatbot.index import WordIndex
    from hatbot.store import ModelStore

    folder = ModelStore(tiny_store).resolve("production")
    assert folder is not None
    return WordIndex(folder)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the bot exited with code {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} was not ready within {timeout} s")


def start_bot(store: Path, **env: str) -> tuple[str, subprocess.Popen[bytes]]:
    """A real `hatbot serve` process on a free loopback port, ready to answer."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "hatbot.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "HATBOT_MODEL_STORE": str(store), "HATBOT_LOG_LEVEL": "warning", **env},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return url, process


def stop_bot(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def live_bot(tiny_store: Path) -> Iterator[str]:
    """Base URL of a real uvicorn process serving the tiny model."""
    url, process = start_bot(tiny_store)
    try:
        yield url
    finally:
        stop_bot(process)


@pytest.fixture(scope="session")
def bots(pytestconfig: pytest.Config) -> ModuleType:
    """tests/conftest.py itself: `start_bot(store, **env)`, `stop_bot(process)`, `free_port()`."""
    module = pytestconfig.pluginmanager.get_plugin(str(Path(__file__)))
    assert isinstance(module, ModuleType), "tests/conftest.py is not loaded"
    return module
