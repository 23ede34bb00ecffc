"""What the explainer and the guesser share: the strategy's parameters and two facts of
the vocabulary both read (the common-words order and each word's popularity).

A module of its own so that `hatbot.explainer` and `hatbot.guesser` import it while
`hatbot.strategy` imports them, with no cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from hatbot.index import ArtifactError, WordIndex


class StrategyParams(BaseModel):
    """The knobs of the strategy; the pipeline tunes them and stores them in the manifest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Neighbours each proxy explainer's hint list holds per hat candidate.
    proxy_depth: int = Field(30, ge=1, le=200)
    # Weights of the guess score: own space, each opponent recipe's space (a recipe not
    # named: 0), the recipes' hint lists read backwards, hat prior.
    own_weight: float = 1.0
    proxy_weights: dict[str, float] = {"starter_kit": 1.0, "clean_naive": 1.0}
    reverse_weight: float = 1.2
    prior_weight: float = 0.15
    # How sharply the recipe whose hint lists best explain the hints so far dominates the
    # reverse lookup: recipe r weighs exp(recipe_sharpness * (fit_r - best fit)), fit_r
    # being how well its best candidate's hint list matches the hints (0: a fixed blend).
    recipe_sharpness: float = Field(20.0, ge=0.0)
    # How far the spaces' similarity scores give way when the posterior puts its weight on
    # recipes the guesser has no space weight for (a low-dimensional notebook bot's hints
    # are read through its hint lists, not hatbot's spaces): the spaces weigh
    # 1 - space_gate * that weight (0: always fully).
    space_gate: float = Field(1.0, ge=0.0, le=1.0)
    # How much of a candidate's neighbour density is subtracted from its similarity to a
    # hint (0: plain cosine; 1: CSLS, a hint counts when it is among the candidate's
    # nearest neighbours, as the explainer's hints are).
    density_weight: float = Field(1.0, ge=0.0)
    # Weights of the simulated guessers when explaining: hatbot's own space, and each
    # opponent recipe's (the points come from other bots; the own space stands for
    # recipes hatbot has no proxy of).
    explain_own_weight: float = Field(0.3, ge=0.0)
    explain_proxy_weights: dict[str, float] = {
        "clean_naive": 2.0,
        "starter_kit": 1.0,
        "notebook_cbow16": 0.5,
        "notebook_sg10": 0.5,
    }
    # Simulate each recipe in its twins too (the artifact's other models of it), the
    # recipe's weight split evenly between its models.
    explain_twins: bool = True
    # At most this many of each recipe's twins (the artifact's first ones); None: all.
    max_twins: int | None = Field(2, ge=0)
    # Simulate a recipe whose bots join their hints into one string (a starter kit) as
    # such, where the artifact has its models' n-gram rows (docs/STRATEGY.md, "Explaining";
    # it pays only with the notebook recipes simulated too).
    joined_hints: bool = True
    # The simulated recipes whose models' nearest words are candidate hints (hatbot's own
    # space always proposes); the others only judge the candidates.
    explain_pool_recipes: list[str] = ["starter_kit", "clean_naive"]
    # Hint j (from 0) weighs 1 / (1 + hint_decay * j) in a guess.
    hint_decay: float = 0.15
    # Read backwards, hint j matches a candidate whose hint list holds it at place k by
    # 1 / (1 + position_decay * |k - j|): two models of one recipe seldom agree on a
    # hint's exact place (docs/STRATEGY.md).
    position_decay: float = Field(0.03, ge=0.0)
    # A hint must be this frequent in the corpus, so other bots know it well.
    min_hint_count: int = Field(7, ge=1)
    # The number of guesses the explainer assumes other bots make.
    simulated_guesses: int = Field(5, ge=1)
    # How many of each candidate hint's nearest words compete with the target in a simulated
    # guesser (the spelling variants a bot answers first), at most the artifact's 10; fewer
    # make an explanation cheaper (docs/STRATEGY.md, the parameters' table).
    competitor_neighbours: int = Field(3, ge=0, le=10)
    # Share of the soft check in a simulated guesser's success, the rest the hard check's
    # (under the soft check a guess of the target's variant, `spaces` for `space`, scores).
    soft_share: float = Field(0.5, ge=0.0, le=1.0)
    # The host modes every hint must survive: "both" (soft and hard, safe whatever the
    # tournament's mode) or "soft" (a tournament announced soft: the hard-only steps, the
    # stem and WordNet checks, no longer bar a hint).
    hint_rules: Literal["both", "soft"] = "both"

    @classmethod
    def of_model(cls, manifest: Mapping[str, Any]) -> StrategyParams:
        """The parameters a model's manifest names, every one of them: the export writes
        them all, and a manifest that lacks one was made by older code (its explanations
        by other parameters), so it is refused rather than given today's default."""
        named = manifest.get("strategy")
        if not isinstance(named, Mapping):
            raise ArtifactError("the manifest names no strategy parameters")
        missing = sorted(set(cls.model_fields) - set(named))
        if missing:
            raise ArtifactError(
                f"the manifest lacks the strategy parameters {missing}: "
                "re-export the model with `hatbot train`"
            )
        return cls(**named)


def common_words(index: WordIndex) -> list[int]:
    """Word ids, most frequent first: those a hat can hold, or every word if none can.
    The explainer fills from them and reads spellings off them, the guesser answers them
    without hints."""
    by_count = np.argsort(-index.counts, kind="stable")
    return [int(i) for i in by_count if index.eligible[i]] or [int(i) for i in by_count]


def popularity(index: WordIndex) -> NDArray[np.float32]:
    """Each word's log corpus count, scaled to at most 1."""
    frequency = np.log1p(index.counts.astype(np.float32))
    # A float32 array over a Python float stays float32: the cast only tells mypy so.
    return (frequency / max(1.0, float(frequency.max()))).astype(np.float32, copy=False)
