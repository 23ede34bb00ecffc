"""Fixtures for the pipeline tests: tiny parameters, copies of the tiny production store,
a loopback HTTP server, and helpers that snapshot a store to prove nothing changed.

`tiny_corpus`, `tiny_params` and `tiny_paths` come from tests/conftest.py. Helpers
are fixtures (not imports) so the tests work in any pytest import mode.
"""

from __future__ import annotations

import hashlib
import http.server
import shutil
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

# The baseline panel keeps fastText's recipe, with fewer subword buckets: the default
# two million make every panel model a 800 MB file.
TINY_PANEL_ARGS = {"bucket": 20_000}


def tree_state(root: Path) -> dict[str, str]:
    """Every file under `root` (hidden ones included) with its sha256."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="session")
def state() -> Callable[[Path], dict[str, str]]:
    return tree_state


@pytest.fixture(scope="session")
def tiny_eval_params(tiny_params: Any) -> Any:
    """The session's tiny parameters (same training) with a tiny evaluation panel."""
    from hatbot.pipeline.params import Params

    data = tiny_params.model_dump(mode="json")
    data["evaluate"]["panel_args"] = TINY_PANEL_ARGS
    return Params.model_validate(data)


@pytest.fixture(scope="session")
def tiny_params_file(tiny_eval_params: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A parameters file holding the tiny parameters (what `--params` reads)."""
    path = tmp_path_factory.mktemp("params") / "params.yaml"
    path.write_text(yaml.safe_dump(tiny_eval_params.model_dump(mode="json"), sort_keys=False))
    return path


@pytest.fixture
def prod_paths(tiny_paths: Any, tmp_path: Path) -> Any:
    """A private copy of the session's tiny run: data store, and a model store whose
    production (and staging) is the tiny model. Trainings with the session's parameters
    reuse its cached fastText models."""
    from hatbot.pipeline.run import Paths

    paths = Paths(data=tmp_path / "data", models=tmp_path / "models", tracking=tmp_path / "mlruns")
    shutil.copytree(tiny_paths.data, paths.data)
    shutil.copytree(tiny_paths.models, paths.models)
    return paths


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A folder served over HTTP on a free loopback port: (base URL, folder)."""
    folder = tmp_path / "served"
    folder.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(_QuietHandler, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
