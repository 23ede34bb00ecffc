"""What a model store's trainer is doing, for a service that has no model yet.

The trainer (`hatbot serve --bootstrap` starts one in its own process) writes
`<store>/.progress.json` atomically at every step; the service reads it to say on
`/readyz`, on the page and in `/metrics` what it is preparing:

    {"status": "training", "stage": "train", "step": "fastText own", "done": 4, "of": 9,
     "started": 1764620000.0, "updated": 1764620123.4, "message": ""}

`status` is `training` while a run is under way, `done` after it, `failed` when it
stopped with an error (`message` then says why).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

FILE = ".progress.json"
Status = Literal["training", "done", "failed"]


@dataclass(frozen=True)
class Progress:
    """One snapshot of a training run's progress."""

    status: Status = "training"
    # The pipeline stage (fetch, train, evaluate, promote) and its current step.
    stage: str = ""
    step: str = ""
    # Steps of the stage done, of how many (0 of 0: not counted).
    done: int = 0
    of: int = 0
    # Which model the run prepares: `quick` (the first, minutes) or `full`.
    model: str = ""
    started: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def but(self, **changes: Any) -> Progress:
        """This snapshot with `changes`, stamped now."""
        return replace(self, **changes, updated=time.time())


def write(store: Path, progress: Progress) -> None:
    """Replace the store's progress file atomically (a reader sees the old or the new)."""
    store.mkdir(parents=True, exist_ok=True)
    tmp = store / f"{FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(progress.as_dict()))
    os.replace(tmp, store / FILE)


def read(store: Path) -> Progress | None:
    """The last progress written to the store, or None (no trainer, or an unreadable file)."""
    try:
        data = json.loads((store / FILE).read_text())
        return Progress(**{k: v for k, v in data.items() if k in Progress.__dataclass_fields__})
    except (OSError, ValueError, TypeError):
        return None
