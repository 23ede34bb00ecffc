"""The opponent recipes: how the other teams of the course train and play their bots.

Each recipe comes from the course's public material (docs/GAME.md, "The field"): a
corpus (the raw concatenated documents, or the cleaned ones), fastText's arguments over
the library defaults, and how the bot plays. hatbot models every recipe with proxies
(`hatbot.pipeline.artifact`), and the evaluation panel fields one bot of each
(`hatbot.pipeline.panel`), trained independently of those proxies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

# fastText's own defaults: what a team gets from `fasttext.train_unsupervised(path)`.
LIBRARY_DEFAULTS: dict[str, Any] = {
    "model": "skipgram",
    "dim": 100,
    "epoch": 5,
    "ws": 5,
    "minCount": 5,
    "minn": 3,
    "maxn": 6,
    "lr": 0.05,
    "neg": 5,
}


@dataclass(frozen=True)
class Recipe:
    """One way of training and playing a bot."""

    # "raw": the documents concatenated as they are; "clean": hatbot's cleaned corpus.
    corpus: Literal["raw", "clean"]
    # fastText arguments over `LIBRARY_DEFAULTS`.
    args: Mapping[str, Any] = field(default_factory=dict)
    # "neighbours": fastText's nearest neighbours of the word, or of the hints joined by
    # spaces (the starter kit's player); "mean": neighbours to explain, the mean hint
    # vector's nearest words to guess (a team that cleaned the corpus).
    plays: Literal["neighbours", "mean"] = "neighbours"

    def fasttext_args(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The recipe's fastText arguments, single-threaded (reruns are byte-identical);
        `overrides` (tests shrink the buckets) never change the recipe's own arguments."""
        return {**LIBRARY_DEFAULTS, "thread": 1, **(overrides or {}), **self.args}


# Every recipe hatbot models and the panel fields, by name (the names are the artifact's
# `proxy-<name>` folders and the panel's players). The notebook's three train on the raw
# corpus and play with fastText's neighbours, as the course's demo notebook does.
RECIPES: dict[str, Recipe] = {
    "starter_kit": Recipe("raw"),
    "clean_naive": Recipe("clean", plays="mean"),
    "notebook_sg5": Recipe("raw", {"dim": 5}),
    "notebook_cbow16": Recipe("raw", {"model": "cbow", "dim": 16}),
    "notebook_sg10": Recipe("raw", {"dim": 10}),
}


def recipe(name: str) -> Recipe:
    """The recipe called `name`, or a ValueError naming the known ones."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}: one of {', '.join(RECIPES)}")
    return RECIPES[name]
