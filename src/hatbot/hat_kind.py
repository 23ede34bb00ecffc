"""Which kind of hat the host draws from, learnt from the words it asks hatbot to explain.

A tournament's hat holds the corpus's mid-frequency words (docs/GAME.md, "The words in
the hat"); practice games used lists of everyday words, many of them more frequent than
that band. A word asked for explanation is evidence: a word the tournament's method
keeps (hat-eligible) or any other word, and a common word the method would drop
(WordNet knows it, it is among the most frequent words, it is not eligible) is what an
everyday hat shows and a tournament hat never does. `HatKind` turns the last `memory`
such observations into the probability that the hat is an everyday one; the guesser's
prior moves from the eligible words to the common ones by that probability.

Only each word's kind is kept (a bounded deque of booleans), never the word.
"""

from __future__ import annotations

import math
import threading
from collections import deque

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
        self.memory = memory
        self._common: deque[bool] = deque(maxlen=max(memory, 1))
        self._lock = threading.Lock()

    def observe(self, index: WordIndex, word: str) -> None:
        """Count one word the host asked to explain (by its kind; the word is not kept)."""
        if self.memory <= 0:
            return
        i = index.ids.get(word)
        common = i is not None and bool(index.common[i]) and not bool(index.eligible[i])
        with self._lock:
            self._common.append(common)

    @property
    def observed(self) -> int:
        return len(self._common) if self.memory > 0 else 0

    def everyday(self) -> float:
        """The probability that the words come from an everyday hat (0 before any word)."""
        with self._lock:
            seen, common = len(self._common), sum(self._common)
        if self.memory <= 0 or seen == 0:
            return 0.0
        log_odds = (
            math.log(PRIOR_ODDS)
            + common * math.log(EVERYDAY_RATE / CORPUS_RATE)
            + (seen - common) * math.log((1 - EVERYDAY_RATE) / (1 - CORPUS_RATE))
        )
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, log_odds))))

    def reset(self) -> None:
        with self._lock:
            self._common.clear()
