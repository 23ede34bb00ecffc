"""Failure is safe: every way a run can fail ends with a clear message and a non-zero exit
code, and leaves the model store exactly as it was (no new version, no scratch left,
pointers unchanged: production untouched).

Each test starts from a private copy of the session's tiny run (`prod_paths`), whose
production model is the tiny model, and runs the real `hatbot` command.
"""

from __future__ import annotations

import gzip
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hatbot.cli import app
from hatbot.index import WordIndex
from hatbot.store import ModelStore

State = Callable[[Path], dict[str, str]]


def _args(paths: Any, params_file: Path, command: str = "pipeline") -> list[str]:
    args = [
        command,
        "--params",
        str(params_file),
        "--data-dir",
        str(paths.data),
        "--models-dir",
        str(paths.models),
    ]
    if command == "pipeline":
        args += ["--tracking-dir", str(paths.tracking)]
    return args


def _assert_untouched(paths: Any, before: dict[str, str], state: State) -> None:
    """The model store is byte for byte what it was, and production still loads."""
    assert state(paths.models) == before
    assert not (paths.models / ".incoming").exists()
    production = ModelStore(paths.models).resolve("production")
    assert production is not None
    WordIndex(production)  # verifies every file's checksum
    assert not paths.tracking.exists()  # a failed run records nothing


def _write_texts(folder: Path, texts: list[str]) -> Path:
    folder.mkdir()
    for i, text in enumerate(texts):
        (folder / f"{i:03d}.txt").write_text(text, encoding="latin-1")
    return folder


def _random_bytes(seed: int, size: int) -> str:
    return random.Random(seed).randbytes(size).decode("latin-1")


@pytest.mark.parametrize(
    "case",
    [
        "diverging lr",
        "garbage corpus",
        "non-English corpus",
        "empty corpus",
        "unreachable URL",
        "checksum mismatch",
        "corrupt archive",
    ],
)
def test_pipeline_failure_leaves_production_untouched(
    case: str,
    prod_paths: Any,
    tiny_params_file: Path,
    corpus_archive: Path,
    tmp_path: Path,
    state: State,
) -> None:
    extra: list[str] = []
    raw_unchanged = True
    if case == "diverging lr":
        extra, message = ["--set", "train.lr=1.0"], "TrainingError: .*Encountered NaN"
    elif case == "garbage corpus":
        folder = _write_texts(tmp_path / "garbage", [_random_bytes(i, 4000) for i in range(30)])
        extra, message = ["--source", str(folder)], "does not look like English"
        raw_unchanged = False  # the fetch itself succeeds: the store holds the new source
    elif case == "non-English corpus":
        german = "Der Hund und die Katze sind im Garten, und der Vogel singt dort. " * 40
        folder = _write_texts(tmp_path / "german", [german] * 10)
        extra, message = ["--source", str(folder)], "does not look like English"
        raw_unchanged = False
    elif case == "empty corpus":
        (tmp_path / "empty").mkdir()
        extra, message = ["--source", str(tmp_path / "empty")], "holds no documents"
    elif case == "unreachable URL":
        extra, message = ["--source", "http://127.0.0.1:1/x.tar.gz"], "cannot download"
    elif case == "checksum mismatch":
        extra = ["--source", str(corpus_archive), "--set", f"data.sha256={'0' * 64}"]
        message = "checksum mismatch"
    else:
        corrupt = tmp_path / "20news-19997.tar.gz"
        corrupt.write_bytes(corpus_archive.read_bytes()[:5_000_000])
        extra, message = ["--source", str(corrupt)], "not a readable corpus archive"
    before, raw_before = state(prod_paths.models), state(prod_paths.data / "raw")
    result = CliRunner().invoke(app, [*_args(prod_paths, tiny_params_file), *extra])
    assert result.exit_code == 1, result.output
    assert "error: " in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("error: ")]) == 1
    import re

    assert re.search(message, result.output), result.output
    assert "Traceback" not in result.output  # a known failure is one clear line
    _assert_untouched(prod_paths, before, state)
    raw_after = state(prod_paths.data / "raw")
    if raw_unchanged:
        assert raw_after == raw_before
    else:  # raw data is never modified: the old corpus is still there, byte for byte
        assert {k: v for k, v in raw_after.items() if k in raw_before and k != "corpus.json"} == {
            k: v for k, v in raw_before.items() if k != "corpus.json"
        }


def test_exception_inside_the_train_stage(
    prod_paths: Any, tiny_params_file: Path, state: State, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hatbot.pipeline import artifact

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom inside the export")

    monkeypatch.setattr(artifact, "write_artifact", boom)
    # A new version would be written: the run trains with other parameters.
    before = state(prod_paths.models)
    result = CliRunner().invoke(
        app, [*_args(prod_paths, tiny_params_file, "train"), "--set", "strategy.proxy_depth=7"]
    )
    assert result.exit_code == 1
    assert "error: unexpected RuntimeError: boom inside the export" in result.output
    _assert_untouched(prod_paths, before, state)


def test_exception_inside_the_evaluate_stage(
    prod_paths: Any, tiny_params_file: Path, state: State, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The train stage completed (a new staging model, complete); evaluation failed: the
    candidate has no metrics, and production is untouched."""
    import json

    from hatbot.pipeline import evaluate

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom inside a tournament")

    monkeypatch.setattr(evaluate, "_play", boom)
    store = ModelStore(prod_paths.models)
    production = store.read("production")
    before = state(prod_paths.models)
    # Other parameters than production's, so the candidate is a new version (the same
    # parameters would rebuild production's version byte for byte); without a table, the
    # train stage takes seconds.
    result = CliRunner().invoke(
        app, [*_args(prod_paths, tiny_params_file), "--set", "train.explanation_table=false"]
    )
    assert result.exit_code == 1
    assert "error: unexpected RuntimeError: boom inside a tournament" in result.output
    candidate = store.read("staging")
    assert candidate is not None and candidate != production
    manifest = json.loads((store.path(candidate) / "manifest.json").read_text())
    assert manifest["metrics"] == {}
    after = state(prod_paths.models)
    assert {k: v for k, v in after.items() if k != "staging" and not k.startswith(candidate)} == {
        k: v for k, v in before.items() if k != "staging"
    }
    assert store.read("production") == production
    assert not (prod_paths.models / ".incoming").exists() and not prod_paths.tracking.exists()


def _worker_of(pid: int, timeout: float = 300.0) -> int:
    """The pid of the fastText worker that process `pid` started (waits for it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid and b"fasttext_worker" in cmdline:
                return int(entry.name)
        time.sleep(0.1)
    raise TimeoutError(f"process {pid} started no fastText worker in {timeout} s")


def _gone(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] == "Z":  # a zombie: dead, not yet reaped
            return True
        time.sleep(0.1)
    return False


# A training long enough to be interrupted (the proxies are cached by the session's run).
LONG_TRAINING = ["--set", "train.epoch=60", "--set", "train.dim=100"]


def _start(paths: Any, params_file: Path, command: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.Popen(
        [sys.executable, "-m", "hatbot.cli", *_args(paths, params_file, command), *LONG_TRAINING],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=paths.data.parent,
    )


def test_killing_the_worker_mid_training(
    prod_paths: Any, tiny_params_file: Path, state: State
) -> None:
    before = state(prod_paths.models)
    process = _start(prod_paths, tiny_params_file, "train")
    try:
        worker = _worker_of(process.pid)
        os.kill(worker, signal.SIGKILL)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 1
    assert "error: TrainingError: fastText training own-" in stderr
    assert "killed by signal 9" in stderr
    _assert_untouched(prod_paths, before, state)


def test_terminating_the_pipeline_mid_training(
    prod_paths: Any, tiny_params_file: Path, state: State
) -> None:
    """SIGTERM (what `docker stop`, Kubernetes and CI cancel send) is an interrupt."""
    before = state(prod_paths.models)
    process = _start(prod_paths, tiny_params_file, "pipeline")
    try:
        worker = _worker_of(process.pid)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "error: interrupted" in stderr
    assert "stage 2/4 train: failed" in stderr
    assert _gone(worker), "the fastText worker outlived the pipeline"
    _assert_untouched(prod_paths, before, state)


def test_killing_the_pipeline_mid_training(
    prod_paths: Any, tiny_params_file: Path, state: State
) -> None:
    """SIGKILL leaves no chance to clean up: the worker dies with its parent, the scratch
    folder is removed by the next run, and production never moved."""
    before = state(prod_paths.models)
    process = _start(prod_paths, tiny_params_file, "train")
    try:
        worker = _worker_of(process.pid)
        process.kill()
        process.communicate(timeout=60)
    finally:
        process.kill()
    assert _gone(worker), "the fastText worker outlived the pipeline"
    orphans = list((prod_paths.models / ".incoming").iterdir())
    assert [p.name.split("-")[0] for p in orphans] == [str(process.pid)]
    assert {
        k: v for k, v in state(prod_paths.models).items() if not k.startswith(".incoming/")
    } == before
    with ModelStore(prod_paths.models).scratch():
        assert not orphans[0].exists()
    _assert_untouched(prod_paths, before, state)


def test_stage_commands_fail_clearly_without_their_inputs(tmp_path: Path) -> None:
    data, models = str(tmp_path / "data"), str(tmp_path / "models")
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--data-dir", data, "--models-dir", models])
    assert result.exit_code == 1 and "run `hatbot data fetch` first" in result.output
    result = runner.invoke(app, ["evaluate", "--data-dir", data, "--models-dir", models])
    assert result.exit_code == 1 and "no staging model" in result.output
    result = runner.invoke(app, ["promote", "--data-dir", data, "--models-dir", models])
    assert result.exit_code == 1 and "no staging model" in result.output
    result = runner.invoke(app, ["data", "add", str(tmp_path / "none.json"), "--data-dir", data])
    assert result.exit_code == 1 and "does not exist" in result.output
    assert not (tmp_path / "models").exists()


def test_gzip_of_garbage_is_not_a_corpus(tmp_path: Path) -> None:
    from hatbot.pipeline.corpus import CorpusError, DataStore

    bad = tmp_path / "x.tar.gz"
    bad.write_bytes(gzip.compress(random.Random(0).randbytes(100_000)))
    with pytest.raises(CorpusError, match="not a readable corpus archive"):
        DataStore(tmp_path / "data").fetch(str(bad))
