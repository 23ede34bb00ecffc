"""How hatbot plays: one `Strategy` of a loaded model, explaining and guessing.

The explainer (`hatbot.explainer`) and the guesser (`hatbot.guesser`) share the
parameters (`hatbot.strategy_params`) and read the same model; the host's rules come
from `hatbot.game.rules` (the same code the game engine judges with), with the
artifact's stems and WordNet facts as the lexicon (`WordIndex`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from hatbot.explainer import Explainer
from hatbot.game.rules import Criteria, normalise
from hatbot.guesser import Guesser
from hatbot.hat_kind import HatKind
from hatbot.host_mode import EXPLAIN_CERTAINTY, GUESS_CERTAINTY, HostMode
from hatbot.index import WordIndex
from hatbot.strategy_params import StrategyParams

__all__ = ["Strategy", "StrategyParams"]


class Strategy:
    """Explains and guesses with one loaded `WordIndex`: pure functions of their inputs, of
    `hat`, the running estimate of the hat's kind that the words explained feed, and of
    `mode`, the running estimate of the host's mode that the hints feed."""

    def __init__(
        self,
        index: WordIndex,
        params: StrategyParams | None = None,
        hat: HatKind | None = None,
        mode: HostMode | None = None,
    ) -> None:
        self.index = index
        self.params = params or StrategyParams.of_model(index.manifest)
        self.explainer = Explainer(index, self.params)
        # For a host known to play soft: hints only the soft host must keep (docs/STRATEGY.md,
        # "The host's mode"); the same explainer when the parameters already say so.
        soft = self.params.model_copy(update={"hint_rules": "soft"})
        self.soft_explainer = self.explainer if soft == self.params else Explainer(index, soft)
        self.guesser = Guesser(index, self.params)
        self.hat = hat if hat is not None else HatKind()
        self.mode = mode if mode is not None else HostMode()

    @property
    def explain_criteria(self) -> list[Criteria]:
        """The host modes that keep every hint this strategy gives now."""
        return (self.soft_explainer if self.plays_soft else self.explainer).criteria

    @property
    def hintable(self) -> NDArray[np.bool_]:
        """Which words the explainer may give as hints (frequent, and known to WordNet
        unless `hint_rules` is soft)."""
        return self.explainer.hintable

    def closest_known(self, word: str) -> int | None:
        """The vocabulary id the explainer explains `word` as (its own, or its closest
        spelling's), or None when no spelling is close."""
        return self.explainer.closest_known(word)

    @property
    def plays_soft(self) -> bool:
        """Whether the host is known to play soft, so hints need pass only its checks."""
        return self.mode.played(EXPLAIN_CERTAINTY) == "soft"

    def explain(self, word: str, n_words: int, observe: bool = True) -> list[str]:
        """Up to `n_words` hints for `word`, the most telling first, none the host deletes;
        with `observe`, the word counts towards the hat's kind."""
        if observe:
            self.observe(word)
        explainer = self.soft_explainer if self.plays_soft else self.explainer
        return explainer.explain(word, n_words)

    def observe(self, word: str) -> None:
        """Count a word the host asked to explain towards the estimate of the hat's kind."""
        self.hat.observe(self.index, word)

    def guess(self, hints: Sequence[str], n_words: int, observe: bool = True) -> list[str]:
        """Up to `n_words` guesses for the hints, none made already for a shorter prefix;
        with `observe` (the host's calls, each adding one hint), the newest hint counts
        towards the estimate of the host's mode."""
        if observe and hints:
            self.mode.observe(self.index, normalise(hints[-1]))
        mode = self.mode.played(GUESS_CERTAINTY)
        return self.guesser.guess(hints, n_words, self.hat.everyday(), mode)
