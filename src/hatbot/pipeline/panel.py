"""The evaluation panel: one baseline player's fastText model per recipe, trained by it.

The players themselves (`hatbot.game.players`) only load a model; training is the
pipeline's, so `game` never imports `pipeline`.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hatbot.game.recipes import RECIPES
from hatbot.index import file_sha256
from hatbot.pipeline import train
from hatbot.pipeline.train import Job, shuffle_lines

log = logging.getLogger("hatbot.pipeline")


def train_baseline_models(
    clean_corpus: Path,
    raw_corpus: Path,
    out: Path,
    seed: int,
    args: Mapping[str, Any] | None = None,
    parallel: int = 2,
    stop: threading.Event | None = None,
    report: bool = True,
    recipes: Sequence[str] = tuple(RECIPES),
) -> dict[str, Path]:
    """Train (or reuse) one model of each recipe; returns {name: path of model.bin}.

    Each trains by its recipe (`hatbot.game.recipes`, one thread, so reruns are
    identical) on a copy of its corpus with the documents shuffled by `seed`:
    independent of hatbot's proxy models, which see the corpora in order, and of
    their twins (shuffled by `artifact.twin_seeds`, seeds no panel uses), yet
    reproducible. `args` overrides fastText arguments (tests use tiny models).
    A model is reused when `out/<name>/model.bin` exists and was trained from the
    same corpus, seed and arguments.
    """
    sources = {"raw": raw_corpus, "clean": clean_corpus}
    models = {name: out / name / "model.bin" for name in recipes}
    jobs, keys = [], {}
    for name in recipes:
        fasttext_args = RECIPES[name].fasttext_args(args)
        source = sources[RECIPES[name].corpus]
        folder = out / name
        key = {"corpus_sha256": file_sha256(source), "seed": seed, "args": fasttext_args}
        key_file = folder / "baseline.json"
        if (
            models[name].is_file()
            and (folder / "done.json").is_file()
            and key_file.is_file()
            and json.loads(key_file.read_text()) == key
        ):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        shuffled = out / f"{name}.shuffled.txt"
        shuffle_lines(source, shuffled, seed)
        jobs.append(
            Job(
                corpus=shuffled,
                args=dict(fasttext_args),
                out=folder,
                keep_bin=True,
                name=f"evaluate.panel.fasttext.{name}",
            )
        )
        keys[folder] = key
    if jobs:
        # Said out loud: a first `hatbot tournament --builtin clean_naive` trains for minutes.
        log.warning(
            "training %d baseline model(s) of seed %d (by their recipes: the library-default "
            "ones about 800 MB each with the default buckets, 4-8 minutes of CPU on the full "
            "corpus, the notebook's small ones 1-2 minutes); "
            "later runs reuse them from %s",
            len(jobs),
            seed,
            out,
        )
    try:
        train.run_jobs(jobs, parallel=parallel, stop=stop, report=report)
    finally:
        for job in jobs:
            job.corpus.unlink(missing_ok=True)
    # Recorded only once training succeeded: a failed run is never mistaken for a cache.
    for folder, key in keys.items():
        (folder / "baseline.json").write_text(json.dumps(key, indent=2, sort_keys=True))
    return models
