"""Experiment tracking with MLflow: a local SQLite store by default, a server when
`MLFLOW_TRACKING_URI` names one."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

EXPERIMENT = "hatbot"


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
) -> str:
    """Record one pipeline run; returns its MLflow run id.

    `data` (the manifest's data snapshot: every input file's checksum) is logged
    as `data_snapshot.json`; the artifact folder goes under `model/`.
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
        mlflow.set_experiment(EXPERIMENT)
        with mlflow.start_run(run_name=run_name) as run:
            mlflow.log_params({k: str(v)[:500] for k, v in flatten(params).items()})
            mlflow.log_metrics(
                {k: float(v) for k, v in flatten(metrics).items() if isinstance(v, int | float)}
            )
            mlflow.set_tags(tags)
            if data is not None:
                mlflow.log_dict(data, "data_snapshot.json")
            if artifact is not None:
                mlflow.log_artifacts(str(artifact), artifact_path="model")
            return str(run.info.run_id)
