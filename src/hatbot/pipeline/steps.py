"""The pipeline's clock and progress: each stage's and step's wall and CPU time, and what a
waiting service shows while the run prepares its model (`hatbot.progress`).

One pipeline runs per process, so the record is the process's own (`RECORD`): stages and
steps add to it with `timed(...)` and `progress(...)`, `run_pipeline` writes it into
the model's manifest and MLflow, and `docs/PIPELINE.md` keeps a table of it.

CPU time is the process's own plus that of its children once they have exited (the
fastText and explanation workers), so a step that waits for workers counts their CPU; a
step that overlaps another (the panel trained in the background during the train stage)
counts the other's too. Each fastText model's own time comes from its worker.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hatbot import progress as progress_file

log = logging.getLogger("hatbot.pipeline")


def cpu_seconds() -> float:
    """User and system CPU time of this process and its exited children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass(frozen=True)
class StepTime:
    wall_s: float
    cpu_s: float

    def as_dict(self) -> dict[str, float]:
        return {"wall_s": round(self.wall_s, 2), "cpu_s": round(self.cpu_s, 2)}


@dataclass
class Record:
    """The times of a run's steps (names like `train.fasttext.own`) and its progress file."""

    times: dict[str, StepTime] = field(default_factory=dict)
    store: Path | None = None
    current: progress_file.Progress = field(default_factory=progress_file.Progress)

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {name: t.as_dict() for name, t in self.times.items()}


RECORD = Record()


def reset(store: Path | None = None, model: str = "") -> None:
    """Start a new record; with `store`, progress is also written to its progress file."""
    RECORD.times.clear()
    RECORD.store = store
    RECORD.current = progress_file.Progress(model=model)
    if store is not None:
        progress_file.write(store, RECORD.current)


def add(name: str, wall_s: float, cpu_s: float) -> None:
    """Record a step timed elsewhere (a worker process's own clock)."""
    RECORD.times[name] = StepTime(wall_s, cpu_s)


@contextlib.contextmanager
def timed(name: str) -> Iterator[None]:
    """Time the block as step `name`, and log its wall and CPU time when it ends."""
    wall, cpu = time.monotonic(), cpu_seconds()
    try:
        yield
    finally:
        spent = StepTime(time.monotonic() - wall, cpu_seconds() - cpu)
        RECORD.times[name] = spent
        log.info("step %s: %.1f s wall, %.1f s CPU", name, spent.wall_s, spent.cpu_s)


def progress(
    stage: str | None = None,
    step: str | None = None,
    done: int | None = None,
    of: int | None = None,
    status: progress_file.Status | None = None,
    message: str | None = None,
) -> None:
    """Note what the run is doing; a waiting service reads it from the store's progress file."""
    given = {"stage": stage, "step": step, "done": done, "of": of, "status": status}
    changes: dict[str, object] = {k: v for k, v in given.items() if v is not None}
    if message is not None:
        changes["message"] = message
    if stage is not None and stage != RECORD.current.stage:
        changes.setdefault("step", "")
        changes.setdefault("done", 0)
        changes.setdefault("of", 0)
    RECORD.current = RECORD.current.but(**changes)
    if RECORD.store is not None:
        try:
            progress_file.write(RECORD.store, RECORD.current)
        except OSError as exc:  # progress is for people: a full disk must not stop a run
            log.warning("cannot write the progress file: %s", exc)
