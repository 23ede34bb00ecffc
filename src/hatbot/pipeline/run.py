"""The stages of the pipeline as functions, and `run_pipeline` chaining them."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hatbot.game.recipes import RECIPES
from hatbot.index import WordIndex
from hatbot.pipeline import steps
from hatbot.pipeline.artifact import build, write_manifest
from hatbot.pipeline.corpus import Corpora, DataStore, prepare
from hatbot.pipeline.params import Params
from hatbot.pipeline.promote import Decision, apply_decision, promote
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


def train(paths: Paths, params: Params, on_corpora: Callable[[], None] | None = None) -> str:
    """Stage 2: preprocess, train, export; the new version becomes `staging`.

    Everything is written in a scratch folder inside the model store and moved
    into place by one rename; on any failure the store is as it was. `on_corpora` is
    called once the corpora are prepared (the pipeline starts the panel then).
    """
    data = DataStore(paths.data)
    with steps.timed("train.preprocess"):
        steps.progress(step="preprocess the corpus")
        corpora = prepare(data, params.preprocess)
    if on_corpora is not None:
        on_corpora()
    store = ModelStore(paths.models)
    with store.scratch() as scratch:
        built = build(corpora, params, data.snapshot(), scratch, _lexicon())
        store.add(built.folder, built.version)
    # When it was last trained (Unix seconds), also when a retrain on the same data gave the
    # same version: not part of the version; the service exports it for the staleness alert.
    folder = store.path(built.version)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["trained_at"] = round(time.time(), 3)
    write_manifest(folder, manifest)
    store.point("staging", built.version)
    return built.version


def evaluation_key(params: Params, corpora: Corpora, snapshot_id: str) -> str:
    """Identifies the evaluation setup (hat, rules, panel data): equal keys, comparable scores."""
    payload = json.dumps(
        {
            "evaluate": params.evaluate.model_dump(mode="json"),
            # The panel's recipes themselves: a recipe changed in code is another panel.
            "panel": {
                n: RECIPES[n].fasttext_args(params.evaluate.panel_args)
                for n in params.evaluate.panel
            },
            "data": snapshot_id,
            "corpus_tokens": corpora.tokens,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def _panel_models(
    params: Params, corpora: Corpora, stop: threading.Event | None = None, background: bool = False
) -> dict[str, Path]:
    from hatbot.pipeline.panel import train_baseline_models

    folder = corpora.clean.parent / f"panel-seed{params.evaluate.seed}"
    if not background:
        steps.progress(step="the baseline panel's models")
    return train_baseline_models(
        corpora.clean,
        corpora.raw,
        folder,
        params.evaluate.seed,
        params.evaluate.panel_args or None,
        parallel=1 if background else 2,
        stop=stop,
        report=not background,
        recipes=params.evaluate.panel,
    )


def _panel(paths: Paths, params: Params, corpora: Corpora) -> Any:
    from hatbot.pipeline.evaluate import Panel

    return Panel(_panel_models(params, corpora))


class PanelInBackground:
    """The evaluation panel's models trained in a thread, one at a time, while the train
    stage runs: fastText workers then keep both cores busy where the train stage leaves one
    idle (its last model, the single-threaded export steps). The evaluate stage waits for
    it and finds the models trained; a failure here only means evaluate trains them itself.
    """

    def __init__(self, params: Params, paths: Paths) -> None:
        self.params, self.paths = params, paths
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="panel", daemon=True)

    def _run(self) -> None:
        try:
            corpora = prepare(DataStore(self.paths.data), self.params.preprocess)
            with steps.timed("train.panel_in_background"):
                _panel_models(self.params, corpora, self.stop, background=True)
        except Exception as exc:  # evaluate trains the panel itself and reports any error
            if not self.stop.is_set():
                log.warning("training the panel in the background failed: %s", exc)

    def start(self) -> None:
        self.thread.start()

    def then(self, stage: Callable[..., Any], *args: Any) -> Any:
        """Wait for the panel (if started), then run `stage`."""
        if self.thread.is_alive():
            self.thread.join()
        return stage(*args)

    def cancel(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()


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
    with steps.timed(f"evaluate.panel.{version}"):
        panel = _panel(paths, params, corpora)
    with steps.timed(f"evaluate.tournaments.{version}"):
        metrics = play(index, panel, params.evaluate, _lexicon())
    metrics["evaluation_key"] = key
    manifest = dict(index.manifest)
    manifest["metrics"] = metrics
    write_manifest(folder, manifest)
    return metrics


def promote_staging(paths: Paths, params: Params, apply: bool = True) -> Decision:
    """Stage 4: staging replaces production if it scores at least as well on the same setup.

    With `apply` false the decision is taken but production does not move yet.
    """
    store = ModelStore(paths.models)
    production = store.read("production")
    production_metrics = None
    if production is not None and production != store.read("staging"):
        production_metrics = evaluate(paths, params, production)
    decision = promote(store, params.promote, production_metrics, apply=apply)
    record_decision(store, decision)
    return decision


def record_decision(store: ModelStore, decision: Decision) -> None:
    """The candidate's manifest keeps its promotion decision (`/v1/model` shows it); a model
    already in production keeps the decision that put it there, and its folder unchanged."""
    if decision.candidate == decision.production:
        return
    folder = store.path(decision.candidate)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["promotion"] = decision.as_dict()
    write_manifest(folder, manifest)


@contextmanager
def _stage(name: str, number: int, total: int = 4) -> Iterator[None]:
    log.info("stage %d/%d %s: started", number, total, name)
    steps.progress(stage=name)
    start = time.monotonic()
    try:
        with steps.timed(name):
            yield
    except BaseException as exc:
        log.error(
            "stage %d/%d %s: failed after %.1f s: %s: %s",
            number,
            total,
            name,
            time.monotonic() - start,
            type(exc).__name__,
            exc,
        )
        raise
    log.info("stage %d/%d %s: done in %.1f s", number, total, name, time.monotonic() - start)


def run_pipeline(paths: Paths, params: Params, track: bool = True) -> dict[str, Any]:
    """Every stage in order; returns what each produced, and records the run.

    A failing stage stops the run with its exception: the stages before it kept
    what they wrote (the data store, a complete staging model). Production moves
    last, after the run is recorded, so a run that fails anywhere (tracking
    included) leaves production as it was. Each stage's and step's wall and CPU time
    (`hatbot.pipeline.steps`) go into the model's manifest (`timings`) and MLflow.
    """
    steps.RECORD.times.clear()
    started = time.time()
    panel = PanelInBackground(params, paths)
    stages: list[tuple[str, Callable[[], Any]]] = []
    results: dict[str, Any] = {}
    stages.append(("fetch", lambda: fetch(paths, params)))
    stages.append(("train", lambda: train(paths, params, on_corpora=panel.start)))
    stages.append(("evaluate", lambda: panel.then(evaluate, paths, params, results["train"])))
    stages.append(("promote", lambda: promote_staging(paths, params, apply=False)))
    try:
        for number, (name, stage) in enumerate(stages, start=1):
            with _stage(name, number, len(stages)):
                results[name] = stage()
    finally:
        panel.cancel()
    version: str = results["train"]
    metrics: dict[str, Any] = results["evaluate"]
    decision: Decision = results["promote"]
    store = ModelStore(paths.models)
    timings = steps.RECORD.as_dict()
    timings["pipeline"] = {
        "wall_s": round(time.time() - started, 2),
        "cpu_s": round(sum(timings[name]["cpu_s"] for name, _ in stages), 2),
    }
    manifest = json.loads((store.path(version) / "manifest.json").read_text())
    manifest["timings"] = timings
    write_manifest(store.path(version), manifest)
    summary: dict[str, Any] = {
        "corpus": results["fetch"],
        "version": version,
        "metrics": metrics,
        "decision": decision.as_dict(),
        "timings": timings,
    }
    if track:
        from hatbot.pipeline.artifact import git_commit
        from hatbot.pipeline.track import track_run

        tags = {
            "version": version,
            "git_commit": git_commit() or "unknown",
            "data_snapshot": manifest["data"]["id"],
            "corpus_sha256": manifest["data"]["corpus"]["sha256"],
            "promoted": str(decision.promoted),
            "decision": decision.reason[:500],
        }
        summary["run_id"] = track_run(
            paths.tracking,
            params.model_dump(mode="json"),
            {**metrics, "seconds": timings},
            tags,
            store.path(version),
            run_name=version,
            data=manifest["data"],
            started=started,
            promoted=decision.promoted,
        )
    apply_decision(store, decision)
    return summary


# The quick first model of `hatbot serve --bootstrap`: hatbot's own space only, fewer epochs
# on one thread (its score is then reproducible; the panel trains on the other core), no
# explanation table (explained live, a few ms each: one simulated guesser), evaluated
# against a panel trained for one epoch. It goes through the same store, manifest
# and promotion rules; the full model replaces it by the usual criterion (docs/PIPELINE.md).
QUICK_TRAIN = {"epoch": 3, "threads": 1, "opponents": False, "explanation_table": False}
# The quick panel's fastText arguments, over the run's own (fewer buckets, unless it has fewer),
# and its recipes: the two library-default ones (each notebook recipe would add a minute).
QUICK_PANEL = {"bucket": 200_000, "epoch": 1}
QUICK_PANEL_RECIPES = ("starter_kit", "clean_naive")


def quick_params(params: Params) -> Params:
    """`params` with the quick model's changes (QUICK_TRAIN, QUICK_PANEL)."""
    given = params.evaluate.panel_args
    panel = {**QUICK_PANEL, **given, "epoch": QUICK_PANEL["epoch"]}
    panel["bucket"] = min(int(given.get("bucket", QUICK_PANEL["bucket"])), QUICK_PANEL["bucket"])
    return params.model_copy(
        update={
            "train": params.train.model_copy(update=QUICK_TRAIN),
            "evaluate": params.evaluate.model_copy(
                update={"panel_args": panel, "panel": QUICK_PANEL_RECIPES}
            ),
        }
    )


def is_quick(manifest: dict[str, Any]) -> bool:
    """Whether a model was made by `quick_params` (it has no opponent proxies)."""
    return manifest.get("params", {}).get("train", {}).get("opponents") is False


def first_run(paths: Paths, params: Params, track: bool = True) -> list[dict[str, Any]]:
    """Prepare a store for serving: a quick model first when it has no production model,
    then the full pipeline (unless production is already a full model). The progress goes
    to the store's progress file (`hatbot.progress`) for the service waiting on it."""
    store = ModelStore(paths.models)
    summaries = []
    production = store.read("production")
    if production is not None:
        manifest = json.loads((store.path(production) / "manifest.json").read_text())
        if not is_quick(manifest):
            return []
    try:
        if production is None:
            steps.reset(paths.models, model="quick")
            summaries.append(run_pipeline(paths, quick_params(params), track))
        steps.reset(paths.models, model="full")
        summaries.append(run_pipeline(paths, params, track))
    except BaseException as exc:
        steps.progress(status="failed", message=f"{type(exc).__name__}: {exc}"[:500])
        raise
    steps.progress(status="done", stage="", step="")
    return summaries
