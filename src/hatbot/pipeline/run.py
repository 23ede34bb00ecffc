"""The stages of the pipeline as functions, and `run_pipeline` chaining them."""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hatbot.index import WordIndex
from hatbot.pipeline.artifact import build, write_manifest
from hatbot.pipeline.corpus import Corpora, DataStore, prepare
from hatbot.pipeline.params import Params
from hatbot.pipeline.promote import Decision, promote
from hatbot.store import ModelStore

log = logging.getLogger("hatbot.pipeline")


@dataclass(frozen=True)
class Paths:
    """Where a pipeline keeps its data, models and tracking records."""

    data: Path = Path("data")
    models: Path = Path("models")
    tracking: Path = Path("mlruns")


def _lexicon() -> Any:
    from hatbot.game.lexicon import NltkLexicon

    return NltkLexicon()


def fetch(paths: Paths, params: Params) -> dict[str, str]:
    """Stage 1: bring the corpus into the data store."""
    return DataStore(paths.data).fetch(params.data.source, params.data.sha256)


def train(paths: Paths, params: Params) -> str:
    """Stage 2: preprocess, train, export; the new version becomes `staging`.

    Everything is written in a scratch folder inside the model store and moved
    into place by one rename; on any failure the store is as it was.
    """
    data = DataStore(paths.data)
    corpora = prepare(data, params.preprocess)
    store = ModelStore(paths.models)
    with tempfile.TemporaryDirectory(dir=store.staging_dir()) as scratch:
        built = build(corpora, params, data.snapshot(), Path(scratch), _lexicon())
        store.add(built.folder, built.version)
    store.point("staging", built.version)
    return built.version


def evaluation_key(params: Params, corpora: Corpora, snapshot_id: str) -> str:
    """Identifies the evaluation setup (hat, rules, panel data): equal keys, comparable scores."""
    payload = json.dumps(
        {"evaluate": params.evaluate.model_dump(mode="json"), "data": snapshot_id,
         "corpus_tokens": corpora.tokens},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def _panel(paths: Paths, params: Params, corpora: Corpora) -> Any:
    from hatbot.game.players import train_baseline_models
    from hatbot.pipeline.evaluate import Panel

    folder = corpora.clean.parent / f"panel-seed{params.evaluate.seed}"
    return Panel(train_baseline_models(corpora.clean, corpora.raw, folder, params.evaluate.seed))


def evaluate(paths: Paths, params: Params, version: str | None = None) -> dict[str, Any]:
    """Stage 3: play the model (default: staging) against the panel; metrics go in its manifest."""
    from hatbot.pipeline.evaluate import evaluate as play

    store = ModelStore(paths.models)
    version = version or store.read("staging")
    if version is None:
        raise FileNotFoundError(f"no staging model in {paths.models}: run `hatbot train` first")
    data = DataStore(paths.data)
    corpora = prepare(data, params.preprocess)
    key = evaluation_key(params, corpora, data.snapshot().id)
    folder = store.path(version)
    index = WordIndex(folder)
    if index.manifest.get("metrics", {}).get("evaluation_key") == key:
        return dict(index.manifest["metrics"])
    metrics = play(index, _panel(paths, params, corpora), params.evaluate, _lexicon())
    metrics["evaluation_key"] = key
    manifest = dict(index.manifest)
    manifest["metrics"] = metrics
    write_manifest(folder, manifest)
    return metrics


def promote_staging(paths: Paths, params: Params) -> Decision:
    """Stage 4: staging replaces production if it scores at least as well on the same setup."""
    store = ModelStore(paths.models)
    production = store.read("production")
    production_metrics = None
    if production is not None and production != store.read("staging"):
        production_metrics = evaluate(paths, params, production)
    return promote(store, params.promote, production_metrics)


def run_pipeline(paths: Paths, params: Params, track: bool = True) -> dict[str, Any]:
    """Every stage in order; returns what each produced, and records the run."""
    record = fetch(paths, params)
    version = train(paths, params)
    metrics = evaluate(paths, params, version)
    decision = promote_staging(paths, params)
    summary: dict[str, Any] = {
        "corpus": record, "version": version, "metrics": metrics, "decision": decision.as_dict()
    }
    if track:
        from hatbot.pipeline.artifact import git_commit
        from hatbot.pipeline.track import track_run

        store = ModelStore(paths.models)
        manifest = json.loads((store.path(version) / "manifest.json").read_text())
        tags = {
            "version": version,
            "git_commit": git_commit() or "unknown",
            "data_snapshot": manifest["data"]["id"],
            "corpus_sha256": manifest["data"]["corpus"]["sha256"],
            "promoted": str(decision.promoted),
            "decision": decision.reason[:500],
        }
        summary["run_id"] = track_run(
            paths.tracking, params.model_dump(mode="json"), metrics, tags,
            store.path(version), run_name=version,
        )
    return summary
