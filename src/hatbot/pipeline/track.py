"""Experiment tracking with MLflow: a local SQLite store by default, a server when
`MLFLOW_TRACKING_URI` names one."""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from pathlib import Path
from typing import Any

EXPERIMENT = "hatbot"
REGISTERED_MODEL = "hatbot"


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= flatten(value, f"{name}.")
        else:
            flat[name] = value
    return flat


def track_run(
    root: Path,
    params: dict[str, Any],
    metrics: dict[str, Any],
    tags: dict[str, str],
    artifact: Path | None,
    run_name: str,
    data: dict[str, Any] | None = None,
    started: float | None = None,
    promoted: bool = False,
) -> str:
    """Record one pipeline run; returns its MLflow run id.

    `data` (the manifest's data snapshot: every input file's checksum) is logged
    as `data_snapshot.json`; the artifact folder goes under `model/`. The run spans
    the pipeline's own time (`started`, a Unix time, to now), not the logging's. The
    model is registered as a version of the registered model `hatbot`, with the alias
    `staging` (every trained model is staging first) and `production` when promoted.
    """
    with warnings.catch_warnings():
        # MLflow's own deprecations and its dependencies' (SQLAlchemy's `noload` loader in
        # MLflow's SQL store) are not ours to fix, and must not fail a run.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        import mlflow

        server = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
        if server:
            mlflow.set_tracking_uri(server)
        else:
            root.mkdir(parents=True, exist_ok=True)
            mlflow.set_tracking_uri(f"sqlite:///{root.resolve() / 'mlflow.db'}")
        if mlflow.get_experiment_by_name(EXPERIMENT) is None:
            location = None if server else (root / "artifacts").resolve().as_uri()
            mlflow.create_experiment(EXPERIMENT, artifact_location=location)
        experiment = mlflow.set_experiment(EXPERIMENT)
        client = mlflow.MlflowClient()
        start_ms = int((started or time.time()) * 1000)
        created = client.create_run(
            experiment.experiment_id, start_time=start_ms, run_name=run_name
        )
        with mlflow.start_run(run_id=created.info.run_id) as run:
            mlflow.log_params({k: str(v)[:500] for k, v in flatten(params).items()})
            mlflow.log_metrics(
                {k: float(v) for k, v in flatten(metrics).items() if isinstance(v, int | float)}
            )
            mlflow.set_tags(tags)
            if data is not None:
                mlflow.log_dict(data, "data_snapshot.json")
            if artifact is not None:
                mlflow.log_artifacts(str(artifact), artifact_path="model")
                register(client, run.info.run_id, run_name, promoted)
        client.set_terminated(run.info.run_id, end_time=int(time.time() * 1000))
        return str(run.info.run_id)


def register(client: Any, run_id: str, version: str, promoted: bool) -> None:
    """The run's model as a version of the registered model `hatbot`, aliased like the store."""
    from mlflow.exceptions import MlflowException

    with contextlib.suppress(MlflowException):  # registered by an earlier run
        client.create_registered_model(REGISTERED_MODEL)
    run = client.get_run(run_id)
    model = client.create_model_version(
        REGISTERED_MODEL,
        source=f"{run.info.artifact_uri}/model",
        run_id=run_id,
        tags={"version": version},
        description=f"hatbot model {version}",
    )
    aliases = ["staging", "production"] if promoted else ["staging"]
    for alias in aliases:
        client.set_registered_model_alias(REGISTERED_MODEL, alias, model.version)
