"""Which kind of hat the host draws from, learnt from the words it asks hatbot to explain.

A tournament's hat holds the corpus's mid-frequency words (docs/GAME.md, "The words in
the hat"); practice games used lists of everyday words, many of them more frequent than
that band. A word asked for explanation is evidence: a word the tournament's method
keeps (hat-eligible) or any other word, and a common word the method would drop
(WordNet knows it, it is among the most frequent words, it is not eligible) is what an
everyday hat shows and a tournament hat never does. `HatKind` turns the last `memory`
such observations into the probability that the hat is an everyday one; the guesser's
prior moves from the eligible words to the common ones by that probability.

Only each word's kind is kept (`hatbot.evidence`: the last `memory` bits), never the word.
"""

from __future__ import annotations

from hatbot.evidence import Evidence
from hatbot.index import WordIndex

# How often a word asked from each kind of hat is a common word the tournament's method
# drops: an everyday hat's words often are (`time`, `good`, `have`: more frequent than
# the band, or too short); a tournament hat's words almost never are (only where the
# host's counts differ from the artifact's). docs/STRATEGY.md, "The hat's kind".
EVERYDAY_RATE = 0.4
CORPUS_RATE = 0.01
# Odds against an everyday hat before any word is seen: tournaments use the corpus method.
PRIOR_ODDS = 0.05


class HatKind:
    """A running estimate, per process, of the probability that the hat is an everyday one."""

    def __init__(self, memory: int = 100) -> None:
        self._evidence = Evidence(memory, PRIOR_ODDS, EVERYDAY_RATE, CORPUS_RATE)

    def observe(self, index: WordIndex, word: str) -> None:
        """Count one word the host asked to explain (by its kind; the word is not kept)."""
        i = index.ids.get(word)
        self._evidence.record(
            i is not None and bool(index.common[i]) and not bool(index.eligible[i])
        )

    @property
    def observed(self) -> int:
        return self._evidence.observed

    def everyday(self) -> float:
        """The probability that the words come from an everyday hat (0 before any word)."""
        probability = self._evidence.probability()
        return 0.0 if probability is None else probability

    def reset(self) -> None:
        self._evidence.reset()
