"""The whole pipeline through the `hatbot` command on the tiny corpus: every stage, the
manifest and MLflow records, reproducibility from scratch, and retraining after
`hatbot data add`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from store_helpers import stored_versions
from typer.testing import CliRunner

from hatbot.cli import app
from hatbot.pipeline.corpus import sha256_tree
from hatbot.pipeline.run import Paths
from hatbot.store import ModelStore

State = Callable[[Path], dict[str, str]]


def _paths(root: Path) -> Paths:
    return Paths(data=root / "data", models=root / "models", tracking=root / "mlruns")


def _args(paths: Paths, params_file: Path, command: str = "pipeline") -> list[str]:
    args = [*command.split(), "--params", str(params_file), "--data-dir", str(paths.data)]
    if command != "data fetch":
        args += ["--models-dir", str(paths.models)]
    if command == "pipeline":
        args += ["--tracking-dir", str(paths.tracking)]
    return args


def _manifest(paths: Paths, version: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (ModelStore(paths.models).path(version) / "manifest.json").read_text()
    )
    return data


@pytest.fixture(scope="module")
def run_a(
    tiny_params_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch_module: pytest.MonkeyPatch,
) -> tuple[Paths, str]:
    """`hatbot pipeline` from scratch (in process, through typer's runner)."""
    monkeypatch_module.delenv("MLFLOW_TRACKING_URI", raising=False)
    paths = _paths(tmp_path_factory.mktemp("run-a"))
    result = CliRunner().invoke(app, _args(paths, tiny_params_file))
    assert result.exit_code == 0, result.output
    return paths, result.output


@pytest.fixture(scope="module")
def run_b(tiny_params_file: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Paths, str]:
    """The same command from scratch in another folder, in a fresh interpreter; its stderr."""
    root = tmp_path_factory.mktemp("run-b")
    paths = _paths(root)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    process = subprocess.run(
        [sys.executable, "-m", "hatbot.cli", *_args(paths, tiny_params_file)],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=3600,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    return paths, process.stderr


@pytest.fixture(scope="module")
def monkeypatch_module() -> Any:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_pipeline_promotes_a_first_model_with_a_complete_manifest(
    run_a: tuple[Paths, str], tiny_eval_params: Any, tiny_corpus: Path
) -> None:
    paths, output = run_a
    store = ModelStore(paths.models)
    version = store.read("production")
    assert version is not None and store.read("staging") == version
    assert stored_versions(store) == [version]
    assert not (paths.models / ".incoming").exists()
    assert f"model {version}: score_vs_panel" in output
    assert "promoted: no production model yet" in output
    manifest = _manifest(paths, version)
    assert manifest["version"] == version
    assert manifest["params"] == tiny_eval_params.model_dump(mode="json")
    # The exact data snapshot: the corpus's checksum (and no extra texts yet).
    data = manifest["data"]
    assert data["corpus"]["sha256"] == sha256_tree(tiny_corpus)
    assert data["corpus"]["source"] == str(tiny_corpus) and data["extra"] == []
    assert manifest["code"]["hatbot"] and "git_commit" in manifest["code"]
    assert manifest["vocabulary"]["dim"] == tiny_eval_params.train.dim
    metrics = manifest["metrics"]
    assert metrics["hat_size"] == tiny_eval_params.evaluate.hat_size
    for criteria in ("soft", "hard"):
        for who in ("panel", "selfplay", "panel_starter_kit", "panel_clean_naive"):
            for key in (
                "total",
                "explaining",
                "guessing",
                "rejected",
                "failures",
                "guess_rate_1",
                "guess_rate_5",
            ):
                assert f"{criteria}_{who}_{key}" in metrics, (criteria, who, key)
        assert metrics[f"{criteria}_panel_rejected"] == 0
        assert metrics[f"{criteria}_selfplay_rejected"] == 0
    assert metrics["score_vs_panel"] == pytest.approx(
        (metrics["soft_panel_total"] + metrics["hard_panel_total"]) / 2
    )
    assert metrics["score_vs_panel"] > 0


def test_pipeline_records_the_run_in_mlflow(run_a: tuple[Paths, str]) -> None:
    from mlflow.tracking import MlflowClient

    paths, _ = run_a
    version = ModelStore(paths.models).read("production")
    manifest = _manifest(paths, str(version))
    client = MlflowClient(tracking_uri=f"sqlite:///{paths.tracking / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("hatbot")
    assert experiment is not None
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == version
    assert run.data.params["train.dim"] == str(manifest["params"]["train"]["dim"])
    assert run.data.params["data.source"] == manifest["params"]["data"]["source"]
    metrics = manifest["metrics"]
    assert run.data.metrics["score_vs_panel"] == pytest.approx(metrics["score_vs_panel"])
    assert run.data.metrics["soft_panel_guess_rate_1"] == pytest.approx(
        manifest["metrics"]["soft_panel_guess_rate_1"]
    )
    tags = run.data.tags
    assert tags["version"] == version and tags["promoted"] == "True"
    assert tags["corpus_sha256"] == manifest["data"]["corpus"]["sha256"]
    assert tags["data_snapshot"] == manifest["data"]["id"]
    assert tags["git_commit"] == (manifest["code"]["git_commit"] or "unknown")
    assert tags["decision"].startswith("promoted:")
    artifacts = Path(run.info.artifact_uri.removeprefix("file://"))
    assert artifacts.is_relative_to(paths.tracking.resolve())
    assert json.loads((artifacts / "data_snapshot.json").read_text()) == manifest["data"]
    assert (artifacts / "model" / "vectors.npy").read_bytes() == (
        ModelStore(paths.models).path(str(version)) / "vectors.npy"
    ).read_bytes()


def test_pipeline_records_its_own_time_and_registers_the_model(run_a: tuple[Paths, str]) -> None:
    """Each stage's and step's wall and CPU time go into the manifest and MLflow; the MLflow
    run spans the pipeline; the promoted model is a registered version aliased like the store."""
    from mlflow.tracking import MlflowClient

    paths, output = run_a
    version = str(ModelStore(paths.models).read("production"))
    timings = _manifest(paths, version)["timings"]
    steps = ["fetch", "train", "evaluate", "promote", "pipeline", "train.preprocess"]
    steps += ["train.fasttext", "train.fasttext.own", "train.fasttext.proxy-starter_kit"]
    steps += ["train.export.neighbours", "train.export.explanations"]
    steps += [f"evaluate.panel.{version}", f"evaluate.tournaments.{version}"]
    steps += ["evaluate.panel.fasttext.starter_kit", "evaluate.panel.fasttext.clean_naive"]
    for step in steps:
        assert step in timings, step
        assert timings[step]["wall_s"] >= 0 and timings[step]["cpu_s"] >= 0, step
    assert timings["train.fasttext.own"]["cpu_s"] > 0
    assert timings["pipeline"]["wall_s"] >= timings["train"]["wall_s"] > 0
    summary = next(line for line in output.splitlines() if line.startswith(f"model {version}"))
    assert summary.endswith(f"{timings['pipeline']['wall_s']:.0f} s")

    client = MlflowClient(tracking_uri=f"sqlite:///{paths.tracking / 'mlflow.db'}")
    [run] = client.search_runs([client.get_experiment_by_name("hatbot").experiment_id])
    assert run.data.metrics["seconds.train.wall_s"] == pytest.approx(timings["train"]["wall_s"])
    spanned = (run.info.end_time - run.info.start_time) / 1000
    assert spanned >= timings["pipeline"]["wall_s"] - 1
    model = client.get_model_version_by_alias("hatbot", "production")
    assert model.run_id == run.info.run_id and model.tags["version"] == version
    assert client.get_model_version_by_alias("hatbot", "staging").version == model.version


def test_tracking_goes_to_the_server_named_by_the_environment(
    run_a: tuple[Paths, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    from hatbot.pipeline.track import track_run

    uri = f"sqlite:///{tmp_path / 'server.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # a server-side store puts artifacts where it likes
    run_id = track_run(
        tmp_path / "local",
        {"a": {"b": 1}},
        {"m": 0.5, "s": "x"},
        {"t": "v"},
        None,
        run_name="elsewhere",
        data={"id": "abc"},
    )
    assert not (tmp_path / "local").exists()
    run = MlflowClient(tracking_uri=uri).get_run(run_id)
    assert run.data.params == {"a.b": "1"} and run.data.metrics == {"m": 0.5}
    assert run.data.tags["t"] == "v"


def test_two_runs_from_scratch_are_identical(
    run_a: tuple[Paths, str], run_b: tuple[Paths, str], state: State
) -> None:
    a, _ = run_a
    b, _ = run_b
    version = ModelStore(a.models).read("production")
    assert version is not None and ModelStore(b.models).read("production") == version
    folder_a = ModelStore(a.models).path(version)
    folder_b = ModelStore(b.models).path(version)
    files_a = {k: v for k, v in state(folder_a).items() if k != "manifest.json"}
    assert files_a == {k: v for k, v in state(folder_b).items() if k != "manifest.json"}
    assert len(files_a) >= 10
    manifest_a, manifest_b = _manifest(a, version), _manifest(b, version)
    assert manifest_a["metrics"] == manifest_b["metrics"]
    assert manifest_a["files"] == manifest_b["files"] == files_a
    assert manifest_a["data"] == manifest_b["data"]


def test_pipeline_logs_each_stage_and_shows_progress(run_b: tuple[Paths, str]) -> None:
    _, stderr = run_b
    for number, stage in enumerate(("fetch", "train", "evaluate", "promote"), start=1):
        assert f"stage {number}/4 {stage}: started" in stderr
        assert f"stage {number}/4 {stage}: done in" in stderr
    for bar in ("preprocess:", "train:", "tournament:"):
        assert bar in stderr
    assert "promotion of " in stderr and ": promoted: no production model yet" in stderr


def test_each_stage_command_on_its_own(
    run_a: tuple[Paths, str], tiny_params_file: Path, tmp_path: Path, tiny_corpus: Path
) -> None:
    """`data fetch`, `train`, `evaluate`, `promote` one by one (reusing run A's data store,
    its cleaned corpus and trained models cached) give run A's model and metrics again."""
    a, _ = run_a
    paths = _paths(tmp_path)
    shutil.copytree(a.data, paths.data)
    runner = CliRunner()
    result = runner.invoke(app, _args(paths, tiny_params_file, "data fetch"))
    assert result.exit_code == 0, result.output
    record = json.loads(result.output[result.output.index("{") :])
    assert record["sha256"] == sha256_tree(tiny_corpus)
    result = runner.invoke(app, _args(paths, tiny_params_file, "train"))
    assert result.exit_code == 0, result.output
    version = ModelStore(a.models).read("production")
    assert f"trained model {version} (now staging)" in result.output
    assert ModelStore(paths.models).read("production") is None
    result = runner.invoke(app, _args(paths, tiny_params_file, "evaluate"))
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output[result.output.index("{") :])
    assert printed == _manifest(a, str(version))["metrics"]
    result = runner.invoke(app, _args(paths, tiny_params_file, "promote"))
    assert result.exit_code == 0, result.output
    assert "promoted: no production model yet" in result.output
    assert ModelStore(paths.models).read("production") == version


def test_data_add_then_retrain_trains_on_everything(
    run_a: tuple[Paths, str], tiny_params_file: Path, tmp_path: Path, state: State
) -> None:
    a, _ = run_a
    paths = _paths(tmp_path)
    shutil.copytree(a.data, paths.data)
    shutil.copytree(a.models, paths.models)
    old = ModelStore(paths.models).read("production")
    assert old is not None
    raw_before = state(paths.data / "raw")
    texts = tmp_path / "tournament.json"
    sentences = [
        {
            "text": f"The quokka is a small marsupial, and the quokka lives on an island {i}. "
            "Every quokka there is smiling at the tourists who visit the quokka."
        }
        for i in range(40)
    ]
    texts.write_text(json.dumps(sentences))
    runner = CliRunner()
    result = runner.invoke(app, ["data", "add", str(texts), "--data-dir", str(paths.data)])
    assert result.exit_code == 0, result.output
    added = json.loads(result.output[result.output.index("{") :])
    assert added["documents"] == "40"
    # Raw data is only ever added to.
    raw_after = state(paths.data / "raw")
    assert {k: raw_after[k] for k in raw_before} == raw_before
    assert set(raw_after) - set(raw_before) == {f"extra/{added['file']}"}
    result = runner.invoke(app, _args(paths, tiny_params_file))
    assert result.exit_code == 0, result.output
    store = ModelStore(paths.models)
    new = store.read("staging")
    assert new is not None and new != old and sorted(stored_versions(store)) == sorted([old, new])
    manifest, old_manifest = _manifest(paths, new), _manifest(paths, old)
    assert manifest["data"]["id"] != old_manifest["data"]["id"]
    assert manifest["data"]["corpus"] == old_manifest["data"]["corpus"]
    assert manifest["data"]["extra"] == [{"file": added["file"], "sha256": added["sha256"]}]
    vocabulary = (store.path(new) / "vocab.txt").read_text().split()
    assert "quokka" in vocabulary
    assert "quokka" not in (store.path(old) / "vocab.txt").read_text().split()
    # Production was scored again on the new setup, and the decision compares the two.
    assert old_manifest["metrics"]["evaluation_key"] == manifest["metrics"]["evaluation_key"]
    promoted = store.read("production") == new
    word = ">=" if promoted else "<"
    assert (
        f"score_vs_panel {manifest['metrics']['score_vs_panel']:.4f} {word} production's"
        in result.output
    )
    assert f"{old_manifest['metrics']['score_vs_panel']:.4f}" in result.output


def test_a_soft_tournament_model_from_one_command(
    run_a: tuple[Paths, str], tiny_params_file: Path, tmp_path: Path
) -> None:
    """`--set strategy.hint_rules=soft --set evaluate.criteria=[soft]`: a model for a
    tournament announced soft, evaluated in soft mode only, promoted, whose table holds
    hints the hard host would delete and the soft host keeps, every one."""
    from hatbot.game.lexicon import NltkLexicon
    from hatbot.game.rules import clean_explanation
    from hatbot.index import WordIndex

    a, _ = run_a
    paths = _paths(tmp_path)
    shutil.copytree(a.data, paths.data)
    soft = ["--set", "strategy.hint_rules=soft", "--set", "evaluate.criteria=[soft]"]
    result = CliRunner().invoke(app, [*_args(paths, tiny_params_file), *soft])
    assert result.exit_code == 0, result.output
    version = ModelStore(paths.models).read("production")
    assert version is not None and version != ModelStore(a.models).read("production")
    manifest = _manifest(paths, version)
    assert manifest["params"]["strategy"]["hint_rules"] == "soft"
    metrics = manifest["metrics"]
    assert metrics["soft_panel_rejected"] == metrics["soft_selfplay_rejected"] == 0
    assert not [key for key in metrics if key.startswith("hard_")]
    index = WordIndex(ModelStore(paths.models).path(version))
    assert index.explanations is not None
    lexicon = NltkLexicon()
    hard_only = 0
    for i in np.flatnonzero(index.explanations.rows >= 0)[:300]:
        word = index.words[int(i)]
        hints = index.explanation(word, 10)
        assert hints and clean_explanation(word, hints, 10, "soft", lexicon) == hints
        hard_only += len(hints) - len(clean_explanation(word, hints, 10, "hard", lexicon))
    assert hard_only > 0
