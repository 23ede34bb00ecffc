"""fastText training, each model in a fresh interpreter, and export of its vectors.

Every model trains in `hatbot.pipeline.fasttext_worker`, a fresh interpreter that
writes its vocabulary and vectors to a folder and exits, its memory handed out zeroed
(fastText 0.9.3 reads uninitialised memory: docs/PIPELINE.md, "Failure is safe").
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from hatbot.game.recipes import LIBRARY_DEFAULTS
from hatbot.pipeline import steps
from hatbot.pipeline.params import TrainParams

__all__ = ["LIBRARY_DEFAULTS", "Job", "Trained", "TrainingError", "run_jobs"]


class TrainingError(RuntimeError):
    """fastText could not train a model; the message carries its error."""


@dataclass(frozen=True)
class Job:
    """One fastText training: its input, arguments and what to write where."""

    corpus: Path
    args: dict[str, Any]
    out: Path
    # Words whose vectors to export besides the model's own vocabulary (subwords make any).
    queries: Sequence[str] = field(default_factory=tuple)
    # Also keep the `.bin` (baseline players need fastText itself); large with subwords.
    keep_bin: bool = False
    # The step name its time is recorded under (`train.fasttext.own`); empty: not recorded.
    name: str = ""

    @property
    def finished(self) -> bool:
        """True when an earlier run left every file this job writes (a model trained before
        the worker wrote its joined rows is trained again)."""
        joined = bool(self.queries) and self.args.get("maxn", 0) > 0
        return (self.out / "done.json").exists() and (
            not joined or (self.out / "joined.npy").exists()
        )


def fasttext_args(params: TrainParams) -> dict[str, Any]:
    return {
        "model": params.model,
        "dim": params.dim,
        "epoch": params.epoch,
        "ws": params.ws,
        "minCount": params.min_count,
        "minn": params.minn,
        "maxn": params.maxn,
        "lr": params.lr,
        "neg": params.neg,
        "thread": params.threads,
    }


def _start(job: Job) -> subprocess.Popen[bytes]:
    job.out.mkdir(parents=True, exist_ok=True)
    for stale in ("done.json", "error.txt"):
        (job.out / stale).unlink(missing_ok=True)
    queries = None
    if job.queries:
        queries = job.out / "queries.txt"
        queries.write_text("\n".join(job.queries) + "\n")
    spec = {
        "corpus": str(job.corpus),
        "args": job.args,
        "out": str(job.out),
        "queries": str(queries) if queries else None,
        "keep_bin": job.keep_bin,
        "parent": os.getpid(),
    }
    (job.out / "job.json").write_text(json.dumps(spec))
    # glibc's MALLOC_PERTURB_=255 zeroes every allocation (and fills freed memory with
    # 0xff): the rows fastText leaves uninitialised start at zero, as fresh pages do.
    return subprocess.Popen(
        [sys.executable, "-m", "hatbot.pipeline.fasttext_worker", str(job.out / "job.json")],
        env={**os.environ, "MALLOC_PERTURB_": "255"},
    )


def _failure(job: Job, code: int) -> TrainingError:
    error_file = job.out / "error.txt"
    lines = error_file.read_text().strip().splitlines() if error_file.exists() else []
    if lines:
        detail = lines[-1]
    elif code < 0:
        detail = f"the worker was killed by signal {-code}"
    else:
        detail = "no error report"
    return TrainingError(f"fastText training {job.out.name} failed (exit {code}): {detail}")


def run_jobs(
    jobs: Sequence[Job],
    parallel: int = 2,
    poll: float = 0.2,
    stop: threading.Event | None = None,
    report: bool = True,
) -> None:
    """Train every job, each in a fresh interpreter, `parallel` at a time.

    The first failure stops everything: the other workers are killed and a
    `TrainingError` says which training failed and why. So does an interrupt, and
    `stop` being set (from another thread). With `report`, the run's progress shows
    the jobs (`hatbot.pipeline.steps`).
    """
    pending = list(jobs)
    total, finished = len(pending), 0
    running: list[tuple[Job, subprocess.Popen[bytes]]] = []
    # On a terminal the bar's clock ticks every second; in a log, a line every 30 s.
    interval = 1.0 if sys.stderr.isatty() else 30.0
    bar = tqdm(
        total=len(pending),
        desc="train" if report else "train (background)",
        unit="model",
        disable=not pending,
        mininterval=interval,
    )
    try:
        while pending or running:
            while pending and len(running) < parallel:
                job = pending.pop(0)
                running.append((job, _start(job)))
                names = ", ".join(j.name or j.out.name for j, _ in running)
                if report:
                    steps.progress(step=f"fastText: {names}", done=finished, of=total)
            time.sleep(poll)
            if stop is not None and stop.is_set():
                raise TrainingError("fastText training stopped: the pipeline ended")
            bar.update(0)  # keeps the elapsed time moving during a long training
            for job, process in list(running):
                code = process.poll()
                if code is None:
                    continue
                running.remove((job, process))
                if code != 0 or not (job.out / "done.json").exists():
                    raise _failure(job, code)
                if job.name:
                    done = json.loads((job.out / "done.json").read_text())
                    steps.add(job.name, done.get("wall_s", 0.0), done.get("cpu_s", 0.0))
                finished += 1
                if report:
                    steps.progress(done=finished, of=total)
                bar.update(1)
    finally:
        for _, other in running:
            other.kill()
            other.wait()
        bar.close()


@dataclass(frozen=True)
class Trained:
    """A trained model's export: its vocabulary with counts and raw vectors."""

    words: list[str]
    counts: NDArray[np.int64]
    vectors: NDArray[np.float32]
    queries: NDArray[np.float32] | None
    # Per query word, its n-gram rows summed (a model with subwords; `fasttext_worker`).
    joined: NDArray[np.float32] | None = None

    @classmethod
    def load(cls, folder: Path) -> Trained:
        queries, joined = folder / "queries.npy", folder / "joined.npy"
        return cls(
            words=(folder / "words.txt").read_text().split("\n")[:-1],
            counts=np.load(folder / "counts.npy"),
            vectors=np.load(folder / "vectors.npy"),
            queries=np.load(queries) if queries.exists() else None,
            joined=np.load(joined) if joined.exists() else None,
        )


def normalise_rows(matrix: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit: NDArray[np.float32] = (matrix / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit


def shuffle_lines(source: Path, target: Path, seed: int) -> None:
    """Copy `source` to `target` with its lines (documents) in a seeded random order."""
    lines = source.read_text(encoding="utf-8").splitlines()
    random.Random(seed).shuffle(lines)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.replace(target)
